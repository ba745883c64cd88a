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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine import columns as C
from engine.data import parallel
from engine.data.dataset import CodedText, stable_argsort
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
_TEXT = pd.Series([], dtype=str).dtype  # the columns of a read file

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
    # the kept lines' ids and names as numbered here ({column: CodedText}) and their
    # timestamps' (codes, values), so the Dataset does not hash 500k strings again
    keys: dict | None = field(default=None, repr=False)


# ---------------------------------------------------------------- parsing


def normalise_ids(s: pd.Series) -> pd.Series:
    """Strip spaces and the float artefact of spreadsheets: "17850.0" → "17850"."""
    s = s.astype(str).str.strip()
    return s.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)


def factorize_ids(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, normalised distinct ids): ids repeat a lot, so the string work
    is done once per distinct value (4k customers, not 540k lines). Codes number
    the raw texts in order of first appearance, as ``pd.factorize`` does."""
    codes, ids, _ = _factorize_ids(s)
    return codes, ids


def _factorize_ids(s: pd.Series) -> tuple[np.ndarray, pd.Series, bool]:
    """``factorize_ids`` and whether the normalised ids are still distinct (no
    "17850.0" beside "17850"), as they are when normalising changed nothing."""
    codes, uniques = _factorize_text(s.fillna(""))
    raw = pd.Series(uniques, dtype=str)
    ids = normalise_ids(raw)
    return codes, ids, not (ids != raw).any()


def _chunks(s: pd.Series) -> pa.ChunkedArray:
    """The arrow strings behind a text column (no copy where it is arrow-backed already)."""
    arr = getattr(s.array, "_pa_array", None)
    if isinstance(arr, pa.ChunkedArray) and (pa.types.is_large_string(arr.type)
                                             or pa.types.is_string(arr.type)):
        return arr
    return pa.chunked_array([_arrow(s)])


def _factorize_text(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes, distinct texts as an object array) in order of first appearance:
    ``pd.factorize`` of a text column without missing values, straight on arrow."""
    encoded = pc.dictionary_encode(_chunks(s))
    if encoded.num_chunks == 0:
        return np.zeros(0, np.int64), np.zeros(0, object)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    uniques = encoded.chunk(encoded.num_chunks - 1).dictionary  # one dictionary for all chunks
    return codes.astype(np.int64, copy=False), uniques.to_numpy(zero_copy_only=False)


def _distinct_texts(s: pd.Series, strip: bool = False) -> tuple[np.ndarray, pd.Series]:
    """(codes, distinct texts, stripped if asked: texts equal once stripped repeat)."""
    codes, uniques = _factorize_text(s)
    texts = pd.Series(uniques, dtype=str)
    return codes, texts.str.strip() if strip else texts


