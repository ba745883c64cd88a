"""``python -m engine run`` on generated grocery shops of 0.25x, 1x and 4x a real
grocery retailer's export: time and peak memory per stage, and how they grow.

    .venv/bin/python bench/scale.py [--scales 0.25,1,4] [--seed 0] [--keep DIR]

The shape at 1x is that of the grocery export in issue 14 (a household panel
like dunnhumby's "The Complete Journey"), and every count scales with it:

* 1,470,000 order lines drawn (~1.41M once a product drawn twice for one
  basket is one line), 2,467 households, in baskets of 1 + Poisson(7.9)
  lines (mean ~8.9, so ~165k baskets, ~67 per household over 102 weeks);
* a catalogue of 92,000 products (``product.csv``: manufacturer number,
  department, brand, commodity, sub-commodity, package size, no name; 300
  commodities of 8 sub-commodities, 400 sizes), of which 63,000 sell; the
  rest are in the catalogue only;
* which products sell: every sold product at least once, the rest of the
  lines by a Zipf(0.9) popularity; each household has 40 favourites (drawn by
  that popularity) from which half of its lines come, so repeat purchases are
  as common as in real grocery data;
* the transaction file as the real export has it: household_key, BASKET_ID,
  PRODUCT_ID, QUANTITY, SALES_VALUE (the line's total), RETAIL_DISC and
  COUPON_DISC (negative amounts), WEEK_NO, TRANSACTION_TIMESTAMP; 20% of the
  lines carry a retail discount; a few fuel lines of thousands of units
  (outlier_quantity).

Each shop runs in a fresh ``python -m engine run`` process, cold (empty
embedding cache), so time and memory are what an analyst's first run costs.
A sampling thread in that process reads its resident memory every 20 ms and
attributes it to the stage running. The baseline of the growth figures is
the 1x shop measured in the same run: time and peak memory per order line at
4x over those at 1x (goal <= 1, i.e. at most linear). Issue 14's goals at 1x:
<= 120 s and <= 4 GB on 2 cores. The last line printed is the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import summary  # noqa: E402

LINES, HOUSEHOLDS, CATALOGUE, SOLD = 1_470_000, 2_467, 92_000, 63_000
EXTRA_LINES_PER_BASKET = 7.9  # Poisson mean; a basket has 1 + that many lines
FAVOURITES = 40
GOAL_S, GOAL_GB = 120.0, 4.0
DEPARTMENTS = ["GROCERY", "DRUG GM", "PRODUCE", "MEAT", "MEAT-PCKGD", "DELI", "PASTRY",
               "NUTRITION", "SEAFOOD", "FROZEN GROCERY", "DAIRY", "FLORAL", "SPIRITS",
               "KIOSK-GAS", "COSMETICS", "MISC SALES TRAN"]
WORDS = ["apple", "berry", "bread", "butter", "cheese", "chicken", "chips", "cocoa", "coffee",
         "cookie", "corn", "cream", "egg", "fish", "flour", "garlic", "ginger", "honey",
         "juice", "lemon", "milk", "mint", "noodle", "nut", "oat", "olive", "onion", "orange",
         "pasta", "pepper", "pizza", "pork", "potato", "rice", "salad", "salsa", "salt",
         "sauce", "soap", "soda", "soup", "spice", "sugar", "tea", "tomato", "tuna", "vanilla",
         "water", "wine", "yogurt"]


def grocery_shop(scale: float, out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``transaction_data.csv`` and ``product.csv`` of a shop ``scale`` times
    the grocery shape into ``out``; return their paths."""
    rng = np.random.default_rng(seed)
    n_lines, n_households = round(LINES * scale), max(round(HOUSEHOLDS * scale), 10)
    n_catalogue, n_sold = round(CATALOGUE * scale), round(SOLD * scale)
    products = _catalogue(rng, n_catalogue)
    sold = rng.permutation(n_catalogue)[:n_sold]  # which catalogue products ever sell
    popularity = 1.0 / np.arange(1, n_sold + 1) ** 0.9
    popularity /= popularity.sum()

    # baskets: households take turns by their own activity, lines per basket 1 + Poisson
    activity = rng.lognormal(0.0, 0.8, n_households)
    sizes = 1 + rng.poisson(EXTRA_LINES_PER_BASKET, int(n_lines / (1 + EXTRA_LINES_PER_BASKET) * 1.1))
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n_lines) + 1]
    sizes[-1] -= sizes.sum() - n_lines
    basket_household = rng.choice(n_households, len(sizes), p=activity / activity.sum())
    basket_day = rng.integers(1, 712, len(sizes))
    basket_minute = rng.integers(7 * 60, 22 * 60, len(sizes))
    basket = np.repeat(np.arange(len(sizes)), sizes)
    household = basket_household[basket]

    # half of a household's lines from its favourites, the rest by popularity;
    # every sold product appears at least once
    favourites = rng.choice(n_sold, (n_households, FAVOURITES), p=popularity)
    rank = rng.choice(n_sold, n_lines, p=popularity)
    own = rng.random(n_lines) < 0.5
    rank[own] = favourites[household[own], rng.integers(0, FAVOURITES, int(own.sum()))]
    rank[rng.permutation(n_lines)[:n_sold]] = np.arange(n_sold)
    product = sold[rank]

    price = products["price"].to_numpy()[product]
    quantity = np.where(rng.random(n_lines) < 0.8, 1, 1 + rng.poisson(1.5, n_lines))
    fuel = rng.choice(n_lines, max(n_lines // 200_000, 1), replace=False)
    quantity[fuel] = rng.integers(2_000, 90_000, len(fuel))
    retail = np.where(rng.random(n_lines) < 0.2, -np.round(price * quantity * rng.uniform(0.1, 0.4, n_lines), 2), 0.0)
    coupon = np.where(rng.random(n_lines) < 0.01, -np.round(price * quantity * 0.25, 2), 0.0)
    sales = np.round(price * quantity + retail + coupon, 2)
    day, minute = basket_day[basket], basket_minute[basket]
    stamp = (pd.Timestamp("2024-01-01") + pd.to_timedelta(day - 1, "D")
             + pd.to_timedelta(minute, "min"))
    lines = pd.DataFrame({
        "household_key": household + 1,
        "BASKET_ID": basket + 26_984_851_472,
        "PRODUCT_ID": products["PRODUCT_ID"].to_numpy()[product],
        "QUANTITY": quantity,
        "SALES_VALUE": sales,
        "RETAIL_DISC": retail,
        "COUPON_DISC": coupon,
        "WEEK_NO": (day - 1) // 7 + 1,
        "TRANSACTION_TIMESTAMP": stamp.strftime("%Y-%m-%d %H:%M:%S"),
    })
    # a product once per basket, as a till adds up repeats; the export's time order
    lines = lines.drop_duplicates(["BASKET_ID", "PRODUCT_ID"]).sort_values(
        ["TRANSACTION_TIMESTAMP", "BASKET_ID"], kind="stable")
    out.mkdir(parents=True, exist_ok=True)
    lines_path, products_path = out / "transaction_data.csv", out / "product.csv"
    lines.to_csv(lines_path, index=False)
    products.drop(columns="price").to_csv(products_path, index=False)
    return lines_path, products_path


def _catalogue(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Products with department, brand, commodity, sub-commodity and size (no name):
    300 commodities of 8 sub-commodities each, 400 package sizes of Zipf-like
    frequency, a manufacturer number (a code: the encoder leaves it out)."""
    n_commodities, n_subs = 300, 8
    commodity_words = rng.choice(len(WORDS), (n_commodities, 2))
    commodity = rng.integers(0, n_commodities, n)
    sub = rng.integers(0, n_subs, n)
    words = np.array([w.upper() for w in WORDS], dtype=object)
    commodity_desc = words[commodity_words[commodity, 0]] + " " + words[commodity_words[commodity, 1]]
    sub_word = words[(commodity * 7 + sub * 3) % len(WORDS)]
    sizes = np.array([f"{q} {unit}" for unit in ("OZ", "CT", "LB", "ML") for q in range(1, 101)],
                     dtype=object)
    size_weight = 1.0 / np.arange(1, len(sizes) + 1)
    return pd.DataFrame({
        "PRODUCT_ID": 25_671 + np.arange(n) * 7,
        "MANUFACTURER": rng.integers(1, 6_000, n),
        "DEPARTMENT": np.array(DEPARTMENTS, dtype=object)[commodity % len(DEPARTMENTS)],
        "BRAND": np.where(rng.random(n) < 0.7, "National", "Private"),
        "COMMODITY_DESC": commodity_desc,
        "SUB_COMMODITY_DESC": commodity_desc + " " + sub_word,
        "CURR_SIZE_OF_PRODUCT": rng.choice(sizes, n, p=size_weight / size_weight.sum()),
        "price": np.round(rng.lognormal(1.0, 0.6, n), 2),
    })


CHILD = r"""
import json, os, resource, sys, threading, time
from engine.pipeline import run
from engine.pipeline.config import RunConfig

files, out, cache = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
page = os.sysconf("SC_PAGE_SIZE")
current, peaks, starts = ["start"], {}, {}
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
def sample():
    while current[0] != "done":
        peaks[current[0]] = max(peaks.get(current[0], 0), rss())
        time.sleep(0.02)
def progress(stage, fraction):
    if stage != current[0]:
        starts[stage] = rss()
        current[0] = stage
        print(f"  ... {stage} from {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
t0 = time.perf_counter()
threading.Thread(target=sample, daemon=True).start()
result = run(files, out, RunConfig(), cache_dir=cache, progress=progress)
wall = time.perf_counter() - t0
current[0] = "done"
print(json.dumps({"timings": result.report["timings_s"], "peaks": peaks, "starts": starts,
                  "wall": wall, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "segments": result.report["segments"], "bundles": result.report["bundles"],
                  "customers": result.report["customers"], "rows_kept": result.report["data"]["rows_kept"]}))
"""


def measure(files: list[Path], work: Path) -> dict:
    """One cold ``engine run`` in its own process: its timings and memory."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, files), str(work / "out"), str(work / "cache")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # stage lines go to stderr
    if done.returncode != 0:
        raise SystemExit(f"engine run failed (exit {done.returncode}); its messages are above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="0.25,1,4", help="comma-separated (default 0.25,1,4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="write the shops here and keep them")
    args = ap.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for scale in scales:
            shop = base / f"grocery_{scale:g}x"
            t = time.perf_counter()
            files = list(grocery_shop(scale, shop, args.seed))
            made = time.perf_counter() - t
            r = results[scale] = measure(files, shop)
            gb = r["maxrss"] / 1e9
            print(f"{scale:g}x: {r['rows_kept']:,} lines kept, {r['customers']:,} customers, "
                  f"{r['segments']} segments, {r['bundles']} bundles (shop written in {made:.0f} s)")
            print(f"  engine run {r['wall']:.1f} s, peak {gb:.2f} GB")
            for stage, secs in r["timings"].items():
                peak = r["peaks"].get(stage, 0) / 1e9
                grew = (r["peaks"].get(stage, 0) - r["starts"].get(stage, 0)) / 1e9
                print(f"  {stage:16s} {secs:7.1f} s   peak {peak:5.2f} GB (+{grew:.2f} GB in the stage)")
            print(f"  writing outputs  {r['wall'] - sum(r['timings'].values()):7.1f} s")
    parts = []
    if 1.0 in results:
        one = results[1.0]
        ok = one["wall"] <= GOAL_S and one["maxrss"] / 1e9 <= GOAL_GB
        parts.append(f"1x {one['wall']:.0f} s, {one['maxrss'] / 1e9:.2f} GB (goal <= {GOAL_S:g} s, "
                     f"<= {GOAL_GB:g} GB: {'PASS' if ok else 'FAIL'})")
        for scale in (s for s in scales if s > 1):
            r = results[scale]
            t_ratio = r["wall"] / one["wall"] / scale
            m_ratio = r["maxrss"] / one["maxrss"] / scale
            parts.append(f"{scale:g}x per line vs 1x: time {t_ratio:.2f}, memory {m_ratio:.2f} "
                         f"(goal <= 1: {'PASS' if max(t_ratio, m_ratio) <= 1 else 'FAIL'})")
    else:
        parts += [f"{s:g}x {r['wall']:.0f} s, {r['maxrss'] / 1e9:.2f} GB" for s, r in results.items()]
    summary("scale", *parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
