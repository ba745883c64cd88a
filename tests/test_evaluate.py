"""Offline evaluation protocol, metrics with known answers, and the evaluate/recommend CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset
from engine.pipeline import cli
from engine.recommend.evaluate import holdout_split, ranking_metrics


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


@pytest.mark.slow
def test_evaluate_cli_on_sample(sample_files, capsys):
    args = _parser().parse_args(["evaluate", *sample_files, "--holdout-weeks", "8", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    table = pd.DataFrame(out["models"]).set_index("model")
    assert set(table.index) == {"hybrid", "popularity", "item-kNN", "EASE"}
    assert out["protocol"]["test_customers"] > 500
    # measured on the sample with planted needs (whole groups considered together,
    # which item-kNN reads well): hybrid NDCG@20 0.270, item-kNN 0.263, EASE 0.251
    assert table.loc["hybrid", "ndcg@20"] >= 1.5 * table.loc["popularity", "ndcg@20"]
    assert table.loc["hybrid", "ndcg@20"] > max(table.loc[["EASE", "item-kNN"], "ndcg@20"])
    assert out["protocol"]["hybrid_weights"]["tuned"]
    cold = pd.DataFrame(out["cold_start"]).set_index("model")
    assert out["protocol"]["cold_simulated"]  # the sample sells every product from day one
    assert out["protocol"]["cold_products"] >= 4 * 20  # candidates far outnumber K
    # measured 0.64 vs 0.29; ranking by the true purchase probabilities gets 0.73
    assert cold.loc["hybrid (text)", "recall@20"] >= 2 * cold.loc["popularity in category", "recall@20"]


@pytest.mark.slow
def test_recommend_cli_writes_every_customer(sample_files, tmp_path):
    out = tmp_path / "recs.csv"
    args = _parser().parse_args(["recommend", *sample_files, "--k", "2", "--out", str(out)])
    assert args.func(args) == 0
    recs = pd.read_csv(out, dtype={C.CUSTOMER_ID: str, C.PRODUCT_ID: str})
    assert list(recs.columns) == [C.CUSTOMER_ID, "rank", C.PRODUCT_ID, "score", "reason"]
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
