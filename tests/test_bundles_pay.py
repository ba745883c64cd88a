"""As many bundles as pay, on the sample market judged by its true demand.

The bundle stage reads the order lines only (segment affinity and demand from
the ground truth's customer→segment labels, so the segmentation is not under
test); every bundle it offers is then priced at its best price in the *true*
market (planted willingness to pay, joint interest and synergy) and its gain
over selling the singles alone is summed. The yardstick is the planted groups
offered to their fan segments, priced the same way.

Bundles of one segment that share products would be counted twice by the
simulator (it prices each bundle on its own), so the judge counts, per
segment in the order offered, only bundles disjoint from those already
counted: a lower bound of what the offer earns.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.bundles import BeamConfig, BundleInputs, beam_search
from engine.bundles.beam import cannibalised
from engine.data.dataset import Dataset
from engine.pipeline.stages import profit_ranker
from engine.pricing import PricingConfig, evaluate, optimise_prices, prepare_choices
from engine.pricing.demand import DemandConfig, calibrate_demand
from engine.recommend import copurchase_stats
from engine.sample_market import true_market, true_segment_labels, true_synergy
from tests.test_bundles_sample import segment_affinity
from tests.test_pricing_demand import _clean_lines

JUDGE = PricingConfig(max_discount=0.6, margin_floor=0.0, price_ending=None,
                      n_customers=50_000, seed=5)


@pytest.fixture(scope="module")
def shop(sample_dir):
    dataset = Dataset.from_frames(*_clean_lines(sample_dir))
    truth = json.loads((sample_dir / "ground_truth.json").read_text())
    labels = true_segment_labels(truth, dataset.customer_ids)
    names = tuple(truth["wtp"]["segments"])
    copurchase = copurchase_stats(dataset.baskets)
    inputs = BundleInputs.from_dataset(dataset, segment_affinity(dataset.matrix, labels, len(names)),
                                       copurchase, segment_labels=names)
    model = calibrate_demand(dataset, labels)
    ranker = profit_ranker(model, copurchase, DemandConfig(), draws=2_000, seed=0)
    truth_market = true_market(truth, dataset.products["price"].to_numpy(float),
                               dataset.products["cost"].to_numpy(float))
    return dataset, truth, inputs, model, ranker, truth_market


def _true_gains(shop, offers: list[tuple[int, tuple[str, ...]]]) -> np.ndarray:
    """Per (segment, product ids): the profit per period it adds at its best price
    in the true market, each on draws of its own (the same bundle is judged the
    same wherever it stands in a list)."""
    dataset, truth, _, _, _, market = shop
    gains = []
    for seg, ids in offers:
        items = [tuple(dataset.product_index(list(ids)).tolist())]
        choices = prepare_choices(market, items, [seg], true_synergy(truth, ids),
                                  JUDGE.n_customers, JUDGE.seed)
        best = np.array([optimise_prices(choices, JUDGE)[0].price])
        gains.append(evaluate(choices, best).per_bundle["profit"].iat[0]
                     - evaluate(choices, np.array([np.inf])).per_bundle["profit"].iat[0])
    return np.array(gains)


def _counted(offers) -> list[int]:
    """Indices of the offers the judge counts: per segment, disjoint from earlier ones."""
    seen: dict[int, set] = {}
    keep = []
    for r, (seg, ids) in enumerate(offers):
        held = seen.setdefault(seg, set())
        if not held & set(ids):
            keep.append(r)
            held |= set(ids)
    return keep


def _planted(shop) -> list[tuple[int, tuple[str, ...]]]:
    truth = shop[1]
    names = truth["wtp"]["segments"]
    return [(names.index(seg), tuple(g["products"]))
            for g in truth["planted_pairs"] + truth["planted_triples"] for seg in g["segments"]]


def _offered(shop, config: BeamConfig, paying: bool = True):
    _, _, inputs, model, ranker, _ = shop
    visitors = model.market().segment_size if paying else None
    found = beam_search(inputs, config, profit_fn=ranker, visitors=visitors)
    return found, [(b.segment, b.product_ids) for b in found]


def _judged_gain(shop, offers) -> float:
    gains = _true_gains(shop, offers)
    return float(gains[_counted(offers)].sum())


def test_bundles_that_pay_earn_most_of_what_the_planted_groups_earn(shop):
    planted = _judged_gain(shop, _planted(shop))
    assert planted > 0
    found, offers = _offered(shop, BeamConfig())
    ours = _judged_gain(shop, offers)
    _, five = _offered(shop, BeamConfig(n_bundles=5), paying=False)
    per_segment = np.bincount([s for s, _ in offers], minlength=len(shop[1]["wtp"]["segments"]))
    print(f"true gain of the offer / of the planted groups: {ours / planted:.3f} "
          f"(five by score each: {_judged_gain(shop, five) / planted:.3f}); "
          f"bundles per segment {per_segment.tolist()}")
    assert ours >= 0.9 * planted
    # each bundle says what it adds, and adds something
    assert all(b.added_profit is not None and b.added_profit > 0 for b in found)


def test_a_threshold_offers_fewer_bundles_each_paying_more_than_it(shop):
    found, _ = _offered(shop, BeamConfig())
    median = float(np.median([b.added_profit for b in found]))
    fewer, _ = _offered(shop, BeamConfig(min_added_profit=median))
    assert 0 < len(fewer) < len(found)
    assert all(b.added_profit > median for b in fewer)


def test_cap_and_no_profit_keep_the_fixed_count(shop):
    _, _, inputs, _, _, _ = shop
    capped, _ = _offered(shop, BeamConfig(n_bundles=2))
    assert max(np.bincount([b.segment for b in capped])) <= 2
    plain = beam_search(inputs, BeamConfig(n_bundles=3))
    assert np.bincount([b.segment for b in plain]).tolist() == [3] * inputs.n_segments
    assert all(b.added_profit is None for b in plain)


def test_cannibalisation_counts_shared_products_only():
    assert cannibalised({1, 2}, 5.0, [{3, 4}], [9.0]) == 0.0
    # shares one of two products with a bundle that gains more: half of its own gain
    assert cannibalised({1, 2}, 5.0, [{2, 3}], [9.0]) == pytest.approx(2.5)
    # with a bundle that gains less: half of that one's gain
    assert cannibalised({1, 2, 3}, 6.0, [{3, 4}, {1, 5}], [3.0, 12.0]) == pytest.approx(1.0 + 2.0)
