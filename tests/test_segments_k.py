"""The number of segments, chosen by how well segments explain held-out purchases:
markets with a known number of tastes (planted in the sample market, made here)
and a market with one taste, where the answer is the lower bound."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset, load_files
from engine.encoder import encode_products
from engine.recommend import PreferenceConfig
from engine.recommend.segments import customer_segments, holdout_orders, suggest_k


def _market(n_tastes: int, n_customers: int = 600, n_products: int = 60, orders: int = 8,
            seed: int = 0) -> Dataset:
    """Customers of ``n_tastes`` equal groups; a group buys its own third of the
    catalogue 9 times as often as the rest (one taste: everybody buys alike)."""
    rng = np.random.default_rng(seed)
    taste = np.arange(n_customers) % n_tastes
    own = np.arange(n_products) % n_tastes
    rows = []
    for c in range(n_customers):
        weight = np.where(own == taste[c], 9.0, 1.0) if n_tastes > 1 else np.ones(n_products)
        days = np.sort(rng.choice(365, size=orders, replace=False))
        for o, day in enumerate(days):
            for p in rng.choice(n_products, size=3, replace=False, p=weight / weight.sum()):
                rows.append((f"o{c}-{o}", f"c{c:04d}", f"p{p:03d}", 1, 1.0,
                             pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day))))
    lines = pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY,
                                        C.UNIT_PRICE, C.TIMESTAMP])
    lines[C.NAME] = "item " + lines[C.PRODUCT_ID]
    return Dataset.from_frames(lines)


def _no_text(dataset: Dataset) -> np.ndarray:
    return np.zeros((dataset.n_products, 16), np.float32)


@pytest.fixture(scope="module")
def sample(sample_dir, tmp_path_factory):
    files = [sample_dir / n for n in ("order_lines.csv", "products.csv", "customers.csv")]
    ds = load_files(files).dataset
    emb = encode_products(ds.products, cache_dir=tmp_path_factory.mktemp("embeddings"))
    truth = json.loads((sample_dir / "ground_truth.json").read_text())
    return ds, emb, truth


@pytest.fixture(scope="module")
def sample_choice(sample):
    ds, emb, _ = sample
    return suggest_k(ds, emb, PreferenceConfig(), seed=0)


@pytest.mark.slow
def test_sample_market_gets_its_planted_number_of_segments(sample, sample_choice):
    _, _, truth = sample
    planted = len(truth["segments"])
    choice = sample_choice
    print(choice.curve.round(4).to_string(), choice.reason, sep="\n")
    assert choice.k == choice.suggested == planted, choice.reason
    assert choice.chosen_by == "held-out purchases"
    assert choice.reason.startswith(f"k = {planted}:") and "standard error" in choice.reason
    # one row per k in the default bounds, each explaining purchases better than popularity
    assert choice.curve["k"].tolist() == list(range(2, 11))
    assert (choice.curve["lift"] > 0).all() and (choice.curve["se"] > 0).all()
    np.testing.assert_allclose(choice.curve["times_likelier"], np.exp(choice.curve["lift"]))
    assert choice.curve.set_index("k").loc[planted, "within_one_se"]


@pytest.mark.slow
def test_sample_market_override_keeps_the_curve_and_says_so(sample, sample_choice):
    ds, emb, truth = sample
    planted = len(truth["segments"])
    other = 3 if planted != 3 else 4
    labels, centroids, choice = customer_segments(
        ds, emb, PreferenceConfig(n_segments=other), seed=0)
    assert len(centroids) == other and set(np.unique(labels)) == set(range(other))
    assert choice.k == other and choice.suggested == planted
    assert choice.chosen_by == "analyst" and "chosen by the analyst" in choice.reason
    pd.testing.assert_frame_equal(choice.curve, sample_choice.curve)


@pytest.mark.slow
def test_sample_market_profit_breaks_ties_within_one_standard_error(sample, sample_choice):
    ds, emb, _ = sample
    asked = {}

    def profit(k: int, labels: np.ndarray) -> float:
        asked[k] = labels
        return float(k)  # more segments, more profit: the largest candidate wins

    choice = suggest_k(ds, emb, PreferenceConfig(), seed=0, profit=profit)
    candidates = sample_choice.curve.loc[sample_choice.curve["within_one_se"], "k"].tolist()
    assert sorted(asked) == candidates  # only the near-ties are priced
    assert choice.k == max(candidates) and choice.chosen_by == "held-out purchases and profit"
    assert all(len(lab) == ds.n_customers and lab.max() < k for k, lab in asked.items())
    assert choice.curve["profit"].notna().sum() == len(candidates)


def test_three_tastes_give_three_segments():
    ds = _market(3)
    choice = suggest_k(ds, _no_text(ds), PreferenceConfig(), seed=0)
    assert choice.k == 3, (choice.reason, choice.curve)
    best = choice.curve.loc[choice.curve["log_likelihood"].idxmax(), "k"]
    assert best >= 3  # fewer segments than tastes explain the held-out purchases worse


def test_one_taste_gives_the_lower_bound():
    ds = _market(1)
    for k_range in ((2, 8), (4, 6)):
        choice = suggest_k(ds, _no_text(ds), PreferenceConfig(k_range=k_range), seed=0)
        assert choice.k == k_range[0], choice.reason
        assert "lower bound" in choice.reason


def test_bounds_are_respected_and_the_curve_has_one_row_per_k():
    ds = _market(3)
    choice = suggest_k(ds, _no_text(ds), PreferenceConfig(k_range=(4, 7)), seed=0)
    assert choice.curve["k"].tolist() == [4, 5, 6, 7]
    assert choice.k == 4  # three tastes: the smallest k allowed is the nearest
    again = suggest_k(ds, _no_text(ds), PreferenceConfig(k_range=(4, 7)), seed=0)
    pd.testing.assert_frame_equal(choice.curve, again.curve)  # seeded


def test_holdout_is_each_customers_latest_orders():
    ds = _market(2, n_customers=10, orders=10)
    held = holdout_orders(ds)
    for c in range(ds.n_customers):
        mine = np.flatnonzero(ds.order_customer == c)
        assert held[mine].sum() == 2  # 20% of 10 orders
        assert ds.order_time[mine][held[mine]].min() > ds.order_time[mine][~held[mine]].max()
    one = _market(2, n_customers=4, orders=1)
    assert not holdout_orders(one).any()  # a single order only trains
    choice = suggest_k(one, _no_text(one), PreferenceConfig(), seed=0)
    assert choice.k == 2 and choice.curve.empty and "second order" in choice.reason