def _arrow(s: pd.Series) -> pa.Array:
    arr = pa.array(s.astype(str))
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def parse_numbers(s: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Floats from text; NaN where the text is not a number.

    Fast path: pyarrow's cast of the whole column (first as it is, then trimmed,
    empty text as missing); only a column with some bad text goes through
    pandas' slower element-wise coercion.
    """
    if not decimal_comma:
        text = _chunks(s.astype(str))
        try:  # plain numbers, no blanks: the trimmed cast below would give the same
            values = pc.cast(text, pa.float64()).to_numpy()
            return pd.Series(values, index=s.index, dtype=float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        arr = pc.utf8_trim_whitespace(text)
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
        try:
            values = pc.cast(arr, pa.float64()).to_numpy()
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
    codes, values = _distinct_timestamps(s)
    return pd.Series(values[codes], index=s.index)


def _distinct_timestamps(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, datetime64[ns] of each distinct text): ``parse_timestamps`` before
    the values are spread to the lines."""
    codes, uniq = _factorize_text(s.fillna(""))
    text = pd.Series(uniq, dtype=str).str.strip()
    present = text[text != ""]
    if present.empty:
        return codes, np.full(len(text), np.datetime64("NaT"), "datetime64[ns]")
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
    return codes, out.to_numpy()


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
    lines ``outlier_quantity`` would set aside.

    Every rule is an array operation: ids are numbered once (``factorize_ids``)
    and rules on them are evaluated per distinct id, then spread to the lines."""
    if orders not in ORDER_RULES:
        raise ValueError(f"orders must be one of {ORDER_RULES}, got {orders!r}")
    raw = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    raw[C.SOURCE_FILE] = raw[C.SOURCE_FILE].astype("category")  # concat of files gives text
    all_own = not any(p.attrs.get("no_order_id", False) for p in parts)
    # each column parsed or numbered once, side by side (engine/data/parallel.py)
    texts = [col for col in (C.NAME, C.CATEGORY) if col in raw and raw[col].dtype == _TEXT
             and not raw[col].hasnans]
    typed, product_ids, customer_ids, *numbered = parallel.run(
        lambda: [_typed(p) for p in parts],
        lambda: _factorize_ids(raw[C.PRODUCT_ID]),
        lambda: _factorize_ids(raw[C.CUSTOMER_ID]),
        *([lambda: _factorize_ids(raw[C.ORDER_ID])] if all_own else []),
        *(lambda col=col: _distinct_texts(raw[col], strip=col == C.NAME) for col in texts),
    )
    order_numbered = numbered.pop(0) if all_own else None
    numbered = dict(zip(texts, numbered, strict=True))  # {column: (codes, distinct texts)}
    typed, notes = zip(*typed, strict=True)
    notes = [n for file_notes in notes for n in file_notes]
    qty, price, regular, cost, own_order, ts_codes, ts_values = _joined(typed)
    p_codes, products, p_distinct = product_ids
    c_codes, customers, c_distinct = customer_ids
    o_distinct = True  # made order ids are
    made_only = False
    if all_own:
        o_codes, order_ids, o_distinct = order_numbered
    else:
        made_codes, made_ids = _made_orders(customers, c_codes, ts_codes, ts_values, orders)
        if not own_order.any():  # the made ids are already distinct and normalised
            o_codes, order_ids = made_codes, made_ids
            made_only = True  # raw's order ids are filled in on the rows set aside only
        else:
            made = made_ids.take(made_codes).set_axis(raw.index)
            raw[C.ORDER_ID] = raw[C.ORDER_ID].where(own_order, made)
            o_codes, order_ids, o_distinct = _factorize_ids(raw[C.ORDER_ID])
        for name in raw.loc[~own_order, C.SOURCE_FILE].unique():
            notes.append(Issue(str(name), C.ORDER_ID, f"orders_by_{orders}",
                               f"no order id: an order is a customer's lines "
                               f"{'on one day' if orders == 'day' else 'at one timestamp'}",
                               hint="choose the other rule ([input] orders = "
                                    f"\"{'timestamp' if orders == 'day' else 'day'}\") if it "
                                    "fits the shop better, or map an order-id column"))

    # rules on ids are evaluated once per distinct id, then spread to the lines
    nonmerch_all = is_non_merchandise(products).to_numpy(bool)
    kept_codes = products.str.upper().isin({k.strip().upper() for k in keep_non_merchandise})
    nonmerch = nonmerch_all & ~kept_codes.to_numpy(bool)
    with np.errstate(invalid="ignore"):
        qty_bad = np.isnan(qty) | (qty == 0) | (qty != np.round(qty)) | (np.abs(qty) > MAX_QUANTITY)
        rules = {
            "cancelled": order_ids.str.upper().str.startswith("C").to_numpy(bool)[o_codes]
            & own_order,
            "non_merchandise": nonmerch[p_codes],
            "bad_quantity": qty_bad,
            "return": qty < 0,
            "bad_price": np.isnan(price) | (price <= 0) | (price > MAX_PRICE),
            "missing_order": (order_ids == "").to_numpy(bool)[o_codes],
            "missing_customer": (customers == "").to_numpy(bool)[c_codes],
            "bad_date": np.isnat(ts_values)[ts_codes],
        }
    code = np.zeros(len(raw), np.int8)  # 0 kept, k = REASONS[k-1]
    for k, reason in enumerate(REASONS[:-2], start=1):
        code[(code == 0) & rules[reason]] = k
    outlier = _outliers(p_codes, qty, code == 0)
    outlier_k = REASONS.index("outlier_quantity") + 1
    outlier_table = _outlier_table(raw, products, p_codes, qty, outlier, keep_outliers)
    if not keep_outliers:
        code[outlier] = outlier_k
    coded = {C.ORDER_ID: o_codes, C.PRODUCT_ID: p_codes, C.CUSTOMER_ID: c_codes}
    if len(parts) == 1:  # codes of one file's timestamp texts
        coded[C.TIMESTAMP] = ts_codes
    code[(code == 0) & _duplicated(raw, o_codes, p_codes, coded)] = len(REASONS)
    counts = dict(zip(REASONS, np.bincount(code, minlength=len(REASONS) + 1)[1:].tolist(),
                      strict=True))

    kept_at = np.flatnonzero(code == 0)
    aside_at = np.flatnonzero(code > 0)
    # in the Dataset's order (timestamp, then order id; file order within), so that
    # each column is gathered once; from the distinct texts where that is not file order
    order = CodedText.compact(o_codes[kept_at], order_ids, merge=not o_distinct)
    kept_ts = ts_codes[kept_at]
    perm = _line_order(kept_ts, ts_values, order)
    kept_at, order, kept_ts = kept_at[perm], order.take(perm), kept_ts[perm]
    # nearly in file order (an export sorted by time): rows gathered directly
    nearly_in_order = np.count_nonzero(kept_at[1:] < kept_at[:-1]) <= len(kept_at) // 100
    known = []  # the undiscounted price and the unit cost, where some kept line has one
    for col, values in ((C.REGULAR_PRICE, regular), (C.UNIT_COST, cost)):
        if np.isfinite(values).any():  # all NaN in a file without them
            values = values[kept_at]
            if np.isfinite(values).any():
                known.append((col, values))
    skip = {C.LINE_TOTAL, C.REGULAR_PRICE, C.COST, C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID,
            C.QUANTITY, C.UNIT_PRICE, C.TIMESTAMP, *(col for col, _ in known)}
    others = [c for c in raw.columns if c not in skip and c.split("#")[0] != C.DISCOUNT]

    def gather(col: str) -> pd.Series:
        """A kept column of raw text, in the kept lines' order."""
        if col in numbered:  # from the distinct texts (names stripped once each)
            codes, values = numbered[col]
            return values.take(codes[kept_at]).reset_index(drop=True)
        if nearly_in_order or raw[col].dtype != _TEXT or raw[col].hasnans:
            out = raw[col].take(kept_at).reset_index(drop=True)
            return out.str.strip() if col == C.NAME else out
        codes, values = _factorize_text(raw[col])  # few distinct values (a country)
        return pd.Series(values, dtype=str).take(codes[kept_at]).reset_index(drop=True)

    # string columns stay arrow-backed: a detour through numpy objects costs more than the rest
    order_col, customer_col, product_col, aside, customer_key, product_key, *other_cols = (
        parallel.run(
            lambda: order_ids.take(o_codes[kept_at]).reset_index(drop=True),
            lambda: customers.take(c_codes[kept_at]).reset_index(drop=True),
            lambda: products.take(p_codes[kept_at]).reset_index(drop=True),
            lambda: raw.take(aside_at).reset_index(drop=True),
            lambda: CodedText.compact(c_codes[kept_at], customers, merge=not c_distinct),
            lambda: CodedText.compact(p_codes[kept_at], products, merge=not p_distinct),
            *(lambda col=col: gather(col) for col in others)))
    kept = pd.DataFrame({  # the arrays are new: no copy into blocks
        C.ORDER_ID: order_col,
        C.CUSTOMER_ID: customer_col,
        C.PRODUCT_ID: product_col,
        C.QUANTITY: qty[kept_at].astype(np.int64),
        C.UNIT_PRICE: price[kept_at],
        C.TIMESTAMP: ts_values[kept_ts],
    }, copy=False)
    for col, values in known:
        kept[col] = values
    for col, values in zip(others, other_cols, strict=True):
        kept[col] = values
    # the lines' ids, names and categories as numbered here, for the Dataset
    keys = {C.ORDER_ID: order, C.CUSTOMER_ID: customer_key, C.PRODUCT_ID: product_key,
            C.TIMESTAMP: (kept_ts, ts_values)}
    for col, (codes, values) in numbered.items():
        keys[col] = CodedText.compact(codes[kept_at], values, merge=col == C.NAME)
    if made_only:
        aside[C.ORDER_ID] = order_ids.take(o_codes[aside_at]).reset_index(drop=True)
    aside.insert(2, "reason", pd.Categorical.from_codes(code[aside_at] - 1, REASONS))
    issues = notes + _reason_issues(raw, code)
    if keep_outliers and outlier.any():
        issues.append(Issue(", ".join(map(str, raw[C.SOURCE_FILE].cat.categories)), C.QUANTITY,
                            "outliers_kept", f"{int(outlier.sum())} outlier line(s) kept as "
                            "asked", hint="they weigh on the product's demand like any line"))
    nm_table = _non_merch_table(raw, products, p_codes, nonmerch_all, nonmerch)
    return LineCheck(kept, aside, counts, nm_table, issues, outlier_table, keys)


