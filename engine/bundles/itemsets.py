"""Frequent-itemset baseline and the hold-out evaluation of bundles.

mlxtend is not a dependency: pairs come straight from the sparse pair counts
of ``CoPurchaseStats``; triples are counted only over the most frequent pairs
(Apriori's rule: a frequent triple's pairs are frequent), one sparse product
per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from engine.recommend.copurchase import CoPurchaseStats, copurchase_stats


@dataclass(frozen=True)
class Itemset:
    """A set of product indices bought together ``count`` times in ``n_orders``."""

    products: tuple[int, ...]
    product_ids: tuple[str, ...]
    count: int
    support: float
    lift: float


def frequent_itemsets(
    baskets: sp.spmatrix,
    product_ids: Sequence[str] | None = None,
    n: int = 20,
    sizes: Sequence[int] = (2, 3),
    min_count: int = 5,
    rank_by: str = "lift",
    shrinkage: float = 5.0,
    copurchase: CoPurchaseStats | None = None,
    max_pairs_for_triples: int = 300,
) -> list[Itemset]:
    """The ``n`` best itemsets of the given sizes bought together ≥ ``min_count``
    times, ranked by shrunk lift (``rank_by="lift"``) or count (``"support"``),
    ties broken by count then indices.

    Lift of a set = (C + m) / (E + m) with E the count expected if its products
    were bought independently (N·Π(N_i/N)) and m the shrinkage pseudo-count.
    """
    if rank_by not in ("lift", "support"):
        raise ValueError(f"rank_by must be 'lift' or 'support', got {rank_by!r}")
    if not set(sizes) <= {2, 3}:
        raise ValueError(f"sizes must be 2 and/or 3, got {list(sizes)}")
    b = sp.csc_matrix(baskets, dtype=np.float32)
    b.data[:] = 1.0
    cp = copurchase or copurchase_stats(b, shrinkage)
    n_orders = max(b.shape[0], 1)
    ids = (
        np.asarray(product_ids).astype(str)
        if product_ids is not None
        else np.arange(b.shape[1]).astype(str)
    )
    freq = cp.item_counts / n_orders
    found: list[tuple[tuple[int, ...], int, float]] = []

    upper = sp.triu(cp.counts, k=1).tocoo()
    keep = upper.data >= min_count
    pi, pj, pc = upper.row[keep], upper.col[keep], upper.data[keep].astype(np.int64)
    if 2 in sizes:
        expected = n_orders * freq[pi] * freq[pj]
        lift = (pc + cp.shrinkage) / (expected + cp.shrinkage)
        found += [
            ((int(i), int(j)), int(c), float(v))
            for i, j, c, v in zip(pi, pj, pc, lift, strict=True)
        ]
    if 3 in sizes and len(pc):
        top = np.argsort(-pc, kind="stable")[:max_pairs_for_triples]
        seen = set()
        for t in top:
            i, j = int(pi[t]), int(pj[t])
            both = b[:, i].multiply(b[:, j])  # orders holding i and j
            counts = np.asarray((both.T @ b).todense()).ravel()
            for k in np.flatnonzero(counts >= min_count):
                k = int(k)
                if k in (i, j):
                    continue
                key = tuple(sorted((i, j, k)))
                if key in seen:
                    continue
                seen.add(key)
                c = int(counts[k])
                expected = n_orders * freq[i] * freq[j] * freq[k]
                found.append((key, c, float((c + cp.shrinkage) / (expected + cp.shrinkage))))
    if rank_by == "lift":
        found.sort(key=lambda f: (-f[2], -f[1], f[0]))
    else:
        found.sort(key=lambda f: (-f[1], -f[2], f[0]))
    return [
        Itemset(
            products=key,
            product_ids=tuple(str(ids[p]) for p in key),
            count=c,
            support=c / n_orders,
            lift=v,
        )
        for key, c, v in found[:n]
    ]


def frequent_itemsets_by_segment(
    baskets: sp.spmatrix,
    order_segment: np.ndarray,
    n_segments: int,
    product_ids: Sequence[str] | None = None,
    n: int = 20,
    **options,
) -> list[list[Itemset]]:
    """``frequent_itemsets`` mined on each segment's own orders (``order_segment[k]``
    is the segment of order *k*'s customer): what each segment buys together most,
    a stronger reference than one list for everybody. ``options`` go to
    ``frequent_itemsets`` (sizes, min_count, rank_by, shrinkage); support and lift
    are within the segment's orders."""
    b = sp.csr_matrix(baskets)
    order_segment = np.asarray(order_segment)
    if len(order_segment) != b.shape[0]:
        raise ValueError(f"{b.shape[0]} orders but {len(order_segment)} order segments")
    return [
        frequent_itemsets(b[order_segment == s], product_ids, n=n, **options)
        for s in range(n_segments)
    ]


def evaluate_bundles(
    train_dataset,
    holdout_dataset,
    bundles: Sequence,
    min_together: int | None = 2,
) -> float:
    """Share of bundles with at least one hold-out order containing at least
    ``min_together`` of their products (None: all of them).

    ``bundles`` are Bundle or Itemset objects (anything with ``product_ids``)
    or plain sequences of product ids; ids are looked up in the hold-out
    catalogue, so the two datasets need not share indices (ids unknown to the
    hold-out count as never bought). ``train_dataset`` is only used to check
    that the bundles' ids come from its catalogue.
    """
    if not bundles:
        return 0.0
    known = set(map(str, train_dataset.product_ids))
    lookup = {str(p): i for i, p in enumerate(holdout_dataset.product_ids)}
    baskets = sp.csc_matrix(holdout_dataset.baskets)
    hits = 0
    for bundle in bundles:
        pids = [str(p) for p in getattr(bundle, "product_ids", bundle)]
        unknown = [p for p in pids if p not in known]
        if unknown:
            raise KeyError(f"bundle products not in the training catalogue: {unknown[:5]}")
        need = len(pids) if min_together is None else min(min_together, len(pids))
        cols = [lookup[p] for p in pids if p in lookup]
        if len(cols) < need:
            continue
        together = np.asarray(baskets[:, cols].sum(axis=1)).ravel()
        hits += bool((together >= need).any())
    return hits / len(bundles)


def order_coverage(
    holdout_dataset,
    bundles_by_segment: dict[int, Sequence],
    order_segment: np.ndarray,
    min_together: int | None = None,
) -> float:
    """Share of hold-out orders (of customers with a segment) that contain at
    least ``min_together`` (None: all) products of one of the bundles shown to
    their segment. A rate over orders, so it does not saturate the way
    "was this bundle ever bought" does on a busy shop.

    ``order_segment[k]`` is the segment of hold-out order *k*'s customer, -1 if none.
    """
    order_segment = np.asarray(order_segment)
    lookup = {str(p): i for i, p in enumerate(holdout_dataset.product_ids)}
    baskets = sp.csr_matrix(holdout_dataset.baskets)
    known = order_segment >= 0
    if not known.any():
        return 0.0
    hits = np.zeros(len(order_segment), bool)
    for segment, bundles in bundles_by_segment.items():
        rows = np.flatnonzero(order_segment == segment)
        if not len(rows):
            continue
        sub = sp.csc_matrix(baskets[rows])
        for bundle in bundles:
            pids = [str(p) for p in getattr(bundle, "product_ids", bundle)]
            need = len(pids) if min_together is None else min(min_together, len(pids))
            cols = [lookup[p] for p in pids if p in lookup]
            if len(cols) < need:
                continue
            together = np.asarray(sub[:, cols].sum(axis=1)).ravel()
            hits[rows[together >= need]] = True
    return float(hits[known].mean())
