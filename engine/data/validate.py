"""Validation: which order lines are kept, and why each other line is set aside.

Each order line gets at most one reason; the rules are applied in the fixed
order of ``REASONS`` and a line keeps the first reason that applies:

1. ``cancelled``: the order id starts with "C" (a cancelled invoice; only where
   the file has order ids).
2. ``non_merchandise``: postage, fees, adjustments, vouchers (see
   ``is_non_merchandise``), unless the analyst keeps the code.
3. ``bad_quantity``: quantity empty, not a number, not a whole number, zero,
   or larger than 1e6 in size.
4. ``return``: negative quantity (on a non-cancelled invoice).
5. ``bad_price``: unit price empty, not a number, zero, negative or > 1e6.
6. ``missing_order``: empty order id.
7. ``missing_customer``: empty customer id.
8. ``bad_date``: timestamp empty, not a date, or outside 1900-2200.
9. ``outlier_quantity``: a quantity far outside the product's own (more than
   ``OUTLIER_FACTOR`` times its median line and at least ``OUTLIER_MIN`` units:
   fuel pumped, a test order), unless the analyst keeps them.
10. ``duplicate``: the same line (all mapped columns, raw text) seen before;
   the first copy is kept. Because every earlier rule depends on the line's
   values only, copies of a set-aside line are set aside for the same reason,
   so counting duplicates over all lines or over those left gives the same.

Every count can therefore be re-derived from the raw file with plain pandas.

Other shapes of export: a line total instead of a unit price (unit price =
total / quantity); discount amounts (stored positive or negative, detected and
reported) or an undiscounted "compare at" price, so each kept line has both the
paid and the ``regular_price``; a cost per line (with line totals) or per unit
(with unit prices) as ``unit_cost``; no order id, where an order is a
customer's lines on one day (or at one timestamp: ``orders="timestamp"``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine import columns as C
from engine.data.mapping import REQUIRED
from engine.data.reader import Table
from engine.errors import Issue

log = logging.getLogger(__name__)

REASONS = (
    "cancelled",
    "non_merchandise",
    "bad_quantity",
    "return",
    "bad_price",
    "missing_order",
    "missing_customer",
    "bad_date",
    "outlier_quantity",
    "duplicate",
)
ORDER_RULES = ("day", "timestamp")  # what an order is when the file has no order id
OUTLIER_FACTOR = 100.0
OUTLIER_MIN = 1000

# postage, carriage, manual entries, discounts, fees, charity, bad-debt adjustments
NON_MERCHANDISE_CODES = frozenset(
    {"POST", "DOT", "M", "D", "C2", "CRUK", "PADS", "B", "S", "BANK CHARGES", "AMAZONFEE",
     "ADJUST", "ADJUST2", "CARRIAGE", "FEE", "SHIPPING", "DISCOUNT", "MANUAL", "SAMPLES"}
)
MAX_QUANTITY = 1e6
EARLIEST, LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01")
MAX_PRICE = 1e6
SAMPLE_ROWS = 5

_HINTS = {
    "cancelled": "cancelled invoices are not purchases; nothing to fix",
    "non_merchandise": "postage, fees and adjustments are not products; keep a code with "
                       "--keep-non-merchandise CODE if it is a real product",
    "bad_quantity": "quantities must be whole numbers, not zero, below 1e6",
    "return": "returns are not purchases; nothing to fix",
    "bad_price": "unit prices must be numbers above 0 and below 1e6",
    "missing_order": "every line needs an order id",
    "missing_customer": "lines without a customer id cannot build a customer profile",
    "bad_date": "use one date format, e.g. 2011-12-31 23:59",
    "outlier_quantity": "far more units than the product's usual line (fuel, a test order?); "
                        "keep them with --keep-outliers or on the Data page if they are real",
    "duplicate": "the exact same line appears twice; the first copy is kept",
}
_REASON_COLUMN = {
    "cancelled": C.ORDER_ID, "non_merchandise": C.PRODUCT_ID, "bad_quantity": C.QUANTITY,
    "return": C.QUANTITY, "bad_price": C.UNIT_PRICE, "missing_order": C.ORDER_ID,
    "missing_customer": C.CUSTOMER_ID, "bad_date": C.TIMESTAMP,
    "outlier_quantity": C.QUANTITY, "duplicate": None,
}

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "ISO8601",
)


@dataclass(frozen=True)
class LineCheck:
    """Result of checking order lines: kept (typed) and set aside (raw text)."""

    kept: pd.DataFrame
    set_aside: pd.DataFrame
    counts: dict[str, int]
    non_merchandise: pd.DataFrame
    issues: list[Issue]
    outliers: pd.DataFrame | None = None


# ---------------------------------------------------------------- parsing


def normalise_ids(s: pd.Series) -> pd.Series:
    """Strip spaces and the float artefact of spreadsheets: "17850.0" → "17850"."""
    s = s.astype(str).str.strip()
    return s.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)


def factorize_ids(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, normalised distinct ids): ids repeat a lot, so the string work
    is done once per distinct value (4k customers, not 540k lines)."""
    codes, uniques = pd.factorize(s.fillna(""), sort=False)
    return codes, normalise_ids(pd.Series(np.asarray(uniques, dtype=object), dtype=str))


