"""Personalised product bundles and bundle prices from a shop's order history.

Stages, in the order data flows: data → encoder → recommend → bundles →
pricing → export; ``workspace`` keeps datasets on disk and ``pipeline`` runs
the stages from one config. Nothing here imports Streamlit.
"""

__version__ = "0.1.0"
