"""Held-out evaluation of bundles: were the recommended bundles bought together
in orders placed after the training period?

A bundle here is recommended *to a segment*: ``(segment, product indices)``.
Four measures:

together_rate
    per (segment, bundle) recommendation, the share of the segment's hold-out
    orders that hold all the bundle's products, averaged over recommendations:
    how often the segment bought the bundle together. A rate, so it does not
    saturate (returning customers only: their segment is the one fitted on the
    training period).
bought_by_segment
    share of recommendations whose products were all bought in at least one
    hold-out order of a customer of that segment. Closest to the words
    "bought together in hold-out orders", but with hundreds of orders per
    segment good bundles nearly all pass, so it saturates near 1.
orders_covered
    share of returning customers' hold-out orders that hold at least
    ``min_together`` products of one of their segment's bundles.
bought_anywhere
    share of distinct bundles whose products were all bought in one hold-out
    order of anybody. On a busy shop with long baskets this saturates: almost
    any popular pair turns up somewhere.

All functions take the hold-out baskets (orders × products, in the training
catalogue's columns) and plain arrays, so they can be checked on tiny data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

Recommendation = tuple[int, Sequence[int]]  # (segment, product indices)


def order_segments(
    holdout_customers: Sequence, order_customer: np.ndarray, train_customers: Sequence,
    train_labels: np.ndarray,
) -> np.ndarray:
    """Segment of each hold-out order's customer as fitted on the training period;
    -1 for customers new in the hold-out.

    ``holdout_customers`` are the hold-out dataset's customer ids,
    ``order_customer[k]`` indexes them for order *k*; ``train_labels[i]`` is the
    segment of ``train_customers[i]``.
    """
    if len(train_customers) != len(train_labels):
        raise ValueError(
            f"{len(train_customers)} training customers but {len(train_labels)} segment labels"
        )
    lookup = pd.Series(np.asarray(train_labels, np.int64), index=pd.Index(train_customers))
    per_customer = lookup.reindex(pd.Index(holdout_customers)).fillna(-1).astype(np.int64)
    return per_customer.to_numpy()[np.asarray(order_customer, np.int64)]


def _together(baskets: sp.csc_matrix, products: Sequence[int]) -> np.ndarray:
    """(orders,) number of the given products in each order."""
    cols = np.unique(np.asarray(products, np.int64))
    block = baskets[:, cols]
    return np.asarray((block > 0).sum(axis=1)).ravel()


def _checked(baskets, order_segment) -> tuple[sp.csc_matrix, np.ndarray]:
    b = sp.csc_matrix(baskets)
    seg = np.asarray(order_segment, np.int64)
    if len(seg) != b.shape[0]:
        raise ValueError(f"{b.shape[0]} hold-out orders but {len(seg)} order segments")
    return b, seg


def bought_by_segment(
    baskets: sp.spmatrix, order_segment: np.ndarray, recommendations: Iterable[Recommendation]
) -> np.ndarray:
    """(n,) bool per recommendation: all its products in one hold-out order of a
    customer of the segment it was recommended to."""
    b, seg = _checked(baskets, order_segment)
    out = []
    for segment, products in recommendations:
        rows = seg == int(segment)
        need = len(np.unique(np.asarray(products)))
        out.append(bool(rows.any() and (_together(b, products)[rows] >= need).any()))
    return np.array(out, bool)


def together_rate(
    baskets: sp.spmatrix, order_segment: np.ndarray, recommendations: Iterable[Recommendation]
) -> np.ndarray:
    """(n,) per recommendation: share of its segment's hold-out orders holding all
    its products (0 when the segment placed no hold-out order)."""
    b, seg = _checked(baskets, order_segment)
    out = []
    for segment, products in recommendations:
        rows = seg == int(segment)
        need = len(np.unique(np.asarray(products)))
        out.append(float((_together(b, products)[rows] >= need).mean()) if rows.any() else 0.0)
    return np.array(out, float)


def bought_anywhere(baskets: sp.spmatrix, bundles: Iterable[Sequence[int]]) -> np.ndarray:
    """(n,) bool per bundle: all its products in one hold-out order of anybody."""
    b = sp.csc_matrix(baskets)
    out = []
    for products in bundles:
        need = len(np.unique(np.asarray(products)))
        out.append(bool((_together(b, products) >= need).any()))
    return np.array(out, bool)


def orders_covered(
    baskets: sp.spmatrix,
    order_segment: np.ndarray,
    recommendations: Iterable[Recommendation],
    min_together: int = 2,
) -> float:
    """Share of returning customers' hold-out orders (segment ≥ 0) holding at least
    ``min_together`` products (all of a smaller bundle) of one of their segment's
    bundles."""
    b, seg = _checked(baskets, order_segment)
    known = seg >= 0
    if not known.any():
        return 0.0
    hit = np.zeros(len(seg), bool)
    for segment, products in recommendations:
        rows = seg == int(segment)
        need = min(min_together, len(np.unique(np.asarray(products))))
        hit |= rows & (_together(b, products) >= need)
    return float(hit[known].mean())


@dataclass(frozen=True)
class HoldoutScores:
    """The four measures for one method's recommendations."""

    together_rate: float
    bought_by_segment: float
    orders_covered: float
    bought_anywhere: float
    n_recommendations: int
    n_distinct: int


def score_recommendations(
    baskets: sp.spmatrix,
    order_segment: np.ndarray,
    recommendations: Sequence[Recommendation],
    min_together: int = 2,
) -> HoldoutScores:
    """All four measures (see the module docstring) for one list of recommendations."""
    recs = [(int(s), tuple(sorted(int(p) for p in items))) for s, items in recommendations]
    if not recs:
        return HoldoutScores(0.0, 0.0, 0.0, 0.0, 0, 0)
    distinct = sorted({items for _, items in recs})
    return HoldoutScores(
        together_rate=float(together_rate(baskets, order_segment, recs).mean()),
        bought_by_segment=float(bought_by_segment(baskets, order_segment, recs).mean()),
        orders_covered=orders_covered(baskets, order_segment, recs, min_together),
        bought_anywhere=float(bought_anywhere(baskets, distinct).mean()),
        n_recommendations=len(recs),
        n_distinct=len(distinct),
    )