def _arrow(s: pd.Series) -> pa.Array:
    arr = pa.array(s.astype(str))
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def parse_numbers(s: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Floats from text; NaN where the text is not a number.

    Fast path: pyarrow's cast of the whole column; only a column with some
    bad text goes through pandas' slower element-wise coercion.
    """
    if not decimal_comma:
        arr = pc.utf8_trim_whitespace(_arrow(s))
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        try:
            values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(values, index=s.index, dtype=float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    s = s.astype(str).str.strip()
    if decimal_comma:
        s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    # currency signs and thousands separators
    s = s.str.replace(r"[£$€\s]|(?<=\d),(?=\d{3}\b)", "", regex=True)
    return pd.to_numeric(s.where(s != ""), errors="coerce").astype(float)


def parse_timestamps(s: pd.Series) -> pd.Series:
    """Datetimes from text, NaT where unparseable.

    Lines of one order share a timestamp, so only distinct values are parsed
    (23k, not 540k, for Online Retail). The format is guessed on a sample of
    them (an explicit format is much faster than inference); what that format
    misses is tried again with mixed-format inference.
    """
    codes, uniq = pd.factorize(s.fillna(""), sort=False)
    text = pd.Series(np.asarray(uniq, dtype=object), dtype=str).str.strip()
    present = text[text != ""]
    if present.empty:
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    sample = present.iloc[np.linspace(0, len(present) - 1, min(len(present), 1000)).astype(int)]
    best, best_ok = "ISO8601", -1
    for fmt in DATE_FORMATS:
        ok = _to_datetime(sample, fmt).notna().sum()
        if ok > best_ok:
            best, best_ok = fmt, ok
        if ok == len(sample):  # a later format could only tie, and ties go to the first
            break
    out = _to_datetime(text, best)
    missed = out.isna() & (text != "")
    if missed.any():
        out.loc[missed] = _to_datetime(text[missed], "mixed")
    return pd.Series(out.to_numpy()[codes], index=s.index)


def _to_datetime(s: pd.Series, fmt: str) -> pd.Series:
    """Strict parse with one format; NaT for unparseable text and for dates
    outside 1900-2200 (a "-1" read as year -1 is not an order date)."""
    try:
        out = pd.to_datetime(s, format=fmt, errors="coerce")
        if isinstance(out.dtype, pd.DatetimeTZDtype):
            out = out.dt.tz_convert(None)
        out = out.where((out >= EARLIEST) & (out <= LATEST))
        return out.astype("datetime64[ns]")
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")


def is_non_merchandise(product_ids: pd.Series, keep: tuple[str, ...] = ()) -> pd.Series:
    """True for postage, fees, manual entries, vouchers: codes in
    NON_MERCHANDISE_CODES, gift vouchers (gift_0001_10), and codes with no
    digit at all (when most distinct codes have digits, so a shop whose SKUs
    are all letters is not emptied). Codes in ``keep`` are merchandise.
    """
    up = product_ids.astype(str).str.strip().str.upper()
    has_digit = up.str.contains(r"\d", regex=True)
    digit_share = has_digit.groupby(up).first().mean() if len(up) else 1.0
    flag = up.isin(NON_MERCHANDISE_CODES) | up.str.startswith("GIFT_")
    if digit_share > 0.5:
        flag |= ~has_digit
    if keep:
        flag &= ~up.isin({str(k).strip().upper() for k in keep})
    return flag


# ---------------------------------------------------------------- order lines


def canonical_lines(table: Table, mapping: dict[str, str]) -> tuple[pd.DataFrame, list[Issue]]:
    """The file's order lines with canonical column names (text), or an error
    issue when a required column is missing (naming expected and found).
    Several discount columns become ``discount``, ``discount#2``, …"""
    have = set(mapping.values())
    missing = [c for c in REQUIRED["order_lines"] if c not in have]
    if not have & set(C.ORDER_LINE_PRICES):
        missing.append(C.UNIT_PRICE)
    if missing:
        found = list(table.frame.columns)
        expected = [*REQUIRED["order_lines"], f"{C.UNIT_PRICE} or {C.LINE_TOTAL}"]
        return pd.DataFrame(), [Issue(
            table.name, missing[0], "missing_column",
            f"required column(s) {missing} not found (a price: {C.UNIT_PRICE} or "
            f"{C.LINE_TOTAL}); expected {expected} (an order id is "
            f"optional), found {found} (mapped: {mapping})",
            hint="rename the columns or map them, e.g. --map "
                 f"{table.name}:<their column>={missing[0]}",
        )]
    keep = [c for c in table.frame.columns if c in mapping]
    names, seen = {}, {}
    for col in keep:
        canonical = mapping[col]
        seen[canonical] = seen.get(canonical, 0) + 1
        names[col] = canonical if seen[canonical] == 1 else f"{canonical}#{seen[canonical]}"
    raw = table.frame[keep].rename(columns=names)
    if C.ORDER_ID not in raw:
        raw[C.ORDER_ID] = ""
    # one file name per line: categorical, so taking rows does not copy 500k strings
    raw.insert(0, C.SOURCE_FILE, pd.Categorical.from_codes(np.zeros(len(raw), np.int8), [table.name]))
    raw.insert(1, C.SOURCE_ROW, raw.index.to_numpy(np.int64))
    raw = raw.reset_index(drop=True)
    raw.attrs["decimal_comma"] = table.decimal_comma
    raw.attrs["no_order_id"] = C.ORDER_ID not in mapping.values()
    return raw, []


def check_lines(
    parts: list[pd.DataFrame],
    keep_non_merchandise: tuple[str, ...] = (),
    orders: str = "day",
    keep_outliers: bool = False,
) -> LineCheck:
    """Apply the rules of REASONS to order lines from one or more files.

    ``orders``: what an order is in a file without order ids ("day": a customer's
    lines on one day; "timestamp": at one time). ``keep_outliers`` keeps the
    lines ``outlier_quantity`` would set aside."""
    if orders not in ORDER_RULES:
        raise ValueError(f"orders must be one of {ORDER_RULES}, got {orders!r}")
    typed, notes = zip(*(_typed(p) for p in parts), strict=True)
    notes = [n for file_notes in notes for n in file_notes]
    raw = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    raw[C.SOURCE_FILE] = raw[C.SOURCE_FILE].astype("category")  # concat of files gives text
    parsed = pd.concat(typed, ignore_index=True) if len(typed) > 1 else typed[0]
    qty, price, ts = parsed[C.QUANTITY], parsed[C.UNIT_PRICE], parsed[C.TIMESTAMP]
    own_order = parsed["own_order_id"].to_numpy(bool)
    p_codes, products = factorize_ids(raw[C.PRODUCT_ID])
    c_codes, customers = factorize_ids(raw[C.CUSTOMER_ID])
    if not own_order.all():
        made = _order_ids(customers, c_codes, ts, orders)
        raw[C.ORDER_ID] = raw[C.ORDER_ID].where(own_order, made.where(customers.to_numpy(
            object)[c_codes] != "", ""))
        for name in raw.loc[~own_order, C.SOURCE_FILE].unique():
            notes.append(Issue(str(name), C.ORDER_ID, f"orders_by_{orders}",
                               f"no order id: an order is a customer's lines "
                               f"{'on one day' if orders == 'day' else 'at one timestamp'}",
                               hint="choose the other rule ([input] orders = "
                                    f"\"{'timestamp' if orders == 'day' else 'day'}\") if it "
                                    "fits the shop better, or map an order-id column"))
    o_codes, order_ids = factorize_ids(raw[C.ORDER_ID])

    # rules on ids are evaluated once per distinct id, then spread to the lines
    nonmerch_all = is_non_merchandise(products).to_numpy(bool)
    kept_codes = products.str.upper().isin({k.strip().upper() for k in keep_non_merchandise})
    nonmerch = nonmerch_all & ~kept_codes.to_numpy(bool)
    qty_bad = qty.isna() | (qty == 0) | (qty != qty.round()) | (qty.abs() > MAX_QUANTITY)
    rules = {
        "cancelled": order_ids.str.upper().str.startswith("C").to_numpy(bool)[o_codes]
        & own_order,
        "non_merchandise": nonmerch[p_codes],
        "bad_quantity": qty_bad.to_numpy(bool),
        "return": (qty < 0).to_numpy(bool),
        "bad_price": (price.isna() | (price <= 0) | (price > MAX_PRICE)).to_numpy(bool),
        "missing_order": (order_ids == "").to_numpy(bool)[o_codes],
        "missing_customer": (customers == "").to_numpy(bool)[c_codes],
        "bad_date": ts.isna().to_numpy(bool),
    }
    code = np.zeros(len(raw), np.int8)  # 0 kept, k = REASONS[k-1]
    for k, reason in enumerate(REASONS[:-2], start=1):
        code[(code == 0) & rules[reason]] = k
    outlier = _outliers(p_codes, qty, code == 0)
    outlier_k = REASONS.index("outlier_quantity") + 1
    outlier_table = _outlier_table(raw, products, p_codes, qty, outlier, keep_outliers)
    if not keep_outliers:
        code[outlier] = outlier_k
    code[(code == 0) & _duplicated(raw, o_codes, p_codes)] = len(REASONS)
    counts = {r: int((code == k).sum()) for k, r in enumerate(REASONS, start=1)}

    kept_at = np.flatnonzero(code == 0)
    # string columns stay arrow-backed: a detour through numpy objects costs more than the rest
    kept = pd.DataFrame({
        C.ORDER_ID: order_ids.take(o_codes[kept_at]).reset_index(drop=True),
        C.CUSTOMER_ID: customers.take(c_codes[kept_at]).reset_index(drop=True),
        C.PRODUCT_ID: products.take(p_codes[kept_at]).reset_index(drop=True),
        C.QUANTITY: qty.to_numpy()[kept_at].astype(np.int64),
        C.UNIT_PRICE: price.to_numpy()[kept_at],
        C.TIMESTAMP: ts.to_numpy()[kept_at],
    })
    for col in (C.REGULAR_PRICE, C.UNIT_COST):
        values = parsed[col].to_numpy(float)[kept_at]
        if np.isfinite(values).any():
            kept[col] = values
    skip = {C.LINE_TOTAL, C.REGULAR_PRICE, C.COST}
    for col in raw.columns:
        if col not in kept and col not in skip and col.split("#")[0] != C.DISCOUNT:
            kept[col] = raw[col].take(kept_at).reset_index(drop=True)
    if C.NAME in kept:
        kept[C.NAME] = kept[C.NAME].str.strip()

    aside_at = np.flatnonzero(code > 0)
    aside = raw.take(aside_at).reset_index(drop=True)
    aside.insert(2, "reason", pd.Categorical.from_codes(code[aside_at] - 1, REASONS))
    issues = notes + _reason_issues(raw, code)
    if keep_outliers and outlier.any():
        issues.append(Issue(", ".join(map(str, raw[C.SOURCE_FILE].cat.categories)), C.QUANTITY,
                            "outliers_kept", f"{int(outlier.sum())} outlier line(s) kept as "
                            "asked", hint="they weigh on the product's demand like any line"))
    nm_table = _non_merch_table(raw, products, p_codes, nonmerch_all, nonmerch)
    return LineCheck(kept, aside, counts, nm_table, issues, outlier_table)


def _outlier_table(raw, products, p_codes, qty, outlier, kept: bool) -> pd.DataFrame:
    """The outlier lines, for the report: file, row, product, quantity, whether kept."""
    at = np.flatnonzero(outlier)
    return pd.DataFrame({
        C.SOURCE_FILE: raw[C.SOURCE_FILE].take(at).astype(str).to_numpy(),
        C.SOURCE_ROW: raw[C.SOURCE_ROW].take(at).to_numpy(),
        C.PRODUCT_ID: products.take(p_codes[at]).to_numpy(),
        C.QUANTITY: qty.to_numpy()[at],
        "kept": np.full(len(at), kept),
    })


def _duplicated(raw: pd.DataFrame, o_codes: np.ndarray, p_codes: np.ndarray) -> np.ndarray:
    """Exact duplicate lines (all mapped columns, raw text), the first copy not.

    Only lines sharing an (order, product) pair can be duplicates, so the
    full-row comparison runs on those few candidates.
    """
    pair = pd.Series(o_codes.astype(np.int64) * (int(p_codes.max(initial=0)) + 1) + p_codes)
    candidates = np.flatnonzero(pair.duplicated(keep=False).to_numpy())
    out = np.zeros(len(raw), bool)
    if len(candidates):
        value_cols = [c for c in raw.columns if c not in (C.SOURCE_FILE, C.SOURCE_ROW)]
        out[candidates] = raw[value_cols].take(candidates).duplicated(keep="first").to_numpy()
    return out


def _typed(part: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue]]:
    """Numbers and dates of one file's lines: quantity, the paid unit price, the
    undiscounted ``regular_price`` and ``unit_cost`` (NaN where unknown), and
    whether the order id is the file's own; with notes on what was assumed."""
    dec = bool(part.attrs.get("decimal_comma", False))
    name = str(part[C.SOURCE_FILE].iloc[0]) if len(part) else ""
    notes: list[Issue] = []
    qty = parse_numbers(part[C.QUANTITY], dec)
    per_line = C.UNIT_PRICE not in part
    if per_line:
        total = parse_numbers(part[C.LINE_TOTAL], dec)
        price = total / qty.where(qty != 0)
        notes.append(Issue(name, C.LINE_TOTAL, "unit_price_from_line_total",
                           "unit price = the line's total / its quantity",
                           hint="map a unit-price column instead if the file has one"))
    else:
        price = parse_numbers(part[C.UNIT_PRICE], dec)
    regular = pd.Series(np.nan, index=part.index)
    if C.REGULAR_PRICE in part:
        regular = parse_numbers(part[C.REGULAR_PRICE], dec)
    discounts = [c for c in part.columns if c.split("#")[0] == C.DISCOUNT]
    if discounts:
        amounts = sum(parse_numbers(part[c], dec).fillna(0.0) for c in discounts)
        nonzero = amounts[amounts != 0]
        negative = bool(len(nonzero)) and (nonzero < 0).mean() > 0.5
        off = amounts.abs() / qty.abs().where(qty != 0)
        regular = regular.fillna(price + off)
        notes.append(Issue(
            name, C.DISCOUNT, "discount_sign",
            f"{len(discounts)} discount column(s) hold {'negative' if negative else 'positive'} "
            "amounts for a discount (as most of their values are); undiscounted price = "
            "paid price + the discount's size",
            hint="map only the columns that are discounts off this line"))
    cost = pd.Series(np.nan, index=part.index)
    if C.COST in part:
        value = parse_numbers(part[C.COST], dec)
        cost = (value / qty.abs().where(qty != 0)) if per_line else value
        cost = cost.where(cost > 0)
        notes.append(Issue(
            name, C.COST, "cost_per_line" if per_line else "cost_per_unit",
            "cost is the line's (prices are line totals): unit cost = cost / quantity"
            if per_line else "cost is per unit, as the unit price is",
            hint="costs give the shop's own margins; zero or empty costs are unknown"))
    regular = regular.where(regular >= price - 1e-9)  # never below what was paid
    typed = pd.DataFrame({
        C.QUANTITY: qty,
        C.UNIT_PRICE: price,
        C.TIMESTAMP: parse_timestamps(part[C.TIMESTAMP]),
        C.REGULAR_PRICE: regular,
        C.UNIT_COST: cost,
        "own_order_id": not part.attrs.get("no_order_id", False),
    })
    return typed, notes


