"""Recommend stage: co-purchase, customer profiles, hybrid scoring, segments, evaluation."""

from engine.recommend.copurchase import CoPurchaseStats, copurchase_stats
from engine.recommend.evaluate import EvaluationResult, evaluate, holdout_split
from engine.recommend.hybrid import HybridModel, PreferenceConfig
from engine.recommend.models import EASE, ItemKNN, Popularity
from engine.recommend.preferences import (
    Preferences,
    explain,
    fit_preferences,
    recommend_top_k,
    suggest_k,
)

__all__ = [
    "EASE",
    "CoPurchaseStats",
    "EvaluationResult",
    "HybridModel",
    "ItemKNN",
    "Popularity",
    "PreferenceConfig",
    "Preferences",
    "copurchase_stats",
    "evaluate",
    "explain",
    "fit_preferences",
    "holdout_split",
    "recommend_top_k",
    "suggest_k",
]
