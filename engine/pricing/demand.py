"""Lognormal willingness to pay per segment and product, calibrated on the data.

Model (DESIGN.md "Demand and prices"): a visitor of segment s who is in the
market for product i values it at w = exp(mu_si + sigma_i * eps), eps ~ N(0, 1),
and buys it when w >= price. The take rate at price p is
t(p) = 1 − Φ((ln p − mu_si) / sigma_i).

**sigma from price variation.** The same product is sold at reduced prices in
some weeks. For each product the weekly purchase rate (orders per week, from
weeks with a sale, corrected for the missing zero-sale weeks as a zero-truncated
Poisson, pooled over the products ever on promotion) at each discount d is
divided by the rate at the list price. These lifts follow R(d) = S(z + ln(1 − d)/sigma) / S(z) with
S = 1 − Φ and z = (ln list − mu)/sigma; a two-parameter least-squares fit gives
sigma and the typical take rate at list price 1 − Φ(z). With fewer than
``min_price_weeks`` reduced-price product-weeks the data says too little and
sigma comes from the analyst's elasticity instead. So it does when reduced
prices did not raise sales (lifts at or below 1): the fit is then pinned to its
bounds (take rate 1 − Φ(−2) = 0.977 and the widest sigma), which would read as
"every visitor in the market buys at list price". Online Retail is such a case:
its lower unit prices are quantity tiers of wholesale orders, not promotions,
and the source is named ``NO_PRICE_RESPONSE``.

**sigma from an elasticity.** The own-price elasticity of t at the list price is
e = φ(z) / (sigma · (1 − Φ(z))), so sigma = φ(z0) / ((1 − Φ(z0)) · e) at the
reference take rate t0 = 1 − Φ(z0) (0.5: sigma = 0.798 / e).

**Interest and mu from purchase shares.** The purchase share of product i in
segment s is the share of the segment's visits (customer-weeks with an order)
that include i, shrunk towards the all-customer share with ``share_shrinkage``
pseudo-visits. Not every visitor is in the market for every product, so a share
is interest × take rate: q_si · t_si. The take rate among the interested at list
price is the pooled take rate times the segment's relative share,
t_si = t̄ · (share_si / share_i)^γ, clipped; γ (``share_weight``) is the part
of a segment buying more that is put down to valuing the product more rather
than to more of its visitors looking at it, an assumption the order lines
cannot settle. The sample market, whose truth is known, can: judged in its true
market, the profit the planted bundles add at prices from the calibrated demand
is 0.13 of that at true-demand prices with γ = 0.5, 0.30 with 0.25, 0.94 with
0.1 and 0.97 with 0.05, the default (its segments differ mostly in what they
look at: 9 times more considerations of a liked category, 2 times the take
rate). Then q_si = share_si / t_si (the simulated share at list price
equals the data's) and mu_si = ln(list_i) − sigma_i · Φ⁻¹(1 − t_si). Without the
interest share every visitor would be in the market for every product and the
take rate at list price would be the share itself, or, with a take rate near 1,
nearly every visitor would take every bundle.

**Joint interest.** The visits (customer-weeks) are kept as a visit × product
matrix (``segment_visits``), so the market can ask, for any bundle, how much
more often the segment's visits bought all of its products than chance
(``interest.VisitLift``, shrunk towards 1 with ``share_shrinkage`` pseudo-
visits); the simulator fits needs to it (engine/pricing/interest.py), and
``interest_fit`` reports how well the simulated shares match the observed.

**Synergy** is not read here: lift is what joint interest produces, and reading
it as synergy too would count it twice. The model keeps the visits and each
product's price per week (``promotions``) so that ``engine.pricing.synergy``
can read each bundle's synergy from the cross-price response.

**Seasons** change how many visitors are in the market (``for_month`` scales
the interest), not what the interested would pay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import brentq, least_squares
from scipy.stats import norm

from engine import columns as C
from engine.data.dataset import Dataset
from engine.pricing.interest import VisitLift
from engine.pricing.promotions import PromotionWeeks, promotion_weeks
from engine.pricing.simulate import Market

log = logging.getLogger(__name__)

FROM_DATA = "price variation in the data"
FROM_ELASTICITY = "analyst elasticity setting"
NO_PRICE_RESPONSE = "analyst elasticity setting (reduced prices in the data did not raise sales)"
COST_FROM_DATA = "cost in the catalogue"
COST_ASSUMED = "assumed cost share"


@dataclass(frozen=True)
class DemandConfig:
    """Calibration settings.

    elasticity : analyst's own-price elasticity at list price (magnitude),
        used when the data has too little price variation (or ``force_elasticity``).
    reference_take_rate : take rate at list price assumed with the elasticity.
    min_price_weeks : reduced-price product-weeks needed to trust the data.
    share_shrinkage : pseudo-visits pulling a segment's share to the overall share.
    share_weight : part of a segment's log relative share put down to willingness
        to pay (the rest to interest: which products its visitors look at).
    synergy : the analyst's synergy for every bundle (None: from the data's
        cross-price response, ``engine.pricing.synergy``; never from lift, which
        is what joint interest produces too).
    synergy_from_promotions : read each bundle's synergy from the cross-price
        response (False: 0 unless the analyst sets one). Off by default until the
        joint interest is fitted given the synergy: the needs are fitted to the
        lift as if there were none, so a fitted synergy on top makes the market
        sell the whole set more often than the data does.
    synergy_cap : the largest synergy the fit may return.
    synergy_prior_sd : standard deviation of the normal prior (mean 0) the fitted
        synergy is shrunk with: an estimate the data cannot tell from 0 goes to 0.
    min_promo_visits : promotion visits of a bundle's products in its segment
        needed to try the fit at all (fewer: synergy 0).
    cost_share : cost as a share of list price where the catalogue has no cost.
    segment_visitors : visitors per period of each segment in the simulation
        (None: each segment's customers in the data).
    joint_interest : interest in a bundle's products drawn jointly, so that the
        simulated share of visits buying all of them matches the data's (False:
        independently, as if co-purchase were chance).
    """

    elasticity: float = 2.0
    force_elasticity: bool = False
    reference_take_rate: float = 0.5
    min_price_weeks: int = 30
    share_shrinkage: float = 20.0
    share_weight: float = 0.05
    synergy: float | None = None
    synergy_from_promotions: bool = False
    synergy_cap: float = 1.0
    synergy_prior_sd: float = 0.3
    min_promo_visits: int = 50
    cost_share: float = 0.6
    take_rate_bounds: tuple[float, float] = (0.02, 0.98)
    segment_visitors: tuple[float, ...] | None = None
    joint_interest: bool = True

    def __post_init__(self) -> None:
        if self.segment_visitors is not None:
            object.__setattr__(self, "segment_visitors",
                               tuple(float(v) for v in self.segment_visitors))
            if min(self.segment_visitors, default=0) < 0 or sum(self.segment_visitors) <= 0:
                raise ValueError(f"segment_visitors must be ≥ 0 with a positive total, got "
                                 f"{list(self.segment_visitors)}")
        if self.elasticity <= 0:
            raise ValueError(f"elasticity must be > 0, got {self.elasticity}")
        if not 0 < self.reference_take_rate < 1:
            raise ValueError(
                f"reference_take_rate must be in (0, 1), got {self.reference_take_rate}"
            )
        if not 0 <= self.cost_share < 1:
            raise ValueError(f"cost_share must be in [0, 1), got {self.cost_share}")
        if self.synergy_cap < 0 or (self.synergy is not None and self.synergy < 0):
            raise ValueError("synergy and synergy_cap must be >= 0")
        if self.synergy_prior_sd < 0 or self.min_promo_visits < 0:
            raise ValueError(f"synergy_prior_sd and min_promo_visits must be >= 0, got "
                             f"{self.synergy_prior_sd} and {self.min_promo_visits}")


@dataclass(frozen=True)
class DemandModel:
    """Calibrated willingness to pay.

    mu, take_rate : (S, P); take_rate is among the visitors in the market for the
        product; sigma, list_price, cost : (P,);
    segment_size : (S,) customers per segment (each sees its offers once a period);
    sigma_source, cost_source : (P,) where each value came from;
    interest : (S, P) share of the segment's visitors in the market for each
        product (None: all of them).
    lift : joint interest read from the visits (``interest.VisitLift``): the
        simulated share of visits buying all of a bundle's products matches the
        data's, as the single shares do; None: independent interest.
    promotions : the visits and each product's price per week, which the
        bundles' synergy is read from (``engine.pricing.synergy``); None when
        ``synergy_from_promotions`` is off.
    """

    mu: np.ndarray
    sigma: np.ndarray
    take_rate: np.ndarray
    list_price: np.ndarray
    cost: np.ndarray
    segment_size: np.ndarray
    sigma_source: np.ndarray
    cost_source: np.ndarray
    interest: np.ndarray | None = None
    lift: VisitLift | None = field(default=None, compare=False, repr=False)
    promotions: PromotionWeeks | None = field(default=None, compare=False, repr=False)

    @property
    def n_segments(self) -> int:
        return int(self.mu.shape[0])

    @property
    def n_products(self) -> int:
        return int(self.mu.shape[1])

    def market(self, mix: Sequence[float] | None = None, visitors: float | None = None) -> Market:
        """The simulator's market; ``mix``/``visitors`` override the segment sizes."""
        m = Market(self.mu, self.sigma, self.list_price, self.cost,
                   self.segment_size.astype(float), self.interest, self.lift)
        if mix is None:
            return m
        return m.with_segment_mix(mix, self.segment_size.sum() if visitors is None else visitors)

    def with_take_rate(self, take_rate: np.ndarray) -> DemandModel:
        lo, hi = 1e-4, 1 - 1e-4
        t = np.clip(take_rate, lo, hi)
        mu = np.log(self.list_price)[None, :] - self.sigma[None, :] * norm.ppf(1 - t)
        return replace(self, mu=mu, take_rate=t)

    def with_elasticity(self, elasticity: float, reference_take_rate: float = 0.5) -> DemandModel:
        """Same take rates at list price, sigma from the analyst's elasticity."""
        sigma = np.full(self.n_products, sigma_from_elasticity(elasticity, reference_take_rate))
        src = np.full(self.n_products, FROM_ELASTICITY, dtype=object)
        return replace(self, sigma=sigma, sigma_source=src).with_take_rate(self.take_rate)

    def for_month(self, index: np.ndarray) -> DemandModel:
        """Demand in a month with seasonal index ``index`` (P,) per product (mean 1):
        more (or fewer) visitors in the market; without interest shares, higher take rates."""
        index = np.asarray(index, float)[None, :]
        if self.interest is None:
            return self.with_take_rate(self.take_rate * index)
        return replace(self, interest=np.clip(self.interest * index, 0.0, 1.0))

    def warnings(self) -> list[str]:
        """What an analyst should know about where this demand came from, in words
        (for the run report): an elasticity used because the data's reduced prices
        did not raise sales, or costs assumed rather than read."""
        out = []
        pinned = int((self.sigma_source == NO_PRICE_RESPONSE).sum())
        if pinned:
            out.append(
                f"price sensitivity of {pinned:,} products from the elasticity setting: the "
                "data's reduced prices did not raise sales (quantity tiers rather than "
                "promotions?), so its price response was not used"
            )
        assumed = int((self.cost_source == COST_ASSUMED).sum())
        if assumed:
            out.append(f"unit cost of {assumed:,} products assumed from the margin setting "
                       "(the catalogue gives none)")
        return out

    def sources(self, product_ids: Sequence | None = None) -> pd.DataFrame:
        """Per product: sigma and cost and where each came from (for the page)."""
        out = pd.DataFrame(
            {
                "sigma": self.sigma,
                "sigma_source": self.sigma_source,
                "cost": self.cost,
                "cost_source": self.cost_source,
            }
        )
        if product_ids is not None:
            out.insert(0, C.PRODUCT_ID, list(product_ids))
        return out


