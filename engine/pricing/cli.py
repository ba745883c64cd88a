"""``python -m engine price FILE...``: bundles per segment, priced, as a price list.

Loads the files, finds segments (k-means stand-in of ``engine.bundles.segments``)
and bundles (beam search), calibrates demand, optimises each bundle's price
within the guardrails and writes the price list (CSV, XLSX or JSON by suffix).
Exit 0 on success, 2 with a message when the input or the settings are bad.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from engine.errors import DataValidationError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "price",
        help="price the recommended bundles and write the price list",
        description="Find bundles per segment, price them by simulated profit, write the list.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="order lines (+ products, customers)")
    p.add_argument("--segments", type=int, default=5)
    p.add_argument("--max-discount", type=float, default=0.3, help="largest discount (0.3 = 30%%)")
    p.add_argument("--margin-floor", type=float, default=0.1)
    p.add_argument("--ending", default="0.99", help="price ending, or 'none'")
    p.add_argument("--spread", type=float, default=0.2, help="largest spread between segments")
    p.add_argument("--customers", type=int, default=20_000, help="simulated customers per bundle")
    p.add_argument(
        "--elasticity",
        type=float,
        default=None,
        help="use this elasticity at list price instead of the data's price response",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="PATH", help=".csv, .xlsx or .json")
    p.set_defaults(func=run_price)


def run_price(args: argparse.Namespace) -> int:
    from engine import export
    from engine.bundles.beam import BeamConfig, beam_search
    from engine.bundles.objective import BundleInputs
    from engine.bundles.segments import kmeans_segments, segment_affinity
    from engine.data import load_files
    from engine.pricing import (
        DemandConfig,
        PricingConfig,
        bundle_synergy,
        calibrate_demand,
        price_bundles,
    )
    from engine.recommend import copurchase_stats

    try:
        ending = None if args.ending.lower() == "none" else float(args.ending)
        config = PricingConfig(
            max_discount=args.max_discount,
            margin_floor=args.margin_floor,
            price_ending=ending,
            max_segment_spread=args.spread,
            n_customers=args.customers,
            seed=args.seed,
        )
        demand_config = DemandConfig(
            elasticity=args.elasticity or 2.0, force_elasticity=args.elasticity is not None
        )
        dataset = load_files(args.files).dataset
        labels = kmeans_segments(dataset.matrix, args.segments, seed=args.seed)
        affinity = segment_affinity(dataset.matrix, labels, args.segments)
        stats = copurchase_stats(dataset.baskets)
        found = beam_search(BundleInputs.from_dataset(dataset, affinity, stats), BeamConfig())
        if not found:
            raise ValueError("no bundles found in these files")
        bundles = [tuple(int(i) for i in b.products) for b in found]
        segments = [int(b.segment) for b in found]
        model = calibrate_demand(dataset, labels, demand_config)
        blocks = [stats.lift_block(np.array(b), np.array(b)) for b in bundles]
        run = price_bundles(
            model.market(), bundles, segments, config, synergy=bundle_synergy(blocks, demand_config)
        )
        ids = [f"S{s + 1}-{'-'.join(b.product_ids)}" for s, b in zip(segments, found, strict=True)]
        prices = export.price_list(dataset, bundles, run.results, run.simulation, bundle_ids=ids)
        export.write(prices, args.out)
    except (ValueError, KeyError, DataValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    flagged = sum(not r.converged for r in run.results)
    print(
        f"{len(prices)} bundle prices written to {args.out}"
        + (f"; {flagged} flagged (see the reason column)" if flagged else "")
    )
    return 0
