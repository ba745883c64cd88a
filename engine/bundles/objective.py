"""The bundle objective: what makes a set of products a good bundle for a segment.

For segment *s* and bundle *B* (k products) the score is a weighted sum of
terms, each reported on its own:

affinity
    mean over *B* of the segment's affinity, normalised so the segment's
    favourite product scores 1 (affinity rows are treated as non-negative
    scores; only their ratios within a row matter).
complementarity
    mean over the pairs of *B* of log shrunk lift, clipped to
    [log 1/4, log 8] so one freak pair cannot dominate.
substitute_penalty
    ``-penalty`` for every pair that looks like substitutes: text cosine ≥ the
    threshold AND shrunk lift ≤ 1 (alike, yet not bought together). The
    search treats such pairs as forbidden, so returned bundles report 0.
profit_proxy
    until the pricing stage supplies an optimised profit (``profit_fn``), a
    documented proxy: Σ over *B* of take-rate proxy × unit margin at the
    default discount, where the take-rate proxy of a product is its
    normalised affinity and unit margin = list price·(1−d) − cost (cost
    unknown → list price·(1−default margin)). Divided by the catalogue's
    median list price so the term is unitless. It is additive over products,
    which lets the beam search carry it exactly.

Means (not sums) for affinity and complementarity keep bundles of different
sizes comparable; inside one beam step all states have the same size, so the
search can still grow them incrementally.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import columns as C
from engine.recommend.copurchase import CoPurchaseStats

log = logging.getLogger(__name__)

LOG_LIFT_MIN = float(np.log(0.25))
LOG_LIFT_MAX = float(np.log(8.0))
TERMS = ("affinity", "complementarity", "substitute_penalty", "profit_proxy")

ProfitFn = Callable[[int, tuple[int, ...]], float]


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the terms and the assumptions behind them."""

    affinity: float = 1.0
    complementarity: float = 1.0
    profit: float = 0.2
    substitute_cosine: float = 0.8
    substitute_penalty: float = 10.0
    discount: float = 0.10
    default_margin: float = 0.40


