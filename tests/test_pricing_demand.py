"""Demand calibration on the sample market, checked against its ground truth."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from engine.data.dataset import Dataset
from engine.data.load import load_files
from engine.pricing import (
    PricingConfig,
    prepare_choices,
    price_bundles,
)
from engine.pricing.demand import (
    FROM_DATA,
    FROM_ELASTICITY,
    NO_PRICE_RESPONSE,
    DemandConfig,
    calibrate_demand,
    elasticity_from_sigma,
    estimate_price_response,
    month_index,
    purchase_shares,
    seasonal_index,
    sigma_from_elasticity,
)
from engine.sample_market import true_segment_labels


def _clean_lines(sample_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plain clean of sample_data/README.md (the importer does the same and more)."""
    lines = pd.read_csv(sample_dir / "order_lines.csv", dtype={"customer_id": str, "order_id": str})
    keep = (
        (lines["quantity"] > 0)
        & ~lines["order_id"].str.startswith("C")
        & (lines["product_id"] != "POST")
        & lines["customer_id"].notna()
    )
    return lines[keep], pd.read_csv(sample_dir / "products.csv")


@pytest.fixture(scope="module")
def sample(sample_dir):
    dataset = Dataset.from_frames(*_clean_lines(sample_dir))
    truth = json.loads((sample_dir / "ground_truth.json").read_text())
    labels = true_segment_labels(truth, dataset.customer_ids)
    return dataset, truth, labels


def test_elasticity_sigma_mapping_round_trips():
    assert sigma_from_elasticity(2.0) == pytest.approx(norm.pdf(0) / 0.5 / 2.0)
    for e in (0.5, 1.5, 4.0):
        assert elasticity_from_sigma(sigma_from_elasticity(e, 0.3), 0.3) == pytest.approx(e)


def test_calibration_matches_take_rates_and_names_sources(sample):
    dataset, truth, labels = sample
    model = calibrate_demand(dataset, labels)
    # sigma from the promotions in the data, in the range the generator used
    assert (model.sigma_source == FROM_DATA).all()
    assert 0.25 <= model.sigma[0] <= 0.8
    # by construction, the calibrated take rate at list price is reproduced
    t = norm.sf((np.log(model.list_price)[None, :] - model.mu) / model.sigma[None, :])
    np.testing.assert_allclose(t, model.take_rate, atol=1e-9)
    # segments that value a product more get a higher calibrated take rate
    true_take = np.asarray(truth["wtp"]["take_rate_at_list_price"])
    assert np.corrcoef(true_take.ravel(), model.take_rate.ravel())[0, 1] > 0.6
    # without price variation (forced) the elasticity setting is used and named
    forced = calibrate_demand(dataset, labels, DemandConfig(force_elasticity=True, elasticity=3.0))
    assert (forced.sigma_source == FROM_ELASTICITY).all()
    assert forced.sigma[0] == pytest.approx(sigma_from_elasticity(3.0))


def test_reduced_prices_that_do_not_raise_sales_leave_sigma_to_the_elasticity(sample_dir):
    """Thin out 70 % of the sample's reduced-price lines: discounts now sell less than
    list prices, the fit is pinned to its bounds (take rate 0.977: 'every visitor in the
    market buys at list') and the elasticity setting is used instead, and named."""
    lines, products = _clean_lines(sample_dir)
    list_price = lines["product_id"].map(products.set_index("product_id")["price"])
    reduced = (lines["unit_price"] < 0.99 * list_price).to_numpy()
    drop = reduced & (np.random.default_rng(0).random(len(lines)) < 0.7)
    dataset = Dataset.from_frames(lines[~drop], products)
    response = estimate_price_response(dataset)
    assert response["pinned"] and response["take_rate"] > 0.97
    assert (response["lifts"]["lift"] < 1).mean() > 0.8
    labels = np.zeros(dataset.n_customers, int)
    model = calibrate_demand(dataset, labels, DemandConfig(elasticity=2.5))
    assert (model.sigma_source == NO_PRICE_RESPONSE).all()
    # and the run report says so in words
    assert any("did not raise sales" in w for w in model.warnings())
    assert model.sigma[0] == pytest.approx(sigma_from_elasticity(2.5))
    np.testing.assert_allclose(model.take_rate, 0.5, atol=0.05)
    # the untouched sample market's promotions do raise sales: not pinned, nothing to say
    untouched = Dataset.from_frames(lines, products)
    assert not estimate_price_response(untouched)["pinned"]
    assert not any("did not raise sales" in w for w in calibrate_demand(untouched, np.zeros(
        untouched.n_customers, int)).warnings())


def _planted_bundles(truth, dataset):
    names = truth["wtp"]["segments"]
    bundles, segments = [], []
    for group in truth["planted_pairs"] + truth["planted_triples"]:
        idx = tuple(dataset.product_index(group["products"]).tolist())
        for seg in group["segments"]:
            bundles.append(idx)
            segments.append(names.index(seg))
    return bundles, segments


