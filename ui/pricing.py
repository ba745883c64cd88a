"""Pricing page glue: the scenario's curves, the observed-results upload, and the
page's figures.

The bundles, demand, simulated visitors and prices come from ``ui.pipeline``
(the one pipeline, cached on the settings slices each depends on): a guardrail
slider re-optimises without new draws; synergy and the visitors per segment
re-weight the same draws. Below that, the curves are cached on the scenario:

- the price curve of one bundle (``scenario_curve``): the scenario and the bundle;
- the revenue/margin frontier (``scenario_frontier``): the scenario and the
  largest discount;
- the proposed moves from an observed-results file (``propose_moves``): the file
  and the scenario.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import columns as C
from engine.data.dataset import Dataset
from engine.pipeline import BundleSet, RunConfig, Segments
from engine.pricing import DemandModel, PricingRun, adjust_prices, interest_fit, price_curve
from engine.pricing.adjust import read_observed
from engine.pricing.simulate import Choices, evaluate
from ui import pipeline
from ui.theme import ACCENT, MUTED, SECOND


def bundle_labels(found: BundleSet, segs: Segments) -> list[str]:
    """'S1 · Kitchen: Espresso beans + Milk frother' for each bundle."""
    return [f"{segs.names[b.segment]}: {' + '.join(b.names)}" for b in found.bundles]


@st.cache_data(show_spinner=False, max_entries=64)
def scenario_curve(key: tuple, bundle: int, _choices: Choices) -> pd.DataFrame:
    """Revenue and profit of one bundle against its price (no guardrails involved)."""
    del key
    return price_curve(_choices, bundle)


@st.cache_data(show_spinner=False, max_entries=16)
def scenario_frontier(key: tuple, max_discount: float, _choices: Choices) -> pd.DataFrame:
    del key
    return frontier(_choices, max_discount)


@st.cache_data(show_spinner="Re-calibrating to the observed results…", max_entries=8)
def propose_moves(file_name: str, data: bytes, key: tuple, _ds: pipeline.DatasetRef,
                  _config: RunConfig) -> pd.DataFrame:
    """Re-calibrate the scenario's demand to an uploaded observed-results CSV and
    re-optimise: one row per observed bundle with the old and new price and the reason.

    A malformed file raises DataValidationError naming the file, column and rows;
    nothing else changes (the scenario's prices stay as they are)."""
    del key
    found = pipeline.bundles(_ds, _config)
    observed = read_observed(file_name, data, found.ids)
    run = pipeline.priced(_ds, _config)
    model: DemandModel = pipeline.demand(_ds, _config)
    sizes = pipeline.segments(_ds, _config).sizes()
    mix = np.asarray(_config.demand.segment_visitors or sizes, float)
    market = model.market().with_segment_mix(mix, mix.sum())
    adj = adjust_prices(market, found.items, found.segments, list(found.ids), run.prices,
                        observed, _config.pricing, synergy=run.choices.synergy)
    return adj.moves


def moves_frame(moves: pd.DataFrame, ids: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """The proposed moves as the page shows them: bundle name, prices, direction, reason."""
    label = dict(zip(ids, labels, strict=True))
    change = moves["new_price"] - moves["old_price"]
    return pd.DataFrame(
        {
            "bundle": moves[C.BUNDLE_ID].map(label),
            "bundle_id": moves[C.BUNDLE_ID],
            "current price": moves["old_price"],
            "proposed price": moves["new_price"],
            "move": np.where(np.isclose(change, 0.0), "keep",
                             np.where(change < 0, "down", "up")),
            "predicted take rate": moves["predicted_take_rate"],
            "observed take rate": moves["observed_take_rate"],
            "reason": moves["reason"],
        }
    )


# --- figures (pure functions of results) ----------------------------------------------


@st.cache_data(show_spinner="Comparing the simulated shares with the data…", max_entries=8)
def share_fit(key: tuple, _model: DemandModel, _found: BundleSet, _config: RunConfig,
              labels: tuple[str, ...]) -> pd.DataFrame | None:
    """Per bundle: share of its segment's visits buying all of it, in the data and
    in the simulation (joint and independent interest), and the single shares."""
    del key
    if _model.lift is None:
        return None
    fit = interest_fit(_model, _found.items, _found.segments, _found.synergy,
                       _config.pricing.n_customers, _config.pricing.seed)
    fit["bundle"] = list(labels)
    return fit.drop(columns=["segment"]).rename(columns={
        "products": "products", "observed_all": "data: all %",
        "simulated_all": "simulated: all %", "independent_all": "if independent: all %",
        "observed_single": "data: each %", "simulated_single": "simulated: each %"})


def share_fit_figure(fit: pd.DataFrame) -> go.Figure:
    """Simulated against observed share buying the whole bundle, joint and
    independent interest; on the diagonal the market reproduces the data."""
    fig = go.Figure()
    top = float(fit[["data: all %", "simulated: all %"]].to_numpy().max() or 1.0)
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="data = simulation",
                    line={"color": MUTED, "dash": "dot"})
    fig.add_scatter(x=fit["data: all %"], y=fit["simulated: all %"], mode="markers",
                    name="joint interest (used)", text=fit["bundle"], marker={"color": ACCENT})
    fig.add_scatter(x=fit["data: all %"], y=fit["if independent: all %"], mode="markers",
                    name="independent interest", text=fit["bundle"], marker={"color": SECOND})
    fig.update_xaxes(title="share of the segment's visits buying all of it: data (%)")
    fig.update_yaxes(title="simulated (%)")
    return _style(fig, "Where demand comes from: bundles bought whole, data vs simulation")


def _style(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
        plot_bgcolor="white", legend=dict(orientation="h", y=-0.2),
    )
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    return fig


def curve_figure(curve: pd.DataFrame, price: float, profit: float) -> go.Figure:
    """Revenue and profit per period against the bundle price, optimum marked."""
    fig = go.Figure()
    fig.add_scatter(x=curve["bundle_price"], y=curve["revenue"], name="revenue",
                    line=dict(color=MUTED))
    fig.add_scatter(x=curve["bundle_price"], y=curve["profit"], name="profit",
                    line=dict(color=ACCENT))
    fig.add_scatter(x=[price], y=[profit], mode="markers", name="recommended price",
                    marker=dict(color=SECOND, size=12, symbol="diamond"))
    fig.update_xaxes(title="bundle price")
    fig.update_yaxes(title="per period (bundle and its products)")
    return _style(fig, "Revenue and profit against the bundle price")


def frontier(ch: Choices, max_discount: float, n: int = 21) -> pd.DataFrame:
    """Total revenue and margin when every bundle gets the same discount, 0 .. max."""
    rows = []
    for d in np.linspace(0.0, max_discount, n):
        tot = evaluate(ch, ch.list_total * (1 - d)).totals.iloc[0]
        rows.append({"discount": d, "revenue": tot["revenue"], "margin": tot["margin"],
                     "profit": tot["profit"]})
    return pd.DataFrame(rows)


def frontier_figure(front: pd.DataFrame, run: PricingRun) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=front["revenue"], y=100 * front["margin"], mode="lines+markers",
                    name="same discount on every bundle", line=dict(color=MUTED),
                    text=[f"{d:.0%} off" for d in front["discount"]])
    tot = run.simulation.totals.iloc[0]
    fig.add_scatter(x=[tot["revenue"]], y=[100 * tot["margin"]], mode="markers",
                    name="recommended prices", marker=dict(color=SECOND, size=12))
    fig.update_xaxes(title="revenue per period")
    fig.update_yaxes(title="margin %")
    return _style(fig, "Revenue against margin")


