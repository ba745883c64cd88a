"""One entry point for the pages and the pipeline: fit the hybrid, segment customers,
explain recommendations.

Segments: k-means (seeded) on a customer representation that concatenates the
L2-normalised content profile (taste as the text of what they buy) with the
L2-normalised truncated SVD of the TF-IDF weighted purchase matrix (who buys alike).
``suggest_k`` picks k in a range by silhouette.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize

from engine import columns as C
from engine.recommend.copurchase import CoPurchaseStats, copurchase_stats
from engine.recommend.hybrid import HybridModel, PreferenceConfig
from engine.recommend.models import mask_seen, top_k
from engine.recommend.profiles import content_profiles, weighted_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preferences:
    """Fitted preferences of a dataset's customers.

    segment_labels : (n_customers,) segment of each customer (dataset index order).
    segment_centroids : S × d k-means centroids in the representation space.
    segment_affinity : S × P, members' mean P(u, p).
    category_affinity : S × categories, summed segment_affinity per category.
    silhouette : {k: silhouette score} over ``config.k_range``.
    """

    model: HybridModel
    copurchase: CoPurchaseStats
    segment_labels: np.ndarray
    segment_centroids: np.ndarray
    segment_affinity: np.ndarray
    category_affinity: pd.DataFrame
    suggested_k: int
    silhouette: dict
    config: PreferenceConfig

    @property
    def n_segments(self) -> int:
        return len(self.segment_centroids)

    def segment_sizes(self) -> pd.Series:
        sizes = np.bincount(self.segment_labels, minlength=self.n_segments)
        return pd.Series(sizes, index=pd.RangeIndex(self.n_segments, name=C.SEGMENT), name="customers")


def customer_representation(
    dataset, embeddings: np.ndarray, half_life_days: float = 90.0, n_components: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Content profile ⊕ normalised SVD of the TF-IDF weighted bought/not-bought matrix.

    TF-IDF: a product few customers buy says more about a customer's taste than a
    best-seller everyone buys (on the sample market this lifts the agreement with
    the planted segments, adjusted Rand 0.77 -> 0.85).
    """
    W = weighted_matrix(dataset, half_life_days)
    bought = TfidfTransformer().fit_transform(W > 0)
    n_comp = max(1, min(n_components, min(W.shape) - 1))
    svd = TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(bought)
    return np.hstack([content_profiles(W, embeddings), normalize(svd)]).astype(np.float32)


def suggest_k(rep: np.ndarray, k_range=(2, 10), seed: int = 0, sample: int = 2000) -> tuple[int, dict]:
    """The k in ``k_range`` (inclusive) with the best silhouette, and all scores."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(rep), size=min(sample, len(rep)), replace=False)
    scores = {}
    for k in range(k_range[0], min(k_range[1], len(rep) - 1) + 1):
        # fitted on the sample too: the silhouette only needs a sample, and a
        # k-means per candidate k on every customer dominated the fit time
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(rep[idx])
        if len(np.unique(labels)) > 1:
            scores[k] = float(silhouette_score(rep[idx], labels))
    best = max(scores, key=lambda k: (scores[k], -k)) if scores else k_range[0]
    return best, scores


def segment_customers(rep: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means labels and centroids, segments numbered by size (0 = largest)."""
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(rep)
    sizes = np.bincount(km.labels_, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))
    relabel = np.empty(k, np.int64)
    relabel[order] = np.arange(k)
    return relabel[km.labels_], km.cluster_centers_[order]


def customer_segments(
    dataset, embeddings: np.ndarray, config: PreferenceConfig, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int, dict]:
    """(labels, centroids, suggested k, silhouette scores): k-means on the customer
    representation, k from ``config.n_segments`` or else the silhouette's choice."""
    rep = customer_representation(
        dataset, embeddings, config.half_life_days, config.svd_components, seed
    )
    suggested, scores = suggest_k(rep, config.k_range, seed)
    labels, centroids = segment_customers(rep, config.n_segments or suggested, seed)
    return labels, centroids, suggested, scores


