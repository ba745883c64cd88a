"""Real exports of other shapes load as they are: line totals, discounts stored positive
or negative, a compare-at price, line or unit costs, no order id, no name column,
zipped, gzipped, a byte-order mark, outlier quantities. Each file here is made up
with answers worked out by hand."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import InputFile, load_files


def _file(name: str, frame: pd.DataFrame, bom: bool = False) -> InputFile:
    data = frame.to_csv(index=False).encode("utf-8")
    return InputFile(name, (b"\xef\xbb\xbf" if bom else b"") + data)


def _warnings(result) -> dict[str, str]:
    return {w.rule: w.message for w in result.report.warnings}


# a grocery export: household, basket, line's sales value, discounts stored negative
GROCERY = pd.DataFrame({
    "household_key": ["0042", "0042", "0042", "0077", "0077", "0077"],
    "BASKET_ID": ["b1", "b1", "b2", "b3", "b3", "b4"],
    "PRODUCT_ID": ["1001", "1002", "1001", "1001", "1002", "1002"],
    "QUANTITY": ["2", "1", "1", "4", "2", "1"],
    "SALES_VALUE": ["5.00", "3.49", "2.00", "8.00", "5.98", "3.49"],
    "RETAIL_DISC": ["-1.00", "0", "-0.50", "-2.00", "-1.00", "0"],
    "COUPON_DISC": ["0", "0", "0", "0", "-0.50", "0"],
    "transaction_timestamp": ["2024-03-01 10:00", "2024-03-01 10:00", "2024-03-08 09:00",
                              "2024-03-02 12:00", "2024-03-02 12:00", "2024-03-09 18:30"],
})


def test_line_totals_with_negative_discounts():
    result = load_files([_file("transactions.csv", GROCERY)])
    mapping = result.report.mapping["transactions.csv"]
    assert mapping["SALES_VALUE"] == C.LINE_TOTAL and mapping["household_key"] == C.CUSTOMER_ID
    assert mapping["RETAIL_DISC"] == mapping["COUPON_DISC"] == C.DISCOUNT
    lines = result.dataset.lines.sort_values([C.ORDER_ID, C.PRODUCT_ID]).reset_index(drop=True)
    # unit price = line total / quantity; undiscounted = paid + the discounts' size per unit
    b1 = lines[lines[C.ORDER_ID] == "b1"].set_index(C.PRODUCT_ID)
    assert b1.loc["1001", C.UNIT_PRICE] == pytest.approx(2.50)
    assert b1.loc["1001", C.REGULAR_PRICE] == pytest.approx(3.00)
    assert b1.loc["1002", C.REGULAR_PRICE] == pytest.approx(3.49)
    b3 = lines[lines[C.ORDER_ID] == "b3"].set_index(C.PRODUCT_ID)
    assert b3.loc["1002", C.UNIT_PRICE] == pytest.approx(2.99)
    assert b3.loc["1002", C.REGULAR_PRICE] == pytest.approx(2.99 + 1.50 / 2)
    # leading zeros survive: ids are text
    assert set(result.dataset.customer_ids) == {"0042", "0077"}
    # list price: the median undiscounted price (1001: 3.00, 2.50, 2.50 → 2.50)
    catalogue = result.dataset.products.set_index(C.PRODUCT_ID)
    assert catalogue.loc["1001", C.PRICE] == pytest.approx(2.50)
    notes = _warnings(result)
    assert "negative" in notes["discount_sign"]
    assert "line's total / its quantity" in notes["unit_price_from_line_total"]


def test_discounts_stored_positive_give_the_same_prices():
    positive = GROCERY.assign(RETAIL_DISC=GROCERY["RETAIL_DISC"].str.lstrip("-"),
                              COUPON_DISC=GROCERY["COUPON_DISC"].str.lstrip("-"))
    a = load_files([_file("neg.csv", GROCERY)]).dataset.lines
    b = load_files([_file("pos.csv", positive)]).dataset.lines
    np.testing.assert_allclose(a[C.REGULAR_PRICE], b[C.REGULAR_PRICE])
    assert "positive" in _warnings(load_files([_file("pos.csv", positive)]))["discount_sign"]


def test_compare_at_price_and_unit_costs_with_unit_prices():
    frame = pd.DataFrame({
        "order_id": ["1", "1", "2"], "customer_id": ["a", "a", "b"],
        "sku": ["X1", "X2", "X1"], "qty": ["2", "1", "1"],
        "price": ["8.00", "5.00", "10.00"], "compare_at_price": ["10.00", "", "10.00"],
        "unit_cost": ["4.00", "2.50", "4.20"], "created_at": ["2024-01-01"] * 3,
    })
    result = load_files([_file("shop.csv", frame)])
    lines = result.dataset.lines.set_index([C.ORDER_ID, C.PRODUCT_ID])
    assert lines.loc[("1", "X1"), C.REGULAR_PRICE] == 10.0
    assert np.isnan(lines.loc[("1", "X2"), C.REGULAR_PRICE])
    assert lines.loc[("1", "X1"), C.UNIT_COST] == 4.0  # per unit, as the price is
    catalogue = result.dataset.products.set_index(C.PRODUCT_ID)
    assert catalogue.loc["X1", C.PRICE] == 10.0 and catalogue.loc["X2", C.PRICE] == 5.0
    assert catalogue.loc["X1", C.COST] == pytest.approx(4.1)
    assert "per unit" in _warnings(result)["cost_per_unit"]


# Ta-Feng's shape: day, customer (leading zeros), category code, barcode, units,
# the line's cost and its sales value; no order id, a byte-order mark, no text
TA_FENG = pd.DataFrame({
    "TRANSACTION_DT": ["11/1/2000", "11/1/2000", "11/1/2000", "11/2/2000", "11/2/2000"],
    "CUSTOMER_ID": ["01104905", "01104905", "00418683", "01104905", "00418683"],
    "AGE_GROUP": ["45-49"] * 5,
    "PIN_CODE": ["115"] * 5,
    "PRODUCT_SUBCLASS": ["110411", "120107", "110411", "110411", "120107"],
    "PRODUCT_ID": ["4710199010372", "4710857472535", "4710199010372", "4710199010372",
                   "4710857472535"],
    "AMOUNT": ["2", "1", "1", "3", "2"],
    "ASSET": ["24", "48", "12", "36", "96"],
    "SALES_PRICE": ["30", "46", "15", "45", "92"],
})


def test_no_order_id_line_totals_line_costs_and_a_bom():
    result = load_files([_file("ta_feng.csv", TA_FENG, bom=True)])
    mapping = result.report.mapping["ta_feng.csv"]
    assert mapping == {"TRANSACTION_DT": C.TIMESTAMP, "CUSTOMER_ID": C.CUSTOMER_ID,
                       "PRODUCT_SUBCLASS": C.CATEGORY, "PRODUCT_ID": C.PRODUCT_ID,
                       "AMOUNT": C.QUANTITY, "ASSET": C.COST, "SALES_PRICE": C.LINE_TOTAL}
    data = result.dataset
    # an order is a customer's lines on one day: 2 customers × 2 days
    assert data.n_orders == 4
    assert sorted(data.lines[C.ORDER_ID].unique()) == [
        "00418683@2000-11-01", "00418683@2000-11-02", "01104905@2000-11-01",
        "01104905@2000-11-02"]
    assert "on one day" in _warnings(result)["orders_by_day"]
    catalogue = data.products.set_index(C.PRODUCT_ID)
    # unit price = 30 / 2 = 15; unit cost = 24 / 2 = 12: the shop's own margin
    assert catalogue.loc["4710199010372", C.PRICE] == 15.0
    assert catalogue.loc["4710199010372", C.COST] == 12.0
    assert catalogue.loc["4710857472535", C.COST] == 48.0
    assert catalogue.loc["4710199010372", C.CATEGORY] == "110411"
    # no text at all: the id with its category, never a bare code
    assert catalogue.loc["4710199010372", C.NAME] == "4710199010372 (110411)"
    assert "the line's" in _warnings(result)["cost_per_line"]
    by_time = load_files([_file("ta_feng.csv", TA_FENG, bom=True)], orders="timestamp")
    assert by_time.dataset.n_orders == 4  # the day is all the timestamp says here


def test_orders_by_timestamp_split_a_day():
    frame = GROCERY.drop(columns="BASKET_ID").assign(
        transaction_timestamp=["2024-03-01 10:00", "2024-03-01 17:00", "2024-03-01 10:00",
                               "2024-03-02 12:00", "2024-03-02 12:00", "2024-03-02 12:00"])
    by_day = load_files([_file("t.csv", frame)]).dataset
    by_time = load_files([_file("t.csv", frame)], orders="timestamp").dataset
    assert (by_day.n_orders, by_time.n_orders) == (2, 3)


@pytest.mark.parametrize("packing", ["zip", "gzip"])
def test_zipped_and_gzipped_uploads(packing):
    plain = _file("ta_feng.csv", TA_FENG, bom=True)
    if packing == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("ta_feng_all_months_merged.csv", plain.data)
        packed = InputFile("ta_feng.csv.zip", buf.getvalue())
    else:
        packed = InputFile("ta_feng.csv.gz", gzip.compress(plain.data))
    a = load_files([plain]).dataset
    b = load_files([packed]).dataset
    pd.testing.assert_frame_equal(a.products, b.products)
    assert a.n_orders == b.n_orders and len(a.lines) == len(b.lines) == 5


def test_outlier_quantities_are_set_aside_listed_and_can_be_kept():
    normal = [("c1", "FUEL", "1"), ("c2", "FUEL", "2"), ("c3", "FUEL", "1"), ("c1", "MILK", "2")]
    rows = [*normal, ("c4", "FUEL", "89638")]
    frame = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(rows))],
        "customer_id": [r[0] for r in rows], "product_id": [r[1] for r in rows],
        "quantity": [r[2] for r in rows], "line_total": ["10"] * len(rows),
        "timestamp": ["2024-05-01"] * len(rows),
    })
    result = load_files([_file("fuel.csv", frame)])
    assert result.report.set_aside["outlier_quantity"] == 1
    listed = result.report.outliers
    assert listed[C.PRODUCT_ID].tolist() == ["FUEL"] and listed[C.QUANTITY].tolist() == [89638]
    assert listed[C.SOURCE_ROW].tolist() == [6]  # the spreadsheet's row (header = 1)
    assert result.report.to_dict()["outliers"][0]["kept"] is False
    kept = load_files([_file("fuel.csv", frame)], keep_outliers=True)
    assert kept.report.set_aside["outlier_quantity"] == 0
    assert kept.report.rows_kept == 5
    assert kept.report.to_dict()["outliers"][0]["kept"] is True
