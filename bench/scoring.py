"""Hybrid scoring + top-k for every customer against a bare matrix product of the same shape.

Run: ``python bench/scoring.py`` (``--quick`` for a smaller run; ``--device cuda`` to force).

Synthetic shop: ``--customers`` × ``--products`` with ~``--lines`` order lines,
text embeddings random unit vectors (d=384). The hybrid is fitted once; then
``HybridModel.recommend`` with the starting weights (EASE + text transfer +
content + trend and popularity; item-kNN has weight 0 at w_ease = 1 and is
skipped, as the tuned weights on both data sets do; seen products masked,
top-k, in chunks) is timed for all customers, against
the bare product of the dense history chunk (n × P) with a dense P × P matrix
on the same device, chunked the same way: the least any EASE-style scorer
must do. Ratio = bare time / our time (goal ≥ 0.8). Ends with ONE summary line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import columns as C  # noqa: E402
from engine.data import Dataset  # noqa: E402
from engine.device import choose_device  # noqa: E402
from engine.recommend import HybridModel, PreferenceConfig  # noqa: E402


def synthetic(n_customers: int, n_products: int, n_lines: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_products + 1) ** 0.8  # long tail, every product sold
    cust = rng.integers(0, n_customers, n_lines)
    prod = rng.choice(n_products, n_lines, p=pop / pop.sum())
    order = cust * 10 + rng.integers(0, 3, n_lines)  # a few orders per customer
    day = rng.integers(0, 365, n_lines)
    lines = pd.DataFrame({
        C.ORDER_ID: order.astype(str), C.CUSTOMER_ID: cust.astype(str),
        C.PRODUCT_ID: prod.astype(str), C.QUANTITY: 1, C.UNIT_PRICE: 1.0,
        C.TIMESTAMP: pd.Timestamp("2025-01-01") + pd.to_timedelta(day[order % len(day)], "D"),
    })
    products = pd.DataFrame({C.PRODUCT_ID: np.arange(n_products).astype(str), C.PRICE: 1.0})
    ds = Dataset.from_frames(lines, products)
    emb = rng.standard_normal((ds.n_products, 384)).astype(np.float32)
    return ds, emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare(X, dense: torch.Tensor, k: int, chunk: int, device) -> float:
    t = time.perf_counter()
    for start in range(0, X.shape[0], chunk):
        rows = torch.as_tensor(X[start : start + chunk].toarray(), device=device)
        out = rows @ dense
    _sync(device)
    del out
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--products", type=int, default=4000)
    ap.add_argument("--lines", type=int, default=400000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.customers, args.products, args.lines = 4000, 1500, 60000
    device = choose_device(args.device)
    ds, emb = synthetic(args.customers, args.products, args.lines)
    # the starting weights, not tuned ones: every part but item-kNN (w_ease = 1) is
    # computed, whatever a tuning on random data would switch off
    cfg = PreferenceConfig(device=str(device), tune_weights=False)
    t = time.perf_counter()
    model = HybridModel(cfg).fit(ds, emb)
    fit_s = time.perf_counter() - t
    n, P = model.X_.shape
    dense = torch.rand(P, P, device=device)
    bare(model.X_[:256], dense, args.k, cfg.chunk_size, device)  # warm-up
    model.recommend(np.arange(min(n, 256)), args.k)
    ours, base = [], []
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        model.recommend(np.arange(n), args.k)
        _sync(device)
        ours.append(time.perf_counter() - t)
        base.append(bare(model.X_, dense, args.k, cfg.chunk_size, device))
    ours_s, base_s = min(ours), min(base)
    ratio = base_s / ours_s
    pairs = n * P / ours_s
    print(f"device {device}; {n} customers x {P} products; fit {fit_s:.2f} s")
    print(f"hybrid score + top-{args.k}: {ours_s:.3f} s; bare matmul same shape: {base_s:.3f} s")
    print(f"SUMMARY scoring: ratio bare/ours {ratio:.2f} (goal >= 0.8), "
          f"{pairs / 1e6:.1f} M customer-product scores/s on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
