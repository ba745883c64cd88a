"""The command line: ``python -m engine {validate,evaluate,recommend,bundles,price,run}``.

Every command takes the same input options (``--map``, ``--map-file``,
``--config``, ``--keep-non-merchandise``) and builds one ``RunConfig``:
defaults, then the config file, then the command's own options. Each calls
the stages of ``engine.pipeline.stages``, so ``bundles`` and ``price`` give
the bundles and prices that ``run`` writes for the same settings.

Exit 0 on success; 2 with a message on standard error when the input or a
setting is bad; 1 (with a message, never a traceback) for anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from engine.data.load import ValidationReport
from engine.data.validate import REASONS
from engine.errors import ConfigError, DataValidationError, EngineError, Issue
from engine.pipeline import stages
from engine.pipeline.config import RunConfig
from engine.pipeline.run import STAGES, compute, run

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- shared options


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="order lines (+ catalogue, customers): CSV, XLSX or Parquet")
    p.add_argument("--config", metavar="TOML",
                   help="settings file (TOML or JSON) with RunConfig fields; the dashboard's "
                        "Export page downloads one")
    p.add_argument("--map", action="append", default=[], metavar="[FILE:]THEIRS=CANONICAL",
                   help="map a column, e.g. orders.csv:Bestellnr=order_id (repeatable)")
    p.add_argument("--map-file", metavar="JSON",
                   help='a mapping as JSON: {"file.csv": {"theirs": "canonical"}} or '
                        '{"theirs": "canonical"} for every file; --map wins over it')
    p.add_argument("--keep-non-merchandise", nargs="+", action="extend", default=[],
                   metavar="CODE", help="non-merchandise codes to keep as products")
    p.add_argument("--orders", choices=("day", "timestamp"), default=None,
                   help="without an order id, an order is a customer's lines on one day "
                        "(default) or at one timestamp")
    p.add_argument("--keep-outliers", action="store_true", default=None,
                   help="keep lines whose quantity is far outside the product's own")
    p.add_argument("--seed", type=int, default=None, help="seed of every random draw")


def _segment_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segments", type=int, default=None,
                   help="number of segments (default: chosen from the data)")


def _purchased_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--purchased", choices=("include", "exclude"), default=None,
                   help="recommendations include products the customer bought before (the "
                        "next purchase; default) or exclude them (new products only)")


def parse_maps(items: list[str]) -> dict[str, dict[str, str]]:
    """``["a.csv:Nr=order_id", "Menge=quantity"]`` → per-file mapping; a rule
    without ``FILE:`` applies to every file (key ``"*"``)."""
    per_file: dict[str, dict[str, str]] = {}
    for item in items:
        left, eq, canonical = item.partition("=")
        if not eq or not left or not canonical.strip():
            raise ConfigError([f"--map {item!r}: expected [FILE:]THEIRS=CANONICAL"])
        fname, colon, theirs = left.rpartition(":")
        per_file.setdefault(fname if colon else "*", {})[theirs.strip()] = canonical.strip()
    return per_file


def read_map_file(path: str) -> dict[str, dict[str, str]]:
    """A JSON mapping file as {file or "*": {theirs: canonical}}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError([f"--map-file {path}: cannot read it as JSON ({exc})"]) from None
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return {"*": dict(data)}
    if isinstance(data, dict) and all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for v in data.values()):
        return {k: dict(v) for k, v in data.items()}
    raise ConfigError([f"--map-file {path}: expected {{theirs: canonical}} or "
                       "{file: {theirs: canonical}} with text values"])


def config_from_args(args: argparse.Namespace, overrides: dict | None = None) -> RunConfig:
    """Defaults ← ``--config`` ← the input options ← the command's ``overrides``
    (nested like the file: ``{"beam": {"kmax": 3}}``); ConfigError lists every problem."""
    data: dict = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise ConfigError([f"--config {path}: cannot be read ({err})"]) from None
    mapping = dict(data.get("input", {}).get("mapping", {})) if isinstance(
        data.get("input"), dict) else {}
    extra = read_map_file(args.map_file) if getattr(args, "map_file", None) else {}
    for source in (extra, parse_maps(getattr(args, "map", []) or [])):
        for fname, cols in source.items():
            mapping[fname] = {**mapping.get(fname, {}), **cols}
    keep = list(data.get("input", {}).get("keep_non_merchandise", [])) if isinstance(
        data.get("input"), dict) else []
    keep += list(getattr(args, "keep_non_merchandise", []) or [])
    if mapping or keep:
        data["input"] = {**data.get("input", {}), "mapping": mapping,
                         "keep_non_merchandise": keep}
    for option in ("orders", "keep_outliers"):
        if getattr(args, option, None) is not None:
            data["input"] = {**data.get("input", {}), option: getattr(args, option)}
    if getattr(args, "seed", None) is not None:
        data["seed"] = args.seed
    for section, values in (overrides or {}).items():
        values = {k: v for k, v in values.items() if v is not None} if isinstance(
            values, dict) else values
        if isinstance(values, dict):
            if values:
                data[section] = {**data.get(section, {}), **values}
        elif values is not None:
            data[section] = values
    where = f"--config {args.config}: " if getattr(args, "config", None) else ""
    try:
        return RunConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError([where + p for p in err.problems]) from None


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every failure as a message on standard error, never a traceback."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except DataValidationError as exc:
            for issue in exc.issues:
                print(f"error: {issue}", file=sys.stderr)
            return 2
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
            return 2
        except EngineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            log.info("unexpected failure", exc_info=True)
            print(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)",
                  file=sys.stderr)
            return 1

    return guarded


