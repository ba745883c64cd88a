"""Joint interest: which products a visitor is in the market for, together.

Co-purchase far above chance means the same visitors are in the market for
both products. Interest is modelled as *needs* (a common-shock model): each
subset T of a bundle's products is a need that fires for a visitor with
probability λ_T, independently of the others, and a visitor is in the market
for product i when any need containing i fires. With needs for every single
product, every pair and the whole bundle (for bundles of up to 4 products
that is every subset), the model can reproduce any positive association: the
probability of being in the market for all of a subset V is

    a_V = Σ_{W ⊆ V} (−1)^|W| · P(none of W),   P(none of W) = Π_{T ∩ W ≠ ∅} (1 − λ_T),

so −ln P(none of W) is linear in θ_T = −ln(1 − λ_T), and the needs follow from
the targets a_V by one non-negative least-squares solve.

The targets come from the market's ``lift``: the lift L_V of wanting all of V
over wanting them independently (a_V = L_V · Π q_i, q the single-product
interest). ``VisitLift`` reads it from the data (the segment's share of visits
that buy all of V over the product of the single shares, shrunk towards 1
where few visits say so); the sample market's ground truth gives the planted
needs exactly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls

FULL_FAMILY_MAX = 4  # bundles up to this size get a need for every subset


@functools.lru_cache(maxsize=16)
def need_family(size: int) -> np.ndarray:
    """(M, size) bool: the subsets that are needs for a bundle of ``size`` products,
    singles first (so a market without joint interest draws the same singles)."""
    if size <= FULL_FAMILY_MAX:
        subsets = [c for r in range(1, size + 1) for c in itertools.combinations(range(size), r)]
    else:
        subsets = [c for r in (1, 2) for c in itertools.combinations(range(size), r)]
        subsets.append(tuple(range(size)))
    out = np.zeros((len(subsets), size), bool)
    for m, c in enumerate(subsets):
        out[m, list(c)] = True
    out.setflags(write=False)
    return out


def _none_matrix(family: np.ndarray) -> np.ndarray:
    """(M, M): row W, column T is 1 when need T touches W (−ln P(none of W) = A θ)."""
    return (family.astype(np.int64) @ family.T.astype(np.int64) > 0).astype(float)


def _alternate(values: dict[int, float], idx: Sequence[int]) -> float:
    """1 + Σ over non-empty W ⊆ idx of (−1)^|W| values[W]: turns P(none of W) into
    P(all of V) and back (inclusion–exclusion is its own inverse)."""
    total = 1.0
    for r in range(1, len(idx) + 1):
        for w in itertools.combinations(idx, r):
            total += (-1) ** r * values[_mask(w)]
    return total


def _mask(items) -> int:
    return int(sum(1 << int(i) for i in items))


def fit_needs(q: np.ndarray, lift: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Need rates for one bundle: (family (M, K) bool, λ (M,)).

    q : (K,) probability of being in the market for each product.
    lift : bitmask of a subset (two or more products) → L_V, the lift of wanting
        all of V over wanting them independently; absent subsets are 1.
    The targets are clipped to what a positive association allows (between
    independence and the rarest product's interest); the fit then matches the
    singles exactly and the larger subsets as closely as the needs can.
    """
    q = np.clip(np.asarray(q, float), 0.0, 1.0 - 1e-9)
    k = len(q)
    family = need_family(k)
    if k == 1 or not any(v > 1.0 for v in lift.values()):
        rates = np.where(family.sum(axis=1) == 1, family.astype(float) @ q, 0.0)
        return family, rates
    target = {}
    for v in family:
        idx = np.flatnonzero(v)
        indep = float(np.prod(q[idx]))
        ceiling = float(q[idx].min())
        if len(idx) == 1:
            target[_mask(idx)] = float(q[idx[0]])
        else:
            target[_mask(idx)] = min(max(indep * lift.get(_mask(idx), 1.0), indep), ceiling)
    if k <= FULL_FAMILY_MAX:
        # every subset is a target: P(none of W) by inclusion–exclusion, then A θ = −ln
        none = np.array([min(max(_alternate(target, np.flatnonzero(w)), 1e-12), 1.0)
                         for w in family])
        theta, _ = nnls(_none_matrix(family), -np.log(none))
    else:
        theta = _fit_partial(family, q, target)
    return family, _match_singles(family, -np.expm1(-theta), q)


