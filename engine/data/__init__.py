"""Data stage: column contracts, reading files, mapping, validation, the Dataset."""

from engine.data.dataset import Dataset, derive_catalogue

__all__ = ["Dataset", "derive_catalogue"]
