"""Bundles stage: the bundle objective, beam search, exhaustive reference,
frequent-itemset baseline and hold-out evaluation."""

from engine.bundles.beam import BeamConfig, beam_search, bundles_frame, check_bundle
from engine.bundles.exhaustive import exhaustive_search
from engine.bundles.holdout import HoldoutScores, order_segments, score_recommendations
from engine.bundles.itemsets import Itemset, evaluate_bundles, frequent_itemsets
from engine.bundles.objective import Bundle, BundleInputs, ObjectiveWeights, score_bundle

__all__ = [
    "BeamConfig",
    "Bundle",
    "BundleInputs",
    "HoldoutScores",
    "Itemset",
    "ObjectiveWeights",
    "beam_search",
    "bundles_frame",
    "check_bundle",
    "evaluate_bundles",
    "exhaustive_search",
    "frequent_itemsets",
    "order_segments",
    "score_bundle",
    "score_recommendations",
]
