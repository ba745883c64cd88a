"""Bundle pricing: demand model, market simulator, optimiser, A/B test, adjustment."""

from engine.pricing.optimise import (
    PriceResult,
    PricingConfig,
    baselines,
    optimise_prices,
    segment_groups,
)
from engine.pricing.simulate import Market, SimulationResult, evaluate, prepare_choices, simulate

__all__ = [
    "Market",
    "PriceResult",
    "PricingConfig",
    "SimulationResult",
    "baselines",
    "evaluate",
    "optimise_prices",
    "prepare_choices",
    "segment_groups",
    "simulate",
]
