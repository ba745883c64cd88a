"""Run CPU-bound stages on one thread.

On a 2-core machine shared with other work, torch's, scikit-learn's and
OpenBLAS's thread pools (three OpenMP/pthread pools in one process) spin at
their barriers whenever a thread is descheduled. Measured on Online Retail on a
busy 2-core machine: the preference fit 15-27 s with two threads vs 8.5-12.5 s
on one, the EASE inverse 3.7-4.4 s vs 0.9-1.0 s, scikit-learn's k-means search
8.5-13 s vs 1.5-1.9 s; on an idle machine one thread costs about as much as it
saves (fit 6.2 vs 7.4 s, recommendations 4.4 vs 3.4 s). The encoder keeps its
threads: one large matrix product per batch, where they pay.

On the same machine idle, the limit costs: the whole Online Retail run with
cached embeddings takes 9.4 s with the libraries' own thread counts and 11.1 s
on one thread. So there is no limit unless ``ENGINE_THREADS`` asks for one (a
number of threads; 1 on a 2-core machine shared with other heavy work).
"""

from __future__ import annotations

import contextlib
import os

import torch
from threadpoolctl import threadpool_limits


def thread_limit() -> int:
    """Threads for the CPU-bound stages; 0: no limit."""
    setting = os.environ.get("ENGINE_THREADS", "").strip()
    return max(int(setting), 0) if setting else 0


@contextlib.contextmanager
def single_threaded():
    """torch, OpenMP and BLAS on ``thread_limit()`` threads inside the block (no limit
    unless ENGINE_THREADS is set); restored after."""
    limit = thread_limit()
    if limit == 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(limit)
    try:
        with threadpool_limits(limit):
            yield
    finally:
        torch.set_num_threads(before)
