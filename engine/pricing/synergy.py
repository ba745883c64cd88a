"""Synergy per bundle from the cross-price response in the data, not from lift.

Lift cannot tell "the visitors who want A also want B" (joint interest) from
"A is worth more with B" (synergy): both make the pair sell together.
Promotions can. In the simulator's market (``engine/pricing/simulate.py``) a
visitor without the bundle buys each product worth its price to them, so with
no synergy the price of A does not enter the decision on B at all: a promotion
on A leaves the share of visits buying B where it was, however joint the
interest. With synergy s the whole set is worth (1 + s) times its parts, so a
cheaper A makes the whole set pay for more visitors, and B's share rises.

**Observed response.** For each ordered pair (a, b) of a bundle's products, in
the bundle's segment's visits (customer-weeks of the shop's promotion calendar,
``engine.pricing.promotions``): the share of visits buying b in weeks when a was
on promotion minus the share in weeks when a sold at its regular price, with
the bundle's other products not on promotion in either (weeks where a's price is
unknown, because it did not sell, count in neither). Its variance is binomial
with the pooled share, p̄(1 − p̄)(1/n₁ + 1/n₀).

**From response to synergy.** The calibrated market is simulated on common
random numbers once at regular prices and once with each product a at its mean
observed promotion discount; Δ_ab(s) is the simulated change in the share buying
b, exactly 0 at s = 0 and rising with s. The synergy is the weighted
least-squares fit ŝ = argmin over [0, cap] of Σ (Δ_ab − Δ_ab(s))² / var_ab over
the ordered pairs (for a triple, its six), and its standard error is
1 / √(Σ Δ'_ab(ŝ)² / var_ab). A triple is fitted as a whole: the simulator's
synergy belongs to the whole set.

**Shrinkage (a normal prior, not empirical Bayes).** Synergy is a priori 0 with
standard deviation ``synergy_prior_sd``; the posterior mean under that prior
and the fit's normal likelihood is ŝ · τ² / (τ² + se²), so an estimate the data
cannot tell from 0 (few promotions, rare products, a small segment) goes to 0,
and a precise one stays. Below ``min_promo_visits`` promotion visits the fit is
not tried: the synergy is 0. Where the data's reduced prices did not raise the
products' own sales (``demand.NO_PRICE_RESPONSE``: quantity tiers, not
promotions), they cannot show a cross-price response either: 0 as well.
The analyst's ``DemandConfig.synergy`` overrides all of this; without
``synergy_from_promotions`` the synergy is 0 (see ``DemandConfig``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from engine.pricing.demand import NO_PRICE_RESPONSE, DemandConfig, DemandModel
from engine.pricing.promotions import MIN_DISCOUNT, PromotionWeeks
from engine.pricing.simulate import Market

log = logging.getLogger(__name__)

BY_ANALYST = "set by the analyst"
TOO_FEW = "shrunk to 0: too few promotions"
NOT_READ = "0: not read from the data (synergy_from_promotions is off)"
NOT_PROMOTIONS = "0: the data's reduced prices did not raise sales (not promotions)"
SIMULATED_VISITORS = 5_000
_STEP = 0.05  # grid step of the synergies tried


def from_response(n_visits: int) -> str:
    return f"cross-price response ({n_visits:,} promo visits)"


@dataclass(frozen=True)
class SynergyEstimate:
    """Synergy per bundle and where it came from.

    values : (B,) the synergy the simulator uses; sources : (B,) in words;
    table : one row per bundle: promo visits, the fitted synergy before shrinkage
        (``fitted``) and its standard error, the value used and its source.
    """

    values: np.ndarray
    sources: tuple[str, ...]
    table: pd.DataFrame


def _patterns(bought: np.ndarray) -> np.ndarray:
    """(v,) bitmask of the bundle's products each visit bought (bit k: product k)."""
    return (bought.astype(np.int64) << np.arange(bought.shape[1])).sum(axis=1)