def _order_ids(customers: pd.Series, c_codes: np.ndarray, ts: pd.Series, rule: str) -> pd.Series:
    """A customer's lines on one day (or at one timestamp) as one order: "cust@2000-11-01"."""
    when = ts.dt.strftime("%Y-%m-%d") if rule == "day" else ts.dt.strftime("%Y-%m-%dT%H:%M:%S")
    who = customers.to_numpy(object)[c_codes]
    return pd.Series(who, index=ts.index).astype(str) + "@" + when.fillna("")


def _outliers(p_codes: np.ndarray, qty: pd.Series, ok: np.ndarray) -> np.ndarray:
    """Lines whose quantity is over OUTLIER_FACTOR × the product's median line (among
    the lines not already set aside) and at least OUTLIER_MIN units."""
    q = qty.to_numpy(float)
    frame = pd.DataFrame({"p": p_codes[ok], "q": q[ok]})
    median = frame.groupby("p")["q"].median()
    typical = np.full(int(p_codes.max(initial=-1)) + 1, np.inf)
    typical[median.index.to_numpy()] = median.to_numpy()
    return ok & (q >= OUTLIER_MIN) & (q > OUTLIER_FACTOR * typical[p_codes])


def _reason_issues(raw: pd.DataFrame, code: np.ndarray) -> list[Issue]:
    """One warning per file and reason, with the count and sample rows."""
    issues = []
    file_codes, file_names = pd.factorize(raw[C.SOURCE_FILE], sort=False)
    rows = raw[C.SOURCE_ROW].to_numpy()
    for k, reason in enumerate(REASONS, start=1):
        at = np.flatnonzero(code == k)
        for f in np.unique(file_codes[at]):
            mine = at[file_codes[at] == f]
            issues.append(Issue(str(file_names[f]), _REASON_COLUMN[reason], reason,
                                f"{len(mine)} line(s) set aside as {reason}",
                                tuple(int(r) for r in rows[mine[:SAMPLE_ROWS]]), _HINTS[reason]))
    return issues


