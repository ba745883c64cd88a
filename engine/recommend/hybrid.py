"""Hybrid preference score: collaborative + trend + segment + content parts.

    c(u, ·)  = w_ease · z(EASE(b_u)) + (1 − w_ease) · z(item-kNN(b_u))
    s(u, p)  = w_collab · c(u, p)
             + w_trend · z(trend)
             + w_segment · z(segment rate of u's segment)
             + w_transfer · z(Σ_j T_pj c(u, j))
             + w_content · z(cos(profile_u, e_p))
             + w_popularity · z(log popularity)

b_u is the customer's history as bought / not bought: on both the sample market
and Online Retail the collaborative models rank better from it than from the
recency-weighted history, which only weighs the content profile.

*trend* is the number of recent orders with the product (each order weighs
0.5 ** (age / ``trend_half_life_days``)): what the shop is selling now.
*segment rate* is the share of the customer's segment that bought the product:
what people like this customer buy (segments come from
``engine.recommend.segments``; without them the part is 0).
T is the text-neighbour matrix: each product's ``text_neighbours`` most similar
products (cosine of the embeddings) among those sold, weights row-normalised.
The transfer term carries a customer's collaborative scores over to products
that read alike. A never-sold product also takes, as its collaborative score,
its text neighbours' weighted mean (T c(u, ·)), and in the trend, segment and
popularity parts their sales: EASE and item-kNN give it the same nothing for
every customer, which ranked it below every product sold (cold products ranked
in the whole catalogue: recall@20 0.001 that way, 0.22 inheriting, on the
sample market).

Each part is standardised per customer (z = (x − mean) / std over the
catalogue), so the weights compare like with like whatever the scale of the
models. P(u, p) = softmax over the catalogue of s / τ.

**Temperature fitted per shop.** The weighted sum of z-scores is no
log-probability: a customer's best product scores 10 to 40 above the mean, so
with τ = 1 P(u, ·) is all but one-hot, and a segment's affinity (its members'
mean P) names a handful of products and nothing else (on the sample market a
segment's favourite held 37-97 % of its mass, and the bundle objective's
affinity term read 0.000 for nearly every other product). Unless ``temperature`` is set,
the weight tuning also picks τ: the one under which the validation customers'
new purchases are most likely (maximum likelihood, a bounded 1-D search over
log τ on the same held-out window). Without a tuning window τ falls back to
``FALLBACK_TEMPERATURE``. Rankings do not depend on τ; probabilities and
segment affinities do.

**Weights tuned per shop.** Which part matters depends on the shop: on Online
Retail (wholesale, seasonal) what sells now counts most after EASE; on the
sample market the segment does. With ``tune_weights`` the fit holds out the
last ``validation_weeks`` of the history it is given, fits the parts on the
rest, and picks the weights by coordinate ascent over ``WEIGHT_GRID`` on
NDCG@20 of the products the validation customers bought for the first time;
then it refits on the whole history with those weights. The evaluation's
hold-out lies after all of this history, so it never informs the choice.
Four weeks, the most recent ones, are most like the weeks ahead; of 4, 6 and 8
weeks, 4 did best for the hybrid on both the sample market and Online Retail.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine import columns as C
from engine.device import choose_device
from engine.errors import DataValidationError
from engine.recommend.config import WEIGHT_GRID, PreferenceConfig
from engine.recommend.holdout import holdout_split, ranking_metrics
from engine.recommend.models import (
    EASE,
    ItemKNN,
    Recommender,
    mask_seen,
    top_k,
)
from engine.recommend.profiles import content_profiles, recency_weights, weighted_matrix
from engine.recommend.repeat import (
    FALLBACK,
    BuyAgain,
    Candidates,
    candidates,
    fit_buy_again,
    next_purchase_top,
    purchase_history,
)
from engine.recommend.segments import customer_segments
from engine.recommend.sequence import SequenceModel

log = logging.getLogger(__name__)

# τ when there is no validation window to fit it on; the search's bounds
FALLBACK_TEMPERATURE = 1.0
TEMPERATURE_BOUNDS = (0.05, 100.0)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-row z-score; a constant row becomes 0."""
    return standardise_(x.clone())


