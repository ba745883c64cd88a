"""Bundles page glue: the page's bundles from the shared cached chain, and its figure.

The bundles come from ``ui.pipeline.bundles``: the product's segments (the
hybrid preference model's, as on the Preferences and Pricing pages), beam
search, and the final ranking by the pricing stage's profit per visitor at the
optimised price. Everything is cached on explicit inputs (the dataset's name
and saved folder, the number of segments, the seed, the embedding cache, the
frozen ``BeamConfig``), so a widget that changes none of them (the segment, the
bundle drawn, the customer) re-runs nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.bundles import BeamConfig, Bundle, BundleInputs, beam_search, bundles_frame
from engine.bundles.segments import customer_affinity
from engine.data.dataset import Dataset
from engine.pricing import DemandConfig, PricingConfig
from engine.workspace import Workspace

log = logging.getLogger(__name__)

ACCENT = "#2f6f8f"
SECOND = "#d9822b"
MUTED = "#b8c4cc"


@dataclasses.dataclass(frozen=True)
class SegmentModel:
    labels: np.ndarray  # segment of each customer
    affinity: np.ndarray  # S × P
    names: tuple[str, ...]


def segment_model(name: str, folder: str, n_segments: int, seed: int, _dataset: Dataset):
    """The product's segments (the hybrid preference model's, as on the Preferences
    and Pricing pages), cached once in ``ui.pipeline.preferences``."""
    from ui import pipeline as upl  # late: ui.pipeline imports this module

    seg = upl.preferences(name, folder, n_segments, seed, _dataset)
    return SegmentModel(seg.segment_labels, seg.segment_affinity, seg.names)


def segment_names(dataset: Dataset, labels: np.ndarray, affinity: np.ndarray,
                  sizes: bool = True) -> tuple[str, ...]:
    """'1 · Coffee (432 customers)' style names: number plus the category the segment
    favours most, and (``sizes``) how many customers it has."""
    cats = dataset.products["category"].fillna("").astype(str)
    names = []
    for s, row in enumerate(affinity):
        by_cat = pd.Series(row).groupby(cats.to_numpy()).sum().drop("", errors="ignore")
        top = by_cat.idxmax() if len(by_cat) and by_cat.max() > 0 else ""
        size = int((labels == s).sum())
        names.append(f"{s + 1}" + (f" · {top}" if top else "")
                     + (f" ({size:,} customers)" if sizes else ""))
    return tuple(names)


@st.cache_resource(show_spinner="Preparing bundle inputs…", max_entries=8)
def bundle_inputs(
    name: str, folder: str, n_segments: int, seed: int, cache_dir: str | None, _dataset: Dataset
) -> BundleInputs:
    """What the beam reads (segment affinities, co-purchase, text embeddings when
    ``cache_dir`` is given), with the segments' display names."""
    from ui import pipeline as upl  # late: ui.pipeline imports this module

    seg = upl.preferences(name, folder, n_segments, seed, _dataset)
    emb = upl.embeddings(name, folder, cache_dir, _dataset) if cache_dir else None
    return BundleInputs.from_dataset(_dataset, seg.segment_affinity, seg.copurchase, emb,
                                     seg.names)


def run_beam(
    name: str,
    folder: str,
    n_segments: int,
    seed: int,
    cache_dir: str | None,
    config: BeamConfig,
    _dataset: Dataset,
) -> list[Bundle]:
    """The beam's bundles per segment, finally ranked by the profit per visitor
    each adds at its optimised price (cached in ``ui.pipeline.bundles``)."""
    from ui import pipeline as upl  # late: ui.pipeline imports this module

    names = upl.preferences(name, folder, n_segments, seed, _dataset).names
    found = upl.bundles(
        name, folder, n_segments, seed, config, DemandConfig(), PricingConfig(),
        upl.PROFIT_DRAWS, _dataset, embeddings_cache=cache_dir, segment_labels=names,
    )
    return list(found)


def profit_per_visitor(bundle: Bundle, inputs: BundleInputs) -> float:
    """The bundle's profit term in money: profit per visitor at its optimised price
    (the objective keeps it divided by the catalogue's median list price)."""
    return float(bundle.terms["profit_proxy"]) * inputs.price_scale()


