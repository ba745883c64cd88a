"""Beam search for bundles, vectorised across segments with torch.

Per segment the catalogue is first cut to M candidates: half by the
segment's own score (affinity and profit proxy), the rest by that score plus
the best complementarity with those first picks (so a product that is rarely
a favourite but is bought with favourites still gets in). Anchors are always
candidates; excluded and (if asked) out-of-stock products never are.

States are (S, W, k) tensors of candidate positions. Size 1 starts from every
candidate (or from the anchors); each step adds one candidate to every state,
scores all (S, W, M) expansions with batched gathers from an (S, M, M) pair
matrix, drops those that break a constraint, merges permutations of the same
set (keyed by a sum of random per-candidate codes, so order does not matter)
and keeps the best W. Every state of size kmin..kmax is a finished bundle;
without the pricing stage the finished pool is ranked by the objective and
thinned for diversity: no two returned bundles share more than
``max_overlap`` of the smaller one's products, ``n_bundles`` per segment.
With it (``profit_fn`` and the segments' ``visitors``) the pool is ranked by
the objective with that profit in it, and a segment gets, in that order, each
bundle that adds more than ``min_added_profit`` per period: its gain against
the singles at its best price (``profit_fn``), less its cannibalisation of the
bundles already chosen for the segment (up to ``n_bundles``; the same
diversity rule). Ranking by the added profit alone picks worse bundles on the
sample market (0.82 of the planted groups' true gain against 0.93), because
willingness to pay read from order lines misjudges single bundles' gains;
the objective's lift and affinity steady it. The simulator prices
each bundle on its own, so cannibalisation is estimated: a bundle sharing
products with an earlier one loses the smaller of the two gains times the
share of its products the earlier one holds (0 for disjoint bundles, where
the market's additive surplus makes the gains add exactly).

Constraints (the same rules ``check_bundle`` and the exhaustive search use):
size kmin..kmax; every anchor in; nothing excluded; in stock if asked; list
total within [price_min, price_max]; at most one product per category if
asked (products without a category never conflict); no substitute pairs;
with ``min_complementarity`` (a shrunk lift), every product is linked to the
anchors (or, without anchors, to the rest) through pairs whose lift is at
least that, i.e. the bundle grows one complementary product at a time; with
``min_affinity_ratio`` (default 1), the segment likes the products besides the
anchors on average at least that many times as much as its average product.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from engine import columns as C
from engine.bundles.objective import (
    LOG_LIFT_MAX,
    Bundle,
    BundleInputs,
    ObjectiveWeights,
    ProfitFn,
    score_bundle,
)
from engine.device import choose_device

log = logging.getLogger(__name__)

NEG = -math.inf


@dataclass(frozen=True)
class BeamConfig:
    """Settings of the bundle search, checked on creation.

    anchor / exclude are product ids. ``min_complementarity`` is a shrunk
    lift (e.g. 1.5), None for no such rule. ``min_affinity_ratio``: the
    segment must like the bundle's products (those besides the anchors) on
    average at least this many times as much as its average product (1.0 by
    default; None: no such rule), so a strong pair the segment does not want is
    not offered to it, while a product it rarely buys may still join a
    favourite. With the pricing stage's profit (``profit_fn`` and the segments'
    visitors), a segment is offered bundles while the next one adds more than
    ``min_added_profit`` per period (its own gain against the singles, less
    what it takes from the segment's bundles already chosen), at most
    ``n_bundles``; without it, ``n_bundles`` each. ``text_substitutes``: the pipeline gives the search the products'
    text embeddings, so alike products rarely bought together are never bundled
    (False: no text test, no encoding needed). ``seed`` is kept for the pipeline's uniform configs; the search
    itself is deterministic (ties go to the earlier candidate, final ties to the
    smaller product ids).
    """

    kmin: int = 2
    kmax: int = 3
    beam_width: int = 20
    candidates: int = 60
    n_bundles: int = 10
    min_added_profit: float = 0.0
    anchor: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    one_per_category: bool = False
    min_complementarity: float | None = None
    in_stock_only: bool = False
    price_min: float | None = None
    price_max: float | None = None
    max_overlap: float = 0.5
    min_affinity_ratio: float | None = 1.0
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    text_substitutes: bool = True
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor", tuple(str(a) for a in self.anchor))
        object.__setattr__(self, "exclude", tuple(str(a) for a in self.exclude))
        problems = []
        if not isinstance(self.kmin, int) or self.kmin < 2:
            problems.append(
                f"kmin must be an integer ≥ 2 (a bundle has 2+ products), got {self.kmin}"
            )
        if not isinstance(self.kmax, int) or self.kmax < self.kmin:
            problems.append(f"kmax must be an integer ≥ kmin ({self.kmin}), got {self.kmax}")
        elif self.kmax > 8:
            problems.append(f"kmax must be ≤ 8, got {self.kmax}")
        if not isinstance(self.beam_width, int) or self.beam_width < 1:
            problems.append(f"beam_width must be an integer ≥ 1, got {self.beam_width}")
        if not isinstance(self.candidates, int) or self.candidates < 2:
            problems.append(f"candidates must be an integer ≥ 2, got {self.candidates}")
        elif self.candidates > 4096:
            problems.append(f"candidates must be ≤ 4096, got {self.candidates}")
        elif isinstance(self.kmax, int) and (self.candidates + 8) ** (self.kmax + 1) >= 2**62:
            problems.append(
                f"candidates={self.candidates} with kmax={self.kmax} is too large a search; "
                "lower candidates"
            )
        if not isinstance(self.n_bundles, int) or self.n_bundles < 1:
            problems.append(f"n_bundles must be an integer ≥ 1, got {self.n_bundles}")
        if not (self.min_added_profit >= 0 and math.isfinite(self.min_added_profit)):
            problems.append(
                f"min_added_profit must be a finite number ≥ 0, got {self.min_added_profit}")
        if len(set(self.anchor)) != len(self.anchor):
            problems.append(f"anchor lists a product twice: {list(self.anchor)}")
        if isinstance(self.kmax, int) and len(self.anchor) > self.kmax:
            problems.append(f"anchor has {len(self.anchor)} products, more than kmax={self.kmax}")
        both = sorted(set(self.anchor) & set(self.exclude))
        if both:
            problems.append(f"anchor and exclude both list {both}")
        if self.min_complementarity is not None and not self.min_complementarity > 0:
            problems.append(
                f"min_complementarity is a lift and must be > 0, got {self.min_complementarity}"
            )
        for name in ("price_min", "price_max"):
            v = getattr(self, name)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                problems.append(f"{name} must be a finite number ≥ 0, got {v}")
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            problems.append(f"price_min ({self.price_min}) is above price_max ({self.price_max})")
        if not 0 <= self.max_overlap <= 1:
            problems.append(f"max_overlap is a share in [0, 1], got {self.max_overlap}")
        if self.min_affinity_ratio is not None and not (
            self.min_affinity_ratio >= 0 and math.isfinite(self.min_affinity_ratio)
        ):
            problems.append(
                f"min_affinity_ratio must be a finite number ≥ 0, got {self.min_affinity_ratio}"
            )
        w = self.weights
        if not 0 <= w.discount < 1:
            problems.append(f"weights.discount must be in [0, 1), got {w.discount}")
        if not 0 <= w.default_margin <= 1:
            problems.append(f"weights.default_margin must be in [0, 1], got {w.default_margin}")
        if problems:
            raise ValueError("BeamConfig: " + "; ".join(problems))


# ---------------------------------------------------------------- constraints


def allowed_products(inputs: BundleInputs, config: BeamConfig) -> np.ndarray:
    """(P,) bool: products that may join a bundle besides the anchors."""
    ok = np.ones(inputs.n_products, bool)
    if config.exclude:
        ok[inputs.index_of(config.exclude)] = False
    if config.in_stock_only:
        ok &= inputs.in_stock.astype(bool)
    if config.price_max is not None:
        ok &= inputs.price <= config.price_max
    ok[anchor_indices(inputs, config)] = False
    return ok


def affinity_floor(config: BeamConfig, norm_aff: np.ndarray) -> np.ndarray:
    """(S,) the least mean normalised affinity a bundle's free products may have per
    segment (rows of ``norm_aff``): ``min_affinity_ratio`` × the segment's mean."""
    if config.min_affinity_ratio is None:
        return np.full(len(norm_aff), -np.inf)
    return config.min_affinity_ratio * norm_aff.mean(axis=1) - 1e-12


def anchor_indices(inputs: BundleInputs, config: BeamConfig) -> np.ndarray:
    idx = inputs.index_of(config.anchor) if config.anchor else np.zeros(0, np.int64)
    if config.in_stock_only and len(idx) and not inputs.in_stock[idx].all():
        gone = [str(inputs.product_ids[i]) for i in idx if not inputs.in_stock[i]]
        raise ValueError(f"anchor products {gone} are out of stock but in_stock_only is set")
    return idx


def check_bundle(
    inputs: BundleInputs, config: BeamConfig, products: Sequence[int], segment: int | None = None
) -> list[str]:
    """The constraints a set of product indices breaks (empty list: none); the
    affinity rule only when the ``segment`` is given."""
    idx = np.array(sorted(int(p) for p in products), dtype=np.int64)
    broken = []
    if not config.kmin <= len(idx) <= config.kmax:
        broken.append(f"size {len(idx)} outside {config.kmin}..{config.kmax}")
    anchors = anchor_indices(inputs, config)
    if not set(anchors) <= set(idx):
        broken.append("an anchor is missing")
    if config.exclude and set(inputs.index_of(config.exclude)) & set(idx):
        broken.append("an excluded product is in")
    if config.in_stock_only and not inputs.in_stock[idx].all():
        broken.append("an out-of-stock product is in")
    total = inputs.price[idx].sum()
    if config.price_min is not None and total < config.price_min - 1e-9:
        broken.append(f"list total {total:.2f} under price_min")
    if config.price_max is not None and total > config.price_max + 1e-9:
        broken.append(f"list total {total:.2f} over price_max")
    cats = inputs.category[idx]
    cats = cats[cats >= 0]
    if config.one_per_category and len(set(cats)) < len(cats):
        broken.append("two products share a category")
    _, sub, lift = inputs.pair_terms(idx, config.weights)
    if sub.any():
        broken.append("contains substitutes")
    if config.min_complementarity is not None:
        link = lift >= config.min_complementarity
        np.fill_diagonal(link, False)
        seed = np.isin(idx, anchors) if len(anchors) else np.arange(len(idx)) == 0
        if not _connected(link[None], seed[None])[0]:
            broken.append("not linked by complementary pairs")
    free = np.setdiff1d(idx, anchors)
    if segment is not None and len(free):
        naff = inputs.norm_affinity(np.array([segment]))
        if naff[0, free].mean() < affinity_floor(config, naff)[0]:
            broken.append("the segment likes these products less than its average product")
    return broken


def _connected(link: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """(N, k, k) adjacency and (N, k) start sets → (N,) all nodes reachable."""
    reach = seed.astype(bool)
    for _ in range(link.shape[1]):
        reach = reach | np.einsum("nij,nj->ni", link, reach).astype(bool)
    return reach.all(axis=1)


# ---------------------------------------------------------------- candidates


def _candidates(
    inputs: BundleInputs,
    config: BeamConfig,
    unary: np.ndarray,
    allowed: np.ndarray,
    anchors: np.ndarray,
) -> np.ndarray:
    """(S, M) product indices per segment: anchors first, then the rest ascending."""
    pool = np.flatnonzero(allowed)
    m = min(config.candidates, len(pool))
    if m + len(anchors) < config.kmin:
        raise ValueError(
            f"only {len(pool)} products are allowed (after exclude/stock/price rules) "
            f"besides {len(anchors)} anchors; kmin={config.kmin} cannot be met"
        )
    cp = inputs.copurchase
    first_n = max(1, m // 2)
    S, P = unary.shape
    score = np.where(allowed[None, :], unary, -np.inf)
    first = np.argsort(-score, axis=1, kind="stable")[:, :first_n]
    # complementarity of every product with each segment's first picks, from sparse
    # counts only (pairs never bought together have lift ≤ 1, so they add no boost),
    # one sparse slice for all segments
    seeds = np.concatenate([first, np.broadcast_to(anchors, (S, len(anchors)))], axis=1)
    block = cp.counts[seeds.ravel()].tocoo()
    n_i = cp.item_counts[seeds.ravel()[block.row]]
    n_j = cp.item_counts[block.col]
    lift = (block.data + cp.shrinkage) / (n_i * n_j / max(cp.n_orders, 1) + cp.shrinkage)
    boost = np.zeros(S * P)
    segment_of = block.row // seeds.shape[1]
    np.maximum.at(boost, segment_of * P + block.col, np.clip(np.log(lift), 0.0, LOG_LIFT_MAX))
    score2 = score + config.weights.complementarity * boost.reshape(S, P)
    np.put_along_axis(score2, first, np.inf, axis=1)  # keep the first picks
    out = np.sort(np.argsort(-score2, axis=1, kind="stable")[:, :m], axis=1)
    return np.concatenate([np.broadcast_to(anchors, (S, len(anchors))), out], axis=1)


# ---------------------------------------------------------------- search


@dataclass
class _Pool:
    """Finished states, one entry per recorded step: candidate positions
    (S, n, k), totals (S, n), profit-proxy sums (S, n), usable (S, n)."""

    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class _Pairs:
    """Candidate-level pair matrices per segment (S, M, M), numpy."""

    comp: np.ndarray
    ok: np.ndarray
    link: np.ndarray
    sub: np.ndarray
    lift: np.ndarray


def beam_search(
    inputs: BundleInputs,
    config: BeamConfig,
    segments: Sequence[int] | None = None,
    profit_fn: ProfitFn | None = None,
    progress: Callable[[float], None] | None = None,
    visitors: Sequence[float] | None = None,
) -> list[Bundle]:
    """Best, diverse bundles for each segment, ordered by segment then rank.

    ``profit_fn(segment, products)``: the profit per visitor a bundle adds at its
    best price. With ``visitors`` (per segment, per period, indexed like the
    affinity rows) the segment gets the bundles that pay (module docstring);
    otherwise ``n_bundles`` each (fewer if the constraints leave fewer).
    """
    segs = np.arange(inputs.n_segments) if segments is None else np.asarray(segments, np.int64)
    w = config.weights
    anchors = anchor_indices(inputs, config)
    allowed = allowed_products(inputs, config)
    naff = inputs.norm_affinity(segs)
    uprof = inputs.unit_profit(naff, w)
    cand = _candidates(inputs, config, w.affinity * naff + w.profit * uprof, allowed, anchors)
    rows = np.arange(len(segs))[:, None]
    pairs = _pair_matrices(inputs, config, cand)
    floor = affinity_floor(config, naff)
    pool = _search(inputs, config, cand, naff[rows, cand], uprof[rows, cand], len(anchors), pairs,
                   floor)
    if progress:
        progress(0.8)
    bundles: list[Bundle] = []
    for i, s in enumerate(segs):
        per_period = None if visitors is None or profit_fn is None else float(visitors[int(s)])
        bundles.extend(_finish(inputs, config, int(s), cand[i], pool, i, pairs, naff[i], profit_fn,
                               per_period))
    if progress:
        progress(1.0)
    return bundles


def _pair_matrices(inputs: BundleInputs, config: BeamConfig, cand: np.ndarray) -> _Pairs:
    """Clipped log lift, allowed pairs, complementary links, substitutes, lift.

    Segments share most of their candidates, so the pair terms are computed once
    over the union of the candidate rows and each segment's block is cut from it
    (segment by segment when the segments share too little for that to pay)."""
    S, M = cand.shape
    union, pos = np.unique(cand, return_inverse=True)
    if S > 1 and len(union) ** 2 > 4 * S * M * M:
        parts = [_pair_matrices(inputs, config, row[None]) for row in cand]
        names = [f.name for f in dataclasses.fields(_Pairs)]
        return _Pairs(**{n: np.concatenate([getattr(x, n) for x in parts]) for n in names})
    pos = pos.reshape(cand.shape)
    comp_u, sub_u, lift_u = inputs.pair_terms(union, config.weights)
    ok_u = ~sub_u
    if config.one_per_category:
        cat = inputs.category[union]
        ok_u &= ~((cat[:, None] == cat[None, :]) & (cat[:, None] >= 0))
    block = (pos[:, :, None], pos[:, None, :])
    comp, sub, lift, ok = comp_u[block], sub_u[block], lift_u[block], ok_u[block]
    ok &= ~np.eye(M, dtype=bool)[None]  # a product cannot join a set twice
    link = (
        lift >= config.min_complementarity
        if config.min_complementarity is not None
        else np.ones_like(ok)
    )
    return _Pairs(comp=comp, ok=ok, link=link, sub=sub, lift=lift)


def _search(inputs, config, cand, aff, prof, n_anchor, pairs: _Pairs, floor) -> _Pool:
    """States carry, besides their members, per-candidate running rows: the summed
    complementarity with the members, whether every member allows the candidate,
    whether some member links to it. Growing a state then costs one row gather."""
    dev = choose_device(config.device)
    w = config.weights
    S, M = cand.shape
    comp = torch.as_tensor(pairs.comp, device=dev, dtype=torch.float64)
    ok = torch.as_tensor(pairs.ok, device=dev)
    link = torch.as_tensor(pairs.link, device=dev)
    aff_t = torch.as_tensor(aff, device=dev, dtype=torch.float64)
    prof_t = torch.as_tensor(prof, device=dev, dtype=torch.float64)
    price = torch.as_tensor(inputs.price[cand], device=dev, dtype=torch.float64)
    price_max = math.inf if config.price_max is None else config.price_max
    price_min = -math.inf if config.price_min is None else config.price_min
    can_add = torch.ones(M, dtype=torch.bool, device=dev)
    can_add[:n_anchor] = False
    # codes below 2**58 so a sum of up to 8 never overflows int64; the seed fixes them
    gen = torch.Generator().manual_seed(config.seed)
    zob = torch.randint(0, 2**58, (M,), generator=gen, dtype=torch.int64).to(dev)
    pool = _Pool()
    # the affinity rule on the free products' mean, checked when a state is recorded
    anchor_aff = aff_t[:, :n_anchor].sum(1, keepdim=True)
    floor_t = torch.as_tensor(floor, device=dev, dtype=torch.float64)[:, None]

    def liked(st, k):
        if k == n_anchor:
            return torch.ones_like(st["aff"], dtype=torch.bool)
        return (st["aff"] - anchor_aff) / (k - n_anchor) >= floor_t

    if n_anchor:
        a = torch.arange(n_anchor, device=dev)
        st = {
            "idx": a.expand(S, 1, n_anchor).clone(),
            "aff": aff_t[:, :n_anchor].sum(1, keepdim=True),
            "comp": comp[:, :n_anchor, :n_anchor].sum(dim=(1, 2))[:, None] / 2,
            "prof": prof_t[:, :n_anchor].sum(1, keepdim=True),
            "price": price[:, :n_anchor].sum(1, keepdim=True),
            "key": zob[:n_anchor].sum().expand(S, 1).clone(),
            "row_comp": comp[:, :n_anchor].sum(1)[:, None],
            "row_ok": ok[:, :n_anchor].all(1)[:, None],
            "row_link": link[:, :n_anchor].any(1)[:, None],
        }
        upper = torch.triu(torch.ones(n_anchor, n_anchor, dtype=torch.bool, device=dev), 1)
        pair_ok = (ok[:, :n_anchor, :n_anchor] | ~upper).all(dim=(1, 2))
        alive = (pair_ok & (st["price"][:, 0] <= price_max))[:, None]
    else:
        st = {
            "idx": torch.arange(M, device=dev).expand(S, M)[..., None].clone(),
            "aff": aff_t.clone(),
            "comp": torch.zeros_like(aff_t),
            "prof": prof_t.clone(),
            "price": price.clone(),
            "key": zob.expand(S, M).clone(),
            "row_comp": comp.clone(),
            "row_ok": ok.clone(),
            "row_link": link.clone(),
        }
        alive = price <= price_max
    k = st["idx"].shape[2]
    if k >= config.kmin:
        _record(pool, st, alive & liked(st, k), _total(st, k, w), price_min)
    while k < config.kmax:
        st, alive, total = _expand(
            st, alive, comp, ok, link, aff_t, prof_t, price, can_add, config, price_max, zob
        )
        k += 1
        if k >= config.kmin:
            _record(pool, st, alive & liked(st, k), total, price_min)
        width = config.beam_width
        st = {name: t[:, :width] for name, t in st.items()}  # row_* are W wide already
        alive = alive[:, :width]
        if not alive.any():
            break
    return pool


def _total(st, k: int, w: ObjectiveWeights) -> torch.Tensor:
    n_pairs = k * (k - 1) / 2
    return (
        w.affinity * st["aff"] / k
        + w.complementarity * st["comp"] / max(n_pairs, 1)
        + w.profit * st["prof"]
    )


def _expand(st, alive, comp, ok, link, aff, prof, price, can_add, config, price_max, zob):
    S, W, k = st["idx"].shape
    M = len(zob)
    new_price = st["price"][:, :, None] + price[:, None, :]
    valid = st["row_ok"] & st["row_link"] & can_add & alive[:, :, None]
    valid &= new_price <= price_max
    new = {
        "aff": st["aff"][:, :, None] + aff[:, None, :],
        "comp": st["comp"][:, :, None] + st["row_comp"],
        "prof": st["prof"][:, :, None] + prof[:, None, :],
        "price": new_price,
    }
    total = _total(new, k + 1, config.weights).masked_fill(~valid, NEG).reshape(S, W * M)
    # permutations of the same set get the same key: a sum of random per-candidate
    # codes (Zobrist hashing), so no per-state sort is needed
    key = (st["key"][:, :, None] + zob[None, None, :]).reshape(S, W * M)
    order, keep_total = _best_distinct(total, key)
    # the beam keeps W states; the finished pool gets a wider slice, so the
    # diversity step has near-best alternatives that the beam itself dropped
    # the pool grows with the bundles asked for, up to five a segment: past that the
    # diversity rule, not the pool, limits what is found, and each pooled bundle costs
    # a pricing run
    wide = config.beam_width * min(config.n_bundles, 5)
    order, keep_total = order[:, :wide], keep_total[:, :wide]
    parent, added = order // M, order % M
    out = {name: t.reshape(S, W * M).gather(1, order) for name, t in new.items()}
    out["key"] = key.gather(1, order)
    out["idx"] = torch.cat(
        [st["idx"].gather(1, parent[..., None].expand(-1, -1, k)), added[..., None]], 2
    )
    # running rows only for the W states that grow on (the rest are only recorded)
    cont = config.beam_width
    rows_of = parent[:, :cont, None].expand(-1, -1, M)
    added_rows = added[:, :cont, None].expand(-1, -1, M)
    out["row_comp"] = st["row_comp"].gather(1, rows_of) + comp.gather(1, added_rows)
    out["row_ok"] = st["row_ok"].gather(1, rows_of) & ok.gather(1, added_rows)
    out["row_link"] = st["row_link"].gather(1, rows_of) | link.gather(1, added_rows)
    return out, keep_total > NEG, keep_total


def _best_distinct(total: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions per row best first (ties: earlier position), each key only once
    (its best-scored entry); later entries of a key follow at the end with total NEG.
    Returns the positions and their totals."""
    order = torch.sort(total, dim=1, descending=True, stable=True).indices
    by_total = total.gather(1, order)
    k2, perm = torch.sort(key.gather(1, order), dim=1, stable=True)
    dup = torch.zeros_like(k2, dtype=torch.bool)
    dup[:, 1:] = k2[:, 1:] == k2[:, :-1]
    dup = torch.zeros_like(dup).scatter_(1, perm, dup)  # back to best-first positions
    # move the duplicates behind the rest without another sort: a stable partition
    first = ~dup
    n_first = first.sum(1, keepdim=True)
    rank = torch.where(first, first.cumsum(1) - 1, n_first + dup.cumsum(1) - 1)
    positions = torch.empty_like(order).scatter_(1, rank, order)
    totals = torch.empty_like(by_total).scatter_(1, rank, by_total.masked_fill(dup, NEG))
    return positions, totals


def _record(pool: _Pool, st, alive, total, price_min) -> None:
    usable = alive & (st["price"] >= price_min - 1e-9)
    pool.steps.append(tuple(t.cpu().numpy() for t in (st["idx"], total, st["prof"], usable)))


def _finish(inputs, config, segment, cand_row, pool, i, pairs, aff_row, profit_fn, visitors):
    """Rank the finished pool (with the pricing profit if given), then pick diverse
    ones: the best totals, or with ``visitors`` the bundles that pay."""
    w = config.weights
    scale = inputs.price_scale()
    ranked = []
    for idx, total, prof, usable in pool.steps:
        keep = np.flatnonzero(usable[i])
        positions, totals = np.sort(idx[i, keep], axis=1), total[i, keep].tolist()
        gains = [0.0] * len(totals)
        if profit_fn is not None:
            for r, (pos, p) in enumerate(zip(positions, prof[i, keep].tolist(), strict=True)):
                gains[r] = profit_fn(segment, tuple(sorted(int(x) for x in cand_row[pos])))
                totals[r] += w.profit * (gains[r] / scale - p)
        ranked.extend(zip(totals, positions, gains, strict=True))
    # best first; equal totals ordered by product ids
    ranked.sort(key=lambda r: -r[0])
    ranked = _tie_break(inputs, cand_row, ranked)
    if visitors is None:
        chosen = [(pos, None) for pos in _diverse(config, cand_row, ranked)]
    else:
        chosen = _paying(config, cand_row, ranked, visitors)
    out = []
    for pos, added in chosen:
        products = cand_row[pos]
        order = np.argsort(products)
        pos, products = pos[order], products[order]
        block = np.ix_(pos, pos)
        parts = (pairs.comp[i][block], pairs.sub[i][block], pairs.lift[i][block])
        found = score_bundle(
            inputs, segment, products, w, profit_fn, pairs=parts, norm_affinity=aff_row
        )
        out.append(found if added is None else dataclasses.replace(found, added_profit=added))
    return out


def _clashes(config: BeamConfig, mine: set, chosen_sets: list[set]) -> bool:
    """The diversity rule: too much overlap with (or the same as) a chosen bundle."""
    return any(len(mine & c) > config.max_overlap * min(len(mine), len(c)) or mine == c
               for c in chosen_sets)


def _diverse(config: BeamConfig, cand_row, ranked) -> list[np.ndarray]:
    """The first ``n_bundles`` of ``ranked`` that keep the diversity rule."""
    chosen, sets = [], []
    for _, pos, _ in ranked:
        mine = set(cand_row[pos].tolist())
        if not _clashes(config, mine, sets):
            chosen.append(pos)
            sets.append(mine)
            if len(chosen) == config.n_bundles:
                break
    return chosen


def _paying(config: BeamConfig, cand_row, ranked, visitors: float) -> list[tuple]:
    """In the objective's order, each bundle that keeps the diversity rule and adds
    more than ``min_added_profit`` per period (and more than nothing): its gain
    less its cannibalisation of those already chosen, up to ``n_bundles``. What
    a bundle adds only falls as more are chosen, so one pass finds them."""
    chosen, sets, gains = [], [], []
    for _, pos, gain in ranked:
        mine = set(cand_row[pos].tolist())
        if _clashes(config, mine, sets):
            continue
        added = visitors * (gain - cannibalised(mine, gain, sets, gains))
        if added <= config.min_added_profit:
            continue
        chosen.append((pos, float(added)))
        sets.append(mine)
        gains.append(gain)
        if len(chosen) == config.n_bundles:
            break
    return chosen


def cannibalised(products: set, gain: float, chosen: Sequence[set],
                 chosen_gains: Sequence[float]) -> float:
    """What a bundle takes from the segment's bundles already chosen: for each
    that shares products with it, the smaller of the two gains times the share
    of this bundle's products it holds (the simulator prices bundles one at a
    time, so their interaction is estimated, not simulated)."""
    return sum(min(gain, g) * len(products & c) / len(products)
               for c, g in zip(chosen, chosen_gains, strict=True) if products & c)


def _tie_break(inputs, cand_row, ranked):
    """Within runs of equal totals (to 1e-12), order by product ids."""
    out, i = [], 0
    while i < len(ranked):
        j = i + 1
        while j < len(ranked) and abs(ranked[j][0] - ranked[i][0]) <= 1e-12:
            j += 1
        run = ranked[i:j]
        if len(run) > 1:
            run = sorted(
                run, key=lambda r: tuple(sorted(str(inputs.product_ids[p]) for p in cand_row[r[1]]))
            )
        out.extend(run)
        i = j
    return out


def bundles_frame(bundles: Sequence[Bundle]) -> pd.DataFrame:
    """One row per bundle, for pages and export: ids and names joined by ' + '."""
    rows = []
    for rank, b in enumerate(bundles):
        rows.append(
            {
                "bundle_id": f"{b.segment_label}-{'-'.join(b.product_ids)}",
                C.SEGMENT: b.segment_label,
                "segment_idx": b.segment,
                "rank": rank,
                "size": b.size,
                "product_ids": " + ".join(b.product_ids),
                "product_names": " + ".join(b.names),
                "list_total": b.list_total,
                **{k: float(v) for k, v in b.terms.items()},
                "total": b.total,
                "added_profit": np.nan if b.added_profit is None else b.added_profit,
                "reason": b.reason,
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["rank"] = frame.groupby("segment_idx").cumcount() + 1
    return frame
