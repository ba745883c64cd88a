"""The batch run end to end on the sample market: every output, its columns,
guardrails, the shop's ids (or pseudonyms), and clean failures."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.__main__ import main
from engine.bundles import BeamConfig
from engine.pipeline import RunConfig, run
from engine.pricing import PricingConfig
from engine.workspace import Workspace
from tests.conftest import SAMPLE_DIR

FILES = ["order_lines.csv", "products.csv", "customers.csv"]
# smaller simulations than the defaults keep the test quick; the code path is the same
CONFIG = RunConfig(
    pricing=PricingConfig(n_customers=4_000),
    beam=BeamConfig(n_bundles=3),
    recommendations_k=5,
)


@pytest.fixture(scope="module")
def embedding_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("emb")


@pytest.fixture(scope="module")
def outputs(sample_dir, tmp_path_factory, embedding_cache):
    out = tmp_path_factory.mktemp("run")
    return run([sample_dir / f for f in FILES], out, CONFIG, cache_dir=embedding_cache)


def test_every_output_is_written(outputs):
    names = {p.name for p in outputs.files.values()}
    assert {
        "segments.csv", "recommendations.csv", "bundles.csv", "price_list.csv",
        "price_list.xlsx", "price_list.json", "run_report.json",
    } <= names
    report = json.loads((outputs.out_dir / "run_report.json").read_text())
    assert set(report["timings_s"]) == {
        "load", "encode", "preferences", "recommendations", "demand", "bundles", "pricing"
    }
    assert report["device"] == "cpu" or report["device"].startswith("cuda")
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    assert report["data"]["rows_kept"] == truth["counts"]["clean_lines"]


def test_price_list_columns_and_guardrails(outputs):
    prices = pd.read_csv(outputs.out_dir / "price_list.csv", dtype={"segment": str})
    assert list(prices.columns) == list(C.PRICE_LIST_COLUMNS)
    assert len(prices) > 0
    cfg = CONFIG.pricing
    assert (prices["bundle_price"] <= prices["list_total"] + 1e-9).all()
    assert (prices["bundle_price"] >= prices["list_total"] * (1 - cfg.max_discount) - 0.01).all()
    cents = np.round(prices["bundle_price"] * 100).astype(int) % 100
    assert (cents == 99).all()  # default price ending .99
    assert prices["product_ids"].str.contains("|", regex=False).all()
    xlsx = pd.read_excel(outputs.out_dir / "price_list.xlsx", dtype={"segment": str})
    pd.testing.assert_frame_equal(xlsx, prices, check_dtype=False)
    assert len(json.loads((outputs.out_dir / "price_list.json").read_text())) == len(prices)


def test_customer_files_keep_the_shops_ids(outputs, sample_dir):
    shop_ids = set(pd.read_csv(sample_dir / "customers.csv", dtype=str)[C.CUSTOMER_ID])
    segments = pd.read_csv(outputs.out_dir / "segments.csv", dtype=str)
    recs = pd.read_csv(outputs.out_dir / "recommendations.csv", dtype={C.CUSTOMER_ID: str})
    assert set(segments[C.CUSTOMER_ID]) <= shop_ids
    assert list(recs.columns) == [C.CUSTOMER_ID, "rank", C.PRODUCT_ID, "score", "repeat", "reason"]
    assert recs.groupby(C.CUSTOMER_ID)["rank"].max().eq(CONFIG.recommendations_k).all()
    # every segment named in segments.csv is offered only its own bundles
    offers = pd.read_csv(outputs.out_dir / "offers.csv", dtype=str).fillna("")
    for seg, ids in zip(offers[C.SEGMENT], offers["offered_bundle_ids"], strict=True):
        code = seg.split(" · ")[0]  # "S1 · Kitchen": bundle ids start with the code
        assert all(b.startswith(f"{code}-") for b in ids.split("|") if b)


def test_pseudonymised_run_hides_ids(sample_dir, tmp_path, embedding_cache):
    ws = Workspace(tmp_path / "ws")
    config = replace(CONFIG, pseudonymise=True, recommendations_k=2)
    result = run(
        [sample_dir / f for f in FILES], tmp_path / "out", config,
        cache_dir=embedding_cache, pseudonymise=ws.pseudonymise,
    )
    segments = pd.read_csv(result.out_dir / "segments.csv", dtype=str)
    assert segments[C.CUSTOMER_ID].str.startswith("c_").all()
    assert set(segments[C.CUSTOMER_ID]) == set(ws.pseudonymise(segments_ids(sample_dir)))


def segments_ids(sample_dir) -> list[str]:
    lines = pd.read_csv(sample_dir / "order_lines.csv", dtype=str)
    kept = lines[~lines[C.ORDER_ID].str.startswith("C") & lines[C.CUSTOMER_ID].notna()]
    kept = kept[kept[C.QUANTITY].astype(int) > 0]
    kept = kept[kept[C.PRODUCT_ID] != "POST"]
    return sorted(kept[C.CUSTOMER_ID].unique())


def test_config_file_is_read_and_checked(tmp_path):
    good = tmp_path / "run.toml"
    good.write_text('seed = 3\n[beam]\nkmax = 4\nanchor = ["P0001"]\n[pricing]\nmargin_floor = 0.2\n')
    cfg = RunConfig.from_file(good)
    assert (cfg.seed, cfg.beam.kmax, cfg.beam.anchor, cfg.pricing.margin_floor) == (
        3, 4, ("P0001",), 0.2
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"beam": {"beam_wdith": 3}}))
    with pytest.raises(ValueError, match="beam_wdith"):
        RunConfig.from_file(bad)


def test_cli_run_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,customer_id\n1,2\n")
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "orders.csv" in err and "Traceback" not in err
    assert not out.exists()
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{not json")
    assert main(["run", str(bad), "--out", str(out), "--config", str(cfg)]) == 2
    assert "cfg.json" in capsys.readouterr().err
