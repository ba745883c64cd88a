"""Streamlit glue of the Preferences page: cached wrappers and Plotly figure builders.

The preferences and segments come from ``ui.pipeline.segments`` (the one
pipeline's). The evaluation is cached on explicit inputs only: the dataset's
name and saved folder (a re-save gets a new folder) and the frozen
PreferenceConfig; arguments starting with ``_`` are not hashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import columns as C
from engine.data.dataset import Dataset
from engine.recommend import EvaluationResult, PreferenceConfig, Preferences, evaluate
from engine.recommend.preferences import recommend_top_k


@st.cache_data(show_spinner="Evaluating against baselines…", max_entries=4)
def evaluation(
    name: str, folder: str, config: PreferenceConfig, holdout_weeks: int, k: int,
    _dataset: Dataset, _emb: np.ndarray,
) -> EvaluationResult:
    """The three tables (engine/recommend/evaluate.py, frozen and picklable):
    ``.next_purchase`` (repeats allowed), ``.new_products`` (also ``.table``),
    ``.cold_start`` (cold products in the whole catalogue), ``.protocol``, ``.k``."""
    del name, folder
    return evaluate(_dataset, _emb, holdout_weeks, k, config)


PART_MEANING = {
    "w_collab": "bought with what the customer bought (EASE / item-kNN)",
    "w_ease": "share of EASE in that part (the rest item-kNN)",
    "w_trend": "selling now (orders of the last weeks)",
    "w_segment": "bought by the customer's segment",
    "w_transfer": "reads like products the customer's history points to",
    "w_content": "reads like what the customer bought",
    "w_popularity": "popular with everyone",
}


def weights_table(model) -> tuple[pd.DataFrame, str]:
    """The hybrid's weights in use with what each part means, and how they were chosen."""
    cfg, tuning = model.config_, model.tuning_
    table = pd.DataFrame({
        "part": [name.removeprefix("w_") for name in PART_MEANING],
        "weight": [getattr(cfg, name) for name in PART_MEANING],
        "what it rewards": list(PART_MEANING.values()),
    })
    if tuning.get("tuned"):
        note = (f"Chosen on the last {tuning['validation_weeks']} weeks of history "
                f"({tuning['validation_customers']} customers): NDCG@20 "
                f"{tuning['ndcg@20_start']:.3f} with the starting weights, "
                f"{tuning['ndcg@20_chosen']:.3f} with these.")
    else:
        note = f"Starting weights, not tuned: {tuning.get('reason', '')}."
    if tuning.get("temperature_fitted"):
        how = "fitted on the same weeks: the one that makes those purchases most likely"
    elif model.config.temperature is None:
        how = "the default: no validation window to fit it on"
    else:
        how = "as configured"
    note += (f" Preferences are a softmax of these scores at temperature "
             f"{cfg.temperature:.2f} ({how}); segment affinities are members' mean preferences.")
    return table, note


def next_purchase_note(model) -> str:
    """How the next-purchase list was fitted for this shop (``tuning_["next_purchase"]``):
    the share of the window's purchases that were repeats and whether the sequence
    model (GRU) entered, or why it was not fitted. Never raises: a missing field says so."""
    tuning = getattr(model, "tuning_", None) or {}
    report = tuning.get("next_purchase")
    fallback = ("bought products ranked by how often the customer bought them, "
                "then the hybrid's new ones")
    if not isinstance(report, dict):
        return f"Next purchase: not fitted ({tuning.get('reason', 'no validation window')}); {fallback}."
    if not report.get("fitted"):
        return f"Next purchase: not fitted ({report.get('reason', 'no reason given')}); {fallback}."
    note = "Next purchase: P(bought in the next weeks) learned on the same weeks"
    if isinstance(report.get("validation_customers"), int | float):
        note += f" ({report['validation_customers']:,} customers)"
    share = report.get("repeat_share_of_bought")
    if isinstance(share, int | float):
        note += f"; {share:.0%} of what they bought in the window they had bought before"
    note += "."
    sequence = report.get("sequence", "off")
    if sequence == "off":
        return note + " Sequence model (GRU) off."
    with_gru, without = report.get("ndcg@20_with_sequence"), report.get("ndcg@20_without_sequence")
    seconds = report.get("sequence_train_seconds")
    note += " Sequence model (GRU" + (f", trained in {seconds:.0f} s" if isinstance(seconds, int | float) else "")
    note += ") " + ("entered" if sequence == "kept" else "left out")
    if isinstance(with_gru, int | float) and isinstance(without, int | float):
        note += f": validation NDCG@20 {with_gru:.3f} with it, {without:.3f} without"
    return note + "."


