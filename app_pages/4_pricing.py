"""Pricing: personalised bundle prices from the simulated market, with the
guardrails and demand assumptions on sliders, and price moves proposed from
observed results. The scenario's price list is downloaded on the Export page."""

import calendar
import dataclasses

import numpy as np
import streamlit as st

from engine.errors import DataValidationError
from engine.pipeline import SeasonConfig
from engine.pricing import ab_test
from engine.pricing.adjust import OBSERVED_HINT
from ui import pipeline, state
from ui import pricing as up

ss = st.session_state
state.init_state()

# result keys (no widget owns them): the latest run, its price list (the Export page
# downloads it) and the moves proposed from observed results
RUN = "pricing_run"
AB = "pricing_ab_table"
MOVES = "pricing_moves"
PRICE_LIST = "pricing_price_list"

st.title("Pricing")
st.caption(
    "Each simulated customer takes whatever gives the largest surplus: nothing, single "
    "products, all of them separately, or the bundle. Prices maximise expected profit within "
    "your guardrails."
)

name, dataset, folder = state.require_dataset()
ds = pipeline.DatasetRef(name, folder, dataset)
config = state.run_config()
found = pipeline.bundles(ds, config)
if not len(found):
    st.warning("No bundles for this dataset: loosen the settings on the Bundles page.")
    st.stop()
segs = pipeline.segments(ds, config)
labels = up.bundle_labels(found, segs)
model = pipeline.demand(ds, config)
src = model.sigma_source[0]
with st.expander("Where price sensitivity and costs come from"):
    st.dataframe(up.sources_frame(model, dataset), hide_index=True, width="stretch")
st.caption(
    f"Demand: price sensitivity from the {src} (sigma {model.sigma[0]:.2f}); "
    f"{(model.cost_source == 'assumed cost share').sum()} products without a cost use an "
    f"assumed cost share of {config.demand.cost_share:.0%}. Bundles and segments are set on "
    "the Bundles and Preferences pages."
)


