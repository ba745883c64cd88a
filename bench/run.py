"""Time ``python -m engine run`` stage by stage: once cold (embeddings encoded into
an empty cache) and once with that cache, against issue 5's goals on 2 cores
(<= 60 s cold, <= 10 s cached).

    .venv/bin/python bench/run.py [FILE...]   (default: the full Online Retail file)

The two runs are the baseline of each other: the cached run's ``encode`` is the
cache hit, every other stage does the same work twice. Both run in this process,
so the cached one starts warm (its load is ~0.4 s faster than a fresh
``python -m engine run`` with a cache, whose own stage times the CLI prints).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.common import summary  # noqa: E402
from engine.pipeline import run  # noqa: E402

GOALS_S = {"cold": 60.0, "cached": 10.0}
DEFAULT = "/work/shared/data/online_retail.parquet"


def main(argv: list[str] | None = None) -> int:
    files = (argv if argv is not None else sys.argv[1:]) or [DEFAULT]
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "embeddings"
        for name in ("cold", "cached"):
            report = run(files, Path(tmp) / name, cache_dir=cache).report
            t = report["timings_s"]
            totals[name] = sum(t.values())
            stages = ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
            print(f"{name}: {stages}; total {totals[name]:.1f} s "
                  f"({report['customers']} customers, {report['segments']} segments, "
                  f"{report['bundles']} bundles)")
    parts = [
        f"{name} {totals[name]:.1f} s = {GOALS_S[name] / totals[name]:.2f}x the {GOALS_S[name]:g} s "
        f"goal" + ("" if totals[name] <= GOALS_S[name] else " MISSED")
        for name in totals
    ]
    summary("run", *parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
