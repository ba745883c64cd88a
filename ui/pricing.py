"""Pricing page glue: cached demand, draws and scenario results, the observed-results
upload, and the page's figures.

Upstream work (segments, bundles, demand calibration) comes from ``ui.pipeline``.
Below it, each result is cached on exactly the settings it depends on:

- the simulated visitors' draws (``choices``): elasticity and season;
- the scenario's draws (``scenario_choices``): those plus synergy and segment mix,
  which re-weight the same draws (common random numbers);
- the optimised prices and baselines (``scenario_run``): those plus the guardrails;
- the price curve of one bundle (``scenario_curve``): the demand settings and the bundle;
- the revenue/margin frontier (``scenario_frontier``): the demand settings and the
  largest discount;
- the proposed moves from an observed-results file (``propose_moves``): the file
  and the scenario.

So a guardrail slider re-optimises without new draws, the bundle picker redraws
one curve, and the A/B control slider re-runs only the A/B comparison.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import columns as C
from engine.data.dataset import Dataset
from engine.errors import DataValidationError, Issue
from engine.pricing import (
    DemandConfig,
    DemandModel,
    PricingConfig,
    PricingRun,
    adjust_prices,
    bundle_synergy,
    month_index,
    price_curve,
    run_on_choices,
    seasonal_index,
)
from engine.pricing.simulate import Choices, Market, evaluate, prepare_choices
from ui import pipeline

ACCENT = "#2f6f8f"
SECOND = "#d9822b"
MUTED = "#b8c4cc"


@dataclasses.dataclass(frozen=True)
class Offer:
    """The bundles on the pricing page: product indices, segment, ids and names."""

    bundles: tuple[tuple[int, ...], ...]
    segments: tuple[int, ...]
    bundle_ids: tuple[str, ...]
    labels: tuple[str, ...]
    segment_names: tuple[str, ...]
    segment_labels: np.ndarray


def offer(name: str, folder: str, n_segments: int, dataset: Dataset) -> Offer:
    """The bundles of the shared chain (``ui.pipeline.priced``): the same bundles, ids
    and segments as the Bundles and Export pages, so a scenario here carries over."""
    done = pipeline.priced(name, folder, n_segments, pipeline.SEED, _dataset=dataset)
    names = done.segments.names
    labels = tuple(
        f"{names[b.segment].split(' (')[0]}: {' + '.join(b.names)}" for b in done.bundles
    )
    return Offer(
        bundles=tuple(tuple(int(i) for i in b.products) for b in done.bundles),
        segments=tuple(int(b.segment) for b in done.bundles),
        bundle_ids=tuple(done.bundle_ids),
        labels=labels,
        segment_names=tuple(names),
        segment_labels=done.segments.segment_labels,
    )


def demand_model(
    name: str, folder: str, n_segments: int, _dataset: Dataset, _labels: np.ndarray
) -> DemandModel:
    """The shared chain's calibrated demand (same segments as ``offer``)."""
    del _labels  # the chain's own segments
    return pipeline.demand(name, folder, n_segments, pipeline.SEED, DemandConfig(), _dataset)


@st.cache_resource(show_spinner=False, max_entries=8)
def season(name: str, folder: str, _dataset: Dataset) -> pd.DataFrame:
    del name, folder
    return seasonal_index(_dataset)


@st.cache_resource(show_spinner=False, max_entries=8)
def lift_synergy(
    name: str, folder: str, n_segments: int, bundles: tuple, _dataset: Dataset
) -> np.ndarray:
    """Synergy per bundle from the chain's co-purchase lift (DemandConfig defaults)."""
    stats = pipeline.preferences(name, folder, n_segments, pipeline.SEED, _dataset).copurchase
    blocks = [stats.lift_block(np.array(b), np.array(b)) for b in bundles]
    return bundle_synergy(blocks, DemandConfig())


def market(
    name: str, folder: str, n_segments: int, elasticity: float | None, month: int,
    dataset: Dataset, off: Offer,
) -> Market:
    """The calibrated market under the page's demand settings."""
    model = demand_model(name, folder, n_segments, dataset, off.segment_labels)
    if elasticity is not None:
        model = model.with_elasticity(elasticity)
    if month:
        model = model.for_month(month_index(dataset, season(name, folder, dataset), month))
    return model.market()


