"""A simulated A/B test: control prices against recommended prices.

The simulated visitors of every bundle are split in two independent halves:
the first half sees the control prices, the second the recommended ones. Each
arm's revenue and profit per visitor get a normal-approximation confidence
interval, the difference a two-sample interval, and the visitors per arm
needed to detect the difference at the chosen alpha and power follow from the
two-sample normal formula n = (z_{1−α/2} + z_{power})² (v_c + v_t) / Δ².
Visitors of different segments are weighted by the segment sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from engine.pricing.simulate import Choices


@dataclass(frozen=True)
class ABTestResult:
    """``table``: one row per metric (revenue, profit per visitor) with control
    and treatment means, their CIs, the difference and its CI, the relative lift,
    and ``visitors_needed`` per arm (inf when the difference is 0)."""

    table: pd.DataFrame
    alpha: float
    power: float


def _per_visitor(choices: Choices, prices: np.ndarray, cols: slice) -> dict[str, np.ndarray]:
    p = np.asarray(prices, np.float64)[:, None]
    worth, alt = choices.worth[:, cols], np.maximum(choices.alt_surplus[:, cols], 0.0)
    take = worth - p >= alt
    return {
        "revenue": np.where(take, p, choices.alt_revenue[:, cols]),
        "profit": np.where(take, p - choices.bundle_cost[:, None], choices.alt_profit[:, cols]),
    }


def _weighted(values: np.ndarray, weights: np.ndarray, audience: np.ndarray) -> tuple[float, float]:
    """Mean and variance per visitor of a (B, n) array, rows weighted by ``weights``;
    row b's simulated visitors stand for a share ``audience[b]`` of its segment, the
    rest of which buys nothing from the bundle's products (0)."""
    w = weights / weights.sum() * audience
    mean = float((w * values.mean(axis=1)).sum())
    second = float((w * (values**2).mean(axis=1)).sum())
    return mean, max(second - mean**2, 0.0)


def ab_test(
    choices: Choices,
    control_prices: np.ndarray,
    treatment_prices: np.ndarray,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ABTestResult:
    """Simulated A/B test on two independent halves of the simulated visitors."""
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    n = choices.worth.shape[1]
    half = n // 2
    arms = {
        "control": _per_visitor(choices, control_prices, slice(0, half)),
        "treatment": _per_visitor(choices, treatment_prices, slice(half, 2 * half)),
    }
    weights = np.asarray(choices.segment_size, float)
    z = norm.ppf(1 - alpha / 2)
    rows = []
    for metric in ("revenue", "profit"):
        mc, vc = _weighted(arms["control"][metric], weights, choices.audience_share)
        mt, vt = _weighted(arms["treatment"][metric], weights, choices.audience_share)
        # the arms' visitors: `half` per bundle, spread over the bundles
        m = half * len(weights)
        diff, se_diff = mt - mc, math.sqrt(vc / m + vt / m)
        needed = (z + norm.ppf(power)) ** 2 * (vc + vt) / diff**2 if diff != 0 else math.inf
        rows.append(
            {
                "metric": f"{metric} per visitor",
                "control": mc,
                "control_low": mc - z * math.sqrt(vc / m),
                "control_high": mc + z * math.sqrt(vc / m),
                "treatment": mt,
                "treatment_low": mt - z * math.sqrt(vt / m),
                "treatment_high": mt + z * math.sqrt(vt / m),
                "difference": diff,
                "difference_low": diff - z * se_diff,
                "difference_high": diff + z * se_diff,
                "lift_pct": 100 * diff / mc if mc else math.nan,
                "visitors_per_arm": m,
                "visitors_needed": math.ceil(needed) if math.isfinite(needed) else math.inf,
            }
        )
    return ABTestResult(table=pd.DataFrame(rows), alpha=alpha, power=power)
