"""One entry point for the pages and the pipeline: fit the hybrid, segment customers,
explain recommendations.

Segments: see ``engine.recommend.segments`` (k-means on content profile ⊕ SVD of
the purchases, k by how well the segments explain held-out purchases).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine import columns as C
from engine.recommend.copurchase import CoPurchaseStats, copurchase_stats
from engine.recommend.hybrid import HybridModel, PreferenceConfig
from engine.recommend.models import mask_seen, top_k
from engine.recommend.segments import KChoice, customer_segments

# the segmentation lives in engine.recommend.segments; its functions are also
# importable from here, where they were first
from engine.recommend.segments import customer_representation as customer_representation
from engine.recommend.segments import segment_customers as segment_customers
from engine.recommend.segments import suggest_k as suggest_k
from engine.threads import single_threaded

log = logging.getLogger(__name__)

# best products kept per customer from the fit (a run recommends 10 by default)
TOP_KEPT = 20


@dataclass(frozen=True)
class Preferences:
    """Fitted preferences of a dataset's customers.

    segment_labels : (n_customers,) segment of each customer (dataset index order).
    segment_centroids : S × d k-means centroids in the representation space.
    segment_affinity : S × P, members' mean P(u, p).
    category_affinity : S × categories, summed segment_affinity per category.
    suggested_k : the k the held-out purchases choose (``k_choice.suggested``).
    k_choice : the curve over ``config.k_range`` and the reason for the k used.
    top_products, top_scores : every customer's ``TOP_KEPT`` best products new to them
        (the hybrid; bought ones excluded) and their scores, ranked; kept from the
        fit's scoring of every customer so ``recommend_top_k`` need not score again.
    next_products, next_scores, next_repeat : the same for the next purchase, bought
        products included (``HybridModel.next_purchase``): P(bought in the next weeks)
        and whether each is a repeat.
    """

    model: HybridModel
    copurchase: CoPurchaseStats
    segment_labels: np.ndarray
    segment_centroids: np.ndarray
    segment_affinity: np.ndarray
    category_affinity: pd.DataFrame
    suggested_k: int
    k_choice: KChoice
    config: PreferenceConfig
    top_products: np.ndarray | None = None
    top_scores: np.ndarray | None = None
    next_products: np.ndarray | None = None
    next_scores: np.ndarray | None = None
    next_repeat: np.ndarray | None = None

    @property
    def n_segments(self) -> int:
        return len(self.segment_centroids)

    def segment_sizes(self) -> pd.Series:
        sizes = np.bincount(self.segment_labels, minlength=self.n_segments)
        return pd.Series(sizes, index=pd.RangeIndex(self.n_segments, name=C.SEGMENT), name="customers")


def fit_preferences(
    dataset,
    embeddings: np.ndarray,
    config: PreferenceConfig = PreferenceConfig(),  # noqa: B008 (frozen, so safe)
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Preferences:
    """Fit the segments, the hybrid model (whose segment part uses them) and the
    co-purchase stats of ``dataset``."""
    with single_threaded():  # see engine/threads.py
        return _fit_preferences(dataset, embeddings, config, seed, progress or (lambda _f: None))


def _fit_preferences(dataset, embeddings, config, seed, report) -> Preferences:
    labels, centroids, k_choice = customer_segments(dataset, embeddings, config, seed)
    k = len(centroids)
    report(0.3)
    model = HybridModel(config).fit(dataset, embeddings, segments=labels, seed=seed)
    report(0.6)
    stats = copurchase_stats(dataset.baskets)
    affinity, new_top, next_top = _segment_means_and_top(model, labels, k)
    report(0.9)
    cats = dataset.products[C.CATEGORY].fillna("").astype(str).replace("", "(none)")
    cat_aff = pd.DataFrame(affinity.T).groupby(cats.to_numpy()).sum().T
    cat_aff.index.name = C.SEGMENT
    report(1.0)
    return Preferences(model, stats, labels, centroids, affinity, cat_aff, k_choice.suggested,
                       k_choice, config, *new_top, *next_top)


def _ranked(prefs: Preferences, idx: np.ndarray, k: int,
            purchased: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``k`` product indices, scores and repeat flags of customers ``idx``
    (``purchased``: "include" the next purchase, "exclude" new products only): from
    the fit when it kept that many, else scored here."""
    model = prefs.model
    model._customers(idx)  # IndexError for a bad index
    if purchased == "include":
        if prefs.next_products is not None and k <= prefs.next_products.shape[1]:
            return (prefs.next_products[idx, :k], prefs.next_scores[idx, :k],
                    prefs.next_repeat[idx, :k])
        return model.next_purchase(idx, k)
    if prefs.top_products is not None and k <= prefs.top_products.shape[1]:
        top = prefs.top_products[idx, :k]
        return top, prefs.top_scores[idx, :k], np.zeros(top.shape, bool)
    ids, vals = [np.zeros((0, k), np.int64)], [np.zeros((0, k), np.float32)]
    for chunk in model.chunks(idx):
        v, i = top_k(mask_seen(model.score_torch(chunk), model.X_[chunk]), k)
        ids.append(i.cpu().numpy())
        vals.append(v.float().cpu().numpy())
    top = np.concatenate(ids)
    return top, np.concatenate(vals), np.zeros(top.shape, bool)


