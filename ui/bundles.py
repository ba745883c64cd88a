"""Bundles page figures and tables (pure functions of the bundles and their inputs).

The bundles themselves come from ``ui.pipeline.bundles``: the one pipeline's
segments, beam search and ranking, the same bundles the Pricing page prices
and the Export page exports.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.bundles import Bundle, BundleInputs
from ui.theme import ACCENT, MUTED, SECOND

log = logging.getLogger(__name__)


def profit_per_visitor(bundle: Bundle, inputs: BundleInputs) -> float:
    """The bundle's profit term in money: profit per visitor at its best price
    (the objective keeps it divided by the catalogue's median list price)."""
    return float(bundle.terms["profit_proxy"]) * inputs.price_scale()


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


__all__ = ["network_figure", "profit_per_visitor", "terms_frame"]