def _match_singles(family: np.ndarray, rates: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Single needs re-solved so that each product's interest is exactly ``q``
    (the singles are what calibration matched; targets that could not all be met
    give way in the larger subsets)."""
    rates = rates.copy()
    single = family.sum(axis=1) == 1
    for m in np.flatnonzero(single):
        i = int(np.flatnonzero(family[m])[0])
        groups = family[:, i] & ~single
        rest = float(np.prod(1.0 - rates[groups]))
        rates[m] = max(1.0 - (1.0 - q[i]) / rest, 0.0) if rest > 0 else 0.0
    return rates


def _fit_partial(family: np.ndarray, q: np.ndarray, target: dict[int, float]) -> np.ndarray:
    """Large bundles (singles, pairs and the whole set as needs): least squares on
    the targets' logs, from independence."""
    from scipy.optimize import least_squares

    masks = [_mask(np.flatnonzero(v)) for v in family]
    obs = np.log(np.array([target[m] for m in masks]))

    def predicted(theta):
        lam = -np.expm1(-theta)
        return np.log(np.maximum(all_wanted(family, lam), 1e-15))

    start = np.where(family.sum(axis=1) == 1, -np.log1p(-(family.astype(float) @ q)), 0.0)
    fit = least_squares(lambda t: predicted(t) - obs, start, bounds=(0.0, np.inf))
    return fit.x


def all_wanted(family: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """P(in the market for all of V) for each need V of ``family`` given its rates."""
    k = family.shape[1]
    none = {}
    for r in range(1, k + 1):
        for w in itertools.combinations(range(k), r):
            touch = family[:, list(w)].any(axis=1)
            none[_mask(w)] = float(np.prod(1.0 - rates[touch]))
    return np.array([_alternate(none, np.flatnonzero(v)) for v in family])


class VisitLift:
    """The lift of buying all of a set of products in one visit, per segment,
    over buying them independently: (n_V / N) / Π (n_i / N), with the count n_V
    shrunk towards its independence expectation by ``shrinkage`` pseudo-visits.

    visits : (n_visits, P) sparse 0/1, one row per visit (customer-week);
    segment_of_visit : (n_visits,) segment of each visit.
    """

    def __init__(self, visits: sp.spmatrix, segment_of_visit: np.ndarray, n_segments: int,
                 shrinkage: float = 20.0) -> None:
        csc = sp.csc_matrix(visits, dtype=np.int8)
        csc.sum_duplicates()
        csc.sort_indices()
        self._indptr, self._rows = csc.indptr, csc.indices
        self._seg = np.asarray(segment_of_visit, np.int64)
        self.n_segments = int(n_segments)
        self.n_visits = np.bincount(self._seg, minlength=n_segments).astype(float)
        self.shrinkage = float(shrinkage)
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def single_counts(self) -> np.ndarray:
        """(S, P) visits per segment that bought each product."""
        per_product = np.diff(self._indptr)
        product = np.repeat(np.arange(len(per_product)), per_product)
        out = np.zeros((self.n_segments, len(per_product)))
        np.add.at(out, (self._seg[self._rows], product), 1.0)
        return out

    def _visit_rows(self, i: int) -> np.ndarray:
        return self._rows[self._indptr[i]:self._indptr[i + 1]]

    def counts(self, items: Sequence[int]) -> np.ndarray:
        """(S,) visits per segment that bought every product of ``items``."""
        key = tuple(sorted(int(i) for i in items))
        if key not in self._cache:
            rows = self._visit_rows(key[0])
            for i in key[1:]:
                rows = np.intersect1d(rows, self._visit_rows(i), assume_unique=True)
            self._cache[key] = np.bincount(self._seg[rows], minlength=self.n_segments)
            if len(self._cache) > 200_000:
                self._cache.clear()
        return self._cache[key]

    def shares(self, items: Sequence[int]) -> np.ndarray:
        """(S,) unshrunk share of each segment's visits that bought all of ``items``."""
        return self.counts(items) / np.maximum(self.n_visits, 1.0)

    def __call__(self, segment: int, items: Sequence[int]) -> float:
        n = max(self.n_visits[segment], 1.0)
        singles = np.array([self.counts([i])[segment] for i in items], float) / n
        indep = float(np.prod(singles))
        if indep <= 0:
            return 1.0
        observed = float(self.counts(items)[segment])
        shrunk = (observed + self.shrinkage * indep) / (n + self.shrinkage)
        return max(shrunk / indep, 1.0)


def bundle_needs(q_items: np.ndarray, lift, segment: int,
                 items: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(family, rates) of one bundle: needs fitted to the market's lift of every
    subset of two or more of its products (``lift`` None: independent interest)."""
    items = [int(i) for i in items]
    family = need_family(len(items))
    lifts = {}
    if lift is not None:
        for v in family:
            idx = np.flatnonzero(v)
            if len(idx) > 1:
                lifts[_mask(idx)] = float(lift(segment, [items[j] for j in idx]))
    return fit_needs(q_items, lifts)