def _segment_means_and_top(model: HybridModel, labels: np.ndarray, n_segments: int):
    """``model.segment_means``, each customer's ``TOP_KEPT`` best new products (ids,
    scores) and next purchases (ids, P, repeat) from one scoring pass over the
    customers (the recommendations scored them all again)."""
    X = model.X_
    total = torch.zeros(n_segments, X.shape[1], dtype=torch.float64, device=model.device_)
    labels_t = torch.as_tensor(np.asarray(labels, np.int64), device=model.device_)
    kept = min(TOP_KEPT, X.shape[1])
    new_top = [[np.zeros((0, kept), np.int64)], [np.zeros((0, kept), np.float32)]]
    next_top = [[np.zeros((0, kept), np.int64)], [np.zeros((0, kept), np.float32)],
                [np.zeros((0, kept), bool)]]
    for idx in model.chunks(np.arange(X.shape[0])):
        scores = model.score_torch(idx)
        prob = torch.softmax(scores / model.config_.temperature, dim=1)
        total.index_add_(0, labels_t[idx], prob.double())
        for out, part in zip(next_top, model.next_purchase_from(idx, scores, kept), strict=True):
            out.append(part)
        vals, ids = top_k(mask_seen(scores, X[idx]), kept)
        new_top[0].append(ids.cpu().numpy())
        new_top[1].append(vals.float().cpu().numpy())
    sizes = np.bincount(labels, minlength=n_segments).astype(np.float64)
    affinity = (total.cpu().numpy() / np.maximum(sizes, 1)[:, None]).astype(np.float32)
    return (affinity, [np.concatenate(p) for p in new_top], [np.concatenate(p) for p in next_top])


def explain(prefs: Preferences, dataset, embeddings: np.ndarray, customer: int, product: int) -> str:
    """A sentence naming the past purchases and text neighbours behind a recommendation."""
    return explain_many(prefs, dataset, embeddings, customer, np.array([product]))[0]


def explain_many(
    prefs: Preferences, dataset, embeddings: np.ndarray, customer: int, products: np.ndarray
) -> list[str]:
    """``explain`` for several products of one customer."""
    products = np.asarray(products, np.int64)[None, :]
    return explain_top(prefs, dataset, embeddings, np.array([customer]), products)


def explain_top(
    prefs: Preferences, dataset, embeddings: np.ndarray, customers: np.ndarray, top: np.ndarray
) -> list[str]:
    """Reasons for each customer's ranked products (``top``: customers × k product
    indices), row by row: the past purchase that most drives the collaborative score
    (history weight × (EASE weight + item-kNN similarity)) with its lift, how many
    other purchases add to it, whether the product is new, and the past purchase it
    reads most like. Ties go to the lowest product index. Computed for blocks of
    customers at once: one sentence per recommendation for every customer of a big
    shop took most of a run when done customer by customer.
    """
    model = prefs.model
    customers = np.asarray(customers, np.int64)
    top = np.asarray(top, np.int64).reshape(len(customers), -1)
    names = dataset.products[C.NAME].astype(str).to_numpy()
    sold = prefs.copurchase.item_counts > 0
    emb = torch.as_tensor(np.asarray(embeddings, np.float32))
    # ≤ 80 MB for a block's (recommendation, past purchase) weights: its customers'
    # k recommendations by the past purchases among them (≤ block × the mean history)
    history_size = model.X_.nnz / max(model.X_.shape[0], 1)
    block = max(1, int((2e7 / (max(top.shape[1], 1) * max(history_size, 1.0))) ** 0.5))
    out: list[str] = []
    for start in range(0, len(customers), block):
        out += _explain_block(prefs, names, sold, emb, customers[start : start + block],
                              top[start : start + block])
    return out