def _non_merch_table(raw: pd.DataFrame, products: pd.Series, p_codes: np.ndarray,
                     detected: np.ndarray, set_aside: np.ndarray) -> pd.DataFrame:
    """Detected non-merchandise codes with their most common name and line count."""
    at = np.flatnonzero(detected[p_codes])
    if len(at) == 0:
        return pd.DataFrame({C.PRODUCT_ID: pd.Series(dtype=str), C.NAME: pd.Series(dtype=str),
                             "lines": pd.Series(dtype=np.int64), "kept": pd.Series(dtype=bool)})
    names = raw[C.NAME].take(at).str.strip().to_numpy() if C.NAME in raw else ""
    sub = pd.DataFrame({C.PRODUCT_ID: products.take(p_codes[at]).to_numpy(), C.NAME: names,
                        "kept": ~set_aside[p_codes[at]]})
    lines = sub.groupby(C.PRODUCT_ID).size().rename("lines")
    top = (sub.groupby([C.PRODUCT_ID, C.NAME]).size().rename("k").reset_index()
           .sort_values([C.PRODUCT_ID, "k"], ascending=[True, False])
           .drop_duplicates(C.PRODUCT_ID).set_index(C.PRODUCT_ID)[C.NAME])
    kept = sub.groupby(C.PRODUCT_ID)["kept"].first()
    out = pd.DataFrame({"lines": lines}).join(top).join(kept).reset_index()
    out = out[[C.PRODUCT_ID, C.NAME, "lines", "kept"]]
    return out.sort_values(["lines", C.PRODUCT_ID], ascending=[False, True]).reset_index(drop=True)