@st.cache_data(show_spinner="Searching bundles for the customer…", max_entries=32)
def customer_bundles(
    name: str,
    folder: str,
    n_segments: int,
    seed: int,
    cache_dir: str | None,
    config: BeamConfig,
    customer: int,
    _dataset: Dataset,
) -> list[Bundle]:
    """Beam search run with one customer's own preference row (their purchases
    blended with their segment's affinity), ranked by their segment's profit."""
    from ui import pipeline as upl  # late: ui.pipeline imports this module

    inputs = bundle_inputs(name, folder, n_segments, seed, cache_dir, _dataset)
    model = segment_model(name, folder, n_segments, seed, _dataset)
    segment = int(model.labels[customer])
    row = customer_affinity(_dataset.matrix, customer, model.affinity[segment])
    label = "this customer"  # shown in reasons; never the shop's own id on a page
    personal = dataclasses.replace(inputs, affinity=row, segment_labels=(label,))
    ranker = upl.profit_ranker(name, folder, n_segments, seed, DemandConfig(), PricingConfig(),
                               upl.PROFIT_DRAWS, _dataset)
    return beam_search(personal, config, profit_fn=lambda _row, items: ranker(segment, items))


def workspace_cache_dir(root: Path) -> str:
    """The workspace's embedding cache: the same one the command line uses."""
    return str(Workspace(root).embeddings_dir)


# --- figures (pure functions of results) ----------------------------------------------


def network_figure(inputs: BundleInputs, bundle: Bundle, n_neighbours: int = 3) -> go.Figure:
    """The bundle's products and their strongest co-purchase partners as a network:
    nodes sized by the segment's affinity, edges drawn where shrunk lift > 1,
    wider for higher lift; bundle members in the accent colour."""
    members = list(bundle.products)
    cp = inputs.copurchase
    extra: list[int] = []
    for p in members:
        row = cp.counts[p].tocoo()
        if not row.nnz:
            continue
        lift = cp.lift_block(np.array([p]), row.col)[0]
        for j in row.col[np.argsort(-lift, kind="stable")][:n_neighbours]:
            if int(j) not in members and int(j) not in extra:
                extra.append(int(j))
    nodes = np.array(members + extra)
    lift = cp.lift_block(nodes, nodes)
    angle = np.linspace(0, 2 * np.pi, len(nodes), endpoint=False)
    radius = np.where(np.isin(nodes, members), 0.45, 1.0)
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    aff = inputs.norm_affinity(np.array([bundle.segment]))[0][nodes]

    fig = go.Figure()
    for i in range(len(nodes)):
        for j in range(i + 1, len(nodes)):
            if lift[i, j] <= 1.0:
                continue
            inside = nodes[i] in members and nodes[j] in members
            fig.add_trace(
                go.Scatter(
                    x=[x[i], x[j]],
                    y=[y[i], y[j]],
                    mode="lines",
                    line={"width": 1 + 1.5 * np.log(lift[i, j]), "color": ACCENT if inside else MUTED},
                    hoverinfo="text",
                    text=f"lift {lift[i, j]:.1f}",
                    showlegend=False,
                )
            )
    names = [str(inputs.names[n]) for n in nodes]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers+text",
            text=[n if len(n) <= 28 else n[:26] + "…" for n in names],
            textposition="top center",
            hovertext=[f"{n}<br>affinity {a:.2f}" for n, a in zip(names, aff, strict=True)],
            hoverinfo="text",
            marker={
                "size": 14 + 26 * aff,
                "color": [ACCENT if n in members else SECOND for n in nodes],
                "line": {"width": 1, "color": "white"},
            },
            showlegend=False,
            name="products",
        )
    )
    fig.update_layout(
        title="Co-purchase network (edges: lift > 1; blue: in the bundle)",
        xaxis={"visible": False, "range": [-1.5, 1.5]},
        yaxis={"visible": False, "range": [-1.3, 1.3], "scaleanchor": "x"},
        height=460,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def terms_frame(bundle: Bundle) -> pd.DataFrame:
    """The objective's terms of one bundle, for a small table on its card."""
    labels = {
        "affinity": "Segment affinity",
        "complementarity": "Complementarity (log lift)",
        "substitute_penalty": "Substitute penalty",
        "profit_proxy": "Profit per visitor ÷ median price",
    }
    return pd.DataFrame(
        {"term": [labels[k] for k in bundle.terms], "value": [bundle.terms[k] for k in bundle.terms]}
    )


__all__ = [
    "bundles_frame",
    "bundle_inputs",
    "customer_bundles",
    "profit_per_visitor",
    "network_figure",
    "run_beam",
    "segment_model",
    "terms_frame",
]
