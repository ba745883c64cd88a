"""Simulator and optimiser against answers known in closed form or by enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from engine.pricing import (
    Market,
    PricingConfig,
    baselines,
    evaluate,
    optimise_prices,
    prepare_choices,
    segment_groups,
)
from engine.pricing.simulate import audience_draws, uniform_draws


def _closed_form_profit(p, mu, sigma, cost):
    return (p - cost) * norm.sf((np.log(p) - mu) / sigma)


def test_single_product_matches_closed_form_optimum():
    mu, sigma, cost = np.log(20.0), 0.5, 8.0
    # list price far above every willingness to pay: the "bundle" of one product
    # at price p is bought exactly when w >= p, so profit is the closed form
    market = Market(
        mu=np.array([[mu]]),
        sigma=np.array([sigma]),
        list_price=np.array([2000.0]),
        cost=np.array([cost]),
        segment_size=np.array([1.0]),
    )

    def foc(p):  # d/dp of (p - c) * S(p) = 0
        z = (np.log(p) - mu) / sigma
        return norm.sf(z) - (p - cost) * norm.pdf(z) / (sigma * p)

    p_star = brentq(foc, cost + 1e-6, 200.0)
    cfg = PricingConfig(
        max_discount=0.999, margin_floor=0.0, price_ending=None, n_customers=100_000
    )
    choices = prepare_choices(market, [(0,)], [0], n_customers=cfg.n_customers, seed=1)
    (res,) = optimise_prices(choices, cfg)
    assert res.converged, res.message
    best = _closed_form_profit(p_star, mu, sigma, cost)
    assert _closed_form_profit(res.price, mu, sigma, cost) >= 0.995 * best
    # and the simulated profit at the optimum is the closed form within sampling error
    sim = evaluate(choices, np.array([res.price])).per_bundle.iloc[0]
    assert (
        abs(sim["profit"] - _closed_form_profit(res.price, mu, sigma, cost)) < 4 * sim["profit_se"]
    )


def test_interest_scales_take_rates_and_draws_the_right_visitors():
    """Known answer: a two-product bundle where a visitor wants product i with chance q_i
    (independently) and then values it lognormally. With the bundle at a price nobody
    pays, the share of all visitors buying product i is q_i · P(w_i >= list_i) (buying
    both separately needs both wanted); the bundle's take rate at a low price is the share
    wanting at least one product whose worth covers it, and everything is per visitor of
    the segment, not per simulated member of the bundle's audience."""
    q = np.array([0.3, 0.1])
    mu, sigma, price = np.log([10.0, 20.0]), np.array([0.4, 0.4]), np.array([10.0, 20.0])
    market = Market(mu=mu[None, :], sigma=sigma, list_price=price, cost=price * 0.5,
                    segment_size=np.array([1000.0]), interest=q[None, :])
    choices = prepare_choices(market, [(0, 1)], [0], n_customers=200_000, seed=2)
    audience = 1 - (1 - q).prod()
    assert choices.audience[0] == pytest.approx(audience)
    # at a price nobody pays: singles only; units per visitor = sum_i q_i P(w_i >= p_i)
    out = evaluate(choices, np.array([1e9])).per_bundle.iloc[0]
    assert out["take_rate"] == 0
    singles = choices.alt_units[0].mean() * audience
    assert singles == pytest.approx(q.sum() * 0.5, rel=0.02)  # P(w >= list) = 0.5 here
    # at a price of 0.01 every visitor wanting anything takes the bundle: the audience
    low = evaluate(choices, np.array([0.01])).per_bundle.iloc[0]
    assert low["take_rate"] == pytest.approx(audience, rel=1e-3)
    assert low["units"] == pytest.approx(1000 * audience, rel=1e-3)
    # who wants what: every simulated visitor wants at least one product; scaled by the
    # audience, product i is wanted by q_i of all visitors and both by q_0 q_1
    wants, share = audience_draws(q[None, :], uniform_draws(2, 200_000, 1, 2))
    assert wants[0].any(axis=0).all()
    np.testing.assert_allclose(wants[0].mean(axis=1) * share[0], q, rtol=0.02)
    assert wants[0].all(axis=0).mean() * share[0] == pytest.approx(q.prod(), rel=0.05)


def _small_market(seed=0):
    rng = np.random.default_rng(seed)
    n_seg, n_prod = 2, 6
    list_price = rng.uniform(5, 30, n_prod).round(2)
    mu = np.log(list_price)[None, :] + rng.normal(-0.1, 0.3, (n_seg, n_prod))
    return Market(
        mu=mu,
        sigma=rng.uniform(0.3, 0.6, n_prod),
        list_price=list_price,
        cost=list_price * rng.uniform(0.3, 0.6, n_prod),
        segment_size=np.array([1000.0, 500.0]),
    )


def _grid_profit(choices, b, grid):
    return np.array([evaluate_one(choices, b, p) for p in grid])


def evaluate_one(choices, b, price):
    take = choices.worth[b] - price >= np.maximum(choices.alt_surplus[b], 0)
    prof = np.where(take, price - choices.bundle_cost[b], choices.alt_profit[b])
    return prof.mean()


def test_optimiser_reaches_enumerated_optimum_on_small_market():
    market = _small_market()
    bundles = [(0, 1), (2, 3, 4), (1, 5), (0, 2, 4, 5)]
    cfg = PricingConfig(max_discount=0.4, margin_floor=0.05, price_ending=None, n_customers=4000)
    choices = prepare_choices(market, bundles, [0, 1, 0, 1], synergy=0.0, n_customers=4000, seed=3)
    results = optimise_prices(choices, cfg)
    for b, res in enumerate(results):
        lo = max(choices.list_total[b] * 0.6, choices.bundle_cost[b] / 0.95)
        grid = np.arange(np.ceil(lo * 100), np.floor(choices.list_total[b] * 100) + 1) / 100
        exact = _grid_profit(choices, b, grid).max()
        assert evaluate_one(choices, b, res.price) >= 0.995 * exact
        assert res.converged


