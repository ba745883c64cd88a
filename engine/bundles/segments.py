"""Stand-in segment affinities for when the recommend stage's preferences are
not at hand (tests with known segments, the hold-out benchmark, the page's
fallback): a segment's affinity is its members' mean share of purchases.

The recommend stage's ``fit_preferences`` (hybrid scores, softmax, k-means on
profiles) is the real source; these are deliberately simple.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

log = logging.getLogger(__name__)


def segment_affinity(matrix: sp.spmatrix, labels: Sequence[int], n_segments: int) -> np.ndarray:
    """S × P: mean over each segment's customers of their row-normalised counts.

    ``labels[c]`` is customer *c*'s segment in 0..n_segments-1 (-1: none).
    Rows sum to 1 for every segment with members.
    """
    labels = np.asarray(labels)
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries for {matrix.shape[0]} customers")
    shares = normalize(sp.csr_matrix(matrix, dtype=np.float64), norm="l1", axis=1)
    member = labels >= 0
    onehot = sp.csr_matrix(
        (np.ones(member.sum()), (labels[member], np.flatnonzero(member))),
        shape=(n_segments, matrix.shape[0]),
    )
    sizes = np.asarray(onehot.sum(axis=1)).ravel()
    out = np.asarray((onehot @ shares).todense())
    return out / np.maximum(sizes, 1)[:, None]


def kmeans_segments(
    matrix: sp.spmatrix, n_segments: int, seed: int = 0, n_components: int = 32
) -> np.ndarray:
    """Customer segment labels: k-means on the SVD of the row-normalised matrix."""
    shares = normalize(sp.csr_matrix(matrix, dtype=np.float64), norm="l2", axis=1)
    k = max(1, min(n_components, min(shares.shape) - 1))
    z = TruncatedSVD(n_components=k, random_state=seed).fit_transform(shares)
    z = normalize(z)
    return KMeans(n_clusters=n_segments, n_init=4, random_state=seed).fit_predict(z)


def customer_affinity(
    matrix: sp.spmatrix, customer: int, segment_row: np.ndarray, own_weight: float = 0.5
) -> np.ndarray:
    """(1, P) preference row of one customer: their own purchase shares blended
    with their segment's affinity (so products they never bought still count).

    Both parts are scaled to sum to 1 before blending with ``own_weight``.
    """
    if not 0 <= own_weight <= 1:
        raise ValueError(f"own_weight must be in [0, 1], got {own_weight}")
    own = np.asarray(sp.csr_matrix(matrix)[customer].todense(), dtype=np.float64).ravel()
    seg = np.asarray(segment_row, dtype=np.float64).ravel()
    own = own / own.sum() if own.sum() > 0 else own
    seg = seg / seg.sum() if seg.sum() > 0 else seg
    return (own_weight * own + (1 - own_weight) * seg)[None, :]
