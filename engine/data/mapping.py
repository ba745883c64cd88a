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
                   "productid", "item_code", "code", "barcode", "ean", "upc", "prod_id",
                   "item_number", "product_number", "variant_id"],
    C.CUSTOMER_ID: ["customer_id", "customerid", "customer", "client_id", "clientid", "client",
                    "user_id", "userid", "buyer_id", "member_id", "customer_number",
                    "household_key", "household_id", "household", "hh_id", "hhid", "member",
                    "member_number", "shopper_id", "account_id", "card_id", "loyalty_id",
                    "loyalty_card", "customer_code", "cust_id", "custid"],
    C.COUNTRY: ["country", "country_code", "region"],
    C.CATEGORY: ["category", "product_category", "categories", "department", "product_type",
                 "category_name", "product_subclass", "subclass", "sub_category",
                 "subcategory", "category_code", "class", "product_group", "commodity"],
    C.COST: ["cost", "unit_cost", "cost_price", "purchase_price", "cogs", "asset",
             "line_cost", "total_cost", "cost_of_goods"],
}

SYNONYMS: dict[str, dict[str, list[str]]] = {
    "order_lines": {
        C.ORDER_ID: ["order_id", "invoiceno", "invoice_no", "invoice", "invoice_id",
                     "invoice_number", "order", "order_number", "order_no", "orderid",
                     "transaction_id", "basket_id", "basket", "receipt_id", "receipt",
                     "ticket_id", "trans_id", "transaction_number", "basketid"],
        C.QUANTITY: ["quantity", "qty", "units", "quantity_ordered", "item_count", "pieces",
                     "quantity_sold", "units_sold", "amount"],
        C.UNIT_PRICE: ["unit_price", "unitprice", "price_paid", "price", "price_each",
                       "sale_price", "item_price", "unit_price_paid", "paid_price",
                       "selling_price"],
        C.LINE_TOTAL: ["line_total", "sales", "sales_value", "sales_price", "total_price",
                       "line_amount", "line_value", "total", "net_sales", "extended_price",
                       "revenue", "sales_amount", "total_amount", "amount"],
        C.DISCOUNT: ["discount", "retail_disc", "coupon_disc", "coupon_match_disc", "markdown",
                     "discount_amount", "promo_discount", "line_discount", "retail_discount",
                     "coupon_discount", "total_discount", "discounts"],
        C.REGULAR_PRICE: ["regular_price", "compare_at_price", "compareatprice",
                          "original_price", "list_price", "full_price", "msrp", "shelf_price"],
        C.TIMESTAMP: ["timestamp", "invoicedate", "invoice_date", "order_date", "date",
                      "created_at", "datetime", "order_time", "time", "purchase_date",
                      "transaction_timestamp", "transaction_dt", "transaction_date",
                      "transaction_time", "trans_date", "sale_date", "order_datetime",
                      "created", "ordered_at", "purchased_at"],
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

# canonical columns that more than one column of a file may map to (summed)
MULTIPLE = frozenset({C.DISCOUNT})

REQUIRED = {
    "order_lines": C.ORDER_LINE_REQUIRED,
    "products": (C.PRODUCT_ID,),
    "customers": (C.CUSTOMER_ID,),
    "observed": C.OBSERVED_COLUMNS,
}


def normalise_name(name: object) -> str:
    """``' Customer ID '`` → ``'customerid'``: case, spaces, _ - . ignored."""
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


def _lookup(kind: str) -> dict[str, list[str]]:
    """normalised synonym → the canonical names it can stand for, first listed first
    (``amount`` is a quantity in one export and a line total in another)."""
    out: dict[str, list[str]] = {}
    for canonical, names in SYNONYMS[kind].items():
        for n in [canonical, *names]:
            found = out.setdefault(normalise_name(n), [])
            if canonical not in found:
                found.append(canonical)
    return out


def _auto_mapping(columns: Iterable[object], kind: str) -> dict[str, str]:
    """Exact canonical names first (so "price" beside "unit_price" does not steal it),
    then names with one meaning, then ambiguous ones take the first meaning still
    free: with SALES_PRICE as the line total, AMOUNT is the quantity."""
    lookup = _lookup(kind)
    cols = [str(c) for c in columns]
    canonical_names = {normalise_name(c) for c in SYNONYMS[kind]}
    mapping: dict[str, str] = {}
    taken: set[str] = set()

    def assign(col: str, options: list[str]) -> None:
        for canonical in options:
            if canonical in MULTIPLE or canonical not in taken:
                mapping[col] = canonical
                taken.add(canonical)
                return

    passes = (
        [c for c in cols if normalise_name(c) in canonical_names],
        [c for c in cols if normalise_name(c) not in canonical_names
         and len(lookup.get(normalise_name(c), [])) == 1],
        [c for c in cols if normalise_name(c) not in canonical_names
         and len(lookup.get(normalise_name(c), [])) > 1],
    )
    for group in passes:
        for col in group:
            if col not in mapping:
                assign(col, lookup.get(normalise_name(col), []))
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
        claimed = {v for k, v in overrides.items() if k in cols and v and v not in MULTIPLE}
        mapping = {k: v for k, v in mapping.items() if v not in claimed and k not in overrides}
        mapping.update({k: v for k, v in overrides.items() if k in cols and v})
    return {c: mapping[c] for c in cols if c in mapping}
