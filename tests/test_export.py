"""Price list and offer exports: exact columns, round trips, formula escaping, stable bytes."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import columns as C
from engine.data.dataset import Dataset
from engine.export import (
    FORMULA_STARTS,
    escape_cell,
    escape_frame,
    offer_list,
    price_list,
    to_csv_bytes,
    to_json_bytes,
    to_xlsx_bytes,
    write,
)
from engine.pricing import PricingConfig, evaluate, prepare_choices, run_on_choices
from engine.pricing.simulate import Market
from engine.workspace import Workspace

NAMES = ["=SUM(A1:A9)", "+44 mug", "-minus tray", "@handle", "Plain teapot", "\tTabbed"]


@pytest.fixture(scope="module")
def priced():
    products = pd.DataFrame(
        {
            C.PRODUCT_ID: [f"P{i}" for i in range(6)],
            C.NAME: NAMES,
            C.PRICE: [10.0, 12.5, 8.0, 20.0, 15.0, 5.0],
            C.COST: [4.0, 6.0, 3.0, 9.0, np.nan, 2.0],
        }
    )
    lines = pd.DataFrame(
        {
            C.ORDER_ID: ["1", "1", "2", "3"],
            C.CUSTOMER_ID: ["c1", "c1", "c2", "=cmd"],
            C.PRODUCT_ID: ["P0", "P1", "P2", "P3"],
            C.QUANTITY: 1,
            C.UNIT_PRICE: [10.0, 12.5, 8.0, 20.0],
            C.TIMESTAMP: pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-02", "2025-01-03"]),
        }
    )
    dataset = Dataset.from_frames(lines, products)
    price = dataset.products[C.PRICE].to_numpy(float)
    cost = np.nan_to_num(dataset.products[C.COST].to_numpy(float), nan=7.0)
    market = Market(
        np.log(price)[None, :].repeat(2, 0), np.full(6, 0.4), price, cost, np.array([100.0, 50.0])
    )
    bundles = [(0, 1), (2, 3, 4), (0, 5)]
    cfg = PricingConfig(n_customers=2000)
    choices = prepare_choices(market, bundles, [0, 1, 1], n_customers=2000)
    run = run_on_choices(choices, bundles, cfg)
    frame = price_list(dataset, bundles, run, segment_names=["gift", "=evil"])
    return dataset, frame, run


def test_price_list_columns_and_values(priced):
    dataset, frame, run = priced
    assert tuple(frame.columns) == C.PRICE_LIST_COLUMNS
    row = frame.set_index("bundle_id").loc["B0001"]
    assert row["product_ids"] == "P0|P1" and row["list_total"] == 22.5
    assert row["bundle_price"] <= row["list_total"]
    assert row["discount_pct"] == pytest.approx(100 * (1 - row["bundle_price"] / 22.5), abs=0.01)
    assert str(row["bundle_price"]).endswith(".99")
    # the money columns: the bundle's own sales, and the segment's change against no bundle
    sim = run.simulation.per_bundle.iloc[0]
    none = evaluate(run.choices, np.full(3, np.inf)).per_bundle.iloc[0]
    assert row["bundle_revenue"] == pytest.approx(sim["units"] * row["bundle_price"], abs=0.01)
    cost = 4.0 + 6.0
    assert row["bundle_profit"] == pytest.approx(sim["units"] * (row["bundle_price"] - cost),
                                                 abs=0.01)
    assert row["bundle_margin_pct"] == pytest.approx(
        100 * (row["bundle_price"] - cost) / row["bundle_price"], abs=0.01)
    assert row["segment_profit_change"] == pytest.approx(sim["profit"] - none["profit"], abs=0.01)
    assert row["segment_revenue_change"] == pytest.approx(sim["revenue"] - none["revenue"],
                                                          abs=0.01)
    assert row["single_units_replaced"] == pytest.approx(sim["cannibalised_units"], abs=0.01)
    # the reason quotes this bundle's own price, discount and numbers, not a fixed 10 %
    for r in frame.itertuples():
        assert r.reason.startswith(f"{r.bundle_price:.2f}, {r.discount_pct:.1f}% off the "
                                   f"{r.list_total:.2f} list total")
        assert f"{100 * r.expected_take_rate:.1f}% of segment" in r.reason
        assert f"margin is {r.bundle_margin_pct:.1f}%" in r.reason
        assert f"{r.segment_profit_change:+,.2f} per period" in r.reason
    assert frame["reason"].nunique() == len(frame)


def test_csv_round_trip_and_escaping(priced):
    _, frame, _ = priced
    data = to_csv_bytes(frame)
    back = pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype={"segment": str})
    expected = escape_frame(frame)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    for cell in back.select_dtypes(exclude="number").to_numpy().ravel():
        assert not str(cell).startswith(FORMULA_STARTS)
    assert back["product_names"].iat[0] == "'=SUM(A1:A9)|+44 mug"
    assert back["segment"].iat[1] == "'=evil"
    assert to_csv_bytes(frame) == data  # deterministic bytes


def test_xlsx_round_trip_escaping_and_no_formulas(priced, tmp_path):
    _, frame, _ = priced
    data = to_xlsx_bytes(frame)
    assert to_xlsx_bytes(frame) == data
    back = pd.read_excel(io.BytesIO(data), keep_default_na=False, dtype={"segment": str})
    pd.testing.assert_frame_equal(back, escape_frame(frame), check_dtype=False)
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert not cell.value.startswith(FORMULA_STARTS)
    assert sheet.freeze_panes == "A2"
    assert sheet["F2"].number_format == "#,##0.00"
    path = write(frame, tmp_path / "prices.xlsx")
    assert path.read_bytes() == data


def test_json_round_trip(priced):
    _, frame, _ = priced
    back = pd.DataFrame(json.loads(to_json_bytes(frame)))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_offer_list_keeps_or_pseudonymises_ids(priced, tmp_path):
    dataset, _, _ = priced
    ws = Workspace(tmp_path)

    def pseudonym(customer_id: str) -> str:
        return ws.pseudonymise([customer_id])[0]

    labels = np.array([0, 1, 1])
    offers = {0: ["B0001"], 1: ["B0003", "B0002"]}
    own = offer_list(dataset.customer_ids, labels, offers)
    assert set(own[C.CUSTOMER_ID]) == {"c1", "c2", "=cmd"}
    assert own.set_index(C.CUSTOMER_ID).loc["c2", "offered_bundle_ids"] == "B0002|B0003"
    hidden = offer_list(dataset.customer_ids, labels, offers, pseudonymise=pseudonym)
    assert not set(hidden[C.CUSTOMER_ID]) & {"c1", "c2", "=cmd"}
    assert hidden[C.CUSTOMER_ID].str.match(r"^c_[0-9a-f]{10}$").all()
    again = offer_list(dataset.customer_ids, labels, offers, pseudonymise=pseudonym)
    pd.testing.assert_frame_equal(hidden, again)
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(own)), keep_default_na=False, dtype=str)
    assert "'=cmd" in set(csv[C.CUSTOMER_ID])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=5))
def test_no_exported_cell_starts_like_a_formula(texts):
    frame = pd.DataFrame({"text": texts, "x": np.arange(len(texts), dtype=float)})
    for cell in escape_frame(frame)["text"]:
        assert not cell.startswith(FORMULA_STARTS)
    for t in texts:
        escaped = escape_cell(t)
        assert escaped == t or escaped == "'" + t
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)), keep_default_na=False, dtype={"text": str})
    for cell in back["text"]:
        assert not str(cell).startswith(FORMULA_STARTS)


def test_reason_says_what_held_the_price():
    """A bundle priced at the highest .99 under its list total is not 'held at the list
    total': the reason says the price ending took the discount off."""
    from engine.export import price_reason
    from engine.pricing.optimise import PriceResult

    def row(price, discount):
        return {"bundle_price": price, "discount_pct": discount, "list_total": 10.0,
                "expected_take_rate": 0.1, "expected_units": 5.0, "single_units_replaced": 2.0,
                "bundle_margin_pct": 40.0, "segment_profit_change": 3.0}

    at_top = PriceResult(bundle=0, segment=0, price=9.99, profit=1.0, take_rate=0.1,
                         converged=True, message="", binding="list_total")
    assert "usual ending" in price_reason(row(9.99, 0.1), at_top, "S1")
    assert "held at the list total" not in price_reason(row(9.99, 0.1), at_top, "S1")
    assert "held at the list total" in price_reason(row(10.0, 0.0), at_top, "S1")
    floor = PriceResult(bundle=0, segment=0, price=8.0, profit=1.0, take_rate=0.1,
                        converged=True, message="", binding="margin_floor")
    text = price_reason(row(8.0, 20.0), floor, "S1 · Tea")
    assert text.startswith("8.00, 20.0% off the 10.00 list total: at the margin floor.")
    assert "segment S1 · Tea's visitors" in text
