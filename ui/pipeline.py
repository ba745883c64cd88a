"""The shared cached chain of the Bundles, Pricing and Export pages:

dataset → embeddings → preferences → demand → bundles → priced offers.

Each stage is a thin cached wrapper around an ``engine.pipeline`` stage function,
keyed on explicit inputs only: the dataset's name and saved folder (a re-save
gets a new folder, so nothing is served stale), the number of segments, the seed
and the frozen configs. Arguments that must not be hashed start with ``_``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from engine import pipeline
from engine.bundles import BeamConfig, Bundle, bundles_frame
from engine.data.dataset import Dataset
from engine.pricing import DemandConfig, DemandModel, PricingConfig, PricingRun, calibrate_demand
from engine.recommend import CoPurchaseStats, PreferenceConfig, fit_preferences
from ui import bundles as ub
from ui import state

log = logging.getLogger(__name__)

N_SEGMENTS = 5
SEED = 0
PROFIT_DRAWS = 500  # simulated visitors per candidate bundle when ranking by profit


@dataclasses.dataclass(frozen=True)
class Segments:
    """What the later stages read of the preferences (``engine.recommend.Preferences``
    has the same three attributes), plus display names."""

    segment_labels: np.ndarray  # segment of each customer
    segment_affinity: np.ndarray  # S × P
    copurchase: CoPurchaseStats
    names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Priced:
    """The priced offers: the beam's bundles, their table (with ``bundle_id``) and the run."""

    bundles: tuple[Bundle, ...]
    table: pd.DataFrame
    run: PricingRun
    segments: Segments

    @property
    def bundle_ids(self) -> list[str]:
        return self.table["bundle_id"].tolist()

    def offers_by_segment(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for b, bid in zip(self.bundles, self.bundle_ids, strict=True):
            out.setdefault(int(b.segment), []).append(bid)
        return out


def cache_dir(root: Path) -> str:
    """The workspace's embedding cache (shared with the Bundles page)."""
    return ub.workspace_cache_dir(root)


@st.cache_resource(show_spinner="Encoding product texts…", max_entries=4)
def embeddings(name: str, folder: str, cache: str, _dataset: Dataset) -> np.ndarray:
    del name, folder  # cache keys only
    from engine.encoder import encode_products  # late import: loads torch/transformers

    return encode_products(_dataset.products, cache_dir=cache)


@st.cache_resource(show_spinner="Finding customer segments…", max_entries=8)
def preferences(
    name: str, folder: str, n_segments: int, seed: int, _dataset: Dataset
) -> Segments:
    """Customer segments and their affinities from the hybrid preference model,
    shared by the Bundles, Pricing and Export pages. The number of segments is
    fixed here, so the silhouette search over k is skipped."""
    emb = embeddings(name, folder, cache_dir(state.workspace().root), _dataset)
    cfg = dataclasses.replace(
        PreferenceConfig(), n_segments=n_segments, k_range=(n_segments, n_segments)
    )
    prefs = fit_preferences(_dataset, emb, cfg, seed=seed)
    names = tuple(ub.segment_names(_dataset, prefs.segment_labels, prefs.segment_affinity))
    return Segments(prefs.segment_labels, prefs.segment_affinity, prefs.copurchase, names)


@st.cache_resource(show_spinner="Calibrating demand…", max_entries=8)
def demand(
    name: str, folder: str, n_segments: int, seed: int, config: DemandConfig, _dataset: Dataset
) -> DemandModel:
    prefs = preferences(name, folder, n_segments, seed, _dataset)
    return calibrate_demand(_dataset, prefs.segment_labels, config)


@st.cache_resource(show_spinner=False, max_entries=8)
def profit_ranker(
    name: str,
    folder: str,
    n_segments: int,
    seed: int,
    demand_config: DemandConfig,
    pricing: PricingConfig,
    profit_draws: int,
    _dataset: Dataset,
):
    """``engine.pipeline.profit_ranker`` on the cached demand model: profit per visitor
    a bundle adds at its optimised price. One per settings, so the profits it has
    computed (it memoises them) serve every later search with the same settings."""
    prefs = preferences(name, folder, n_segments, seed, _dataset)
    model = demand(name, folder, n_segments, seed, demand_config, _dataset)
    return pipeline.profit_ranker(model, prefs.copurchase, demand_config, pricing, profit_draws)


@st.cache_resource(show_spinner="Searching bundles…", max_entries=16)
def bundles(
    name: str,
    folder: str,
    n_segments: int,
    seed: int,
    beam: BeamConfig,
    demand_config: DemandConfig,
    pricing: PricingConfig,
    profit_draws: int,
    _dataset: Dataset,
    embeddings_cache: str | None = None,
    segment_labels: tuple[str, ...] | None = None,
) -> tuple[Bundle, ...]:
    """The beam's bundles per segment, finally ranked by simulated profit.

    With ``embeddings_cache`` (the workspace's cache folder) the product texts'
    embeddings flag substitutes, as on the Bundles page; without, no text test.
    ``segment_labels`` replace the pipeline's S1, S2, … in the bundles' labels and
    reasons (the Bundles page shows its segment names; price lists keep S1…)."""
    prefs = preferences(name, folder, n_segments, seed, _dataset)
    emb = embeddings(name, folder, embeddings_cache, _dataset) if embeddings_cache else None
    inputs = pipeline.bundle_inputs(_dataset, prefs, emb)
    if segment_labels is not None:
        inputs = dataclasses.replace(inputs, segment_labels=tuple(segment_labels))
    ranker = profit_ranker(
        name, folder, n_segments, seed, demand_config, pricing, profit_draws, _dataset
    )
    return tuple(pipeline.find_bundles(inputs, beam, profit_fn=ranker))


@st.cache_resource(show_spinner="Pricing the bundles…", max_entries=16)
def priced(
    name: str,
    folder: str,
    n_segments: int = N_SEGMENTS,
    seed: int = SEED,
    beam: BeamConfig | None = None,
    demand_config: DemandConfig | None = None,
    pricing: PricingConfig | None = None,
    profit_draws: int = PROFIT_DRAWS,
    *,
    _dataset: Dataset,
) -> Priced:
    """Optimised prices of the bundles (the defaults are what the Export page shows)."""
    beam = beam or BeamConfig()
    demand_config = demand_config or DemandConfig()
    pricing = pricing or PricingConfig()
    found = bundles(name, folder, n_segments, seed, beam, demand_config, pricing, profit_draws,
                    _dataset)
    prefs = preferences(name, folder, n_segments, seed, _dataset)
    model = demand(name, folder, n_segments, seed, demand_config, _dataset)
    run = pipeline.price_offers(model, prefs.copurchase, found, demand_config, pricing)
    return Priced(found, bundles_frame(list(found)), run, prefs)