def standardise_(x: torch.Tensor) -> torch.Tensor:
    """``standardise`` in place. The std is a norm of the centred rows, about 20
    times faster than ``torch.std`` on the CPU, where scoring every customer spent a
    third of its time; a row constant up to rounding becomes 0."""
    mean = x.mean(dim=1, keepdim=True)
    x.sub_(mean)
    std = torch.linalg.vector_norm(x, dim=1, keepdim=True).div_(max(x.shape[1] - 1, 1) ** 0.5)
    flat = std <= 1e-6 * mean.abs()
    return x.div_(std.masked_fill_(flat | (std == 0), 1.0)).masked_fill_(flat, 0.0)


def _zscore(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean()) / (x.std() or 1.0)).astype(np.float32)


class HybridModel(Recommender):
    """EASE + item-kNN on who bought what, plus trend, segment, text content and popularity.

    Learned attributes: ``config_`` (the settings with the weights in use),
    ``tuning_`` (validation NDCG of the starting and the chosen weights, or why
    no tuning ran), ``segments_`` (segment of each customer or None).
    """

    def __init__(self, config: PreferenceConfig | None = None):
        self.config = config or PreferenceConfig()

    def fit(self, dataset, embeddings: np.ndarray, segments: np.ndarray | None = None,
            seed: int = 0) -> HybridModel:
        """Fit on ``dataset``; ``segments`` (n_customers,) feeds the segment part."""
        cfg = self.config
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape[0] != dataset.n_products:
            raise ValueError(
                f"embeddings have {emb.shape[0]} rows but the catalogue has "
                f"{dataset.n_products} products; encode dataset.products"
            )
        if segments is not None and np.shape(segments) != (dataset.n_customers,):
            raise ValueError(
                f"segments has shape {np.shape(segments)}, expected ({dataset.n_customers},)"
            )
        self.tuning_ = {"tuned": False, "reason": "tune_weights is off"}
        self.buy_again_ = FALLBACK
        if cfg.tune_weights:
            cfg, self.tuning_, self.buy_again_ = tune_weights(dataset, emb, cfg, segments, seed)
        if cfg.temperature is None:  # nothing to fit it on
            cfg = replace(cfg, temperature=FALLBACK_TEMPERATURE)
        self.config_ = cfg
        self.device_ = choose_device(cfg.device)
        W = weighted_matrix(dataset, cfg.half_life_days)
        # the item weights are learned from who bought what (binary)
        binary = _binary(W)
        dev = str(self.device_)
        self.ease_ = EASE(cfg.ease_l2, cfg.ease_max_items, device=dev).fit(binary)
        self.knn_ = ItemKNN(cfg.knn_neighbours, cfg.knn_shrink, device=dev).fit(binary)
        self.profiles_ = content_profiles(W, emb)
        self.embeddings_ = emb
        buyers = np.asarray(binary.sum(axis=0)).ravel()
        if np.any(emb):
            T = text_neighbour_matrix(emb, buyers > 0, cfg.text_neighbours)
        else:  # a catalogue of codes: its categories are the only sign of what is alike
            T = category_neighbour_matrix(dataset.products, buyers, cfg.text_neighbours)
        self.text_neighbours_ = T

        def borrowed(x: np.ndarray) -> np.ndarray:
            # a never-sold product borrows the sales of its text neighbours
            return np.where(buyers > 0, x, T @ x)

        # recent sales count more: the prior is the recency-weighted number of orders
        self.popularity_ = _zscore(borrowed(np.log1p(np.asarray(W.sum(axis=0)).ravel())))
        self.trend_ = _zscore(borrowed(np.log1p(_recent_orders(dataset, cfg.trend_half_life_days))))
        self.segments_ = None if segments is None else np.asarray(segments, np.int64)
        self.segment_rate_ = None
        if self.segments_ is not None:
            rate = _segment_rates(binary, self.segments_)
            self.segment_rate_ = np.stack([borrowed(r) for r in rate]).astype(np.float32)
        self._transfer = _torch_sparse(T, self.device_)
        unsold = np.flatnonzero(buyers == 0)
        self._unsold = torch.as_tensor(unsold, device=self.device_) if len(unsold) else None
        # the parts that do not depend on the customer's history, weighted once here
        dev = self.device_
        self._prior = self._prior_of(cfg)
        # the segment part is the same row for every member: standardised once here
        self._segment_z = None
        if self.segment_rate_ is not None:
            self._segment_z = standardise(torch.as_tensor(self.segment_rate_, device=dev))
        self.X_ = W
        self.chunk_size = cfg.chunk_size
        self.history_ = purchase_history(dataset)
        self.sequence_ = None
        if self.buy_again_.uses_sequence:
            self.sequence_ = self.buy_again_.sequence_model.reading(dataset)
        return self

    def next_purchase(self, customer_idx, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each customer's ``k`` most likely next purchases, bought-before products
        included (engine/recommend/repeat.py): products, P(bought in the next weeks),
        whether each is a repeat (customers × k)."""
        idx = self._customers(customer_idx)
        out = [np.zeros((0, k), np.int64), np.zeros((0, k), np.float32), np.zeros((0, k), bool)]
        parts = [out]
        for chunk in self.chunks(idx):
            parts.append(self.next_purchase_from(chunk, self.score_torch(chunk), k))
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def next_purchase_from(self, customers: np.ndarray, scores: torch.Tensor, k: int):
        """``next_purchase`` from the customers' hybrid ``scores`` already computed."""
        cands = _scored_candidates(self.history_, customers, scores,
                                   max(self.config_.new_candidates, k), self.sequence_)
        return next_purchase_top(self.buy_again_, cands, self.history_, k)

    def score_torch(self, customer_idx, history: sp.csr_matrix | None = None) -> torch.Tensor:
        idx = self._customers(customer_idx)
        rows = self.X_[idx] if history is None else sp.csr_matrix(history, dtype=np.float32)
        return self._score(rows, customers=idx)

    def parts(self, rows: sp.csr_matrix, profiles: np.ndarray | None = None,
              customers: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The standardised parts of the score for the given history rows.

        ``customers`` (indices of the rows' customers) picks their segments.
        """
        return self.parts_by_mix(rows, profiles, customers, (self.config_.w_ease,))[
            self.config_.w_ease
        ]

    def parts_by_mix(self, rows: sp.csr_matrix, profiles: np.ndarray | None,
                     customers: np.ndarray | None, mixes) -> dict[float, dict[str, torch.Tensor]]:
        """``parts`` for each EASE / item-kNN mix in ``mixes`` (the tuning tries several);
        the models score once, only the mix and the transfer are redone per mix."""
        self._check_fitted()
        if profiles is None:
            profiles = content_profiles(rows, self.embeddings_)
        dev = self.device_
        emb = torch.as_tensor(self.embeddings_, device=dev)
        prof = torch.as_tensor(profiles, device=dev)
        binary = _binary(rows)
        ease = standardise_(self.ease_._score(binary))
        knn = standardise_(self.knn_._score(binary)) if any(w < 1 for w in mixes) else ease
        n = rows.shape[0]
        segment = torch.zeros(1, rows.shape[1], device=dev)
        if self._segment_z is not None and customers is not None:
            segment = self._segment_z[torch.as_tensor(self.segments_[customers], device=dev)]
        shared = {
            "trend": torch.as_tensor(self.trend_, device=dev).expand(n, -1),
            "segment": segment.expand(n, -1),
            "content": standardise_(prof @ emb.T),
            "popularity": torch.as_tensor(self.popularity_, device=dev).expand(n, -1),
        }
        out = {}
        for w in mixes:
            collab = ease * w + knn * (1.0 - w)
            transfer = torch.sparse.mm(self._transfer, collab.T.contiguous()).T.contiguous()
            self._inherit(collab, transfer)
            out[w] = {"collab": collab, "transfer": standardise_(transfer), **shared}
        return out

    def _inherit(self, collab: torch.Tensor, transfer: torch.Tensor) -> None:
        """A never-sold product's collaborative score is its text neighbours' (the
        transfer before standardising): no one bought it, so EASE and item-kNN give it
        the same nothing for everyone, which left it below every product sold."""
        if self._unsold is not None:
            collab[:, self._unsold] = transfer[:, self._unsold]

    def _score(self, rows: sp.csr_matrix, profiles: np.ndarray | None = None,
               customers: np.ndarray | None = None) -> torch.Tensor:
        """``combine(parts(...))`` without materialising the parts: in place, and
        skipping the models whose weight is 0 (item-kNN when w_ease is 1)."""
        cfg = self.config_
        binary = _binary(rows)
        if cfg.w_ease >= 1.0:
            score = standardise_(self.ease_._score(binary))
        elif cfg.w_ease <= 0.0:
            score = standardise_(self.knn_._score(binary))
        else:
            score = standardise_(self.ease_._score(binary)).mul_(cfg.w_ease)
            score.add_(standardise_(self.knn_._score(binary)), alpha=1.0 - cfg.w_ease)
        transfer = None
        if cfg.w_transfer or self._unsold is not None:
            transfer = torch.sparse.mm(self._transfer, score.T.contiguous()).T.contiguous()
            self._inherit(score, transfer)
        score.mul_(cfg.w_collab)
        if cfg.w_transfer:
            score.add_(standardise_(transfer), alpha=cfg.w_transfer)
        if cfg.w_content:
            if profiles is None:
                profiles = content_profiles(rows, self.embeddings_)
            emb = torch.as_tensor(self.embeddings_, device=self.device_)
            content = torch.as_tensor(profiles, device=self.device_) @ emb.T
            score.add_(standardise_(content), alpha=cfg.w_content)
        score.add_(self._prior)
        if self._segment_z is not None and customers is not None and cfg.w_segment:
            seg = torch.as_tensor(self.segments_[customers], device=self.device_)
            score.add_(self._segment_z[seg], alpha=cfg.w_segment)
        return score

    def _prior_of(self, config: PreferenceConfig) -> torch.Tensor:
        """The parts that do not depend on the customer's history, weighted."""
        return torch.as_tensor(config.w_trend * self.trend_ + config.w_popularity * self.popularity_,
                               device=self.device_)

    def reweighted(self, config: PreferenceConfig) -> HybridModel:
        """This fitted model scoring under ``config``'s weights (the tuning's choice),
        the fitted parts shared."""
        other = copy.copy(self)
        other.config_ = config
        other._prior = self._prior_of(config)
        return other

    def probabilities(self, customer_idx) -> np.ndarray:
        """P(u, p): softmax over the catalogue of s / τ (n × P, rows sum to 1)."""
        s = self.score_torch(customer_idx)
        return torch.softmax(s / self.config_.temperature, dim=1).cpu().numpy()

    def segment_means(self, labels: np.ndarray, n_segments: int) -> np.ndarray:
        """Members' mean P(u, p) per segment (S × P), computed in customer chunks."""
        self._check_fitted()
        total = torch.zeros(n_segments, self.X_.shape[1], dtype=torch.float64, device=self.device_)
        labels_t = torch.as_tensor(np.asarray(labels, np.int64), device=self.device_)
        for idx in self.chunks(np.arange(self.X_.shape[0])):
            prob = torch.softmax(self.score_torch(idx) / self.config_.temperature, dim=1)
            total.index_add_(0, labels_t[idx], prob.double())
        sizes = np.bincount(labels, minlength=n_segments).astype(np.float64)
        return (total.cpu().numpy() / np.maximum(sizes, 1)[:, None]).astype(np.float32)


def combine(parts: dict[str, torch.Tensor], config: PreferenceConfig) -> torch.Tensor:
    """s(u, p): the weighted sum of the standardised parts (a new tensor)."""
    score = parts["collab"] * config.w_collab
    for name in ("trend", "segment", "transfer", "content", "popularity"):
        weight = getattr(config, f"w_{name}")
        if weight:
            score.add_(parts[name], alpha=weight)
    return score


def tune_weights(
    dataset, embeddings: np.ndarray, config: PreferenceConfig, segments: np.ndarray | None,
    seed: int = 0,
) -> tuple[PreferenceConfig, dict, BuyAgain]:
    """The config with weights chosen on the last ``validation_weeks`` of ``dataset``,
    and the next-purchase weighing (``BuyAgain``) learned on the same window.

    Returns (config, report, buy_again); the report has the validation NDCG@20 of
    the starting and of the chosen weights and ``next_purchase`` (how the buy-again
    part was fitted, whether the sequence model entered), or ``reason`` when the
    history is too short to hold a window out (then the config comes back unchanged
    and the buy-again part is ``FALLBACK``).
    """
    try:
        split = holdout_split(dataset, config.validation_weeks, with_cold=False)
    except DataValidationError as exc:
        return config, {"tuned": False, "reason": str(exc.issues[0].message)}, FALLBACK
    if len(split.test_customers) < 20:
        return config, {"tuned": False, "reason": "fewer than 20 validation customers"}, FALLBACK
    inner_segments = None
    if segments is not None:
        # segments of the shorter history, as many as given: the given ones know the
        # validation window's purchases, and would make the segment part look better
        # than it is
        k = int(np.max(segments)) + 1
        inner_segments = customer_segments(
            split.train, embeddings, replace(config, n_segments=k), seed, suggest=False
        )[0]
    fixed = replace(config, tune_weights=False)
    model = HybridModel(fixed).fit(split.train, embeddings, inner_segments)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(split.test_customers),
                              min(config.validation_customers, len(split.test_customers)),
                              replace=False))
    cust, targets = split.test_customers[pick], [split.targets[i] for i in pick]
    rows = model.X_[cust]
    cand, invalid, parts = _tuning_candidates(model, rows, cust)

    def ndcg(cfg: PreferenceConfig) -> float:
        scores = combine(parts[cfg.w_ease], cfg).masked_fill_(invalid, -torch.inf)
        at = top_k(scores, 20)[1]
        top = cand.gather(1, at).masked_fill_(invalid.gather(1, at), rows.shape[1])
        return ranking_metrics(top.cpu().numpy(), targets, 20)[1]

    start = replace(fixed, w_ease=min(WEIGHT_GRID["w_ease"], key=lambda w: abs(w - config.w_ease)))
    if segments is None:
        start = replace(start, w_segment=0.0)
    best, best_score = start, ndcg(start)
    for _sweep in range(2):
        changed = False
        for name, grid in WEIGHT_GRID.items():
            if name == "w_segment" and segments is None:
                continue
            for value in grid:
                if value == getattr(best, name):
                    continue
                trial = replace(best, **{name: value})
                score = ndcg(trial)
                if score > best_score + 1e-6:
                    best, best_score, changed = trial, score, True
        if not changed:
            break
    temperature = config.temperature
    if temperature is None:
        temperature = _fit_tuned_temperature(model.reweighted(best), cust, targets, seed)
    report = {
        "tuned": True,
        "validation_weeks": config.validation_weeks,
        "validation_customers": int(len(cust)),
        "ndcg@20_start": round(ndcg(start), 4),
        "ndcg@20_chosen": round(best_score, 4),
        "weights": best.weights(),
        "temperature": round(float(temperature), 4),
        "temperature_fitted": config.temperature is None,
    }
    buy_again = _fit_next_purchase(model, split, best, seed)
    report["next_purchase"] = buy_again.report
    log.info("hybrid weights tuned on the last %d weeks: %s", config.validation_weeks, report)
    return replace(best, tune_weights=config.tune_weights, temperature=temperature), report, buy_again


# each part's best products per validation customer that the weight tuning ranks
TUNING_CANDIDATES = 200
# scores the temperature is fitted on: all 1,500 validation customers of a catalogue
# of up to 44k products, fewer on a bigger one (its logsumexp needs the whole row)
TEMPERATURE_SCORES = 2**26


def _tuning_candidates(model: HybridModel, rows: sp.csr_matrix, customers: np.ndarray):
    """The products the weight tuning ranks for each validation customer: the union of
    each part's ``TUNING_CANDIDATES`` best not bought before, under every EASE /
    item-kNN mix. A top 20 under non-negative weights comes from products high in
    some part, so ranking these instead of the whole catalogue keeps the choice (the
    parts of 1,500 customers × 92k products were 5 GB). Returns (candidates,
    invalid, parts): n × C product indices, which of them are bought before or
    repeated, and ``parts_by_mix``'s parts at those products."""
    P, mixes = rows.shape[1], WEIGHT_GRID["w_ease"]
    cands, invalids, gathered = [], [], []
    for block in model.chunks(np.arange(len(customers))):
        seen = rows[block]
        by_mix = model.parts_by_mix(seen, None, customers[block], mixes)
        n = len(block)
        unique = {id(t): t.expand(n, -1) for mix in by_mix.values() for t in mix.values()}
        bought = mask_seen(torch.zeros(n, P, device=model.device_), seen)
        if TUNING_CANDIDATES * len(unique) >= P:  # a small catalogue: rank it whole
            cand = torch.arange(P, device=model.device_).expand(n, -1)
        else:
            cand = torch.cat([top_k(t + bought, TUNING_CANDIDATES)[1] for t in unique.values()],
                             dim=1).sort(dim=1).values
        invalid = bought.gather(1, cand).isinf()
        invalid[:, 1:] |= cand[:, 1:] == cand[:, :-1]
        cands.append(cand)
        invalids.append(invalid)
        gathered.append({w: {name: t.expand(n, -1).gather(1, cand) for name, t in mix.items()}
                         for w, mix in by_mix.items()})
    parts = {w: {name: torch.cat([g[w][name] for g in gathered]) for name in gathered[0][w]}
             for w in mixes}
    return torch.cat(cands), torch.cat(invalids), parts


def _fit_tuned_temperature(model: HybridModel, customers: np.ndarray,
                           targets: list[np.ndarray], seed: int) -> float:
    """``fit_temperature`` on the tuned scores of the validation customers, a random
    ``TEMPERATURE_SCORES`` // P of them where the catalogue is big."""
    n = max(1, min(len(customers), TEMPERATURE_SCORES // model.X_.shape[1]))
    pick = np.arange(len(customers))
    if n < len(customers):
        pick = np.sort(np.random.default_rng(seed).choice(len(customers), n, replace=False))
    scores = torch.cat([mask_seen(model.score_torch(customers[b]), model.X_[customers[b]])
                        for b in model.chunks(pick)])
    return fit_temperature(scores, [targets[i] for i in pick])


def _fit_next_purchase(model: HybridModel, split, config: PreferenceConfig, seed: int) -> BuyAgain:
    """``BuyAgain`` learned on the validation window of ``split`` from the inner
    ``model``'s scores under the chosen weights. With ``config.sequence`` "auto" the
    GRU enters where it ranks the window better: each half of the validation
    customers ranked by a fit on the other half, with and without it."""
    cust, targets = split.next_customers, split.next_targets
    if len(cust) < 20:
        return replace(FALLBACK, report={"fitted": False,
                                         "reason": "fewer than 20 customers bought in the window"})
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(cust), min(config.validation_customers, len(cust)), replace=False))
    cust, targets = cust[pick], [targets[i] for i in pick]
    history = model.history_
    gate = {"sequence": "off"}
    seq_model = None
    if config.sequence != "off":
        seq_model = SequenceModel(max_seconds=config.sequence_seconds, seed=seed,
                                  device=config.device).fit(split.train)
    cands = _validation_candidates(model.reweighted(config), cust, config.new_candidates,
                                   seq_model)
    use_sequence = False
    if seq_model is not None:
        without_gru, with_gru = (_cross_fitted_ndcg(c, history, targets, seed)
                                 for c in (cands.without_sequence(), cands))
        use_sequence = config.sequence == "on" or with_gru > without_gru + 1e-3
        gate.update({"sequence": "kept" if use_sequence else "left out",
                     "ndcg@20_without_sequence": round(without_gru, 4),
                     "ndcg@20_with_sequence": round(with_gru, 4),
                     "sequence_train_seconds": round(seq_model.train_seconds_, 1)})
    buy_again = fit_buy_again(cands, history, targets, seed, use_sequence)
    return replace(buy_again, report={**buy_again.report, **gate},
                   sequence_model=seq_model if use_sequence else None)


def _validation_candidates(model: HybridModel, customers: np.ndarray, n_new: int,
                           sequence: SequenceModel | None) -> Candidates:
    """``candidates`` of ``customers`` under ``model``'s scores (and the GRU's), scored
    a block of customers at a time."""
    return Candidates.concat([_scored_candidates(model.history_, block, model.score_torch(block),
                                                 n_new, sequence)
                              for block in model.chunks(customers)])


def _scored_candidates(history, customers: np.ndarray, scores: torch.Tensor, n_new: int,
                       sequence) -> Candidates:
    """``candidates`` of ``customers`` from their hybrid ``scores`` and, when a sequence
    model is given, its standardised scores."""
    seq = None if sequence is None else standardise_(sequence.score_torch(customers)).cpu().numpy()
    return candidates(scores.float().cpu().numpy(), history, customers, n_new, seq)


def _cross_fitted_ndcg(cands: Candidates, history, targets, seed) -> float:
    """NDCG@20 of the next-purchase lists, each half ranked by the classifier fitted on
    the other half."""
    half = np.arange(len(cands.customers)) % 2 == 0
    total = 0.0
    for fit_on in (half, ~half):
        test = ~fit_on
        buy_again = fit_buy_again(cands.of(fit_on), history,
                                  [targets[i] for i in np.flatnonzero(fit_on)], seed,
                                  cands.sequence is not None)
        top = next_purchase_top(buy_again, cands.of(test), history, 20)[0]
        total += ranking_metrics(top, [targets[i] for i in np.flatnonzero(test)], 20)[1] * test.sum()
    return float(total / len(cands.customers))


def fit_temperature(scores: torch.Tensor, targets: list[np.ndarray],
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """τ that maximises the mean (per customer) log-likelihood of the ``targets``
    (each row's products bought) under softmax(scores / τ); -inf scores (seen
    products) take no mass. A bounded search over log τ: the likelihood is smooth
    in τ and has one maximum between "all mass on the top product" and "uniform"."""
    from scipy.optimize import minimize_scalar

    sizes = np.array([len(t) for t in targets])
    keep = sizes > 0
    if not keep.any():
        return FALLBACK_TEMPERATURE
    rows = np.repeat(np.flatnonzero(keep), sizes[keep])
    cols = np.concatenate([t for t in targets if len(t)]).astype(np.int64)
    s = scores.float()
    rows_t = torch.as_tensor(rows, device=s.device)
    picked = s[rows_t, torch.as_tensor(cols, device=s.device)]
    weight = torch.as_tensor(1.0 / sizes[rows], dtype=torch.float32, device=s.device)

    def neg_log_likelihood(log_tau: float) -> float:
        tau = float(np.exp(log_tau))
        lse = torch.logsumexp(s / tau, dim=1)
        return -float(((picked / tau - lse[rows_t]) * weight).sum()) / int(keep.sum())

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(neg_log_likelihood, bounds=(lo, hi), method="bounded",
                             options={"xatol": 1e-3})
    return float(np.exp(result.x))


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(m, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def _recent_orders(dataset, half_life_days: float) -> np.ndarray:
    """(P,) orders containing each product, each weighted by its recency."""
    w = recency_weights(dataset.order_time, half_life_days)
    return np.asarray(sp.csr_matrix(dataset.baskets).T @ w, dtype=np.float64).ravel()


def _segment_rates(binary: sp.csr_matrix, segments: np.ndarray) -> np.ndarray:
    """S × P: share of each segment's customers who bought each product."""
    k = int(segments.max()) + 1
    member = sp.csr_matrix(
        (np.ones(len(segments), np.float32), (segments, np.arange(len(segments)))),
        shape=(k, len(segments)),
    )
    counts = np.asarray((member @ binary).todense(), dtype=np.float64)
    return counts / np.maximum(np.bincount(segments, minlength=k), 1)[:, None]


# Above this many sold products the text neighbours come from a cell search: the
# exact one compares every product with every sold one, which grows with the
# square of the catalogue (92k x 63k texts on a grocery shop: minutes).
EXACT_NEIGHBOURS_UP_TO = 20_000
CELL_PROBES = 8  # cells searched per product, of about sqrt(sold) cells


def text_neighbour_matrix(embeddings: np.ndarray, sold: np.ndarray, k: int,
                          exact_up_to: int = EXACT_NEIGHBOURS_UP_TO) -> sp.csr_matrix:
    """P × P: row p holds p's ``k`` nearest sold products by text (not p itself),
    weights max(cos, 0) normalised to sum 1. Built in row blocks (P × P never dense);
    exact up to ``exact_up_to`` sold products, from ``_cell_neighbours`` above."""
    n = len(embeddings)
    cand = np.flatnonzero(sold)
    k = min(k, max(len(cand) - 1, 0))
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    emb = np.asarray(embeddings, np.float32)
    search = _exact_neighbours if len(cand) <= exact_up_to else _cell_neighbours
    cols, sims = search(emb, cand, k)
    found = cols >= 0
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    return _rows_summing_to_one(sp.csr_matrix(
        (np.maximum(sims[found], 0.0), (rows[found], cols[found])), shape=(n, n)))


def _exact_neighbours(emb: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(P × k products, P × k cosines): each product's ``k`` most similar of ``cand``."""
    emb_c = torch.from_numpy(emb[cand])
    cols, sims = [], []
    for start in range(0, len(emb), 2048):
        block = torch.from_numpy(emb[start : start + 2048]) @ emb_c.T
        own = np.arange(start, start + len(block))
        pos = np.searchsorted(cand, own)
        is_own = (pos < len(cand)) & (cand[np.minimum(pos, len(cand) - 1)] == own)
        block[np.flatnonzero(is_own), pos[is_own]] = -np.inf  # never its own neighbour
        sim, top = torch.topk(block, k, dim=1)
        cols.append(cand[top.numpy()])
        sims.append(sim.numpy())
    return np.concatenate(cols), np.concatenate(sims)


def _cell_neighbours(emb: np.ndarray, cand: np.ndarray, k: int,
                     probes: int = CELL_PROBES) -> tuple[np.ndarray, np.ndarray]:
    """``_exact_neighbours`` searched in cells (an inverted file, as FAISS's IVF):
    the sold products are split into about sqrt(len(cand)) cells by k-means on
    their texts, and each product is compared only with the sold products of its
    ``probes`` nearest cells; a neighbour in a farther cell is missed (-1 where
    fewer than ``k`` are found). Work grows with P × sqrt(sold), not P × sold."""
    from sklearn.cluster import MiniBatchKMeans

    n_cells = max(2, int(np.sqrt(len(cand))))
    rng = np.random.default_rng(0)
    sample = cand[np.sort(rng.choice(len(cand), min(len(cand), 50 * n_cells), replace=False))]
    fit = MiniBatchKMeans(n_cells, init="random", n_init=1, batch_size=4096, max_iter=10,
                          random_state=0)
    cell = fit.fit(emb[sample]).predict(emb[cand])
    centres = torch.from_numpy(fit.cluster_centers_.astype(np.float32))
    queries = torch.from_numpy(emb)
    probe = torch.topk(queries @ centres.T, min(probes, n_cells), dim=1)[1].numpy()
    # the products asking each cell, and each cell's members, by one sort each
    ask_order = np.argsort(probe.ravel(), kind="stable")
    ask_bounds = np.searchsorted(probe.ravel()[ask_order], np.arange(n_cells + 1))
    member_order = np.argsort(cell, kind="stable")
    member_bounds = np.searchsorted(cell[member_order], np.arange(n_cells + 1))
    best = torch.full((len(emb), k), -torch.inf)
    best_col = torch.full((len(emb), k), -1, dtype=torch.long)
    for c in range(n_cells):
        members = cand[member_order[member_bounds[c] : member_bounds[c + 1]]]
        asking = ask_order[ask_bounds[c] : ask_bounds[c + 1]] // probe.shape[1]
        if not len(members) or not len(asking):
            continue
        block = queries[asking] @ queries[members].T
        own_row, own_col = np.nonzero(asking[:, None] == members[None, :])
        block[own_row, own_col] = -torch.inf  # never its own neighbour
        members_t, asking_t = torch.from_numpy(members), torch.from_numpy(asking)
        merged = torch.cat([best[asking_t], block], dim=1)
        merged_col = torch.cat([best_col[asking_t], members_t.expand(len(asking), -1)], dim=1)
        sim, at = torch.topk(merged, k, dim=1)
        best[asking_t], best_col[asking_t] = sim, torch.gather(merged_col, 1, at)
    best_col[torch.isinf(best)] = -1
    return best_col.numpy(), best.numpy()


def category_neighbour_matrix(products: pd.DataFrame, buyers: np.ndarray, k: int) -> sp.csr_matrix:
    """P × P for a catalogue without text: row p holds the ``k`` most-bought sold products
    of p's category (not p itself), weighted by their buyers and normalised to sum 1;
    empty rows where the catalogue has no categories."""
    n = len(products)
    if C.CATEGORY not in products:
        return sp.csr_matrix((n, n), dtype=np.float32)
    cat = products[C.CATEGORY].fillna("").astype(str).str.strip().to_numpy()
    sold = np.flatnonzero((buyers > 0) & (cat != ""))
    # each category's sold products, most bought first, the first k + 1 kept (one may be p)
    order = sold[np.lexsort((sold, -buyers[sold], cat[sold]))]
    rank = pd.Series(cat[order]).groupby(cat[order]).cumcount().to_numpy()
    top = order[rank <= k]
    members = pd.DataFrame({"category": cat[top], "neighbour": top, "weight": buyers[top]})
    pairs = pd.DataFrame({"category": cat, "product": np.arange(n)}).merge(members, on="category")
    pairs = pairs[pairs["product"] != pairs["neighbour"]]
    pairs = pairs[pairs.groupby("product").cumcount() < k]
    return _rows_summing_to_one(sp.csr_matrix(
        (pairs["weight"].to_numpy(np.float64),
         (pairs["product"].to_numpy(), pairs["neighbour"].to_numpy())), shape=(n, n)))


def _rows_summing_to_one(T: sp.csr_matrix) -> sp.csr_matrix:
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
