"""Command line: ``python -m engine {validate,evaluate,recommend,bundles,price,run} ...``.

The commands live in ``engine.pipeline.cli``; handlers return the exit status.
Exit 0 on success, 2 with a message on standard error when the input is bad.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.pipeline import cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Personalised bundles and bundle prices from a shop's order history.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
