"""Encoder benchmark: ours vs sentence-transformers' encode(), and warm vs cold cache.

    .venv/bin/python -m bench.encoder [--n 3000] [--device cpu] [--batch-size 64]

Texts: distinct product descriptions of the full Online Retail data when it is
beside the checkout, else the sample market's products, else synthetic ones.
Both encoders run the same model from the same local directory on the same
device, each warmed up once, timed interleaved, best of --repeat. The ratio is
against sentence-transformers' defaults (batch 32); its speed at our batch
size is printed too, so the share of the gain due to batch size shows. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.common import ratio, summary, timed, verdict  # noqa: E402
from engine.device import choose_device  # noqa: E402
from engine.encoder import Encoder, EncoderConfig, encode_texts, product_texts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT.parent / "shared" / "data" / "online_retail.parquet"
SAMPLE_PRODUCTS = ROOT / "sample_data" / "products.csv"


def load_texts(n: int) -> tuple[list[str], str]:
    """Up to ``n`` distinct product texts and where they came from."""
    if FULL.exists():
        desc = pd.read_parquet(FULL, columns=["Description"])["Description"]
        texts = desc.dropna().str.strip().drop_duplicates().head(n).tolist()
        return texts, f"Online Retail descriptions ({FULL.name})"
    if SAMPLE_PRODUCTS.exists():
        products = pd.read_csv(SAMPLE_PRODUCTS, dtype=str, keep_default_na=False)
        texts = product_texts(products)
        return (texts * -(-n // len(texts)))[:n], f"sample market products ({SAMPLE_PRODUCTS.name})"
    rng = np.random.default_rng(0)
    words = "red blue vintage set of mug candle holder garden tea glass wooden box large".split()
    texts = [" ".join(rng.choice(words, rng.integers(2, 9))) for _ in range(n)]
    return texts, "synthetic"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="number of texts")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: chosen)")
    parser.add_argument("--batch-size", type=int, default=None, help="ours (default: by device)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    texts, source = load_texts(args.n)
    device = choose_device(args.device)
    config = EncoderConfig(device=str(device), batch_size=args.batch_size)
    print(f"{len(texts)} texts from {source}; device {device}")

    ours = Encoder(config)
    ours.encode(texts[:64])  # warm-up: loads the model, first kernels
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(config.model_name, device=str(device))
    st.encode(texts[:64], normalize_embeddings=True)

    # interleaved, best of --repeat: other work on the machine hits both alike
    ours_s = st_s = st_same_s = float("inf")
    for _ in range(args.repeat):
        ours_vec, t = timed(lambda: ours.encode(texts))
        ours_s = min(ours_s, t)
        st_vec, t = timed(lambda: st.encode(texts, normalize_embeddings=True))
        st_s = min(st_s, t)
        _, t = timed(
            lambda: st.encode(texts, batch_size=ours.batch_size, normalize_embeddings=True)
        )
        st_same_s = min(st_same_s, t)
    n = len(texts)
    print(f"ours: {n / ours_s:,.0f} texts/s, batch {ours.batch_size}, {ours.dtype_}")
    print(
        f"sentence-transformers: {n / st_s:,.0f} texts/s at its default batch 32, "
        f"{n / st_same_s:,.0f} texts/s at batch {ours.batch_size}"
    )
    agree = float((ours_vec * st_vec).sum(axis=1).min())
    print(f"worst cosine ours vs sentence-transformers: {agree:.5f}")

    cold_s = warm_s = float("inf")
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache_dir:
            _, t = timed(lambda d=cache_dir: encode_texts(texts, config, cache_dir=d))
            cold_s = min(cold_s, t)
            warm_vec, t = timed(lambda d=cache_dir: encode_texts(texts, config, cache_dir=d))
            warm_s = min(warm_s, t)
    assert np.allclose(warm_vec, ours_vec, atol=1e-4), "cached vectors differ from encoded ones"
    print(f"cache: cold {cold_s:.3f} s, warm {warm_s * 1000:.1f} ms")

    speedup = ratio(st_s, ours_s)
    summary(
        "encoder",
        f"{device.type}, {n} texts, ours {n / ours_s:,.0f} texts/s vs sentence-transformers "
        f"{n / st_s:,.0f} texts/s ({verdict(speedup, 2)})",
        f"warm cache {ratio(cold_s, warm_s):.0f}x faster than cold "
        f"({verdict(ratio(cold_s, warm_s), 50)})"
        + ("; goal on an H100 >= 100,000 texts/s end to end" if device.type == "cuda" else ""),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
