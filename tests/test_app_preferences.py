"""The Preferences page on the sample data, driven with Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("app_pages/2_preferences.py").run()
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
    recs = next(d for d in at.dataframe if "reason" in d.value.columns).value
    assert len(recs) == 10 and recs["reason"].str.contains("similar to").all()
    at.slider(key="prefs_k_widget").set_value(3).run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Segments").value == "3"
    reason = next(c.value for c in at.caption if c.value.startswith("k = "))
    assert reason.startswith("k = 3: chosen by the analyst") and "suggest 5" in reason
    assert any("prefs_k_curve" in c.proto.id for c in at.get("plotly_chart"))
    at.button(key="prefs_evaluate_widget").click().run()
    assert not at.exception
    table = next(d for d in at.dataframe if "model" in d.value.columns).value
    assert set(table["model"]) >= {"hybrid", "popularity", "item-kNN", "EASE"}
    assert any("hidden from training to test cold start" in c.value for c in at.caption)