@st.cache_resource(show_spinner="Simulating customers…", max_entries=16)
def choices(
    name: str,
    folder: str,
    n_segments: int,
    elasticity: float | None,
    month: int,
    n_customers: int,
    offer_key: tuple,
    _dataset: Dataset,
    _offer: Offer,
) -> Choices:
    """Simulated visitors for the offer; only demand settings invalidate it."""
    del offer_key
    m = market(name, folder, n_segments, elasticity, month, _dataset, _offer)
    return prepare_choices(m, _offer.bundles, _offer.segments, 0.0, n_customers, seed=0)


@dataclasses.dataclass(frozen=True)
class DemandSettings:
    """The page's demand sliders. Only ``elasticity`` and ``month`` change the
    simulated visitors; ``synergy`` and ``mix`` re-weight the same draws."""

    elasticity: float | None  # None: price sensitivity from the data
    month: int  # 0: the whole year
    synergy: float | None  # None: from the co-purchase lift
    mix: tuple[float, ...]  # visitors per period in each segment


@st.cache_resource(show_spinner=False, max_entries=16)
def scenario_choices(
    name: str, folder: str, n_segments: int, settings: DemandSettings, n_customers: int,
    _dataset: Dataset, _offer: Offer,
) -> Choices:
    """The simulated visitors with the scenario's synergy and segment mix."""
    ch = choices(name, folder, n_segments, settings.elasticity, settings.month, n_customers,
                 _offer.bundles + (_offer.segments,), _dataset, _offer)
    syn = (lift_synergy(name, folder, n_segments, _offer.bundles, _dataset)
           if settings.synergy is None else settings.synergy)
    return ch.with_synergy(syn).with_segment_size(np.asarray(settings.mix, float))


@st.cache_resource(show_spinner="Optimising prices…", max_entries=16)
def scenario_run(
    name: str, folder: str, n_segments: int, settings: DemandSettings, config: PricingConfig,
    _dataset: Dataset, _offer: Offer,
) -> PricingRun:
    """Optimised prices, outcomes and baselines of the scenario."""
    ch = scenario_choices(name, folder, n_segments, settings, config.n_customers, _dataset,
                          _offer)
    return run_on_choices(ch, _offer.bundles, config)


@st.cache_resource(show_spinner=False, max_entries=64)
def scenario_curve(
    name: str, folder: str, n_segments: int, settings: DemandSettings, n_customers: int,
    bundle: int, _dataset: Dataset, _offer: Offer,
) -> pd.DataFrame:
    """Revenue and profit of one bundle against its price (no guardrails involved)."""
    ch = scenario_choices(name, folder, n_segments, settings, n_customers, _dataset, _offer)
    return price_curve(ch, bundle)


@st.cache_resource(show_spinner=False, max_entries=16)
def scenario_frontier(
    name: str, folder: str, n_segments: int, settings: DemandSettings, n_customers: int,
    max_discount: float, _dataset: Dataset, _offer: Offer,
) -> pd.DataFrame:
    ch = scenario_choices(name, folder, n_segments, settings, n_customers, _dataset, _offer)
    return frontier(ch, max_discount)


@st.cache_resource(show_spinner="Re-calibrating to the observed results…", max_entries=8)
def propose_moves(
    file_name: str, data: bytes, name: str, folder: str, n_segments: int,
    settings: DemandSettings, config: PricingConfig, _dataset: Dataset, _offer: Offer,
) -> pd.DataFrame:
    """Re-calibrate the scenario's demand to an uploaded observed-results CSV and
    re-optimise: one row per observed bundle with the old and new price and the reason.

    A malformed file raises DataValidationError naming the file, column and rows;
    nothing else changes (the scenario's prices stay as they are)."""
    observed = read_observed(file_name, data, _offer.bundle_ids)
    run = scenario_run(name, folder, n_segments, settings, config, _dataset, _offer)
    mix = np.asarray(settings.mix, float)
    m = market(name, folder, n_segments, settings.elasticity, settings.month, _dataset,
               _offer).with_segment_mix(mix, mix.sum())
    adj = adjust_prices(m, _offer.bundles, _offer.segments, _offer.bundle_ids, run.prices,
                        observed, config, synergy=run.choices.synergy)
    return adj.moves