def _joined(typed: tuple[dict, ...]) -> tuple[np.ndarray, ...]:
    """Quantity, price, undiscounted price, unit cost, own order id, and the
    timestamps as codes into the distinct texts' values (numbered across the
    files), of all files' lines; one file's arrays as they are, not copied."""
    names = (C.QUANTITY, C.UNIT_PRICE, C.REGULAR_PRICE, C.UNIT_COST, "own_order_id")
    if len(typed) == 1:
        return (*(typed[0][k] for k in names), typed[0]["ts_codes"], typed[0]["ts_values"])
    offsets = np.cumsum([0] + [len(t["ts_values"]) for t in typed])
    ts_codes = np.concatenate([t["ts_codes"] + off for t, off in zip(typed, offsets, strict=False)])
    return (*(np.concatenate([t[k] for t in typed]) for k in names), ts_codes,
            np.concatenate([t["ts_values"] for t in typed]))


def _line_order(ts_codes: np.ndarray, ts_values: np.ndarray, order: CodedText) -> np.ndarray:
    """The permutation that sorts lines by timestamp, then order id (stable: file
    order within), as ``Dataset.from_frames`` sorts them. Timestamp ranks are
    dense, so texts of one time ("8:26" and "8:26:00") tie."""
    if not len(ts_codes):
        return np.zeros(0, np.int64)
    _, t_rank = np.unique(ts_values, return_inverse=True)
    key = t_rank.astype(np.int64)[ts_codes] * len(order.distinct) + order.ranks[order.codes]
    if (key[1:] >= key[:-1]).all():
        return np.arange(len(key))
    return stable_argsort(key)


