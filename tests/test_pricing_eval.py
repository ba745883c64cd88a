"""A/B simulation, adjustment from observed results, and guardrails as properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from engine.errors import DataValidationError
from engine.pricing import Market, PricingConfig, evaluate, optimise_prices, prepare_choices
from engine.pricing.abtest import ab_test
from engine.pricing.adjust import adjust_prices
from engine.pricing.optimise import ending_relaxed, segment_groups


def _one_product(mu=3.0, sigma=0.5, cost=8.0):
    return Market(
        np.array([[mu]]), np.array([sigma]), np.array([2000.0]), np.array([cost]), np.array([1.0])
    )


def test_ab_test_matches_closed_form_and_power_formula():
    mu, sigma = np.log(20.0), 0.5
    choices = prepare_choices(_one_product(mu, sigma), [(0,)], [0], n_customers=200_000, seed=5)
    res = ab_test(choices, np.array([30.0]), np.array([18.0]), alpha=0.05, power=0.8)
    rev = res.table.set_index("metric").loc["revenue per visitor"]
    for arm, p in (("control", 30.0), ("treatment", 18.0)):
        s = norm.sf((np.log(p) - mu) / sigma)
        assert rev[f"{arm}_low"] <= p * s <= rev[f"{arm}_high"]
    true_diff = 18 * norm.sf((np.log(18) - mu) / sigma) - 30 * norm.sf((np.log(30) - mu) / sigma)
    assert rev["difference_low"] <= true_diff <= rev["difference_high"]
    # visitors needed from the two-sample normal formula with the true variances
    var = sum(
        p**2 * s * (1 - s)
        for p, s in (
            (30, norm.sf((np.log(30) - mu) / sigma)),
            (18, norm.sf((np.log(18) - mu) / sigma)),
        )
    )
    expected = (norm.ppf(0.975) + norm.ppf(0.8)) ** 2 * var / true_diff**2
    assert rev["visitors_needed"] == pytest.approx(expected, rel=0.05)


def test_ab_test_same_prices_shows_no_significant_lift():
    choices = prepare_choices(_one_product(), [(0,)], [0], n_customers=50_000, seed=2)
    res = ab_test(choices, np.array([20.0]), np.array([20.0])).table
    assert ((res["difference_low"] <= 0) & (res["difference_high"] >= 0)).all()


def _two_product_market(shift=0.0):
    price = np.array([20.0, 15.0])
    mu = np.log(price)[None, :] + np.array([[0.1, 0.0]]) + shift
    return Market(mu, np.array([0.4, 0.4]), price, price * 0.4, np.array([1000.0]))


def test_adjustment_recovers_a_known_shift_and_lowers_the_price():
    cfg = PricingConfig(max_discount=0.5, margin_floor=0.0, n_customers=20_000, seed=0)
    model = _two_product_market()
    truth = _two_product_market(shift=-0.3)  # customers value the bundle 26 % less
    bundles, segs = [(0, 1)], [0]
    old = optimise_prices(prepare_choices(model, bundles, segs, 0.0, 20_000, 0), cfg)[0].price
    true_rate = (
        evaluate(prepare_choices(truth, bundles, segs, 0.0, 200_000, 7), np.array([old]))
        .per_bundle["take_rate"]
        .iat[0]
    )
    visitors = 100_000
    observed = pd.DataFrame(
        {
            "bundle_id": ["B1"],
            "period": ["2025-W01"],
            "price": [old],
            "units": [round(true_rate * visitors)],
            "visitors": [visitors],
        }
    )
    adj = adjust_prices(model, bundles, segs, ["B1"], [old], observed, cfg)
    move = adj.moves.iloc[0]
    assert move["wtp_shift_pct"] == pytest.approx(100 * np.expm1(-0.3), abs=2.0)
    assert move["observed_take_rate"] < move["predicted_take_rate"]
    assert move["new_price"] < move["old_price"]  # sold less than forecast: never a price rise
    assert move["adjusted_take_rate"] == pytest.approx(move["observed_take_rate"], abs=0.01)
    assert "revised down" in move["reason"]
    # the same shortfall seen by only 50 visitors moves the model much less
    small = observed.assign(units=round(true_rate * 50), visitors=50)
    few = adjust_prices(model, bundles, segs, ["B1"], [old], small, cfg).moves.iloc[0]
    assert abs(few["wtp_shift_pct"]) < abs(move["wtp_shift_pct"]) / 3


def test_adjustment_rejects_unknown_bundles_and_missing_columns():
    cfg = PricingConfig(n_customers=1000)
    model = _two_product_market()
    bad = pd.DataFrame({"bundle_id": ["X"], "period": [1], "price": [30.0], "units": [3]})
    with pytest.raises(DataValidationError, match="not among the priced bundles"):
        adjust_prices(model, [(0, 1)], [0], ["B1"], [30.0], bad, cfg)
    # every problem is reported at once
    with pytest.raises(DataValidationError) as err:
        adjust_prices(model, [(0, 1)], [0], ["B1"], [30.0], bad.drop(columns="units"), cfg)
    assert {i.rule for i in err.value.issues} == {"required_columns", "known_bundle"}


@st.composite
def _markets(draw):
    n_prod = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    price = rng.uniform(2, 50, n_prod).round(2)
    cost = price * rng.uniform(0.1, 0.95, n_prod)
    mu = np.log(price)[None, :] + rng.normal(0, 0.5, (2, n_prod))
    market = Market(mu, rng.uniform(0.2, 0.8, n_prod), price, cost, np.array([100.0, 300.0]))
    items = tuple(sorted(rng.choice(n_prod, size=draw(st.integers(1, n_prod)), replace=False)))
    cfg = PricingConfig(
        max_discount=draw(st.sampled_from([0.05, 0.2, 0.5, 0.9])),
        margin_floor=draw(st.sampled_from([0.0, 0.1, 0.3, 0.6])),
        price_ending=draw(st.sampled_from([None, 0.99, 0.49, 0.0])),
        max_segment_spread=draw(st.sampled_from([0.0, 0.05, 0.3])),
        n_customers=500,
        seed=seed,
    )
    return market, [items, items], cfg


@settings(max_examples=60, deadline=None)
@given(_markets())
def test_guardrails_always_hold(case):
    market, bundles, cfg = case
    choices = prepare_choices(market, bundles, [0, 1], n_customers=cfg.n_customers, seed=cfg.seed)
    results = optimise_prices(choices, cfg, groups=segment_groups(bundles))
    list_total = choices.list_total[0]
    cost = choices.bundle_cost[0]
    for r in results:
        assert r.price <= list_total + 1e-9  # never above the list total, even if infeasible
        if not r.converged and "guardrail" in r.message:
            continue
        assert (r.price - cost) / r.price >= cfg.margin_floor - 1e-9
        assert r.price >= list_total * (1 - cfg.max_discount) - 1e-9
        if cfg.price_ending is not None and not ending_relaxed(choices, cfg)[r.bundle]:
            assert round(r.price % 1, 2) == pytest.approx(cfg.price_ending)
    ok = [r.price for r in results if r.converged or "guardrail" not in r.message]
    if len(ok) == 2:
        assert max(ok) / min(ok) - 1 <= cfg.max_segment_spread + 1e-9


def test_cheap_bundle_is_priced_to_the_cent_when_no_ending_fits():
    # two products of 0.29: no price ending in .99 fits under the 0.58 list total, so the
    # price is in cents, within the discount limit and the margin floor, and says why
    market = Market(
        np.log(np.array([[0.29, 0.29]])), np.array([0.4, 0.4]), np.array([0.29, 0.29]),
        np.array([0.1, 0.1]), np.array([100.0]),
    )
    cfg = PricingConfig(price_ending=0.99, n_customers=500)
    choices = prepare_choices(market, [(0, 1)], [0], n_customers=500, seed=0)
    (result,) = optimise_prices(choices, cfg)
    assert 0.58 * (1 - cfg.max_discount) - 1e-9 <= result.price <= 0.58
    assert result.binding == "price_ending" and "priced to the cent" in result.message


def test_discount_limit_wins_over_the_price_ending():
    """List total 16.98 at most 5 % off: prices from 16.14 to 16.98, none ending in .99.
    The bundle is priced in that range to the cent, not at 15.99 (5.8 % off)."""
    market = Market(
        np.log(np.array([[8.49, 8.49]])) + 0.3, np.array([0.3, 0.3]), np.array([8.49, 8.49]),
        np.array([3.0, 3.0]), np.array([100.0]),
    )
    cfg = PricingConfig(max_discount=0.05, price_ending=0.99, n_customers=1000)
    choices = prepare_choices(market, [(0, 1)], [0], n_customers=1000, seed=0)
    (result,) = optimise_prices(choices, cfg)
    assert 16.98 * 0.95 - 1e-9 <= result.price <= 16.98
    assert result.binding == "price_ending"


def test_adjusted_prices_keep_the_spread_between_segments():
    """Observed results for one segment's bundle re-price the same products for the
    other segment too, within the largest spread allowed."""
    price = np.array([20.0, 15.0])
    mu = np.log(price)[None, :] + np.array([[0.1, 0.0], [0.6, 0.5]])
    market = Market(mu, np.array([0.4, 0.4]), price, price * 0.4, np.array([1000.0, 1000.0]))
    cfg = PricingConfig(max_discount=0.5, margin_floor=0.0, max_segment_spread=0.05,
                        n_customers=20_000, seed=0)
    bundles, segs, ids = [(0, 1), (0, 1)], [0, 1], ["B1", "B2"]
    observed = pd.DataFrame({"bundle_id": ["B1"], "period": ["W1"], "price": [30.0],
                             "units": [20], "visitors": [10_000]})
    adj = adjust_prices(market, bundles, segs, ids, [30.0, 31.0], observed, cfg)
    new_b1 = adj.moves.iloc[0]["new_price"]
    choices = prepare_choices(adj.market, bundles, segs, 0.0, 20_000, 0)
    new_b2 = optimise_prices(choices, cfg, groups=[[0, 1]])[1].price
    assert max(new_b1, new_b2) / min(new_b1, new_b2) - 1 <= 0.05 + 1e-9