def cross_price_response(promotions: PromotionWeeks, segment: int,
                         items: Sequence[int]) -> pd.DataFrame:
    """The bundle's purchase patterns in the segment's visits, by promotion:
    one row per condition, ``promoted`` = -1 for weeks with every product at its
    regular price, else the product on promotion (the others at regular prices);
    ``visits``, the mean ``discount`` of the promoted product and, per non-empty
    subset (bitmask column ``1`` … ``2^K − 1``), the share of visits buying
    exactly that subset of the bundle. A product whose price a week does not
    show (it did not sell) leaves that week out of the regular condition."""
    items = [int(i) for i in items]
    rows_in = promotions.segment == int(segment)
    week = promotions.week[rows_in]
    pattern = _patterns(promotions.bought[:, items][rows_in].toarray() > 0)
    disc = promotions.discount[items][:, week]  # (K, v)
    known = np.isfinite(disc)
    promo = np.nan_to_num(disc, nan=0.0) >= MIN_DISCOUNT
    n_cells = 1 << len(items)
    conditions = [(-1, known.all(axis=0) & ~promo.any(axis=0), None)]
    for j, a in enumerate(items):
        conditions.append((a, promo[j] & ~np.delete(promo, j, axis=0).any(axis=0), j))
    out = []
    for promoted, mask, j in conditions:
        n = int(mask.sum())
        shares = np.bincount(pattern[mask], minlength=n_cells) / max(n, 1)
        d = float(disc[j, mask].mean()) if j is not None and n else 0.0
        out.append({"promoted": promoted, "visits": n, "discount": d,
                    **{c: float(shares[c]) for c in range(1, n_cells)}})
    return pd.DataFrame(out)


