"""The Preferences page on the sample data, driven with Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
FIT_TIMEOUT_S = 180


@pytest.fixture
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    # the first run fits everything (segments, the hybrid, the sequence model: about
    # 45 s on a busy 2-core machine); the later runs read the caches
    at.switch_page("app_pages/2_preferences.py").run(timeout=FIT_TIMEOUT_S)
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_preferences_page_renders_k_curve_and_k_slider_changes_segments(page):
    at = page
    assert at.title[0].value == "Preferences"
    # the encoding's progress bar goes once the texts are encoded, and the page says so
    assert not at.get("progress")
    assert any(c.value.startswith("Product texts encoded (300 products)") for c in at.caption)
    charts = [c.proto.id for c in at.get("plotly_chart")]
    assert any("prefs_heatmap" in c for c in charts) and any("prefs_sizes" in c for c in charts)
    segments = next(m for m in at.metric if m.label == "Segments")
    assert segments.value == "5"  # the sample's suggested k
    # the k curve (held-out log-likelihood per k) and the reason for the choice
    assert any("prefs_k_curve" in c for c in charts)
    curve = next(c for c in at.get("plotly_chart") if "prefs_k_curve" in c.proto.id)
    assert "held-out purchases" in curve.proto.spec
    reason = next(c.value for c in at.caption if c.value.startswith("k = "))
    assert reason.startswith("k = 5: held-out purchases are explained best") and "standard error" in reason
    weights = next(d for d in at.dataframe if "what it rewards" in d.value.columns).value
    assert weights.set_index("part").loc["segment", "weight"] > 0  # the sample buys by segment
    assert any("NDCG@20" in c.value for c in at.caption)
    # how the next-purchase list was fitted, under the weights
    assert any(c.value.startswith("Next purchase: ") for c in at.caption)
    # one customer, both views: the next purchase (bought products included) and new ones
    # (st.dataframe's key does not reach AppTest here: the tables are found by place)
    next_tab, new_tab = at.tabs
    assert (next_tab.label, new_tab.label) == ("Next purchase (bought products included)",
                                               "New to this customer")
    next_recs, new_recs = next_tab.dataframe[0].value, new_tab.dataframe[0].value
    history = next(d.value for d in at.dataframe if "days ago" in d.value.columns)
    assert len(history) and history["orders"].min() >= 1
    assert list(next_recs.columns) == ["rank", "product_id", "name", "score", "repeat", "reason"]
    assert len(next_recs) == 10 and next_recs["score"].between(0, 1).all()
    again = next_recs[next_recs["repeat"]]
    assert len(again) and again["reason"].str.startswith("Bought in").all()
    assert set(again["name"]) <= set(history["name"])
    assert not next_recs.loc[~next_recs["repeat"], "reason"].str.startswith("Bought in").any()
    assert "repeat" not in new_recs.columns and len(new_recs) == 10
    assert not set(new_recs["name"]) & set(history["name"])
    assert new_recs["reason"].str.contains("similar to").all()
    at.slider(key="prefs_k_widget").set_value(3).run(timeout=FIT_TIMEOUT_S)  # refits
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Segments").value == "3"
    reason = next(c.value for c in at.caption if c.value.startswith("k = "))
    assert reason.startswith("k = 3: chosen by the analyst") and "suggest 5" in reason
    assert any("prefs_k_curve" in c.proto.id for c in at.get("plotly_chart"))
    at.button(key="prefs_evaluate_widget").click().run(timeout=FIT_TIMEOUT_S)
    assert not at.exception
    tables = [d.value.set_index("model") for d in at.dataframe if "model" in d.value.columns]
    assert len(tables) == 3
    next_purchase, new_products, cold = tables
    # each list against its own baselines: the next purchase against personal
    # frequency and TIFU-KNN (which may repeat), new products against item-kNN
    assert set(next_purchase.index) == {"hybrid", "popularity", "personal frequency", "EASE",
                                        "TIFU-KNN"}
    assert "repeat share" in next_purchase.columns
    assert set(new_products.index) == {"hybrid", "popularity", "item-kNN", "EASE"}
    assert set(cold.index) == {"hybrid (text)", "popularity in category"}
    assert next_purchase["ndcg@20"].idxmax() == "hybrid"
    assert cold["recall@20"].idxmax() == "hybrid (text)"
    assert any(c.value.startswith("Next purchase: everything bought after") for c in at.caption)
    assert any("hidden from training to test cold start" in c.value
               and "ranked in the whole catalogue" in c.value for c in at.caption)
