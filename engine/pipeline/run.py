"""The batch run: every stage on a set of files, the outputs written and a report.

``run`` is what ``python -m engine run`` calls; ``compute`` is the same chain
without writing, for ``bundles`` and ``price`` and for tests that compare the
command line with the dashboard (both call the stages of ``engine.pipeline.stages``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine import columns as C
from engine.data import Dataset
from engine.data.load import LoadResult
from engine.device import choose_device
from engine.export import write
from engine.files import atomic_write
from engine.pipeline import stages
from engine.pipeline.config import RunConfig
from engine.pricing import DemandModel, PricingRun

log = logging.getLogger(__name__)

STAGES = ("load", "encode", "preferences", "recommendations", "demand", "bundles", "pricing")

# (stage name, fraction done) for progress shown per stage
StageProgress = Callable[[str, float], None] | None


@dataclass(frozen=True)
class Computed:
    """Every stage's result of one run, in memory."""

    loaded: LoadResult
    embeddings: np.ndarray
    segments: stages.Segments
    recommendations: pd.DataFrame | None
    demand: DemandModel
    bundles: stages.BundleSet
    pricing: PricingRun
    price_list: pd.DataFrame
    timings: dict[str, float]

    @property
    def dataset(self) -> Dataset:
        return self.loaded.dataset


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    files: dict[str, Path]
    report: dict


def compute(
    files: Sequence,
    config: RunConfig,
    cache_dir: str | os.PathLike | None = None,
    progress: StageProgress = None,
    recommendations: bool = True,
) -> Computed:
    """Every stage in order on ``files`` with ``config``; DataValidationError when the
    files cannot be loaded, ConfigError when a setting does not fit the data."""
    timings: dict[str, float] = {}
    step = _Stopwatch(timings, progress)
    with step("load") as tick:
        loaded = stages.load(files, config.input, progress=tick)
        dataset = loaded.dataset
    with step("encode") as tick:
        embeddings = stages.embed(dataset, config.encoder, cache_dir, progress=tick)
    with step("preferences"):
        segments = stages.segment(dataset, embeddings, config.preferences, config.seed)
    recs = None
    if recommendations:
        with step("recommendations"):
            recs = stages.recommend(segments, dataset, embeddings, config.recommendations_k,
                                    purchased=config.purchased)
    with step("demand"):
        model = stages.demand(dataset, segments, config.demand, config.season)
    with step("bundles") as tick:
        text = embeddings if config.beam.text_substitutes else None
        found = stages.bundles(dataset, segments, text, model, config.beam, config.demand,
                               config.profit_draws, config.seed, progress=tick)
    with step("pricing"):
        priced = stages.price_offers(model, found, segments, config.demand, config.pricing)
        prices = stages.price_list(dataset, found, priced, segments)
    return Computed(loaded, embeddings, segments, recs, model, found, priced, prices, timings)


def run(
    files: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: RunConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: StageProgress = None,
    pseudonymise: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> RunResult:
    """Run every stage on ``files`` and write the outputs into ``out_dir``.

    Raises ``DataValidationError`` when the files cannot be loaded; nothing is
    written in that case. Customer ids are the shop's own unless
    ``config.pseudonymise``; then ``pseudonymise`` (the workspace's, so files
    and dashboard show the same pseudonyms) maps them.
    """
    config = config or RunConfig()
    if config.pseudonymise and pseudonymise is None:
        raise ValueError("config.pseudonymise is set but no pseudonymise function was given")
    done = compute(files, config, cache_dir, progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hide = _pseudonym_map(done.dataset, pseudonymise) if config.pseudonymise else None
    written = _write_outputs(out, done, hide)
    report = _report(files, config, done)
    report_path = out / "run_report.json"
    atomic_write(report_path, (json.dumps(report, indent=1, default=str) + "\n").encode())
    written["run_report"] = report_path
    return RunResult(out, written, report)


def _report(files, config: RunConfig, done: Computed) -> dict:
    loaded, priced = done.loaded, done.pricing
    return {
        "files": [str(getattr(f, "name", f)) for f in files],
        "device": str(choose_device(config.preferences.device)),
        "platform": platform.platform(),
        "timings_s": {k: round(v, 3) for k, v in done.timings.items()},
        "data": {**loaded.report.summary, "rows_read": loaded.report.rows_read,
                 "rows_kept": loaded.report.rows_kept, "set_aside": loaded.report.set_aside},
        "segments": int(done.segments.n),
        "bundles": int(len(done.bundles)),
        "unconverged_prices": int(sum(not r.converged for r in priced.results)),
        "warnings": [str(w) for w in loaded.report.warnings]
        + ([] if stages.has_text(done.dataset) else [stages.NO_TEXT])
        + done.demand.warnings()
        + [f"bundle {b}: {r.message}" for b, r in zip(done.bundles.ids, priced.results,
                                                      strict=True) if not r.converged],
        "customers": int(done.dataset.n_customers),
        "pseudonymised": bool(config.pseudonymise),
        "config": config.to_dict(),
    }


def _pseudonym_map(dataset: Dataset, pseudonymise) -> Callable[[str], str]:
    ids = dataset.customer_ids.astype(str)
    lookup = dict(zip(ids, pseudonymise(ids), strict=True))
    return lookup.__getitem__


def _write_outputs(out: Path, done: Computed, hide) -> dict[str, Path]:
    dataset, segs = done.dataset, done.segments
    ids = dataset.customer_ids.astype(str)
    shown = np.array([hide(c) for c in ids]) if hide else ids
    segment_file = pd.DataFrame(
        {C.CUSTOMER_ID: shown, C.SEGMENT: [segs.names[s] for s in segs.labels]}
    ).sort_values(C.CUSTOMER_ID, kind="stable")
    recs = done.recommendations
    if hide:
        recs = recs.assign(**{C.CUSTOMER_ID: recs[C.CUSTOMER_ID].astype(str).map(hide)})
    frames = {
        "segments": (segment_file, "segments.csv"),
        "recommendations": (recs, "recommendations.csv"),
        "bundles": (done.bundles.table(), "bundles.csv"),
        "offers": (stages.offers(dataset, segs, done.bundles, pseudonymise=hide), "offers.csv"),
        "price_list": (done.price_list, "price_list.csv"),
        "price_list_xlsx": (done.price_list, "price_list.xlsx"),
        "price_list_json": (done.price_list, "price_list.json"),
    }
    return {key: write(frame, out / name) for key, (frame, name) in frames.items()}


class _Stopwatch:
    """``with step("name") as tick:`` times a stage, logs it and reports progress
    (``tick(fraction)`` within the stage)."""

    def __init__(self, timings: dict[str, float], progress: StageProgress) -> None:
        self.timings, self.progress = timings, progress

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        tick = (lambda f: self.progress(name, float(f))) if self.progress else None
        if tick:
            tick(0.0)
        yield tick
        self.timings[name] = time.perf_counter() - start
        log.info("stage %s took %.2f s", name, self.timings[name])
        if tick:
            tick(1.0)
