"""Pricing: personalised bundle prices from the simulated market, with the
guardrails and demand assumptions on sliders, and price moves proposed from
observed results. The scenario's price list is downloaded on the Export page."""

import calendar

import numpy as np
import streamlit as st

from engine import export
from engine.errors import DataValidationError
from engine.pricing import PricingConfig, ab_test
from engine.pricing.demand import FROM_DATA
from ui import pricing as up
from ui import state

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
n_segments = up.pipeline.N_SEGMENTS
off = up.offer(name, folder, n_segments, dataset)
if not off.bundles:
    st.warning("No bundles for this dataset: loosen the settings on the Bundles page.")
    st.stop()
model = up.demand_model(name, folder, n_segments, dataset, off.segment_labels)
src = model.sigma_source[0]
with st.expander("Where price sensitivity and costs come from"):
    st.dataframe(up.sources_frame(model, dataset), hide_index=True, width="stretch")
st.caption(
    f"Demand: price sensitivity from the {src} (sigma {model.sigma[0]:.2f}); "
    f"{(model.cost_source == 'assumed cost share').sum()} products without a cost use an "
    "assumed cost share of 60 %."
)


@st.fragment
def simulator() -> None:
    left, mid, right = st.columns(3)
    max_discount = left.slider("Largest discount %", 0, 60, 30, key="pricing_discount_widget")
    margin_floor = left.slider("Margin floor %", 0, 60, 10, key="pricing_margin_widget")
    ending = left.selectbox("Price ending", [".99", ".49", "none"], key="pricing_ending_widget")
    spread = mid.slider("Largest price spread between segments %", 0, 50, 20,
                        key="pricing_spread_widget")
    use_e = mid.checkbox("Set price sensitivity by hand", value=src != FROM_DATA,
                         key="pricing_use_elasticity_widget")
    elasticity = mid.slider("Elasticity at list price", 0.5, 6.0, 2.0, 0.1,
                            key="pricing_elasticity_widget", disabled=not use_e)
    syn_auto = right.checkbox("Synergy from co-purchase lift", value=True,
                              key="pricing_synergy_auto_widget")
    synergy = right.slider("Synergy %", 0, 30, 5, key="pricing_synergy_widget",
                           disabled=syn_auto)
    month = right.selectbox("Season", list(range(13)), key="pricing_month_widget",
                            format_func=lambda m: "whole year" if m == 0 else calendar.month_name[m],
                            help="Demand in that month: each product's seasonal index "
                            "from the order history")
    with st.expander("Segment mix (visitors per period)"):
        sizes = np.bincount(off.segment_labels, minlength=n_segments).astype(float)
        mix = np.array([
            st.slider(off.segment_names[s], 0, int(3 * sizes[s]) + 10, int(sizes[s]),
                      key=f"pricing_mix_{s}_widget")
            for s in range(n_segments)
        ], float)

    if mix.sum() <= 0:
        st.warning("Every segment has 0 visitors: give at least one segment some visitors.")
        return
    config = PricingConfig(
        max_discount=max_discount / 100, margin_floor=margin_floor / 100,
        price_ending=None if ending == "none" else float(ending),
        max_segment_spread=spread / 100, n_customers=10_000, seed=0,
    )
    settings = up.DemandSettings(
        elasticity=float(elasticity) if use_e else None, month=int(month),
        synergy=None if syn_auto else synergy / 100, mix=tuple(float(x) for x in mix),
    )
    # each result is cached on what it depends on (see ui.pricing): a slider re-runs only that
    scenario = (name, folder, n_segments, settings)
    run = up.scenario_run(*scenario, config, dataset, off)
    ch = run.choices
    ss[RUN] = run
    # the Export page downloads this scenario's price list (it reads PRICE_LIST)
    ss[PRICE_LIST] = export.price_list(dataset, off.bundles, run.results, run.simulation,
                                       bundle_ids=off.bundle_ids, segment_names=off.segment_names)

    up.metrics(run, st.columns(5))
    st.caption("± : 95 % Monte-Carlo interval of the simulation; arrows: against selling the "
               "products on their own (no bundles).")
    flagged = [r for r in run.results if not r.converged]
    for r in flagged:
        st.warning(f"{off.labels[r.bundle]}: {r.message}")

    table = up.bundle_table(run, off)
    num = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, width="stretch", key="pricing_table", column_config={
        "list total": num(format="%.2f"), "price": num(format="%.2f"),
        "discount %": num(format="%.1f"), "take rate": num(format="%.3f"),
        "profit": num(format="%.0f"), "singles lost": num(format="%.0f"),
    })
    st.page_link("app_pages/5_export.py", icon=":material/download:",
                 label="Download this scenario's price list (CSV, Excel, JSON) and the offers "
                 "per customer on the Export page")
    pick = st.selectbox("Bundle", range(len(off.bundles)), format_func=lambda b: off.labels[b],
                        key="pricing_bundle_widget")
    res = run.results[pick]
    curve = up.scenario_curve(*scenario, config.n_customers, pick, dataset, off)
    one_profit = float(run.simulation.per_bundle["profit"].iat[pick])
    a, b = st.columns(2)
    a.plotly_chart(up.curve_figure(curve, res.price, one_profit), key="chart_price_curve")
    front = up.scenario_frontier(*scenario, config.n_customers, config.max_discount, dataset,
                                 off)
    b.plotly_chart(up.frontier_figure(front, run), key="chart_frontier")
    a, b = st.columns(2)
    a.plotly_chart(up.baseline_figure(run.baselines), key="chart_baselines")
    b.plotly_chart(up.cannibalisation_figure(run, off), key="chart_cannibalisation")

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
        type=["csv"], key="pricing_observed_widget", help=up.OBSERVED_HINT,
    )
    if upload is not None:
        try:
            moves = up.propose_moves(upload.name, upload.getvalue(), *scenario, config,
                                     dataset, off)
        except DataValidationError as err:
            # the scenario's prices and earlier proposed moves (MOVES) stay as they were
            for issue in err.issues:
                st.error(str(issue))
            st.caption("Nothing was changed: fix the file and upload it again.")
        else:
            ss[MOVES] = moves
            st.dataframe(up.moves_frame(moves, off), hide_index=True, width="stretch",
                         key="pricing_moves_table", column_config={
                             "current price": num(format="%.2f"),
                             "proposed price": num(format="%.2f"),
                             "predicted take rate": num(format="%.3f"),
                             "observed take rate": num(format="%.3f"),
                         })
            st.caption("Proposed moves only: the prices above stay until you change them.")


simulator()
