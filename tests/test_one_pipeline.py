"""One answer wherever the analyst looks: the dashboard's exported price list is the
one ``engine run`` writes for the same settings; a Bundles-page setting reaches the
Pricing and Export pages; the downloaded settings reproduce the export through
``engine run --config``; ``engine bundles`` and ``engine price`` agree with ``run``."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine.__main__ import main
from engine.export import to_csv_bytes
from engine.pipeline import RunConfig, run
from engine.workspace import Workspace
from ui.data import load_into_workspace

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
SAMPLE = ROOT / "sample_data"
FILES = [SAMPLE / f for f in ("order_lines.csv", "products.csv", "customers.csv")]
EXPORT = "app_pages/5_export.py"
BUNDLES = "app_pages/3_bundles.py"
PRICING = "app_pages/4_pricing.py"


def _app(workspace: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(workspace))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _csv(frame: pd.DataFrame) -> bytes:
    return to_csv_bytes(frame)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """The app in a workspace of its own, on the sample market at default settings."""
    mp = pytest.MonkeyPatch()
    ws = tmp_path_factory.mktemp("one_ws")
    at = _app(ws, mp)
    yield at, ws
    mp.undo()


@pytest.fixture(scope="module")
def cli_default(dashboard, tmp_path_factory):
    _, ws = dashboard
    out = tmp_path_factory.mktemp("one_cli")
    mp = pytest.MonkeyPatch()
    mp.setenv("ENGINE_WORKSPACE", str(ws))  # the same embedding cache
    assert main(["run", *map(str, FILES), "--out", str(out)]) == 0
    mp.undo()
    return out


def test_dashboard_exports_the_price_list_engine_run_writes(dashboard, cli_default):
    at, _ = dashboard
    _go(at, EXPORT)
    exported = at.session_state["export_price_list"]
    written = (cli_default / "price_list.csv").read_bytes()
    assert len(exported) >= 5
    assert _csv(exported) == written  # same rows, ids, prices, reasons, byte for byte


def test_downloaded_settings_reproduce_the_export(dashboard, tmp_path):
    at, ws = dashboard
    _go(at, BUNDLES)
    size = next(s for s in at.slider if s.key == "bundles_size_widget")
    size.set_value((3, 4))
    next(c for c in at.checkbox if c.key == "bundles_in_stock_widget").check()
    next(b for b in at.button if b.label == "Find bundles").click().run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    _go(at, EXPORT)
    exported = at.session_state["export_price_list"]
    settings = at.session_state["export_settings_toml"]
    assert "kmin = 3" in settings and "in_stock_only = true" in settings
    sizes = exported["product_ids"].str.count(r"\|") + 1
    assert sizes.between(3, 4).all()
    path = tmp_path / "settings.toml"
    path.write_text(settings)
    out = tmp_path / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("ENGINE_WORKSPACE", str(ws))
    try:
        assert main(["run", *map(str, FILES), "--config", str(path), "--out", str(out)]) == 0
    finally:
        mp.undo()
    assert _csv(exported) == (out / "price_list.csv").read_bytes()


def test_an_anchor_on_the_bundles_page_reaches_pricing_and_export(dashboard):
    at, _ = dashboard
    _go(at, EXPORT)
    before = at.session_state["export_price_list"]
    _go(at, BUNDLES)
    anchor = before["product_ids"].iloc[0].split("|")[0]
    next(m for m in at.multiselect if m.key == "bundles_anchor_widget").select(anchor)
    next(b for b in at.button if b.label == "Find bundles").click().run(timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    _go(at, PRICING)
    priced = at.session_state["pricing_price_list"]
    assert priced["product_ids"].str.split("|").map(lambda ids: anchor in ids).all()
    _go(at, EXPORT)
    exported = at.session_state["export_price_list"]
    assert exported["bundle_id"].tolist() == priced["bundle_id"].tolist()
    assert exported["product_ids"].str.split("|").map(lambda ids: anchor in ids).all()
    assert set(exported["bundle_id"]) != set(before["bundle_id"])


def test_bundles_and_price_commands_agree_with_run(cli_default, dashboard, tmp_path, capsys):
    _, ws = dashboard
    mp = pytest.MonkeyPatch()
    mp.setenv("ENGINE_WORKSPACE", str(ws))
    try:
        capsys.readouterr()
        assert main(["bundles", *map(str, FILES), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)["bundles"]
        assert main(["price", *map(str, FILES), "--out", str(tmp_path / "p.csv")]) == 0
    finally:
        mp.undo()
    written = pd.read_csv(cli_default / "bundles.csv")
    assert [b["bundle_id"] for b in shown] == written["bundle_id"].tolist()
    assert (tmp_path / "p.csv").read_bytes() == (cli_default / "price_list.csv").read_bytes()


def test_every_command_takes_the_same_input_options(tmp_path, capsys):
    from engine.__main__ import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command, p in sub.choices.items():
        options = {o for a in p._actions for o in a.option_strings}
        assert {"--map", "--map-file", "--config", "--keep-non-merchandise"} <= options, command


def test_a_mapping_in_the_config_file_is_used_by_run(tmp_path, monkeypatch):
    """An analyst who fixed a mapping can use it in ``run`` (and every command)."""
    lines = pd.read_csv(FILES[0], dtype=str).rename(columns={"order_id": "Bestellnr",
                                                             "quantity": "Menge"})
    orders = tmp_path / "orders.csv"
    lines.to_csv(orders, index=False)
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    assert main(["validate", str(orders)]) == 2  # the columns are not recognised
    cfg = tmp_path / "run.toml"
    cfg.write_text('[input.mapping."orders.csv"]\nBestellnr = "order_id"\nMenge = "quantity"\n')
    assert main(["validate", str(orders), "--config", str(cfg)]) == 0
    assert main(["validate", str(orders), "--map", "Bestellnr=order_id",
                 "--map", "orders.csv:Menge=quantity"]) == 0


def test_settings_round_trip_through_toml():
    from engine.bundles import BeamConfig
    from engine.pipeline import InputConfig
    from engine.pricing import DemandConfig, PricingConfig

    cfg = replace(
        RunConfig(),
        input=InputConfig.from_per_file({"a.csv": {"Nr": "order_id"}, "*": {"Menge": "quantity"}},
                                        ["POST"]),
        beam=BeamConfig(kmin=3, kmax=4, anchor=("P1",), min_affinity_ratio=None),
        demand=DemandConfig(synergy=0.1, segment_visitors=(10.0, 20.0)),
        pricing=PricingConfig(price_ending=None, max_discount=0.25),
    )
    assert RunConfig.from_dict(__import__("tomllib").loads(cfg.to_toml())) == cfg


def test_run_on_the_web_page_files_matches_offers(cli_default):
    """offers.csv names each customer's segment as price_list.csv does."""
    offers = pd.read_csv(cli_default / "offers.csv", dtype=str).fillna("")
    prices = pd.read_csv(io.BytesIO((cli_default / "price_list.csv").read_bytes()), dtype=str)
    segment_of = dict(zip(prices["bundle_id"], prices["segment"], strict=True))
    for seg, ids in zip(offers["segment"], offers["offered_bundle_ids"], strict=True):
        assert all(segment_of[b] == seg for b in ids.split("|") if b)


@pytest.mark.slow
def test_full_online_retail_dashboard_and_run_agree(real_full_path, tmp_path, monkeypatch):
    """The same on the real shop: its parquet loaded in the dashboard's workspace and
    given to ``engine run``, both at default settings."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("ENGINE_WORKSPACE", str(ws))
    outcome = load_into_workspace(Workspace(ws), "online_retail", [real_full_path])
    assert outcome.ok, outcome.issues
    at = _app(ws, monkeypatch)
    _go(at, EXPORT)
    exported = at.session_state["export_price_list"]
    out = tmp_path / "out"
    result = run([real_full_path], out, RunConfig(), cache_dir=Workspace(ws).embeddings_dir)
    assert len(exported) == result.report["bundles"] >= 5
    assert _csv(exported) == (out / "price_list.csv").read_bytes()
