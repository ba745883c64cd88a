"""The dashboard frame and the Data page, driven with Streamlit's AppTest,
plus the page's figure builders on frames with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import columns as C
from engine.data import load_files
from engine.data.dataset import Dataset
from engine.workspace import Workspace
from ui import data as ud
from ui import state

CSV = "text/csv"
APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _chart(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec)


def _upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.file_uploader(key=state.UPLOADER_WIDGET).set_value([(n, b, CSV) for n, b in files])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_opens_on_sample_data_with_report_metrics(app, sample_dir, tmp_path):
    n_lines = sum(1 for _ in open(sample_dir / "order_lines.csv", encoding="utf-8")) - 1
    expected = load_files([sample_dir / f for f in state.SAMPLE_FILES]).report
    assert Workspace(tmp_path / "ws").names() == ["sample"]
    assert app.sidebar.selectbox(key=state.DATASET_PICKER_WIDGET).value == "sample"
    assert _metric(app, "Rows read") == f"{n_lines:,}"
    assert _metric(app, "Rows kept") == f"{expected.rows_kept:,}"
    assert _metric(app, "Rows set aside") == f"{n_lines - expected.rows_kept:,}"
    assert _metric(app, "Products") == "300"
    # four data charts plus the set-aside bar
    assert len(app.get("plotly_chart")) == 5


def test_report_shows_set_aside_counts_by_reason(app):
    spec = _chart(app, "chart_set_aside")
    bars = spec["data"][0]
    shown = dict(zip(bars["y"], bars["x"], strict=True))
    expected = {k.replace("_", " "): v for k, v in _current_report(app)["set_aside"].items() if v}
    assert shown == pytest.approx(expected)
    assert sum(shown.values()) == int(_metric(app, "Rows set aside").replace(",", ""))


def _current_report(at: AppTest) -> dict:
    ws = Workspace()
    return ws.entry(ws.current)["report"]


FOREIGN = (
    b"Beleg,Kunde,Artikel,Menge,Stueckpreis,Zeitpunkt\n"
    b"1,k1,P10,2,3.50,2024-03-01 10:00\n"
    b"1,k1,P20,1,5.00,2024-03-01 10:00\n"
    b"2,k2,P10,1,3.50,2024-03-02 11:00\n"
    b"3,k2,P20,4,5.00,2024-03-09 12:00\n"
    b"4,,P10,1,3.50,2024-03-10 12:00\n"
)
FIX = {"Beleg": C.ORDER_ID, "Kunde": C.CUSTOMER_ID, "Artikel": C.PRODUCT_ID,
       "Menge": C.QUANTITY, "Stueckpreis": C.UNIT_PRICE, "Zeitpunkt": C.TIMESTAMP}


def test_mapping_fix_through_widgets_changes_the_loaded_result(app):
    at = _upload(app, [("bestellungen.csv", FOREIGN)])
    sha = ud.sha256(FOREIGN)

    # as detected, the German column names are unknown: loading fails and says why
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    errors = " ".join(e.value for e in at.error)
    assert "bestellungen.csv" in errors
    assert Workspace().current == "sample"

    for column, canonical in FIX.items():
        at.selectbox(key=state.mapping_widget_key(sha, column)).set_value(canonical)
    at.run()
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    ws = Workspace()
    assert ws.current == "bestellungen"
    ds, report = ws.load("bestellungen")
    # 5 lines: 4 kept, the one without a customer set aside
    assert (report["rows_read"], report["rows_kept"]) == (5, 4)
    assert report["set_aside"]["missing_customer"] == 1
    assert report["mapping"]["bestellungen.csv"] == FIX
    assert (ds.n_orders, ds.n_customers, ds.n_products) == (3, 2, 2)
    assert _metric(at, "Rows kept") == "4"
    # a new session (a browser refresh) opens on it; AppTest only keeps the
    # sidebar of a session's first run when st.navigation is used, hence a fresh one
    fresh = AppTest.from_file(str(APP), default_timeout=30).run()
    assert fresh.sidebar.selectbox(key=state.DATASET_PICKER_WIDGET).value == "bestellungen"
    assert _metric(fresh, "Rows kept") == "4"


def test_bad_upload_names_the_file_and_keeps_previous_dataset(app):
    at = _upload(app, [("broken.csv", b"\x00\x01\x02\xff\xfe garbage \x00" * 20)])
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    assert not at.exception
    assert any("broken.csv" in e.value for e in at.error)
    assert any("sample" in i.value and "still in use" in i.value for i in at.info)
    assert Workspace().current == "sample"
    assert Workspace().names() == ["sample"]


def test_sidebar_picker_switches_the_dataset_in_use(app, real_sample_path):
    at = _upload(app, [("retail.csv", real_sample_path.read_bytes())])
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    assert Workspace().current == "retail"
    assert _metric(at, "Rows read") == "10,000"
    fresh = AppTest.from_file(str(APP), default_timeout=30).run()  # see the mapping test
    picker = fresh.sidebar.selectbox(key=state.DATASET_PICKER_WIDGET)
    assert (picker.value, picker.options) == ("retail", ["retail", "sample"])
    picker.set_value("sample").run()
    assert Workspace().current == "sample"
    assert _metric(fresh, "Products") == "300"


def test_keeping_a_non_merchandise_code_reloads_with_it(app, real_sample_path):
    at = _upload(app, [("retail.csv", real_sample_path.read_bytes())])
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    before = _current_report(at)
    post = next(r for r in before["non_merchandise"] if r["product_id"] == "POST")
    at.multiselect(key=state.KEEP_WIDGET).set_value(["POST"]).run()
    at.button(key=state.RELOAD_BUTTON_WIDGET).click().run()
    after = _current_report(at)
    assert after["rows_kept"] == before["rows_kept"] + post["lines"]
    assert Workspace().entry("retail")["keep_non_merchandise"] == ["POST"]


# ---- pure builders with known answers ---------------------------------------------------


def _lines() -> pd.DataFrame:
    return pd.DataFrame({
        C.ORDER_ID: ["o1", "o1", "o2", "o3", "o3", "o4"],
        C.CUSTOMER_ID: ["c1", "c1", "c2", "c1", "c1", "c3"],
        C.PRODUCT_ID: ["A", "B", "A", "A", "B", "C"],
        C.QUANTITY: [1, 2, 3, 1, 1, 10],
        C.UNIT_PRICE: [2.0, 5.0, 2.0, 2.0, 5.0, 0.5],
        # Monday 4 March 2024, Sunday 10 March (same week), Monday 11 March
        C.TIMESTAMP: pd.to_datetime(["2024-03-04", "2024-03-04", "2024-03-10", "2024-03-11",
                                     "2024-03-11", "2024-03-12"]),
        C.NAME: ["apple", "bread", "apple", "apple", "bread", "candle"],
    })


def test_weekly_activity_counts_orders_and_revenue():
    weekly = ud.weekly_activity(_lines())
    assert weekly["week"].tolist() == [pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11")]
    assert weekly["orders"].tolist() == [2, 2]
    assert weekly["revenue"].tolist() == [2 + 10 + 6, 2 + 5 + 5]


def test_short_spans_are_shown_per_day():
    lines = _lines()
    assert ud.activity_frequency(lines) == "D"  # 8 days of data
    daily = ud.weekly_activity(lines, freq=None)
    assert daily["orders"].tolist() == [1, 1, 1, 1]
    assert daily["revenue"].tolist() == [12, 6, 7, 5]
    assert ud.weekly_activity_figure(lines).layout.title.text == "Orders and revenue per day"
    longer = lines.assign(**{C.TIMESTAMP: lines[C.TIMESTAMP] + pd.to_timedelta(
        [0, 0, 0, 0, 0, 70], unit="D")})
    assert ud.activity_frequency(longer) == "W"


def test_price_histogram_bins_are_log_spaced_and_count_every_line():
    hist = ud.price_histogram(_lines(), bins_per_decade=4)
    assert hist["lines"].sum() == 6
    ratios = hist["high"] / hist["low"]
    np.testing.assert_allclose(ratios, 10 ** 0.25)
    in_bin = lambda p: hist.loc[(hist["low"] <= p) & (p < hist["high"]), "lines"].sum()  # noqa: E731
    assert (in_bin(2.0), in_bin(5.0), in_bin(0.5)) == (3, 2, 1)


def test_top_products_by_revenue_with_names():
    ds = Dataset.from_frames(_lines())
    top = ud.top_products(ds.lines, ds.products, n=2)
    assert top[C.PRODUCT_ID].tolist() == ["B", "A"]  # B: 15, A: 10 (C: 5)
    assert top[C.NAME].tolist() == ["bread", "apple"]
    assert top["revenue"].tolist() == [15.0, 10.0]
    fig = ud.top_products_figure(ds.lines, ds.products, n=2)
    assert list(fig.data[0].y) == ["apple", "bread"]  # largest drawn at the top


def test_top_pairs_finds_the_planted_complement():
    rows = []
    for o in range(40):  # A and B always together; C and D alone
        items = ["A", "B"] if o % 2 == 0 else ["C" if o % 4 == 1 else "D"]
        rows += [{C.ORDER_ID: f"o{o}", C.CUSTOMER_ID: f"c{o % 5}", C.PRODUCT_ID: p,
                  C.QUANTITY: 1, C.UNIT_PRICE: 1.0, C.TIMESTAMP: "2024-01-01", C.NAME: p.lower()}
                 for p in items]
    ds = Dataset.from_frames(pd.DataFrame(rows))
    pairs = ud.top_pairs(ds, n=5, min_count=2)
    assert pairs[["a", "b"]].values.tolist() == [["a", "b"]]
    assert pairs["together"].tolist() == [20]
    assert pairs["lift"].iloc[0] > 1.5


def test_set_aside_figure_skips_zero_reasons():
    fig = ud.set_aside_figure({"set_aside": {"duplicate": 3, "return": 0, "missing_customer": 9}})
    assert list(fig.data[0].y) == ["duplicate", "missing customer"]
    assert list(fig.data[0].x) == [3, 9]


def test_pseudonymise_frame_hides_customer_ids(tmp_path):
    ws = Workspace(tmp_path)
    frame = pd.DataFrame({C.CUSTOMER_ID: ["17850", "", None, "17850"], "x": [1, 2, 3, 4]})
    out = ud.pseudonymise_frame(frame, ws)
    assert out[C.CUSTOMER_ID].iloc[0] == out[C.CUSTOMER_ID].iloc[3] == ws.pseudonymise(["17850"])[0]
    assert out[C.CUSTOMER_ID].iloc[1] == "" and pd.isna(out[C.CUSTOMER_ID].iloc[2])
    assert frame[C.CUSTOMER_ID].iloc[0] == "17850"  # the input is not changed


def test_failed_load_keeps_previous_dataset(tmp_path, sample_dir):
    ws = Workspace(tmp_path)
    assert ud.load_sample(ws, sample_dir).ok
    before = ws.entry("sample")["dir"]
    outcome = ud.load_into_workspace(ws, "sample", [("lines.csv", b"a,b\n1,2\n")])
    assert not outcome.ok and outcome.kept_previous == "sample"
    assert any("lines.csv" in str(i) for i in outcome.issues)
    assert ws.entry("sample")["dir"] == before


def test_tables_show_pseudonyms_not_customer_ids(app, real_sample_path):
    at = _upload(app, [("retail.csv", real_sample_path.read_bytes())])
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    raw = set(pd.read_csv(real_sample_path)["CustomerID"].dropna().astype(int).astype(str))
    with_ids = [d.value for d in at.dataframe if C.CUSTOMER_ID in d.value.columns]
    assert len(with_ids) == 2  # set-aside sample and order lines
    for frame in with_ids:
        shown = frame[C.CUSTOMER_ID].dropna().astype(str)
        shown = shown[shown != ""]
        assert len(shown) > 0
        assert shown.str.fullmatch(r"c_[0-9a-f]{10}").all()
        assert not set(shown) & raw


def test_xlsx_upload_loads_and_sample_button_returns_to_sample(app):
    import io

    lines = pd.read_csv(io.BytesIO(FOREIGN)).rename(columns=FIX).dropna(subset=[C.CUSTOMER_ID])
    buf = io.BytesIO()
    lines.to_excel(buf, index=False)
    at = app
    at.file_uploader(key=state.UPLOADER_WIDGET).set_value(
        ("orders.xlsx", buf.getvalue(),
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    ).run()
    at.button(key=state.LOAD_BUTTON_WIDGET).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert Workspace().current == "orders"
    assert (_metric(at, "Rows read"), _metric(at, "Rows kept")) == ("4", "4")

    at.button(key=state.SAMPLE_BUTTON_WIDGET).click().run()
    assert Workspace().current == "sample"
    assert _metric(at, "Products") == "300"
    assert Workspace().names() == ["orders", "sample"]


def test_removing_the_upload_clears_the_pending_files(app):
    at = _upload(app, [("bestellungen.csv", FOREIGN)])
    # the page's own subheaders (the sidebar has "Dataset in use")
    assert [s.value for s in at.main.subheader] == ["Check the files"]
    assert at.session_state[state.PENDING_SHA] == [ud.sha256(FOREIGN)]
    at.file_uploader(key=state.UPLOADER_WIDGET).set_value(None).run()
    assert [s.value for s in at.main.subheader] == []
    assert at.session_state[state.PENDING_FILES] == []
