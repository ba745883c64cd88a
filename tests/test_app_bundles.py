"""The Bundles page with Streamlit's AppTest on the sample market, and its figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from streamlit.testing.v1 import AppTest

from engine.bundles import BeamConfig, BundleInputs, score_bundle
from engine.bundles.objective import ObjectiveWeights, weighted_total
from engine.pipeline import stages
from engine.recommend import copurchase_stats
from tests.conftest import app_on_page
from ui import bundles as ub

APP = Path(__file__).resolve().parents[1] / "app.py"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
PAGE = "app_pages/3_bundles.py"


@pytest.fixture
def page(tmp_path_factory) -> AppTest:
    """The app on the Bundles page, 30 s per run after the first start; the workspace
    (and with it the cached segments, demand and profits) is shared by the page tests."""
    yield from app_on_page(tmp_path_factory, PAGE)


@pytest.fixture
def fresh_page(tmp_path, monkeypatch):
    """The app on the Bundles page in a workspace of its own (so no cached result is
    served), started after the caller has patched what it needs."""

    def start() -> AppTest:
        monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.run(timeout=180)
        assert not at.exception, [e.value for e in at.exception]
        at.switch_page(PAGE).run(timeout=180)
        assert not at.exception, [e.value for e in at.exception]
        return at

    return start


def _cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Bundle ")]


def _submit(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Find bundles").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_renders_bundle_cards_for_the_sample(page):
    shown = page.session_state["bundles_shown"]
    # as many as pay, at most the cap: on the sample every segment has 10 that add profit
    assert len(_cards(page)) == len(shown) == BeamConfig().n_bundles
    added = [float(m.value.replace(",", "")) for m in page.metric if m.label == "Adds per period"]
    assert added == pytest.approx(shown["added_profit"].round(2).tolist(), abs=0.006)
    assert (shown["added_profit"] > 0).all()
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


def _profit_metrics(at: AppTest) -> list[float]:
    return [float(m.value.replace(",", "")) for m in at.metric if m.label == "Profit per visitor"]


def test_cards_show_the_profit_term_and_the_ranking_adds_it(page):
    shown = page.session_state["bundles_shown"]
    # the profit per visitor on every card is the bundle's profit term in money
    # (the objective keeps it divided by the catalogue's median list price, 16.99 here)
    median_price = float(pd.read_csv(SAMPLE / "products.csv")["price"].median())
    assert _profit_metrics(page) == pytest.approx(
        (shown["profit_proxy"] * median_price).round(3).tolist(), abs=1e-3
    )
    terms = page.dataframe[0].value
    assert "Profit per visitor ÷ median price" in terms["term"].tolist()
    # the score ranks the cards and includes the profit term with its weight
    w = ObjectiveWeights()
    for _, row in shown.iterrows():
        parts = {k: row[k] for k in ("affinity", "complementarity", "substitute_penalty",
                                     "profit_proxy")}
        assert row["total"] == pytest.approx(weighted_total(parts, w))
    assert shown["total"].is_monotonic_decreasing
    # labels and reasons name the segment as the picker, the price list and the files do
    assert shown["segment"].str.startswith("S1 · ").all()
    assert all("egment S1 · " in r for r in shown["reason"])
    # each card's caption is the price list's reason: the actual price and its numbers
    assert sum("% off the " in c.value and "list total" in c.value for c in page.caption) >= 5


def test_bundles_are_ranked_by_the_pricing_stage_profit(fresh_page, monkeypatch):
    # a stand-in pricing stage under which every extra product adds 1000 per visitor:
    # the profit then outweighs every other term, so the page must show triples only,
    # though on the sample market's own profits its best bundles are pairs
    def more_is_better(model, copurchase, config, draws, seed):
        return lambda segment, items: 1000.0 * len(items)

    monkeypatch.setattr(stages, "profit_ranker", more_is_better)
    at = fresh_page()
    shown = at.session_state["bundles_shown"]
    # every bundle pays here, so the diversity rule and the cap set how many
    assert 5 <= len(shown) <= BeamConfig().n_bundles
    # triples first, as many as the diversity rule lets through, then pairs
    assert (shown["size"].iloc[:5] == 3).all(), shown[["product_names", "size"]]
    assert shown["size"].is_monotonic_decreasing, shown[["product_names", "size"]]
    assert _profit_metrics(at) == pytest.approx((1000.0 * shown["size"]).tolist())


def test_moving_an_unrelated_widget_recomputes_nothing(page, monkeypatch):
    calls = []
    for name in ("beam_search", "profit_ranker", "fit_preferences",
                 "calibrate_demand", "prepare_choices", "run_on_choices"):
        real = getattr(stages, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(stages, name, counted)
    page.selectbox(key="bundles_network_widget").set_value(1).run()
    assert not page.exception, [e.value for e in page.exception]
    assert calls == []
    # another segment: only the beam for the customer now picked (its own preferences)
    page.selectbox(key="bundles_segment_widget").set_value(1).run()
    assert not page.exception, [e.value for e in page.exception]
    assert calls.count("beam_search") == 1
    assert not {"profit_ranker", "fit_preferences", "calibrate_demand",
                "run_on_choices"} & set(calls), calls
    assert len(_cards(page)) == len(page.session_state["bundles_shown"]) >= 1


def test_changing_beam_settings_in_the_form_changes_the_result(page):
    before = page.session_state["bundles_shown"]["product_ids"].tolist()
    page.slider(key="bundles_size_widget").set_value((3, 4))
    page.slider(key="bundles_n_widget").set_value(3)
    _submit(page)
    after = page.session_state["bundles_shown"]
    assert len(after) == 3 == len(_cards(page))
    assert after["size"].between(3, 4).all()
    assert after["product_ids"].tolist() != before[:3]


def test_least_liking_keeps_out_a_pair_the_segment_does_not_want(page):
    """The sample's first segment (Kitchen) likes the colouring book and crayons at about
    half its average product: offered only once the rule is off (0)."""
    def names():
        return " + ".join(page.session_state["bundles_shown"]["product_names"])

    assert "Kitchen" in page.selectbox(key="bundles_segment_widget").format_func(0)
    assert "Chunky Wax Crayon Set" not in names()
    page.number_input(key="bundles_min_liking_widget").set_value(0.0)
    _submit(page)
    assert not page.exception
    assert "Chunky Wax Crayon Set" in names()


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
