"""Offline evaluation protocol, metrics with known answers, and the evaluate/recommend CLI."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset
from engine.pipeline import cli, stages
from engine.pipeline.config import RunConfig
from engine.recommend.evaluate import holdout_split, ranking_metrics
from engine.recommend.models import Popularity

# the module, not the function engine.recommend re-exports under the same name
E = importlib.import_module("engine.recommend.evaluate")


def test_ranking_metrics_known_answer():
    top = np.array([[3, 1, 7], [5, 6, 8]])
    targets = [np.array([1, 9]), np.array([2])]
    recall, ndcg = ranking_metrics(top, targets, k=3)
    # customer 0: 1 hit of min(3, 2) at rank 2; customer 1: no hit
    assert recall == pytest.approx((1 / 2 + 0) / 2)
    ideal = 1 + 1 / np.log2(3)
    assert ndcg == pytest.approx(((1 / np.log2(3)) / ideal) / 2)


def _lines(rows):
    return pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.TIMESTAMP]).assign(
        **{C.QUANTITY: 1, C.UNIT_PRICE: 1.0}
    )


def test_holdout_split_targets_exclude_seen_and_new_customers():
    ds = Dataset.from_frames(_lines([
        ("o1", "a", "p1", "2025-01-01"), ("o2", "b", "p2", "2025-01-02"),
        ("o3", "a", "p1", "2025-03-01"), ("o3", "a", "p3", "2025-03-01"),  # p1 seen: not a target
        ("o4", "c", "p2", "2025-03-02"),  # c has no training history
        ("o5", "b", "p4", "2025-03-03"),  # p3, p4 never sold before the cut: cold
    ]))
    split = holdout_split(ds, holdout_weeks=2, min_cold=1)
    train_ids = split.train.customer_ids[split.test_customers].tolist()
    assert train_ids == ["a", "b"]
    assert [ds.product_ids[t].tolist() for t in split.targets] == [["p3"], ["p4"]]
    assert ds.product_ids[split.cold_products].tolist() == ["p3", "p4"]
    assert not split.cold_simulated


def test_next_purchase_targets_include_repeats():
    ds = Dataset.from_frames(_lines([
        ("o1", "a", "p1", "2025-01-01"), ("o2", "b", "p2", "2025-01-02"),
        ("o3", "a", "p1", "2025-03-01"), ("o3", "a", "p3", "2025-03-01"),
        ("o4", "b", "p2", "2025-03-03"),  # b only buys again: no new-products target
    ]))
    split = holdout_split(ds, holdout_weeks=2, min_cold=1)
    ids = split.train.customer_ids
    assert ids[split.next_customers].tolist() == ["a", "b"]
    assert [ds.product_ids[t].tolist() for t in split.next_targets] == [["p1", "p3"], ["p2"]]
    assert ids[split.test_customers].tolist() == ["a"]  # new products: p3 only
    assert [ds.product_ids[t].tolist() for t in split.targets] == [["p3"]]


def _catalogue(rows):
    return pd.DataFrame(rows, columns=[C.PRODUCT_ID, C.NAME, C.CATEGORY]).assign(
        **{C.UNIT_PRICE: 1.0})


def test_cold_start_ranks_cold_products_in_the_whole_catalogue():
    """Popularity in category ranks a cold product with the sold products of its
    category, not among the cold products alone."""
    rows = [(f"t{i}", f"u{i}", p, "2025-01-01") for i in range(6) for p in ("p1", "p2")]
    rows += [("t9", "x", "p3", "2025-01-02"), ("w1", "x", "p4", "2025-03-01"),
             ("w1", "x", "p5", "2025-03-01")]
    products = _catalogue([("p1", "A one", "A"), ("p2", "A two", "A"), ("p3", "B one", "B"),
                           ("p4", "A new", "A"), ("p5", "B new", "B")])
    ds = Dataset.from_frames(_lines(rows), products)
    split = holdout_split(ds, holdout_weeks=2, min_cold=1)
    assert ds.product_ids[split.cold_products].tolist() == ["p4", "p5"]
    assert not split.cold_simulated
    emb = np.eye(5, dtype=np.float32)
    cold_model = Popularity().fit(split.cold_train)  # any Recommender: only the lists matter here
    for k, hits in ((2, 0), (3, 1)):
        table, tops = E.cold_start_table(split, cold_model, emb, k=k)
        top = tops["popularity in category"]
        # x bought p3: left out; A's share ranks p1, p2 (sold) and then p4 (cold) first
        assert ds.product_ids[top[0]].tolist() == ["p1", "p2", "p4"][:k]
        row = table.set_index("model").loc["popularity in category"]
        assert row[f"recall@{k}"] == pytest.approx(hits / 2)
        assert row["cold share"] == pytest.approx(hits / k)
    # among the cold products alone any 2 of them would recall both


@pytest.fixture(scope="module")
def sample_files(sample_dir, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("ENGINE_WORKSPACE", str(tmp_path_factory.mktemp("ws")))
    return [str(sample_dir / "order_lines.csv"), str(sample_dir / "products.csv")]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _parser():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture(scope="module")
def sample_evaluation(sample_files):
    """``evaluate --json`` on the sample market, run once for the module's tests."""
    args = _parser().parse_args(["evaluate", *sample_files, "--holdout-weeks", "8", "--json"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.func(args) == 0
    return json.loads(out.getvalue())


@pytest.mark.slow
def test_evaluate_cli_on_sample(sample_evaluation):
    out = sample_evaluation
    table = pd.DataFrame(out["models"]).set_index("model")
    assert set(table.index) == {"hybrid", "popularity", "item-kNN", "EASE"}
    assert out["protocol"]["test_customers"] > 500
    # measured on the sample with planted needs (whole groups considered together,
    # which item-kNN reads well): hybrid NDCG@20 0.270, item-kNN 0.263, EASE 0.251
    assert table.loc["hybrid", "ndcg@20"] >= 1.5 * table.loc["popularity", "ndcg@20"]
    assert table.loc["hybrid", "ndcg@20"] > max(table.loc[["EASE", "item-kNN"], "ndcg@20"])
    assert out["protocol"]["hybrid_weights"]["tuned"]


@pytest.mark.slow
def test_evaluate_next_purchase_on_sample(sample_evaluation):
    out = sample_evaluation
    table = pd.DataFrame(out["next_purchase"]).set_index("model")
    assert list(table.index) == ["hybrid", "popularity", "personal frequency", "EASE", "TIFU-KNN"]
    p = out["protocol"]
    # every customer with a new product is here, and those who only bought again too
    assert p["next_purchase_customers"] > p["test_customers"]
    assert p["hybrid_weights"]["next_purchase"]["fitted"]
    # measured: hybrid NDCG@20 0.279, EASE 0.263, TIFU-KNN 0.191, personal frequency 0.184,
    # popularity 0.140
    assert table.loc["hybrid", "ndcg@20"] >= 1.5 * table.loc["popularity", "ndcg@20"]
    assert table.loc["hybrid", "ndcg@20"] > table.loc[["personal frequency", "TIFU-KNN"], "ndcg@20"].max()
    assert table.loc["hybrid", "recall@20"] > table.loc["popularity", "recall@20"]
    # bought products are allowed: the personal lists repeat, popularity a little
    # (everyone's list holds some of what they bought), and the hybrid mixes (0.29)
    share = table["repeat share"]
    assert 0.1 < share["hybrid"] < share["personal frequency"]
    assert share["popularity"] > 0
    assert (table["coverage"] > 0).all() and (table["coverage"] <= 1).all()


@pytest.mark.slow
def test_evaluate_cold_start_on_sample_ranks_the_whole_catalogue(sample_evaluation, sample_files):
    out = sample_evaluation
    p = out["protocol"]
    cold = pd.DataFrame(out["cold_start"]).set_index("model")
    assert set(cold.index) == {"hybrid (text)", "popularity in category"}
    assert p["cold_simulated"]  # the sample sells every product from day one
    assert p["cold_products"] >= 4 * 20  # candidates far outnumber K
    base = cold.loc["popularity in category"]
    # sold products compete for the same 20 places: most of the list is not cold
    assert 0 < base["cold share"] < 0.5
    # the old protocol, the cold products ranked among themselves, on the same split
    ds = stages.load(sample_files, RunConfig().input).dataset
    split = holdout_split(ds, 8, seed=0)
    assert len(split.cold_customers) == p["cold_customers"]
    cats = E.product_categories(split.train.products, None)
    pop = E._category_popularity(split.cold_train, cats)[split.cold_products]
    order = split.cold_products[np.lexsort((split.cold_products, -pop))][:20]
    among_cold = ranking_metrics(np.tile(order, (len(split.cold_customers), 1)),
                                 split.cold_targets, 20)[0]
    # measured 0.105 in the whole catalogue, 0.324 among the cold products alone
    assert base["recall@20"] < 0.5 * among_cold
    # the hybrid's cold model: a never-sold product takes its text neighbours'
    # collaborative scores, so it competes with the sold ones (measured 0.221 vs 0.105;
    # 0.001 when it scored EASE's nothing)
    hybrid = cold.loc["hybrid (text)"]
    assert hybrid["recall@20"] >= 1.5 * base["recall@20"]
    assert 0 < hybrid["cold share"] < 0.5  # and does not crowd out the sold ones


@pytest.mark.slow
def test_recommend_cli_writes_every_customer(sample_files, tmp_path):
    out = tmp_path / "recs.csv"
    args = _parser().parse_args(["recommend", *sample_files, "--k", "2", "--out", str(out)])
    assert args.func(args) == 0
    recs = pd.read_csv(out, dtype={C.CUSTOMER_ID: str, C.PRODUCT_ID: str})
    assert list(recs.columns) == [C.CUSTOMER_ID, "rank", C.PRODUCT_ID, "score", "repeat",
                                  "reason"]
    assert recs.groupby(C.CUSTOMER_ID)["rank"].apply(list).map(lambda r: r == [1, 2]).all()
    assert recs[C.CUSTOMER_ID].str.match(r"C\d{5}").all()  # the shop's own ids
    assert recs["reason"].str.len().gt(10).all()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "orders.csv"
    bad.write_text("a,b\n1,2\n")
    for argv in (["evaluate", str(bad)], ["recommend", str(tmp_path / "nope.csv"), "--out", "x"]):
        args = _parser().parse_args(argv)
        assert args.func(args) == 2
        assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_on_full_online_retail(real_full_path, capsys):
    """The issue's goals on the real data (last 8 weeks held out); skips without ../shared."""
    args = _parser().parse_args(["evaluate", str(real_full_path), "--holdout-weeks", "8", "--json"])
    assert args.func(args) == 0
    table = pd.DataFrame(json.loads(capsys.readouterr().out)["models"]).set_index("model")
    # measured: hybrid 0.118, EASE 0.106, item-kNN 0.070, popularity 0.042
    assert table.loc["hybrid", "ndcg@20"] >= 1.5 * table.loc["popularity", "ndcg@20"]
    assert table.loc["hybrid", "ndcg@20"] >= 1.05 * max(table.loc[["EASE", "item-kNN"], "ndcg@20"])