def baseline_figure(table: pd.DataFrame) -> go.Figure:
    colors = [SECOND if s == "optimised" else ACCENT for s in table["strategy"]]
    fig = go.Figure(go.Bar(x=table["strategy"], y=table["profit"], marker_color=colors,
                           error_y=dict(type="data", array=1.96 * table["profit_se"])))
    fig.update_yaxes(title="profit per period")
    return _style(fig, "Profit: baselines and the recommended prices")


def bundle_table(run: PricingRun, labels: Sequence[str],
                 found: BundleSet | None = None) -> pd.DataFrame:
    """One row per bundle: price, outcome, and (with ``found``) its synergy and
    where the synergy came from."""
    sim = run.simulation.per_bundle
    res = run.results_frame()
    table = pd.DataFrame(
        {
            "bundle": list(labels),
            "list total": run.choices.list_total,
            "price": res["price"],
            "discount %": 100 * (1 - res["price"] / run.choices.list_total),
            "take rate": sim["take_rate"],
            "profit": sim["profit"],
            "singles lost": sim["cannibalised_units"],
            "guardrail": res["binding"],
            "converged": res["converged"],
        }
    )
    if found is not None:
        table["synergy %"] = 100 * np.asarray(run.choices.synergy, float)
        table["synergy from"] = list(found.synergy_source) or ""
    return table