def _missing(files: list[str]) -> None:
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise DataValidationError([Issue(f, None, "file_exists", "file not found",
                                         hint="check the path") for f in missing])


def _stage_printer(quiet: bool = False):
    """Progress on standard error: the stage and how far it is."""
    shown: set[str] = set()

    def show(stage: str, fraction: float) -> None:
        if quiet:
            return
        if stage not in shown:
            shown.add(stage)
            print(f"[{len(shown)}/{len(STAGES)}] {stage}…", file=sys.stderr, flush=True)

    return show


def _workspace():
    from engine.workspace import Workspace

    return Workspace()


# ---------------------------------------------------------------- commands


def register(subparsers) -> None:
    v = subparsers.add_parser(
        "validate", help="read, map and validate input files; print what is kept and set aside",
        description="Validate order-lines (and optional catalogue/customer) files. "
                    "Exit 0 when a dataset can be loaded, 2 when not.")
    _input_options(v)
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(func=cmd_validate)

    e = subparsers.add_parser(
        "evaluate", help="offline quality of the recommendations against baselines: next "
                         "purchase, new products, cold start",
        description="Temporal hold-out of the last weeks, three tables with Recall@K, NDCG@K "
                    "and their own baselines: the next purchase (everything bought in the "
                    "hold-out, repeats included; against popularity, personal frequency, EASE, "
                    "TIFU-KNN), new products (bought products excluded; against popularity, "
                    "item-kNN, EASE) and cold start (products first sold in the hold-out, "
                    "ranked in the whole catalogue; against popularity in category). "
                    "Exit 2 on bad input.")
    _input_options(e)
    e.add_argument("--holdout-weeks", type=int, default=8)
    e.add_argument("--k", type=int, default=20)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_guarded(cmd_evaluate))

    r = subparsers.add_parser(
        "recommend", help="write the top-k products for every customer with history",
        description="Columns: customer_id, rank, product_id, score, repeat, reason. "
                    "Exit 2 on bad input.")
    _input_options(r)
    _segment_option(r)
    r.add_argument("--k", type=int, default=None, help="products per customer (default 10)")
    r.add_argument("--out", required=True, help="CSV file to write")
    r.add_argument("--no-reasons", action="store_true", help="leave the reason column empty")
    _purchased_option(r)
    r.set_defaults(func=_guarded(cmd_recommend))

    b = subparsers.add_parser(
        "bundles", help="recommend bundles per customer segment by beam search",
        description="The bundles `run` would offer for the same settings.")
    _input_options(b)
    _segment_option(b)
    b.add_argument("--kmin", type=int, default=None)
    b.add_argument("--kmax", type=int, default=None)
    b.add_argument("--beam-width", type=int, default=None)
    b.add_argument("--per-segment", type=int, default=None,
                   help="most bundles per segment (each must add --min-added-profit)")
    b.add_argument("--min-added-profit", type=float, default=None,
                   help="least profit per period a bundle must add to be offered")
    b.add_argument("--anchor", nargs="+", default=None, metavar="PRODUCT_ID")
    b.add_argument("--exclude", nargs="+", default=None, metavar="PRODUCT_ID")
    b.add_argument("--one-per-category", action="store_true", default=None)
    b.add_argument("--in-stock-only", action="store_true", default=None)
    b.add_argument("--min-lift", type=float, default=None, help="minimum complementarity (lift)")
    b.add_argument("--out", metavar="CSV", help="also write the bundles to this CSV file")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_guarded(cmd_bundles))

    p = subparsers.add_parser(
        "price", help="price the recommended bundles and write the price list",
        description="The price list `run` would write for the same settings.")
    _input_options(p)
    _segment_option(p)
    p.add_argument("--max-discount", type=float, default=None, help="largest discount (0.3 = 30%%)")
    p.add_argument("--margin-floor", type=float, default=None)
    p.add_argument("--ending", default=None, help="price ending (0.99), or 'none'")
    p.add_argument("--spread", type=float, default=None, help="largest spread between segments")
    p.add_argument("--customers", type=int, default=None, help="simulated visitors per bundle")
    p.add_argument("--elasticity", type=float, default=None,
                   help="use this elasticity at list price instead of the data's price response")
    p.add_argument("--out", required=True, metavar="PATH", help=".csv, .xlsx or .json")
    p.set_defaults(func=_guarded(cmd_price))

    n = subparsers.add_parser(
        "run", help="run the whole pipeline and write segments, recommendations, bundles, "
                    "price list",
        description="Load FILE..., then encode, score, segment, build bundles by beam search, "
                    "price them and write the outputs into --out.")
    _input_options(n)
    n.add_argument("--out", required=True, help="output directory")
    n.add_argument("--pseudonymise", action="store_true",
                   help="write salted pseudonyms (the workspace's salt) instead of the shop's "
                        "customer ids")
    n.add_argument("--json", action="store_true", help="print run_report.json to stdout")
    _purchased_option(n)
    n.set_defaults(func=_guarded(cmd_run))


