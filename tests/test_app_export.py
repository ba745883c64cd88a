"""The Export page with Streamlit's AppTest on the sample market."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import columns as C
from engine.export import OFFER_COLUMNS
from tests.conftest import app_on_page

PAGE = "app_pages/5_export.py"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> AppTest:
    yield from app_on_page(tmp_path_factory, PAGE)


def _buttons(at: AppTest) -> dict[str, object]:
    return {b.proto.label: b for b in at.get("download_button")}


def test_preview_has_exactly_the_price_list_columns(page):
    preview = page.dataframe[0]  # the price list comes first, then the offers
    assert tuple(preview.value.columns) == C.PRICE_LIST_COLUMNS
    prices = page.session_state["export_price_list"]
    assert len(prices) == len(preview.value) >= 5
    assert (prices["bundle_price"] <= prices["list_total"] + 1e-9).all()
    # default guardrail: at most 30 % off
    assert (prices["discount_pct"] <= 30 + 1e-6).all()
    buttons = _buttons(page)
    for label in ("Price list CSV", "Price list XLSX", "Price list JSON", "Offers CSV"):
        assert label in buttons


def test_json_download_holds_every_bundle(page):
    from engine.export import to_json_bytes

    prices = page.session_state["export_price_list"]
    rows = json.loads(to_json_bytes(prices))
    assert [r["bundle_id"] for r in rows] == prices["bundle_id"].tolist()


def test_csv_download_reads_back_as_the_price_list(page):
    from engine.export import escape_frame, to_csv_bytes

    prices = page.session_state["export_price_list"]
    back = pd.read_csv(io.BytesIO(to_csv_bytes(prices)), keep_default_na=False,
                       dtype={"segment": str})
    pd.testing.assert_frame_equal(back, escape_frame(prices), check_dtype=False)


def test_offers_are_shop_ids_by_default_and_pseudonyms_when_ticked(page):
    offers = page.session_state["export_offer_list"]
    assert tuple(offers.columns) == OFFER_COLUMNS
    shop_ids = set(pd.read_csv(Path(__file__).resolve().parents[1] / "sample_data"
                               / "customers.csv", dtype=str)[C.CUSTOMER_ID])
    assert set(offers[C.CUSTOMER_ID]) <= shop_ids
    # every customer is offered at least one of the price list's bundles
    known = set(page.session_state["export_price_list"]["bundle_id"])
    assert all(set(o.split("|")) <= known for o in offers["offered_bundle_ids"])
    # the preview shows pseudonyms even though the file holds the shop's ids
    preview = page.dataframe[1]
    assert not set(preview.value[C.CUSTOMER_ID]) & shop_ids

    next(c for c in page.checkbox if c.key == "export_pseudo_widget").check().run()
    assert not page.exception, [e.value for e in page.exception]
    hidden = page.session_state["export_offer_list"]
    assert not set(hidden[C.CUSTOMER_ID]) & shop_ids
    assert len(hidden) == len(offers)
    # the file's pseudonyms are the preview's (the preview sorts by pseudonym too)
    assert hidden[C.CUSTOMER_ID].head(200).tolist() == preview.value[C.CUSTOMER_ID].tolist()
    back = pd.read_csv(io.BytesIO(_csv(hidden)), dtype=str)
    assert back[C.CUSTOMER_ID].str.startswith("c_").all()


def _csv(frame):
    from engine.export import to_csv_bytes

    return to_csv_bytes(frame)
