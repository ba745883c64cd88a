"""Bundle prices that maximise expected profit within the analyst's guardrails.

With common random numbers each simulated visitor v takes bundle b exactly when
the price is at most the visitor's threshold t_v = worth_v − max(0, best
alternative surplus_v). Profit is therefore piecewise linear in the price and
jumps only at thresholds, so its exact maximum over the simulated population
is at a threshold (or a bound): we sort the thresholds and evaluate every
candidate at once with cumulative sums. This is the "grid over candidate
prices" of DESIGN.md, with the grid chosen so no refinement is needed (a
continuous optimiser such as scipy's bounded scalar search could stop on a
flat step). Price endings snap each candidate down to the ending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.pricing.simulate import Choices, Market, SimulationResult, evaluate, prepare_choices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PricingConfig:
    """Guardrails and simulation size; validated on creation.

    max_discount : largest discount off the sum of list prices (0.3 = 30 %).
    margin_floor : lowest margin (price − cost) / price of a bundle.
    price_ending : fractional ending of every price (0.99 → 12.99), or None.
    max_segment_spread : highest personalised price of the same bundle at most
        (1 + spread) × the lowest one across segments.
    flat_discount, size_discount : the baselines (flat X % off; X % per item
        beyond the first).
    min_buyers : an optimum resting on fewer simulated buyers is flagged.
    """

    max_discount: float = 0.3
    margin_floor: float = 0.1
    price_ending: float | None = 0.99
    max_segment_spread: float = 0.2
    n_customers: int = 20_000
    seed: int = 0
    flat_discount: float = 0.1
    size_discount: float = 0.05
    min_buyers: int = 30

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.max_discount < 1.0:
            problems.append(f"max_discount must be in [0, 1), got {self.max_discount}")
        if not 0.0 <= self.margin_floor < 1.0:
            problems.append(f"margin_floor must be in [0, 1), got {self.margin_floor}")
        if self.price_ending is not None and not 0.0 <= self.price_ending < 1.0:
            problems.append(f"price_ending must be in [0, 1) or None, got {self.price_ending}")
        if self.max_segment_spread < 0:
            problems.append(f"max_segment_spread must be >= 0, got {self.max_segment_spread}")
        if self.n_customers < 100:
            problems.append(f"n_customers must be >= 100, got {self.n_customers}")
        for name in ("flat_discount", "size_discount"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class PriceResult:
    """The recommended price of one bundle for one segment.

    profit, take_rate : expected per period / per visitor at ``price``.
    converged : False when no price meets every guardrail or the optimum rests
        on too few simulated buyers; such a price must be shown as a warning.
    binding : the guardrail the price sits on ("list_total", "max_discount",
        "margin_floor", "segment_spread", "price_ending") or "none".
    """

    bundle: int
    segment: int
    price: float
    profit: float
    take_rate: float
    converged: bool
    message: str
    binding: str


def snap_down(x: np.ndarray, ending: float | None) -> np.ndarray:
    """Largest price <= x with the given ending (cent precision)."""
    x = np.asarray(x, float)
    if ending is None:
        return np.floor(x * 100 + 1e-6) / 100
    return np.round(np.floor(x - ending + 1e-9) + ending, 2)


def snap_up(x: np.ndarray, ending: float | None) -> np.ndarray:
    """Smallest price >= x with the given ending (cent precision)."""
    x = np.asarray(x, float)
    if ending is None:
        return np.ceil(x * 100 - 1e-6) / 100
    return np.round(np.ceil(x - ending - 1e-9) + ending, 2)


def price_bounds(choices: Choices, config: PricingConfig) -> tuple[np.ndarray, np.ndarray, list]:
    """Lowest and highest allowed price per bundle (after endings) and what sets the low one.

    Where the ending leaves no price between the guardrails (list 16.98 at most 5 % off:
    16.13 to 16.98 holds no .99 price) the bounds are in cents instead: the ending is
    a house style, the discount limit and the margin floor are the analyst's rules."""
    return _bounds(choices, config)[:3]


def ending_relaxed(choices: Choices, config: PricingConfig) -> np.ndarray:
    """(B,) bool: bundles priced without the price ending, because no price with it
    lies between the guardrails while a price in cents does."""
    return _bounds(choices, config)[3]


def _bounds(choices: Choices, config: PricingConfig):
    """``price_bounds`` and ``ending_relaxed`` in one pass."""
    by_discount = choices.list_total * (1 - config.max_discount)
    by_margin = choices.bundle_cost / (1 - config.margin_floor)
    lowest = np.maximum(by_discount, by_margin)
    end = config.price_ending
    lo, hi = snap_up(lowest, end), snap_down(choices.list_total, end)
    lo_cents, hi_cents = snap_up(lowest, None), snap_down(choices.list_total, None)
    relaxed = (lo > hi + 1e-9) & (lo_cents <= hi_cents + 1e-9) if end is not None else (
        np.zeros(len(lowest), bool))
    lo, hi = np.where(relaxed, lo_cents, lo), np.where(relaxed, hi_cents, hi)
    low_reason = np.where(by_margin > by_discount, "margin_floor", "max_discount").tolist()
    return lo, hi, low_reason, relaxed