# ---------------------------------------------------------------- catalogue, customers


def check_products(
    table: Table, mapping: dict[str, str], dropped: Collection[str] = ()
) -> tuple[pd.DataFrame, list[Issue]]:
    """Catalogue with canonical columns plus the file's other columns as
    attributes (brand, size, sub-category…; text, stripped), except those in
    ``dropped`` (mapped to "" by the analyst) and any whose name is a canonical
    name another column was mapped to. Duplicate ids keep the first
    (warning); non-numeric prices or costs become unknown (warning naming the
    rows)."""
    if C.PRODUCT_ID not in mapping.values():
        return pd.DataFrame(), [_missing(table, "products", mapping)]
    skip = set(mapping.values()) | set(dropped)
    attributes = [c for c in table.frame.columns if c not in mapping and c not in skip]
    keep = [c for c in table.frame.columns if c in mapping or c in attributes]
    frame = table.frame[keep].rename(columns=mapping)
    frame = frame.copy()
    issues: list[Issue] = []
    frame[C.PRODUCT_ID] = normalise_ids(frame[C.PRODUCT_ID])
    for col in (C.NAME, C.DESCRIPTION, C.CATEGORY, *attributes):
        if col in frame:
            frame[col] = frame[col].astype(str).str.strip()
    for col in (C.PRICE, C.COST):
        if col in frame:
            text = frame[col].str.strip()
            values = parse_numbers(text, table.decimal_comma)
            bad = values.isna() & (text != "") | (values < 0)
            if bad.any():
                issues.append(Issue(table.name, col, "not_a_number",
                                    f"{int(bad.sum())} {col} value(s) are not valid non-negative "
                                    "numbers; treated as unknown",
                                    _rows(frame.index[bad]), f"write {col} as a plain number, e.g. 2.55"))
            frame[col] = values.where(~bad)
    if C.IN_STOCK in frame:
        frame[C.IN_STOCK], bad = parse_in_stock(frame[C.IN_STOCK])
        if bad.any():
            issues.append(Issue(table.name, C.IN_STOCK, "not_a_flag",
                                f"{int(bad.sum())} in_stock value(s) are neither yes/no nor a "
                                "stock count; treated as in stock", _rows(frame.index[bad]),
                                "write yes/no, true/false, 1/0 or the units in stock"))
    empty = frame[C.PRODUCT_ID] == ""
    if empty.any():
        issues.append(Issue(table.name, C.PRODUCT_ID, "missing_id",
                            f"{int(empty.sum())} row(s) without a product id were skipped",
                            _rows(frame.index[empty]), "fill in the product id"))
    dup = frame[C.PRODUCT_ID].duplicated(keep="first") & ~empty
    if dup.any():
        issues.append(Issue(table.name, C.PRODUCT_ID, "duplicate_id",
                            f"{int(dup.sum())} product id(s) appear more than once; the first row is kept",
                            _rows(frame.index[dup]), "keep one row per product"))
    return frame[~empty & ~dup].reset_index(drop=True), issues


