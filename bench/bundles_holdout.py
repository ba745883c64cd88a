"""Held-out check of bundles on the real Online Retail data.

Run: ``python bench/bundles_holdout.py`` (skips cleanly when the parquet is absent).

The last 8 weeks of orders are held out. On the earlier orders: segments by
k-means on the SVD of the customer × product matrix (the recommend stage's
``fit_preferences`` is not used here, so the number measures the bundle stage
on simple segments), segment affinity = members' mean purchase shares,
co-purchase statistics, then beam-searched bundles per segment. Baseline: the
same number of frequent itemsets (pairs and triples bought together ≥ 5 times
in training), ranked by shrunk lift and, second baseline, by support.

Score: share of distinct recommended bundles with at least one hold-out order
containing at least 2 of their products (for pairs: both). Ends with one
summary line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import columns as C  # noqa: E402
from engine.bundles import (  # noqa: E402
    BeamConfig,
    BundleInputs,
    beam_search,
    evaluate_bundles,
    frequent_itemsets,
)
from engine.bundles.itemsets import order_coverage  # noqa: E402
from engine.bundles.segments import kmeans_segments, segment_affinity  # noqa: E402
from engine.recommend import copurchase_stats  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "online_retail.parquet"


def load(path: Path):
    from engine.data import load_files

    return load_files([path]).dataset


def split(dataset, weeks: int = 8):
    times = pd.to_datetime(dataset.lines[C.TIMESTAMP])
    cut = times.max() - pd.Timedelta(weeks=weeks)
    late = (times > cut).to_numpy()
    return dataset.subset_lines(~late), dataset.subset_lines(late), cut


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--per-segment", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"SKIP: {args.data} not found (the full Online Retail data lives in ../shared/data)")
        return 0

    t0 = time.perf_counter()
    data = load(args.data)
    train, holdout, cut = split(data)
    print(
        f"loaded {data.n_orders:,} orders in {time.perf_counter() - t0:.1f} s; "
        f"train {train.n_orders:,} orders, hold-out {holdout.n_orders:,} orders after {cut:%Y-%m-%d}"
    )

    t0 = time.perf_counter()
    labels = kmeans_segments(train.matrix, args.segments, seed=args.seed)
    affinity = segment_affinity(train.matrix, labels, args.segments)
    cp = copurchase_stats(train.baskets)
    inputs = BundleInputs.from_dataset(train, affinity, cp)
    config = BeamConfig(kmin=2, kmax=3, n_bundles=args.per_segment, seed=args.seed)
    bundles = beam_search(inputs, config)
    t_beam = time.perf_counter() - t0
    distinct = list({b.product_ids: b for b in bundles}.values())
    n = len(distinct)

    by_lift = frequent_itemsets(train.baskets, train.product_ids, n=n, copurchase=cp)
    by_support = frequent_itemsets(
        train.baskets, train.product_ids, n=n, copurchase=cp, rank_by="support"
    )
    beam_share = evaluate_bundles(train, holdout, distinct)
    lift_share = evaluate_bundles(train, holdout, by_lift)
    support_share = evaluate_bundles(train, holdout, by_support)
    beam_all = evaluate_bundles(train, holdout, distinct, min_together=None)
    lift_all = evaluate_bundles(train, holdout, by_lift, min_together=None)

    print(f"segments (k-means on SVD): sizes {np.bincount(labels).tolist()}")
    print(
        f"beam: {n} distinct bundles from {len(bundles)} ({args.segments} segments) in {t_beam:.1f} s"
    )
    print("share of bundles bought together in hold-out orders (≥ 2 of their products):")
    print(f"  beam search                 {beam_share:.3f}")
    print(f"  frequent itemsets by lift   {lift_share:.3f}")
    print(f"  frequent itemsets by support {support_share:.3f}")
    print(f"all products together: beam {beam_all:.3f}, itemsets by lift {lift_all:.3f}")
    for b in distinct[:5]:
        print(f"  e.g. segment {b.segment_label}: {' + '.join(b.names)}")

    # per-order rate: each segment sees its own bundles (beam) or the same global
    # top itemsets (baseline), as many per segment
    train_idx = {c: i for i, c in enumerate(train.customer_ids)}
    cust = [train_idx.get(c, -1) for c in holdout.customer_ids[holdout.order_customer]]
    order_segment = np.array([labels[i] if i >= 0 else -1 for i in cust])
    per_seg = {s: [b for b in bundles if b.segment == s] for s in range(args.segments)}
    k = args.per_segment
    top_lift = frequent_itemsets(train.baskets, train.product_ids, n=k, copurchase=cp)
    top_support = frequent_itemsets(
        train.baskets, train.product_ids, n=k, copurchase=cp, rank_by="support"
    )
    cov = {}
    for need in (2, None):
        cov["beam", need] = order_coverage(holdout, per_seg, order_segment, need)
        cov["lift", need] = order_coverage(
            holdout, dict.fromkeys(per_seg, top_lift), order_segment, need
        )
        cov["support", need] = order_coverage(
            holdout, dict.fromkeys(per_seg, top_support), order_segment, need
        )
    print(
        f"share of hold-out orders of returning customers ({(order_segment >= 0).sum():,}) "
        f"holding one of their segment's {k} bundles:"
    )
    for need, what in ((2, "≥ 2 of its products"), (None, "all its products")):
        print(
            f"  {what:>20}: beam {cov['beam', need]:.4f}, itemsets by lift "
            f"{cov['lift', need]:.4f}, by support {cov['support', need]:.4f}"
        )
    base = max(cov["lift", 2], cov["support", 2])
    ratio = cov["beam", 2] / base if base else float("inf")
    print(
        f"SUMMARY bundles hold-out: bundles ever bought together (≥2): beam {beam_share:.3f}, "
        f"itemsets {lift_share:.3f}/{support_share:.3f} (saturated); orders covered (≥2): beam "
        f"{cov['beam', 2]:.4f} vs best itemset baseline {base:.4f} = {ratio:.2f}× (goal ≥ 1.2×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
