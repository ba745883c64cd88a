"""Recommend stage: co-purchase, customer profiles, hybrid scoring, segments, evaluation."""

from engine.recommend.copurchase import CoPurchaseStats, copurchase_stats

__all__ = ["CoPurchaseStats", "copurchase_stats"]