def test_simulated_purchase_shares_match_the_data(sample):
    """Known answer: with the bundle priced out of reach, the simulated share of the
    segment's visitors buying each product equals the share calibrated from the data."""
    dataset, _, labels = sample
    model = calibrate_demand(dataset, labels)
    share, _ = purchase_shares(dataset, labels)
    products = np.arange(0, dataset.n_products, 10)
    choices = prepare_choices(model.market(), [(int(p),) for p in products],
                              [1] * len(products), n_customers=200_000, seed=3)
    bought = choices.alt_units.mean(axis=1) * choices.audience_share
    np.testing.assert_allclose(bought, share[1, products], rtol=0.05, atol=2e-4)
    # interest x take rate among the interested = the data's share
    np.testing.assert_allclose(model.interest * model.take_rate, share, rtol=1e-9)


def test_take_rates_are_not_saturated_on_the_sample_market(sample):
    """Among the visitors in the market about half buy at list price, well inside the
    clip; an offered bundle is taken by a small share of the segment, not by all."""
    dataset, truth, labels = sample
    model = calibrate_demand(dataset, labels)
    lo, hi = DemandConfig().take_rate_bounds
    assert lo + 0.2 < model.take_rate.min() and model.take_rate.max() < hi - 0.2
    assert model.interest.max() < 0.5
    bundles, segments = _planted_bundles(truth, dataset)
    rate = price_bundles(model.market(), bundles, segments, PricingConfig()).simulation
    rate = rate.per_bundle["take_rate"]
    assert (rate > 0).all() and rate.max() < 0.5, rate.describe()


@pytest.fixture(scope="module")
def real_sample(real_sample_path):
    """The first 10,000 real Online Retail lines; segments: one-off and repeat buyers."""
    dataset = load_files([real_sample_path]).dataset
    orders = np.bincount(dataset.order_customer, minlength=dataset.n_customers)
    return dataset, (orders > 1).astype(int)


def _top_pairs(dataset, n: int) -> list[tuple[int, int]]:
    """The ``n`` pairs of products found together in the most orders."""
    together = (dataset.baskets.T @ dataset.baskets).tocoo()
    upper = together.row < together.col
    top = np.argsort(-together.data[upper], kind="stable")[:n]
    rows, cols = together.row[upper][top].tolist(), together.col[upper][top].tolist()
    return list(zip(rows, cols, strict=True))


def test_take_rates_are_not_saturated_on_real_orders(real_sample):
    dataset, labels = real_sample
    model = calibrate_demand(dataset, labels)
    # five days of orders hold too few reduced prices: the elasticity setting's take rate
    assert (model.sigma_source == FROM_ELASTICITY).all()
    lo, hi = DemandConfig().take_rate_bounds
    assert lo + 0.2 < model.take_rate.min() and model.take_rate.max() < hi - 0.2
    share, _ = purchase_shares(dataset, labels)
    np.testing.assert_allclose(model.interest * model.take_rate, share, rtol=1e-9)
    # the ten most co-bought pairs, offered to both segments: bought by a minority
    pairs = _top_pairs(dataset, 10)
    bundles, segments = [p for p in pairs for _ in (0, 1)], [0, 1] * len(pairs)
    rate = price_bundles(model.market(), bundles, segments, PricingConfig()).simulation
    rate = rate.per_bundle["take_rate"]
    assert (rate > 0).all() and rate.max() < 0.5, rate.describe()
    # known answer: the simulated share buying each product at list price is the data's
    products = sorted({i for p in pairs for i in p})
    choices = prepare_choices(model.market(), [(i,) for i in products], [1] * len(products),
                              n_customers=100_000, seed=5)
    bought = choices.alt_units.mean(axis=1) * choices.audience_share
    np.testing.assert_allclose(bought, share[1, products], rtol=0.05)


def test_seasonal_index_follows_the_planted_seasons(sample):
    dataset, truth, _ = sample
    index = seasonal_index(dataset)
    assert index.shape[1] == 12
    np.testing.assert_allclose(index.mean(axis=1), 1.0)
    # Garden peaks in spring, Kids Toys in December in the generator
    assert index.loc["Garden"].idxmax() in (4, 5)
    assert index.loc["Kids Toys"].idxmax() == 12
    per_product = month_index(dataset, index, 12)
    toys = (dataset.products["category"] == "Kids Toys").to_numpy()
    assert per_product[toys].min() > 1.5


def test_month_brings_more_visitors_into_the_market(sample):
    """December: more of each segment is in the market for toys; what the interested
    would pay stays."""
    dataset, _, labels = sample
    model = calibrate_demand(dataset, labels)
    idx = month_index(dataset, seasonal_index(dataset), 12)
    dec = model.for_month(idx)
    toys = (dataset.products["category"] == "Kids Toys").to_numpy()
    assert (dec.interest[:, toys] > model.interest[:, toys]).mean() > 0.9
    np.testing.assert_array_equal(dec.mu, model.mu)
    # a model without interest shares raises the take rates instead
    old = replace(model, interest=None).for_month(idx)
    assert (old.take_rate[:, toys] >= model.take_rate[:, toys]).all()

