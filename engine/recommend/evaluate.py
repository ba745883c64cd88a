"""Offline evaluation: temporal hold-out, Recall@K, NDCG@K, coverage, baselines.

Protocol
--------
* The cut is ``holdout_weeks`` weeks before the last order. Models are fitted
  on the lines before the cut only (same catalogue, so product indices stay).
  Recall@K = hits / min(K, |target|); NDCG@K with binary gains, ideal DCG over
  min(K, |target|) hits; both averaged over the table's customers. Coverage =
  share of the catalogue appearing in at least one customer's top K. Every
  table's baselines are fitted in the same run on the same split.

Three tables, each its own targets and masking:

1. **Next purchase** (``next_purchase``): customers with history before the cut
   who bought anything in the window; target: every product each bought in the
   window, repeats of products bought before the cut included; nothing is
   masked, a bought product may be recommended. Ours: the hybrid's next-purchase
   list (``HybridModel.next_purchase``: bought-before products and the hybrid's
   best new ones, weighed by the buy-again model learned on a validation window
   inside the training history, ``protocol["hybrid_weights"]["next_purchase"]``).
   Baselines: popularity, personal top frequency (``PersonalFrequency``: the
   customer's own most-ordered products, then popularity), EASE with the
   customer's products allowed, and TIFU-KNN (``TIFUKNN()``, the paper's
   defaults). ``repeat share``: share of the top-K items that the customer had
   bought before the cut.
2. **New products** (``table``): test customers are those with history before
   the cut who bought, in the window, at least one product they had not bought
   before; target: those new-to-the-customer products. Products already bought
   are excluded from the ranking (``exclude_seen``): re-ordering what a customer
   already buys is table 1's question. Baselines: popularity, item-kNN
   co-occurrence, EASE (both fitted on the binarised training matrix).
3. **Cold start** (``cold_start``): products with no sale before the cut and at
   least one in the window. For each customer who bought one (as a new
   product), the whole catalogue is ranked, products the customer bought before
   excluded as in table 2; target: the cold products the customer bought (their
   other purchases are neither hits nor misses). Ours: the hybrid, whose only
   signal for a cold product is its text. Baseline: popularity in category, a
   list the same for everyone: every product scores its category's share of the
   training purchases (ties by product index), so a cold product ranks with the
   sold products of its category. The other reading (sold products by their own
   number of buyers, a cold product by the mean of the sold products of its
   category) puts nearly every cold product under the sold best-sellers: recall@20
   0.000 against 0.105 on the sample market (0.000 against 0.013 on the Online
   Retail sample, a 2-day hold-out), so the category share is the baseline.
   ``cold share``: share of the top-K items that are cold products (the rest are
   sold ones competing with them). Measured on the sample market: the hybrid's
   cold model recalls 0.001 of the cold products here (0.69 when they were ranked
   among themselves only): it ranks them at a median of 73rd of 300, each
   customer's best-placed one at a median of 40th, below the sold products. A catalogue without categories (Online
   Retail) gets categories from k-means on the text embeddings
   (``text_categories``). When the window holds fewer than ``min_cold`` such
   products (the sample market sells its whole catalogue from day one), cold
   start is simulated: a seeded random ``cold_share`` of the products sold in
   the window lose all their training lines, and the hybrid is refitted without
   them for this table only (``protocol["cold_simulated"]`` says which
   happened).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans

from engine import columns as C
from engine.recommend.baselines import TIFUKNN, PersonalFrequency
from engine.recommend.holdout import HoldoutSplit, holdout_split, ranking_metrics
from engine.recommend.hybrid import HybridModel, PreferenceConfig
from engine.recommend.models import EASE, ItemKNN, Popularity, mask_seen, score_rows, top_k
from engine.recommend.segments import customer_segments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """The three tables of the module docstring's protocol.

    ``next_purchase``: model, recall@k, ndcg@k, coverage, repeat share (repeats allowed);
    ``table``: model, recall@k, ndcg@k, coverage (new products only, also ``new_products``);
    ``cold_start``: model, recall@k, ndcg@k, cold share (cold products ranked in the
    whole catalogue)."""

    table: pd.DataFrame
    cold_start: pd.DataFrame
    k: int
    holdout_weeks: int
    protocol: dict = field(default_factory=dict)
    next_purchase: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def new_products(self) -> pd.DataFrame:
        return self.table

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "holdout_weeks": self.holdout_weeks,
            "protocol": self.protocol,
            "next_purchase": self.next_purchase.to_dict(orient="records"),
            "models": self.table.to_dict(orient="records"),  # new products
            "cold_start": self.cold_start.to_dict(orient="records"),
        }


def _rank(model, customers: np.ndarray, k: int, exclude_seen: bool = True) -> np.ndarray:
    """Top-k product indices per customer over the whole catalogue; ``exclude_seen``:
    the products in the customer's row of ``model.X_`` are left out."""
    out = [np.zeros((0, k), np.int64)]
    for chunk in model.chunks(customers):
        scores = model.score_torch(chunk)
        if exclude_seen:
            scores = mask_seen(scores, model.X_[chunk])
        out.append(top_k(scores, k)[1].cpu().numpy())
    return np.concatenate(out)


