"""Column-name mapping and file-kind detection."""

from __future__ import annotations

import pytest

from engine import columns as C
from engine.data import detect_kind, detect_mapping

UCI = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
       "CustomerID", "Country"]


def test_uci_columns_map_to_canonical():
    assert detect_mapping(UCI) == {
        "InvoiceNo": C.ORDER_ID, "StockCode": C.PRODUCT_ID, "Description": C.NAME,
        "Quantity": C.QUANTITY, "InvoiceDate": C.TIMESTAMP, "UnitPrice": C.UNIT_PRICE,
        "CustomerID": C.CUSTOMER_ID, "Country": C.COUNTRY,
    }


@pytest.mark.parametrize(("theirs", "canonical"), [
    ("sku", C.PRODUCT_ID), ("Item ID", C.PRODUCT_ID), ("product_code", C.PRODUCT_ID),
    ("invoice", C.ORDER_ID), ("Order Number", C.ORDER_ID), ("ORDER_ID", C.ORDER_ID),
    ("customer", C.CUSTOMER_ID), ("client_id", C.CUSTOMER_ID), ("Customer ID", C.CUSTOMER_ID),
    ("qty", C.QUANTITY), ("price_paid", C.UNIT_PRICE), ("unit price", C.UNIT_PRICE),
    ("order_date", C.TIMESTAMP), ("created_at", C.TIMESTAMP), ("Date", C.TIMESTAMP),
    ("product_name", C.NAME), ("title", C.NAME),
])
def test_synonyms_in_order_lines(theirs, canonical):
    cols = ["order_id", "product_id", "quantity", theirs]
    cols = [c for c in cols if c != canonical] + ([theirs] if theirs not in cols else [])
    assert detect_mapping(cols, kind="order_lines")[theirs] == canonical


def test_price_means_unit_price_in_lines_and_list_price_in_a_catalogue():
    assert detect_mapping(["order", "sku", "qty", "price"])["price"] == C.UNIT_PRICE
    cat = detect_mapping(["sku", "title", "price", "description", "unit_cost", "category"])
    assert cat == {"sku": C.PRODUCT_ID, "title": C.NAME, "price": C.PRICE,
                   "description": C.DESCRIPTION, "unit_cost": C.COST, "category": C.CATEGORY}


def test_exact_canonical_name_wins_over_a_synonym():
    m = detect_mapping(["order_id", "sku", "quantity", "price", "unit_price", "date", "customer"])
    assert m["unit_price"] == C.UNIT_PRICE and "price" not in m


@pytest.mark.parametrize(("cols", "kind"), [
    (UCI, "order_lines"),
    (["sku", "name", "price", "category"], "products"),
    (["customer_id", "country", "age_band"], "customers"),
    (["bundle_id", "period", "price", "units", "visitors"], "observed"),
    (["sku", "qty", "price"], "order_lines"),
    (["foo", "bar"], "order_lines"),  # unknown: asks for order-line columns
])
def test_detect_kind(cols, kind):
    assert detect_kind(cols) == kind


def test_analyst_mapping_overrides_and_claims_targets():
    cols = ["Nr", "Artikel", "Menge", "Preis", "Datum", "Kunde", "sku"]
    over = {"Nr": C.ORDER_ID, "Artikel": C.PRODUCT_ID, "Menge": C.QUANTITY,
            "Preis": C.UNIT_PRICE, "Datum": C.TIMESTAMP, "Kunde": C.CUSTOMER_ID}
    m = detect_mapping(cols, overrides=over)
    assert m == over  # "sku" lost product_id to the analyst's "Artikel"


def test_analyst_can_drop_a_column():
    m = detect_mapping(UCI, overrides={"Country": ""})
    assert "Country" not in m and m["InvoiceNo"] == C.ORDER_ID


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        detect_mapping(UCI, kind="orders")