class _Decisions:
    """The simulated visitors' choices at one set of prices, per need (the
    non-empty subsets T of the bundle a visitor is in the market for), for every
    synergy of a grid at once. The simulator's rule: each product worth its
    price, or the whole bundle when (1 + s) times the worth of the wanted
    products less the bundle's prices beats that and is positive. A visitor takes
    the whole bundle exactly when s > s* = (single surplus + bundle prices) /
    worth − 1, so one pass over the visitors serves every s."""

    def __init__(self, w: np.ndarray, prices: np.ndarray) -> None:
        k = w.shape[0]
        bits = 1 << np.arange(k)
        wanted = ((np.arange(1, 1 << k)[:, None] & bits[None, :]) > 0)[:, :, None]  # (T, K, 1)
        worth = np.where(wanted, w[None, :, :], 0.0)
        gain = worth - prices[None, :, None]
        single = np.maximum(gain, 0.0).sum(axis=1)  # (T, n)
        self.bought = (((gain >= 0) & wanted) * bits[None, :, None]).sum(axis=1)
        with np.errstate(divide="ignore"):
            self.threshold = (single + prices.sum()) / worth.sum(axis=1) - 1.0
        self.n_cells = 1 << k

    def shares(self, grid: np.ndarray) -> np.ndarray:
        """(G, T, C − 1) share of the visitors with each need buying each non-empty
        subset, at each synergy of ``grid`` (increasing)."""
        t, n = self.bought.shape
        g = len(grid)
        first = np.searchsorted(grid, self.threshold, side="right")  # (T, n): whole from here
        key = (np.arange(t)[:, None] * self.n_cells + self.bought) * (g + 1) + first
        hist = np.bincount(key.ravel(), minlength=t * self.n_cells * (g + 1))
        hist = hist.reshape(t, self.n_cells, g + 1).astype(float)
        # still on their own choice at grid point j: those whose whole starts after j
        alone = np.cumsum(hist[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # (T, C, G)
        whole = np.cumsum(hist.sum(axis=1), axis=1)[:, :g]  # (T, G): whole by grid point j
        alone[:, -1, :] += whole
        return np.moveaxis(alone[:, 1:, :], 2, 0) / n


def fit_synergy(market: Market, items: Sequence[int], segment: int, observed: pd.DataFrame,
                cap: float, n_customers: int = SIMULATED_VISITORS,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Q(s) over a grid of synergies in [0, cap]: (grid, Q), the weighted squared
    misfit between the observed and the modelled change of the purchase patterns
    under each promotion (``cross_price_response``).

    The modelled patterns: a visitor of the segment has a need for a subset T of
    the bundle at rate λ_T (the interest model of ``engine.pricing.interest``,
    to first order in the rates) and the segment's willingness to pay for its
    products (the calibrated mu, sigma; the same draws at every price and s).
    For each s the needs λ(s) are fitted (non-negative least squares) to the
    patterns at regular prices, so every s explains the co-purchase levels; the
    promotions then tell the synergies apart: with s = 0 a cheaper product
    raises each pattern containing it by its own take-rate response, with
    synergy the set, already bought whole, responds less and the other products
    rise with it.
    """
    items = [int(i) for i in items]
    k = len(items)
    n_cells = 1 << k
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((k, n_customers))
    seg = int(segment)
    w = np.exp(market.mu[seg, items][:, None] + market.sigma[items][:, None] * eps)
    regular = market.list_price[items].astype(float)
    base = observed[observed["promoted"] == -1].iloc[0]
    cells = list(range(1, n_cells))
    p0 = base[cells].to_numpy(float)
    n0 = float(base["visits"])
    promos = observed[observed["promoted"] != -1]
    grid = np.linspace(0.0, cap, max(int(round(cap / _STEP)) + 1, 2))
    f0 = _Decisions(w, regular).shares(grid)  # (G, T, C-1)
    weight = 1.0 / np.sqrt(np.maximum(p0, 1.0 / n0))
    lam = np.array([nnls((f * weight[None, :]).T, p0 * weight)[0] for f in f0])  # (G, T)
    q = np.zeros(len(grid))
    for _, row in promos.iterrows():
        prices = regular.copy()
        prices[items.index(int(row["promoted"]))] *= 1.0 - row["discount"]
        p1, n1 = row[cells].to_numpy(float), float(row["visits"])
        pooled = np.maximum((p1 * n1 + p0 * n0) / (n1 + n0), 0.5 / (n1 + n0))
        var = pooled * (1 - pooled) * (1 / n1 + 1 / n0)
        change = np.einsum("gt,gtc->gc", lam, _Decisions(w, prices).shares(grid) - f0)
        q += ((p1 - p0 - change) ** 2 / var).sum(axis=1)
    return grid, q


def shrink(grid: np.ndarray, q: np.ndarray, prior_sd: float) -> tuple[float, float, float]:
    """(ŝ, se, shrunk) from the misfit Q(s) on ``grid`` (−2 log-likelihood up to a
    constant): ŝ minimises Q, se = √(2 / Q''(ŝ)), and the shrunk synergy is the
    posterior mode under a N(0, prior_sd²) prior: the minimum of Q(s) + s² / prior_sd²."""
    best = int(np.argmin(q))
    mid = min(max(best, 1), len(grid) - 2)
    h = grid[1] - grid[0]
    curve = (q[mid - 1] - 2 * q[mid] + q[mid + 1]) / h**2
    se = float(np.sqrt(2.0 / curve)) if curve > 0 else np.inf
    if prior_sd <= 0:
        return float(grid[best]), se, 0.0
    shrunk = float(grid[int(np.argmin(q + grid**2 / prior_sd**2))])
    return float(grid[best]), se, shrunk


def estimate_synergy(model: DemandModel, items: Sequence[Sequence[int]],
                     segments: Sequence[int], config: DemandConfig,
                     seed: int = 0) -> SynergyEstimate:
    """Synergy per bundle (``items`` offered to ``segments``): the analyst's, or the
    shrunk fit to the cross-price response in the bundle's segment."""
    if len(items) != len(segments):
        raise ValueError(f"segments has {len(segments)} entries for {len(items)} bundles")
    rows = [_one(model, b, int(s), config, seed) for b, s in zip(items, segments, strict=True)]
    table = pd.DataFrame(rows, columns=["segment", "products", "promo_visits", "fitted", "se",
                                        "dispersion", "synergy", "source"])
    return SynergyEstimate(table["synergy"].to_numpy(float), tuple(table["source"]), table)


def _one(model: DemandModel, items: Sequence[int], segment: int, config: DemandConfig,
         seed: int) -> dict:
    row = {"segment": segment, "products": tuple(int(i) for i in items), "promo_visits": 0,
           "fitted": np.nan, "se": np.nan, "dispersion": np.nan}
    if config.synergy is not None:
        return {**row, "synergy": float(config.synergy), "source": BY_ANALYST}
    if not config.synergy_from_promotions:
        return {**row, "synergy": 0.0, "source": NOT_READ}
    if model.promotions is None or len(items) < 2:
        return {**row, "synergy": 0.0, "source": TOO_FEW}
    if (model.sigma_source[list(items)] == NO_PRICE_RESPONSE).any():
        return {**row, "synergy": 0.0, "source": NOT_PROMOTIONS}
    observed = cross_price_response(model.promotions, segment, items)
    regular = int(observed.loc[observed["promoted"] == -1, "visits"].iat[0])
    # a product never on promotion in these visits shows no response
    observed = observed[(observed["promoted"] == -1) | (observed["visits"] > 0)]
    n_promo = int(observed.loc[observed["promoted"] != -1, "visits"].sum())
    row["promo_visits"] = n_promo
    if n_promo < config.min_promo_visits or regular < config.min_promo_visits:
        return {**row, "synergy": 0.0, "source": TOO_FEW}
    grid, q = fit_synergy(model.market(), items, segment, observed, config.synergy_cap,
                          seed=seed)
    dof = max((len(observed) - 1) * (len(observed.columns) - 3) - 1, 1)
    dispersion = max(float(q.min()) / dof, 1.0)
    s_hat, se, value = shrink(grid, q / dispersion, config.synergy_prior_sd)
    return {**row, "fitted": s_hat, "se": se, "dispersion": dispersion, "synergy": value,
            "source": from_response(n_promo)}