_YES = {"true", "yes", "y", "t", "1", "in stock", "instock", "available", "x"}
_NO = {"false", "no", "n", "f", "0", "out of stock", "unavailable", "sold out"}


def parse_in_stock(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(bool flags, rows that could not be read): yes/no words, or a stock count
    (in stock when above 0); unreadable or empty values count as in stock."""
    text = s.astype(str).str.strip().str.lower()
    count = pd.to_numeric(text, errors="coerce")
    flag = pd.Series(True, index=s.index)
    flag[text.isin(_NO)] = False
    flag[count.notna() & ~text.isin(_YES | _NO)] = count > 0
    bad = ~text.isin(_YES | _NO) & count.isna() & (text != "")
    return flag.astype(bool), bad


def check_customers(table: Table, mapping: dict[str, str]) -> tuple[pd.DataFrame, list[Issue]]:
    """Customer attributes; duplicate ids keep the first (warning)."""
    if C.CUSTOMER_ID not in mapping.values():
        return pd.DataFrame(), [_missing(table, "customers", mapping)]
    keep = [c for c in table.frame.columns if c in mapping or c not in mapping.values()]
    frame = table.frame[keep].rename(columns=mapping).copy()
    frame[C.CUSTOMER_ID] = normalise_ids(frame[C.CUSTOMER_ID])
    issues = []
    empty = frame[C.CUSTOMER_ID] == ""
    dup = frame[C.CUSTOMER_ID].duplicated(keep="first") & ~empty
    if dup.any():
        issues.append(Issue(table.name, C.CUSTOMER_ID, "duplicate_id",
                            f"{int(dup.sum())} customer id(s) appear more than once; first row kept",
                            _rows(frame.index[dup]), "keep one row per customer"))
    return frame[~empty & ~dup].reset_index(drop=True), issues


def _missing(table: Table, kind: str, mapping: dict[str, str]) -> Issue:
    need = [c for c in REQUIRED[kind] if c not in mapping.values()]
    return Issue(table.name, need[0], "missing_column",
                 f"{kind} file: required column(s) {need} not found; expected {list(REQUIRED[kind])}, "
                 f"found {list(table.frame.columns)}",
                 hint=f"rename the column or map it, e.g. --map {table.name}:<their column>={need[0]}")


def _rows(index) -> tuple[int, ...]:
    return tuple(int(r) for r in list(index[:SAMPLE_ROWS]))
