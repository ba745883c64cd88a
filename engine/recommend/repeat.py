"""Buy again: what a customer will buy next, the products they already buy included.

On real shops the strongest signal of the next purchase is the customer's own
history: ranking each customer's most-bought products first beats every
collaborative model on the next-purchase protocol (``evaluate``). The hybrid
(engine/recommend/hybrid.py) ranks products a customer has *not* bought; this
module puts the two in one list.

**Features of a bought product** (one row per customer × product bought before):

* ``orders``: log(1 + orders with the product): how often;
* ``share``: those orders over the customer's orders: how regularly;
* ``days_since``: log(1 + days since the customer last bought it): how recently;
* ``due`` and ``has_cycle``: how close the customer is to their usual interval
  between two purchases of the product, −|log((days since + 1) / (cycle + 1))|.
  The cycle is the product's median gap between two orders of the same customer
  (products with at least ``min_gaps`` such gaps), moved towards the customer's
  own median gap by how many gaps they have (log scale, ``cycle_prior`` pseudo-gaps);
  products without a cycle get due 0 and has_cycle 0;
* ``repeat_rate``: logit of the share of the product's buyers who bought it in
  two or more orders (smoothed): milk is bought again, a wedding gift is not;
* ``recent_30``, ``recent_120``: log(1 + orders with the product, each weighted
  0.5 ** (age / half-life)): how often lately, as TIFU-KNN's time decay says it.

**One ranked list.** Candidates per customer: every product bought before and the
hybrid's best ``new_candidates`` others. A classifier fitted on a validation
window (the last weeks of the history, as the hybrid's weight tuning uses) learns
P(bought in the window) from the hybrid score, a bought-before flag and the
features above (``design``): a logistic regression (``fit_buy_again`` says why not
trees). Without a window to learn from,
``FALLBACK`` ranks bought products by how often, then the hybrid's new ones (the
personal top frequency of the next-basket literature, with the hybrid for the rest).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine.recommend.models import mask_seen, score_rows, top_k

log = logging.getLogger(__name__)

FEATURES = ("orders", "share", "days_since", "due", "has_cycle", "repeat_rate",
            "recent_30", "recent_120")
# half-lives (days) of the recency-weighted order counts
RECENT_HALF_LIVES = (30.0, 120.0)


@dataclass(frozen=True)
class PurchaseHistory:
    """Every (customer, product) pair bought before ``now``, sorted by customer then product.

    ``features`` (pairs × len(FEATURES)); ``orders`` and ``last_days`` (raw counts and
    days since the last purchase, for the reasons); ``cycle_days`` the cycle used
    (NaN where none); ``product_cycle_days`` per product (NaN where the data shows none);
    ``customer_orders`` orders per customer; ``product_buyers`` customers per product;
    ``own_gaps`` the pair's own gaps between
    two purchases (the cycle is the customer's own from 2 on).
    """

    customers: np.ndarray
    products: np.ndarray
    features: np.ndarray
    orders: np.ndarray
    last_days: np.ndarray
    cycle_days: np.ndarray
    product_cycle_days: np.ndarray
    customer_orders: np.ndarray
    product_buyers: np.ndarray
    own_gaps: np.ndarray
    n_customers: int
    n_products: int

    def position(self, customers: np.ndarray, products: np.ndarray) -> np.ndarray:
        """Positions of the given (customer, product) pairs (each must be there)."""
        codes = self.customers * self.n_products + self.products
        pos = np.searchsorted(codes, np.asarray(customers, np.int64) * self.n_products
                              + np.asarray(products, np.int64))
        return np.minimum(pos, len(codes) - 1)

    def rows(self, customers: np.ndarray) -> np.ndarray:
        """Positions of the pairs of ``customers`` (in that order)."""
        start = np.searchsorted(self.customers, customers, side="left")
        stop = np.searchsorted(self.customers, customers, side="right")
        size = stop - start
        return np.repeat(start - np.cumsum(size) + size, size) + np.arange(size.sum())


def purchase_history(dataset, now=None, min_gaps: int = 3, cycle_prior: float = 2.0) -> PurchaseHistory:
    """The bought-before features of every customer × product pair of ``dataset``;
    ``now`` (default: the last order) is when days are counted to."""
    b = sp.csr_matrix(dataset.baskets).tocoo()
    t_order = np.asarray(dataset.order_time, dtype="datetime64[ns]")
    now = t_order.max() if now is None and len(t_order) else np.datetime64(now, "ns")
    day = np.timedelta64(1, "D")
    cust = np.asarray(dataset.order_customer, np.int64)[b.row]
    prod = b.col.astype(np.int64)
    t = ((t_order[b.row] - t_order.min()) / day) if len(t_order) else np.zeros(0)
    order = np.lexsort((t, prod, cust))
    cust, prod, t = cust[order], prod[order], t[order]
    new_pair = np.r_[True, (cust[1:] != cust[:-1]) | (prod[1:] != prod[:-1])]
    pair = np.cumsum(new_pair) - 1
    first = np.flatnonzero(new_pair)
    n_pairs = len(first)
    count = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    last = t[np.r_[first[1:], len(t)] - 1] if n_pairs else np.zeros(0)
    pc, pp = cust[first], prod[first]

    # gaps between consecutive orders of the same pair (same-day reorders are one visit)
    gap = np.diff(t)
    same = ~new_pair[1:] & (gap > 0.5)
    gap_pair, gap_days = pair[1:][same], gap[same]
    gap_product = prod[1:][same]
    P = dataset.n_products
    product_cycle = np.full(P, np.nan)
    n_gaps_product = np.bincount(gap_product, minlength=P)
    if len(gap_days):
        by = np.lexsort((gap_days, gap_product))
        gp, gd = gap_product[by], gap_days[by]
        starts = np.searchsorted(gp, np.arange(P))
        mid = starts + n_gaps_product // 2
        has = n_gaps_product >= min_gaps
        # median (upper middle for an even count: a whole number of days)
        product_cycle[has] = gd[np.minimum(mid[has], len(gd) - 1)]
    # the pair's own cycle moves the product's, on a log scale
    n_own = np.bincount(gap_pair, minlength=n_pairs).astype(np.float64)
    own_log = np.bincount(gap_pair, weights=np.log1p(gap_days), minlength=n_pairs)
    prior_log = np.log1p(product_cycle[pp])
    has_prior = np.isfinite(prior_log)
    weight = np.where(has_prior, cycle_prior, 0.0)
    cycle_log = (own_log + weight * np.nan_to_num(prior_log)) / np.maximum(n_own + weight, 1e-12)
    has_cycle = (n_own >= 2) | has_prior
    since = ((now - t_order.min()) / day - last) if n_pairs else np.zeros(0)
    since = np.maximum(since, 0.0)
    due = np.where(has_cycle, -np.abs(np.log1p(since) - cycle_log), 0.0)

    n_orders = np.bincount(np.asarray(dataset.order_customer, np.int64), minlength=dataset.n_customers)
    buyers = np.bincount(pp, minlength=P).astype(np.float64)
    repeaters = np.bincount(pp[count >= 2], minlength=P).astype(np.float64)
    rate = (repeaters + 1.0) / (buyers + 2.0)
    age = ((now - t_order.min()) / day - t) if len(t) else np.zeros(0)
    recent = [np.log1p(np.bincount(pair, weights=0.5 ** (np.maximum(age, 0) / h),
                                   minlength=n_pairs)) for h in RECENT_HALF_LIVES]
    features = np.column_stack([
        np.log1p(count),
        count / np.maximum(n_orders[pc], 1),
        np.log1p(since),
        due,
        has_cycle.astype(np.float64),
        np.log(rate / (1.0 - rate))[pp],
        *recent,
    ]).astype(np.float32)
    cycle_days = np.where(has_cycle, np.expm1(cycle_log), np.nan)
    return PurchaseHistory(pc, pp, features, count, since, cycle_days, product_cycle,
                           n_orders, buyers, n_own.astype(np.int64), dataset.n_customers, P)


@dataclass(frozen=True)
class BuyAgain:
    """How the next-purchase list weighs the hybrid score against the history.

    ``estimator``: a fitted scikit-learn classifier of P(bought in the window) on
    ``design`` (None: ``FALLBACK``'s rule); ``uses_sequence``: whether the GRU's
    scores are one of its inputs, and ``sequence_model`` that GRU (fitted on the history before the window; the full
    model reads the whole history with it instead of training a second one);
    ``report``: what it was fitted on, or why it is the fallback."""

    estimator: object | None
    report: dict
    uses_sequence: bool = False
    sequence_model: object | None = None


# bought products by how often (far above any new one), new products by the hybrid
FALLBACK = BuyAgain(None, {"fitted": False, "reason": "no validation window"})

DESIGN = ("hybrid", "bought_before", "customer_orders", "product_buyers", *FEATURES)


@dataclass(frozen=True)
class Candidates:
    """The products each customer's next-purchase list weighs (``candidates``): per
    candidate its row (the customer's place in ``customers``), product, place in the
    ``PurchaseHistory`` (-1: new to the customer), hybrid score and, when given, the
    GRU's standardised score. Only these values are kept, never a customers ×
    catalogue matrix."""

    customers: np.ndarray
    rows: np.ndarray
    products: np.ndarray
    where: np.ndarray
    hybrid: np.ndarray
    sequence: np.ndarray | None = None

    def of(self, chosen: np.ndarray) -> Candidates:
        """The candidates of the customers where ``chosen`` (boolean per row), rows
        renumbered in order."""
        keep = chosen[self.rows]
        renumber = np.cumsum(chosen) - 1
        return Candidates(self.customers[chosen], renumber[self.rows[keep]], self.products[keep],
                          self.where[keep], self.hybrid[keep],
                          None if self.sequence is None else self.sequence[keep])

    def without_sequence(self) -> Candidates:
        return replace(self, sequence=None)

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        """One set of the blocks' candidates, in block order."""
        offsets = np.cumsum([0] + [len(c.customers) for c in parts[:-1]])
        sequence = None
        if parts[0].sequence is not None:
            sequence = np.concatenate([c.sequence for c in parts])
        return Candidates(np.concatenate([c.customers for c in parts]),
                          np.concatenate([c.rows + o for c, o in zip(parts, offsets, strict=True)]),
                          *(np.concatenate([getattr(c, f) for c in parts])
                            for f in ("products", "where", "hybrid")), sequence)


def design(cands: Candidates, history: PurchaseHistory, use_sequence: bool) -> np.ndarray:
    """The classifier's inputs per candidate (``DESIGN``, then the GRU's score with
    ``use_sequence``): the bought-before features are 0 for a new product."""
    seen = cands.where >= 0
    feats = np.zeros((len(cands.rows), len(FEATURES)), np.float32)
    feats[seen] = history.features[cands.where[seen]]
    columns = [cands.hybrid, seen,
               np.log1p(history.customer_orders[cands.customers[cands.rows]]),
               np.log1p(history.product_buyers[cands.products]), feats]
    if use_sequence:
        columns.append(cands.sequence)
    return np.column_stack(columns).astype(np.float32)


def candidates(scores: np.ndarray, history: PurchaseHistory, customers: np.ndarray,
               n_new: int, sequence: np.ndarray | None = None) -> Candidates:
    """Each customer's candidates: every product bought before and the ``n_new`` best
    others by ``scores`` (rows aligned with ``customers``; bought products already
    -inf there or not); ``sequence``: the GRU's standardised scores, same shape."""
    customers = np.asarray(customers, np.int64)
    pos = history.rows(np.unique(customers))
    # customers need not be sorted or distinct: map each pair to its rows by value
    row_of = pd.Series(np.arange(len(customers))).groupby(customers).first()
    seen_rows = row_of.reindex(history.customers[pos]).to_numpy(np.int64)
    n, P = scores.shape
    bought = sp.csr_matrix((np.ones(len(pos), np.float32), (seen_rows, history.products[pos])),
                           shape=(n, P))
    n_new = min(n_new, P)
    new_rows, new_products = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    step = score_rows(P, n)  # a masked copy of the scores a block at a time
    for start in range(0, n if n_new else 0, step):
        block = torch.from_numpy(np.array(scores[start : start + step], np.float32))
        v, i = top_k(mask_seen(block, bought[start : start + step]), n_new)
        keep = torch.isfinite(v).numpy()
        new_rows.append(np.repeat(np.arange(start, start + len(block)), n_new)[keep.ravel()])
        new_products.append(i.numpy()[keep])
    rows = np.concatenate([seen_rows, *new_rows])
    products = np.concatenate([history.products[pos], *new_products])
    where = np.r_[pos, np.full(len(rows) - len(pos), -1)]
    return Candidates(customers, rows, products, where, np.asarray(scores)[rows, products],
                      None if sequence is None else np.asarray(sequence)[rows, products])


def candidate_logits(buy_again: BuyAgain, cands: Candidates,
                     history: PurchaseHistory) -> np.ndarray:
    """logit P(bought) of each candidate (the GRU's score enters when
    ``buy_again.uses_sequence``; ``cands`` must then carry it)."""
    if buy_again.estimator is None:
        seen = cands.where >= 0
        return cands.hybrid.astype(np.float64) + np.where(
            seen, 1000.0 + 100.0 * history.orders[np.maximum(cands.where, 0)], 0.0)
    X = design(cands, history, buy_again.uses_sequence)
    return buy_again.estimator.decision_function(X).astype(np.float64)


def rank_candidates(cands: Candidates, logits: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Each customer's ``k`` best candidates: products, P(bought) and whether each was
    bought before (customers × k; -1, NaN and False where one has fewer than ``k``).
    Ties go to the lower product index."""
    rows, products, where = cands.rows, cands.products, cands.where
    n_rows = len(cands.customers)
    order = np.lexsort((products, -logits, rows))
    r = rows[order]
    rank = np.arange(len(order)) - np.searchsorted(r, r)
    keep = rank < k
    at = (r[keep], rank[keep])
    top = np.full((n_rows, k), -1, np.int64)
    prob = np.full((n_rows, k), np.nan, np.float32)
    repeat = np.zeros((n_rows, k), bool)
    top[at] = products[order][keep]
    prob[at] = 1.0 / (1.0 + np.exp(-logits[order][keep]))
    repeat[at] = where[order][keep] >= 0
    return top, prob, repeat


def next_purchase_top(buy_again: BuyAgain, cands: Candidates, history: PurchaseHistory,
                      k: int) -> tuple[np.ndarray, ...]:
    """``rank_candidates`` of the customers of ``cands`` under ``buy_again``."""
    return rank_candidates(cands, candidate_logits(buy_again, cands, history), k)


def fit_buy_again(cands: Candidates, history: PurchaseHistory, targets: list[np.ndarray],
                  seed: int = 0, use_sequence: bool = False) -> BuyAgain:
    """Learn ``BuyAgain`` (logistic regression on standardised inputs) from validation
    customers' candidates (their hybrid scores, their history before the window) and
    what they bought in it (``targets``, aligned with ``cands.customers``);
    ``use_sequence`` adds the GRU's scores as one more input.

    Not gradient-boosted trees: they ranked Ta-Feng's validation window better (NDCG@20
    0.1255 against 0.1214, each half fitted on the other) and its 8-week hold-out far
    worse (0.1142 against 0.1373): a few thousand purchases in a window are too few
    for trees, and a linear logit carries over to a longer horizon."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.isin(cands.rows * history.n_products + cands.products,
                _codes(targets, history.n_products))
    if y.all() or not y.any():
        return FALLBACK
    X = design(cands, history, use_sequence)
    estimator = make_pipeline(StandardScaler(),
                              LogisticRegression(C=1.0, max_iter=500, random_state=seed))
    estimator.fit(X, y)
    seen = cands.where >= 0
    report = {
        "fitted": True,
        "validation_customers": int(len(cands.customers)),
        "candidates": int(len(y)),
        "bought": int(y.sum()),
        "repeat_share_of_bought": round(float(y[seen].sum() / max(y.sum(), 1)), 3),
    }
    names = [*DESIGN, *(["sequence"] if use_sequence else [])]
    report["coefficients"] = {n: round(float(c), 4) for n, c in
                              zip(names, estimator[-1].coef_[0], strict=True)}
    return BuyAgain(estimator, report, use_sequence)


def _codes(targets: list[np.ndarray], span: int) -> np.ndarray:
    sizes = np.array([len(t) for t in targets], np.int64)
    flat = np.concatenate([np.asarray(t, np.int64) for t in targets] or [np.zeros(0, np.int64)])
    return np.repeat(np.arange(len(targets)), sizes) * span + flat
