"""Small helpers shared by the benchmarks: timing, ratios, the summary line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """Run ``fn`` ``repeat`` times; return the last result and the best wall time in seconds."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def ratio(baseline_s: float, ours_s: float) -> float:
    """How many times faster ours is than the baseline (inf if ours took no measurable time)."""
    return baseline_s / ours_s if ours_s > 0 else float("inf")


def verdict(value: float, goal: float) -> str:
    """``"2.07x, goal >= 2x"`` plus ``" MISSED"`` when the goal is not met."""
    return f"{value:.2f}x, goal >= {goal:g}x" + ("" if value >= goal else " MISSED")


def summary(name: str, *parts: str) -> str:
    """The one line a bench ends with: ``name: part; part; ...``; printed and returned."""
    line = f"{name}: " + "; ".join(parts)
    print(line, flush=True)
    return line
