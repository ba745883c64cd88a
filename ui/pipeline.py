"""The pipeline's stages as the pages call them: each an ``engine.pipeline.stages``
call, cached once per process on the dataset and the ``RunConfig`` slices it
depends on, so every page reads the same results and a setting re-runs only
the stages it reaches:

=============  ===========================================================
stage          depends on
=============  ===========================================================
embeddings     dataset, ``encoder``
segments       + ``preferences``, ``seed``
demand         + ``demand`` (less synergy and visitors per segment), ``season``
bundles        + ``beam``, ``demand.synergy``, ``profit_draws``
visitors       + ``pricing.n_customers``, ``pricing.seed``
priced         + ``demand.segment_visitors``, ``pricing``
=============  ===========================================================

A stage runs in a worker thread of its own, not in the page's script thread:
a page switch stops the script (Streamlit raises in the script thread), but
not the work, and the next page that needs the same stage waits for the same
job instead of starting over. While it waits, the page shows which stage runs
and how far it is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from engine.bundles import Bundle
from engine.data.dataset import Dataset
from engine.pipeline import InputConfig, RunConfig, stages
from engine.pricing import DemandModel, PricingRun
from engine.pricing.simulate import Choices
from ui import state

# finished results kept per stage (per process), the oldest dropped first
KEEP = 8

STAGE_LABELS = {
    "embeddings": "Encoding product texts",
    "segments": "Finding customer segments",
    "demand": "Calibrating demand",
    "ranker": "Preparing the profit ranking",
    "bundles": "Searching bundles",
    "customer_bundles": "Searching bundles for the customer",
    "visitors": "Simulating visitors",
    "priced": "Optimising prices",
}
ORDER = ("embeddings", "segments", "demand", "bundles", "visitors", "priced")


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """The dataset in use and the key it is cached under (a re-save gets a new folder)."""

    name: str
    folder: str
    dataset: Dataset = dataclasses.field(compare=False, hash=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.folder)


class _Job:
    def __init__(self) -> None:
        self.future: Future = Future()
        self.fraction = 0.0

    def progress(self, fraction: float) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)


class _Jobs:
    """Per stage, the jobs by key: running or done (failed ones are dropped)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, OrderedDict[Hashable, _Job]] = {}
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage")

    def get(self, stage: str, key: Hashable, fn: Callable[[Callable[[float], None]], Any]
            ) -> _Job:
        with self.lock:
            jobs = self.jobs.setdefault(stage, OrderedDict())
            job = jobs.get(key)
            if job is not None:
                jobs.move_to_end(key)
                return job
            job = _Job()
            jobs[key] = job
            while len(jobs) > KEEP:
                jobs.popitem(last=False)
        self.pool.submit(self._run, stage, key, job, fn)
        return job

    def _run(self, stage, key, job: _Job, fn) -> None:
        try:
            job.future.set_result(fn(job.progress))
        except BaseException as err:  # handed to the page that waits for it
            with self.lock:
                if self.jobs.get(stage, {}).get(key) is job:
                    del self.jobs[stage][key]
            job.future.set_exception(err)


@st.cache_resource(show_spinner=False)
def _jobs() -> _Jobs:
    return _Jobs()


def clear() -> None:
    """Forget every finished stage result of this process (running jobs finish)."""
    jobs = _jobs()
    with jobs.lock:
        for stage in jobs.jobs.values():
            for key in [k for k, job in stage.items() if job.future.done()]:
                del stage[key]


def _stage(stage: str, key: Hashable, fn: Callable[[Callable[[float], None]], Any]):
    """The stage's result for ``key``: run once per process, in a worker thread;
    a progress bar names the stage while the page waits for it."""
    job = _jobs().get(stage, key, fn)
    if not job.future.done():
        step = ORDER.index(stage) + 1 if stage in ORDER else None
        where = f"Step {step} of {len(ORDER)}: " if step else ""
        bar = st.progress(0.0, text=f"{where}{STAGE_LABELS[stage]}…")
        while not job.future.done():
            bar.progress(job.fraction, text=f"{where}{STAGE_LABELS[stage]}… "
                         f"{100 * job.fraction:.0f}%")
            time.sleep(0.15)
        bar.empty()
    return job.future.result()


# ---------------------------------------------------------------- the stages


def _demand_key(config: RunConfig):
    """What the bundles read of the demand settings (the visitors per segment only
    weight the scenario's draws)."""
    return dataclasses.replace(config.demand, segment_visitors=None)


def _calibration_key(config: RunConfig):
    """What the calibration reads of them (synergy only enters a bundle's worth)."""
    return dataclasses.replace(config.demand, segment_visitors=None, synergy=None)