class ProfitCurve:
    """Exact mean profit per visitor of one bundle as a function of its price."""

    def __init__(self, threshold: np.ndarray, alt_profit: np.ndarray, cost: float) -> None:
        order = np.argsort(-threshold, kind="stable")
        self.neg_t = -threshold[order].astype(np.float64)  # ascending
        self.cum_alt = np.concatenate([[0.0], np.cumsum(alt_profit[order], dtype=np.float64)])
        self.cost = float(cost)
        self.n = len(threshold)

    def buyers(self, prices: np.ndarray) -> np.ndarray:
        # buyers are visitors with t >= p, i.e. -t <= -p
        return np.searchsorted(self.neg_t, -np.asarray(prices, float), side="right")

    def __call__(self, prices: np.ndarray) -> np.ndarray:
        prices = np.asarray(prices, float)
        k = self.buyers(prices)
        return ((prices - self.cost) * k + self.cum_alt[-1] - self.cum_alt[k]) / self.n

    def candidates(self, lo: float, hi: float, ending: float | None) -> np.ndarray:
        t = -self.neg_t
        t = t[(t >= lo) & (t <= hi + 1e-9)]
        c = np.concatenate([snap_down(t, ending), [lo, hi]])
        return np.unique(c[(c >= lo - 1e-9) & (c <= hi + 1e-9)])


def _best(curve: ProfitCurve, lo: float, hi: float, ending: float | None) -> tuple[float, float]:
    cand = curve.candidates(lo, hi, ending)
    prof = curve(cand)
    # ties: the higher price (smaller discount) wins
    k = len(prof) - 1 - int(np.argmax(prof[::-1]))
    return float(cand[k]), float(prof[k])


def optimise_prices(
    choices: Choices,
    config: PricingConfig,
    groups: Sequence[Sequence[int]] | None = None,
) -> list[PriceResult]:
    """Profit-maximising price per bundle within every guardrail.

    ``groups`` lists bundles that are the same products offered to different
    segments; their prices must stay within ``max_segment_spread``
    (``segment_groups(bundles)`` finds them). Default: no groups.
    """
    lo, hi, low_reason, relaxed = _bounds(choices, config)
    thr = choices.threshold
    curves = [
        ProfitCurve(thr[b], choices.alt_profit[b], choices.bundle_cost[b]) for b in range(len(lo))
    ]
    price = np.zeros(len(lo))
    binding = ["none"] * len(lo)
    feasible = lo <= hi + 1e-9
    for b, curve in enumerate(curves):
        if not feasible[b]:
            # no price up to the list total meets the margin floor: the list total itself
            price[b] = snap_down(choices.list_total[b], None)
            continue
        price[b], _ = _best(curve, lo[b], hi[b], None if relaxed[b] else config.price_ending)
        if relaxed[b]:
            binding[b] = "price_ending"
        elif np.isclose(price[b], hi[b]):
            binding[b] = "list_total"
        elif np.isclose(price[b], lo[b]):
            binding[b] = low_reason[b]
    for group in groups or ():
        group = [b for b in group if feasible[b]]
        if len(group) > 1 and _spread(price[group]) > config.max_segment_spread + 1e-9:
            # the same products share their bounds, so they share the ending rule too
            ending = None if relaxed[group].any() else config.price_ending
            price[group] = _within_spread(curves, group, lo, hi, ending, config)
            for b in group:
                binding[b] = "segment_spread"
    return [
        _result(b, curves[b], price[b], feasible[b], binding[b], choices, config)
        for b in range(len(lo))
    ]


def _spread(p: np.ndarray) -> float:
    return float(p.max() / p.min() - 1.0)


def _within_spread(curves, group, lo, hi, end, config: PricingConfig) -> np.ndarray:
    """Best prices for the group whose max/min ratio stays within the spread.

    Every window [L, L·(1 + spread)] with L on a grid of allowed prices is
    tried; each segment takes its best candidate inside the window.
    """
    grid = np.unique(
        np.concatenate(
            [snap_down(np.linspace(lo[b], hi[b], 400), end) for b in group]
            + [curves[b].candidates(lo[b], hi[b], end) for b in group]
        )
    )
    grid = grid[grid > 0]
    profits = np.stack([curves[b](grid) for b in group])  # (G, grid)
    allowed = np.stack([(grid >= lo[b] - 1e-9) & (grid <= hi[b] + 1e-9) for b in group])
    profits = np.where(allowed, profits, -np.inf)
    best_total, best_prices = -np.inf, np.array([hi[b] for b in group])
    for start in np.unique(grid):
        inside = (grid >= start) & (grid <= start * (1 + config.max_segment_spread) + 1e-9)
        window = np.where(inside, profits, -np.inf)
        idx = window.argmax(axis=1)
        total = window[np.arange(len(group)), idx].sum()
        if total > best_total:
            best_total, best_prices = total, grid[idx]
    return best_prices


