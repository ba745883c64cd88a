"""The Pricing page with Streamlit's AppTest on the sample market."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import columns as C
from tests.conftest import app_on_page

PAGE = "app_pages/4_pricing.py"


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


def test_downloads_are_on_the_export_page_only(page):
    # one place owns the downloads: the Pricing page links to the Export page
    assert not page.get("download_button")
    links = [link.proto for link in page.get("page_link")]
    assert any(link.page == "export" and "price list" in link.label for link in links), links


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
    page.switch_page("app_pages/5_export.py").run()
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


def test_pair_share_fit_is_shown_and_joint_interest_matches_the_data(page):
    """"Where demand comes from": per bundle, the share of its segment's visits
    buying all of it in the data and in the simulation; joint interest lands near
    the data, independent interest far under it."""
    page.switch_page(PAGE).run()
    assert not page.exception, [e.value for e in page.exception]
    ids = [c.proto.id for c in page.get("plotly_chart")]
    assert any("pricing_share_fit" in i for i in ids)
    fit = next(d.value for d in page.dataframe if "data: all %" in d.value.columns)
    run = page.session_state["pricing_run"]
    assert len(fit) == len(run.results)
    # bundles the search builds from affinity may never have sold whole: no ratio
    seen = fit[fit["data: all %"] > 0]
    assert len(seen) >= len(fit) / 2
    observed, joint = seen["data: all %"], seen["simulated: all %"]
    print((joint / observed).describe())
    assert (joint / observed).median() == pytest.approx(1.0, abs=0.25)
    assert (seen["if independent: all %"] / observed).median() < 0.5


def test_read_observed_names_an_unreadable_file():
    from engine.errors import DataValidationError
    from engine.pricing.adjust import read_observed

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


# --- a fresh page per test below: they set the sliders they need from the defaults ------


@pytest.fixture
def fresh(tmp_path_factory) -> AppTest:
    """The Pricing page at its default settings (the chain is cached: a few seconds)."""
    yield from app_on_page(tmp_path_factory, PAGE)


def _set(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        _widget(at, f"pricing_{key}_widget").set_value(value).run()
        assert not at.exception, (key, [e.value for e in at.exception])
    return at


def _observed_csv(rows) -> bytes:
    frame = pd.DataFrame(rows, columns=["bundle_id", "period", "price", "units", "visitors"])
    return frame.to_csv(index=False).encode()


def _upload(at: AppTest, file_name: str, data: bytes) -> AppTest:
    at.file_uploader(key="pricing_observed_widget").set_value((file_name, data, "text/csv"))
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_observed_results_propose_moves_in_the_direction_sales_say(fresh):
    # free prices: price sensitivity set by hand, up to 60 % off, no price ending, a wide
    # spread between segments, so the guardrails leave the recommended prices room
    at = _set(fresh, use_elasticity=True, elasticity=4.0, discount=60, ending="none",
              spread=50)
    prices = at.session_state["pricing_price_list"].set_index("bundle_id")
    free = prices[(prices["discount_pct"] > 3) & (prices["discount_pct"] < 55)
                  & (prices["bundle_margin_pct"] > 15) & (prices["expected_take_rate"] > 0.01)]
    assert len(free) >= 2, prices
    up_id = free["discount_pct"].idxmax()  # the most room to rise
    down_id = free.drop(index=up_id)["expected_take_rate"].idxmax()
    # two periods of 10,000 visitors each; one bundle sells a fifth of what the simulated
    # market predicts at its price, the other three times as much
    rows = []
    for bundle_id, factor in ((down_id, 0.2), (up_id, 3.0)):
        row = prices.loc[bundle_id]
        units = round(factor * row["expected_take_rate"] * 10_000)
        rows += [(bundle_id, period, row["bundle_price"], units, 10_000) for period in (1, 2)]
    at = _upload(at, "observed.csv", _observed_csv(rows))

    table = next(d.value for d in at.dataframe if "move" in d.value.columns)
    moves = table.set_index("bundle_id")
    assert set(moves.index) == {down_id, up_id}
    assert moves.loc[down_id, "move"] == "down" and moves.loc[up_id, "move"] == "up"
    for bundle_id in (down_id, up_id):
        assert moves.loc[bundle_id, "current price"] == pytest.approx(
            prices.loc[bundle_id, "bundle_price"], abs=0.006)
    assert moves.loc[down_id, "proposed price"] < moves.loc[down_id, "current price"]
    assert moves.loc[up_id, "proposed price"] > moves.loc[up_id, "current price"]
    assert "below the predicted" in moves.loc[down_id, "reason"]
    assert "above the predicted" in moves.loc[up_id, "reason"]
    # observed take rates as uploaded: units over visitors of both periods
    observed = moves["observed take rate"]
    for bundle_id, factor in ((down_id, 0.2), (up_id, 3.0)):
        units = 2 * round(factor * prices.loc[bundle_id, "expected_take_rate"] * 10_000)
        assert observed[bundle_id] == pytest.approx(units / 20_000)
    # proposals only: the scenario's prices are unchanged
    pd.testing.assert_frame_equal(at.session_state["pricing_price_list"].set_index("bundle_id"),
                                  prices)

    # a malformed file: a message naming the file, row and column; nothing else changes
    before_moves = at.session_state["pricing_moves"]
    bad = list(rows)
    bad[1] = bad[1][:3] + ("twelve",) + bad[1][4:]  # the second data row: spreadsheet row 3
    at = _upload(at, "june_sales.csv", _observed_csv(bad))
    errors = [e.value for e in at.error]
    assert any("june_sales.csv" in e and "column 'units'" in e and "rows 3" in e
               and "'twelve'" in e for e in errors), errors
    pd.testing.assert_frame_equal(at.session_state["pricing_price_list"].set_index("bundle_id"),
                                  prices)
    assert at.session_state["pricing_moves"] is before_moves
    assert not any("move" in d.value.columns for d in at.dataframe)


def test_observed_results_with_missing_column_or_unknown_bundle_are_named(fresh):
    at = _upload(fresh, "obs.csv", b"bundle,period,price,units\nS1-X,1,9.99,3\n")
    errors = [e.value for e in at.error]
    assert any("obs.csv" in e and "column 'bundle_id'" in e for e in errors), errors
    at = _upload(at, "obs.csv", b"bundle_id,period,price,units\nS9-NOPE,1,9.99,3\n")
    errors = [e.value for e in at.error]
    assert any("obs.csv" in e and "column 'bundle_id'" in e and "rows 2" in e
               and "not in the price list" in e for e in errors), errors
    assert "pricing_moves" not in at.session_state


def test_read_observed_names_file_column_and_rows_of_each_problem():
    from engine.errors import DataValidationError
    from engine.pricing.adjust import read_observed

    data = (b"Bundle_ID,period,price,units,visitors\n"
            b"A,1,9.99,3,40\n"      # row 2: fine
            b"B,1,-5,2,\n"          # row 3: negative price; blank visitors are allowed
            b",2,5.00,1,10\n"       # row 4: no bundle id
            b"A,2,5.00,30,10\n")    # row 5: more units than visitors
    with pytest.raises(DataValidationError) as err:
        read_observed("obs.csv", data, ["A", "B"])
    found = {(i.column, i.rule): i for i in err.value.issues}
    assert found["price", "number"].rows == (3,)
    assert found["bundle_id", "not_blank"].rows == (4,)
    assert found["units", "units_within_visitors"].rows == (5,)
    assert all(i.file == "obs.csv" for i in err.value.issues)
    assert len(err.value.issues) == 3
    good = read_observed("obs.csv", b"bundle_id,period,price,units\nA,1,9.99,3\n", ["A"])
    assert good.loc[0, "price"] == 9.99 and good.loc[0, "units"] == 3


@pytest.fixture
def counted(monkeypatch):
    """Calls of each stage the page might re-run, counted while the page runs (the
    stages run in ui.pipeline's worker threads and look these names up in
    engine.pipeline.stages, the figures' in ui.pricing)."""
    import engine.pipeline.stages
    import ui.pricing

    calls: dict[str, int] = {}

    def count(module, attr):
        real = getattr(module, attr)

        def wrapper(*args, **kwargs):
            calls[attr] = calls.get(attr, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attr, wrapper)

    for attr in ("price_curve", "frontier", "adjust_prices"):
        count(ui.pricing, attr)
    for attr in ("prepare_choices", "run_on_choices", "calibrate_demand", "fit_preferences",
                 "beam_search"):
        count(engine.pipeline.stages, attr)
    return calls


# per group of widget moves, from the page's defaults: widget key, new value and the stages
# that must re-run; after each group the widgets go back to their defaults. A guardrail or
# the segment mix re-prices the same bundles on the same draws; synergy changes what a
# bundle is worth, so the bundles are searched again (and drawn anew); the season and the
# elasticity change the demand model itself. The segments are never fitted again.
REPRICE = {"run_on_choices", "price_curve", "frontier"}
REBUNDLE = {"beam_search", "prepare_choices", *REPRICE}
RECALIBRATE = {"calibrate_demand", *REBUNDLE}
MOVES = [
    [("discount", 0, {"run_on_choices", "frontier"})],
    [("margin", 55, {"run_on_choices"})],
    [("synergy_auto", False, REBUNDLE), ("synergy", 25, REBUNDLE)],
    [("mix_0", 0, REPRICE)],
    [("month", 12, RECALIBRATE)],
    [("use_elasticity", True, RECALIBRATE), ("elasticity", 5.0, RECALIBRATE)],
]


def _profit(at: AppTest) -> str:
    return _metric(at, "Profit per period")[1]


def test_each_slider_changes_the_metrics_and_reruns_only_what_depends_on_it(fresh, counted):
    import ui.pipeline
    import ui.pricing

    # other tests filled the caches with their scenarios: start from the defaults only
    ui.pipeline.clear()
    ui.pricing.scenario_curve.clear()
    ui.pricing.scenario_frontier.clear()
    at = fresh
    at.run()
    counted.clear()
    at.run()
    assert not counted, counted  # a plain rerun recomputes nothing
    start = _profit(at)
    for group in MOVES:
        defaults = [(key, _widget(at, f"pricing_{key}_widget").value) for key, _, _ in group]
        for key, value, stages in group:
            before = _profit(at)
            _set(at, **{key: value})
            assert _profit(at) != before, key
            assert set(counted) == stages, (key, counted)
            # one optimisation per move; demand, segments and bundles are never recomputed
            assert counted["run_on_choices"] == 1, (key, counted)
            counted.clear()
        # back to the defaults: the same numbers, all from the caches
        for key, value in reversed(defaults):
            _set(at, **{key: value})
        assert _profit(at) == start, group
        assert not counted, (group, counted)
    # the A/B control and the bundle picker re-run neither the draws nor the prices
    _set(at, ab=30)
    assert not counted, counted
    _set(at, bundle=1)
    assert set(counted) == {"price_curve"}, counted
