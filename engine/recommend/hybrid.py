"""Hybrid preference score: collaborative + content + popularity prior.

    c(u, ·)  = w_ease · z(EASE) + (1 − w_ease) · z(item-kNN)
    s(u, p)  = w_collab · c(u, p)
             + w_transfer · z(Σ_j T_pj c(u, j))
             + w_content · z(cos(profile_u, e_p))
             + w_popularity · z(log popularity)

T is the text-neighbour matrix: each product's ``text_neighbours`` most similar
products (cosine of the embeddings) among those sold, weights row-normalised.
The transfer term carries a customer's collaborative scores over to products
that read alike, which is what ranks a never-sold product: it inherits the
scores (and, in the popularity prior, the popularity) of its text neighbours.

Each part is standardised per customer (z = (x − mean) / std over the
catalogue), so the weights compare like with like whatever the scale of the
models. A product nobody has bought has no collaborative or popularity signal
but still gets the content part, so it can be recommended (cold start).
P(u, p) = softmax over the catalogue of s / τ.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from engine.device import choose_device
from engine.recommend.models import EASE, ItemKNN, Recommender
from engine.recommend.profiles import content_profiles, weighted_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreferenceConfig:
    """Settings of the hybrid model and the segments.

    The defaults are the settings that won the offline evaluation (hold-out of
    the last 8 weeks) on the sample market and on UCI Online Retail; see
    engine/recommend/evaluate.py for the protocol.
    """

    half_life_days: float = 90.0
    binary_fit: bool = True
    ease_l2: float = 200.0
    ease_max_items: int = 8000
    knn_neighbours: int = 100
    knn_shrink: float = 10.0
    w_collab: float = 1.0
    w_ease: float = 1.0
    w_content: float = 0.2
    w_transfer: float = 0.3
    text_neighbours: int = 20
    w_popularity: float = 0.1
    temperature: float = 1.0
    exclude_seen: bool = True
    n_segments: int | None = None  # None: the suggested k
    k_range: tuple[int, int] = (2, 10)
    svd_components: int = 32
    chunk_size: int = 2048
    device: str | None = None

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.w_ease <= 1.0:
            raise ValueError(f"w_ease must be in [0, 1], got {self.w_ease}")
        lo, hi = self.k_range
        if not 2 <= lo <= hi:
            raise ValueError(f"k_range must satisfy 2 <= low <= high, got {self.k_range}")


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-row z-score; a constant row becomes 0."""
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, keepdim=True)
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))