def _rank_static(scores: np.ndarray, seen, customers: np.ndarray, k: int,
                 chunk_size: int = 2048) -> np.ndarray:
    """Top-k of one score vector for every customer, each one's ``seen`` row excluded;
    ties by product index (``top_k`` alone picks arbitrarily among the products tied at
    the k-th place, and a category's products all tie)."""
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((np.arange(len(scores)), -scores))
    position = np.empty(len(scores), np.float32)
    position[order] = -np.arange(len(scores), dtype=np.float32)  # exact below 2^24 products
    base = torch.as_tensor(position)
    out = [np.zeros((0, k), np.int64)]
    rows = score_rows(len(scores), chunk_size)
    for start in range(0, len(customers), rows):
        chunk = customers[start : start + rows]
        s = mask_seen(base.expand(len(chunk), -1).clone(), seen[chunk])
        out.append(top_k(s, k)[1].numpy())
    return np.concatenate(out)


def text_categories(embeddings: np.ndarray, n_categories: int | None = None, seed: int = 0):
    """Category labels from k-means on the text embeddings (for catalogues without categories)."""
    n = len(embeddings)
    n_categories = n_categories or int(np.clip(n // 100, 2, 50))
    km = KMeans(n_clusters=min(n_categories, n), n_init=3, random_state=seed)
    return np.array([f"text cluster {c}" for c in km.fit_predict(embeddings)], dtype=object)


def product_categories(products: pd.DataFrame, embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """The catalogue's categories, or text clusters where it has none."""
    cat = products[C.CATEGORY].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    if (cat == "").all():
        return text_categories(embeddings, seed=seed)
    return cat


def _buyers(train) -> np.ndarray:
    return np.asarray((train.matrix > 0).sum(axis=0)).ravel().astype(np.float64)


def _category_popularity(train, categories: np.ndarray) -> np.ndarray:
    """Each product's category's share of the training purchases (customer × product pairs)."""
    bought = _buyers(train)
    share = pd.Series(bought).groupby(categories).transform("sum").to_numpy()
    return share / max(bought.sum(), 1.0)


def _own_or_category_mean(train, categories: np.ndarray) -> np.ndarray:
    """A sold product's number of buyers; a never-sold one the mean of the sold products
    of its category (0 where its category sold nothing). The weaker reading of
    popularity in category on the cold-start table (module docstring), kept to compare."""
    bought = _buyers(train)
    sold = bought > 0
    mean = pd.Series(np.where(sold, bought, np.nan)).groupby(categories).transform("mean")
    return np.where(sold, bought, mean.fillna(0.0).to_numpy())


def _fit_hybrid(train, embeddings: np.ndarray, config: PreferenceConfig, seed: int) -> HybridModel:
    """The hybrid as ``fit_preferences`` fits it: segments first, all from ``train`` alone."""
    labels = customer_segments(train, embeddings, config, seed)[0]
    return HybridModel(config).fit(train, embeddings, segments=labels)


def _row(name: str, top: np.ndarray, targets: list[np.ndarray], k: int, n_products: int,
         **extra) -> dict:
    valid = top >= 0
    # a list shorter than k is padded with -1: an index no target holds
    top = np.where(valid, top, n_products)
    recall, ndcg = ranking_metrics(top, targets, k)
    coverage = len(np.unique(top[valid])) / n_products
    return {"model": name, f"recall@{k}": recall, f"ndcg@{k}": ndcg, "coverage": coverage, **extra}


def next_purchase_table(split: HoldoutSplit, hybrid: HybridModel, k: int = 20,
                        baselines: dict | None = None) -> pd.DataFrame:
    """Table 1 of the protocol: ``hybrid.next_purchase`` and the unmasked ``baselines``
    (name → fitted model with ``score_torch``) against everything bought in the window."""
    cust, targets = split.next_customers, split.next_targets
    n_products = split.train.n_products
    top, _, repeat = hybrid.next_purchase(cust, k)
    valid = top >= 0
    rows = [_row("hybrid", top, targets, k, n_products,
                 **{"repeat share": float(repeat[valid].mean()) if valid.any() else float("nan")})]
    seen = split.train.matrix
    for name, model in (baselines or {}).items():
        top = _rank(model, cust, k, exclude_seen=False)
        hit_seen = np.asarray(seen[np.repeat(cust, top.shape[1]), top.ravel()]).ravel() > 0
        rows.append(_row(name, top, targets, k, n_products,
                         **{"repeat share": float(hit_seen.mean()) if len(hit_seen) else float("nan")}))
    return pd.DataFrame(rows)


def cold_start_table(split: HoldoutSplit, cold_model: HybridModel, embeddings: np.ndarray,
                     k: int = 20, seed: int = 0, baselines: bool = True) -> tuple[pd.DataFrame, dict]:
    """Table 3 of the protocol (cold products ranked in the whole catalogue, seen products
    excluded) and each model's top-k lists (name → customers × k, indices in the
    catalogue, rows aligned with ``split.cold_customers``)."""
    cust, targets = split.cold_customers, split.cold_targets
    cold = np.zeros(split.train.n_products, bool)
    cold[split.cold_products] = True
    tops = {"hybrid (text)": _rank(cold_model, cust, k)}
    if baselines:
        cats = product_categories(split.train.products, embeddings, seed)
        tops["popularity in category"] = _rank_static(
            _category_popularity(split.cold_train, cats), split.cold_train.matrix, cust, k)
    rows = []
    for name, top in tops.items():
        recall, ndcg = ranking_metrics(top, targets, k)
        rows.append({"model": name, f"recall@{k}": recall, f"ndcg@{k}": ndcg,
                     "cold share": float(cold[top].mean()) if top.size else float("nan")})
    return pd.DataFrame(rows, columns=["model", f"recall@{k}", f"ndcg@{k}", "cold share"]), tops


def evaluate_split(
    split: HoldoutSplit,
    embeddings: np.ndarray,
    k: int = 20,
    config: PreferenceConfig | None = None,
    seed: int = 0,
    baselines: bool = True,
    progress: Callable[[float], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Metric tables (new products, cold start), how the hybrid's weights were tuned
    (``HybridModel.tuning_``) and the next-purchase table, for a prepared split."""
    config = config or PreferenceConfig()
    train = split.train
    binary = train.matrix.copy()
    binary.data[:] = 1.0
    hybrid = _fit_hybrid(train, embeddings, config, seed)
    models: dict[str, object] = {"hybrid": hybrid}
    if baselines:
        dev = config.device
        models["popularity"] = Popularity(dev).fit(binary)
        models["item-kNN"] = ItemKNN(config.knn_neighbours, config.knn_shrink, dev).fit(binary)
        models["EASE"] = EASE(config.ease_l2, config.ease_max_items, dev).fit(binary)
    if progress:
        progress(0.4)
    rows = []
    for name, model in models.items():
        top = _rank(model, split.test_customers, k)
        rows.append(_row(name, top, split.targets, k, train.n_products))
    table = pd.DataFrame(rows)
    if progress:
        progress(0.5)

    repeat_baselines = {}
    if baselines:
        repeat_baselines = {
            "popularity": models["popularity"],
            "personal frequency": PersonalFrequency(config.device).fit(train),
            "EASE": models["EASE"],
            "TIFU-KNN": TIFUKNN(device=config.device).fit(train),
        }
    next_table = next_purchase_table(split, hybrid, k, repeat_baselines)
    if progress:
        progress(0.6)

    cold = pd.DataFrame(columns=["model", f"recall@{k}", f"ndcg@{k}", "cold share"])
    if len(split.cold_customers):
        cold_model = hybrid
        if split.cold_simulated:
            cold_model = _fit_hybrid(split.cold_train, embeddings, config, seed)
        cold = cold_start_table(split, cold_model, embeddings, k, seed, baselines)[0]
    if progress:
        progress(1.0)
    return table, cold, hybrid.tuning_, next_table


def evaluate(
    dataset,
    embeddings: np.ndarray,
    holdout_weeks: int = 8,
    k: int = 20,
    config: PreferenceConfig | None = None,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> EvaluationResult:
    """The three tables of the protocol (next purchase, new products, cold start) on a
    temporal hold-out, each with its baselines."""
    split = holdout_split(dataset, holdout_weeks, seed=seed)
    table, cold, tuning, next_table = evaluate_split(split, embeddings, k, config, seed,
                                                     progress=progress)
    protocol = {
        "cut": str(split.cut),
        "train_customers": int(split.train.n_customers),
        "next_purchase_customers": int(len(split.next_customers)),
        "test_customers": int(len(split.test_customers)),
        "cold_products": int(len(split.cold_products)),
        "cold_customers": int(len(split.cold_customers)),
        "cold_simulated": bool(split.cold_simulated),
        "exclude_seen": True,
        "hybrid_weights": tuning,
    }
    log.info("evaluation protocol: %s", protocol)
    return EvaluationResult(table, cold, k, holdout_weeks, protocol, next_table)