def metrics(run: PricingRun, slots) -> None:
    """Revenue, profit, take rate, margin and cannibalised singles of the recommended
    prices, each with its 95 % Monte-Carlo interval, as deltas against no bundles."""
    base = run.baselines.set_index("strategy")
    tot, none = base.loc["optimised"], base.loc["components only"]
    sim = run.simulation.per_bundle
    visitors = float(np.sum(run.choices.segment_size))
    rate, rate_se = sim["units"].sum() / visitors, np.sqrt((sim["units_se"] ** 2).sum()) / visitors
    # the ± sits in the label: a value with it would be cut off in a fifth of the page
    slots[0].metric(f"Profit per period (±{1.96 * tot['profit_se']:,.0f})",
                    f"{tot['profit']:,.0f}",
                    f"{tot['profit'] - none['profit']:+,.0f} vs no bundles")
    slots[1].metric(f"Revenue per period (±{1.96 * tot['revenue_se']:,.0f})",
                    f"{tot['revenue']:,.0f}",
                    f"{tot['revenue'] - none['revenue']:+,.0f} vs no bundles")
    slots[2].metric(f"Bundle take rate (±{196 * rate_se:.1f} pts)", f"{100 * rate:.1f}%",
                    help="Bundles sold per visitor offered one")
    slots[3].metric("Margin", f"{100 * tot['margin']:.1f}%",
                    f"{100 * (tot['margin'] - none['margin']):+.1f} pts vs no bundles")
    slots[4].metric(f"Single sales cannibalised (±{1.96 * tot['cannibalised_units_se']:,.0f})",
                    f"{tot['cannibalised_units']:,.0f}",
                    help="Units of the bundle's products the bundle buyers would have bought "
                    "on their own")


def cannibalisation_figure(run: PricingRun, labels: Sequence[str]) -> go.Figure:
    """Per bundle: bundles sold and the single-product sales they replace."""
    sim = run.simulation.per_bundle
    short = [lab if len(lab) <= 40 else lab[:38] + "…" for lab in labels]
    fig = go.Figure()
    fig.add_bar(y=short, x=sim["units"], name="bundles sold", orientation="h",
                marker_color=ACCENT)
    fig.add_bar(y=short, x=sim["cannibalised_units"], name="single sales replaced",
                orientation="h", marker_color=SECOND)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="units per period")
    fig.update_yaxes(autorange="reversed")
    return _style(fig, "Cannibalisation: bundles sold and single sales they replace",
                  height=max(360, 22 * len(short) + 120))


def sources_frame(model: DemandModel, dataset: Dataset) -> pd.DataFrame:
    """Per product: sigma and cost and where each came from, with the product name."""
    frame = model.sources(dataset.product_ids)
    frame.insert(1, "name", dataset.products["name"].to_numpy())
    return frame


def ab_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The A/B result as the page shows it: each mean with its 95 % interval in one cell."""

    def cell(row, col: str) -> str:
        return f"{row[col]:,.2f} [{row[col + '_low']:,.2f}, {row[col + '_high']:,.2f}]"

    return pd.DataFrame(
        {
            "metric": table["metric"],
            "control": [cell(r, "control") for _, r in table.iterrows()],
            "recommended": [cell(r, "treatment") for _, r in table.iterrows()],
            "difference": [cell(r, "difference") for _, r in table.iterrows()],
            "lift %": table["lift_pct"].round(1),
            "visitors per arm (simulated)": table["visitors_per_arm"],
            "visitors needed per arm": table["visitors_needed"],
        }
    )