def cmd_validate(args: argparse.Namespace) -> int:
    report: ValidationReport | None = None
    errors: list[Issue] = []
    try:
        config = config_from_args(args)
        _missing(args.files)
        report = stages.load(args.files, config.input).report
    except ConfigError as exc:
        errors = [Issue("settings", None, "config", p) for p in exc.problems]
    except DataValidationError as exc:
        report = getattr(exc, "report", None)
        errors = list(exc.issues)
    except Exception as exc:  # never a traceback on the command line
        log.info("validate failed", exc_info=True)
        errors = [Issue(", ".join(args.files), None, "unexpected", f"{type(exc).__name__}: {exc}")]
    if args.json:
        payload = report.to_dict() if report is not None else _empty_payload(errors)
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    elif report is not None and (report.rows_read or not errors):
        print(format_report(report))
    for issue in errors:
        print(f"error: {issue}", file=sys.stderr)
    return 2 if errors else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.recommend.evaluate import evaluate

    if args.k < 1 or args.holdout_weeks < 1:
        raise ConfigError([f"--k = {args.k}, --holdout-weeks = {args.holdout_weeks}: both must "
                           "be at least 1"])
    config = config_from_args(args)
    _missing(args.files)
    dataset = stages.load(args.files, config.input).dataset
    emb = stages.embed(dataset, config.encoder, _workspace().embeddings_dir)
    result = evaluate(dataset, emb, args.holdout_weeks, args.k, config.preferences,
                      seed=config.seed)
    if args.json:
        print(json.dumps(result.to_dict(), default=float))
        return 0
    p = result.protocol
    print(f"hold-out: last {args.holdout_weeks} weeks (cut {p['cut']}), K = {args.k}; "
          f"protocol: {p}")
    tables = [
        (f"next purchase: everything bought in the hold-out, repeats included "
         f"({p['next_purchase_customers']} customers)", result.next_purchase),
        (f"new products: products the customer had not bought, bought ones excluded "
         f"({p['test_customers']} customers)", result.table),
        (f"cold start: {p['cold_products']} products without sales before the cut"
         f"{' (simulated)' if p['cold_simulated'] else ''}, ranked in the whole catalogue "
         f"({p['cold_customers']} customers)", result.cold_start),
    ]
    for heading, table in tables:
        print(f"\n{heading}:")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}") if len(table)
              else "  (no customers)")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    config = config_from_args(args, {"recommendations_k": args.k, "purchased": args.purchased,
                                     "preferences": _segments(args)})
    _missing(args.files)
    dataset = stages.load(args.files, config.input).dataset
    emb = stages.embed(dataset, config.encoder, _workspace().embeddings_dir)
    segs = stages.segment(dataset, emb, config.preferences, config.seed)
    recs = stages.recommend(segs, dataset, emb, config.recommendations_k,
                            reasons=not args.no_reasons, purchased=config.purchased)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    recs.to_csv(args.out, index=False)
    print(f"wrote {len(recs)} rows for {dataset.n_customers} customers to {args.out}")
    return 0