def sigma_from_elasticity(elasticity: float, reference_take_rate: float = 0.5) -> float:
    """sigma giving own-price elasticity ``elasticity`` at the reference take rate."""
    z0 = norm.ppf(1 - reference_take_rate)
    return float(norm.pdf(z0) / (norm.sf(z0) * elasticity))


def elasticity_from_sigma(sigma: float, take_rate: float = 0.5) -> float:
    z = norm.ppf(1 - take_rate)
    return float(norm.pdf(z) / (norm.sf(z) * sigma))


def _weekly_rates(dataset: Dataset) -> pd.DataFrame:
    """Per product, week and discount bucket: weeks seen and orders per week."""
    lines = dataset.lines
    week = lines[C.TIMESTAMP].dt.to_period("W").astype(str)
    lst = dataset.products[C.PRICE].to_numpy(float)[lines[C.PRODUCT_IDX].to_numpy()]
    if C.REGULAR_PRICE in lines:  # the export's own undiscounted price: real promotions
        lst = np.where(np.isfinite(lines[C.REGULAR_PRICE].to_numpy(float)),
                       lines[C.REGULAR_PRICE].to_numpy(float), lst)
    pw = pd.DataFrame(
        {
            "p": lines[C.PRODUCT_IDX].to_numpy(),
            "week": week.to_numpy(),
            "order": lines[C.ORDER_ID].to_numpy(),
            "paid": lines[C.UNIT_PRICE].to_numpy(float),
            "list": lst,
        }
    )
    g = pw.groupby(["p", "week"]).agg(
        orders=("order", "nunique"), paid=("paid", "median"), list=("list", "median")
    )
    # promotions come in 5 % steps; above list counts as list
    g["discount"] = (np.clip(1 - g["paid"] / g["list"], 0, 0.9) / 0.05).round() * 0.05
    return g.reset_index()


