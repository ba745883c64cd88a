"""The transformer product encoder and its on-disk embedding cache.

``encode_products`` is the entry point the pipeline and the pages use: the
text of each product (``product_texts``) encoded by ``Encoder``, with vectors
already in the cache read back instead of encoded again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.encoder.cache import EmbeddingCache, cache_keys
from engine.encoder.model import (
    Encoder,
    EncoderConfig,
    default_model_path,
    half_precision_agrees,
    load_model,
)
from engine.encoder.similarity import nearest, text_similarity
from engine.encoder.texts import product_texts

__all__ = [
    "EmbeddingCache",
    "Encoder",
    "EncoderConfig",
    "default_model_path",
    "encode_products",
    "encode_texts",
    "half_precision_agrees",
    "load_model",
    "nearest",
    "product_texts",
    "text_similarity",
]

log = logging.getLogger(__name__)


def encode_texts(
    texts: list[str],
    config: EncoderConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Embeddings of ``texts`` (n × d, float32, L2-normalised), through the cache if given.

    Only texts missing from the cache are encoded (each distinct text once);
    the model is not even loaded when everything is cached.
    """
    encoder = Encoder(config)
    if cache_dir is None:
        return encoder.encode(texts, progress=progress)
    cache = EmbeddingCache(cache_dir)
    keys = cache_keys(encoder.config.identity, texts)
    found, vectors = cache.get_many(keys)
    missing = np.flatnonzero(~found)
    log.info("embedding cache: %d of %d texts cached", len(texts) - len(missing), len(texts))
    if len(missing) == 0:
        if progress is not None:
            progress(1.0)
        return vectors
    # encode each distinct missing text once
    new_keys = list(dict.fromkeys(keys[i] for i in missing))
    text_of = {keys[i]: texts[i] for i in missing}
    new_vectors = encoder.encode([text_of[k] for k in new_keys], progress=progress)
    cache.put_many(new_keys, new_vectors)
    if not found.any():  # nothing cached: get_many had no width to give
        vectors = np.zeros((len(texts), new_vectors.shape[1]), dtype=np.float32)
    row_of = {k: r for r, k in enumerate(new_keys)}
    vectors[missing] = new_vectors[[row_of[keys[i]] for i in missing]]
    return vectors


def encode_products(
    products: pd.DataFrame,
    config: EncoderConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Embeddings of a catalogue: row *i* is product row *i* (P × d, float32, L2-normalised)."""
    return encode_texts(product_texts(products), config, cache_dir, progress)
