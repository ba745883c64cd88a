"""A sequence model of customer behaviour: what the next basket holds, given the last ones.

GRU4Rec-style. A basket is the mean of its products' embeddings
(``nn.EmbeddingBag``, mode "mean") next to log(1 + days since the customer's
previous basket); a GRU reads a customer's baskets in time order, and after each
basket the output layer (the product embeddings again, plus a bias per product)
gives logits over the whole catalogue for the next basket. With ``repeat`` (the
default) a product the customer bought in the baskets read also gets
w · log(1 + baskets with it), w ≥ 0 read from the state: the next basket is mostly
products bought before. Memory is transitions × products per batch (capped), never
products × products, so 60k-product catalogues fit.

Training: every transition "baskets so far → next basket" of every customer, a
softmax cross-entropy averaged over the next basket's products. Above
``SAMPLED_ABOVE`` products (30k) the softmax of a training step is sampled (Jean et
al. 2015): the products of the batch's baskets exactly, ``NEGATIVES`` others
drawn uniformly and weighted by the inverse of their chance to be drawn, so a
step costs about the same on 60k products as on 16k; the held-out loss stays exact. A customer's
baskets are cut into windows of ``max_baskets`` inputs, so each transition is
trained on once. The last transition of a seeded tenth of the customers is held
out; training stops when its loss has not improved for ``patience`` epochs (or
after ``epochs``, or ``max_seconds``) and keeps the weights of the best epoch.

Unlike the other models, the order of the baskets matters: "A then B" is learnt
as B after A, not as A and B bought by the same customer.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from engine.device import choose_device
from engine.errors import ConfigError, ModelFitError
from engine.recommend.models import Recommender, as_matrix
from engine.seeding import seed_everything

log = logging.getLogger(__name__)


# products; a training step's softmax is sampled above this. Below it the exact
# softmax trains to its best epoch within max_seconds (Ta-Feng's stops early at 19 s);
# on Ta-Feng (24k) the sampled one entered the next-purchase list through the
# validation window and lowered the 8-week hold-out's NDCG@20 (0.1373 to 0.1325)
SAMPLED_ABOVE = 30_000
NEGATIVES = 4096  # products drawn per sampled step


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    """torch on one thread inside the block when on the CPU, restored after: the GRU
    is many small steps, where a second thread spins at a barrier, and on a shared
    2-core machine a batch's GRU ran 170 times slower on two threads than on one."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _on_one_thread(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _one_cpu_thread(choose_device(self.device)):
            return method(self, *args, **kwargs)
    return wrapper


class _Network(nn.Module):
    def __init__(self, n_products: int, dim: int, dropout: float, log_share: np.ndarray,
                 repeat: bool):
        super().__init__()
        self.embed = nn.EmbeddingBag(n_products, dim, mode="mean")
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        self.gru = nn.GRU(dim + 1, dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, dim)
        # start from popularity, which is also the score of a customer without baskets
        self.bias = nn.Parameter(torch.as_tensor(log_share, dtype=torch.float32))
        self.repeat = nn.Linear(dim, 1) if repeat else None

    def logits(self, hidden: torch.Tensor, bought: sp.csr_matrix | None,
               columns: torch.Tensor | None = None) -> torch.Tensor:
        """``bought``: per row, how many of the baskets read so far hold each product
        (None without the repeat term); ``columns``: the products scored (all when
        None; ``bought`` then has one column per product scored)."""
        weight, bias = self.embed.weight, self.bias
        if columns is not None:
            weight, bias = weight[columns], bias[columns]
        # tied output: a product scores by how close its embedding is to the state
        scores = self.out(self.drop(hidden)) @ weight.T + bias
        if self.repeat is None:
            return scores
        # buying again is most of what a next basket holds; the state sets how much it counts
        coo = bought.tocoo()
        rows = torch.as_tensor(coo.row, dtype=torch.long, device=scores.device)
        cols = torch.as_tensor(coo.col, dtype=torch.long, device=scores.device)
        weight = nn.functional.softplus(self.repeat(hidden)).squeeze(1)
        again = weight[rows] * torch.log1p(torch.as_tensor(coo.data, device=scores.device))
        return scores.index_put((rows, cols), again, accumulate=True)


