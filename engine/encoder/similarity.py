"""Cosine similarity between L2-normalised embeddings, and nearest neighbours."""

from __future__ import annotations

import numpy as np


def text_similarity(embeddings: np.ndarray, rows, cols) -> np.ndarray:
    """Cosine block: entry (a, b) is the similarity of ``rows[a]`` and ``cols[b]``.

    ``embeddings`` must be L2-normalised (as the encoder returns them), so the
    cosine is a dot product. ``rows``/``cols`` are integer indices or slices.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    return e[rows] @ e[cols].T


def nearest(embeddings: np.ndarray, idx, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar items to item ``idx``, the item itself excluded.

    Returns (indices, scores) sorted by score descending, ties by lower index.
    For an integer ``idx`` both are 1-D of length min(k, n-1); for an array of
    indices they are 2-D, one row per query item.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    n = len(e)
    single = np.ndim(idx) == 0
    query = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    if ((query < -n) | (query >= n)).any():
        raise IndexError(f"item index out of range for {n} embeddings: {query.tolist()[:5]}")
    query = query % n
    k = max(0, min(int(k), n - 1))
    sims = e[query] @ e.T
    sims[np.arange(len(query)), query] = -np.inf  # never the item itself
    # stable sort on -score keeps lower indices first among equal scores
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(sims, order, axis=1)
    return (order[0], scores[0]) if single else (order, scores)
