"""The sample market: committed files are what the generator makes, and the
planted ground truth is visible in the order lines with plain pandas."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from engine.sample_market import (
    generate_market,
    true_segment_labels,
    write_market,
    wtp_parameters,
)

FILES = ("order_lines.csv", "products.csv", "customers.csv", "ground_truth.json")


@pytest.fixture(scope="module")
def gt(sample_dir: Path) -> dict:
    return json.loads((sample_dir / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def products(sample_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sample_dir / "products.csv")


@pytest.fixture(scope="module")
def raw_lines(sample_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sample_dir / "order_lines.csv", dtype={"order_id": str})


@pytest.fixture(scope="module")
def lines(raw_lines: pd.DataFrame) -> pd.DataFrame:
    """Clean purchases: what an importer keeps."""
    keep = (
        (raw_lines["quantity"] > 0)
        & ~raw_lines["order_id"].str.startswith("C")
        & (raw_lines["product_id"] != "POST")
        & raw_lines["customer_id"].notna()
    )
    return raw_lines[keep]


@pytest.fixture(scope="module")
def baskets(lines: pd.DataFrame) -> pd.DataFrame:
    """orders x products 0/1."""
    return pd.crosstab(lines["order_id"], lines["product_id"]).clip(upper=1)


def lift(baskets: pd.DataFrame, a: str, b: str) -> tuple[float, int]:
    n = len(baskets)
    both = int((baskets[a] & baskets[b]).sum())
    return both * n / (baskets[a].sum() * baskets[b].sum()), both


def test_regenerated_files_are_byte_identical(tmp_path, sample_dir, gt):
    write_market(generate_market(seed=gt["seed"]), tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (sample_dir / name).read_bytes(), name
    total = sum((sample_dir / n).stat().st_size for n in FILES)
    assert total < 5 * 2**20


def test_other_seed_gives_other_market(gt):
    seen = []
    a = generate_market(seed=gt["seed"] + 1, progress=seen.append)
    assert a.ground_truth["seed"] == gt["seed"] + 1
    assert a.ground_truth["customer_segment"] != gt["customer_segment"]
    assert a.ground_truth["wtp"]["mu"] != gt["wtp"]["mu"]
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_sizes(products, raw_lines, lines, sample_dir, gt):
    customers = pd.read_csv(sample_dir / "customers.csv")
    assert list(customers.columns) == ["customer_id", "country", "signup_date"]
    assert 280 <= len(products) <= 320 and products["product_id"].is_unique
    assert products["name"].is_unique
    assert products["category"].nunique() == 12
    assert len(customers) == 2000
    assert 20_000 <= len(raw_lines) <= 30_000
    assert len(lines) == gt["dirt"]["clean_lines"]
    months = pd.to_datetime(lines["timestamp"]).dt.to_period("M")
    assert months.nunique() == 12 and str(months.min()) == "2025-01"
    assert (
        (products["cost"] >= 0.34 * products["price"])
        & (products["cost"] <= 0.71 * products["price"])
    ).all()
    assert products["price"].between(0.99, 130).all()
    assert products["in_stock"].mean() > 0.85
    # every customer signed up before their first order
    first = lines.groupby("customer_id")["timestamp"].min().str[:10]
    signup = customers.set_index("customer_id")["signup_date"]
    assert (signup.loc[first.index] <= first).all()


def test_dirt_counts_match_ground_truth(raw_lines, gt):
    dirt = gt["dirt"]
    cancelled = raw_lines["order_id"].str.startswith("C")
    assert cancelled.sum() == dirt["cancelled_lines"]
    assert raw_lines.loc[cancelled, "order_id"].nunique() == dirt["cancelled_orders"]
    assert ((raw_lines["quantity"] < 0) & ~cancelled).sum() == dirt["return_lines"]
    assert 0.005 <= dirt["return_lines"] / len(raw_lines) <= 0.015
    assert (raw_lines["product_id"] == "POST").sum() == dirt["postage_lines"]
    assert raw_lines["customer_id"].isna().sum() == dirt["missing_customer_lines"]
    assert len(raw_lines) == dirt["total_lines"]


def test_planted_complements_far_above_chance(baskets, gt):
    groups = gt["planted_pairs"] + gt["planted_triples"]
    assert len(gt["planted_pairs"]) == 10 and len(gt["planted_triples"]) == 3
    for g in groups:
        for a, b in combinations(g["products"], 2):
            value, both = lift(baskets, a, b)
            assert value >= 5 and both >= 10, (g["names"], value, both)


def test_substitutes_rarely_together(baskets, gt, products):
    assert len(gt["substitutes"]) == 8
    desc = products.set_index("product_id")["description"]
    for g in gt["substitutes"]:
        a, b = g["products"]
        value, both = lift(baskets, a, b)
        assert value < 1 or both <= 2, (g["names"], value, both)
        assert desc[a] == desc[b]  # near-identical text: a content model sees them alike
        assert baskets[a].sum() >= 10 and baskets[b].sum() >= 10


def test_segments_have_distinct_tastes(lines, products, gt):
    cat = lines["product_id"].map(products.set_index("product_id")["category"])
    seg = pd.Series(true_segment_labels(gt, lines["customer_id"].tolist()), index=lines.index)
    overall = cat.value_counts(normalize=True)
    shares = pd.crosstab(seg, cat, normalize="index")
    tops = set()
    for s, row in shares.iterrows():
        top = row.idxmax()
        tops.add(top)
        assert row[top] >= 2 * overall[top], (s, top)
        liked = gt["segments"][s]["liked_categories"]
        assert top in liked
    assert len(tops) == 5  # each segment's favourite category is different
    sizes = [s["size"] for s in gt["segments"]]
    assert sum(sizes) == 2000 and min(sizes) > 200


def test_prices_vary_over_time(lines, products):
    distinct = lines.groupby("product_id")["unit_price"].nunique()
    assert (distinct >= 3).mean() >= 0.5
    # never above list price; discounts of at most 30 %
    list_price = lines["product_id"].map(products.set_index("product_id")["price"])
    ratio = lines["unit_price"] / list_price
    assert ratio.max() <= 1.0 + 1e-9 and ratio.min() >= 0.69


def test_seasonality_visible(lines, products):
    cat = lines["product_id"].map(products.set_index("product_id")["category"])
    month = pd.to_datetime(lines["timestamp"]).dt.month
    garden = cat == "Garden"
    spring = garden[month.isin([4, 5, 6])].mean()
    winter = garden[month.isin([11, 12, 1])].mean()
    assert spring > 2 * winter
    toys = cat == "Kids Toys"
    assert toys[month.isin([11, 12])].mean() > 1.5 * toys[month.isin([5, 6, 7])].mean()


def test_helpers(gt, products):
    mu, sigma, sizes = wtp_parameters(gt)
    assert mu.shape == (5, len(products)) and sigma.shape == (len(products),)
    assert ((sigma >= 0.25) & (sigma <= 0.6)).all()
    assert sizes.sum() == 2000
    labels = true_segment_labels(gt, ["C00001", "C00002"])
    names = gt["wtp"]["segments"]
    assert [names[i] for i in labels] == [gt["customer_segment"][c] for c in ["C00001", "C00002"]]
    with pytest.raises(KeyError):
        true_segment_labels(gt, ["nobody"])
    # liked categories are valued higher relative to list price
    cat = products["category"].to_numpy()
    rel = mu - np.log(products["price"].to_numpy())[None, :]
    for s, seg in enumerate(gt["segments"]):
        liked = np.isin(cat, seg["liked_categories"])
        assert rel[s, liked].mean() > rel[s, ~liked].mean()


def test_take_rate_matches_wtp(lines, products, gt):
    """Purchases at list price / considerations at list price ~ P(w >= list price).

    P(w >= p) = 1 - Phi((log p - mu) / sigma) is computed here from the documented
    mu and sigma, per segment, for the popular products outside the substitute pairs
    (where a bought product may be dropped for its substitute) and the synergy
    groups (bought whole when the set pays, not by each member's own worth).
    """
    mu, sigma, _ = wtp_parameters(gt)
    n = np.asarray(gt["consideration"]["counts_at_list_price"])
    list_price = products["price"].to_numpy()
    pos = {p: i for i, p in enumerate(products["product_id"])}
    subs = {p for g in gt["substitutes"] for p in g["products"]}
    subs |= {p for g in gt["planted_pairs"] + gt["planted_triples"] if g["regime"] == "synergy"
             for p in g["products"]}
    at_list = lines[
        np.isclose(
            lines["unit_price"], lines["product_id"].map(products.set_index("product_id")["price"])
        )
    ]
    seg = true_segment_labels(gt, at_list["customer_id"].tolist())
    bought = np.zeros_like(n)
    np.add.at(bought, (seg, at_list["product_id"].map(pos).to_numpy()), 1)
    popular = [pos[p] for p in lines["product_id"].value_counts().index[:40] if p not in subs]
    take = 1 - ndtr((np.log(list_price)[None, :] - mu) / sigma[None, :])
    assert np.allclose(take, gt["wtp"]["take_rate_at_list_price"], atol=1e-3)
    checked = 0
    for s in range(len(mu)):
        for i in popular:
            if n[s, i] < 30:
                continue
            sd = np.sqrt(n[s, i] * take[s, i] * (1 - take[s, i]))
            assert abs(bought[s, i] - n[s, i] * take[s, i]) <= 4.5 * sd + 1, (s, i)
            checked += 1
    assert checked >= 40


def test_promotions_raise_sales(lines, products, gt):
    """Price response is in the lines: a product sells more per week when discounted,
    about as much more as the lognormal model predicts."""
    week = (pd.to_datetime(lines["timestamp"]).dt.day_of_year - 1) // 7
    sales = pd.crosstab(lines["product_id"], week).reindex(
        index=products["product_id"], columns=range(53), fill_value=0
    )
    promo = np.zeros(sales.shape)
    pos = {p: i for i, p in enumerate(products["product_id"])}
    for pid, w, d in gt["promotions"]["calendar"]:
        promo[pos[pid], w] = d
    assert 0.15 <= (promo > 0).mean() <= 0.25
    s = sales.to_numpy()[:, :52]  # week 52 is one day long
    on = promo[:, :52] > 0
    ratio = (s * on).sum() / on.sum() / ((s * ~on).sum() / (~on).sum())
    print(f"promo sales ratio {ratio:.3f}")
    assert ratio > 1.15
    # predicted: mean over segments (weighted by size) of P(w >= discounted) / P(w >= list)
    mu, sigma, sizes = wtp_parameters(gt)
    d = np.asarray([c[2] for c in gt["promotions"]["calendar"]])
    i = np.asarray([pos[c[0]] for c in gt["promotions"]["calendar"]])
    log_p = np.log(products["price"].to_numpy())
    up = 1 - ndtr((log_p[i][None, :] + np.log(1 - d)[None, :] - mu[:, i]) / sigma[i])
    base = 1 - ndtr((log_p[i][None, :] - mu[:, i]) / sigma[i])
    predicted = (sizes @ up).sum() / (sizes @ base).sum()
    print(f"predicted {predicted:.3f}")
    assert abs(ratio - predicted) < 0.25 * predicted, (ratio, predicted)


def test_engine_finds_planted_pairs(lines, products, gt):
    """The co-purchase stage, run on the clean lines, ranks the planted pairs on top."""
    from engine.data.dataset import Dataset
    from engine.recommend.copurchase import copurchase_stats

    ds = Dataset.from_frames(lines.drop(columns=["name"]), products)
    stats = copurchase_stats(ds.baskets)
    top = stats.top_pairs(n=30, min_count=5)
    ids = ds.product_ids
    found = {frozenset((ids[a], ids[b])) for a, b in top}
    planted = {
        frozenset(pair)
        for g in gt["planted_pairs"] + gt["planted_triples"]
        for pair in combinations(g["products"], 2)
    }
    print(f"planted pairs in top 30: {len(found & planted)} of {len(planted)}")
    assert len(found & planted) >= 15


def test_importer_sets_aside_exactly_the_documented_dirt(sample_dir, gt):
    """The data stage's validation report counts what ground_truth.json documents."""
    from engine.data import load_files

    result = load_files([sample_dir / n for n in FILES[:3]])
    report, dirt = result.report, gt["dirt"]
    assert report.ok and report.rows_read == dirt["total_lines"]
    assert report.rows_kept == dirt["clean_lines"]
    aside = report.set_aside
    assert aside["cancelled"] == dirt["cancelled_lines"]
    assert aside["return"] == dirt["return_lines"]
    assert aside["non_merchandise"] == dirt["postage_lines"]
    assert aside["missing_customer"] == dirt["missing_customer_lines"]
    assert result.dataset.n_products == gt["counts"]["products"]