def _outlier_table(raw, products, p_codes, qty, outlier, kept: bool) -> pd.DataFrame:
    """The outlier lines, for the report: file, row, product, quantity, whether kept."""
    at = np.flatnonzero(outlier)
    return pd.DataFrame({
        C.SOURCE_FILE: raw[C.SOURCE_FILE].take(at).astype(str).to_numpy(),
        C.SOURCE_ROW: raw[C.SOURCE_ROW].take(at).to_numpy(),
        C.PRODUCT_ID: products.take(p_codes[at]).to_numpy(),
        C.QUANTITY: qty[at],
        "kept": np.full(len(at), kept),
    })


def _duplicated(raw: pd.DataFrame, o_codes: np.ndarray, p_codes: np.ndarray,
                coded: dict[str, np.ndarray]) -> np.ndarray:
    """Exact duplicate lines (all mapped columns, raw text), the first copy not.

    Only lines sharing an (order, product) pair can be duplicates, so the
    full-row comparison runs on those few candidates; columns already numbered
    (``coded``: codes of the raw texts) are compared by their codes.
    """
    pair = o_codes.astype(np.int64) * (int(p_codes.max(initial=0)) + 1) + p_codes
    # an export lists each order's lines together: then the pairs are nearly sorted,
    # and numpy's stable sort (a merge sort of the runs) beats the radix passes
    grouped = np.count_nonzero(o_codes[1:] < o_codes[:-1]) <= len(o_codes) // 100
    order = np.argsort(pair, kind="stable") if grouped else stable_argsort(pair)
    same = pair[order[1:]] == pair[order[:-1]]  # neighbours once sorted: a repeated pair
    shared = np.zeros(len(raw), bool)
    shared[order[1:][same]] = True
    shared[order[:-1][same]] = True
    candidates = np.flatnonzero(shared)
    out = np.zeros(len(raw), bool)
    if len(candidates):
        value_cols = [c for c in raw.columns if c not in (C.SOURCE_FILE, C.SOURCE_ROW)]
        columns = [coded[c][candidates] if c in coded and not raw[c].hasnans
                   else _candidate_codes(raw[c], candidates) for c in value_cols]
        out[candidates] = _repeated_rows(columns)
    return out


