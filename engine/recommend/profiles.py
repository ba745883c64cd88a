"""Customer profiles from recency-weighted order history.

An order placed ``a`` days before the reference time weighs 0.5 ** (a / half_life).
The weighted customer × product matrix feeds the collaborative models; the
content profile is the weighted mean of the bought products' text embeddings,
L2-normalised.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def recency_weights(order_time: np.ndarray, half_life_days: float, now=None) -> np.ndarray:
    """Weight of each order: 0.5 ** (age in days / half-life); ``now`` defaults to the last order."""
    t = np.asarray(order_time, dtype="datetime64[ns]")
    if len(t) == 0:
        return np.zeros(0, np.float32)
    now = np.datetime64(now, "ns") if now is not None else t.max()
    age_days = (now - t) / np.timedelta64(1, "D")
    if not half_life_days or half_life_days <= 0:  # no decay
        return np.ones(len(t), np.float32)
    return np.power(0.5, np.clip(age_days, 0, None) / half_life_days).astype(np.float32)


def weighted_matrix(dataset, half_life_days: float, now=None) -> sp.csr_matrix:
    """Customers × products: sum of the recency weights of the orders containing the product."""
    w = recency_weights(dataset.order_time, half_life_days, now)
    per_order = sp.diags(w) @ dataset.baskets
    owner = sp.csr_matrix(
        (np.ones(dataset.n_orders, np.float32), (dataset.order_customer, np.arange(dataset.n_orders))),
        shape=(dataset.n_customers, dataset.n_orders),
    )
    return sp.csr_matrix(owner @ per_order, dtype=np.float32)


def content_profiles(weighted: sp.csr_matrix, embeddings: np.ndarray) -> np.ndarray:
    """Weighted mean embedding of each customer's purchases, L2-normalised (n × d)."""
    prof = np.asarray(weighted @ embeddings, dtype=np.float32)
    norm = np.linalg.norm(prof, axis=1, keepdims=True)
    return prof / np.maximum(norm, 1e-12)
