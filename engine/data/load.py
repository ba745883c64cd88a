"""One call from input files to a validated Dataset and its report.

Files may come in any order: each file's kind (order lines, catalogue,
customers, observed results) is told from its columns. All issues of all
files are collected before a DataValidationError is raised, so the analyst
sees every problem at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from engine import columns as C
from engine.data.dataset import Dataset
from engine.data.mapping import detect_kind, detect_mapping
from engine.data.reader import InputFile, Source, read_table, source_name
from engine.data.validate import (
    REASONS,
    canonical_lines,
    check_customers,
    check_lines,
    check_products,
)
from engine.errors import DataValidationError, Issue

log = logging.getLogger(__name__)

# an analyst mapping: {their column: canonical} for every file, or
# {file name: {their column: canonical}} per file
ColumnMapping = Mapping[str, str] | Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class ValidationReport:
    """What was read, kept and set aside, and why."""

    rows_read: int
    rows_kept: int
    set_aside: dict[str, int]
    mapping: dict[str, dict[str, str]]
    file_kinds: dict[str, str]
    errors: list[Issue]
    warnings: list[Issue]
    non_merchandise: pd.DataFrame = field(repr=False)
    set_aside_rows: pd.DataFrame = field(repr=False)
    summary: dict = field(default_factory=dict)
    outliers: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (Python ints and strings only)."""
        nm = self.non_merchandise
        return {
            "ok": self.ok,
            "rows_read": int(self.rows_read),
            "rows_kept": int(self.rows_kept),
            "set_aside": {k: int(v) for k, v in self.set_aside.items()},
            "mapping": {f: dict(m) for f, m in self.mapping.items()},
            "file_kinds": dict(self.file_kinds),
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
            "non_merchandise": [
                {"product_id": str(p), "name": str(n), "lines": int(k), "kept": bool(kp)}
                for p, n, k, kp in zip(nm.get(C.PRODUCT_ID, []), nm.get(C.NAME, []),
                                       nm.get("lines", []), nm.get("kept", []), strict=False)
            ],
            "outliers": [] if self.outliers is None else [
                {"file": str(f), "row": int(r), "product_id": str(p), "quantity": float(q),
                 "kept": bool(k)}
                for f, r, p, q, k in self.outliers.head(200).itertuples(index=False)
            ],
            "summary": {k: (v if isinstance(v, str | None) else int(v)) for k, v in self.summary.items()},
        }


@dataclass(frozen=True)
class LoadResult:
    """The dataset built from the kept lines, the report, and observed results if any."""

    dataset: Dataset
    report: ValidationReport
    observed: pd.DataFrame | None = None


def _file_overrides(mapping: ColumnMapping | None, name: str) -> dict[str, str]:
    if not mapping:
        return {}
    if all(isinstance(v, Mapping) for v in mapping.values()):
        return dict(mapping.get(name, {}))
    return {k: v for k, v in mapping.items() if isinstance(v, str)}


