"""Data page glue: handling uploads, loading into the workspace, and the page's figures.

``load_into_workspace`` and the figure builders are plain functions (no
Streamlit), so tests call them directly; ``inspect_file`` is cached on the
sha256 of the uploaded bytes, never on the UploadedFile.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine import columns as C
from engine.data import InputFile, detect_kind, detect_mapping, read_table
from engine.data.dataset import Dataset
from engine.data.validate import OUTLIER_FACTOR, OUTLIER_MIN
from engine.errors import ConfigError, DataValidationError, Issue
from engine.pipeline import InputConfig, stages
from engine.recommend import copurchase_stats
from engine.workspace import Workspace
from ui.theme import ACCENT, SECOND

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_NAME = "sample"
# the files of the bundled sample market that the loader reads (ground_truth.json is for tests)
SAMPLE_FILES = ("order_lines.csv", "products.csv", "customers.csv")

log = logging.getLogger(__name__)

IGNORE = "(ignore)"
# an unrecognised column kept as it is: a catalogue's brand, size, department… become
# attributes that name the product and join its encoded text
KEEP = "(keep as attribute)"
# canonical columns an analyst can map a file's column to, by file kind
MAPPABLE = {
    # besides the unit price: the line's total, discounts (several columns may be one),
    # the undiscounted price, the line's or unit's cost and the product's category
    "order_lines": (*C.ORDER_LINE_COLUMNS, C.LINE_TOTAL, C.DISCOUNT, C.REGULAR_PRICE, C.COST,
                    C.CATEGORY, C.NAME, C.COUNTRY),
    "products": (*C.PRODUCT_COLUMNS, C.IN_STOCK),
    "customers": (C.CUSTOMER_ID, C.COUNTRY),
}
ALL_MAPPABLE = tuple(dict.fromkeys(c for cols in MAPPABLE.values() for c in cols))
# what the uploader takes: the loader reads CSV/TXT/TSV, XLSX and Parquet, also zipped or
# gzipped (.xls is listed so the loader can say it is not supported)
UPLOAD_TYPES = ("csv", "txt", "tsv", "xlsx", "xls", "parquet", "zip", "gz")

# what an order is in a file without order ids (InputConfig.orders), as the page says it
ORDER_RULES = {"day": "a customer's lines on one day",
               "timestamp": "a customer's lines at one timestamp"}
DEFAULT_OPTIONS = {"orders": "day", "keep_outliers": False}
# warnings that say how the loader read the file (what it derived or assumed), not problems
NOTE_RULES = ("unit_price_from_line_total", "cost_per_line", "cost_per_unit",
              "orders_by_day", "orders_by_timestamp", "discount_sign", "outliers_kept",
              "zip_members")

# widget keys of the Data page's load options (ui/state.py holds the older ones)
ORDERS_WIDGET = "data_orders_widget"
KEEP_OUTLIERS_WIDGET = "data_keep_outliers_widget"
RELOAD_OUTLIERS_WIDGET = "data_reload_outliers_widget"
RELOAD_ORDERS_WIDGET = "data_reload_orders_widget"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- uploads and loading ------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """What the loader sees in one uploaded file before loading it."""

    name: str
    sha256: str
    kind: str
    columns: tuple[str, ...]
    mapping: dict[str, str]  # their column -> canonical column, as detected
    rows: int


@st.cache_data(show_spinner=False, max_entries=64)
def inspect_file(file_sha: str, name: str, _data: bytes) -> FileInfo:
    """Kind, columns and detected mapping of one file; cached on the bytes' sha256."""
    table = read_table(InputFile(name, _data))
    frame = getattr(table, "frame", table)  # the loader's Table of text columns
    columns = tuple(map(str, frame.columns))
    return FileInfo(
        name=name,
        sha256=file_sha,
        kind=detect_kind(columns),
        columns=columns,
        mapping=dict(detect_mapping(columns)),
        rows=len(frame),
    )