def _truncated_poisson_rate(mean_given_positive: float) -> float:
    """lambda with E[N | N > 0] = m for N ~ Poisson(lambda) (weeks without sales are unseen)."""
    m = max(mean_given_positive, 1.0 + 1e-3)
    return brentq(lambda lam: lam / -np.expm1(-lam) - m, 1e-6, 1e3)


def estimate_price_response(dataset: Dataset, min_price_weeks: int = 30) -> dict | None:
    """Pooled (sigma, take rate at list) from promotions, or None if too few.

    Returns dict(sigma, take_rate, n_reduced_weeks, lifts) where ``lifts`` is the
    per-discount pooled rate ratio (and weeks) the fit used.
    """
    g = _weekly_rates(dataset)
    # only products seen on promotion, so list and reduced weeks mix the same products
    g = g[g["p"].isin(g.loc[g["discount"] > 0, "p"].unique())]
    n_reduced = int((g["discount"] > 0).sum())
    if n_reduced < min_price_weeks:
        return None
    # pooled per discount level: orders per week with a sale -> Poisson rate
    pooled = g.groupby("discount").agg(mean=("orders", "mean"), weeks=("orders", "size"))
    rate = pooled["mean"].map(_truncated_poisson_rate)
    lifts = pd.DataFrame({"lift": rate / rate.loc[0.0], "weeks": pooled["weeks"]}).drop(index=0.0)
    d = lifts.index.to_numpy(float)
    obs, w = lifts["lift"].to_numpy(), np.sqrt(lifts["weeks"].to_numpy())

    def resid(x):
        z, sigma = x
        pred = norm.sf(z + np.log1p(-d) / sigma) / norm.sf(z)
        return w * (np.log(pred) - np.log(obs))

    lower, upper = np.array([-2.0, 0.05]), np.array([2.0, 2.0])
    fit = least_squares(resid, x0=[0.0, 0.5], bounds=(lower, upper))
    if not fit.success:
        log.warning("price response fit failed: %s", fit.message)
        return None
    z, sigma = fit.x
    # lifts that discounts do not raise pin the fit to its bounds (take rate 1 − Φ(−2),
    # widest sigma): the reduced prices carry no price response (on Online Retail they
    # are quantity tiers of wholesale orders, not promotions)
    pinned = bool((np.isclose(fit.x, lower, atol=1e-3) | np.isclose(fit.x, upper, atol=1e-3)).any())
    return {
        "sigma": float(sigma),
        "take_rate": float(norm.sf(z)),
        "n_reduced_weeks": n_reduced,
        "lifts": lifts.reset_index(),
        "pinned": pinned,
    }


