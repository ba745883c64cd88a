"""One call from calibrated demand and bundles to prices, outcomes and baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.pricing.optimise import (
    PriceResult,
    PricingConfig,
    baselines,
    optimise_prices,
    segment_groups,
)
from engine.pricing.simulate import Choices, Market, SimulationResult, evaluate, prepare_choices


@dataclass(frozen=True)
class PricingRun:
    """Prices per bundle, the simulated outcomes at those prices and the baselines.

    ``choices`` keeps the draws so a page can re-evaluate other prices cheaply.
    """

    choices: Choices
    results: tuple[PriceResult, ...]
    simulation: SimulationResult
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
        baselines=baselines(choices, results, sizes, config),
    )


def price_curve(choices: Choices, bundle: int, n_points: int = 80) -> pd.DataFrame:
    """Revenue, profit and take rate of one bundle over prices from 40 % to 100 % of
    its list total (the other bundles do not matter: each is offered on its own)."""
    one = Choices(
        parts_worth=choices.parts_worth[[bundle]],
        synergy=choices.synergy[[bundle]],
        alt_surplus=choices.alt_surplus[[bundle]],
        alt_revenue=choices.alt_revenue[[bundle]],
        alt_profit=choices.alt_profit[[bundle]],
        alt_units=choices.alt_units[[bundle]],
        bundle_cost=choices.bundle_cost[[bundle]],
        list_total=choices.list_total[[bundle]],
        segments=choices.segments[[bundle]],
        segment_size=choices.segment_size[[bundle]],
        audience=None if choices.audience is None else choices.audience[[bundle]],
    )
    grid = np.linspace(0.4, 1.0, n_points) * one.list_total[0]
    rows = [evaluate(one, np.array([p])).per_bundle.iloc[0] for p in grid]
    return pd.DataFrame(rows).reset_index(drop=True)
