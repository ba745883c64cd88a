"""``python -m engine bundles FILE...``: beam-searched bundles per segment.

Segments here are the stand-in ones of ``engine.bundles.segments`` (k-means on
the SVD of the purchase matrix); the pipeline's ``run`` uses the recommend
stage's preferences instead. Exit 0 on success, 2 with a message when the
input or the settings are bad.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from engine.bundles.beam import BeamConfig, beam_search, bundles_frame
from engine.bundles.objective import BundleInputs
from engine.bundles.segments import kmeans_segments, segment_affinity
from engine.errors import DataValidationError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bundles",
        help="recommend bundles per customer segment by beam search",
        description="Load the files, find segments, and print the best bundles of each.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="order lines (+ products, customers)")
    p.add_argument("--segments", type=int, default=5, help="number of segments (default 5)")
    p.add_argument("--kmin", type=int, default=2)
    p.add_argument("--kmax", type=int, default=3)
    p.add_argument("--beam-width", type=int, default=20)
    p.add_argument("--per-segment", type=int, default=5, help="bundles per segment")
    p.add_argument("--anchor", nargs="+", default=[], metavar="PRODUCT_ID")
    p.add_argument("--exclude", nargs="+", default=[], metavar="PRODUCT_ID")
    p.add_argument("--one-per-category", action="store_true")
    p.add_argument("--in-stock-only", action="store_true")
    p.add_argument("--min-lift", type=float, default=None, help="minimum complementarity (lift)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="CSV", help="also write the bundles to this CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_bundles)


def run_bundles(args: argparse.Namespace) -> int:
    from engine.data import load_files
    from engine.recommend import copurchase_stats

    try:
        config = BeamConfig(
            kmin=args.kmin,
            kmax=args.kmax,
            beam_width=args.beam_width,
            n_bundles=args.per_segment,
            anchor=tuple(args.anchor),
            exclude=tuple(args.exclude),
            one_per_category=args.one_per_category,
            in_stock_only=args.in_stock_only,
            min_complementarity=args.min_lift,
            seed=args.seed,
        )
        if args.segments < 1:
            raise ValueError(f"--segments must be ≥ 1, got {args.segments}")
        dataset = load_files(args.files).dataset
        labels = kmeans_segments(dataset.matrix, args.segments, seed=args.seed)
        affinity = segment_affinity(dataset.matrix, labels, args.segments)
        inputs = BundleInputs.from_dataset(dataset, affinity, copurchase_stats(dataset.baskets))
        bundles = beam_search(inputs, config)
    except (ValueError, KeyError, DataValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    frame = bundles_frame(bundles)
    if args.out:
        frame.to_csv(args.out, index=False)
    if args.json:
        print(json.dumps({"bundles": frame.to_dict(orient="records")}, default=str))
    else:
        for segment, rows in frame.groupby("segment_idx", sort=True):
            print(f"segment {segment}:")
            for row in rows.itertuples():
                print(f"  {row.rank}. {row.product_names}  (list {row.list_total:.2f}, "
                      f"score {row.total:.3f})")
    return 0
