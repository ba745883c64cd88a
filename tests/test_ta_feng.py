"""Ta-Feng grocery (../shared/data/ta_feng.csv.zip) with no mapping: validate, recommend
and run take it as it is; the report's counts match plain pandas; margins come from
ASSET; an order is a customer's purchases on one day. The data's licence keeps it out
of the repository, so the tests make a slice of it and skip where it is absent."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest

from engine.__main__ import main
from engine.data import load_files
from engine.pricing.demand import COST_FROM_DATA, DemandConfig, calibrate_demand
from tests.conftest import SHARED_DATA

TA_FENG = SHARED_DATA / "ta_feng.csv.zip"
LINES = 30_000


@pytest.fixture(scope="module")
def slice_zip(tmp_path_factory):
    """The first 30,000 lines, header with its byte-order mark, zipped as the original."""
    if not TA_FENG.exists():
        pytest.skip(f"Ta-Feng not found at {TA_FENG} (lives in ../shared/data, not in the repo)")
    with zipfile.ZipFile(TA_FENG) as z:
        member = z.namelist()[0]
        text = z.read(member)
    head = b"\n".join(text.split(b"\n")[: LINES + 1]) + b"\n"
    assert head.startswith(b"\xef\xbb\xbf")
    path = tmp_path_factory.mktemp("ta_feng") / "ta_feng_slice.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, head)
    return path


def plain_counts(path) -> dict:
    """The same numbers in plain pandas, from the raw text."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    qty = pd.to_numeric(raw["AMOUNT"])
    median = qty.groupby(raw["PRODUCT_ID"]).transform("median")
    outlier = (qty >= 1000) & (qty > 100 * median)
    kept = raw[~outlier]
    day = pd.to_datetime(kept["TRANSACTION_DT"], format="%m/%d/%Y").dt.date
    return {
        "rows_read": len(raw),
        "outlier_quantity": int(outlier.sum()),
        "rows_kept": len(kept),
        "n_customers": kept["CUSTOMER_ID"].nunique(),
        "n_products": kept["PRODUCT_ID"].nunique(),
        "n_orders": len(set(zip(kept["CUSTOMER_ID"], day, strict=True))),
    }


def test_validate_takes_it_with_no_mapping_and_counts_match_pandas(slice_zip, capsys):
    assert main(["validate", str(slice_zip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    want = plain_counts(slice_zip)
    assert report["rows_read"] == want["rows_read"] == LINES
    assert report["rows_kept"] == want["rows_kept"]
    assert report["set_aside"]["outlier_quantity"] == want["outlier_quantity"]
    assert sum(report["set_aside"].values()) == want["rows_read"] - want["rows_kept"]
    for key in ("n_customers", "n_products", "n_orders"):
        assert report["summary"][key] == want[key], key
    rules = {w["rule"] for w in report["warnings"]}
    assert {"unit_price_from_line_total", "cost_per_line", "orders_by_day"} <= rules
    assert report["mapping"]["ta_feng_slice.csv.zip"]["SALES_PRICE"] == "line_total"


def test_margins_come_from_asset_and_customers_keep_their_zeros(slice_zip):
    data = load_files([slice_zip]).dataset
    assert data.customer_ids[0].startswith("0") and len(data.customer_ids[0]) == 8
    raw = pd.read_csv(slice_zip, dtype=str, encoding="utf-8-sig")
    unit_cost = pd.to_numeric(raw["ASSET"]) / pd.to_numeric(raw["AMOUNT"])
    want = unit_cost.where(unit_cost > 0).groupby(raw["PRODUCT_ID"]).median()
    got = data.products.set_index("product_id")["cost"]
    pd.testing.assert_series_equal(got.loc[want.index].rename(None), want.rename(None),
                                   check_names=False, check_index=False)
    model = calibrate_demand(data, [0] * data.n_customers, DemandConfig())
    assert (model.cost_source == COST_FROM_DATA).mean() > 0.99


@pytest.mark.slow
def test_recommend_and_run_take_it_as_it_is(slice_zip, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    recs = tmp_path / "recs.csv"
    assert main(["recommend", str(slice_zip), "--k", "5", "--out", str(recs)]) == 0
    shown = pd.read_csv(recs, dtype=str)
    assert shown["customer_id"].str.fullmatch(r"\d{8}").all()  # leading zeros kept
    out = tmp_path / "run"
    assert main(["run", str(slice_zip), "--out", str(out)]) == 0, capsys.readouterr().err
    report = json.loads((out / "run_report.json").read_text())
    assert any("text encoder is off" in w for w in report["warnings"])
    prices = pd.read_csv(out / "price_list.csv", dtype=str)
    assert len(prices) > 0
    assert prices["product_ids"].str.split("|").map(
        lambda ids: all(len(i) == 13 for i in ids)).all()  # barcodes, whole