@dataclass(frozen=True)
class LoadOutcome:
    """What a Load click did: the dataset saved (ok) or the issues that stopped it."""

    ok: bool
    name: str
    issues: tuple[Issue, ...] = ()
    files: tuple[str, ...] = ()
    kept_previous: str | None = None  # the dataset still in use after a failure


def load_into_workspace(
    ws: Workspace,
    name: str,
    files: Sequence[tuple[str, bytes]] | Sequence[Path],
    mapping: dict[str, dict[str, str]] | None = None,
    keep_non_merchandise: Iterable[str] = (),
    progress: Callable[[float], None] | None = None,
    *,
    orders: str = "day",
    keep_outliers: bool = False,
) -> LoadOutcome:
    """Load files with the loader and save them as ``name``, the dataset in use.

    ``orders``: what an order is in a file without order ids ("day" or
    "timestamp"); ``keep_outliers`` keeps the lines set aside as
    ``outlier_quantity``. Both are saved with the dataset (``load_options``), so
    a reload reuses them. A failure leaves the workspace untouched: the previous
    dataset stays in use and the outcome carries the issues that name file,
    column and rows.
    """
    inputs = [f if isinstance(f, Path) else InputFile(f[0], f[1]) for f in files]
    names = tuple(Path(f).name if isinstance(f, Path) else f.name for f in inputs)
    keep = sorted(map(str, keep_non_merchandise))
    options = {"orders": str(orders), "keep_outliers": bool(keep_outliers)}
    try:
        config = InputConfig.from_per_file(mapping or {}, keep, **options)
        result = stages.load(inputs, config, progress=progress)
        ws.save(name, result, sources=inputs, keep_non_merchandise=keep, options=options)
    except DataValidationError as err:
        return LoadOutcome(False, name, tuple(err.issues), names, ws.current)
    except ConfigError as err:  # an option the loader does not know
        issue = Issue(", ".join(names), None, "bad_option", "; ".join(err.problems))
        return LoadOutcome(False, name, (issue,), names, ws.current)
    except Exception as err:  # an unreadable file must not take the page down
        log.exception("loading %s failed", names)
        issue = Issue(
            file=", ".join(names),
            column=None,
            rule="unreadable",
            message=f"could not be loaded ({type(err).__name__}: {err})",
            hint="check that the file is a CSV or XLSX export with a header row",
        )
        return LoadOutcome(False, name, (issue,), names, ws.current)
    return LoadOutcome(True, name, (), names, None)


def sample_paths(sample_dir: Path) -> list[Path]:
    return [sample_dir / f for f in SAMPLE_FILES if (sample_dir / f).exists()]


def load_sample(ws: Workspace, sample_dir: Path | None = None) -> LoadOutcome:
    """Load the bundled sample market into the workspace as ``sample``."""
    paths = sample_paths(sample_dir or SAMPLE_DIR)
    if not paths:
        issue = Issue(str(sample_dir or SAMPLE_DIR), None, "missing", "no sample data files found")
        return LoadOutcome(False, SAMPLE_NAME, (issue,), (), ws.current)
    return load_into_workspace(ws, SAMPLE_NAME, paths)


def load_options(entry: dict) -> dict:
    """The ``orders`` and ``keep_outliers`` a saved dataset was loaded with (the
    defaults for one saved before they were kept)."""
    saved = entry.get("options") or {}
    return {k: saved.get(k, v) for k, v in DEFAULT_OPTIONS.items()}


def chosen_mapping(chosen: dict[str, str]) -> dict[str, str]:
    """One file's mapping from the analyst's choices, their column -> canonical;
    a column set to ``IGNORE`` maps to "" which tells the loader to drop it, one set
    to ``KEEP`` is left to the loader, which keeps it as an attribute."""
    return {col: ("" if canon == IGNORE else canon) for col, canon in chosen.items()
            if canon != KEEP}


