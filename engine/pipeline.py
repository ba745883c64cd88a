"""The whole flow from one typed config: data → encoder → recommend → bundles →
pricing → export. The CLI's ``run`` and the dashboard pages call these stage
functions; each takes plain inputs and returns plain results, so a page can
cache each stage on its own inputs and a slider re-runs only what follows it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine import columns as C
from engine.bundles import BeamConfig, Bundle, BundleInputs, beam_search, bundles_frame
from engine.bundles.objective import ObjectiveWeights
from engine.data import Dataset, load_files
from engine.device import choose_device
from engine.encoder import EncoderConfig, encode_products
from engine.export import offer_list, price_list, write
from engine.files import atomic_write
from engine.pricing import (
    PricingConfig,
    PricingRun,
    evaluate,
    optimise_prices,
    prepare_choices,
    price_bundles,
)
from engine.pricing.demand import DemandConfig, DemandModel, bundle_synergy, calibrate_demand
from engine.pricing.simulate import Choices
from engine.recommend.copurchase import CoPurchaseStats
from engine.recommend.hybrid import PreferenceConfig
from engine.threads import single_threaded

if TYPE_CHECKING:
    from engine.recommend import Preferences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run; ``from_file`` reads the same shape from TOML or JSON:

    ``{"seed": 0, "recommendations_k": 10, "beam": {"kmax": 4}, "pricing": {...}}``
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    preferences: PreferenceConfig = field(default_factory=PreferenceConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    demand: DemandConfig = field(default_factory=DemandConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    recommendations_k: int = 10
    profit_draws: int = 2_000  # simulated visitors when ranking candidate bundles by profit
    pseudonymise: bool = False
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown settings in config: {unknown}; known: {sorted(known)}")
        kwargs = {}
        for name, value in data.items():
            default = known[name].default_factory() if callable(known[name].default_factory) else None
            if is_dataclass(default) and isinstance(value, dict):
                kwargs[name] = _nested(type(default), value, name)
            else:
                kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> RunConfig:
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        return asdict(self)


def _nested(kind: type, value: dict, name: str):
    allowed = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"unknown settings in [{name}]: {unknown}; known: {sorted(allowed)}")
    if kind is BeamConfig and isinstance(value.get("weights"), dict):
        value = {**value, "weights": ObjectiveWeights(**value["weights"])}
    tuples = {k: tuple(v) for k, v in value.items() if isinstance(v, list)}
    return kind(**{**value, **tuples})


# ---------------------------------------------------------------- stages


def segment_names(preferences: Preferences) -> list[str]:
    return [f"S{s + 1}" for s in range(preferences.segment_affinity.shape[0])]


def bundle_inputs(
    dataset: Dataset, preferences: Preferences, embeddings: np.ndarray
) -> BundleInputs:
    return BundleInputs.from_dataset(
        dataset,
        preferences.segment_affinity,
        preferences.copurchase,
        embeddings,
        segment_labels=segment_names(preferences),
    )


def profit_ranker(
    demand: DemandModel,
    copurchase: CoPurchaseStats,
    demand_config: DemandConfig,
    pricing: PricingConfig,
    draws: int,
) -> Callable[[int, Sequence[int]], float]:
    """``profit_fn`` for the beam's final ranking: the profit per visitor the
    bundle adds at its optimised price (mixed bundling, over the singles' profit)."""
    market = demand.market()
    cfg = replace(pricing, n_customers=max(100, draws))
    cache: dict[tuple, float] = {}

    def profit(segment: int, items: Sequence[int]) -> float:
        key = (int(segment), tuple(sorted(int(i) for i in items)))
        if key not in cache:
            idx = np.array(key[1])
            synergy = bundle_synergy([copurchase.lift_block(idx, idx)], demand_config)
            choices = prepare_choices(market, [key[1]], [key[0]], synergy, cfg.n_customers, cfg.seed)
            best = optimise_prices(choices, cfg)[0]
            # with and without the bundle in one evaluation (the same visitors twice)
            profits = evaluate(_twice(choices), np.array([best.price, 1e30])).per_bundle["profit"]
            with_bundle, without = profits.iat[0], profits.iat[1]
            # per visitor, not per period: on the objective's scale whatever the segment size
            cache[key] = float(with_bundle - without) / max(float(choices.segment_size[0]), 1.0)
        return cache[key]

    return profit


def _twice(choices: Choices) -> Choices:
    """``choices`` with its one bundle twice, to evaluate two prices in one call."""
    def double(value):
        return value if value is None or np.ndim(value) == 0 else np.concatenate([value, value])

    return Choices(**{f.name: double(getattr(choices, f.name)) for f in fields(choices)})


def find_bundles(
    inputs: BundleInputs,
    config: BeamConfig,
    profit_fn: Callable[[int, Sequence[int]], float] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[Bundle]:
    return beam_search(inputs, config, profit_fn=profit_fn, progress=progress)


def price_offers(
    demand: DemandModel,
    copurchase: CoPurchaseStats,
    bundles: Sequence[Bundle],
    demand_config: DemandConfig,
    pricing: PricingConfig,
) -> PricingRun:
    """Optimised prices and simulated outcomes of the beam's (segment, bundle) offers."""
    items = [tuple(int(i) for i in b.products) for b in bundles]
    synergy = bundle_synergy(
        [copurchase.lift_block(np.array(i), np.array(i)) for i in items], demand_config
    )
    segments = [b.segment for b in bundles]
    return price_bundles(demand.market(), items, segments, pricing, synergy)


# ---------------------------------------------------------------- the batch run


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    files: dict[str, Path]
    report: dict


def run(
    files: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: RunConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[float], None] | None = None,
    pseudonymise: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> RunResult:
    """Run every stage on ``files`` and write the outputs into ``out_dir``.

    Raises ``DataValidationError`` when the files cannot be loaded; nothing is
    written in that case. Customer ids are the shop's own unless
    ``config.pseudonymise``; then ``pseudonymise`` (the workspace's, so files
    and dashboard show the same pseudonyms) maps them.
    """
    from engine.recommend import fit_preferences, recommend_top_k

    config = config or RunConfig()
    out = Path(out_dir)
    timings: dict[str, float] = {}
    step = _Stopwatch(timings, progress, n_stages=7)

    with step("load"):
        loaded = load_files(list(files))
        dataset = loaded.dataset
    with step("encode"):
        embeddings = encode_products(dataset.products, config.encoder, cache_dir)
    with step("preferences"):
        prefs = fit_preferences(dataset, embeddings, config.preferences, seed=config.seed)
    with step("recommendations"):
        recs = recommend_top_k(prefs, dataset, embeddings, config.recommendations_k)
    with step("demand"), single_threaded():
        demand = calibrate_demand(dataset, prefs.segment_labels, config.demand)
    with step("bundles"), single_threaded():
        inputs = bundle_inputs(dataset, prefs, embeddings)
        ranker = profit_ranker(
            demand, prefs.copurchase, config.demand, config.pricing, config.profit_draws
        )
        bundles = find_bundles(inputs, config.beam, profit_fn=ranker)
    with step("pricing"), single_threaded():
        priced = price_offers(demand, prefs.copurchase, bundles, config.demand, config.pricing)

    out.mkdir(parents=True, exist_ok=True)
    names = segment_names(prefs)
    table = bundles_frame(bundles)
    prices = price_list(
        dataset, [b.products for b in bundles], priced.results, priced.simulation,
        bundle_ids=table["bundle_id"].tolist(), segment_names=names,
    )
    hide = _pseudonym_map(dataset, pseudonymise) if config.pseudonymise else None
    written = _write_outputs(out, dataset, prefs, recs, table, prices, names, hide)
    report = {
        "files": [str(f) for f in files],
        "device": str(choose_device(config.preferences.device)),
        "platform": platform.platform(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "data": {**loaded.report.summary, "rows_read": loaded.report.rows_read,
                 "rows_kept": loaded.report.rows_kept, "set_aside": loaded.report.set_aside},
        "segments": int(len(names)),
        "bundles": int(len(bundles)),
        "unconverged_prices": int(sum(not r.converged for r in priced.results)),
        "warnings": [str(w) for w in loaded.report.warnings]
        + demand.warnings()
        + [f"bundle {b}: {r.message}" for b, r in zip(table["bundle_id"], priced.results,
                                                      strict=True) if not r.converged],
        "customers": int(dataset.n_customers),
        "pseudonymised": bool(config.pseudonymise),
        "config": config.to_dict(),
    }
    report_path = out / "run_report.json"
    atomic_write(report_path, (json.dumps(report, indent=1, default=str) + "\n").encode())
    written["run_report"] = report_path
    return RunResult(out, written, report)


def _pseudonym_map(dataset: Dataset, pseudonymise) -> Callable[[str], str]:
    if pseudonymise is None:
        raise ValueError("config.pseudonymise is set but no pseudonymise function was given")
    ids = dataset.customer_ids.astype(str)
    lookup = dict(zip(ids, pseudonymise(ids), strict=True))
    return lookup.__getitem__


def _write_outputs(out, dataset, prefs, recs, table, prices, names, hide) -> dict[str, Path]:
    ids = dataset.customer_ids.astype(str)
    shown = np.array([hide(c) for c in ids]) if hide else ids
    segments = pd.DataFrame(
        {C.CUSTOMER_ID: shown, C.SEGMENT: [names[s] for s in prefs.segment_labels]}
    ).sort_values(C.CUSTOMER_ID, kind="stable")
    if hide:
        recs = recs.assign(**{C.CUSTOMER_ID: recs[C.CUSTOMER_ID].astype(str).map(hide)})
    offers = {
        int(s): table.loc[table["segment_idx"] == s, "bundle_id"].tolist()
        for s in range(len(names))
    }
    offer = offer_list(ids, prefs.segment_labels, offers, names, pseudonymise=hide)
    frames = {
        "segments": (segments, "segments.csv"),
        "recommendations": (recs, "recommendations.csv"),
        "bundles": (table, "bundles.csv"),
        "offers": (offer, "offers.csv"),
        "price_list": (prices, "price_list.csv"),
        "price_list_xlsx": (prices, "price_list.xlsx"),
        "price_list_json": (prices, "price_list.json"),
    }
    return {key: write(frame, out / name) for key, (frame, name) in frames.items()}


class _Stopwatch:
    """``with step("name"):`` times a stage, logs it and reports progress."""

    def __init__(self, timings: dict[str, float], progress, n_stages: int) -> None:
        self.timings, self.progress, self.n = timings, progress, n_stages

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start
        log.info("stage %s took %.2f s", name, self.timings[name])
        if self.progress:
            self.progress(min(1.0, len(self.timings) / self.n))


# ---------------------------------------------------------------- command line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline and write segments, recommendations, bundles, price list",
        description="Load FILE..., then encode, score, segment, build bundles by beam search, "
        "price them and write the outputs into --out.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="order lines (+ catalogue, customers)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", help="TOML or JSON file with RunConfig settings")
    p.add_argument(
        "--pseudonymise", action="store_true",
        help="write salted pseudonyms (the workspace's salt) instead of the shop's customer ids",
    )
    p.add_argument("--json", action="store_true", help="print run_report.json to stdout")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    import sys

    from engine.errors import DataValidationError
    from engine.workspace import Workspace

    try:
        config = RunConfig.from_file(args.config) if args.config else RunConfig()
        if args.pseudonymise:
            config = replace(config, pseudonymise=True)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: config {args.config}: {exc}", file=sys.stderr)
        return 2
    workspace = Workspace()
    try:
        result = run(
            args.files, args.out, config,
            cache_dir=workspace.embeddings_dir,
            pseudonymise=workspace.pseudonymise,
        )
    except DataValidationError as exc:
        for issue in exc.issues:
            print(f"error: {issue}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.report, indent=1, default=str))
    else:
        t = result.report["timings_s"]
        print(f"wrote {len(result.files)} files to {result.out_dir}")
        print("time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
              + f"; total {sum(t.values()):.1f}s on {result.report['device']}")
    return 0