def _result(b, curve, price, feasible, binding, choices: Choices, config) -> PriceResult:
    buyers = int(curve.buyers([price])[0])
    size = choices.reach[b]
    if not feasible:
        converged = False
        message = (
            "no price meets every guardrail (the margin floor or discount limit leaves no "
            "price up to the list total); showing the list total"
        )
        binding = "margin_floor"
    elif buyers < config.min_buyers:
        converged = False
        message = (
            f"optimum rests on {buyers} simulated buyers (< {config.min_buyers}); "
            "raise n_customers or check the bundle's demand"
        )
    else:
        converged = True
        message = f"exact optimum over {curve.n} simulated visitors' price thresholds"
        if binding == "price_ending" and config.price_ending is not None:
            message += (f"; priced to the cent: no price ending in {config.price_ending:.2f} "
                        "lies between the largest discount (or margin floor) and the list total")
    return PriceResult(
        bundle=b,
        segment=int(choices.segments[b]),
        price=float(price),
        profit=float(curve([price])[0] * size),
        take_rate=buyers / curve.n * choices.audience_share[b],
        converged=converged,
        message=message,
        binding=binding,
    )


def segment_groups(bundles: Sequence[Sequence[int]]) -> list[list[int]]:
    """Bundles with the same set of products (offered to different segments)."""
    by_key: dict[tuple, list[int]] = {}
    for b, items in enumerate(bundles):
        by_key.setdefault(tuple(sorted(items)), []).append(b)
    return [g for g in by_key.values() if len(g) > 1]


def baselines(
    choices: Choices, results: Sequence[PriceResult], sizes: np.ndarray, config: PricingConfig
) -> pd.DataFrame:
    """Totals per strategy: components only (no bundle), flat discount, discount
    by bundle size, and the optimised prices; one row each."""
    no_bundle = np.full(len(sizes), np.inf)
    flat = snap_down(choices.list_total * (1 - config.flat_discount), config.price_ending)
    off = np.minimum(config.size_discount * (np.asarray(sizes) - 1), config.max_discount)
    by_size = snap_down(choices.list_total * (1 - off), config.price_ending)
    strategies = {
        "components only": no_bundle,
        f"flat {config.flat_discount:.0%} off": flat,
        f"{config.size_discount:.0%} off per extra item": by_size,
        "optimised": np.array([r.price for r in results]),
    }
    rows = []
    for name, prices in strategies.items():
        tot = evaluate(choices, np.where(np.isinf(prices), 1e30, prices)).totals.iloc[0]
        rows.append({"strategy": name, **tot.to_dict()})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PricingRun:
    """Prices per bundle, the simulated outcomes at those prices and without any
    bundle (``no_bundle``: the same visitors buying singles only), and the baselines.

    ``choices`` keeps the draws so a page can re-evaluate other prices cheaply.
    """

    choices: Choices
    results: tuple[PriceResult, ...]
    simulation: SimulationResult
    no_bundle: SimulationResult
    baselines: pd.DataFrame

    @property
    def prices(self) -> np.ndarray:
        return np.array([r.price for r in self.results])

    def results_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.results])


def price_bundles(
    market: Market,
    bundles: Sequence[Sequence[int]],
    segments: Sequence[int],
    config: PricingConfig,
    synergy: float | Sequence[float] = 0.0,
) -> PricingRun:
    """Optimise every bundle's price (same products across segments kept within
    the spread), simulate the outcome and compare with the baselines."""
    choices = prepare_choices(market, bundles, segments, synergy, config.n_customers, config.seed)
    return run_on_choices(choices, bundles, config)


def run_on_choices(
    choices: Choices, bundles: Sequence[Sequence[int]], config: PricingConfig
) -> PricingRun:
    """As ``price_bundles`` on prepared draws (after ``with_synergy``/``with_segment_size``)."""
    results = tuple(optimise_prices(choices, config, groups=segment_groups(bundles)))
    prices = np.array([r.price for r in results])
    sizes = np.array([len(b) for b in bundles])
    return PricingRun(
        choices=choices,
        results=results,
        simulation=evaluate(choices, prices),
        no_bundle=evaluate(choices, np.full(len(results), np.inf)),
        baselines=baselines(choices, results, sizes, config),
    )