def _segments_key(ds: DatasetRef, config: RunConfig) -> tuple:
    return (ds.key, config.encoder, config.preferences, config.seed)


def _bundles_key(ds: DatasetRef, config: RunConfig) -> tuple:
    return (*_segments_key(ds, config), _demand_key(config), config.season, config.beam,
            config.profit_draws)


def embeddings(ds: DatasetRef, config: RunConfig) -> np.ndarray:
    cache = str(state.workspace().embeddings_dir)
    return _stage("embeddings", (ds.key, config.encoder),
                  lambda tick: stages.embed(ds.dataset, config.encoder, cache, progress=tick))


def segments(ds: DatasetRef, config: RunConfig) -> stages.Segments:
    emb = embeddings(ds, config)
    return _stage("segments", _segments_key(ds, config),
                  lambda _: stages.segment(ds.dataset, emb, config.preferences, config.seed))


def demand(ds: DatasetRef, config: RunConfig) -> DemandModel:
    segs = segments(ds, config)
    return _stage("demand", (*_segments_key(ds, config), _calibration_key(config),
                             config.season),
                  lambda _: stages.demand(ds.dataset, segs, config.demand, config.season))


def _ranker(ds: DatasetRef, config: RunConfig):
    """One profit ranker per demand, so the profits it memoises serve every search
    (the segments' and each customer's) with the same settings."""
    segs, model = segments(ds, config), demand(ds, config)
    key = (*_segments_key(ds, config), _demand_key(config), config.season, config.profit_draws)
    return _stage("ranker", key, lambda _: stages.profit_ranker(
        model, segs.copurchase, config.demand, config.profit_draws, config.seed))


def bundles(ds: DatasetRef, config: RunConfig) -> stages.BundleSet:
    segs, model, ranker = segments(ds, config), demand(ds, config), _ranker(ds, config)
    emb = embeddings(ds, config) if config.beam.text_substitutes else None
    return _stage("bundles", _bundles_key(ds, config), lambda tick: stages.bundles(
        ds.dataset, segs, emb, model, config.beam, config.demand, config.profit_draws,
        config.seed, progress=tick, ranker=ranker))


def customer_bundles(ds: DatasetRef, config: RunConfig, customer: int) -> list[Bundle]:
    segs, model, ranker = segments(ds, config), demand(ds, config), _ranker(ds, config)
    emb = embeddings(ds, config) if config.beam.text_substitutes else None
    return _stage("customer_bundles", (*_bundles_key(ds, config), int(customer)),
                  lambda _: stages.customer_bundles(
                      ds.dataset, segs, emb, model, config.beam, config.demand,
                      config.profit_draws, config.seed, int(customer), ranker=ranker))


def visitors(ds: DatasetRef, config: RunConfig) -> Choices:
    found, model = bundles(ds, config), demand(ds, config)
    key = (*_bundles_key(ds, config), config.pricing.n_customers, config.pricing.seed)
    return _stage("visitors", key, lambda _: stages.visitors(model, found, config.pricing))


def scenario_key(ds: DatasetRef, config: RunConfig) -> tuple:
    """What the scenario's draws depend on (for the page's cached curves)."""
    return (*_bundles_key(ds, config), config.pricing.n_customers, config.pricing.seed,
            config.demand.segment_visitors)


def scenario(ds: DatasetRef, config: RunConfig) -> Choices:
    found, segs, drawn = bundles(ds, config), segments(ds, config), visitors(ds, config)
    return stages.scenario(drawn, found, segs, config.demand)


def priced(ds: DatasetRef, config: RunConfig) -> PricingRun:
    found, choices = bundles(ds, config), scenario(ds, config)
    return _stage("priced", (*scenario_key(ds, config), config.pricing),
                  lambda _: stages.prices(choices, found, config.pricing))


def price_list(ds: DatasetRef, config: RunConfig) -> pd.DataFrame:
    """The price list every page shows and Export downloads."""
    return stages.price_list(ds.dataset, bundles(ds, config), priced(ds, config),
                             segments(ds, config))


def offers(ds: DatasetRef, config: RunConfig, pseudonymise=None) -> pd.DataFrame:
    return stages.offers(ds.dataset, segments(ds, config), bundles(ds, config), pseudonymise)


def settings_for(ds: DatasetRef, config: RunConfig, report: dict) -> RunConfig:
    """The session's settings with the dataset's own input slice (its column mapping
    and the non-merchandise codes kept), as ``engine run --config`` needs them."""
    keep = state.workspace().entry(ds.name).get("keep_non_merchandise", [])
    mapping = report.get("mapping") or {}
    return dataclasses.replace(config, input=InputConfig.from_per_file(mapping, keep))
