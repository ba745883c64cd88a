"""Independent column work of the data stage, on the machine's cores.

Numbering a column of ids, parsing another's numbers, gathering the kept rows
of a third: pyarrow and numpy do these without holding the GIL, so a few
threads run them side by side. ``ENGINE_THREADS`` (see engine/threads.py)
caps the threads; 1 runs everything on the caller's thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def workers() -> int:
    """Threads for the data stage: the cores, or ``ENGINE_THREADS`` where it is set."""
    setting = os.environ.get("ENGINE_THREADS", "").strip()
    limit = int(setting) if setting.isdigit() else 0
    cores = os.cpu_count() or 1
    return min(limit, cores) if limit > 0 else cores


def run(*tasks: Callable[[], Any]) -> list[Any]:
    """The tasks' results, in order. The first runs on the caller's thread, the
    others on up to ``workers() - 1`` more; an exception is raised as it would be
    running them one after the other (the first task's first)."""
    n = min(workers(), len(tasks))
    if n <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(n - 1, thread_name_prefix="engine-data") as pool:
        futures = [pool.submit(task) for task in tasks[1:]]
        first = tasks[0]()
        return [first, *(f.result() for f in futures)]