def segment_visits(dataset: Dataset, segment_labels: np.ndarray) -> VisitLift:
    """The segments' visits (customer-weeks with an order) and what each bought,
    as the co-purchase counts of any set of products per segment."""
    lines = dataset.lines
    labels = np.asarray(segment_labels)
    if labels.shape != (dataset.n_customers,):
        raise ValueError(
            f"segment_labels has shape {labels.shape}, expected ({dataset.n_customers},)"
        )
    week = lines[C.TIMESTAMP].dt.to_period("W").to_numpy()
    cust = lines[C.CUSTOMER_IDX].to_numpy()
    visit_key = pd.MultiIndex.from_arrays([cust, week])
    visit, uniques = pd.factorize(visit_key)
    visit_customer = uniques.get_level_values(0).to_numpy()
    matrix = sp.csr_matrix(
        (np.ones(len(visit), np.int8), (visit, lines[C.PRODUCT_IDX].to_numpy())),
        shape=(len(uniques), dataset.n_products),
    )
    matrix.data[:] = 1
    return VisitLift(matrix, labels[visit_customer], int(labels.max()) + 1)


def purchase_shares(
    dataset: Dataset, segment_labels: np.ndarray, shrinkage: float = 20.0,
    visits: VisitLift | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(S × P shrunk share of segment visits including each product, (P,) overall share)."""
    visits = visits or segment_visits(dataset, segment_labels)
    counts = visits.single_counts()
    n_visits = visits.n_visits
    overall = (counts.sum(0) + 0.5) / (n_visits.sum() + 1.0)
    share = (counts + shrinkage * overall[None, :]) / (n_visits[:, None] + shrinkage)
    return share, overall


def calibrate_demand(
    dataset: Dataset, segment_labels: np.ndarray, config: DemandConfig | None = None
) -> DemandModel:
    """Demand model whose take rates at list price match the data's purchase shares."""
    config = config or DemandConfig()
    n_p = dataset.n_products
    response = (
        None
        if config.force_elasticity
        else estimate_price_response(dataset, config.min_price_weeks)
    )
    source = FROM_ELASTICITY
    if response is not None and response["pinned"]:
        log.warning(
            "reduced prices in %d product-weeks did not raise sales (fit pinned at sigma %.2f, "
            "take rate %.3f): price sensitivity from the elasticity setting",
            response["n_reduced_weeks"], response["sigma"], response["take_rate"],
        )
        response, source = None, NO_PRICE_RESPONSE
    if response is None:
        sigma = np.full(n_p, sigma_from_elasticity(config.elasticity, config.reference_take_rate))
        sigma_source = np.full(n_p, source, dtype=object)
        base_take = config.reference_take_rate
    else:
        sigma = np.full(n_p, response["sigma"])
        sigma_source = np.full(n_p, FROM_DATA, dtype=object)
        base_take = response["take_rate"]
        log.info(
            "price response from %d reduced-price product-weeks: sigma %.3f, take rate %.2f",
            response["n_reduced_weeks"],
            response["sigma"],
            base_take,
        )
    visits = segment_visits(dataset, segment_labels)
    visits.shrinkage = config.share_shrinkage
    share, overall = purchase_shares(dataset, segment_labels, config.share_shrinkage, visits)
    lo, hi = config.take_rate_bounds
    take = np.clip(base_take * (share / overall[None, :]) ** config.share_weight, lo, hi)
    interest = np.clip(share / take, 0.0, 1.0)
    list_price = dataset.products[C.PRICE].to_numpy(float)
    cost = dataset.products[C.COST].to_numpy(float)
    known = np.isfinite(cost)
    cost = np.where(known, cost, list_price * config.cost_share)
    sizes = np.bincount(np.asarray(segment_labels), minlength=share.shape[0]).astype(float)
    model = DemandModel(
        mu=np.zeros_like(share),
        sigma=sigma,
        take_rate=take,
        list_price=list_price,
        cost=cost,
        segment_size=sizes,
        sigma_source=sigma_source,
        cost_source=np.where(known, COST_FROM_DATA, COST_ASSUMED).astype(object),
        interest=interest,
        lift=visits if config.joint_interest else None,
        # the slowest part of a calibration, so read only when the synergy is
        promotions=(promotion_weeks(dataset, segment_labels)
                    if config.synergy_from_promotions else None),
    )
    return model.with_take_rate(take)


def seasonal_index(dataset: Dataset, prior_orders: float = 5.0) -> pd.DataFrame:
    """Monthly demand index per category (rows) and month 1..12 (columns), mean 1.

    Orders per category and month over the mean month, shrunk towards 1 with
    ``prior_orders`` pseudo-orders per month; months without data are 1.
    """
    lines = dataset.lines
    cat = dataset.products[C.CATEGORY].to_numpy(object)[lines[C.PRODUCT_IDX].to_numpy()]
    frame = pd.DataFrame(
        {"category": cat, "month": lines[C.TIMESTAMP].dt.month.to_numpy(), "o": lines[C.ORDER_ID]}
    )
    counts = (
        frame.drop_duplicates()
        .groupby(["category", "month"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=range(1, 13), fill_value=0)
        .astype(float)
    )
    seen = counts.gt(0).any(axis=0)  # months covered by the data at all
    mean = counts.loc[:, seen].mean(axis=1)
    index = (counts.add(prior_orders)).div(mean + prior_orders, axis=0)
    index.loc[:, ~seen] = 1.0
    index = index.div(index.mean(axis=1), axis=0)
    index.columns.name = "month"
    return index


def month_index(dataset: Dataset, index: pd.DataFrame, month: int) -> np.ndarray:
    """(P,) seasonal index of each product's category for ``month`` (1 where unknown)."""
    cats = dataset.products[C.CATEGORY]
    return cats.map(index[month]).fillna(1.0).to_numpy(float)


def interest_fit(model: DemandModel, items: Sequence[Sequence[int]], segments: Sequence[int],
                 synergy: float | Sequence[float] = 0.0, n_customers: int = 20_000,
                 seed: int = 0) -> pd.DataFrame:
    """How well the calibrated market reproduces the data, per bundle: the share of
    the segment's visits buying all of its products (observed, simulated with the
    model's interest, and simulated with interest drawn independently) and the
    mean share buying each product (observed and simulated), no bundle offered."""
    from engine.pricing.simulate import prepare_choices

    if model.lift is None:
        raise ValueError("the demand model has no visit data (joint_interest is off)")
    market = model.market()
    joint = prepare_choices(market, items, segments, synergy, n_customers, seed).bought_shares()
    alone = prepare_choices(replace(market, lift=None), items, segments, synergy, n_customers,
                            seed).bought_shares()
    rows = []
    for b, (bundle, seg) in enumerate(zip(items, segments, strict=True)):
        k = len(bundle)
        singles = [model.lift.shares([i])[seg] for i in bundle]
        rows.append({
            "bundle": b, "segment": int(seg), "products": k,
            "observed_all": float(model.lift.shares(bundle)[seg]),
            "simulated_all": float(joint[b, -1]),
            "independent_all": float(alone[b, -1]),
            "observed_single": float(np.mean(singles)),
            "simulated_single": float(joint[b, :k].mean()),
        })
    return pd.DataFrame(rows)
