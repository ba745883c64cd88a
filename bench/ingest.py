"""Ingest benchmark: ``engine.data.load_files`` (read + map + validate + Dataset)
against a plain ``pandas.read_csv`` of the same file, both timed in the same run.

    .venv/bin/python bench/ingest.py [FILE...] [--repeat N]

Without FILE it measures the two real files in ../shared/data (each skipped
with a message when absent):

* Online Retail: online_retail.parquet written out as CSV to a temporary
  folder (541,909 lines); the baseline is ``pandas.read_csv`` of that CSV.
* Ta-Feng: ta_feng.csv.zip as it is (817,741 lines, zipped CSV with BOM, line
  totals, no order id); the baseline is ``pandas.read_csv`` of the same zip,
  which pandas unzips itself.

Both sides are timed best of N (default 3), the two alternating so that a busy
machine slows both alike; the ratio is load_files' best over read_csv's best
(goal <= 2x). Per-stage times come from running each stage alone on the same
file, best of N. The last line printed is the one-line summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import summary  # noqa: E402
from engine.data import Dataset, detect_kind, detect_mapping, load_files, read_table  # noqa: E402
from engine.data.validate import canonical_lines, check_lines  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ONLINE_RETAIL = DATA / "online_retail.parquet"
TA_FENG = DATA / "ta_feng.csv.zip"
GOAL = 2.0  # load_files may take at most this many times pandas.read_csv


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, steal) clock ticks of the whole machine so far, from /proc/stat (Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def contention(start: tuple[int, int] | None, wall: float, own_cpu: float) -> str:
    """How much of the machine other processes (and the hypervisor) took meanwhile."""
    end = _cpu_ticks()
    if start is None or end is None or wall <= 0:
        return "machine load unknown"
    tick = os.sysconf("SC_CLK_TCK")
    cores = os.cpu_count() or 1
    others = max((end[0] - start[0]) / tick - own_cpu, 0.0) / (wall * cores)
    steal = (end[1] - start[1]) / tick / (wall * cores)
    note = "" if others + steal < 0.1 else " (ratios less reliable: measure on a quiet machine)"
    return (f"other processes used {others:.0%} of the {cores} cores meanwhile, "
            f"the hypervisor took {steal:.0%}{note}")


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stage_times(path: Path, repeat: int) -> dict[str, float]:
    """Each stage of load_files on its own, best of ``repeat`` (the same calls
    load_files makes, one order-lines file, no catalogue)."""
    table = read_table(path)
    kind = detect_kind(table.frame.columns)
    mapping = detect_mapping(table.frame.columns, kind=kind)
    part, _ = canonical_lines(table, mapping)
    check = check_lines([part])
    return {
        "read": best_of(lambda: read_table(path), repeat),
        "map": best_of(lambda: canonical_lines(
            table, detect_mapping(table.frame.columns, kind=detect_kind(table.frame.columns))),
            repeat),
        "validate": best_of(lambda: check_lines([part]), repeat),
        "Dataset": best_of(lambda: Dataset._build(check.kept, keys=check.keys), repeat),
    }


def measure(label: str, path: Path, baseline: str, repeat: int) -> float:
    """Print one file's block; return load_files' time over read_csv's."""
    result = load_files([path])  # warm-up: imports, the file in the page cache
    reads, loads = [], []
    ticks, wall0, cpu0 = _cpu_ticks(), time.perf_counter(), time.process_time()
    for _ in range(repeat):  # alternating, so a busy machine slows both alike
        reads.append(best_of(lambda: pd.read_csv(path), 1))
        loads.append(best_of(lambda: load_files([path]), 1))
    load = contention(ticks, time.perf_counter() - wall0, time.process_time() - cpu0)
    t_read, t_load = min(reads), min(loads)
    ratio = t_load / t_read
    stages = stage_times(path, repeat)
    rest = t_load - sum(stages.values())
    rep = result.report
    print(f"{label}: {path.name}, {path.stat().st_size / 1e6:.1f} MB; {rep.rows_read:,} lines "
          f"read, {rep.rows_kept:,} kept, set aside "
          f"{ {k: v for k, v in rep.set_aside.items() if v} }")
    print(f"  baseline  {baseline}: {t_read:6.3f} s (best of {repeat})")
    print(f"  load_files([{path.name!r}])  {t_load:6.3f} s (best of {repeat}) "
          f"= {ratio:.2f}x the baseline (goal <= {GOAL:g}x)")
    print("  stages (each alone, best of {}): {}; rest of load_files {:.3f} s".format(
        repeat, ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()), rest))
    print(f"  while timing: {load}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="CSV/XLSX/Parquet files instead of the real ones")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    args = ap.parse_args(argv)
    ratios: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            for f in args.files:
                ratios[Path(f).name] = measure(Path(f).name, Path(f),
                                               f"pandas.read_csv({f!r})", args.repeat)
        else:
            if ONLINE_RETAIL.exists():
                csv = Path(tmp) / "online_retail.csv"
                pd.read_parquet(ONLINE_RETAIL).to_csv(csv, index=False)
                ratios["Online Retail"] = measure(
                    "Online Retail", csv, "pandas.read_csv of that CSV (written from "
                    f"{ONLINE_RETAIL.name} with to_csv(index=False))", args.repeat)
            else:
                print(f"Online Retail: skipped, {ONLINE_RETAIL} not found")
                ratios["Online Retail"] = None
            if TA_FENG.exists():
                ratios["Ta-Feng"] = measure(
                    "Ta-Feng", TA_FENG, f"pandas.read_csv({TA_FENG.name!r}) of the zip "
                    "itself (pandas unzips it)", args.repeat)
            else:
                print(f"Ta-Feng: skipped, {TA_FENG} not found")
                ratios["Ta-Feng"] = None
    measured = [r for r in ratios.values() if r is not None]
    verdict = ("SKIPPED (no data)" if not measured
               else "PASS" if all(r <= GOAL for r in measured) else "FAIL")
    parts = [f"{name} {'skipped' if r is None else f'{r:.2f}x'}" for name, r in ratios.items()]
    summary("ingest", *parts, f"load_files vs pandas.read_csv, goal <= {GOAL:g}x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
