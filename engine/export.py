"""The recommended price list and per-customer offers as CSV, XLSX and JSON.

Bytes are deterministic: fixed column order, rows sorted, explicit rounding and
float format, fixed workbook properties. Text cells a spreadsheet could run as
a formula (starting with = + - @, tab or carriage return) get a leading single
quote in CSV and XLSX; XLSX is also written with ``strings_to_formulas=False``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine import columns as C
from engine.data.dataset import Dataset
from engine.files import atomic_write
from engine.pricing.optimise import PriceResult

log = logging.getLogger(__name__)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
OFFER_COLUMNS = (C.CUSTOMER_ID, C.SEGMENT, "offered_bundle_ids")
_MONEY = ("list_total", "bundle_price", "bundle_revenue", "bundle_profit",
          "segment_revenue_change", "segment_profit_change")
_PCT = ("discount_pct", "bundle_margin_pct")
_FIXED_TIME = dt.datetime(2000, 1, 1)


def escape_cell(value):
    """Prefix a text cell that a spreadsheet would read as a formula with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_cell).astype(object)
    return out


# what each binding guardrail means for the price, as the reason says it
_RULES = {
    "list_total": "held at the list total: any discount would lose more margin than it wins",
    "max_discount": "at the largest discount allowed",
    "margin_floor": "at the margin floor",
    "segment_spread": "moved to keep the segments' prices within the allowed spread",
    "price_ending": "priced to the cent: no price with the usual ending lies between the "
    "largest discount and the list total",
    "none": "the price of highest expected profit within the guardrails",
}


def price_reason(row: Mapping, result: PriceResult, segment: str, bundle_reason: str = "") -> str:
    """The price and the numbers behind it, in words: discount, take rate, units,
    single sales replaced, margin, the change against no bundle, the binding rule."""
    rule = _RULES.get(result.binding, result.binding)
    if result.binding == "list_total" and row["discount_pct"] >= 0.05:
        rule = "the highest price with the usual ending under the list total"
    text = (
        f"{row['bundle_price']:.2f}, {row['discount_pct']:.1f}% off the {row['list_total']:.2f} "
        f"list total: {rule}. {100 * row['expected_take_rate']:.1f}% of segment {segment}'s "
        f"visitors take it ({row['expected_units']:,.1f} bundles per period), replacing "
        f"{row['single_units_replaced']:,.1f} single sales; the bundle's margin is "
        f"{row['bundle_margin_pct']:.1f}%, and the segment's profit changes by "
        f"{row['segment_profit_change']:+,.2f} per period against no bundle."
    )
    if not result.converged:
        text = f"WARNING: {result.message}. " + text
    return text + (f" {bundle_reason}" if bundle_reason else "")


