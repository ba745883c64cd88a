"""Ingest benchmark: load_files (read + map + validate + Dataset) against a plain
``pandas.read_csv`` of the same file, timed in the same run.

    python bench/ingest.py [FILE] [--repeat N]

Without FILE, a CSV of the full Online Retail data (541,909 lines) is written
to a temporary folder from ../shared/data/online_retail.parquet, or a
synthetic 550,000-line file when that is absent. The last line printed is the
one-line summary.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import columns as C  # noqa: E402
from engine.data import Dataset, load_files, read_table  # noqa: E402

FULL = ROOT.parent / "shared" / "data" / "online_retail.parquet"


def make_csv(folder: Path, seed: int = 0) -> Path:
    """The full Online Retail set as CSV, or a synthetic file of the same shape."""
    path = folder / "online_retail.csv"
    if FULL.exists():
        pd.read_parquet(FULL).to_csv(path, index=False)
        return path
    n = 550_000
    rng = np.random.default_rng(seed)
    orders = np.arange(n) // 20
    pd.DataFrame(
        {
            "InvoiceNo": (536_000 + orders).astype(str),
            "StockCode": (20_000 + rng.integers(0, 4000, n)).astype(str),
            "Description": "PRODUCT " + rng.integers(0, 4000, n).astype(str),
            "Quantity": rng.integers(-2, 24, n),
            "InvoiceDate": (
                pd.Timestamp("2010-12-01") + pd.to_timedelta(orders, unit="min")
            ).strftime("%m/%d/%Y %H:%M"),
            "UnitPrice": rng.integers(0, 2000, n) / 100,
            "CustomerID": np.where(rng.random(n) < 0.25, np.nan, 12_000 + orders % 4300),
            "Country": "United Kingdom",
        }
    ).to_csv(path, index=False)
    return path


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="CSV/XLSX/Parquet file (default: generated)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.file) if args.file else make_csv(Path(tmp))
        result = load_files([path])  # warm-up: imports, file cache
        # alternate the two, so a busy machine slows both alike; the ratio is the
        # median of the paired ratios, the times are the best of each
        reads, loads = [], []
        for _ in range(args.repeat):
            reads.append(best_of(lambda: pd.read_csv(path), 1))
            loads.append(best_of(lambda: load_files([path]), 1))
        t_read, t_load = min(reads), min(loads)
        ratio = float(np.median(np.array(loads) / np.array(reads)))
        # where the time goes: reading as text, and building the Dataset from clean lines
        t_text = best_of(lambda: read_table(path), args.repeat)
        clean = result.dataset.lines.drop(columns=[C.CUSTOMER_IDX, C.PRODUCT_IDX])
        t_dataset = best_of(lambda: Dataset.from_frames(clean), args.repeat)
        size = path.stat().st_size
    rep = result.report
    print(f"file: {path.name}, {size / 1e6:.1f} MB")
    print(f"rows read {rep.rows_read:,}, kept {rep.rows_kept:,}, set aside {rep.set_aside}")
    print(f"pandas.read_csv  {t_read:6.2f} s (best of {args.repeat})")
    print(f"load_files       {t_load:6.2f} s (best of {args.repeat})")
    print(
        f"  of which read as text {t_text:5.2f} s, validate ~{t_load - t_text - t_dataset:5.2f} s, "
        f"Dataset.from_frames {t_dataset:5.2f} s"
    )
    print(f"ratio            {ratio:6.2f}x (median of {args.repeat} paired runs)")
    print(
        f"ingest: {rep.rows_read} lines, load+validate {t_load:.1f} s vs read_csv {t_read:.1f} s, "
        f"ratio {ratio:.1f}x (goal <= 2x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