def _explain_block(prefs, names, sold, emb, customers, top) -> list[str]:
    """One block of ``explain_top``. Only the (recommendation, past purchase) pairs are
    scored, not every product of the catalogue for every recommendation: a customer
    buys ~1% of it."""
    model = prefs.model
    n, k = top.shape
    history = sp.csr_matrix(model.X_[customers])  # recency weights of what each bought
    history.eliminate_zeros()
    history.sort_indices()
    uniq, inv = np.unique(top, return_inverse=True)
    # one entry per (recommendation g = customer × k + rank, past purchase j), j ascending
    per_customer = np.diff(history.indptr)
    size = np.repeat(per_customer, k)
    group = np.repeat(np.arange(n * k), size)
    first = np.repeat(np.cumsum(size) - size, size)
    entry = np.repeat(np.repeat(history.indptr[:-1], k), size) + np.arange(len(group)) - first
    bought = torch.as_tensor(history.indices[entry], dtype=torch.int64)
    col = torch.as_tensor(inv.ravel()[group], dtype=torch.int64)
    g = torch.as_tensor(group, dtype=torch.int64)
    weights = torch.as_tensor(history.data[entry])
    # weights and text against the block's past purchases only, not the whole catalogue
    past, past_at = np.unique(history.indices[entry], return_inverse=True)
    past_at = torch.as_tensor(past_at.ravel(), dtype=torch.int64)
    collab = _driver_weights(model, past, uniq)[past_at, col] * weights
    driver, _ = _group_argmax(collab, bought, g, n * k)
    n_drivers = torch.zeros(n * k, dtype=torch.int64).index_add_(0, g, (collab > 0).long())
    driver = torch.where(n_drivers > 0, driver, 0).reshape(n, k)
    n_drivers = n_drivers.reshape(n, k)
    text = (emb[torch.as_tensor(uniq)] @ emb[torch.as_tensor(past)].T)[col, past_at]
    alike, alike_sim = _group_argmax(text, bought, g, n * k)
    alike, alike_sim = alike.reshape(n, k), alike_sim.reshape(n, k)
    driver_np, alike_np = driver.numpy(), alike.numpy()
    lift = prefs.copurchase.lift_pairs(driver_np.ravel(), top.ravel())
    has_history = np.repeat(per_customer > 0, k)
    # plain Python values for the sentences: formatting NumPy scalars one at a time
    # took half of the time of the reasons
    rows = zip(has_history.tolist(), n_drivers.numpy().ravel().tolist(),
               names[driver_np.ravel()].tolist(), lift.tolist(), sold[top.ravel()].tolist(),
               names[alike_np.ravel()].tolist(), alike_sim.numpy().ravel().tolist(), strict=True)
    out = []
    for has_history, drivers, driver_name, driver_lift, is_sold, alike_name, sim in rows:
        if not has_history:
            out.append("Popular with all customers")
            continue
        parts = []
        if drivers:
            extra = f" and {drivers - 1} of your past purchases" if drivers > 1 else ""
            parts.append(f"Bought with {driver_name} (lift {driver_lift:.1f}){extra}")
        if not is_sold:
            parts.append("new product, not sold yet")
        parts.append(f"similar to {alike_name} (text {sim:.2f})")
        sentence = "; ".join(parts)
        out.append(sentence[0].upper() + sentence[1:])
    return out


