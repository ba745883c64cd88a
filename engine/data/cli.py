"""``python -m engine validate FILE...``: the validation report of input files."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from engine.data.load import ValidationReport, load_files
from engine.data.validate import REASONS
from engine.errors import DataValidationError, Issue

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate",
        help="read, map and validate input files; print what is kept and set aside",
        description="Validate order-lines (and optional catalogue/customer) files. "
                    "Exit 0 when a dataset can be loaded, 2 when not.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV, XLSX or Parquet files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--map", action="append", default=[], metavar="[FILE:]THEIRS=CANONICAL",
                   help="map a column, e.g. orders.csv:Bestellnr=order_id (repeatable)")
    p.add_argument("--map-file", metavar="JSON",
                   help='the analyst\'s mapping as JSON: {"file.csv": {"theirs": "canonical"}} '
                        'or {"theirs": "canonical"} for every file; --map wins over it')
    p.add_argument("--keep-non-merchandise", nargs="+", action="extend", default=[],
                   metavar="CODE", help="non-merchandise codes to keep as products")
    p.set_defaults(func=run_validate)


def parse_maps(items: list[str]) -> dict[str, dict[str, str]] | dict[str, str]:
    """``["a.csv:Nr=order_id", "Menge=quantity"]`` → per-file mapping; a rule
    without ``FILE:`` applies to every file (key ``"*"``)."""
    per_file: dict[str, dict[str, str]] = {}
    for item in items:
        left, eq, canonical = item.partition("=")
        if not eq or not left:
            raise ValueError(f"--map {item!r}: expected [FILE:]THEIRS=CANONICAL")
        fname, colon, theirs = left.rpartition(":")
        per_file.setdefault(fname if colon else "*", {})[theirs.strip()] = canonical.strip()
    return per_file


def read_map_file(path: str) -> dict[str, dict[str, str]]:
    """A JSON mapping file as {file or "*": {theirs: canonical}}; ValueError naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--map-file {path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"--map-file {path}: expected a JSON object")
    if all(isinstance(v, str) for v in data.values()):
        return {"*": dict(data)}
    if all(isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
           for v in data.values()):
        return {k: dict(v) for k, v in data.items()}
    raise ValueError(f"--map-file {path}: expected {{theirs: canonical}} or "
                     "{file: {theirs: canonical}} with text values")


def _mapping_for(per_file: dict[str, dict[str, str]], files: list[str]) -> dict:
    common = per_file.get("*", {})
    out = {}
    for f in files:
        name = Path(f).name
        out[name] = {**common, **per_file.get(name, {}), **per_file.get(f, {})}
    return out


def run_validate(args: argparse.Namespace) -> int:
    try:
        per_file = read_map_file(args.map_file) if args.map_file else {}
        for fname, cols in parse_maps(args.map).items():
            per_file.setdefault(fname, {}).update(cols)
        mapping = _mapping_for(per_file, args.files)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report: ValidationReport | None = None
    errors: list[Issue] = []
    try:
        report = load_files(args.files, mapping=mapping,
                            keep_non_merchandise=args.keep_non_merchandise).report
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
    if errors:
        for issue in errors:
            print(f"error: {issue}", file=sys.stderr)
        return 2
    return 0


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
