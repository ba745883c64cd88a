"""Exhaustive bundle search: every allowed set of size kmin..kmax, the yardstick
the beam search is measured against on catalogues small enough to enumerate."""

from __future__ import annotations

import itertools
import math

import numpy as np

from engine.bundles.beam import (
    BeamConfig,
    _connected,
    affinity_floor,
    allowed_products,
    anchor_indices,
)
from engine.bundles.objective import Bundle, BundleInputs, ProfitFn, score_bundle

MAX_SETS = 3_000_000


def count_sets(n_free: int, n_anchor: int, kmin: int, kmax: int) -> int:
    return sum(math.comb(n_free, k - n_anchor) for k in range(max(kmin, n_anchor), kmax + 1))


def exhaustive_search(
    inputs: BundleInputs,
    config: BeamConfig,
    segment: int,
    profit_fn: ProfitFn | None = None,
    max_sets: int = MAX_SETS,
) -> list[Bundle]:
    """The ``config.n_bundles`` best sets for ``segment`` under the same objective
    and constraints as the beam (no diversity thinning), best first.

    Raises ValueError when there are more than ``max_sets`` sets to score.
    """
    w = config.weights
    anchors = anchor_indices(inputs, config)
    free = np.flatnonzero(allowed_products(inputs, config))
    n_sets = count_sets(len(free), len(anchors), config.kmin, config.kmax)
    if n_sets > max_sets:
        raise ValueError(
            f"exhaustive search would score {n_sets:,} sets (> {max_sets:,}); "
            "use a smaller catalogue, fewer products or a smaller kmax, or the beam search"
        )
    items = np.concatenate([anchors, free])
    naff = inputs.norm_affinity(np.array([segment]))
    aff = naff[0, items]
    floor = affinity_floor(config, naff)[0]
    prof = inputs.unit_profit(naff, w)[0, items]
    comp, sub, lift = inputs.pair_terms(items, w)
    ok = ~sub
    if config.one_per_category:
        cat = inputs.category[items]
        ok &= ~((cat[:, None] == cat[None, :]) & (cat[:, None] >= 0))
    price = inputs.price[items]
    a = len(anchors)
    best: list[tuple[float, tuple[str, ...], tuple[int, ...]]] = []
    for k in range(max(config.kmin, a), config.kmax + 1):
        rest = np.array(list(itertools.combinations(range(a, len(items)), k - a)), dtype=np.int64)
        rest = rest.reshape(-1, k - a)
        sets = np.concatenate([np.broadcast_to(np.arange(a), (len(rest), a)), rest], axis=1)
        if len(sets) == 0:
            continue
        total = _totals(sets, aff, prof, comp, w)
        valid = _valid(sets, ok, lift, price, config, a)
        if k > a:  # the affinity rule on the free products' mean
            valid &= aff[sets[:, a:]].mean(1) >= floor
        if profit_fn is not None:
            for r in np.flatnonzero(valid):
                products = tuple(sorted(int(items[i]) for i in sets[r]))
                total[r] += w.profit * (
                    profit_fn(segment, products) / inputs.price_scale() - prof[sets[r]].sum()
                )
        total = np.where(valid, total, -np.inf)
        # only the best few (and anything tied with them) need ids for the tie-break
        top = np.argsort(-total, kind="stable")[: config.n_bundles]
        if len(top):
            cut = total[top[-1]]
            top = np.flatnonzero((total >= cut) & valid)
        for r in top:
            products = tuple(sorted(int(items[i]) for i in sets[r]))
            ids = tuple(str(inputs.product_ids[p]) for p in products)
            best.append((-float(total[r]), ids, products))
        best.sort()
        del best[config.n_bundles :]
    return [score_bundle(inputs, segment, p, w, profit_fn) for _, _, p in best]


def _totals(sets, aff, prof, comp, w) -> np.ndarray:
    k = sets.shape[1]
    pair_sum = np.zeros(len(sets))
    for i, j in itertools.combinations(range(k), 2):
        pair_sum += comp[sets[:, i], sets[:, j]]
    n_pairs = max(k * (k - 1) / 2, 1)
    return (
        w.affinity * aff[sets].sum(1) / k
        + w.complementarity * pair_sum / n_pairs
        + w.profit * prof[sets].sum(1)
    )


def _valid(sets, ok, lift, price, config: BeamConfig, n_anchor: int) -> np.ndarray:
    k = sets.shape[1]
    valid = np.ones(len(sets), bool)
    for i, j in itertools.combinations(range(k), 2):
        valid &= ok[sets[:, i], sets[:, j]]
    total = price[sets].sum(1)
    if config.price_min is not None:
        valid &= total >= config.price_min - 1e-9
    if config.price_max is not None:
        valid &= total <= config.price_max + 1e-9
    if config.min_complementarity is not None:
        link = lift[sets[:, :, None], sets[:, None, :]] >= config.min_complementarity
        link[:, np.arange(k), np.arange(k)] = False
        seed = np.zeros((len(sets), k), bool)
        seed[:, : max(n_anchor, 1)] = True
        valid &= _connected(link, seed)
    return valid
