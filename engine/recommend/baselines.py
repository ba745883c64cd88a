"""Next-purchase baselines from the next-basket literature: PersonalFrequency and TIFU-KNN.

Both follow the ``Recommender`` interface of engine/recommend/models.py: ``fit``
returns ``self``, learned attributes end in ``_``, ``score_torch(customer_idx)``
gives n × P scores from the fitted history. Neither masks what a customer has
bought: repeat purchases are most of a grocery basket, and these models exist to
rank them.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from engine.device import choose_device
from engine.errors import ConfigError
from engine.recommend.models import Recommender, as_matrix

log = logging.getLogger(__name__)


class PersonalFrequency(Recommender):
    """Personal top frequency (P-Pop): a customer's own products first, ranked by the
    number of their orders that hold the product; ties by popularity (number of
    buyers), then product index; products they never bought after, by popularity.

    ``fit(dataset)`` takes a Dataset (its ``matrix``: orders per customer and
    product) or any customers × products count matrix. The score is
    count + buyers / (most buyers + 1), so every count outranks every tie-break.
    """

    def __init__(self, device: str | None = None):
        self.device = device

    def fit(self, data) -> PersonalFrequency:
        X = as_matrix(data)
        self.device_ = choose_device(self.device)
        buyers = np.asarray((X > 0).sum(axis=0), dtype=np.float64).ravel()
        self.popularity_ = (buyers / (buyers.max(initial=0.0) + 1.0)).astype(np.float32)
        self.X_ = X
        return self

    def _score(self, rows: sp.csr_matrix) -> torch.Tensor:
        pop = torch.as_tensor(self.popularity_, device=self.device_)
        return self._dense(rows) + pop


class TIFUKNN(Recommender):
    """Temporal-item-frequency user-kNN (Hu, He, Gao, Zhang, SIGIR 2020).

    Customer vector (as in the authors' code, HaojiHu/TIFUKNN, and cornac's port):
    a customer's n baskets, oldest first, are split into ``n_groups`` consecutive
    groups of floor(n / m) or ceil(n / m) baskets, the larger groups the most recent
    (n < m: one basket a group). Basket i (of n) weighs ``within_decay`` ** (n-1-i)
    (its distance from the last basket of the whole history: the code's reading of
    the paper's within-group decay, which differs from it by one factor per group);
    a group is the mean of its weighted 0/1 basket vectors; group g weighs
    ``group_decay`` ** (m-1-g) and the vector is the weighted sum over the number of
    groups. ``n_groups`` is the paper's m, called ``group_size`` in the authors'
    code although it counts groups, not baskets per group.

    Score = ``alpha`` · own vector + (1 − ``alpha``) · the mean vector of the
    ``n_neighbours`` nearest other customers. ``metric``: "euclidean" (the authors'
    code and cornac: nearest by distance between the vectors) or "cosine".
    Defaults are the paper's Ta-Feng settings (k=300, m=7, r_b=0.9, r_g=0.7,
    alpha=0.7).

    ``fit(dataset)`` needs the Dataset's baskets, ``order_customer`` and
    ``order_time``; the neighbours of every customer are found in fit, in blocks
    of ``chunk_size`` customers (a block's similarities are dense, block × customers).
    """

    def __init__(self, n_neighbours: int = 300, n_groups: int = 7, within_decay: float = 0.9,
                 group_decay: float = 0.7, alpha: float = 0.7, metric: str = "euclidean",
                 device: str | None = None):
        self.n_neighbours = n_neighbours
        self.n_groups = n_groups
        self.within_decay = within_decay
        self.group_decay = group_decay
        self.alpha = alpha
        self.metric = metric
        self.device = device

    def _check_params(self) -> None:
        problems = []
        if not (isinstance(self.n_neighbours, int | np.integer) and self.n_neighbours >= 1):
            problems.append(f"n_neighbours must be an integer >= 1, got {self.n_neighbours!r}")
        if not (isinstance(self.n_groups, int | np.integer) and self.n_groups >= 1):
            problems.append(f"n_groups must be an integer >= 1, got {self.n_groups!r}")
        for name in ("within_decay", "group_decay", "alpha"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {value}")
        if self.metric not in ("euclidean", "cosine"):
            problems.append(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        if problems:
            raise ConfigError([f"TIFUKNN: {p}" for p in problems])

    def fit(self, dataset) -> TIFUKNN:
        self._check_params()
        for attr in ("baskets", "order_customer", "order_time", "n_customers"):
            if not hasattr(dataset, attr):
                raise TypeError(f"TIFUKNN.fit needs a Dataset (baskets in time order); "
                                f"{type(dataset).__name__} has no {attr!r}")
        self.device_ = choose_device(self.device)
        self.X_ = temporal_vectors(dataset.baskets, dataset.order_customer, dataset.order_time,
                                   dataset.n_customers, self.n_groups, self.within_decay,
                                   self.group_decay)
        self.neighbours_ = nearest_customers(self.X_, self.n_neighbours, self.metric,
                                             self.chunk_size, self.device_)
        return self

    def score_torch(self, customer_idx, history: sp.csr_matrix | None = None) -> torch.Tensor:
        if history is not None:
            raise ValueError("TIFUKNN scores from the basket sequence it was fitted on; "
                             "a history matrix has no order of baskets: refit on a Dataset")
        idx = self._customers(customer_idx)
        own = self.X_[idx]
        neigh = self.neighbours_[idx]
        if neigh.shape[1] == 0:
            return self._dense(own) * self.alpha
        n, k = neigh.shape
        mean = sp.csr_matrix((np.full(n * k, 1.0 / k, np.float32), neigh.ravel(),
                              np.arange(0, n * k + 1, k)), shape=(n, self.X_.shape[0]))
        mixed = self.alpha * own + (1.0 - self.alpha) * (mean @ self.X_)
        return self._dense(sp.csr_matrix(mixed, dtype=np.float32))

    def _score(self, rows: sp.csr_matrix) -> torch.Tensor:  # score_torch does it all
        raise NotImplementedError


def temporal_vectors(baskets: sp.spmatrix, order_customer: np.ndarray, order_time: np.ndarray,
                     n_customers: int, n_groups: int, within_decay: float,
                     group_decay: float) -> sp.csr_matrix:
    """Customers × products TIFU-KNN vectors (see ``TIFUKNN``): one weight per basket
    from its position in its customer's time-ordered history, then a sparse
    customers × orders weight matrix times the 0/1 baskets."""
    B = sp.csr_matrix(baskets, dtype=np.float32)
    B.data[:] = 1.0
    cust = np.asarray(order_customer, dtype=np.int64)
    # by customer, then time, then row: a stable order for baskets on the same time
    order = np.lexsort((np.arange(len(cust)), np.asarray(order_time), cust))
    c = cust[order]
    counts = np.bincount(c, minlength=n_customers)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[c]  # baskets of the basket's customer
    i = np.arange(len(c)) - starts[c]  # position in that history, oldest 0
    m = n_groups
    base = n // m
    extra = n % m
    n_small = m - extra  # the oldest groups have ``base`` baskets, the rest base + 1
    few = n < m
    small_end = n_small * np.maximum(base, 1)
    in_small = i < small_end
    group = np.where(few, i, np.where(in_small, i // np.maximum(base, 1),
                                      n_small + (i - small_end) // (base + 1)))
    size = np.where(few, 1, np.where(in_small, base, base + 1))
    real_groups = np.minimum(n, m)
    weight = (np.power(within_decay, n - 1 - i, dtype=np.float64)
              * np.power(group_decay, m - 1 - group, dtype=np.float64)
              / size / real_groups)
    W = sp.csr_matrix((weight.astype(np.float32), (c, order)), shape=(n_customers, B.shape[0]))
    V = sp.csr_matrix(W @ B, dtype=np.float32)
    V.eliminate_zeros()
    return V


def nearest_customers(V: sp.csr_matrix, k: int, metric: str, block: int,
                      device: torch.device) -> np.ndarray:
    """n × min(k, n-1) indices of each row's nearest other rows of ``V`` (Euclidean
    distance or cosine similarity), nearest first; a block of rows at a time."""
    n = V.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64)
    sq = np.asarray(V.multiply(V).sum(axis=1), dtype=np.float32).ravel()
    coo = sp.coo_matrix(V, dtype=np.float32)
    idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64)
    Vt = torch.sparse_coo_tensor(idx, torch.as_tensor(coo.data), coo.shape,
                                 check_invariants=False).coalesce().to(device)
    # CSR: sparse × dense several times faster than COO on CPU (as in hybrid.py);
    # torch's "beta" warning for it says nothing to an analyst
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        Vt = Vt.to_sparse_csr()
    sq_t = torch.as_tensor(sq, device=device)
    norm_t = sq_t.sqrt().clamp_min(1e-12)
    out = np.empty((n, k), np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = torch.as_tensor(V[start:stop].toarray(), device=device)
        dot = (Vt @ rows.T.contiguous()).T  # block × n
        if metric == "cosine":
            close = dot / (norm_t[start:stop, None] * norm_t[None, :])
        else:  # larger is nearer: minus the squared distance
            close = 2.0 * dot - sq_t[start:stop, None] - sq_t[None, :]
        close[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf
        out[start:stop] = torch.topk(close, k, dim=1).indices.cpu().numpy()
    return out