# --- tables -------------------------------------------------------------------------


def issues_frame(issues: Iterable[Issue | dict]) -> pd.DataFrame:
    """Issues as a table: file, column, rule, message, rows, hint."""
    rows = [i.to_dict() if isinstance(i, Issue) else dict(i) for i in issues]
    frame = pd.DataFrame(rows, columns=["file", "column", "rule", "message", "rows", "hint"])
    frame["rows"] = frame["rows"].map(lambda r: ", ".join(map(str, r or [])))
    return frame


def pseudonymise_frame(frame: pd.DataFrame, ws: Workspace) -> pd.DataFrame:
    """A copy with customer ids replaced by the workspace's pseudonyms."""
    if C.CUSTOMER_ID not in frame:
        return frame
    out = frame.copy()
    ids = out[C.CUSTOMER_ID]
    present = ids.notna() & (ids.astype(str).str.strip() != "")
    out[C.CUSTOMER_ID] = out[C.CUSTOMER_ID].astype(object)
    out.loc[present, C.CUSTOMER_ID] = ws.pseudonymise(ids[present].astype(str))
    return out


def report_counts(report: dict) -> dict[str, int]:
    """Headline numbers of a report dict: rows read, kept, set aside."""
    read = int(report.get("rows_read", 0))
    kept = int(report.get("rows_kept", 0))
    aside = sum(int(v) for v in (report.get("set_aside") or {}).values())
    return {"rows_read": read, "rows_kept": kept, "rows_set_aside": aside}


