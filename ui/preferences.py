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


def customer_view(prefs: Preferences, dataset: Dataset, emb: np.ndarray, customer: int, k: int = 10):
    """(history, recommendations) frames of one customer (index)."""
    row = prefs.model.X_[customer]
    history = pd.DataFrame({
        C.PRODUCT_ID: dataset.product_ids[row.indices],
        C.NAME: dataset.products[C.NAME].to_numpy()[row.indices],
        C.CATEGORY: dataset.products[C.CATEGORY].to_numpy()[row.indices],
        "recency_weight": np.round(row.data, 3),
    }).sort_values("recency_weight", ascending=False, kind="stable")
    recs = recommend_top_k(prefs, dataset, emb, k, customers=np.array([customer]))
    recs.insert(3, C.NAME, dataset.products[C.NAME].to_numpy()[dataset.product_index(recs[C.PRODUCT_ID])])
    return history, recs.drop(columns=[C.CUSTOMER_ID])


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
