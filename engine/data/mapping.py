"""Mapping foreign column names to the canonical ones in engine.columns.

Names are compared after lower-casing and dropping spaces, underscores,
hyphens and dots, so ``Customer ID``, ``customer_id`` and ``CustomerID`` are
the same. The same word can mean different things in different files: in
order lines "price" is the unit price paid and "description" the product
name; in a catalogue "price" is the list price. So the table is per kind of
file, and the kind is told from the columns first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from engine import columns as C

KINDS = ("order_lines", "products", "customers", "observed")

_COMMON = {
    C.PRODUCT_ID: ["product_id", "stockcode", "stock_code", "sku", "item_id", "itemid",
                   "product_code", "productcode", "product", "item", "article", "article_id",
                   "productid", "item_code", "code"],
    C.CUSTOMER_ID: ["customer_id", "customerid", "customer", "client_id", "clientid", "client",
                    "user_id", "userid", "buyer_id", "member_id", "customer_number"],
    C.COUNTRY: ["country", "country_code", "region"],
    C.CATEGORY: ["category", "product_category", "categories", "department", "product_type",
                 "category_name"],
    C.COST: ["cost", "unit_cost", "cost_price", "purchase_price", "cogs"],
}

SYNONYMS: dict[str, dict[str, list[str]]] = {
    "order_lines": {
        C.ORDER_ID: ["order_id", "invoiceno", "invoice_no", "invoice", "invoice_id",
                     "invoice_number", "order", "order_number", "order_no", "orderid",
                     "transaction_id", "basket_id", "receipt_id"],
        C.QUANTITY: ["quantity", "qty", "units", "quantity_ordered"],
        C.UNIT_PRICE: ["unit_price", "unitprice", "price_paid", "price", "price_each",
                       "sale_price", "item_price", "unit_price_paid"],
        C.TIMESTAMP: ["timestamp", "invoicedate", "invoice_date", "order_date", "date",
                      "created_at", "datetime", "order_time", "time", "purchase_date"],
        C.NAME: ["name", "description", "product_name", "title", "item_name",
                 "product_description"],
        **_COMMON,
    },
    "products": {
        C.NAME: ["name", "product_name", "title", "item_name"],
        C.DESCRIPTION: ["description", "product_description", "details", "long_description"],
        C.PRICE: ["price", "list_price", "listprice", "retail_price", "regular_price", "msrp",
                  "unit_price"],
        C.IN_STOCK: ["in_stock", "instock", "stock", "available", "availability"],
        **_COMMON,
    },
    "customers": {
        C.CUSTOMER_ID: _COMMON[C.CUSTOMER_ID],
        C.COUNTRY: _COMMON[C.COUNTRY],
    },
    "observed": {
        C.BUNDLE_ID: ["bundle_id", "bundleid", "bundle"],
        C.PERIOD: ["period", "week", "month", "date"],
        C.PRICE: ["price", "bundle_price"],
        C.UNITS: ["units", "units_sold", "sales", "sold", "quantity"],
        C.VISITORS: ["visitors", "sessions", "views", "impressions"],
    },
}

REQUIRED = {
    "order_lines": C.ORDER_LINE_COLUMNS,
    "products": (C.PRODUCT_ID,),
    "customers": (C.CUSTOMER_ID,),
    "observed": C.OBSERVED_COLUMNS,
}


def normalise_name(name: object) -> str:
    """``' Customer ID '`` → ``'customerid'``: case, spaces, _ - . ignored."""
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


def _lookup(kind: str) -> dict[str, str]:
    """normalised synonym → canonical, the first listed canonical winning."""
    out: dict[str, str] = {}
    for canonical, names in SYNONYMS[kind].items():
        for n in [canonical, *names]:
            out.setdefault(normalise_name(n), canonical)
    return out


def _auto_mapping(columns: Iterable[object], kind: str) -> dict[str, str]:
    lookup = _lookup(kind)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    cols = [str(c) for c in columns]
    # exact canonical names first, so "price" beside "unit_price" does not steal it
    canonical_names = {normalise_name(c) for c in SYNONYMS[kind]}
    ordered = sorted(cols, key=lambda c: normalise_name(c) not in canonical_names)
    for col in ordered:
        canonical = lookup.get(normalise_name(col))
        if canonical and canonical not in taken:
            mapping[col] = canonical
            taken.add(canonical)
    return {c: mapping[c] for c in cols if c in mapping}


def detect_kind(columns: Iterable[object]) -> str:
    """Which kind of file these columns belong to.

    order lines have an order id or a quantity with a product; a catalogue
    has a product id but no order id; a customer file a customer id and no
    product; observed results a bundle id. Unrecognised columns count as
    order lines, so the missing-column message lists what order lines need.
    """
    cols = list(columns)
    observed = set(_auto_mapping(cols, "observed").values())
    if C.BUNDLE_ID in observed:
        return "observed"
    lines = set(_auto_mapping(cols, "order_lines").values())
    if C.ORDER_ID in lines or (C.QUANTITY in lines and C.PRODUCT_ID in lines):
        return "order_lines"
    if C.PRODUCT_ID in lines:
        return "products"
    if C.CUSTOMER_ID in lines:
        return "customers"
    return "order_lines"


def detect_mapping(
    columns: Iterable[object],
    kind: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """{their column: canonical column} for the columns that were recognised.

    ``overrides`` is the analyst's own {their column: canonical} and wins: a
    canonical name it claims is taken from any column the table gave it to; an
    empty canonical name drops the column. Overrides naming columns that are
    not in the file are ignored here (the loader warns about them).
    """
    cols = [str(c) for c in columns]
    if overrides:
        renamed = [overrides.get(c) or c for c in cols]
        kind = kind or detect_kind(renamed)
    else:
        kind = kind or detect_kind(cols)
    if kind not in SYNONYMS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    mapping = _auto_mapping(cols, kind)
    if overrides:
        claimed = {v for k, v in overrides.items() if k in cols and v}
        mapping = {k: v for k, v in mapping.items() if v not in claimed and k not in overrides}
        mapping.update({k: v for k, v in overrides.items() if k in cols and v})
    return {c: mapping[c] for c in cols if c in mapping}