def price_list(
    dataset: Dataset,
    bundles: Sequence[Sequence[int]],
    run,
    bundle_ids: Sequence[str] | None = None,
    segment_names: Sequence[str] | None = None,
    bundle_reasons: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (bundle, segment) with columns ``PRICE_LIST_COLUMNS``.

    ``run`` is a ``PricingRun`` of these bundles (same order): its prices, the
    outcomes at them and without any bundle.
    """
    results, sim, none = run.results, run.simulation.per_bundle, run.no_bundle.per_bundle
    if not len(bundles) == len(results) == len(sim):
        raise ValueError(
            f"{len(bundles)} bundles, {len(results)} results and {len(sim)} simulated rows "
            "must match"
        )
    ids = dataset.products[C.PRODUCT_ID].astype(str).to_numpy()
    names = dataset.products[C.NAME].astype(str).to_numpy()
    price = dataset.products[C.PRICE].to_numpy(float)
    rows = []
    for b, (items, res) in enumerate(zip(bundles, results, strict=True)):
        items = list(items)
        list_total = float(price[items].sum())
        units = float(sim["units"].iat[b])
        cost = float(run.choices.bundle_cost[b])
        seg = segment_names[res.segment] if segment_names is not None else str(res.segment)
        row = {
            "bundle_id": bundle_ids[b] if bundle_ids is not None else f"B{b + 1:04d}",
            "segment": seg,
            "product_ids": "|".join(ids[items]),
            "product_names": "|".join(names[items]),
            "list_total": round(list_total, 2),
            "bundle_price": round(res.price, 2),
            "discount_pct": round(100.0 * (1.0 - res.price / list_total), 2)
            if list_total > 0 else 0.0,
            "expected_take_rate": round(float(sim["take_rate"].iat[b]), 4),
            "expected_units": round(units, 2),
            "bundle_revenue": round(units * res.price, 2),
            "bundle_profit": round(units * (res.price - cost), 2),
            "bundle_margin_pct": round(100.0 * (res.price - cost) / res.price, 2)
            if res.price > 0 else 0.0,
            "single_units_replaced": round(float(sim["cannibalised_units"].iat[b]), 2),
            "segment_revenue_change": round(float(sim["revenue"].iat[b] - none["revenue"].iat[b]),
                                            2),
            "segment_profit_change": round(float(sim["profit"].iat[b] - none["profit"].iat[b]),
                                           2),
            "price_rule": res.binding,
        }
        row["reason"] = price_reason(row, res, seg, bundle_reasons[b] if bundle_reasons else "")
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(C.PRICE_LIST_COLUMNS))
    return _sorted(frame, ["bundle_id", "segment"])


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def offer_list(
    customer_ids: Sequence[str],
    segment_labels: np.ndarray,
    offers_by_segment: Mapping[int, Sequence[str]],
    segment_names: Sequence[str] | None = None,
    pseudonymise: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """Per customer: segment and the offered bundle ids joined with "|".

    Customer ids are the shop's own unless ``pseudonymise`` (one id → its
    pseudonym, e.g. from ``Workspace.pseudonymise``, so files and dashboard agree).
    """
    labels = np.asarray(segment_labels)
    if len(labels) != len(customer_ids):
        raise ValueError(f"{len(customer_ids)} customers but {len(labels)} segment labels")
    ids = [str(c) for c in customer_ids]
    if pseudonymise is not None:
        ids = [pseudonymise(c) for c in ids]
    frame = pd.DataFrame(
        {
            C.CUSTOMER_ID: ids,
            C.SEGMENT: [segment_names[s] if segment_names else str(s) for s in labels],
            "offered_bundle_ids": [
                "|".join(sorted(offers_by_segment.get(int(s), ()))) for s in labels
            ],
        },
        columns=list(OFFER_COLUMNS),
    ).astype(object)
    return _sorted(frame, [C.CUSTOMER_ID])


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV, text quoted, formula cells escaped, floats with up to 10 significant digits."""
    buf = io.StringIO()
    # every text cell quoted: a bare carriage return inside a cell would otherwise split
    # the row (the csv module only quotes the line terminator it writes, here "\n")
    escape_frame(frame).to_csv(
        buf, index=False, float_format="%.10g", lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
    )
    return buf.getvalue().encode("utf-8")


def to_json_bytes(frame: pd.DataFrame) -> bytes:
    """JSON list of records in column order (values as in the frame, unescaped)."""
    records = [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    return (json.dumps(records, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def to_xlsx_bytes(frame: pd.DataFrame, sheet_name: str = "price list") -> bytes:
    """An Excel workbook: bold header, frozen top row, widths and number formats."""
    buf = io.BytesIO()
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    with pd.ExcelWriter(buf, engine="xlsxwriter", engine_kwargs={"options": options}) as xl:
        escape_frame(frame).to_excel(xl, sheet_name=sheet_name, index=False)
        book, sheet = xl.book, xl.sheets[sheet_name]
        book.set_properties({"created": _FIXED_TIME})
        money = book.add_format({"num_format": "#,##0.00"})
        pct = book.add_format({"num_format": "0.00"})
        rate = book.add_format({"num_format": "0.0000"})
        for k, col in enumerate(frame.columns):
            width = int(min(60, max(len(col), frame[col].astype(str).str.len().max() or 0) + 2))
            fmt = money if col in _MONEY else pct if col in _PCT else None
            fmt = rate if col == "expected_take_rate" else fmt
            sheet.set_column(k, k, width, fmt)
        sheet.freeze_panes(1, 0)
    return buf.getvalue()


def write(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write by suffix: .csv, .xlsx or .json."""
    path = Path(path)
    writers = {".csv": to_csv_bytes, ".xlsx": to_xlsx_bytes, ".json": to_json_bytes}
    if path.suffix.lower() not in writers:
        raise ValueError(f"unknown export format '{path.suffix}'; use one of {sorted(writers)}")
    atomic_write(path, writers[path.suffix.lower()](frame))
    log.info("wrote %d rows to %s", len(frame), path)
    return path