def moves_frame(moves: pd.DataFrame, off: Offer) -> pd.DataFrame:
    """The proposed moves as the page shows them: bundle name, prices, direction, reason."""
    label = dict(zip(off.bundle_ids, off.labels, strict=True))
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


def bundle_table(run: PricingRun, off: Offer) -> pd.DataFrame:
    sim = run.simulation.per_bundle
    res = run.results_frame()
    return pd.DataFrame(
        {
            "bundle": off.labels,
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


def cannibalisation_figure(run: PricingRun, off: Offer) -> go.Figure:
    """Per bundle: bundles sold and the single-product sales they replace."""
    sim = run.simulation.per_bundle
    short = [lab if len(lab) <= 40 else lab[:38] + "…" for lab in off.labels]
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


OBSERVED_HINT = (
    "one row per bundle and period: bundle_id (from the exported price list), period, "
    "price (the price it was sold at), units (bundles sold), optional visitors (who saw it)"
)


FILL = "fill it in or delete the row"


def read_observed(
    file_name: str, data: bytes, bundle_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """An uploaded observed-results CSV (bundle_id, period, price, units[, visitors]),
    checked row by row. Every problem is an Issue naming the file, the column and the
    rows as a spreadsheet numbers them (header = row 1); any problem raises
    DataValidationError. ``bundle_ids``: the priced bundles, when known."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' ParserError is a ValueError
        raise DataValidationError([Issue(file_name, None, "readable_csv", f"not a CSV: {err}",
                                         hint="save the file as CSV (UTF-8)")]) from err
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    issues = [
        Issue(file_name, col, "required_columns",
              f"no '{col}' column (found {list(frame.columns)})", hint=OBSERVED_HINT)
        for col in C.OBSERVED_COLUMNS if col not in frame.columns
    ]
    if not issues and frame.empty:
        issues.append(Issue(file_name, None, "has_rows", "no data rows", hint=OBSERVED_HINT))
    if issues:
        raise DataValidationError(issues)

    def rows(mask) -> tuple[int, ...]:
        return tuple(int(i) + 2 for i in np.flatnonzero(np.asarray(mask))[:5])

    def check(column: str, rule: str, message: str, mask, hint: str = OBSERVED_HINT) -> None:
        if np.any(mask):
            issues.append(Issue(file_name, column, rule,
                                f"{int(np.sum(mask))} row(s) {message}", rows(mask), hint))

    text = frame.apply(lambda col: col.str.strip())
    check(C.BUNDLE_ID, "not_blank", "without a bundle id", text[C.BUNDLE_ID] == "", FILL)
    check(C.PERIOD, "not_blank", "without a period", text[C.PERIOD] == "", FILL)
    if bundle_ids is not None:
        unknown = (text[C.BUNDLE_ID] != "") & ~text[C.BUNDLE_ID].isin([str(b) for b in bundle_ids])
        check(C.BUNDLE_ID, "known_bundle", "name a bundle that is not in the price list", unknown,
              hint="use the bundle_id column of the exported price list")
    out = frame.copy()
    out[C.BUNDLE_ID] = text[C.BUNDLE_ID]
    numbers = {C.PRICE: "a price above 0", C.UNITS: "a count of 0 or more",
               C.VISITORS: "a count above 0 (or blank)"}
    for col, wanted in numbers.items():
        if col not in text:
            continue
        value = pd.to_numeric(text[col], errors="coerce")
        blank = text[col] == ""
        if col == C.VISITORS:
            bad = ~blank & ~(value > 0)
        else:
            bad = blank | ~(value >= 0 if col == C.UNITS else value > 0)
        shown = ", ".join(repr(v) for v in text[col][bad].head(3))
        check(col, "number", f"where it is not {wanted} ({shown})", bad,
              "plain numbers, '.' for decimals, no currency signs")
        out[col] = value
    if C.VISITORS in out:
        check(C.UNITS, "units_within_visitors", "sold more units than they had visitors",
              out[C.UNITS] > out[C.VISITORS],
              "visitors: everyone who was offered the bundle in that period")
    if issues:
        raise DataValidationError(issues)
    return out


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