@st.fragment
def simulator() -> None:
    config = state.run_config()
    pricing, demand = config.pricing, config.demand
    left, mid, right = st.columns(3)
    max_discount = left.slider("Largest discount %", 0, 60, round(100 * pricing.max_discount),
                               key="pricing_discount_widget")
    margin_floor = left.slider("Margin floor %", 0, 60, round(100 * pricing.margin_floor),
                               key="pricing_margin_widget")
    endings = [".99", ".49", "none"]
    now = "none" if pricing.price_ending is None else f"{pricing.price_ending:.2f}"[1:]
    ending = left.selectbox("Price ending", endings,
                            index=endings.index(now) if now in endings else 0,
                            key="pricing_ending_widget")
    spread = mid.slider("Largest price spread between segments %", 0, 50,
                        round(100 * pricing.max_segment_spread), key="pricing_spread_widget")
    use_e = mid.checkbox("Set price sensitivity by hand", value=demand.force_elasticity,
                         key="pricing_use_elasticity_widget",
                         help="Changes the demand model, so the bundles are chosen again")
    elasticity = mid.slider("Elasticity at list price", 0.5, 6.0, float(demand.elasticity), 0.1,
                            key="pricing_elasticity_widget", disabled=not use_e)
    syn_auto = right.checkbox("No synergy unless I set it", value=demand.synergy is None,
                              key="pricing_synergy_auto_widget",
                              help="Co-purchase lift is read as joint interest (the same "
                              "visitors want both), not as a set worth more than its parts. "
                              "With [demand] synergy_from_promotions each bundle's synergy is "
                              "read from promotions instead (when one product was cheaper, "
                              "did the segment's visits buying the others with it change as "
                              "a set worth more whole would make them?); the table's 'synergy "
                              "from' says where each came from. Setting one changes what a "
                              "bundle is worth, so the bundles are chosen again")
    synergy = right.slider("Synergy %", 0, 30, round(100 * (demand.synergy or 0.05)),
                           key="pricing_synergy_widget", disabled=syn_auto)
    month = right.selectbox("Season", list(range(13)), index=config.season.month,
                            key="pricing_month_widget",
                            format_func=lambda m: "whole year" if m == 0 else calendar.month_name[m],
                            help="Demand in that month: each product's seasonal index "
                            "from the order history")
    sizes = segs.sizes()
    given = demand.segment_visitors if demand.segment_visitors is not None else sizes
    with st.expander("Segment mix (visitors per period)"):
        mix = np.array([
            st.slider(segs.names[s], 0, int(3 * sizes[s]) + 10, int(given[s]),
                      key=f"pricing_mix_{s}_widget")
            for s in range(segs.n)
        ], float)

    if mix.sum() <= 0:
        st.warning("Every segment has 0 visitors: give at least one segment some visitors.")
        return
    try:
        pricing = dataclasses.replace(
            pricing, max_discount=max_discount / 100, margin_floor=margin_floor / 100,
            price_ending=None if ending == "none" else float(ending),
            max_segment_spread=spread / 100)
        demand = dataclasses.replace(
            demand, elasticity=float(elasticity) if use_e else demand.elasticity,
            force_elasticity=bool(use_e), synergy=None if syn_auto else synergy / 100,
            segment_visitors=None if np.array_equal(mix, sizes) else tuple(mix))
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        return
    config = state.set_slice(pricing=pricing, demand=demand, season=SeasonConfig(int(month)))
    # every result comes from the one pipeline, cached on what it depends on
    run = pipeline.priced(ds, config)
    found = pipeline.bundles(ds, config)
    labels = up.bundle_labels(found, segs)
    ch = run.choices
    ss[RUN] = run
    ss[PRICE_LIST] = pipeline.price_list(ds, config)

    up.metrics(run, st.columns(5))
    st.caption("± : 95 % Monte-Carlo interval of the simulation; arrows: against selling the "
               "products on their own (no bundles).")
    flagged = [r for r in run.results if not r.converged]
    for r in flagged:
        st.warning(f"{labels[r.bundle]}: {r.message}")

    table = up.bundle_table(run, labels, found)
    num = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, width="stretch", key="pricing_table", column_config={
        "list total": num(format="%.2f"), "price": num(format="%.2f"),
        "discount %": num(format="%.1f"), "take rate": num(format="%.3f"),
        "profit": num(format="%.0f"), "singles lost": num(format="%.0f"),
        "synergy %": num(format="%.0f"),
    })
    with st.expander("Where demand comes from: bundles bought whole in the data and in the "
                     "simulation"):
        fit = up.share_fit(pipeline.scenario_key(ds, config), model, found, config,
                           tuple(labels))
        if fit is not None:
            pct = fit.copy()
            for col in [c for c in pct if c.endswith("%")]:
                pct[col] = 100 * pct[col]
            st.plotly_chart(up.share_fit_figure(pct), key="pricing_share_fit")
            st.dataframe(pct, hide_index=True, width="stretch", key="pricing_share_fit_table",
                         column_config={c: num(format="%.2f") for c in pct if c.endswith("%")})
            st.caption("Visitors who want one product of a bundle often want the others too: "
                       "the market draws their interest jointly so that the simulated share "
                       "buying all of a bundle matches the data's, as the single shares do.")
    st.page_link("app_pages/5_export.py", icon=":material/download:",
                 label="Download this scenario's price list (CSV, Excel, JSON) and the offers "
                 "per customer on the Export page")
    pick = st.selectbox("Bundle", range(len(found)), format_func=lambda b: labels[b],
                        key="pricing_bundle_widget")
    res = run.results[pick]
    scenario = pipeline.scenario_key(ds, config)
    curve = up.scenario_curve(scenario, pick, ch)
    one_profit = float(run.simulation.per_bundle["profit"].iat[pick])
    a, b = st.columns(2)
    a.plotly_chart(up.curve_figure(curve, res.price, one_profit), key="chart_price_curve")
    front = up.scenario_frontier(scenario, config.pricing.max_discount, ch)
    b.plotly_chart(up.frontier_figure(front, run), key="chart_frontier")
    a, b = st.columns(2)
    a.plotly_chart(up.baseline_figure(run.baselines), key="chart_baselines")
    b.plotly_chart(up.cannibalisation_figure(run, labels), key="chart_cannibalisation")

    st.subheader("Simulated A/B test")
    c1, c2 = st.columns([2, 1])
    control = float(c1.slider("Control: flat discount % (0 = list prices)", 0, 50, 10,
                              key="pricing_ab_widget"))
    power = c2.select_slider("Power", [0.7, 0.8, 0.9, 0.95], 0.8, key="pricing_power_widget",
                             help="Chance of detecting the simulated difference")
    ab = ab_test(ch, ch.list_total * (1 - control / 100), run.prices, power=power)
    ss[AB] = ab.table
    st.dataframe(up.ab_frame(ab.table), hide_index=True, width="stretch")
    st.caption(
        "Control prices against the recommended ones on two independent halves of the "
        f"simulated visitors; 95 % intervals; visitors needed per arm at {power:.0%} power."
    )

    st.subheader("Adjust from observed results")
    upload = st.file_uploader(
        "Observed results CSV (bundle_id, period, price, units, optional visitors)",
        type=["csv"], key="pricing_observed_widget", help=OBSERVED_HINT,
    )
    if upload is not None:
        try:
            moves = up.propose_moves(upload.name, upload.getvalue(),
                                     (scenario, config.pricing), ds, config)
        except DataValidationError as err:
            # the scenario's prices and earlier proposed moves (MOVES) stay as they were
            for issue in err.issues:
                st.error(str(issue))
            st.caption("Nothing was changed: fix the file and upload it again.")
        else:
            ss[MOVES] = moves
            st.dataframe(up.moves_frame(moves, found.ids, labels), hide_index=True,
                         width="stretch",
                         key="pricing_moves_table", column_config={
                             "current price": num(format="%.2f"),
                             "proposed price": num(format="%.2f"),
                             "predicted take rate": num(format="%.3f"),
                             "observed take rate": num(format="%.3f"),
                         })
            st.caption("Proposed moves only: the prices above stay until you change them.")


simulator()