class SequenceModel(Recommender):
    """GRU over a customer's baskets in time order; scores are next-basket logits.

    ``dim``: embedding and state size; ``max_baskets``: the most recent baskets
    read per customer; ``epochs``, ``lr``, ``batch_size`` (windows per step),
    ``patience`` (epochs without a better held-out loss before stopping),
    ``max_seconds`` (training budget; stops after the batch that passes it),
    ``dropout``, ``repeat`` (the buy-again term: off for a model of what is new to
    the customer only), ``seed``, ``device``.
    """

    def __init__(
        self,
        dim: int = 64,
        max_baskets: int = 20,
        epochs: int = 30,
        lr: float = 3e-3,
        batch_size: int = 64,
        patience: int = 2,
        max_seconds: float = 30.0,
        dropout: float = 0.2,
        repeat: bool = True,
        seed: int = 0,
        device: str | None = None,
    ):
        self.dim = dim
        self.max_baskets = max_baskets
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.max_seconds = max_seconds
        self.dropout = dropout
        self.repeat = repeat
        self.seed = seed
        self.device = device

    def _check_params(self) -> None:
        bad = [f"SequenceModel: {name} must be >= {low}, got {getattr(self, name)}"
               for name, low in (("dim", 1), ("max_baskets", 1), ("epochs", 0),
                                 ("batch_size", 1), ("patience", 1))
               if getattr(self, name) < low]
        if not (self.lr > 0 and self.max_seconds > 0 and 0 <= self.dropout < 1):
            bad.append(f"SequenceModel: lr and max_seconds must be > 0 and dropout in [0, 1); "
                       f"got lr={self.lr}, max_seconds={self.max_seconds}, dropout={self.dropout}")
        if bad:
            raise ConfigError(bad)

    @_on_one_thread
    def fit(self, dataset) -> SequenceModel:
        """Train on the dataset's baskets (needs ``baskets``, ``order_customer``,
        ``order_time``: a ``Dataset``, not a bare matrix)."""
        self._check_params()
        start_time = time.perf_counter()
        rng = seed_everything(self.seed)
        self.device_ = choose_device(self.device)
        self._read(dataset)
        n_products = self.X_.shape[1]

        starts, lengths, held = self._windows(rng)
        in_baskets = np.bincount(self.baskets_.indices, minlength=n_products) + 1.0
        log_share = np.log(in_baskets / in_baskets.sum())
        network = _Network(n_products, self.dim, self.dropout, log_share, self.repeat)
        network = network.to(self.device_)
        optimiser = torch.optim.Adam(network.parameters(), lr=self.lr)
        self.history_ = []
        best, best_state, waited = np.inf, copy.deepcopy(network.state_dict()), 0
        out_of_time = False
        # a sampled step scores the batch's products and NEGATIVES more: ~16k
        width = n_products if n_products <= SAMPLED_ABOVE else 4 * NEGATIVES
        for _ in range(self.epochs):
            network.train()
            losses = []
            for batch in self._batches(rng.permutation(len(starts)), lengths, width):
                loss, _ = self._loss(network, starts[batch], lengths[batch], held[batch], train=True,
                                     rng=rng)
                if loss is None:
                    continue
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                if time.perf_counter() - start_time > self.max_seconds:
                    out_of_time = True
                    break
            if not losses:
                break
            val = self._held_out_loss(network, starts, lengths, held)
            if not np.isfinite(losses[-1]):
                raise ModelFitError("SequenceModel: NaN encountered in the loss; lower lr")
            self.history_.append({"train": float(np.mean(losses)), "held_out": val})
            if np.isnan(val):  # too few customers to hold any out: train every epoch
                best_state = copy.deepcopy(network.state_dict())
            elif val < best - 1e-4:
                best, best_state, waited = val, copy.deepcopy(network.state_dict()), 0
            else:
                waited += 1
            if waited >= self.patience or out_of_time:
                break
        network.load_state_dict(best_state)
        network.eval()
        self.network_ = network
        self.train_seconds_ = time.perf_counter() - start_time
        log.info("sequence model: %d epochs in %.1f s, held-out loss %.3f",
                 len(self.history_), self.train_seconds_, best)
        return self

    def reading(self, dataset) -> SequenceModel:
        """The fitted network reading ``dataset``'s baskets: the same shop with a longer
        history (its products in the same order), scored without training again."""
        if dataset.n_products != self.X_.shape[1]:
            raise ValueError(f"SequenceModel was fitted on {self.X_.shape[1]} products; "
                             f"the dataset has {dataset.n_products}")
        model = copy.copy(self)
        model._read(dataset)
        return model

    def _read(self, dataset) -> None:
        """The baskets in (customer, time) order; each customer's run is
        [first_, first_ + count_), with log(1 + days since the previous basket)."""
        self.X_ = as_matrix(dataset)
        order = dataset.orders_by_customer()
        self.baskets_ = sp.csr_matrix(dataset.baskets[order], dtype=np.float32)
        customer = np.asarray(dataset.order_customer)[order]
        self.count_ = np.bincount(customer, minlength=self.X_.shape[0])
        self.first_ = np.concatenate([[0], np.cumsum(self.count_)[:-1]])
        days = np.asarray(dataset.order_time)[order].astype("datetime64[s]").astype(np.float64) / 86400
        gap = np.diff(days, prepend=days[:1])
        gap[self.first_[self.count_ > 0]] = 0.0  # a customer's first basket has no gap
        self.gap_ = np.log1p(np.clip(gap, 0, None)).astype(np.float32)

    def _windows(self, rng: np.random.Generator):
        """Input windows (first basket position, number of input baskets) covering every
        transition once, and whether a window's last target is held out."""
        W = self.max_baskets
        transitions = np.maximum(self.count_ - 1, 0)
        per_customer = -(-transitions // W)
        owner = np.repeat(np.arange(len(self.count_)), per_customer)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(per_customer) - per_customer, per_customer)
        starts = self.first_[owner] + k * W
        lengths = np.minimum(W, self.first_[owner] + transitions[owner] - starts)
        last = k == per_customer[owner] - 1
        # a tenth of the customers with a transition: their final transition is held out
        eligible = np.flatnonzero(transitions > 0)
        chosen = rng.choice(eligible, size=max(1, len(eligible) // 10), replace=False) \
            if len(eligible) >= 10 else eligible[:0]
        held = last & np.isin(owner, chosen)
        return starts, lengths, held

    def _batches(self, windows: np.ndarray, lengths: np.ndarray, n_products: int):
        """``batch_size`` windows at a time, fewer where their logits (one row of
        ``n_products`` per transition) would pass 2^24 numbers: 64 MB, several times
        that with the softmax's gradients, on a 60k-product catalogue."""
        max_rows = max(self.max_baskets, 2**24 // n_products)
        start = 0
        while start < len(windows):
            rows = np.cumsum(lengths[windows[start : start + self.batch_size]])
            stop = start + max(1, int(np.searchsorted(rows, max_rows, side="right")))
            yield windows[start:stop]
            start = stop

    def _states(self, network: _Network, starts: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        """GRU outputs after each input basket, flattened window by window (sum of lengths × dim)."""
        T = int(lengths.max())
        window = np.repeat(np.arange(len(starts)), lengths)
        step = np.arange(len(window)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = starts[window] + step
        rows = self.baskets_[positions]
        dev = self.device_
        bags = network.embed(torch.as_tensor(rows.indices, dtype=torch.long, device=dev),
                             torch.as_tensor(rows.indptr[:-1], dtype=torch.long, device=dev))
        gaps = torch.as_tensor(self.gap_[positions], device=dev)[:, None]
        flat = torch.as_tensor(window * T + step, device=dev)
        inputs = torch.zeros(len(starts) * T, self.dim + 1, device=dev)
        inputs = inputs.index_copy(0, flat, torch.cat([bags, gaps], dim=1))
        # padding sits after each window's baskets, so the causal GRU never reads it into them
        outputs, _ = network.gru(inputs.view(len(starts), T, -1))
        return outputs.reshape(len(starts) * T, -1)[flat], positions, step

    def _bought(self, positions: np.ndarray, step: np.ndarray, rows: np.ndarray):
        """For each of ``rows`` (indices into a window-by-window ``positions``), how many of
        its window's baskets up to that one hold each product (len(rows) × P); None
        without the repeat term."""
        if not self.repeat:
            return None
        n = step[rows] + 1
        owner = np.repeat(np.arange(len(rows)), n)
        earlier = np.repeat(rows - step[rows], n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
        pick = sp.csr_matrix((np.ones(len(owner), np.float32), (owner, positions[earlier])),
                             shape=(len(rows), self.baskets_.shape[0]))
        return sp.csr_matrix(pick @ self.baskets_)

    def _loss(self, network, starts, lengths, held, train: bool,
              rng: np.random.Generator | None = None):
        """Mean next-basket cross-entropy over the training (or the held-out) transitions;
        sampled over the products when ``rng`` is given and the catalogue is large."""
        states, positions, step = self._states(network, starts, lengths)
        last = np.cumsum(lengths) - 1
        is_held = np.zeros(len(positions), bool)
        is_held[last[held]] = True
        keep = ~is_held if train else is_held
        if not keep.any():
            return None, 0
        bought = self._bought(positions, step, np.flatnonzero(keep))
        targets = self.baskets_[positions[keep] + 1]
        dev = self.device_
        columns, correction, product = None, None, targets.indices
        n_products = self.baskets_.shape[1]
        if rng is not None and n_products > SAMPLED_ABOVE:
            certain = np.union1d(targets.indices, bought.indices if bought is not None else [])
            drawn = np.setdiff1d(rng.choice(n_products, NEGATIVES, replace=False), certain)
            columns = np.concatenate([certain, drawn])
            # each product outside the baskets is drawn with chance NEGATIVES / n_products
            correction = torch.zeros(len(columns), device=dev)
            correction[len(certain):] = float(np.log(n_products / NEGATIVES))
            product = np.searchsorted(certain, targets.indices)
            if bought is not None:
                bought = sp.csr_matrix(bought[:, columns])
            columns = torch.as_tensor(columns, dtype=torch.long, device=dev)
        logits = network.logits(states[torch.as_tensor(keep, device=dev)], bought, columns)
        if correction is not None:
            logits = logits + correction
        size = np.diff(targets.indptr)
        step = torch.as_tensor(np.repeat(np.arange(len(size)), size), device=dev)
        product = torch.as_tensor(product, dtype=torch.long, device=dev)
        picked = torch.zeros(len(size), device=dev).index_add(0, step, logits[step, product])
        per_step = logits.logsumexp(dim=1) - picked / torch.as_tensor(size, device=dev)
        return per_step.mean(), len(size)

    @torch.no_grad()
    def _held_out_loss(self, network, starts, lengths, held) -> float:
        network.eval()
        rows = np.flatnonzero(held)
        total, n = 0.0, 0
        for batch in np.array_split(rows, max(1, -(-len(rows) // 256))):
            if len(batch):
                loss, count = self._loss(network, starts[batch], lengths[batch], held[batch], False)
                total, n = total + float(loss) * count, n + count
        return total / n if n else float("nan")

    @_on_one_thread
    @torch.no_grad()
    def score_torch(self, customer_idx, history: sp.csr_matrix | None = None) -> torch.Tensor:
        """Next-basket logits (n × P) from each customer's last ``max_baskets`` baskets in
        the fitted dataset; a customer without baskets gets the product biases."""
        if history is not None:
            raise NotImplementedError(
                "SequenceModel scores from the fitted baskets in time order; a history "
                "matrix has no order. Refit on a dataset that holds the customer's baskets.")
        idx = self._customers(customer_idx)
        network = self.network_
        out = network.bias.expand(len(idx), -1).clone()
        has = np.flatnonzero(self.count_[idx] > 0)
        for batch in np.array_split(has, max(1, -(-len(has) // self.chunk_size))):
            if not len(batch):
                continue
            c = idx[batch]
            lengths = np.minimum(self.count_[c], self.max_baskets)
            starts = self.first_[c] + self.count_[c] - lengths
            states, positions, step = self._states(network, starts, lengths)
            last = np.cumsum(lengths) - 1
            out[torch.as_tensor(batch, device=self.device_)] = network.logits(
                states[torch.as_tensor(last, device=self.device_)],
                self._bought(positions, step, last))
        return out