def _group_argmax(values: torch.Tensor, index: torch.Tensor, group: torch.Tensor,
                  n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, the ``index`` of its largest value (ties: the lowest index) and the value;
    an empty group gets index 0 and value -inf."""
    best = torch.full((n_groups,), -torch.inf).scatter_reduce_(0, group, values, "amax")
    at_best = values == best[group]
    big = torch.iinfo(torch.int64).max
    first = torch.full((n_groups,), big).scatter_reduce_(0, group[at_best], index[at_best], "amin")
    return torch.where(first == big, 0, first), best


def _driver_weights(model, past: np.ndarray, products: np.ndarray) -> torch.Tensor:
    """len(past) × len(products): EASE weight + item-kNN similarity of each past
    purchase towards each product (both sorted product indices)."""
    weights = torch.as_tensor(model.knn_.similarity_[past][:, products].toarray())
    items = model.ease_.items_

    def in_ease(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(items, x)
        found = (pos < len(items)) & (items[np.minimum(pos, len(items) - 1)] == x)
        return np.flatnonzero(found), pos[found]

    (rows, row_pos), (cols, col_pos) = in_ease(past), in_ease(products)
    if len(rows) and len(cols):
        ease = model.ease_.weights_[torch.as_tensor(row_pos)][:, torch.as_tensor(col_pos)].cpu()
        weights[torch.as_tensor(rows)[:, None], torch.as_tensor(cols)[None, :]] += ease
    return weights


def recommend_top_k(
    prefs: Preferences,
    dataset,
    embeddings: np.ndarray,
    k: int = 10,
    customers: np.ndarray | None = None,
    reasons: bool = True,
    purchased: str = "include",
) -> pd.DataFrame:
    """Top ``k`` for every customer (or the given indices): customer_id, rank, product_id,
    score, repeat, reason. ``purchased``: "include" ranks
    the next purchase, products bought before among them (score: P(bought in the next
    weeks)); "exclude" ranks new products only (score: the hybrid's)."""
    if purchased not in ("include", "exclude"):
        raise ValueError(f"purchased must be 'include' or 'exclude', got {purchased!r}")
    with single_threaded():  # see engine/threads.py
        return _recommend_top_k(prefs, dataset, embeddings, k, customers, reasons, purchased)


def _recommend_top_k(prefs, dataset, embeddings, k, customers, reasons, purchased) -> pd.DataFrame:
    idx = np.arange(dataset.n_customers) if customers is None else np.asarray(customers, np.int64)
    top, val, repeat = _ranked(prefs, idx, k, purchased)
    kk = top.shape[1]
    keep = top.ravel() >= 0  # a customer with fewer candidates than k
    cust = np.repeat(idx, kk)[keep]
    prod = top.ravel()[keep]
    out = pd.DataFrame({
        C.CUSTOMER_ID: dataset.customer_ids[cust],
        "rank": np.tile(np.arange(1, kk + 1), len(idx))[keep],
        C.PRODUCT_ID: dataset.product_ids[prod],
        "score": val.ravel()[keep].round(4),
        "repeat": repeat.ravel()[keep],
    })
    out["reason"] = ""
    if reasons:
        text = np.array(explain_top(prefs, dataset, embeddings, idx, np.maximum(top, 0)),
                        dtype=object)[keep]
        again = out["repeat"].to_numpy()
        if again.any():
            text[again] = repeat_reasons(prefs.model.history_, cust[again], prod[again])
        out["reason"] = text
    return out


def repeat_reasons(history, customers: np.ndarray, products: np.ndarray) -> list[str]:
    """"Bought in 7 of 12 orders, last 20 days ago; usually every 30 days" for
    products the customers bought before (the cycle: the customer's own where they
    bought it again at least twice, else how often its buyers buy it again)."""
    pos = history.position(customers, products)
    n_orders = history.customer_orders[customers]
    out = []
    for orders, total, since, cycle, own in zip(
            history.orders[pos].tolist(), n_orders.tolist(), history.last_days[pos].tolist(),
            history.cycle_days[pos].tolist(), history.own_gaps[pos].tolist(), strict=True):
        sentence = f"Bought in {orders:.0f} of {total} orders, last {_days(since)} ago"
        if cycle == cycle:  # not NaN
            sentence += (f"; usually every {_days(cycle)}" if own >= 2
                         else f"; its buyers buy it again about every {_days(cycle)}")
        out.append(sentence)
    return out


def _days(days: float) -> str:
    days = max(round(days), 0)
    return "1 day" if days == 1 else f"{days} days"