def split_warnings(warnings: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(notes, the other warnings): notes say how the loader read the files (unit
    prices from line totals, costs, what an order is, discount signs)."""
    notes, other = [], []
    for w in warnings:
        (notes if w.get("rule") in NOTE_RULES else other).append(w)
    return notes, other


OUTLIER_RULE = (f"a quantity over {OUTLIER_FACTOR:g}× the product's usual (median) line and at "
                f"least {OUTLIER_MIN:,} units")


def outliers_frame(report: dict) -> pd.DataFrame:
    """The lines with quantities far outside their product's: file, row, product_id,
    quantity, kept (the report lists up to 200)."""
    frame = pd.DataFrame(report.get("outliers") or [])
    for col in ("file", "row", C.PRODUCT_ID, C.QUANTITY, "kept"):
        if col not in frame:
            frame[col] = pd.Series(dtype=object)
    frame = frame[["file", "row", C.PRODUCT_ID, C.QUANTITY, "kept"]]
    if len(frame):
        frame[C.QUANTITY] = frame[C.QUANTITY].astype(float)
        if (frame[C.QUANTITY] == frame[C.QUANTITY].round()).all():
            frame[C.QUANTITY] = frame[C.QUANTITY].astype(int)
    return frame


def non_merchandise_frame(report: dict) -> pd.DataFrame:
    """The non-merchandise codes the loader detected (product_id, name, lines)."""
    raw = report.get("non_merchandise")
    frame = pd.DataFrame(raw if raw is not None else [])
    for col in (C.PRODUCT_ID, C.NAME, "lines", "kept"):
        if col not in frame:
            frame[col] = pd.Series(dtype=object)
    return frame[[C.PRODUCT_ID, C.NAME, "lines", "kept"]]


# --- figures (pure functions of frames) --------------------------------------------------


def _style(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 15}},
        height=height,
        margin={"l": 10, "r": 10, "t": 45, "b": 10},
        template="plotly_white",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig


def activity_frequency(lines: pd.DataFrame) -> str:
    """"W" (weeks from Monday) normally; "D" when the data spans under 8 weeks,
    where a handful of weekly bars would say little."""
    t = pd.to_datetime(lines[C.TIMESTAMP])
    return "D" if len(t) == 0 or (t.max() - t.min()) < pd.Timedelta(weeks=8) else "W"


def weekly_activity(lines: pd.DataFrame, freq: str | None = "W") -> pd.DataFrame:
    """Orders and revenue per period (``freq`` "W": weeks from Monday, "D": days,
    None: chosen by ``activity_frequency``): columns week, orders, revenue."""
    freq = freq or activity_frequency(lines)
    revenue = lines[C.QUANTITY].astype(float) * lines[C.UNIT_PRICE].astype(float)
    frame = pd.DataFrame(
        {"t": pd.to_datetime(lines[C.TIMESTAMP]), "order": lines[C.ORDER_ID], "revenue": revenue}
    )
    period = frame["t"].dt.to_period("W-SUN" if freq == "W" else freq).dt.start_time
    out = frame.groupby(period).agg(orders=("order", "nunique"), revenue=("revenue", "sum"))
    return out.rename_axis("week").reset_index()


def weekly_activity_figure(lines: pd.DataFrame) -> go.Figure:
    freq = activity_frequency(lines)
    weekly = weekly_activity(lines, freq)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=weekly["week"], y=weekly["revenue"], name="revenue", marker_color=ACCENT,
                opacity=0.75)
    fig.add_scatter(x=weekly["week"], y=weekly["orders"], name="orders", mode="lines+markers",
                    line={"color": SECOND}, secondary_y=True)
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="revenue", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="orders", rangemode="tozero", secondary_y=True, showgrid=False)
    unit = "week" if freq == "W" else "day"
    return _style(fig, f"Orders and revenue per {unit}")


def price_histogram(lines: pd.DataFrame, bins_per_decade: int = 8) -> pd.DataFrame:
    """Counts of order lines by unit price in log-spaced bins: low, high, lines."""
    price = lines[C.UNIT_PRICE].astype(float)
    price = price[price > 0].to_numpy()
    if len(price) == 0:
        return pd.DataFrame({"low": [], "high": [], "lines": []})
    lo = np.floor(np.log10(price.min()) * bins_per_decade) / bins_per_decade
    hi = np.ceil(np.log10(price.max()) * bins_per_decade) / bins_per_decade
    edges = np.arange(lo, hi + 1e-9 + 1 / bins_per_decade, 1 / bins_per_decade)
    counts, edges = np.histogram(np.log10(price), bins=edges)
    return pd.DataFrame({"low": 10 ** edges[:-1], "high": 10 ** edges[1:], "lines": counts})


def price_figure(lines: pd.DataFrame) -> go.Figure:
    hist = price_histogram(lines)
    # bars drawn on log10(price) so every bin has the same width; ticks show prices
    mid = (np.log10(hist["low"]) + np.log10(hist["high"])) / 2
    width = np.log10(hist["high"]) - np.log10(hist["low"])
    fig = go.Figure(go.Bar(
        x=mid, y=hist["lines"], width=width, marker_color=ACCENT,
        customdata=np.stack([hist["low"], hist["high"]], axis=1) if len(hist) else None,
        hovertemplate="%{customdata[0]:.2f} – %{customdata[1]:.2f}: %{y} lines<extra></extra>",
    ))
    if len(hist):
        decades = np.arange(np.floor(mid.min()), np.ceil(mid.max()) + 1)
        fig.update_xaxes(tickvals=decades, ticktext=[f"{10**d:g}" for d in decades])
    fig.update_xaxes(title_text="unit price (log scale)")
    fig.update_yaxes(title_text="order lines")
    return _style(fig, "Unit price distribution")


def top_products(lines: pd.DataFrame, products: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """The ``n`` products with the highest revenue: product_id, name, revenue, orders."""
    revenue = lines[C.QUANTITY].astype(float) * lines[C.UNIT_PRICE].astype(float)
    agg = (
        pd.DataFrame({"p": lines[C.PRODUCT_ID].astype(str), "r": revenue, "o": lines[C.ORDER_ID]})
        .groupby("p")
        .agg(revenue=("r", "sum"), orders=("o", "nunique"))
        .reset_index()
        .sort_values(["revenue", "p"], ascending=[False, True])
        .head(n)
    )
    names = products.set_index(products[C.PRODUCT_ID].astype(str))[C.NAME]
    agg.insert(1, C.NAME, agg["p"].map(names).fillna(agg["p"]))
    return agg.rename(columns={"p": C.PRODUCT_ID}).reset_index(drop=True)


def _short(text: str, width: int = 34) -> str:
    text = str(text).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def top_products_figure(lines: pd.DataFrame, products: pd.DataFrame, n: int = 12) -> go.Figure:
    top = top_products(lines, products, n).iloc[::-1]  # largest at the top
    fig = go.Figure(go.Bar(
        x=top["revenue"], y=[_short(s) for s in top[C.NAME]], orientation="h",
        marker_color=ACCENT, customdata=top[[C.PRODUCT_ID, "orders"]],
        hovertemplate="%{y} (%{customdata[0]}): %{x:,.0f} in %{customdata[1]} orders<extra></extra>",
    ))
    fig.update_xaxes(title_text="revenue")
    return _style(fig, f"Top {n} products by revenue", height=420)


def top_pairs(dataset: Dataset, n: int = 12, min_count: int = 3) -> pd.DataFrame:
    """Pairs bought together far above chance: a, b (names), together, lift."""
    stats = copurchase_stats(dataset.baskets)
    pairs = stats.top_pairs(n=n, min_count=min_count)
    if len(pairs) == 0:
        return pd.DataFrame({"a": [], "b": [], "together": [], "lift": []})
    i, j = pairs[:, 0], pairs[:, 1]
    names = dataset.products[C.NAME].astype(str).to_numpy()
    together = np.asarray(stats.counts[i, j]).ravel().astype(int)
    lift = [stats.pair_lift(int(a), int(b)) for a, b in zip(i, j, strict=True)]
    return pd.DataFrame({"a": names[i], "b": names[j], "together": together, "lift": lift})


def top_pairs_figure(dataset: Dataset, n: int = 12) -> go.Figure:
    pairs = top_pairs(dataset, n).iloc[::-1]
    labels = [f"{_short(a, 22)} + {_short(b, 22)}" for a, b in zip(pairs["a"], pairs["b"], strict=True)]
    fig = go.Figure(go.Bar(
        x=pairs["lift"], y=labels, orientation="h", marker_color=SECOND,
        customdata=pairs[["together"]],
        hovertemplate="%{y}: lift %{x:.1f}, together in %{customdata[0]} orders<extra></extra>",
    ))
    fig.update_xaxes(title_text="lift (shrunk for rare pairs)")
    return _style(fig, "Top co-purchased pairs by lift", height=420)


def set_aside_figure(report: dict) -> go.Figure:
    """Lines set aside, by reason, largest first."""
    counts = pd.Series(report.get("set_aside") or {}, dtype=float)
    counts = counts[counts > 0].sort_values(ascending=True)
    fig = go.Figure(go.Bar(
        x=counts.astype(int).tolist(), y=[str(r).replace("_", " ") for r in counts.index],
        orientation="h", marker_color=SECOND, text=[f"{v:,.0f}" for v in counts],
        textposition="auto",
    ))
    fig.update_xaxes(title_text="order lines")
    return _style(fig, "Lines set aside, by reason", height=max(220, 60 + 32 * len(counts)))


@st.cache_data(show_spinner="Drawing the charts…", max_entries=8)
def dataset_figures(key: tuple[str, str, str], _dataset: Dataset) -> dict[str, go.Figure]:
    """The Data page's charts of one saved dataset; ``key`` is (workspace, name, save folder)."""
    return {
        "weekly": weekly_activity_figure(_dataset.lines),
        "price": price_figure(_dataset.lines),
        "top_products": top_products_figure(_dataset.lines, _dataset.products),
        "top_pairs": top_pairs_figure(_dataset),
    }
