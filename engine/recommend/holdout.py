"""The temporal hold-out and how a ranking scores against it (Recall@K, NDCG@K).

The evaluation (``evaluate``) measures the models on this split, and the
hybrid's weight tuning (``hybrid.tune_weights``) picks its weights on one
inside the training history; engine/recommend/evaluate.py describes the
protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import columns as C
from engine.errors import DataValidationError, Issue


@dataclass(frozen=True)
class HoldoutSplit:
    """Training dataset and the hold-out targets (indices in ``train``)."""

    train: object  # Dataset
    cut: pd.Timestamp
    test_customers: np.ndarray
    targets: list[np.ndarray]
    cold_products: np.ndarray
    cold_customers: np.ndarray
    cold_targets: list[np.ndarray]
    cold_train: object = None  # Dataset the cold-start hybrid is fitted on
    cold_simulated: bool = False
    # the next-purchase protocol: everything each customer bought in the window
    next_customers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    next_targets: list = field(default_factory=list)


def holdout_split(
    dataset, holdout_weeks: int = 8, min_cold: int = 10, cold_share: float = 0.3, seed: int = 0,
    with_cold: bool = True,
) -> HoldoutSplit:
    """Split the order lines at ``holdout_weeks`` weeks before the last order
    (``with_cold=False``: without the cold-start part, as the weight tuning needs)."""
    lines = dataset.lines
    ts = lines[C.TIMESTAMP]
    cut = ts.max() - pd.Timedelta(weeks=holdout_weeks)
    before = (ts < cut).to_numpy()
    if before.all() or not before.any():
        raise DataValidationError([Issue(
            "order lines", C.TIMESTAMP, "holdout",
            f"a {holdout_weeks}-week hold-out leaves no training or no test lines "
            f"(orders from {ts.min()} to {ts.max()})",
            hint="choose fewer hold-out weeks or load a longer history",
        )])
    train = dataset.subset_lines(before)
    seen = train.matrix > 0
    after = lines.loc[~before, [C.CUSTOMER_ID, C.PRODUCT_IDX]]
    after = after[after[C.CUSTOMER_ID].isin(train.customers[C.CUSTOMER_ID])]
    cidx = train.customer_index(after[C.CUSTOMER_ID].to_numpy()) if len(after) else np.zeros(0, int)
    pairs = pd.DataFrame({"c": cidx, "p": after[C.PRODUCT_IDX].to_numpy()}).drop_duplicates()
    nc, nt = _group(pairs)
    new = ~np.asarray(seen[pairs["c"].to_numpy(), pairs["p"].to_numpy()]).ravel().astype(bool)
    pairs = pairs[new]
    tc, tt = _group(pairs)
    if not with_cold:
        return HoldoutSplit(train, cut, tc, tt, np.zeros(0, np.int64), np.zeros(0, np.int64), [],
                            next_customers=nc, next_targets=nt)
    sold_before = np.asarray(train.matrix.sum(axis=0)).ravel() > 0
    cold = np.setdiff1d(pairs["p"].unique(), np.flatnonzero(sold_before))
    cold_train, simulated = train, False
    if len(cold) < min_cold:
        sold_in_window = np.unique(pairs["p"].to_numpy())
        n_hide = max(min_cold, int(cold_share * len(sold_in_window)))
        rng = np.random.default_rng(seed)
        cold = np.sort(rng.choice(sold_in_window, size=min(n_hide, len(sold_in_window)), replace=False))
        keep = ~train.lines[C.PRODUCT_IDX].isin(cold).to_numpy()
        cold_train, simulated = train.subset_lines(keep), True
    cold_pairs = pairs[pairs["p"].isin(cold)]
    # cold-start customers must exist in the dataset the cold model is fitted on
    ids = train.customer_ids[cold_pairs["c"].to_numpy()]
    has = pd.Index(cold_train.customer_ids).get_indexer(ids)
    cold_pairs = pd.DataFrame({"c": has, "p": cold_pairs["p"].to_numpy()})[has >= 0]
    cc, ct = _group(cold_pairs)
    return HoldoutSplit(train, cut, tc, tt, np.sort(cold), cc, ct, cold_train, simulated, nc, nt)


def _group(pairs: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    groups = pairs.groupby("c")["p"]
    return np.asarray(list(groups.groups.keys()), np.int64), [np.sort(g.to_numpy()) for _, g in groups]


def ranking_metrics(top: np.ndarray, targets: list[np.ndarray], k: int) -> tuple[float, float]:
    """Mean Recall@k and NDCG@k of ranked lists ``top`` (n × ≥k) against target sets."""
    if len(targets) == 0:
        return float("nan"), float("nan")
    top = np.asarray(top)[:, :k]
    n, width = top.shape
    # one membership test for every (row, product) pair at once: codes row · P + product
    span = int(max(top.max(initial=0), max((t.max(initial=0) for t in targets), default=0))) + 1
    sizes = np.array([len(t) for t in targets])
    codes = np.repeat(np.arange(n), sizes) * span + np.concatenate(targets).astype(np.int64)
    hit = np.isin(np.arange(n)[:, None] * span + top, codes)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_ideal = np.minimum(k, sizes)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[n_ideal]
    recall = hit.sum(axis=1) / n_ideal
    ndcg = (hit * discount[:width]).sum(axis=1) / ideal
    return float(recall.mean()), float(ndcg.mean())