class HybridModel(Recommender):
    """EASE + item-kNN on the recency-weighted matrix, plus text content and popularity."""

    def __init__(self, config: PreferenceConfig | None = None):
        self.config = config or PreferenceConfig()

    def fit(self, dataset, embeddings: np.ndarray) -> HybridModel:
        cfg = self.config
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape[0] != dataset.n_products:
            raise ValueError(
                f"embeddings have {emb.shape[0]} rows but the catalogue has "
                f"{dataset.n_products} products; encode dataset.products"
            )
        self.device_ = choose_device(cfg.device)
        W = weighted_matrix(dataset, cfg.half_life_days)
        # the item weights are learned from who bought what (binary); recency only
        # weighs a customer's own history when scoring
        fit_on = W.copy()
        if cfg.binary_fit:
            fit_on.data[:] = 1.0
        self.ease_ = EASE(cfg.ease_l2, cfg.ease_max_items, device=str(self.device_)).fit(fit_on)
        self.knn_ = ItemKNN(cfg.knn_neighbours, cfg.knn_shrink, device=str(self.device_)).fit(fit_on)
        self.profiles_ = content_profiles(W, emb)
        self.embeddings_ = emb
        buyers = np.asarray((W > 0).sum(axis=0)).ravel()
        self.text_neighbours_ = text_neighbour_matrix(emb, buyers > 0, cfg.text_neighbours)
        # recent sales count more: the prior is the recency-weighted number of orders
        pop = np.log1p(np.asarray(W.sum(axis=0)).ravel()).astype(np.float64)
        # a never-sold product borrows the popularity of its text neighbours
        pop = np.where(buyers > 0, pop, self.text_neighbours_ @ pop)
        self.popularity_ = ((pop - pop.mean()) / (pop.std() or 1.0)).astype(np.float32)
        self._transfer = _torch_sparse(self.text_neighbours_, self.device_)
        self.X_ = W
        self.chunk_size = cfg.chunk_size
        return self

    def parts(self, rows: sp.csr_matrix, profiles: np.ndarray) -> dict[str, torch.Tensor]:
        """The standardised parts of the score for the given history rows."""
        emb = torch.as_tensor(self.embeddings_, device=self.device_)
        prof = torch.as_tensor(profiles, device=self.device_)
        cfg = self.config
        collab = cfg.w_ease * standardise(self.ease_._score(rows))
        collab += (1.0 - cfg.w_ease) * standardise(self.knn_._score(rows))
        transfer = torch.sparse.mm(self._transfer, collab.T.contiguous()).T
        return {
            "collab": collab,
            "transfer": standardise(transfer),
            "content": standardise(prof @ emb.T),
        }

    def _score(self, rows: sp.csr_matrix, profiles: np.ndarray | None = None) -> torch.Tensor:
        cfg = self.config
        if profiles is None:
            profiles = content_profiles(rows, self.embeddings_)
        p = self.parts(rows, profiles)
        pop = torch.as_tensor(self.popularity_, device=self.device_)
        return (
            cfg.w_collab * p["collab"]
            + cfg.w_transfer * p["transfer"]
            + cfg.w_content * p["content"]
            + cfg.w_popularity * pop
        )

    def probabilities(self, customer_idx) -> np.ndarray:
        """P(u, p): softmax over the catalogue of s / τ (n × P, rows sum to 1)."""
        s = self.score_torch(customer_idx)
        return torch.softmax(s / self.config.temperature, dim=1).cpu().numpy()

    def segment_means(self, labels: np.ndarray, n_segments: int) -> np.ndarray:
        """Members' mean P(u, p) per segment (S × P), computed in customer chunks."""
        self._check_fitted()
        total = torch.zeros(n_segments, self.X_.shape[1], dtype=torch.float64, device=self.device_)
        labels_t = torch.as_tensor(np.asarray(labels, np.int64), device=self.device_)
        for start in range(0, self.X_.shape[0], self.chunk_size):
            idx = np.arange(start, min(start + self.chunk_size, self.X_.shape[0]))
            prob = torch.softmax(self.score_torch(idx) / self.config.temperature, dim=1)
            total.index_add_(0, labels_t[idx], prob.double())
        sizes = np.bincount(labels, minlength=n_segments).astype(np.float64)
        return (total.cpu().numpy() / np.maximum(sizes, 1)[:, None]).astype(np.float32)


def text_neighbour_matrix(embeddings: np.ndarray, sold: np.ndarray, k: int) -> sp.csr_matrix:
    """P × P: row p holds p's ``k`` nearest sold products by text (not p itself),
    weights max(cos, 0) normalised to sum 1. Built in row blocks (P × P never dense)."""
    n = len(embeddings)
    cand = np.flatnonzero(sold)
    k = min(k, max(len(cand) - 1, 0))
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    emb_c = embeddings[cand]
    rows, cols, vals = [], [], []
    for start in range(0, n, 2048):
        block = embeddings[start : start + 2048] @ emb_c.T
        own = np.arange(start, start + len(block))
        pos = np.searchsorted(cand, own)
        is_own = (pos < len(cand)) & (cand[np.minimum(pos, len(cand) - 1)] == own)
        block[np.flatnonzero(is_own), pos[is_own]] = -np.inf  # never its own neighbour
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        sim = np.maximum(np.take_along_axis(block, top, axis=1), 0.0)
        rows.append(np.repeat(own, k))
        cols.append(cand[top].ravel())
        vals.append(sim.ravel())
    T = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    total = np.asarray(T.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(total, 1e-12)) @ T, dtype=np.float32)


def _torch_sparse(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    coo = m.tocoo()
    idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    t = torch.sparse_coo_tensor(idx, torch.as_tensor(coo.data), coo.shape, check_invariants=False).coalesce()
    # CSR: a sparse × dense product six times faster than COO on CPU; torch warns
    # that sparse CSR is "beta" on every call, which says nothing to an analyst
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return t.to_sparse_csr().to(device)
