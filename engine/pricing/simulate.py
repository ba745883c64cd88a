"""Vectorised Monte-Carlo market for mixed bundling.

Each bundle is offered to the simulated visitors of its segment. A visitor is
in the market for product i with probability ``interest[s, i]``; with the
market's ``lift`` that interest is joint (engine/pricing/interest.py: needs for
subsets of the bundle, so that wanting all of a high-lift pair is as common as
the data says), without it independent across products. They value a product
at w_i = exp(mu_si + sigma_i * eps_i), lognormal; a product they are not in the
market for is worth 0 to them. All of the bundle's products together are worth
(1 + synergy) * sum w_i, bought as the bundle or separately (synergy is what
the set is worth beyond its parts, however it is bought). Without the bundle a
visitor buys each product worth its price to them (surplus is additive), or
all of them when the set's synergy makes that better; the bundle is taken when
its surplus is at least that of the best of these. Ties go to the bundle.

Most visitors of a shop want none of a given bundle's products, so only the
bundle's *audience* is simulated: visitors with at least one need, a share
1 − Π(1 − λ_T) of the segment. They are drawn exactly from the interest model
given that condition (the first need that fires, then the others
independently), and every per-visitor outcome is scaled by the audience share.
Without ``interest`` every visitor wants every product and the audience is the
whole segment.

The draws depend only on (seed, n_customers, n_bundles, max bundle size), are
drawn once and reused for every price (common random numbers), so a slider
move changes profit smoothly and never by new noise.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from engine.pricing.interest import bundle_needs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Market:
    """What the simulator needs to know about the shop.

    mu : (S, P) log-WTP location per segment and product.
    sigma : (P,) log-WTP scale per product.
    list_price, cost : (P,) per product.
    segment_size : (S,) visitors per period in each segment (the segment mix);
        units, revenue and profit are per period = per-visitor mean × size.
    interest : (S, P) probability that a visitor of the segment is in the market
        for the product at all; None: every visitor is.
    lift : joint interest, ``lift(segment, items)`` the lift of being in the market
        for all of ``items`` over being in it for each independently
        (``interest.VisitLift`` from the data); None: independent interest.
    """

    mu: np.ndarray
    sigma: np.ndarray
    list_price: np.ndarray
    cost: np.ndarray
    segment_size: np.ndarray
    interest: np.ndarray | None = None
    lift: Callable[[int, Sequence[int]], float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        s, p = np.shape(self.mu)
        for name in ("sigma", "list_price", "cost"):
            if np.shape(getattr(self, name)) != (p,):
                raise ValueError(f"{name} must have shape ({p},) to match mu {np.shape(self.mu)}")
        if np.shape(self.segment_size) != (s,):
            raise ValueError(f"segment_size must have shape ({s},) to match mu {np.shape(self.mu)}")
        if self.interest is not None:
            if np.shape(self.interest) != (s, p):
                raise ValueError(f"interest must have shape ({s}, {p}) to match mu")
            if not ((np.asarray(self.interest) >= 0) & (np.asarray(self.interest) <= 1)).all():
                raise ValueError("interest must be a probability in [0, 1]")

    @property
    def n_segments(self) -> int:
        return int(np.shape(self.mu)[0])

    def with_segment_mix(self, mix: Sequence[float], visitors: float) -> Market:
        """Same market with ``visitors`` per period split by ``mix`` (normalised)."""
        mix = np.asarray(mix, float)
        return replace(self, segment_size=visitors * mix / mix.sum())


@functools.lru_cache(maxsize=4)
def standard_draws(seed: int, n_customers: int, n_bundles: int, size: int) -> np.ndarray:
    """(n_bundles, size, n_customers) float32 standard normal draws, cached and read-only."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_bundles, size, n_customers), dtype=np.float32)
    eps.setflags(write=False)
    return eps


@functools.lru_cache(maxsize=4)
def uniform_draws(seed: int, n_customers: int, n_bundles: int, size: int) -> np.ndarray:
    """(n_bundles, size + 1, n_customers) float32 uniforms for the interest draws
    (a stream of their own, so adding interest leaves the WTP draws as they were)."""
    rng = np.random.default_rng([int(seed), 1])
    u = rng.random((n_bundles, size + 1, n_customers), dtype=np.float32)
    u.setflags(write=False)
    return u


