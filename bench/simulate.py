"""Slider re-simulation speed: 200 bundles x 20k simulated customers vs a 0.2 s budget.

A slider move re-runs the simulation on cached standard-normal draws (common
random numbers): ``prepare_choices`` (willingness to pay, best alternative) and
``evaluate`` at the new prices. Also shows how time grows with the number of
simulated customers. Run: ``.venv/bin/python bench/simulate.py``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from engine.pricing.simulate import Market, evaluate, prepare_choices, standard_draws

BUDGET_S = 0.2
N_BUNDLES = 200


def _market(seed: int = 0, n_products: int = 300, n_segments: int = 5) -> Market:
    rng = np.random.default_rng(seed)
    price = rng.uniform(3, 60, n_products).round(2)
    mu = np.log(price)[None, :] + rng.normal(-0.2, 0.4, (n_segments, n_products))
    # interest shares as calibrated on real shops: most visitors want few products
    interest = rng.uniform(0.01, 0.3, (n_segments, n_products))
    return Market(
        mu, rng.uniform(0.25, 0.6, n_products), price, price * 0.5, np.full(n_segments, 400.0),
        interest=interest, lift=_joint_lift,
    )


def _joint_lift(segment: int, items) -> float:
    """Joint interest as on real shops: wanting all of a pair several times as
    common as chance, less so for larger sets."""
    return 1.0 + 6.0 / len(items) ** 2


def _bundles(n: int, n_products: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 5, n)
    return [tuple(rng.choice(n_products, s, replace=False)) for s in sizes], rng.integers(0, 5, n)


def _best_of(fn, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def resimulate_time(n_customers: int, market: Market, bundles, segments) -> tuple[float, float]:
    """(slider move that changes demand: prepare + evaluate, price-only move: evaluate)."""
    standard_draws(0, n_customers, len(bundles), max(map(len, bundles)))  # the cached draws
    choices = prepare_choices(market, bundles, segments, 0.05, n_customers, seed=0)
    prices = choices.list_total * 0.85

    def full():
        c = prepare_choices(market, bundles, segments, 0.05, n_customers, seed=0)
        evaluate(c, prices)

    return _best_of(full), _best_of(lambda: evaluate(choices, prices))


def main() -> None:
    market = _market()
    bundles, segments = _bundles(N_BUNDLES, 300)
    print(f"{N_BUNDLES} bundles of 2-4 products, 5 segments, joint interest; best of 9 runs")
    print(f"{'customers':>10} {'demand move s':>14} {'price move s':>13} {'per 1k cust ms':>15}")
    rows = {}
    for n in (5_000, 20_000, 80_000):
        full, price_only = resimulate_time(n, market, bundles, segments)
        rows[n] = (full, price_only)
        print(f"{n:>10} {full:>14.4f} {price_only:>13.4f} {1000 * full / n * 1000:>15.3f}")
    full, price_only = rows[20_000]
    growth = rows[80_000][0] / rows[5_000][0]
    # baseline in the same run: the same market with every visitor in the market for
    # every product (no interest shares, no audience draws)
    everyone, _ = resimulate_time(20_000, replace(market, interest=None), bundles, segments)
    independent, _ = resimulate_time(20_000, replace(market, lift=None), bundles, segments)
    print(f"20k customers, every visitor interested in everything: {everyone:.4f} s; "
          f"interest independent across products: {independent:.4f} s")
    print(
        f"SUMMARY: 200 bundles x 20k customers re-simulation {full:.3f} s = "
        f"{full / BUDGET_S:.2f} x the 0.2 s budget (price-only move {price_only / BUDGET_S:.2f} x; "
        f"{full / everyone:.2f} x the market without interest shares, "
        f"{full / independent:.2f} x independent interest); "
        f"5k->80k customers (16x) takes {growth:.1f}x the time"
    )


if __name__ == "__main__":
    main()
