"""The Data page with exports of other shapes, driven with AppTest: a till export with
line totals, a discount and line costs but no order id, uploaded through the file
uploader (plain, gzipped, zipped); the report says how unit prices, costs, orders and
discounts were derived, lists the outlier line, and the page's two load options (what
an order is, keeping outliers) change the result and stay with the dataset on reloads."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import columns as C
from engine.workspace import Workspace
from ui import data as ud
from ui import state

APP = Path(__file__).resolve().parents[1] / "app.py"

# no order id; c1 buys twice on 1 March (09:00 and 17:30): one order by day, two by
# timestamp. P1's usual line is 1-2 units, so row 10's 5,000 is an outlier; POST is
# postage (non-merchandise). Umsatz (line total) and Rabatt (discount) are not names
# the loader knows: the analyst maps them.
TILL = (
    b"Date,Customer,Item,Qty,Umsatz,Rabatt,Cost\n"
    b"2024-03-01 09:00,c1,P1,1,3.00,0,2.00\n"
    b"2024-03-01 09:00,c1,P2,2,10.00,1.00,6.00\n"
    b"2024-03-01 17:30,c1,P3,1,4.50,0,3.00\n"
    b"2024-03-02 10:00,c2,P1,2,6.00,0,4.00\n"
    b"2024-03-02 10:00,c2,P3,1,4.50,0,3.00\n"
    b"2024-03-02 10:00,c2,POST,1,2.50,0,0\n"
    b"2024-03-03 11:00,c3,P1,1,3.00,0,2.00\n"
    b"2024-03-03 11:00,c3,P2,1,5.00,0,3.00\n"
    b"2024-03-04 12:00,c2,P1,5000,15000.00,0,10000.00\n"
)
FIX = {"Umsatz": C.LINE_TOTAL, "Rabatt": C.DISCOUNT}
OUTLIER = {"file": "till.csv", "row": 10, "product": "P1", "quantity": 5000, "kept": False}


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _upload(at: AppTest, name: str = "till.csv", data: bytes = TILL) -> AppTest:
    """Upload one file and map its two unknown columns through the selectboxes."""
    at.file_uploader(key=state.UPLOADER_WIDGET).set_value([(name, data, "text/csv")])
    _ok(at.run())
    sha = ud.sha256(data)
    for column, canonical in FIX.items():
        at.selectbox(key=state.mapping_widget_key(sha, column)).set_value(canonical)
    return _ok(at.run())


def _load(at: AppTest) -> AppTest:
    return _ok(at.button(key=state.LOAD_BUTTON_WIDGET).click().run())


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _notes(at: AppTest) -> str:
    return next(i.value for i in at.info if "How the files were read" in i.value)


def _outliers(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if {"product", C.QUANTITY} <= set(d.value.columns))


def _entry(name: str = "till") -> dict:
    return Workspace().entry(name)


def test_mapping_offers_the_new_canonical_columns(app):
    at = _upload(app)
    sha = ud.sha256(TILL)
    options = at.selectbox(key=state.mapping_widget_key(sha, "Umsatz")).options
    for canonical in (C.LINE_TOTAL, C.DISCOUNT, C.REGULAR_PRICE, C.COST, C.CATEGORY):
        assert canonical in options
    for canonical in (C.LINE_TOTAL, C.DISCOUNT, C.REGULAR_PRICE, C.COST, C.CATEGORY):
        assert canonical in ud.MAPPABLE["order_lines"]
    # the line's cost is recognised by its name
    assert at.selectbox(key=state.mapping_widget_key(sha, "Cost")).value == C.COST
    # the load options are offered beside the mapping, with their defaults
    assert at.radio(key=ud.ORDERS_WIDGET).value == "day"
    assert at.checkbox(key=ud.KEEP_OUTLIERS_WIDGET).value is False


def test_line_totals_without_order_id_report_how_they_were_read(app):
    at = _load(_upload(app))
    ws = Workspace()
    assert ws.current == "till"
    # 9 lines: postage and the outlier set aside; c1, c2 and c3 each one order a day
    assert (_metric(at, "Rows read"), _metric(at, "Rows kept")) == ("9", "7")
    assert _metric(at, "Orders") == "3"
    notes = _notes(at)
    assert "unit price = the line's total / its quantity" in notes
    assert "no order id: an order is a customer's lines on one day" in notes
    assert "unit cost = cost / quantity" in notes
    assert "hold positive amounts for a discount" in notes
    # the notes are not repeated as warnings; the set-aside reasons still are
    warnings = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert set(warnings["rule"]) == {"non_merchandise", "outlier_quantity"}
    # the outlier line: file, row, product, quantity, with how to keep it
    shown = _outliers(at)
    assert shown.to_dict("records") == [OUTLIER]
    assert any("Outlier quantities" in m.value and "set aside" in m.value for m in at.markdown)
    assert any("Keep outlier quantities" in c.value for c in at.caption)
    assert at.button(key=ud.RELOAD_OUTLIERS_WIDGET).label == "Reload with the outliers kept"
    unit_price = ws.load("till")[0].lines.set_index(C.PRODUCT_ID)[C.UNIT_PRICE]
    assert unit_price.loc["P2"].tolist() == [5.0, 5.0]  # 10.00 for 2, then 5.00 for 1
    assert _entry()["options"] == {"orders": "day", "keep_outliers": False}


def test_orders_choice_changes_the_number_of_orders(app):
    at = _upload(app)
    at.radio(key=ud.ORDERS_WIDGET).set_value("timestamp")
    at = _load(_ok(at.run()))
    # c1's 09:00 and 17:30 visits are two orders now
    assert _metric(at, "Orders") == "4"
    assert "an order is a customer's lines at one timestamp" in _notes(at)
    assert _entry()["options"]["orders"] == "timestamp"
    assert _entry()["counts"]["orders"] == 4

    # and back, from the report: the saved file reloaded with the other rule
    button = at.button(key=ud.RELOAD_ORDERS_WIDGET)
    assert button.label == "Reload: an order is a customer's lines on one day"
    at = _ok(button.click().run())
    assert _metric(at, "Orders") == "3"
    assert "an order is a customer's lines on one day" in _notes(at)
    assert _entry()["options"]["orders"] == "day"


def test_load_options_stay_with_the_dataset_on_reloads(app):
    at = _upload(app)
    at.radio(key=ud.ORDERS_WIDGET).set_value("timestamp")
    at.checkbox(key=ud.KEEP_OUTLIERS_WIDGET).check()
    at = _load(_ok(at.run()))
    # the outlier kept: one more line and, by timestamp, one more order
    assert (_metric(at, "Rows kept"), _metric(at, "Orders")) == ("8", "5")
    assert _outliers(at).to_dict("records") == [{**OUTLIER, "kept": True}]
    assert _entry()["options"] == {"orders": "timestamp", "keep_outliers": True}

    # keeping postage reloads with the same options: the outlier stays, orders by timestamp
    at.multiselect(key=state.KEEP_WIDGET).set_value(["POST"]).run()
    at = _ok(at.button(key=state.RELOAD_BUTTON_WIDGET).click().run())
    assert (_metric(at, "Rows kept"), _metric(at, "Orders")) == ("9", "5")
    entry = _entry()
    assert entry["options"] == {"orders": "timestamp", "keep_outliers": True}
    assert entry["keep_non_merchandise"] == ["POST"]

    # setting the outliers aside again keeps postage and the orders rule
    button = at.button(key=ud.RELOAD_OUTLIERS_WIDGET)
    assert button.label == "Reload setting them aside"
    at = _ok(button.click().run())
    assert (_metric(at, "Rows kept"), _metric(at, "Orders")) == ("8", "4")
    entry = _entry()
    assert entry["options"] == {"orders": "timestamp", "keep_outliers": False}
    assert entry["keep_non_merchandise"] == ["POST"]
    assert _outliers(at).to_dict("records") == [OUTLIER]


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("till.csv", data)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "pack"), [("till.csv.gz", gzip.compress), ("till.zip", _zip)])
def test_zipped_and_gzipped_exports_upload_and_load(app, name, pack):
    data = pack(TILL)
    at = _upload(app, name, data)
    assert any(f"{name}** · order lines · 9 rows" in e.label for e in at.expander)
    at = _load(at)
    assert Workspace().current == "till"
    assert (_metric(at, "Rows read"), _metric(at, "Rows kept"), _metric(at, "Orders")) == (
        "9", "7", "3")
    assert _outliers(at).iloc[0]["file"] == name


def test_the_uploader_takes_archives_and_parquet():
    for ext in ("csv", "txt", "xlsx", "parquet", "zip", "gz"):
        assert ext in ud.UPLOAD_TYPES


def test_report_helpers_split_notes_and_list_outliers():
    warnings = [{"rule": "orders_by_day", "message": "m"}, {"rule": "duplicate", "message": "d"},
                {"rule": "unit_price_from_line_total", "message": "u"}]
    notes, other = ud.split_warnings(warnings)
    assert [n["rule"] for n in notes] == ["orders_by_day", "unit_price_from_line_total"]
    assert [o["rule"] for o in other] == ["duplicate"]
    frame = ud.outliers_frame({"outliers": [{"file": "a.csv", "row": 3, "product_id": "X",
                                             "quantity": 1200.0, "kept": False}]})
    assert frame.to_dict("records") == [{"file": "a.csv", "row": 3, C.PRODUCT_ID: "X",
                                         C.QUANTITY: 1200, "kept": False}]
    assert ud.outliers_frame({}).empty
    # a dataset saved before the options were kept reads as the defaults
    assert ud.load_options({}) == {"orders": "day", "keep_outliers": False}
    assert ud.load_options({"options": {"orders": "timestamp"}}) == {
        "orders": "timestamp", "keep_outliers": False}