def audience_draws(q: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which needs fire, given that at least one does.

    q : (B, M) rate of each need (a product, or a set of products with joint
    interest; 0 in padded slots); u : (B, M + 1, n).
    Returns (fired (B, M, n) bool, audience (B,) = 1 − Π(1 − q)). The first
    need J that fires has P(J = j | any) = q_j Π_{k<j}(1 − q_k) / audience;
    needs after J fire independently with their own q.
    """
    q = np.asarray(q, np.float64)
    none_upto = np.cumprod(1.0 - q, axis=1)  # P(no interest in slots 0..j)
    audience = 1.0 - none_upto[:, -1]
    safe = np.where(audience > 0, audience, 1.0)[:, None]
    first_cdf = ((1.0 - none_upto) / safe).astype(np.float32)  # P(J <= j | any)
    first_cdf[:, -1] = 1.0
    first = (u[:, :1, :] >= first_cdf[:, :, None]).sum(axis=1)  # (B, n): index J
    k = np.arange(q.shape[1])[None, :, None]
    later = u[:, 1:, :] < q.astype(np.float32)[:, :, None]
    wants = (k == first[:, None, :]) | ((k > first[:, None, :]) & later)
    return wants, audience


_AUDIENCES: OrderedDict = OrderedDict()


def cached_audience(q: np.ndarray, seed: int, n_customers: int,
                    family: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Who wants which of each bundle's products, on the seeded uniforms, kept for
    the last 4 interest tables: a slider that moves willingness to pay
    (elasticity) re-draws nothing here.

    q : (B, M) need rates; family : (B, M, K) which products each need is for
    (None: the needs are the products themselves, M = K).
    Returns (wants (B, K, n) bool, audience (B,)).
    """
    q = np.ascontiguousarray(q, np.float64)
    fam = None if family is None else np.ascontiguousarray(family, bool)
    key = (int(seed), int(n_customers), q.shape, q.tobytes(),
           None if fam is None else fam.tobytes())
    if key in _AUDIENCES:
        _AUDIENCES.move_to_end(key)
        return _AUDIENCES[key]
    fired, audience = audience_draws(q, uniform_draws(int(seed), int(n_customers), *q.shape))
    wants = fired if fam is None else np.einsum("bmk,bmn->bkn", fam, fired) > 0
    wants.setflags(write=False)
    audience.setflags(write=False)
    _AUDIENCES[key] = (wants, audience)
    while len(_AUDIENCES) > 4:
        _AUDIENCES.popitem(last=False)
    return wants, audience


@dataclass(frozen=True)
class Choices:
    """Per bundle and simulated visitor, everything that does not depend on the
    bundle price: worth of the bundle and the best alternative to it.

    parts_worth : (B, n) sum of the bundle's products' willingness to pay;
        ``worth`` = (1 + synergy) * parts_worth.
    single_surplus, single_revenue, single_profit, single_units, single_bought :
        (B, n) of buying, without the bundle and its synergy, each product worth
        its price (``single_bought`` the bitmask of slots bought); with
        ``component_price`` and ``component_cost`` (B, K) they give the
        alternatives for any synergy.
    alt_surplus, alt_revenue, alt_profit, alt_units : (B, n) of the best option
        without the bundle: those products, or all of them when the synergy makes
        the set worth it; ``with_synergy`` recomputes them without new draws.
    """

    parts_worth: np.ndarray
    synergy: np.ndarray  # (B,)
    single_surplus: np.ndarray
    single_revenue: np.ndarray
    single_profit: np.ndarray
    single_units: np.ndarray
    single_bought: np.ndarray
    component_price: np.ndarray  # (B, K), 0 in padded slots
    component_cost: np.ndarray  # (B, K)
    alt_surplus: np.ndarray
    alt_revenue: np.ndarray
    alt_profit: np.ndarray
    alt_units: np.ndarray
    bundle_cost: np.ndarray  # (B,)
    list_total: np.ndarray  # (B,)
    segments: np.ndarray  # (B,)
    segment_size: np.ndarray  # (B,) visitors of the bundle's segment
    audience: np.ndarray | None = None  # (B,) share of the segment simulated; None: all
    sizes: np.ndarray | None = None  # (B,) products per bundle

    @property
    def reach(self) -> np.ndarray:
        """(B,) visitors per period the simulated visitors stand for."""
        share = 1.0 if self.audience is None else self.audience
        return self.segment_size * share

    @property
    def audience_share(self) -> np.ndarray:
        return np.ones(len(self.segments)) if self.audience is None else self.audience

    @property
    def worth(self) -> np.ndarray:
        return (1.0 + self.synergy.astype(np.float32))[:, None] * self.parts_worth

    def with_synergy(self, synergy: float | Sequence[float]) -> Choices:
        syn = np.broadcast_to(np.asarray(synergy, np.float32), self.synergy.shape).copy()
        if np.array_equal(syn, self.synergy):
            return self
        return replace(self, synergy=syn, **_best_alternative(self, syn))

    def with_segment_size(self, segment_size: np.ndarray) -> Choices:
        """Same draws, new segment mix: ``segment_size`` (S,) visitors per segment."""
        return replace(self, segment_size=np.asarray(segment_size, float)[self.segments])

    @property
    def threshold(self) -> np.ndarray:
        """(B, n) highest price at which each visitor still takes the bundle."""
        return self.worth - np.maximum(self.alt_surplus, 0.0)

    def bought_shares(self) -> np.ndarray:
        """(B, K + 1) share of the segment's visitors buying each product of the
        bundle (alone or with the others) and, last, all of them, when the bundle
        is not offered (at the component prices): what the data's shares are."""
        all_surplus = self.worth - self.component_price.sum(axis=1)[:, None]
        use_all = (all_surplus > self.single_surplus) & (all_surplus > 0)
        k = self.component_price.shape[1]
        sizes = np.full(len(self.segments), k) if self.sizes is None else self.sizes
        out = np.empty((len(self.segments), k + 1))
        everything = (1 << sizes.astype(np.int64)) - 1
        for j in range(k):
            out[:, j] = (use_all | ((self.single_bought >> j) & 1).astype(bool)).mean(axis=1)
        out[:, k] = (use_all | (self.single_bought == everything[:, None])).mean(axis=1)
        return out * self.audience_share[:, None]


def _pad(bundles: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    size = max(len(b) for b in bundles)
    items = np.zeros((len(bundles), size), np.int64)
    mask = np.zeros((len(bundles), size), bool)
    for k, b in enumerate(bundles):
        items[k, : len(b)] = b
        mask[k, : len(b)] = True
    return items, mask


def _interest_draws(market: Market, items: np.ndarray, mask: np.ndarray, seg: np.ndarray,
                    seed: int, n_customers: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(wants (B, K, n), audience (B,)): independent interest per product, or
    needs fitted to the market's lift (padded to the largest family)."""
    if market.interest is None:
        return None, None
    interest = np.asarray(market.interest)
    q = np.where(mask, interest[seg[:, None], items], 0.0)
    if market.lift is None:
        return cached_audience(q, seed, n_customers)
    fitted = [bundle_needs(q[b, mask[b]], market.lift, int(seg[b]), items[b, mask[b]])
              for b in range(len(items))]
    m = max(len(rates) for _, rates in fitted)
    rates = np.zeros((len(items), m))
    family = np.zeros((len(items), m, items.shape[1]), bool)
    for b, (fam, r) in enumerate(fitted):
        rates[b, : len(r)] = r
        family[b, : len(r), : fam.shape[1]] = fam
    return cached_audience(rates, seed, n_customers, family)


def prepare_choices(
    market: Market,
    bundles: Sequence[Sequence[int]],
    segments: Sequence[int],
    synergy: float | Sequence[float] = 0.0,
    n_customers: int = 20_000,
    seed: int = 0,
    component_prices: np.ndarray | None = None,
) -> Choices:
    """Draw the visitors (common random numbers) and their best non-bundle option.

    ``component_prices`` (P,) are the single-product prices (default: list prices).
    """
    if len(bundles) == 0:
        raise ValueError("no bundles to simulate")
    if len(segments) != len(bundles):
        raise ValueError(f"segments has {len(segments)} entries for {len(bundles)} bundles")
    items, mask = _pad(bundles)
    seg = np.asarray(segments, np.int64)
    b, size = items.shape
    eps = standard_draws(int(seed), int(n_customers), b, size)  # (B, K, n)
    prices = market.list_price if component_prices is None else np.asarray(component_prices, float)
    # padded slots: worth exp(-1e4) = 0 at price 0, so they add nothing and never win
    mu = np.where(mask, market.mu[seg[:, None], items], -1e4).astype(np.float32)
    sig = np.where(mask, market.sigma[items], 0.0).astype(np.float32)
    p = np.where(mask, prices[items], 0.0).astype(np.float32)
    c = np.where(mask, market.cost[items], 0.0).astype(np.float32)
    syn = np.broadcast_to(np.asarray(synergy, np.float32), (b,)).copy()
    wants, audience = _interest_draws(market, items, mask, seg, seed, n_customers)

    out = {name: np.empty((b, n_customers), np.float32)
           for name in ("parts_worth", "single_surplus", "single_revenue", "single_profit",
                        "single_units")}
    out["single_bought"] = np.empty((b, n_customers), np.int16)
    # a few bundles at a time keeps the working arrays in cache
    for start in range(0, b, _CHUNK):
        rows = slice(start, min(start + _CHUNK, b))
        _singles(eps[rows], mu[rows], sig[rows], p[rows], c[rows],
                 None if wants is None else wants[rows], {k: v[rows] for k, v in out.items()})
    choices = Choices(
        synergy=np.full(b, np.nan, np.float32),
        component_price=p,
        component_cost=c,
        **out,
        alt_surplus=None, alt_revenue=None, alt_profit=None, alt_units=None,
        bundle_cost=c.sum(axis=1).astype(np.float64),
        list_total=(market.list_price[items] * mask).sum(axis=1),
        segments=seg,
        segment_size=np.asarray(market.segment_size, float)[seg],
        audience=audience,
        sizes=mask.sum(axis=1),
    )
    return choices.with_synergy(syn)


_CHUNK = 4


def _singles(eps, mu, sig, p, c, wants, out) -> None:
    """Worth of the parts and what buying each product worth its price brings,
    for a few bundles; ``wants`` (bundles, K, n): products a visitor is in the
    market for (the others are worth 0 to them)."""
    shape = out["parts_worth"].shape
    for name in ("parts_worth", "single_surplus", "single_revenue", "single_profit",
                 "single_units", "single_bought"):
        out[name][...] = 0
    w = np.empty(shape, np.float32)
    buys = np.empty(shape, bool)
    # one (bundles, n) slice per slot keeps every operation contiguous
    for k in range(eps.shape[1]):
        np.multiply(eps[:, k, :], sig[:, k, None], out=w)
        w += mu[:, k, None]
        np.exp(w, out=w)
        if wants is not None:
            w *= wants[:, k, :]
        out["parts_worth"] += w
        w -= p[:, k, None]  # surplus of buying product k
        np.greater(w, 0.0, out=buys)
        out["single_surplus"] += np.maximum(w, 0.0)
        out["single_revenue"] += buys * p[:, k, None]
        out["single_profit"] += buys * (p[:, k, None] - c[:, k, None])
        out["single_units"] += buys
        out["single_bought"] |= buys.astype(np.int16) << k


def _best_alternative(choices: Choices, synergy: np.ndarray) -> dict:
    """alt_surplus, alt_revenue, alt_profit, alt_units (B, n): the products worth
    their price, or all of them when their synergy (worth (1 + synergy) times
    the sum, however bought) makes the whole set better."""
    syn = np.asarray(synergy, np.float32)[:, None]
    p, c = choices.component_price, choices.component_cost
    all_surplus = (np.float32(1.0) + syn) * choices.parts_worth - p.sum(axis=1)[:, None]
    use_all = all_surplus > choices.single_surplus
    k = np.asarray(choices.sizes, np.float32)[:, None]
    return {
        "alt_surplus": np.maximum(all_surplus, choices.single_surplus),
        "alt_revenue": np.where(use_all, p.sum(axis=1)[:, None], choices.single_revenue),
        "alt_profit": np.where(use_all, (p - c).sum(axis=1)[:, None], choices.single_profit),
        "alt_units": np.where(use_all, k, choices.single_units),
    }


@dataclass(frozen=True)
class SimulationResult:
    """Per-bundle outcomes (``per_bundle``, one row per bundle) and totals.

    Every value has a ``*_se`` column: the Monte-Carlo standard error.
    Per-visitor values are means over the bundle's segment's simulated
    visitors; units/revenue/profit are per period (× segment size).
    """

    per_bundle: pd.DataFrame
    totals: pd.DataFrame  # one row: summed over bundles, SEs combined in quadrature


_METRICS = ("take_rate", "units", "revenue", "profit", "consumer_surplus", "cannibalised_units")


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row means and their standard errors of a (B, n) float32 array, fast."""
    n = x.shape[1]
    mean = x.sum(axis=1, dtype=np.float64) / n
    second = np.einsum("ij,ij->i", x, x, dtype=np.float64) / n
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0) / n)


def evaluate(choices: Choices, prices: np.ndarray) -> SimulationResult:
    """Outcomes of offering each bundle at ``prices`` (B,); cheap, reuses the draws."""
    p = np.asarray(prices, np.float32)[:, None]
    b, n = choices.parts_worth.shape
    names = ("revenue", "profit", "consumer_surplus", "cannibalised_units")
    sums = {name: np.empty((2, b)) for name in names}
    rate = np.empty(b)
    cost = choices.bundle_cost[:, None].astype(np.float32)
    one = np.float32(1.0)
    for start in range(0, b, _CHUNK):  # a few bundles at a time stays in cache
        r = slice(start, min(start + _CHUNK, b))
        worth = (one + choices.synergy[r, None].astype(np.float32)) * choices.parts_worth[r]
        alt_pos = np.maximum(choices.alt_surplus[r], np.float32(0.0))
        bundle_surplus = worth - p[r]
        take = bundle_surplus >= alt_pos
        rate[r] = np.count_nonzero(take, axis=1) / n
        per_visitor = {
            "revenue": np.where(take, p[r], choices.alt_revenue[r]),
            "profit": np.where(take, p[r] - cost[r], choices.alt_profit[r]),
            "consumer_surplus": np.maximum(bundle_surplus, alt_pos),
            "cannibalised_units": np.where(take, choices.alt_units[r], np.float32(0.0)),
        }
        for name, v in per_visitor.items():
            sums[name][:, r] = _mean_se(v)
    rate_se = np.sqrt(rate * (1 - rate) / n)
    size = choices.reach  # per simulated visitor -> per period
    share = choices.audience_share  # per simulated visitor -> per visitor of the segment
    out = {
        "segment": choices.segments,
        "bundle_price": p[:, 0].astype(float),
        "take_rate": rate * share,
        "take_rate_se": rate_se * share,
        "units": rate * size,
        "units_se": rate_se * size,
    }
    for name in names:
        out[name], out[name + "_se"] = sums[name][0] * size, sums[name][1] * size
    frame = pd.DataFrame(out)
    frame["margin"] = np.where(frame["revenue"] > 0, frame["profit"] / frame["revenue"], 0.0)
    totals = {}
    for name in _METRICS[1:]:
        totals[name] = [frame[name].sum()]
        totals[name + "_se"] = [float(np.sqrt((frame[name + "_se"] ** 2).sum()))]
    tot = pd.DataFrame(totals)
    tot["margin"] = np.where(tot["revenue"] > 0, tot["profit"] / tot["revenue"], 0.0)
    return SimulationResult(per_bundle=frame, totals=tot)


def simulate(
    market: Market,
    bundles: Sequence[Sequence[int]],
    segments: Sequence[int],
    prices: np.ndarray,
    synergy: float | Sequence[float] = 0.0,
    n_customers: int = 20_000,
    seed: int = 0,
) -> SimulationResult:
    """One-call simulation: ``prepare_choices`` then ``evaluate``."""
    choices = prepare_choices(market, bundles, segments, synergy, n_customers, seed)
    return evaluate(choices, prices)


def price_curve(choices: Choices, bundle: int, n_points: int = 80) -> pd.DataFrame:
    """Revenue, profit and take rate of one bundle over prices from 40 % to 100 % of
    its list total (the other bundles do not matter: each is offered on its own)."""
    one = Choices(**{
        f.name: (value if value is None or np.ndim(value) == 0 else value[[bundle]])
        for f in fields(choices) for value in [getattr(choices, f.name)]
    })
    grid = np.linspace(0.4, 1.0, n_points) * one.list_total[0]
    rows = [evaluate(one, np.array([p])).per_bundle.iloc[0] for p in grid]
    return pd.DataFrame(rows).reset_index(drop=True)