def cmd_bundles(args: argparse.Namespace) -> int:
    beam = {"kmin": args.kmin, "kmax": args.kmax, "beam_width": args.beam_width,
            "n_bundles": args.per_segment, "anchor": args.anchor, "exclude": args.exclude,
            "one_per_category": args.one_per_category, "in_stock_only": args.in_stock_only,
            "min_complementarity": args.min_lift, "min_added_profit": args.min_added_profit}
    config = config_from_args(args, {"beam": beam, "preferences": _segments(args)})
    _missing(args.files)
    done = compute(args.files, config, _workspace().embeddings_dir,
                         progress=_stage_printer(quiet=args.json), recommendations=False)
    frame = done.bundles.table()
    if args.out:
        frame.to_csv(args.out, index=False)
    if args.json:
        print(json.dumps({"bundles": frame.to_dict(orient="records")}, default=str))
        return 0
    for seg, rows in frame.groupby("segment_idx", sort=True):
        print(f"segment {done.segments.names[seg]}:")
        for row in rows.itertuples():
            print(f"  {row.rank}. {row.product_names}  (list {row.list_total:.2f}, "
                  f"score {row.total:.3f})")
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    ending = args.ending
    if ending is not None:
        try:
            ending = None if ending.strip().lower() == "none" else float(ending)
        except ValueError:
            raise ConfigError([f"--ending {args.ending!r}: a number such as 0.99, or 'none'"]
                              ) from None
    pricing = {"max_discount": args.max_discount, "margin_floor": args.margin_floor,
               "max_segment_spread": args.spread, "n_customers": args.customers}
    if args.ending is not None:
        pricing["price_ending"] = "none" if ending is None else ending
    demand = ({"elasticity": args.elasticity, "force_elasticity": True}
              if args.elasticity is not None else {})
    config = config_from_args(args, {"pricing": pricing, "demand": demand,
                                     "preferences": _segments(args)})
    _missing(args.files)
    done = compute(args.files, config, _workspace().embeddings_dir,
                         progress=_stage_printer(), recommendations=False)
    if not len(done.bundles):
        raise ConfigError(["no bundles meet these settings: loosen the [beam] settings"])
    from engine.export import write

    write(done.price_list, args.out)
    flagged = sum(not r.converged for r in done.pricing.results)
    print(f"{len(done.price_list)} bundle prices written to {args.out}"
          + (f"; {flagged} flagged (see the reason column)" if flagged else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args, {"pseudonymise": True if args.pseudonymise else None,
                                     "purchased": args.purchased})
    _missing(args.files)
    workspace = _workspace()
    result = run(args.files, args.out, config, cache_dir=workspace.embeddings_dir,
                       progress=_stage_printer(quiet=args.json),
                       pseudonymise=workspace.pseudonymise)
    if args.json:
        print(json.dumps(result.report, indent=1, default=str))
        return 0
    t = result.report["timings_s"]
    print(f"wrote {len(result.files)} files to {result.out_dir}")
    print("time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
          + f"; total {sum(t.values()):.1f}s on {result.report['device']}")
    return 0


def _segments(args: argparse.Namespace) -> dict:
    k = getattr(args, "segments", None)
    return {} if k is None else {"n_segments": k}


# ---------------------------------------------------------------- validation report


def _empty_payload(errors: list[Issue]) -> dict:
    return {"ok": False, "rows_read": 0, "rows_kept": 0, "set_aside": dict.fromkeys(REASONS, 0),
            "mapping": {}, "file_kinds": {}, "errors": [i.to_dict() for i in errors],
            "warnings": []}


def format_report(report: ValidationReport) -> str:
    """The report as an analyst reads it in a terminal."""
    out = []
    for name, kind in report.file_kinds.items():
        cols = ", ".join(f"{k} -> {v}" for k, v in report.mapping.get(name, {}).items())
        out.append(f"{name}: {kind} ({cols})")
    out.append(f"order lines read: {report.rows_read:,}")
    out.append(f"order lines kept: {report.rows_kept:,}")
    out.append("set aside:")
    for reason in REASONS:
        out.append(f"  {reason:<18}{report.set_aside.get(reason, 0):>10,}")
    s = report.summary
    if s.get("n_orders"):
        out.append(f"dataset: {s['n_orders']:,} orders, {s['n_customers']:,} customers, "
                   f"{s['n_products']:,} products, {s['date_min']} to {s['date_max']}")
    nm = report.non_merchandise
    if len(nm):
        out.append("non-merchandise codes (keep with --keep-non-merchandise CODE):")
        for row in nm.itertuples(index=False):
            out.append(f"  {row.product_id:<14}{row.name[:40]:<42}{row.lines:>7,} lines"
                       + ("  (kept)" if row.kept else ""))
    if report.warnings:
        out.append("warnings:")
        out.extend(f"  {w}" for w in report.warnings)
    if report.errors:
        out.append("errors:")
        out.extend(f"  {e}" for e in report.errors)
    return "\n".join(out)
