"""``python -m engine evaluate FILE...`` and ``python -m engine recommend FILE... --out recs.csv``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from engine.errors import DataValidationError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    e = subparsers.add_parser(
        "evaluate",
        help="offline quality of the hybrid against popularity, item-kNN and EASE",
        description="Temporal hold-out of the last weeks: Recall@K, NDCG@K, coverage, "
                    "and a cold-start table. Exit 2 on bad input.",
    )
    e.add_argument("files", nargs="+", metavar="FILE", help="order lines (+ catalogue, customers)")
    e.add_argument("--holdout-weeks", type=int, default=8)
    e.add_argument("--k", type=int, default=20)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=run_evaluate)

    r = subparsers.add_parser(
        "recommend",
        help="write the top-k products for every customer with history",
        description="Columns: customer_id, rank, product_id, score, reason. Exit 2 on bad input.",
    )
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--out", required=True, help="CSV file to write")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-reasons", action="store_true", help="leave the reason column empty")
    r.set_defaults(func=run_recommend)


def _load(files: list[str]):
    """Dataset and embeddings, or an error message for exit status 2."""
    from engine.data import load_files
    from engine.encoder import encode_products

    missing = [f for f in files if not Path(f).exists()]
    if missing:
        return None, None, f"file not found: {', '.join(missing)}"
    try:
        dataset = load_files(files).dataset
    except DataValidationError as exc:
        return None, None, f"cannot load the files:\n{exc}"
    from engine.workspace import Workspace

    # the workspace's cache, shared with `run` and the dashboard
    emb = encode_products(dataset.products, cache_dir=Workspace().embeddings_dir)
    return dataset, emb, None


def run_evaluate(args: argparse.Namespace) -> int:
    from engine.recommend.evaluate import evaluate

    if args.k < 1 or args.holdout_weeks < 1:
        print("error: --k and --holdout-weeks must be at least 1", file=sys.stderr)
        return 2
    dataset, emb, error = _load(args.files)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = evaluate(dataset, emb, args.holdout_weeks, args.k, seed=args.seed)
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), default=float))
        return 0
    print(f"hold-out: last {args.holdout_weeks} weeks; {result.protocol}")
    print(result.table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print("\ncold start:")
    print(result.cold_start.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    from engine.recommend.preferences import fit_preferences, recommend_top_k

    if args.k < 1:
        print("error: --k must be at least 1", file=sys.stderr)
        return 2
    dataset, emb, error = _load(args.files)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    prefs = fit_preferences(dataset, emb, seed=args.seed)
    recs = recommend_top_k(prefs, dataset, emb, args.k, reasons=not args.no_reasons)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    recs.to_csv(args.out, index=False)
    print(f"wrote {len(recs)} rows for {dataset.n_customers} customers to {args.out}")
    return 0
