"""Held-out check of bundles on the real Online Retail data, beam vs frequent itemsets.

Run: ``HF_HUB_OFFLINE=1 python bench/bundles_holdout.py`` (says SKIP and exits 0
when the parquet is absent).

The last 8 weeks of orders are held out. On the earlier orders the product's own
pipeline runs: text embeddings (the workspace's cache), ``fit_preferences``
(segments and affinities of the hybrid model), ``bundle_inputs`` and
``find_bundles`` (beam search, finally ranked by the pricing stage's profit as
``engine run`` and the Bundles page do; ``--no-profit`` leaves that out). Baseline: the frequent itemsets of the
training orders (pairs and triples bought together ≥ 5 times, ranked by shrunk
lift, and by support), the same number per segment as the beam's, shown to
every segment: the issue's baseline, which the goal is measured against. A
stronger reference is printed too: each segment's own frequent itemsets (mined
on its members' training orders), which know the segment's repeat co-purchases.

Measures (engine/bundles/holdout.py), each beam vs the better itemset ranking:
"bought by segment", the issue's share of recommended bundles whose products are
bought together in hold-out orders, for bundles recommended to a segment: held
whole by at least one hold-out order of that segment's customers (it saturates
as segments grow: with 5 segments every method scores 1.0); the together rate
(per recommended (segment, bundle), the share of that segment's hold-out orders
holding all its products: a rate, so it never saturates); the share of
returning customers' hold-out orders holding ≥ 2 products of one of their
segment's bundles; and the same share of bundles over anybody's orders, which
saturates on this shop (every bundle of every method turns up somewhere).
``--validation`` runs the same on the training part only (its last ``--weeks``
held out): the place to compare settings without looking at the real hold-out.
Ends with one summary line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import summary, verdict  # noqa: E402
from engine import columns as C  # noqa: E402
from engine.bundles import (  # noqa: E402
    BeamConfig,
    beam_search,
    frequent_itemsets,
    order_segments,
    score_recommendations,
)
from engine.bundles.itemsets import frequent_itemsets_by_segment  # noqa: E402
from engine.pipeline import SeasonConfig, stages  # noqa: E402
from engine.pricing.demand import DemandConfig  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "online_retail.parquet"
GOAL = 1.2


def split(dataset, weeks: int):
    times = pd.to_datetime(dataset.lines[C.TIMESTAMP])
    cut = times.max() - pd.Timedelta(weeks=weeks)
    late = (times > cut).to_numpy()
    return dataset.subset_lines(~late), dataset.subset_lines(late), cut


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--weeks", type=int, default=8, help="hold-out weeks at the end")
    parser.add_argument("--segments", type=int, default=None,
                        help="number of segments (default: the preference stage's choice)")
    parser.add_argument("--per-segment", type=int, default=5, help="bundles per segment")
    parser.add_argument("--no-profit", dest="profit", action="store_false",
                        help="leave the pricing stage's profit out of the beam's final ranking")
    parser.add_argument("--validation", action="store_true",
                        help="evaluate inside the training period (for comparing settings)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"SKIP: {args.data} not found (the full Online Retail data lives in ../shared/data)")
        return 0

    from engine.data import load_files
    from engine.encoder import encode_products
    from engine.recommend import PreferenceConfig
    from engine.workspace import Workspace

    t0 = time.perf_counter()
    data = load_files([args.data]).dataset
    if args.validation:
        data = split(data, args.weeks)[0]
        print(f"VALIDATION: the real hold-out (last {args.weeks} weeks) is dropped")
    train, holdout, cut = split(data, args.weeks)
    print(
        f"loaded {data.n_orders:,} orders in {time.perf_counter() - t0:.1f} s; train "
        f"{train.n_orders:,} orders, hold-out {holdout.n_orders:,} orders after {cut:%Y-%m-%d}"
    )

    t0 = time.perf_counter()
    embeddings = encode_products(train.products, cache_dir=Workspace().embeddings_dir)
    config = PreferenceConfig()
    if args.segments:
        config = dataclasses.replace(
            config, n_segments=args.segments, k_range=(args.segments, args.segments)
        )
    segs = stages.segment(train, embeddings, config, seed=args.seed)
    prefs = segs.preferences
    beam = BeamConfig(kmin=2, kmax=3, n_bundles=args.per_segment, seed=args.seed)
    if args.profit:  # the pipeline's own bundle stage: ranked by the profit each adds
        demand = stages.demand(train, segs, DemandConfig(), SeasonConfig())
        bundles = stages.bundles(train, segs, embeddings, demand, beam, DemandConfig(),
                                 2_000, args.seed).bundles
    else:
        inputs = stages.bundle_inputs(train, segs, embeddings)
        bundles = beam_search(inputs, beam)
    ranker = args.profit
    n_segments = prefs.n_segments
    print(
        f"pipeline on the training part in {time.perf_counter() - t0:.1f} s: "
        f"{n_segments} segments (sizes {np.bincount(prefs.segment_labels).tolist()}), "
        f"{len(bundles)} beam bundles"
        + (" ranked by profit" if ranker else "")
    )

    segment_of_order = order_segments(
        holdout.customer_ids, holdout.order_customer, train.customer_ids, prefs.segment_labels
    )
    print(
        f"hold-out orders of returning customers: {(segment_of_order >= 0).sum():,} "
        f"of {len(segment_of_order):,}"
    )
    methods = {"beam search": [(b.segment, b.products) for b in bundles]}
    for rank_by in ("lift", "support"):
        top = frequent_itemsets(
            train.baskets, train.product_ids, n=args.per_segment, copurchase=prefs.copurchase,
            rank_by=rank_by,
        )
        methods[f"itemsets by {rank_by}"] = [
            (s, t.products) for s in range(n_segments) for t in top
        ]
    # reference beyond the baseline: each segment's own most frequent itemsets
    train_order_segment = prefs.segment_labels[np.asarray(train.order_customer)]
    for rank_by in ("lift", "support"):
        per_segment = frequent_itemsets_by_segment(
            train.baskets, train_order_segment, n_segments, train.product_ids,
            n=args.per_segment, rank_by=rank_by,
        )
        methods[f"seg. itemsets {rank_by}"] = [
            (s, t.products) for s, top in enumerate(per_segment) for t in top
        ]
    scores = {
        name: score_recommendations(holdout.baskets, segment_of_order, recs)
        for name, recs in methods.items()
    }

    columns = {
        "together_rate": ("together rate", "{:.4f}"),
        "bought_by_segment": ("bought by segment", "{:.3f}"),
        "orders_covered": ("orders covered", "{:.4f}"),
        "bought_anywhere": ("bought anywhere", "{:.3f}"),
    }
    print(f"{'':20}" + "".join(f"{label:>18}" for label, _ in columns.values())
          + f"{'bundles':>9}{'distinct':>9}{'mean size':>10}")
    for name, sc in scores.items():
        size = np.mean([len(p) for _, p in methods[name]])
        print(f"{name:20}" + "".join(f"{fmt.format(getattr(sc, key)):>18}"
                                     for key, (_, fmt) in columns.items())
              + f"{sc.n_recommendations:9d}{sc.n_distinct:9d}{size:10.2f}")
    print("together rate: share of the segment's hold-out orders holding the whole bundle, "
          "mean over (segment, bundle)")
    print("bought by segment: share of bundles held whole by ≥ 1 hold-out order of the segment")
    print("orders covered: returning customers' orders with ≥ 2 products of a segment's bundle")
    print("bought anywhere: share of bundles held whole by ≥ 1 hold-out order of anybody")
    for b in bundles[:: max(1, args.per_segment)][:5]:
        print(f"  e.g. {b.segment_label}: {' + '.join(b.names)}")

    beam_sc = scores["beam search"]
    parts = []
    for key, (label, fmt) in columns.items():
        mine = getattr(beam_sc, key)
        base = max(getattr(scores[f"itemsets by {r}"], key) for r in ("lift", "support"))
        ref = max(getattr(scores[f"seg. itemsets {r}"], key) for r in ("lift", "support"))
        ratio = mine / base if base else float("inf")
        ratio_ref = mine / ref if ref else float("inf")
        parts.append(
            f"{label} beam {fmt.format(mine)} vs itemsets {fmt.format(base)} = "
            + (verdict(ratio, GOAL) if key != "bought_anywhere" else f"{ratio:.2f}x")
            + f" (vs per-segment itemsets {fmt.format(ref)}: {ratio_ref:.2f}x)"
        )
    summary("bundles hold-out" + (" (validation)" if args.validation else ""), *parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
