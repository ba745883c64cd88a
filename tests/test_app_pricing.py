"""The Pricing page with Streamlit's AppTest on the sample market."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import columns as C
from tests.conftest import app_on_page

PAGE = "pages/4_pricing.py"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> AppTest:
    yield from app_on_page(tmp_path_factory, PAGE)


def _widget(at, key):
    return next(w for w in at.get("slider") + at.get("selectbox") + at.get("checkbox")
                if w.key == key)


def test_page_prices_every_bundle_within_the_guardrails(page):
    run = page.session_state["pricing_run"]
    prices = page.session_state["pricing_price_list"]
    assert tuple(prices.columns) == C.PRICE_LIST_COLUMNS
    assert len(prices) == len(run.results) >= 5
    assert (prices["bundle_price"] <= prices["list_total"] + 1e-9).all()
    assert (prices["discount_pct"] <= 30 + 1e-6).all()
    assert prices["bundle_price"].map(lambda p: f"{p:.2f}".endswith(".99")).all()
    labels = [m.label for m in page.metric]
    for label in ("Profit per period (±", "Single sales cannibalised (±"):
        assert any(m.startswith(label) for m in labels), labels
    ids = [c.proto.id for c in page.get("plotly_chart")]
    assert any("chart_price_curve" in i for i in ids) and any("chart_frontier" in i for i in ids)
    # the optimised prices beat every baseline shown
    base = run.baselines.set_index("strategy")["profit"]
    assert base["optimised"] >= base.max() - 1e-6


def test_tighter_discount_slider_reprices(page):
    _widget(page, "pricing_discount_widget").set_value(10).run()
    assert not page.exception, [e.value for e in page.exception]
    prices = page.session_state["pricing_price_list"]
    assert (prices["discount_pct"] <= 10 + 1e-6).all()
    _widget(page, "pricing_ending_widget").set_value("none").run()
    _widget(page, "pricing_margin_widget").set_value(40).run()
    assert not page.exception, [e.value for e in page.exception]
    run = page.session_state["pricing_run"]
    cost = run.choices.bundle_cost
    for r in run.results:
        if r.converged or "guardrail" not in r.message:
            assert (r.price - cost[r.bundle]) / r.price >= 0.4 - 1e-6


def test_download_csv_reads_back(page):
    button = next(b for b in page.get("download_button") if b.proto.label == "Price list CSV")
    assert button is not None
    prices = page.session_state["pricing_price_list"]
    from engine.export import escape_frame, to_csv_bytes

    back = pd.read_csv(io.BytesIO(to_csv_bytes(prices)), keep_default_na=False,
                       dtype={"segment": str})
    pd.testing.assert_frame_equal(back, escape_frame(prices), check_dtype=False)


def test_ab_table_shows_recommended_prices_beating_a_flat_discount(page):
    table = page.session_state["pricing_ab_table"].set_index("metric")
    profit = table.loc["profit per visitor"]
    assert profit["treatment_low"] <= profit["treatment"] <= profit["treatment_high"]
    # recommended prices maximise profit: the interval of the gain lies above -noise
    assert profit["difference_high"] > 0
    assert profit["visitors_needed"] > 0


def test_export_page_takes_the_pricing_scenario(page):
    # runs last: leaves the pricing page for the export page
    scenario = page.session_state["pricing_price_list"]
    page.switch_page("pages/5_export.py").run()
    assert not page.exception, [e.value for e in page.exception]
    pd.testing.assert_frame_equal(page.session_state["export_price_list"], scenario)


def _metric(at, label):
    """(label, value) of the metric whose label starts with ``label`` (then its ± interval)."""
    m = next(m for m in at.metric if m.label.startswith(label))
    return m.label, m.value


def test_elasticity_slider_changes_the_metrics_with_intervals(page):
    page.switch_page(PAGE).run()  # an earlier test went on to the Export page
    before = {label: _metric(page, label) for label in ("Profit per period", "Bundle take rate")}
    assert all("±" in lab for lab, _ in before.values())
    _widget(page, "pricing_use_elasticity_widget").set_value(True).run()
    _widget(page, "pricing_elasticity_widget").set_value(5.0).run()
    assert not page.exception, [e.value for e in page.exception]
    after = {label: _metric(page, label) for label in before}
    assert after["Profit per period"][1] != before["Profit per period"][1]
    # the metric shows the run's own totals and their 95 % interval
    tot = page.session_state["pricing_run"].simulation.totals.iloc[0]
    assert after["Profit per period"] == (
        f"Profit per period (±{1.96 * tot['profit_se']:,.0f})", f"{tot['profit']:,.0f}"
    )


def test_cannibalisation_chart_and_demand_sources_are_shown(page):
    page.switch_page(PAGE).run()
    ids = [c.proto.id for c in page.get("plotly_chart")]
    assert any("chart_cannibalisation" in i for i in ids)
    sources = next(d.value for d in page.dataframe if "sigma_source" in d.value.columns)
    assert len(sources) == 300 and {"cost", "cost_source", "name"} <= set(sources.columns)


def test_read_observed_names_an_unreadable_file():
    from engine.errors import DataValidationError
    from ui.pricing import read_observed

    good = b"bundle_id,period,price,units,visitors\nS1-P1-P2,1,9.99,3,40\n"
    frame = read_observed("obs.csv", good)
    assert frame.loc[0, "units"] == 3 and frame.loc[0, "price"] == 9.99
    with pytest.raises(DataValidationError) as err:
        read_observed("obs.csv", b'"unterminated,quote\n\xff\xfe1,2\n')
    issue = err.value.issues[0]
    assert issue.file == "obs.csv" and issue.rule == "readable_csv"


def test_ab_frame_puts_each_interval_in_one_cell():
    import pandas as pd

    from ui.pricing import ab_frame

    table = pd.DataFrame([{
        "metric": "profit per visitor", "control": 2.0, "control_low": 1.5, "control_high": 2.5,
        "treatment": 3.0, "treatment_low": 2.75, "treatment_high": 3.25, "difference": 1.0,
        "difference_low": 0.5, "difference_high": 1.5, "lift_pct": 50.0,
        "visitors_per_arm": 1000, "visitors_needed": 120,
    }])
    row = ab_frame(table).iloc[0]
    assert row["control"] == "2.00 [1.50, 2.50]"
    assert row["difference"] == "1.00 [0.50, 1.50]" and row["lift %"] == 50.0
    assert row["visitors needed per arm"] == 120