@dataclass(frozen=True, eq=False)
class BundleInputs:
    """Everything the bundle search reads, as plain arrays indexed by product.

    affinity : S × P non-negative segment scores.
    embeddings : P × d L2-normalised text vectors, or None (no substitute test).
    category : (P,) int codes, -1 where unknown (never conflicts).
    """

    affinity: np.ndarray
    copurchase: CoPurchaseStats
    embeddings: np.ndarray | None
    price: np.ndarray
    cost: np.ndarray
    category: np.ndarray
    in_stock: np.ndarray
    product_ids: np.ndarray
    names: np.ndarray
    segment_labels: tuple[str, ...] = ()
    _id_index: dict = field(default=None, repr=False)

    def __post_init__(self) -> None:
        s, p = np.shape(self.affinity)
        n = self.copurchase.n_products
        checks = {
            "copurchase": n,
            "price": len(self.price),
            "cost": len(self.cost),
            "category": len(self.category),
            "in_stock": len(self.in_stock),
            "product_ids": len(self.product_ids),
            "names": len(self.names),
        }
        if self.embeddings is not None:
            checks["embeddings"] = len(self.embeddings)
        bad = {k: v for k, v in checks.items() if v != p}
        if bad:
            raise ValueError(f"affinity is {s}×{p} but these have another product count: {bad}")
        if np.any(np.asarray(self.affinity) < 0):
            raise ValueError("affinity must be non-negative (scores or probabilities)")
        if not self.segment_labels:
            object.__setattr__(self, "segment_labels", tuple(f"S{i + 1}" for i in range(s)))
        ids = [str(x) for x in self.product_ids]
        object.__setattr__(self, "_id_index", {pid: i for i, pid in enumerate(ids)})

    @property
    def n_segments(self) -> int:
        return self.affinity.shape[0]

    @property
    def n_products(self) -> int:
        return self.affinity.shape[1]

    def index_of(self, product_ids: Sequence) -> np.ndarray:
        """Indices of product ids; KeyError naming the unknown ones."""
        missing = [p for p in product_ids if str(p) not in self._id_index]
        if missing:
            raise KeyError(f"product ids not in the catalogue: {missing[:5]}")
        return np.array([self._id_index[str(p)] for p in product_ids], dtype=np.int64)

    @classmethod
    def from_dataset(
        cls,
        dataset,
        affinity: np.ndarray,
        copurchase: CoPurchaseStats,
        embeddings: np.ndarray | None = None,
        segment_labels: Sequence[str] | None = None,
    ) -> BundleInputs:
        """From an ``engine.data.Dataset`` (its ``products`` frame) and the stage outputs."""
        return cls.from_products(dataset.products, affinity, copurchase, embeddings, segment_labels)

    @classmethod
    def from_products(
        cls,
        products: pd.DataFrame,
        affinity: np.ndarray,
        copurchase: CoPurchaseStats,
        embeddings: np.ndarray | None = None,
        segment_labels: Sequence[str] | None = None,
    ) -> BundleInputs:
        cat = products[C.CATEGORY] if C.CATEGORY in products else pd.Series([""] * len(products))
        cat = cat.fillna("").astype(str).str.strip()
        codes, _ = pd.factorize(cat.where(cat != "", None))
        in_stock = (
            products[C.IN_STOCK].fillna(True).astype(bool).to_numpy()
            if C.IN_STOCK in products
            else np.ones(len(products), bool)
        )
        cost = products[C.COST] if C.COST in products else pd.Series(np.nan, index=products.index)
        return cls(
            affinity=np.asarray(affinity, dtype=np.float64),
            copurchase=copurchase,
            embeddings=None if embeddings is None else np.asarray(embeddings, np.float32),
            price=products[C.PRICE].astype(float).to_numpy(),
            cost=cost.astype(float).to_numpy(),
            category=codes.astype(np.int64),
            in_stock=in_stock,
            product_ids=products[C.PRODUCT_ID].astype(str).to_numpy(),
            names=products[C.NAME].astype(str).to_numpy()
            if C.NAME in products
            else products[C.PRODUCT_ID].astype(str).to_numpy(),
            segment_labels=tuple(segment_labels) if segment_labels is not None else (),
        )

    # --- per-product and per-pair pieces, shared by beam and exhaustive search ---

    @functools.cached_property
    def _price_scale(self) -> float:
        positive = self.price[self.price > 0]
        return float(np.median(positive)) if len(positive) else 1.0

    def price_scale(self) -> float:
        """Median positive list price: the unit that makes profit terms unitless."""
        return self._price_scale

    def unit_cost(self, default_margin: float, idx: np.ndarray | None = None) -> np.ndarray:
        price = self.price if idx is None else self.price[idx]
        cost = self.cost if idx is None else self.cost[idx]
        return np.where(np.isnan(cost), price * (1 - default_margin), cost)

    def norm_affinity(self, segments: np.ndarray | None = None) -> np.ndarray:
        """Affinity rows scaled so each segment's favourite scores 1 (S × P)."""
        a = self.affinity if segments is None else self.affinity[np.asarray(segments)]
        top = a.max(axis=1, keepdims=True)
        return np.divide(a, top, out=np.zeros_like(a), where=top > 0)

    def unit_profit(self, norm_aff: np.ndarray, weights: ObjectiveWeights) -> np.ndarray:
        """Per product profit-proxy contribution (same shape as ``norm_aff``)."""
        margin = self.price * (1 - weights.discount) - self.unit_cost(weights.default_margin)
        return norm_aff * margin[None, :] / self.price_scale()

    def pair_terms(
        self, idx: np.ndarray, weights: ObjectiveWeights
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For products ``idx`` (n): clipped log lift (n × n, diagonal 0),
        substitute flags (n × n bool) and raw shrunk lift."""
        idx = np.asarray(idx)
        lift = self.copurchase.lift_block(idx, idx)
        comp = np.clip(np.log(lift), LOG_LIFT_MIN, LOG_LIFT_MAX)
        np.fill_diagonal(comp, 0.0)
        if self.embeddings is None:
            sub = np.zeros_like(comp, dtype=bool)
        else:
            e = self.embeddings[idx]
            sub = (e @ e.T >= weights.substitute_cosine) & (lift <= 1.0)
            np.fill_diagonal(sub, False)
        return comp, sub, lift


@dataclass(frozen=True)
class Bundle:
    """One recommended bundle for one segment; ``terms`` holds the unweighted terms;
    ``added_profit``: the profit per period it adds to the segment's offer (its
    gain less what it takes from the segment's earlier bundles), when the search
    chose it for that."""

    segment: int
    segment_label: str
    products: tuple[int, ...]
    product_ids: tuple[str, ...]
    names: tuple[str, ...]
    terms: dict
    total: float
    list_total: float
    reason: str
    added_profit: float | None = None

    @property
    def size(self) -> int:
        return len(self.products)


def score_bundle(
    inputs: BundleInputs,
    segment: int,
    products: Sequence[int],
    weights: ObjectiveWeights | None = None,
    profit_fn: ProfitFn | None = None,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    norm_affinity: np.ndarray | None = None,
) -> Bundle:
    """Score any set of products for a segment, every term reported separately.

    ``pairs`` (comp, substitute flags, lift for the sorted products) and the
    segment's ``norm_affinity`` row may be passed when already computed.
    """
    w = weights or ObjectiveWeights()
    idx = np.array(sorted({int(p) for p in products}), dtype=np.int64)
    if len(idx) < 1:
        raise ValueError("a bundle needs at least one product")
    aff = inputs.norm_affinity(np.array([segment]))[0] if norm_affinity is None else norm_affinity
    comp, sub, lift = inputs.pair_terms(idx, w) if pairs is None else pairs
    k = len(idx)
    n_pairs = k * (k - 1) // 2
    iu = np.triu_indices(k, 1)
    terms = {
        "affinity": float(aff[idx].mean()),
        "complementarity": float(comp[iu].mean()) if n_pairs else 0.0,
        "substitute_penalty": 0.0 - w.substitute_penalty * float(sub[iu].sum()),
        "profit_proxy": _profit_term(inputs, segment, idx, aff, w, profit_fn),
    }
    total = weighted_total(terms, w)
    return Bundle(
        segment=int(segment),
        segment_label=inputs.segment_labels[segment],
        products=tuple(int(i) for i in idx),
        product_ids=tuple(str(inputs.product_ids[i]) for i in idx),
        names=tuple(str(inputs.names[i]) for i in idx),
        terms=terms,
        total=total,
        list_total=float(inputs.price[idx].sum()),
        reason=_reason(inputs, segment, idx, aff, lift, w),
    )


def weighted_total(terms: dict, w: ObjectiveWeights) -> float:
    return float(
        w.affinity * terms["affinity"]
        + w.complementarity * terms["complementarity"]
        + terms["substitute_penalty"]
        + w.profit * terms["profit_proxy"]
    )


def _profit_term(inputs, segment, idx, aff, w, profit_fn) -> float:
    if profit_fn is not None:
        # the pricing stage's optimised profit, on the same unitless scale as the proxy
        return float(profit_fn(int(segment), tuple(int(i) for i in idx))) / inputs.price_scale()
    margin = inputs.price[idx] * (1 - w.discount) - inputs.unit_cost(w.default_margin, idx)
    return float((aff[idx] * margin).sum() / inputs.price_scale())


def _reason(inputs, segment, idx, aff, lift, w) -> str:
    """One sentence saying why these products go together for this segment."""
    names = inputs.names
    label = inputs.segment_labels[segment]
    fav = idx[np.argmax(aff[idx])]
    # against the segment's average product: "highly" only when it is so
    ratio = float(aff[fav] / max(float(aff.mean()), 1e-12))
    if ratio >= 1.5:
        parts = [f"Segment {label} picks '{names[fav]}' {ratio:.1f}× as often as its average product"]
    else:
        parts = [f"'{names[fav]}' fits segment {label} best of these, though no better than "
                 "its average product"]
    if len(idx) >= 2:
        sub = lift.copy()
        np.fill_diagonal(sub, -np.inf)
        a, b = np.unravel_index(np.argmax(sub), sub.shape)
        best = lift[a, b]
        if best > 1.05:
            parts.append(
                f"'{names[idx[a]]}' and '{names[idx[b]]}' are bought together "
                f"{best:.1f}× as often as chance"
            )
        else:
            parts.append("the items are not usually bought together, so the match rests on taste")
    # the price and what it earns are the pricing stage's to say (engine.export.price_reason)
    return "; ".join(parts) + "."
