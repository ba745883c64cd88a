"""The text that represents each product to the encoder."""

from __future__ import annotations

import math

import pandas as pd

from engine import columns as C
from engine.data.dataset import is_identifier_column

# Columns that are not product attributes: ids, numbers the pricing stage owns,
# and the indices/provenance the Dataset adds.
_NOT_ATTRIBUTES = frozenset(
    {
        C.PRODUCT_ID,
        C.NAME,
        C.DESCRIPTION,
        C.CATEGORY,
        C.PRICE,
        C.COST,
        C.IN_STOCK,
        C.PRODUCT_IDX,
        C.CUSTOMER_IDX,
        C.SOURCE_FILE,
        C.SOURCE_ROW,
    }
)


def _clean(value) -> str:
    """The value as display text, or "" when it is missing or blank."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:g}"
    return " ".join(str(value).split())


_MAX_QUANTITY_VALUES = 20  # an integer column with more distinct values is a code


def attribute_columns(products: pd.DataFrame) -> list[str]:
    """Columns of ``products`` that join the encoded text, in frame order: all but
    the canonical ones and codes, which say nothing a language model knows and
    make every text distinct (a column named like an identifier, or whole numbers
    with more than 20 distinct values: a manufacturer number, not a length)."""
    return [c for c in products.columns if c not in _NOT_ATTRIBUTES and not _is_code(products, c)]


def _is_code(products: pd.DataFrame, column: str) -> bool:
    if is_identifier_column(column):
        return True
    values = products[column].dropna().drop_duplicates()
    if len(values) <= _MAX_QUANTITY_VALUES:
        return False
    numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return bool(numbers.notna().all() and (numbers == numbers.round()).all())


def product_texts(products: pd.DataFrame) -> list[str]:
    """One text per product row: name, category, description, then attributes.

    Parts are joined with ". "; category and attributes read ``key: value``;
    empty parts are skipped, a description equal to the name is not repeated
    (exports derived from order lines often have only one text), nor is an
    attribute value the name already holds (a name built from the attributes).
    """
    attrs = attribute_columns(products)
    n = len(products)

    def col(name: str) -> list:
        return products[name].tolist() if name in products.columns else [None] * n

    names, categories, descriptions = col(C.NAME), col(C.CATEGORY), col(C.DESCRIPTION)
    attr_values = [products[a].tolist() for a in attrs]
    texts = []
    for i in range(n):
        name, category, description = (
            _clean(names[i]),
            _clean(categories[i]),
            _clean(descriptions[i]),
        )
        parts = [name] if name else []
        padded_name = f" {name.casefold()} "  # whole words: a pack of "1" is not in "12 OZ"
        if category:
            parts.append(f"{C.CATEGORY}: {category}")
        if description and description.casefold() != name.casefold():
            parts.append(description)
        for key, values in zip(attrs, attr_values, strict=True):
            value = _clean(values[i])
            if value and f" {value.casefold()} " not in padded_name:
                parts.append(f"{key}: {value}")
        texts.append(". ".join(parts))
    return texts
