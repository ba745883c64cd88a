"""The Bundles page with Streamlit's AppTest on the sample market, and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from streamlit.testing.v1 import AppTest

from engine.bundles import BundleInputs, score_bundle
from engine.recommend import copurchase_stats
from ui import bundles as ub

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGE = "pages/3_bundles.py"


@pytest.fixture
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    # text embeddings off: the encoder has its own tests, and this keeps the page test fast
    at.session_state["bundles_text_widget"] = False
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Bundle ")]


def _submit(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Find bundles").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_renders_bundle_cards_for_the_sample(page):
    shown = page.session_state["bundles_shown"]
    assert len(_cards(page)) == len(shown) == 5
    sizes = shown["size"].tolist()
    assert all(2 <= s <= 3 for s in sizes)
    # each card carries its reason and its terms
    assert sum("bought together" in c.value or "taste" in c.value for c in page.caption) >= 5
    assert len(page.dataframe) >= 5
    chart = next(c for c in page.get("plotly_chart") if "chart_bundle_network" in c.proto.id)
    spec = json.loads(chart.proto.spec)
    nodes = spec["data"][-1]
    first_bundle = shown.iloc[0]["product_names"].split(" + ")
    assert all(any(n.startswith(t[:20]) for t in nodes["text"]) for n in first_bundle)


def test_changing_beam_settings_in_the_form_changes_the_result(page):
    before = page.session_state["bundles_shown"]["product_ids"].tolist()
    page.slider(key="bundles_size_widget").set_value((3, 4))
    page.slider(key="bundles_n_widget").set_value(3)
    _submit(page)
    after = page.session_state["bundles_shown"]
    assert len(after) == 3 == len(_cards(page))
    assert after["size"].between(3, 4).all()
    assert after["product_ids"].tolist() != before[:3]


def test_anchor_product_appears_in_every_bundle(page):
    page.multiselect(key="bundles_anchor_widget").set_value(["P0001"])
    page.checkbox(key="bundles_one_per_cat_widget").check()
    _submit(page)
    shown = page.session_state["bundles_shown"]
    assert len(shown) == 5
    assert all("P0001" in ids.split(" + ") for ids in shown["product_ids"])
    name = "Dark Roast Espresso Beans"
    assert all(name in card for card in _cards(page))
    # another segment keeps the anchor too
    page.selectbox(key="bundles_segment_widget").set_value(2).run()
    assert all("P0001" in ids.split(" + ") for ids in page.session_state["bundles_shown"]["product_ids"])


def test_network_figure_draws_lift_edges_between_bundle_products():
    # products 0 and 1 always bought together, 2 with 0 sometimes, 3 alone
    baskets = sp.csr_matrix(
        np.array([[1, 1, 0, 0]] * 30 + [[1, 0, 1, 0]] * 5 + [[0, 0, 0, 1]] * 30, dtype=np.float32)
    )
    products = pd.DataFrame(
        {"product_id": list("abcd"), "name": ["Pot", "Lid", "Spoon", "Soap"], "price": 5.0}
    )
    inputs = BundleInputs.from_products(
        products, np.array([[0.4, 0.3, 0.2, 0.1]]), copurchase_stats(baskets)
    )
    bundle = score_bundle(inputs, 0, [0, 1])
    fig = ub.network_figure(inputs, bundle)
    nodes = fig.data[-1]
    assert list(nodes.text[:2]) == ["Pot", "Lid"]
    assert "Spoon" in nodes.text  # Pot's partner, shown for context
    assert "Soap" not in nodes.text  # never bought with either
    edges = [t for t in fig.data[:-1]]
    lift_ab = inputs.copurchase.pair_lift(0, 1)
    assert any(e.text == f"lift {lift_ab:.1f}" for e in edges)
    terms = ub.terms_frame(bundle)
    assert terms["value"].tolist() == pytest.approx(list(bundle.terms.values()))