def fit_preferences(
    dataset,
    embeddings: np.ndarray,
    config: PreferenceConfig = PreferenceConfig(),  # noqa: B008 (frozen, so safe)
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Preferences:
    """Fit the segments, the hybrid model (whose segment part uses them) and the
    co-purchase stats of ``dataset``."""
    report = progress or (lambda _f: None)
    labels, centroids, suggested, scores = customer_segments(dataset, embeddings, config, seed)
    k = len(centroids)
    report(0.3)
    model = HybridModel(config).fit(dataset, embeddings, segments=labels)
    report(0.6)
    stats = copurchase_stats(dataset.baskets)
    affinity = model.segment_means(labels, k)
    report(0.9)
    cats = dataset.products[C.CATEGORY].fillna("").astype(str).replace("", "(none)")
    cat_aff = pd.DataFrame(affinity.T).groupby(cats.to_numpy()).sum().T
    cat_aff.index.name = C.SEGMENT
    report(1.0)
    return Preferences(model, stats, labels, centroids, affinity, cat_aff, suggested, scores, config)


def explain(prefs: Preferences, dataset, embeddings: np.ndarray, customer: int, product: int) -> str:
    """A sentence naming the past purchases and text neighbours behind a recommendation."""
    return explain_many(prefs, dataset, embeddings, customer, np.array([product]))[0]


def explain_many(
    prefs: Preferences, dataset, embeddings: np.ndarray, customer: int, products: np.ndarray
) -> list[str]:
    """``explain`` for several products of one customer, with one sparse lookup each
    for the whole list (explaining every customer's top-k stays fast)."""
    model = prefs.model
    history = model.X_[customer]
    bought = history.indices
    products = np.asarray(products, np.int64)
    if len(bought) == 0:
        return ["Popular with all customers"] * len(products)
    collab = np.zeros((len(bought), len(products)))
    items = model.ease_.items_
    cols = np.searchsorted(items, products)
    in_ease = (cols < len(items)) & (items[np.minimum(cols, len(items) - 1)] == products)
    rows = np.searchsorted(items, bought)
    ok = (rows < len(items)) & (items[np.minimum(rows, len(items) - 1)] == bought)
    if in_ease.any() and ok.any():
        w = model.ease_.weights_[rows[ok]][:, cols[in_ease]].cpu().numpy()
        collab[np.ix_(ok, in_ease)] = w
    collab += model.knn_.similarity_[bought][:, products].toarray()
    collab *= history.data[:, None]
    text = embeddings[bought] @ embeddings[products].T
    lift = prefs.copurchase.lift_block(bought, products)
    names = dataset.products[C.NAME].astype(str).to_numpy()
    sold = prefs.copurchase.item_counts[products] > 0
    return [
        _sentence(names, bought, collab[:, j], text[:, j], lift[:, j], sold[j])
        for j in range(len(products))
    ]


def _sentence(names, bought, collab, text, lift, sold: bool) -> str:
    parts = []
    order = np.argsort(-collab, kind="stable")
    drivers = order[collab[order] > 0]
    if len(drivers):
        more = len(drivers) - 1
        extra = f" and {more} of your past purchases" if more else ""
        first = drivers[0]
        parts.append(f"Bought with {names[bought[first]]} (lift {lift[first]:.1f}){extra}")
    if not sold:
        parts.append("new product, not sold yet")
    best = int(np.argmax(text))
    parts.append(f"similar to {names[bought[best]]} (text {text[best]:.2f})")
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:]


def recommend_top_k(
    prefs: Preferences,
    dataset,
    embeddings: np.ndarray,
    k: int = 10,
    customers: np.ndarray | None = None,
    reasons: bool = True,
) -> pd.DataFrame:
    """Top ``k`` for every customer (or the given indices): customer_id, rank, product_id,
    score, reason. Seen products are excluded when ``config.exclude_seen``."""
    model = prefs.model
    idx = np.arange(dataset.n_customers) if customers is None else np.asarray(customers, np.int64)
    ids, vals = [], []
    for start in range(0, len(idx), model.chunk_size):
        chunk = idx[start : start + model.chunk_size]
        scores = model.score_torch(chunk)
        if prefs.config.exclude_seen:
            scores = mask_seen(scores, model.X_[chunk])
        v, i = top_k(scores, k)
        ids.append(i.cpu().numpy())
        vals.append(v.float().cpu().numpy())
    top = np.concatenate(ids) if ids else np.zeros((0, k), np.int64)
    val = np.concatenate(vals) if vals else np.zeros((0, k), np.float32)
    kk = top.shape[1]
    cust = np.repeat(idx, kk)
    prod = top.ravel()
    out = pd.DataFrame({
        C.CUSTOMER_ID: dataset.customer_ids[cust],
        "rank": np.tile(np.arange(1, kk + 1), len(idx)),
        C.PRODUCT_ID: dataset.product_ids[prod],
        "score": val.ravel().round(4),
    })
    if reasons:
        out["reason"] = [
            reason
            for row, c in enumerate(idx)
            for reason in explain_many(prefs, dataset, embeddings, int(c), top[row])
        ]
    else:
        out["reason"] = ""
    return out