def _candidate_codes(column: pd.Series, at: np.ndarray) -> np.ndarray:
    """Codes of a column's values on the rows ``at`` (equal values, equal codes)."""
    if column.dtype == _TEXT and not column.hasnans:
        encoded = pc.dictionary_encode(_chunks(column).take(at)).combine_chunks()
        return encoded.indices.to_numpy()
    return pd.factorize(column.take(at).to_numpy(object))[0]


def _repeated_rows(columns: list[np.ndarray]) -> np.ndarray:
    """True for each row whose codes (one array per column) an earlier row has:
    ``DataFrame.duplicated(keep="first")`` on integer codes, the columns folded
    into one key, renumbered whenever the next column would overflow it."""
    key = np.zeros(len(columns[0]), np.int64)
    for codes in columns:
        width = int(codes.max(initial=0)) + 2  # + 1 for a missing value's -1
        if int(key.max(initial=0)) >= (1 << 62) // width:
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * width + (codes.astype(np.int64) + 1)
    first = np.unique(key, return_index=True)[1]
    repeated = np.ones(len(key), bool)
    repeated[first] = False
    return repeated


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
    regular = None  # unknown: NaN
    if C.REGULAR_PRICE in part:
        regular = parse_numbers(part[C.REGULAR_PRICE], dec)
    discounts = [c for c in part.columns if c.split("#")[0] == C.DISCOUNT]
    if discounts:
        amounts = sum(parse_numbers(part[c], dec).fillna(0.0) for c in discounts)
        nonzero = amounts[amounts != 0]
        negative = bool(len(nonzero)) and (nonzero < 0).mean() > 0.5
        off = amounts.abs() / qty.abs().where(qty != 0)
        regular = (price + off) if regular is None else regular.fillna(price + off)
        notes.append(Issue(
            name, C.DISCOUNT, "discount_sign",
            f"{len(discounts)} discount column(s) hold {'negative' if negative else 'positive'} "
            "amounts for a discount (as most of their values are); undiscounted price = "
            "paid price + the discount's size",
            hint="map only the columns that are discounts off this line"))
    cost = None  # unknown: NaN
    if C.COST in part:
        value = parse_numbers(part[C.COST], dec)
        cost = (value / qty.abs().where(qty != 0)) if per_line else value
        cost = cost.where(cost > 0)
        notes.append(Issue(
            name, C.COST, "cost_per_line" if per_line else "cost_per_unit",
            "cost is the line's (prices are line totals): unit cost = cost / quantity"
            if per_line else "cost is per unit, as the unit price is",
            hint="costs give the shop's own margins; zero or empty costs are unknown"))
    if regular is not None:
        regular = regular.where(regular >= price - 1e-9)  # never below what was paid
    ts_codes, ts_values = _distinct_timestamps(part[C.TIMESTAMP])
    unknown = np.full(len(part), np.nan)
    typed = {
        C.QUANTITY: qty.to_numpy(float),
        C.UNIT_PRICE: price.to_numpy(float),
        C.REGULAR_PRICE: unknown if regular is None else regular.to_numpy(float),
        C.UNIT_COST: unknown if cost is None else cost.to_numpy(float),
        "ts_codes": ts_codes,
        "ts_values": ts_values,
        "own_order_id": np.full(len(part), not part.attrs.get("no_order_id", False)),
    }
    return typed, notes