def customer_view(prefs: Preferences, dataset: Dataset, emb: np.ndarray, customer: int, k: int = 10):
    """(history, next purchase, new to the customer) frames of one customer (index).

    The history: what the customer bought, in how many orders, how many days since
    the last one and how often they usually buy it (``prefs.model.history_``; empty
    where no cycle is known), most bought first. The
    next purchase ranks bought products among the rest (score: P(bought in the
    next weeks), ``repeat`` marks bought ones); the new list only products new to
    the customer (score: the hybrid's)."""
    names = dataset.products[C.NAME].to_numpy()
    hist = prefs.model.history_
    pos = hist.rows(np.array([customer], np.int64))
    products = hist.products[pos]
    # short, the numbers first: the page shows it in a third of the width
    history = pd.DataFrame({
        "orders": hist.orders[pos].astype(int),
        "days ago": np.round(hist.last_days[pos]).astype(int),
        "every (days)": np.round(hist.cycle_days[pos]),
        C.NAME: names[products],
    }).sort_values(["orders", "days ago"], ascending=[False, True], kind="stable")

    def top(purchased: str) -> pd.DataFrame:
        recs = recommend_top_k(prefs, dataset, emb, k, customers=np.array([customer]),
                               purchased=purchased)
        recs.insert(3, C.NAME, names[dataset.product_index(recs[C.PRODUCT_ID])])
        return recs.drop(columns=[C.CUSTOMER_ID])

    return history, top("include"), top("exclude").drop(columns=["repeat"])


def similar_products(prefs: Preferences, dataset: Dataset, emb: np.ndarray, product: int, n: int = 8):
    """(text neighbours, co-purchase neighbours) of a product, side by side."""
    names = dataset.products[C.NAME].to_numpy()
    sim = emb @ emb[product]
    sim[product] = -np.inf
    text = np.argsort(-sim, kind="stable")[:n]
    text_df = pd.DataFrame({C.NAME: names[text], "text similarity": np.round(sim[text], 3)})
    counts = prefs.copurchase.counts[product]
    cols = counts.indices
    if len(cols):
        lift = prefs.copurchase.lift_block(np.array([product]), cols)[0]
        order = np.lexsort((cols, -counts.data, -lift))[:n]
        co_df = pd.DataFrame({C.NAME: names[cols[order]], "lift": np.round(lift[order], 2),
                              "orders together": counts.data[order].astype(int)})
    else:
        co_df = pd.DataFrame(columns=[C.NAME, "lift", "orders together"])
    return text_df, co_df


# --- figures (pure functions of results) ----------------------------------------------


def segment_sizes_figure(sizes: pd.Series, names: Sequence[str] | None = None) -> go.Figure:
    """Customers per segment; ``names`` label the bars (default 'Segment 1', ...)."""
    fig = go.Figure(go.Bar(x=_labels(sizes.index, names), y=sizes.to_numpy()))
    fig.update_layout(title="Customers per segment", yaxis_title="customers", height=320)
    return fig


def category_heatmap(category_affinity: pd.DataFrame, names: Sequence[str] | None = None) -> go.Figure:
    """Segment × category affinity (share of the segment's preference mass)."""
    z = category_affinity.to_numpy()
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in category_affinity.columns],
        y=_labels(category_affinity.index, names), colorscale="Blues",
        colorbar={"title": "affinity"},
    ))
    fig.update_layout(title="What each segment prefers", height=360)
    return fig


def k_curve_figure(curve: pd.DataFrame, k: int, suggested: int) -> go.Figure:
    """Held-out log-likelihood per k with one-standard-error bars, the line one
    standard error under the best (the ks above it explain purchases as well, within
    noise), the suggested k and, when the analyst chose another, the k in use."""
    fig = go.Figure(go.Scatter(
        x=curve["k"], y=curve["log_likelihood"], mode="lines+markers", name="held-out",
        error_y={"type": "data", "array": curve["se"].to_numpy(), "visible": True},
        customdata=np.c_[curve["times_likelier"], curve["se"]],
        hovertemplate="k = %{x}<br>log-likelihood %{y:.4f} ± %{customdata[1]:.4f}"
                      "<br>%{customdata[0]:.3f}× as likely as popularity<extra></extra>",
    ))
    if len(curve):
        best = curve.loc[curve["log_likelihood"].idxmax()]
        fig.add_hline(y=float(best["log_likelihood"] - best["se"]), line_dash="dot",
                      annotation_text="one standard error under the best")
    marks = [(suggested, "suggested", "#2ca02c")]
    if k != suggested:
        marks.append((k, "chosen by you", "#d62728"))
    for at, label, colour in marks:
        row = curve[curve["k"] == at]
        if len(row):
            fig.add_trace(go.Scatter(x=row["k"], y=row["log_likelihood"], mode="markers",
                                     marker={"size": 14, "color": colour, "symbol": "star"},
                                     name=f"k = {at} ({label})"))
    fig.update_layout(title="How well k segments explain held-out purchases",
                      xaxis_title="segments (k)", xaxis={"dtick": 1},
                      yaxis_title="log-likelihood per held-out purchase", height=340)
    return fig


def _labels(segments, names: Sequence[str] | None) -> list[str]:
    """The segments' names as the other pages show them, else 'Segment 1', ..."""
    return [names[int(i)] if names is not None else f"Segment {int(i) + 1}" for i in segments]