def load_files(
    files: Iterable[Source] | Source,
    mapping: ColumnMapping | None = None,
    keep_non_merchandise: Iterable[str] = (),
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    orders: str = "day",
    keep_outliers: bool = False,
) -> LoadResult:
    """Read, map and validate the files; build the Dataset.

    ``files`` are paths or ``InputFile(name, bytes)``; one order-lines file is
    required, a catalogue and a customer file are optional. ``mapping`` is the
    analyst's {their column: canonical} (for all files) or {file: {...}}.
    ``keep_non_merchandise`` lists codes detected as non-merchandise to keep.
    ``orders``: what an order is in a file without order ids ("day" or
    "timestamp"); ``keep_outliers`` keeps lines set aside as ``outlier_quantity``.
    ``seed`` is accepted for the common stage signature; loading draws nothing.

    Raises DataValidationError with every issue (``err.report`` holds the
    partial ValidationReport) when no dataset can be built.
    """
    del seed  # deterministic: nothing is sampled
    if isinstance(files, str | InputFile) or hasattr(files, "__fspath__"):
        files = [files]
    files = list(files)
    keep = tuple(str(k) for k in keep_non_merchandise)
    errors: list[Issue] = []
    warnings: list[Issue] = []
    kinds: dict[str, str] = {}
    mappings: dict[str, dict[str, str]] = {}
    line_parts, products, customers, observed = [], [], [], []

    for i, source in enumerate(files):
        name = source_name(source)
        try:
            table = read_table(source)
        except DataValidationError as exc:
            errors.extend(exc.issues)
            continue
        except Exception as exc:  # never a traceback for a bad file
            log.info("unexpected failure reading %s", name, exc_info=True)
            errors.append(Issue(name, None, "unreadable", f"the file could not be read ({exc})",
                                hint="save it as UTF-8 CSV or XLSX"))
            continue
        warnings.extend(table.warnings)
        overrides = _file_overrides(mapping, name)
        unknown = [c for c in overrides if c not in table.frame.columns]
        if unknown and all(isinstance(v, Mapping) for v in (mapping or {}).values()):
            warnings.append(Issue(name, unknown[0], "unknown_column",
                                  f"mapped column(s) {unknown} are not in the file",
                                  hint=f"columns found: {list(table.frame.columns)}"))
        renamed = [overrides.get(c) or c for c in table.frame.columns]
        kind = detect_kind(renamed)
        col_map = detect_mapping(table.frame.columns, kind=kind, overrides=overrides)
        kinds[name], mappings[name] = kind, col_map
        if kind == "order_lines":
            part, issues = canonical_lines(table, col_map)
            errors.extend(issues)
            if not issues:
                line_parts.append(part)
        elif kind == "products":
            dropped = [c for c, v in overrides.items() if not v]
            frame, issues = check_products(table, col_map, dropped)
            _split(issues, errors, warnings)
            products.append(frame)
        elif kind == "customers":
            frame, issues = check_customers(table, col_map)
            _split(issues, errors, warnings)
            customers.append(frame)
        else:
            observed.append(table.frame.rename(columns=col_map))
        if progress:
            progress(0.5 * (i + 1) / max(len(files), 1))

    # unreadable files already have their error; this one is for readable files of other kinds
    if (kinds or not files) and "order_lines" not in kinds.values():
        names = ", ".join(source_name(f) for f in files) or "(no files)"
        errors.append(Issue(names, None, "no_order_lines",
                            "no order-lines file among the files given "
                            f"(kinds found: {kinds or 'none readable'})",
                            hint="add the order-lines export: order id, customer id, product id, "
                                 "quantity, unit price, timestamp"))

    check = check_lines(line_parts, keep, orders, keep_outliers) if line_parts else None
    if check is not None:
        warnings.extend(check.issues)
        if check.kept.empty:
            errors.append(Issue(", ".join(p[C.SOURCE_FILE].iloc[0] for p in line_parts if len(p)),
                                None, "nothing_left",
                                f"no order line is left after validation (set aside: "
                                f"{ {k: v for k, v in check.counts.items() if v} })",
                                hint="check the column mapping and the warnings below"))

    dataset = None
    if not errors:
        dataset = Dataset._build(  # from_frames, on the codes validation already made
            check.kept,
            products=_concat(products, C.PRODUCT_ID),
            customers=_concat(customers, C.CUSTOMER_ID),
            keys=check.keys,
        )
    if progress:
        progress(1.0)
    report = _report(check, line_parts, mappings, kinds, errors, warnings, dataset)
    if errors:
        err = DataValidationError(errors)
        err.report = report
        raise err
    return LoadResult(dataset, report, pd.concat(observed, ignore_index=True) if observed else None)


def _split(issues: list[Issue], errors: list[Issue], warnings: list[Issue]) -> None:
    for issue in issues:
        (errors if issue.rule == "missing_column" else warnings).append(issue)


def _concat(frames: list[pd.DataFrame], key: str) -> pd.DataFrame | None:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).drop_duplicates(key, keep="first")


def _report(check, line_parts, mappings, kinds, errors, warnings, dataset) -> ValidationReport:
    rows_read = sum(len(p) for p in line_parts)
    counts = dict.fromkeys(REASONS, 0)
    if check is not None:
        counts.update(check.counts)
    summary: dict = {"n_products": 0, "n_customers": 0, "n_orders": 0,
                     "date_min": None, "date_max": None}
    if dataset is not None:
        t = dataset.lines[C.TIMESTAMP]
        summary = {"n_products": dataset.n_products, "n_customers": dataset.n_customers,
                   "n_orders": dataset.n_orders, "date_min": str(t.min()), "date_max": str(t.max())}
    empty = pd.DataFrame(columns=[C.SOURCE_FILE, C.SOURCE_ROW, "reason"])
    return ValidationReport(
        rows_read=int(rows_read),
        rows_kept=int(len(check.kept)) if check is not None else 0,
        set_aside=counts,
        mapping=mappings,
        file_kinds=kinds,
        errors=list(errors),
        warnings=list(warnings),
        non_merchandise=check.non_merchandise if check is not None else pd.DataFrame(
            columns=[C.PRODUCT_ID, C.NAME, "lines", "kept"]),
        set_aside_rows=check.set_aside if check is not None else empty,
        summary=summary,
        outliers=check.outliers if check is not None else None,
    )
