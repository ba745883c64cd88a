"""The real Online Retail data loads, and every count matches plain pandas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import InputFile, load_files
from engine.data.validate import REASONS
from engine.errors import DataValidationError

NON_MERCH = {"POST", "DOT", "M", "D", "C2", "CRUK", "PADS", "B", "S", "BANK CHARGES", "AMAZONFEE"}


def expected_counts(df: pd.DataFrame) -> dict:
    """The documented reason order, written again in plain pandas on the raw text."""
    inv = df["InvoiceNo"].str.strip()
    code = df["StockCode"].str.strip().str.upper()
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    cust = df["CustomerID"].str.strip()
    when = pd.to_datetime(df["InvoiceDate"], errors="coerce")
    rules = [
        ("cancelled", inv.str.startswith("C")),
        ("non_merchandise", code.isin(NON_MERCH) | code.str.startswith("GIFT_")
         | ~code.str.contains(r"\d")),
        ("bad_quantity", qty.isna() | (qty == 0) | (qty % 1 != 0) | (qty.abs() > 1e6)),
        ("return", qty < 0),
        ("bad_price", price.isna() | (price <= 0) | (price > 1e6)),
        ("missing_order", inv == ""),
        ("missing_customer", cust == ""),
        ("bad_date", when.isna()),
        # over 100 × the product's median line (among the lines left) and 1,000+ units
        ("outlier_quantity", lambda left: (qty >= 1000) & (
            qty > 100 * qty[left].groupby(df["StockCode"].str.strip()[left]).median().reindex(
                df["StockCode"].str.strip()).to_numpy())),
        ("duplicate", df.duplicated(keep="first")),
    ]
    left = pd.Series(True, index=df.index)
    counts = {}
    for reason, mask in rules:
        mask = mask(left) if callable(mask) else mask
        hit = left & mask
        counts[reason] = int(hit.sum())
        left &= ~hit
    kept = df[left]
    counts["rows_kept"] = int(left.sum())
    counts["n_orders"] = kept["InvoiceNo"].nunique()
    counts["n_customers"] = kept["CustomerID"].str.replace(".0", "", regex=False).nunique()
    counts["n_products"] = kept["StockCode"].nunique()
    return counts


@pytest.fixture(scope="module")
def sample_result(real_sample_path):
    return load_files([real_sample_path])


def test_sample_loads_and_counts_match_plain_pandas(real_sample_path, sample_result):
    raw = pd.read_csv(real_sample_path, dtype=str, keep_default_na=False)
    want = expected_counts(raw)
    rep = sample_result.report
    assert rep.rows_read == len(raw) == 10_000
    assert set(rep.set_aside) == set(REASONS)
    for reason in REASONS:
        assert rep.set_aside[reason] == want[reason], reason
    assert rep.rows_kept == want["rows_kept"] == len(sample_result.dataset.lines)
    assert rep.rows_kept + sum(rep.set_aside.values()) == rep.rows_read
    assert rep.summary["n_orders"] == want["n_orders"] == sample_result.dataset.n_orders
    assert rep.summary["n_customers"] == want["n_customers"]
    assert rep.summary["n_products"] == want["n_products"]
    assert len(rep.set_aside_rows) == rep.rows_read - rep.rows_kept
    assert rep.errors == []


def test_sample_known_dirt_from_the_data_readme(real_sample_path, sample_result):
    """The documented dirt of the sample: 100 cancelled lines, and the
    non-merchandise codes with their line counts."""
    rep = sample_result.report
    assert rep.set_aside["cancelled"] == 100
    nm = rep.non_merchandise.set_index(C.PRODUCT_ID)["lines"].to_dict()
    assert nm == {"POST": 18, "M": 10, "DOT": 6, "D": 2, "C2": 1, "BANK CHARGES": 1}
    assert rep.non_merchandise.set_index(C.PRODUCT_ID).loc["POST", C.NAME] == "POSTAGE"
    # the 2,291 lines without a customer: those not already set aside for an earlier reason
    aside = rep.set_aside_rows
    raw = pd.read_csv(real_sample_path, dtype=str, keep_default_na=False)
    assert (raw["CustomerID"] == "").sum() == 2291
    no_cust = aside[aside[C.CUSTOMER_ID] == ""]
    assert len(no_cust) == 2291
    assert (no_cust["reason"] != "missing_customer").sum() == 2291 - rep.set_aside["missing_customer"]


def test_sample_lines_are_clean_and_keep_provenance(real_sample_path, sample_result):
    lines = sample_result.dataset.lines
    assert (lines[C.QUANTITY] > 0).all() and (lines[C.UNIT_PRICE] > 0).all()
    assert not lines[C.CUSTOMER_ID].str.endswith(".0").any()
    assert lines[C.CUSTOMER_ID].str.fullmatch(r"\d+").all()
    assert not lines[C.ORDER_ID].str.startswith("C").any()
    assert lines[C.TIMESTAMP].min() == pd.Timestamp("2010-12-01 08:26:00")
    # source_row points at the same line of the file (header = row 1)
    raw = pd.read_csv(real_sample_path, dtype=str, keep_default_na=False)
    probe = lines.iloc[[0, 100, 5000]]
    for _, row in probe.iterrows():
        src = raw.iloc[row[C.SOURCE_ROW] - 2]
        assert src["StockCode"] == row[C.PRODUCT_ID]
        assert src["InvoiceNo"] == row[C.ORDER_ID]
    assert (lines[C.SOURCE_FILE] == real_sample_path.name).all()


def test_set_aside_rows_name_their_source_rows(real_sample_path, sample_result):
    aside = sample_result.report.set_aside_rows
    raw = pd.read_csv(real_sample_path, dtype=str, keep_default_na=False)
    cancelled = aside[aside["reason"] == "cancelled"]
    assert raw.iloc[cancelled[C.SOURCE_ROW].to_numpy() - 2]["InvoiceNo"].str.startswith("C").all()
    warn = {w.rule: w for w in sample_result.report.warnings}
    assert warn["cancelled"].rows == tuple(cancelled[C.SOURCE_ROW].head(5))
    assert raw.iloc[warn["cancelled"].rows[0] - 2]["InvoiceNo"].startswith("C")


def test_keep_non_merchandise_override(real_sample_path, sample_result):
    res = load_files([real_sample_path], keep_non_merchandise=["post"])
    assert res.report.set_aside["non_merchandise"] == sample_result.report.set_aside["non_merchandise"] - 18
    assert "POST" in set(res.dataset.products[C.PRODUCT_ID])
    nm = res.report.non_merchandise.set_index(C.PRODUCT_ID)
    assert bool(nm.loc["POST", "kept"]) and not bool(nm.loc["DOT", "kept"])


def test_report_to_dict_is_json_with_plain_types(sample_result):
    d = sample_result.report.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back["rows_read"] == 10_000
    assert set(back["set_aside"]) >= {"return", "cancelled", "non_merchandise", "missing_customer",
                                      "bad_price", "duplicate", "bad_date", "bad_quantity"}
    assert back["mapping"]["online_retail_sample.csv"]["CustomerID"] == C.CUSTOMER_ID
    assert {"file", "column", "rule", "rows", "hint", "message"} <= set(back["warnings"][0])


def test_bytes_and_path_give_the_same_report(real_sample_path, sample_result):
    res = load_files([InputFile(real_sample_path.name, real_sample_path.read_bytes())])
    assert res.report.set_aside == sample_result.report.set_aside
    assert res.report.rows_kept == sample_result.report.rows_kept


def test_catalogue_and_customers_join_in_any_order(tmp_path, real_sample_path):
    catalogue = tmp_path / "catalogue.csv"
    pd.DataFrame({"SKU": ["85123A", "85123A", "NEW1"], "Title": ["Heart holder", "dup", "Brand new"],
                  "Price": ["2.95", "3", "9.99"], "Category": ["decor", "x", "gifts"]}).to_csv(
        catalogue, index=False)
    people = tmp_path / "customers.csv"
    pd.DataFrame({"Customer ID": ["17850", "13047"], "Segment hint": ["a", "b"]}).to_csv(
        people, index=False)
    res = load_files([catalogue, people, real_sample_path])
    assert res.report.file_kinds == {"catalogue.csv": "products", "customers.csv": "customers",
                                     real_sample_path.name: "order_lines"}
    prods = res.dataset.products.set_index(C.PRODUCT_ID)
    assert prods.loc["85123A", C.NAME] == "Heart holder"
    assert prods.loc["85123A", C.PRICE] == pytest.approx(2.95)
    assert prods.loc["NEW1", C.CATEGORY] == "gifts"  # cold start: never sold, still listed
    dup = [w for w in res.report.warnings if w.rule == "duplicate_id"]
    assert dup and dup[0].file == "catalogue.csv" and dup[0].rows == (3,)
    cust = res.dataset.customers.set_index(C.CUSTOMER_ID)
    assert cust.loc["17850", "Segment hint"] == "a"


def test_parquet_input(tmp_path, real_sample_path):
    raw = pd.read_csv(real_sample_path, dtype={"InvoiceNo": str, "StockCode": str})
    path = tmp_path / "lines.parquet"
    raw.to_parquet(path)
    res = load_files([path])
    want = expected_counts(pd.read_csv(real_sample_path, dtype=str, keep_default_na=False))
    assert res.report.rows_kept == want["rows_kept"]
    assert res.report.summary["n_customers"] == want["n_customers"]


@pytest.mark.slow
def test_full_online_retail_counts_match_plain_pandas(real_full_path):
    res = load_files([real_full_path])
    df = pd.read_parquet(real_full_path)
    raw = pd.DataFrame({
        "InvoiceNo": df["InvoiceNo"].astype(str),
        "StockCode": df["StockCode"].astype(str),
        "Description": df["Description"].fillna("").astype(str),
        "Quantity": df["Quantity"].astype(str),
        "InvoiceDate": df["InvoiceDate"].astype(str),
        "UnitPrice": df["UnitPrice"].astype(str),
        "CustomerID": df["CustomerID"].map(lambda v: "" if np.isnan(v) else str(v)),
        "Country": df["Country"].astype(str),
    })
    want = expected_counts(raw)
    rep = res.report
    assert rep.rows_read == 541_909
    for reason in REASONS:
        assert rep.set_aside[reason] == want[reason], reason
    assert rep.rows_kept == want["rows_kept"]
    assert rep.summary["n_orders"] == want["n_orders"]
    assert rep.summary["n_customers"] == want["n_customers"]
    assert rep.summary["n_products"] == want["n_products"]
    assert rep.set_aside["cancelled"] == 9_288


def test_nothing_left_raises_with_report(tmp_path):
    path = tmp_path / "all_bad.csv"
    path.write_text("InvoiceNo,StockCode,Quantity,UnitPrice,InvoiceDate,CustomerID\n"
                    "C1,85123A,1,2.5,2010-12-01 08:00,1\n"
                    "2,85123A,1,2.5,2010-12-01 08:00,\n")
    with pytest.raises(DataValidationError) as exc:
        load_files([path])
    issue = exc.value.issues[0]
    assert issue.rule == "nothing_left" and issue.file == "all_bad.csv"
    assert exc.value.report.set_aside["cancelled"] == 1
    assert exc.value.report.set_aside["missing_customer"] == 1


def test_sample_market_dirt_matches_its_ground_truth(sample_dir):
    files = [sample_dir / f for f in ("order_lines.csv", "products.csv", "customers.csv")]
    if not all(f.exists() for f in files):
        pytest.skip("sample market not generated yet")
    dirt = json.loads((sample_dir / "ground_truth.json").read_text())["dirt"]
    rep = load_files(files).report
    assert rep.rows_read == dirt["total_lines"]
    assert rep.rows_kept == dirt["clean_lines"]
    assert rep.set_aside["return"] == dirt["return_lines"]
    assert rep.set_aside["cancelled"] == dirt["cancelled_lines"]
    assert rep.set_aside["non_merchandise"] == dirt["postage_lines"]
    assert rep.set_aside["missing_customer"] == dirt["missing_customer_lines"]
    assert rep.file_kinds == {"order_lines.csv": "order_lines", "products.csv": "products",
                              "customers.csv": "customers"}


def test_catalogue_in_stock_flags(tmp_path, real_sample_path):
    cat = tmp_path / "stock.csv"
    cat.write_text("sku,name,price,in_stock\nA1,a,1,yes\nA2,b,1,0\nA3,c,1,12\nA4,d,1,maybe\nA5,e,1,\n")
    res = load_files([cat, real_sample_path])
    stock = res.dataset.products.set_index(C.PRODUCT_ID)[C.IN_STOCK]
    assert stock[["A1", "A2", "A3", "A4", "A5"]].tolist() == [True, False, True, True, True]
    w = [i for i in res.report.warnings if i.rule == "not_a_flag"]
    assert w and w[0].rows == (5,) and w[0].column == C.IN_STOCK


def test_progress_is_reported_up_to_one(real_sample_path, tmp_path):
    cat = tmp_path / "cat.csv"
    cat.write_text("sku,name\n85123A,Heart\n")
    seen = []
    load_files([real_sample_path, cat], progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 3
