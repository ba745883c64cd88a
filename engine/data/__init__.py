"""Data stage: column contracts, reading files, mapping, validation, the Dataset."""

from engine.data.dataset import Dataset, derive_catalogue
from engine.data.load import LoadResult, ValidationReport, load_files
from engine.data.mapping import detect_kind, detect_mapping
from engine.data.reader import InputFile, Table, read_table
from engine.data.validate import REASONS

__all__ = [
    "Dataset",
    "InputFile",
    "LoadResult",
    "REASONS",
    "Table",
    "ValidationReport",
    "derive_catalogue",
    "detect_kind",
    "detect_mapping",
    "load_files",
    "read_table",
]