def test_spread_constrained_optimum_matches_joint_enumeration():
    market = _small_market(seed=4)
    # very different segments for the same bundle, so the spread binds
    market = Market(
        mu=market.mu + np.array([[0.5], [-0.5]]),
        sigma=market.sigma,
        list_price=market.list_price,
        cost=market.cost,
        segment_size=market.segment_size,
    )
    bundles = [(0, 1), (0, 1)]
    cfg = PricingConfig(
        max_discount=0.5,
        margin_floor=0.0,
        price_ending=0.99,
        max_segment_spread=0.1,
        n_customers=2000,
    )
    choices = prepare_choices(market, bundles, [0, 1], n_customers=2000, seed=2)
    results = optimise_prices(choices, cfg, groups=segment_groups(bundles))
    p = np.array([r.price for r in results])
    assert p.max() / p.min() - 1 <= 0.1 + 1e-9
    lo = choices.list_total[0] * 0.5
    grid = np.arange(np.ceil(lo - 0.99), np.floor(choices.list_total[0] - 0.99) + 1) + 0.99
    sizes = choices.segment_size
    best = -np.inf
    prof = [np.array([evaluate_one(choices, b, q) for q in grid]) * sizes[b] for b in (0, 1)]
    for i, j in itertools.product(range(len(grid)), repeat=2):
        if max(grid[i], grid[j]) / min(grid[i], grid[j]) - 1 <= 0.1 + 1e-9:
            best = max(best, prof[0][i] + prof[1][j])
    got = sum(r.profit for r in results)
    assert got >= 0.995 * best
    assert all(r.binding == "segment_spread" for r in results)


def test_simulation_outputs_are_consistent():
    market = _small_market()
    bundles = [(0, 1), (2, 3, 4)]
    choices = prepare_choices(market, bundles, [0, 1], n_customers=5000, seed=0)
    list_res = evaluate(choices, choices.list_total * 0.8).per_bundle
    never = evaluate(choices, np.full(2, 1e9)).per_bundle
    assert (never["take_rate"] == 0).all() and (never["cannibalised_units"] == 0).all()
    # a cheaper bundle is taken more often and cannibalises more singles
    cheap = evaluate(choices, choices.list_total * 0.6).per_bundle
    assert (cheap["take_rate"] > list_res["take_rate"]).all()
    assert (cheap["cannibalised_units"] >= list_res["cannibalised_units"]).all()
    assert (cheap["consumer_surplus"] > list_res["consumer_surplus"]).all()
    assert (list_res["take_rate_se"] > 0).all()
    # units are per-visitor take rate times the segment's visitors
    np.testing.assert_allclose(list_res["units"], list_res["take_rate"] * [1000, 500])
    # same seed, same draws: identical results
    again = evaluate(
        prepare_choices(market, bundles, [0, 1], n_customers=5000, seed=0), choices.list_total * 0.8
    ).per_bundle
    np.testing.assert_array_equal(again["profit"], list_res["profit"])


def test_baselines_never_beat_the_optimum():
    market = _small_market()
    bundles = [(0, 1), (2, 3, 4), (1, 5)]
    cfg = PricingConfig(max_discount=0.4, margin_floor=0.0, price_ending=0.99, n_customers=3000)
    choices = prepare_choices(market, bundles, [0, 1, 0], n_customers=3000, seed=0)
    results = optimise_prices(choices, cfg)
    table = baselines(choices, results, np.array([2, 3, 2]), cfg).set_index("strategy")
    opt = table.loc["optimised", "profit"]
    assert (table["profit"] <= opt + 1e-6).all()
    assert table.loc["components only", "cannibalised_units"] == 0


def test_config_validates_on_creation():
    with pytest.raises(ValueError, match="max_discount"):
        PricingConfig(max_discount=1.5)
    with pytest.raises(ValueError, match="price_ending"):
        PricingConfig(price_ending=1.2)


def test_infeasible_guardrails_are_flagged():
    market = Market(
        mu=np.array([[np.log(10.0)]]),
        sigma=np.array([0.4]),
        list_price=np.array([10.0]),
        cost=np.array([9.5]),
        segment_size=np.array([1.0]),
    )
    cfg = PricingConfig(margin_floor=0.2, price_ending=None, n_customers=1000)
    (res,) = optimise_prices(prepare_choices(market, [(0,)], [0], n_customers=1000), cfg)
    assert not res.converged and "guardrail" in res.message


def test_price_bundles_pipeline_and_curve_agree_with_the_optimum():
    from engine.pricing import price_bundles, price_curve

    market = _small_market()
    bundles = [(0, 1), (0, 1), (2, 3, 4)]
    cfg = PricingConfig(max_discount=0.4, margin_floor=0.0, price_ending=None, n_customers=3000)
    run = price_bundles(market, bundles, [0, 1, 0], cfg, synergy=0.05)
    assert len(run.results) == 3 and run.simulation.per_bundle.shape[0] == 3
    p = run.prices[:2]
    assert p.max() / p.min() - 1 <= cfg.max_segment_spread + 1e-9
    curve = price_curve(run.choices, 2)
    # no price on the curve (inside the guardrails) beats the optimum
    lo = run.choices.list_total[2] * 0.6
    inside = curve[curve["bundle_price"] >= lo]
    assert inside["profit"].max() <= run.results[2].profit + 1e-6
    assert curve["take_rate"].is_monotonic_decreasing
