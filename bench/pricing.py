"""Optimiser vs exhaustive enumeration: profit reached and time.

Small markets (8 products, 2 segments, 40 bundles of 2-4 products, 5k simulated
customers each, each visitor in the market for a product with its segment's
interest share): the exact optimum of every bundle's mixed-bundle price is found
by enumerating every cent between the guardrails on the same draws; the
optimiser's profit is divided by it. Run: ``.venv/bin/python bench/pricing.py``.
"""

from __future__ import annotations

import time

import numpy as np

from engine.pricing import Market, PricingConfig, optimise_prices, prepare_choices
from engine.pricing.optimise import price_bounds


def _market(seed: int, joint: bool = False) -> Market:
    """Three markets of 8 products and 2 segments; ``joint``: wanting all of a
    bundle several times as common as chance (joint interest)."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(5, 40, 8).round(2)
    mu = np.log(price)[None, :] + rng.normal(-0.1, 0.35, (2, 8))
    return Market(
        mu,
        rng.uniform(0.25, 0.6, 8),
        price,
        price * rng.uniform(0.3, 0.6, 8),
        np.array([600.0, 400.0]),
        interest=rng.uniform(0.05, 0.4, (2, 8)),
        lift=(lambda segment, items: 1.0 + 8.0 / len(items) ** 2) if joint else None,
    )


def _bundles(seed: int, n: int = 40):
    rng = np.random.default_rng(seed + 100)
    bundles = [tuple(sorted(rng.choice(8, rng.integers(2, 5), replace=False))) for _ in range(n)]
    return bundles, rng.integers(0, 2, n)


def _enumerate(choices, lo, hi) -> np.ndarray:
    """Best mean profit per bundle over every cent in [lo, hi], chunked."""
    best = np.full(len(lo), -np.inf)
    alt_pos = np.maximum(choices.alt_surplus, 0)
    worth = choices.worth
    for b in range(len(lo)):
        grid = np.arange(np.ceil(lo[b] * 100), np.floor(hi[b] * 100) + 1) / 100
        for chunk in np.array_split(grid, max(1, len(grid) // 256)):
            take = worth[b][None, :] - chunk[:, None] >= alt_pos[b][None, :]
            prof = np.where(take, chunk[:, None] - choices.bundle_cost[b], choices.alt_profit[b])
            best[b] = max(best[b], prof.mean(axis=1).max())
    return best


def main() -> None:
    cfg = PricingConfig(max_discount=0.4, margin_floor=0.05, price_ending=None, n_customers=5000)
    ratios, t_opt, t_enum = [], 0.0, 0.0
    print(
        f"{'market':>6} {'bundles':>8} {'profit/exact':>13} {'optimiser s':>12} {'enumeration s':>14}"
    )
    for seed, joint in [(s, j) for j in (False, True) for s in range(3)]:
        market = _market(seed, joint)
        bundles, segs = _bundles(seed)
        choices = prepare_choices(market, bundles, segs, 0.05, cfg.n_customers, seed)
        t0 = time.perf_counter()
        results = optimise_prices(choices, cfg)
        t1 = time.perf_counter()
        lo, hi, _ = price_bounds(choices, cfg)
        exact = _enumerate(choices, lo, hi)
        t2 = time.perf_counter()
        # per simulated visitor, as the enumeration counts it
        got = np.array([r.profit / choices.reach[r.bundle] for r in results])
        ratio = got.sum() / exact.sum()
        ratios.append(ratio)
        t_opt += t1 - t0
        t_enum += t2 - t1
        name = f"{seed}{' joint' if joint else ''}"
        print(f"{name:>6} {len(bundles):>8} {ratio:>13.5f} {t1 - t0:>12.3f} {t2 - t1:>14.3f}")
    print(
        f"SUMMARY: optimiser profit / exact optimum = {min(ratios):.5f} (worst of 6 markets, 3 with "
        f"joint interest, "
        f"target >= 0.995); optimiser {t_opt:.2f} s vs enumeration {t_enum:.2f} s "
        f"({t_enum / t_opt:.0f}x faster)"
    )


if __name__ == "__main__":
    main()
