"""Bundle pricing: demand model, market simulator, optimiser, A/B test, adjustment."""

from engine.pricing.abtest import ABTestResult, ab_test
from engine.pricing.adjust import Adjustment, adjust_prices
from engine.pricing.demand import (
    DemandConfig,
    DemandModel,
    calibrate_demand,
    interest_fit,
    month_index,
    seasonal_index,
)
from engine.pricing.optimise import (
    PriceResult,
    PricingConfig,
    PricingRun,
    baselines,
    optimise_prices,
    price_bundles,
    run_on_choices,
    segment_groups,
)
from engine.pricing.simulate import (
    Market,
    SimulationResult,
    evaluate,
    prepare_choices,
    price_curve,
    simulate,
)
from engine.pricing.synergy import SynergyEstimate, estimate_synergy

__all__ = [
    "ABTestResult",
    "Adjustment",
    "DemandConfig",
    "DemandModel",
    "Market",
    "PricingRun",
    "ab_test",
    "adjust_prices",
    "SynergyEstimate",
    "estimate_synergy",
    "calibrate_demand",
    "interest_fit",
    "month_index",
    "price_bundles",
    "price_curve",
    "run_on_choices",
    "seasonal_index",
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