def _made_orders(customers: pd.Series, c_codes: np.ndarray, ts_codes: np.ndarray,
                 ts_values: np.ndarray, rule: str) -> tuple[np.ndarray, pd.Series]:
    """A customer's lines on one day (or at one timestamp) as one order: "cust@2000-11-01"
    ("" without a customer). (codes, distinct ids): the text is built once per
    customer-day, not per line. Customers are normalised ids and the date ends in a
    digit or "@", so the ids are normalised as they are."""
    if not len(c_codes):
        return np.zeros(0, np.int64), pd.Series([], dtype=str)
    fmt = "%Y-%m-%d" if rule == "day" else "%Y-%m-%dT%H:%M:%S"
    when = pd.Series(pd.DatetimeIndex(ts_values).strftime(fmt), dtype=object).fillna("")
    w_codes, w_text = pd.factorize(when.to_numpy(object))
    who_codes, who = pd.factorize(customers.to_numpy(object))  # distinct after normalising
    n_when = max(len(w_text), 1)
    key = who_codes[c_codes].astype(np.int64) * n_when + w_codes[ts_codes]
    nobody = len(who) * n_when  # lines without a customer: order ""
    key[(customers == "").to_numpy(bool)[c_codes]] = nobody
    codes, distinct = _number(key, nobody + 1)
    someone = distinct != nobody
    text = pc.binary_join_element_wise(
        pa.array(np.asarray(who, dtype=object), pa.large_string()).take(
            np.where(someone, distinct // n_when, 0)),
        pa.array(np.asarray(w_text, dtype=object), pa.large_string()).take(
            np.where(someone, distinct % n_when, 0)),
        pa.scalar("@", pa.large_string()))
    text = pc.if_else(pa.array(someone), text, pa.scalar("", pa.large_string()))
    return codes, text.to_pandas()


def _number(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct keys) for non-negative integer keys below ``size``: a
    lookup table where that is small, else ``pd.factorize`` (codes are not in order
    of first appearance; callers need only that equal keys share a code)."""
    if size > 8 * len(key):
        return pd.factorize(key)
    used = np.zeros(size, bool)
    used[key] = True
    distinct = np.flatnonzero(used)
    number = np.zeros(size, np.int64 if len(distinct) >= 1 << 31 else np.int32)
    number[distinct] = np.arange(len(distinct))
    return number[key].astype(np.int64), distinct


def _outliers(p_codes: np.ndarray, q: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Lines whose quantity is over OUTLIER_FACTOR × the product's median line (among
    the lines not already set aside) and at least OUTLIER_MIN units. Only products
    with a line of OUTLIER_MIN units can have one, so only their medians are taken."""
    with np.errstate(invalid="ignore"):
        big = ok & (q >= OUTLIER_MIN)
    if not big.any():
        return big
    candidate = np.zeros(int(p_codes.max(initial=-1)) + 1, bool)
    candidate[p_codes[big]] = True
    mine = ok & candidate[p_codes]
    median = pd.Series(q[mine]).groupby(p_codes[mine]).median()
    typical = np.full(len(candidate), np.inf)
    typical[median.index.to_numpy()] = median.to_numpy()
    return big & (q > OUTLIER_FACTOR * typical[p_codes])


def _reason_issues(raw: pd.DataFrame, code: np.ndarray) -> list[Issue]:
    """One warning per file and reason, with the count and sample rows."""
    issues = []
    aside = np.flatnonzero(code > 0)
    # the files in order of first appearance, as pd.factorize numbers them
    file_codes, file_names = pd.factorize(raw[C.SOURCE_FILE].take(aside), sort=False)
    rows = raw[C.SOURCE_ROW].to_numpy()[aside]
    reason = code[aside]
    by_reason = np.argsort(reason, kind="stable")  # each reason's lines, in file order
    ends = np.cumsum(np.bincount(reason, minlength=len(REASONS) + 1))
    for k, name in enumerate(REASONS, start=1):
        at = by_reason[ends[k - 1]:ends[k]]
        for f in np.flatnonzero(np.bincount(file_codes[at], minlength=len(file_names))):
            mine = at[file_codes[at] == f]
            issues.append(Issue(str(file_names[f]), _REASON_COLUMN[name], name,
                                f"{len(mine)} line(s) set aside as {name}",
                                tuple(int(r) for r in rows[mine[:SAMPLE_ROWS]]), _HINTS[name]))
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
