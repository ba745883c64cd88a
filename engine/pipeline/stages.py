"""The stages of the one pipeline, one function each:

load → embed → segment → recommend · demand → bundles → visitors → scenario →
prices → price list and offers.

Each takes the dataset, its own slice of ``RunConfig`` and the upstream
results, and returns a typed result; none reads global state. The batch run
(``engine.pipeline.run``), every command and every dashboard page call these,
so the same settings give the same answer wherever the analyst looks. The
dashboard caches each call on the slices it depends on, which is why pricing is
split into ``visitors`` (the draws: demand and the simulation size),
``scenario`` (synergy and visitors per segment re-weight the same draws) and
``prices`` (the guardrails): a guardrail slider re-optimises without new draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine import columns as C
from engine.bundles import BeamConfig, Bundle, BundleInputs, beam_search, bundles_frame
from engine.data import Dataset, load_files
from engine.data.load import LoadResult
from engine.encoder import EncoderConfig, encode_products
from engine.encoder.texts import attribute_columns
from engine.errors import ConfigError
from engine.export import offer_list
from engine.export import price_list as price_list_frame
from engine.pipeline.config import InputConfig, SeasonConfig
from engine.pricing import (
    DemandConfig,
    DemandModel,
    PricingConfig,
    PricingRun,
    calibrate_demand,
    evaluate,
    month_index,
    optimise_prices,
    prepare_choices,
    run_on_choices,
    seasonal_index,
)
from engine.pricing.simulate import Choices
from engine.pricing.synergy import SynergyEstimate, estimate_synergy
from engine.recommend import CoPurchaseStats, PreferenceConfig, Preferences, fit_preferences
from engine.recommend.preferences import recommend_top_k
from engine.threads import single_threaded

log = logging.getLogger(__name__)

Progress = Callable[[float], None] | None

# The bundle search ranks its finished bundles by the profit each can add at its
# best price under the demand model, with no guardrail but the list total: which
# bundles pay is a question of demand, and the analyst's guardrails then set the
# price. So moving a guardrail re-prices at once and never swaps the bundles.
RANKING_MAX_DISCOUNT = 0.6


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Segments:
    """The fitted preferences and the segments' names (``S1 · Kitchen``: number
    and the category the segment favours most), as every page and file shows them."""

    preferences: Preferences
    names: tuple[str, ...]

    @property
    def labels(self) -> np.ndarray:
        return self.preferences.segment_labels

    @property
    def affinity(self) -> np.ndarray:
        return self.preferences.segment_affinity

    @property
    def copurchase(self) -> CoPurchaseStats:
        return self.preferences.copurchase

    @property
    def n(self) -> int:
        return int(self.affinity.shape[0])

    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n).astype(float)

    def code(self, segment: int) -> str:
        return f"S{int(segment) + 1}"


@dataclass(frozen=True)
class BundleSet:
    """The bundles offered, in order (segment by segment, best first), their ids
    (``S1-P0001-P0002``: segment code and product ids), synergy per bundle and
    where it came from (``engine.pricing.synergy``: the cross-price response,
    shrunk to 0, or the analyst's)."""

    bundles: tuple[Bundle, ...]
    ids: tuple[str, ...]
    synergy: np.ndarray
    synergy_source: tuple[str, ...] = ()

    @property
    def items(self) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in b.products) for b in self.bundles]

    @property
    def segments(self) -> list[int]:
        return [int(b.segment) for b in self.bundles]

    def __len__(self) -> int:
        return len(self.bundles)

    def table(self) -> pd.DataFrame:
        """``bundles.csv``: one row per bundle with its terms and reason."""
        frame = bundles_frame(list(self.bundles))
        if not frame.empty:
            frame["bundle_id"] = list(self.ids)
            frame["synergy"] = self.synergy
            frame["synergy_source"] = list(self.synergy_source) or ""
        return frame

    def by_segment(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for b, bid in zip(self.bundles, self.ids, strict=True):
            out.setdefault(int(b.segment), []).append(bid)
        return out


# ---------------------------------------------------------------- stages


def load(files: Sequence, config: InputConfig, progress: Progress = None) -> LoadResult:
    """Read, map and validate ``files`` (paths or ``InputFile``); DataValidationError
    names the file, column and rows of every problem."""
    names = [getattr(f, "name", None) or str(f) for f in files]
    return load_files(list(files), mapping=config.for_files(names),
                      keep_non_merchandise=config.keep_non_merchandise, progress=progress,
                      orders=config.orders, keep_outliers=config.keep_outliers)


NO_TEXT = ("the catalogue has no product text (names, descriptions, categories in words), "
           "only codes: the text encoder is off, so similarity and substitutes come from "
           "co-purchase alone")
NO_TEXT_DIM = 16


def has_text(dataset: Dataset) -> bool:
    """Whether any product has words to encode (not only ids and numeric codes)."""
    products = dataset.products
    columns = [c for c in (C.NAME, C.DESCRIPTION, C.CATEGORY, *attribute_columns(products))
               if c in products]
    for col in columns:
        values = products[col].dropna().astype(str)
        if values.str.contains(r"[^\W\d_]{2,}", regex=True).any():
            return True
    return False


def embed(dataset: Dataset, config: EncoderConfig, cache_dir=None,
          progress: Progress = None) -> np.ndarray:
    """L2-normalised text embedding per product (the on-disk cache encodes only
    what changed). A catalogue of codes alone is not encoded (digits say nothing
    a language model knows): its rows are zeros, so every text term is 0."""
    if not has_text(dataset):
        log.warning(NO_TEXT)
        if progress:
            progress(1.0)
        return np.zeros((dataset.n_products, NO_TEXT_DIM), np.float32)
    return encode_products(dataset.products, config, cache_dir, progress=progress)


def segment(dataset: Dataset, embeddings: np.ndarray, config: PreferenceConfig,
            seed: int) -> Segments:
    """The hybrid preference model, the customer segments and their names; the number
    of segments is the analyst's or else chosen by held-out purchases
    (``prefs.k_choice``: the curve and the reason). No bundle profit enters that
    choice here: the profit is known only after the bundle and pricing stages;
    ``engine.recommend.segments.suggest_k`` takes a ``profit`` callback for that."""
    prefs = fit_preferences(dataset, embeddings, config, seed=seed)
    log.info("segments: %s", prefs.k_choice.reason)
    return Segments(prefs, segment_names(dataset, prefs.segment_labels, prefs.segment_affinity))


def segment_names(dataset: Dataset, labels: np.ndarray, affinity: np.ndarray) -> tuple[str, ...]:
    """``S1 · Kitchen``: the segment's number and the category it favours most
    (just ``S1`` where the catalogue has no categories)."""
    cats = dataset.products[C.CATEGORY].fillna("").astype(str).to_numpy()
    names = []
    for s, row in enumerate(np.asarray(affinity)):
        by_cat = pd.Series(row).groupby(cats).sum().drop("", errors="ignore")
        top = str(by_cat.idxmax()) if len(by_cat) and by_cat.max() > 0 else ""
        names.append(f"S{s + 1}" + (f" · {top}" if top else ""))
    return tuple(names)


def recommend(segments: Segments, dataset: Dataset, embeddings: np.ndarray, k: int,
              reasons: bool = True, purchased: str = "include") -> pd.DataFrame:
    """Top ``k`` products per customer with history, with the reason and whether each
    is a repeat; ``purchased``: "include" (the next purchase) or "exclude" (new only)."""
    return recommend_top_k(segments.preferences, dataset, embeddings, k, reasons=reasons,
                           purchased=purchased)


def demand(dataset: Dataset, segments: Segments, config: DemandConfig,
           season: SeasonConfig) -> DemandModel:
    """Calibrated willingness to pay per segment and product, for the season."""
    with single_threaded():
        model = calibrate_demand(dataset, segments.labels, config)
    if season.month:
        model = model.for_month(month_index(dataset, seasonal_index(dataset), season.month))
    return model


def synergy(model: DemandModel, items: Sequence[Sequence[int]], segments: Sequence[int],
            config: DemandConfig) -> SynergyEstimate:
    """Synergy per bundle offered to ``segments``: from the cross-price response in
    the bundle's segment (shrunk to 0 where the promotions say too little), or the
    analyst's override; ``.values`` and ``.sources``."""
    return estimate_synergy(model, items, segments, config)


def bundles(
    dataset: Dataset,
    segments: Segments,
    embeddings: np.ndarray | None,
    model: DemandModel,
    config: BeamConfig,
    demand_config: DemandConfig,
    profit_draws: int,
    seed: int,
    progress: Progress = None,
    ranker: Callable[[int, Sequence[int]], float] | None = None,
) -> BundleSet:
    """Beam search per segment: each segment gets the bundles that add profit
    (``config.min_added_profit`` per period, at most ``config.n_bundles``).

    ``embeddings`` flag substitutes (None: no text test). ``ranker``: a
    ``profit_ranker`` of the same settings whose memo to reuse. Raises ConfigError
    when an anchor or excluded product is not in the catalogue.
    """
    _check_products(dataset, config)
    inputs = bundle_inputs(dataset, segments, embeddings)
    ranker = ranker or profit_ranker(model, segments.copurchase, demand_config, profit_draws,
                                     seed)
    with single_threaded():
        found = beam_search(inputs, config, profit_fn=ranker, progress=progress,
                            visitors=model.segment_size)
    return _bundle_set(found, segments, demand_config, model)


def bundle_inputs(dataset: Dataset, segments: Segments,
                  embeddings: np.ndarray | None) -> BundleInputs:
    return BundleInputs.from_dataset(dataset, segments.affinity, segments.copurchase,
                                     embeddings, segment_labels=segments.names)


def customer_bundles(
    dataset: Dataset,
    segments: Segments,
    embeddings: np.ndarray | None,
    model: DemandModel,
    config: BeamConfig,
    demand_config: DemandConfig,
    profit_draws: int,
    seed: int,
    customer: int,
    own_weight: float = 0.5,
    ranker: Callable[[int, Sequence[int]], float] | None = None,
) -> list[Bundle]:
    """The beam on one customer's own purchase shares blended with their segment's
    affinity (so products they never bought still count), ranked by the profit
    the bundle adds in their segment (``ranker``: as in ``bundles``)."""
    _check_products(dataset, config)
    seg = int(segments.labels[customer])
    row = customer_taste(dataset.matrix, customer, segments.affinity[seg], own_weight)
    inputs = replace(bundle_inputs(dataset, segments, embeddings), affinity=row[None, :],
                     segment_labels=("this customer",))
    ranker = ranker or profit_ranker(model, segments.copurchase, demand_config, profit_draws,
                                     seed)
    with single_threaded():
        return beam_search(inputs, config, profit_fn=lambda _row, items: ranker(seg, items),
                           visitors=model.segment_size[[seg]])


def customer_taste(matrix, customer: int, segment_row: np.ndarray,
                   own_weight: float = 0.5) -> np.ndarray:
    """(P,) one customer's own purchase shares blended with their segment's
    affinity, each scaled to sum to 1 first."""
    if not 0 <= own_weight <= 1:
        raise ConfigError([f"own_weight = {own_weight}: a share in [0, 1]"])
    own = np.asarray(sp.csr_matrix(matrix)[customer].todense(), np.float64).ravel()
    taste = np.asarray(segment_row, np.float64).ravel()
    return (own_weight * own / max(own.sum(), 1e-12)
            + (1 - own_weight) * taste / max(taste.sum(), 1e-12))


def visitors(model: DemandModel, found: BundleSet, config: PricingConfig) -> Choices:
    """The simulated visitors of every bundle's segment (common random numbers);
    only the demand model, the bundles and the simulation size change them."""
    with single_threaded():
        return prepare_choices(model.market(), found.items, found.segments, 0.0,
                               config.n_customers, config.seed)


def scenario(choices: Choices, found: BundleSet, segments: Segments,
             config: DemandConfig) -> Choices:
    """The draws with the bundles' synergy and the visitors per period of each
    segment (``config.segment_visitors``, else its customers)."""
    sizes = segments.sizes()
    if config.segment_visitors is not None:
        if len(config.segment_visitors) != segments.n:
            raise ConfigError([
                f"[demand] segment_visitors = {list(config.segment_visitors)}: one number per "
                f"segment ({segments.n} segments)"])
        sizes = np.asarray(config.segment_visitors, float)
    return choices.with_synergy(found.synergy).with_segment_size(sizes)


def prices(choices: Choices, found: BundleSet, config: PricingConfig) -> PricingRun:
    """Optimised prices within the guardrails, the outcomes and the baselines."""
    with single_threaded():
        return run_on_choices(choices, found.items, config)


def price_offers(model: DemandModel, found: BundleSet, segments: Segments,
                 demand_config: DemandConfig, pricing: PricingConfig) -> PricingRun:
    """``visitors`` → ``scenario`` → ``prices`` in one call (the batch run's path)."""
    drawn = visitors(model, found, pricing)
    return prices(scenario(drawn, found, segments, demand_config), found, pricing)


def price_list(dataset: Dataset, found: BundleSet, run: PricingRun,
               segments: Segments) -> pd.DataFrame:
    """The bundle price list: one row per (segment, bundle), the columns of
    ``columns.PRICE_LIST_COLUMNS``."""
    reasons = [b.reason for b in found.bundles]
    return price_list_frame(dataset, found.items, run, bundle_ids=list(found.ids),
                            segment_names=list(segments.names), bundle_reasons=reasons)


def offers(dataset: Dataset, segments: Segments, found: BundleSet,
           pseudonymise: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Per customer: their segment and the bundle ids offered to it."""
    return offer_list(dataset.customer_ids, segments.labels, found.by_segment(),
                      list(segments.names), pseudonymise=pseudonymise)


# ---------------------------------------------------------------- helpers


def profit_ranker(model: DemandModel, copurchase: CoPurchaseStats, config: DemandConfig,
                  draws: int, seed: int) -> Callable[[int, Sequence[int]], float]:
    """``profit_fn`` for the beam's final ranking: the profit per visitor the
    bundle adds at its best price (mixed bundling, against the singles alone)."""
    market = model.market()
    ranking = PricingConfig(max_discount=RANKING_MAX_DISCOUNT, margin_floor=0.0,
                            price_ending=None, n_customers=max(100, draws), seed=seed)
    cache: dict[tuple, float] = {}

    def profit(segment: int, items: Sequence[int]) -> float:
        key = (int(segment), tuple(sorted(int(i) for i in items)))
        if key not in cache:
            syn = synergy(model, [key[1]], [key[0]], config).values
            choices = prepare_choices(market, [key[1]], [key[0]], syn, ranking.n_customers,
                                      ranking.seed)
            best = optimise_prices(choices, ranking)[0]
            gain = (evaluate(choices, np.array([best.price])).per_bundle["profit"].iat[0]
                    - evaluate(choices, np.array([np.inf])).per_bundle["profit"].iat[0])
            # per visitor, not per period: on the objective's scale whatever the segment size
            cache[key] = float(gain) / max(float(choices.segment_size[0]), 1.0)
        return cache[key]

    return profit


def _bundle_set(found: Sequence[Bundle], segments: Segments, config: DemandConfig,
                model: DemandModel) -> BundleSet:
    ids = tuple(f"{segments.code(b.segment)}-{'-'.join(b.product_ids)}" for b in found)
    items = [tuple(int(i) for i in b.products) for b in found]
    if not items:
        return BundleSet(tuple(found), ids, np.zeros(0), ())
    syn = synergy(model, items, [int(b.segment) for b in found], config)
    return BundleSet(tuple(found), ids, np.asarray(syn.values, float), syn.sources)


def _check_products(dataset: Dataset, config: BeamConfig) -> None:
    known = set(map(str, dataset.product_ids))
    problems = [
        f"[beam] {name} = {list(values)}: {', '.join(sorted(set(values) - known))} not in "
        "the catalogue (use product ids from the data)"
        for name, values in (("anchor", config.anchor), ("exclude", config.exclude))
        if set(values) - known
    ]
    if problems:
        raise ConfigError(problems)
