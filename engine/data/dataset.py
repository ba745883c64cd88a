"""The validated dataset: tables plus integer indices and sparse matrices.

Building the id mappings (``products``/``customers`` frames, whose row order is
the index) is separate from building the matrices, as in lightfm's Dataset.
Everything downstream works on integer indices; ids are only for display and
export.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from engine import columns as C
from engine.data import parallel


@dataclass(frozen=True)
class Dataset:
    """Clean order lines with their catalogue and customers.

    Attributes
    ----------
    lines : order lines kept after validation, canonical columns plus
        ``customer_idx`` and ``product_idx`` (int32), sorted by timestamp.
    products : one row per product, row *i* is product index *i*; columns
        ``product_id, name, description, category, price, cost`` (cost NaN
        when unknown) plus any attribute columns. May contain products that
        were never sold (cold start). ``name`` is never blank: see
        ``product_names`` for where it comes from when the catalogue has none.
    customers : one row per customer with history, row *i* is customer index *i*.
    matrix : customers × products, number of distinct orders in which the
        customer bought the product (float32 CSR).
    baskets : orders × products, 1 where the order contains the product
        (float32 CSR); row *k* is order ``order_ids[k]``.
    order_ids, order_customer, order_time : per basket row.
    """

    lines: pd.DataFrame
    products: pd.DataFrame
    customers: pd.DataFrame
    matrix: sp.csr_matrix
    baskets: sp.csr_matrix
    order_ids: np.ndarray
    order_customer: np.ndarray
    order_time: np.ndarray

    @property
    def n_products(self) -> int:
        return len(self.products)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def n_orders(self) -> int:
        return len(self.order_ids)

    def orders_by_customer(self) -> np.ndarray:
        """Order rows sorted by customer, then time, then row (stable for orders at one time)."""
        return np.lexsort((np.arange(self.n_orders), self.order_time, self.order_customer))

    @property
    def product_ids(self) -> np.ndarray:
        return self.products[C.PRODUCT_ID].to_numpy()

    @property
    def customer_ids(self) -> np.ndarray:
        return self.customers[C.CUSTOMER_ID].to_numpy()

    def product_index(self, product_ids) -> np.ndarray:
        """Indices of the given product ids; raises KeyError naming unknown ids."""
        lookup = pd.Index(self.products[C.PRODUCT_ID])
        idx = lookup.get_indexer(pd.Index(np.atleast_1d(product_ids)))
        if (idx < 0).any():
            missing = np.atleast_1d(product_ids)[idx < 0][:5].tolist()
            raise KeyError(f"product ids not in the catalogue: {missing}")
        return idx

    def customer_index(self, customer_ids) -> np.ndarray:
        """Indices of the given customer ids; raises KeyError naming unknown ids."""
        lookup = pd.Index(self.customers[C.CUSTOMER_ID])
        idx = lookup.get_indexer(pd.Index(np.atleast_1d(customer_ids)))
        if (idx < 0).any():
            missing = np.atleast_1d(customer_ids)[idx < 0][:5].tolist()
            raise KeyError(f"customer ids without history: {missing}")
        return idx

    def subset_lines(self, mask: np.ndarray | pd.Series) -> Dataset:
        """A dataset built from a subset of the order lines, same catalogue.

        Used for temporal hold-out: products keep their indices (the catalogue
        is unchanged), customers are re-indexed to those with lines left.
        """
        lines = self.lines.loc[np.asarray(mask)]
        return Dataset.from_frames(lines, products=self.products, customers=self.customers)

    @classmethod
    def from_frames(
        cls,
        lines: pd.DataFrame,
        products: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> Dataset:
        """Build a dataset from clean canonical frames.

        ``lines`` must already be validated (the data stage does that); ids are
        compared as strings. Without ``products`` the catalogue is derived from
        the lines: name from the most common line text, list price from the
        median paid price, category empty, cost unknown. Catalogue rows
        without a name get one by the rule of ``product_names``.
        """
        return cls._build(lines, products, customers)

    @classmethod
    def _build(
        cls,
        lines: pd.DataFrame,
        products: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        keys: dict | None = None,
    ) -> Dataset:
        """``from_frames`` on integer codes: each id column is numbered once, or the
        data stage's numbering is used (``keys``: {column: CodedText} for the ids,
        names and categories of ``lines``, and the timestamp's (codes, values)), and
        the sort, the catalogue, the indices and the matrices work on the codes;
        one take puts the lines in order (none where they are, as the data stage
        leaves them). Lines with missing ids or timestamps that are not plain
        datetimes take ``_from_frames_plain``, the same steps in pandas."""
        ids = {col: lines[col].astype(str) for col in (C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID)}
        ts = pd.to_datetime(lines[C.TIMESTAMP])
        if not len(lines) or ts.dtype.kind != "M" or any(v.hasnans for v in ids.values()):
            return cls._from_frames_plain(lines, products, customers)
        keys = keys or {}
        coded = {col: keys.get(col) or CodedText.of(ids[col]) for col in ids}
        if C.CATEGORY in keys:
            coded[C.CATEGORY] = keys[C.CATEGORY]
        if C.NAME in keys:
            coded[C.NAME] = keys[C.NAME]
        elif C.NAME in lines and lines[C.NAME].dtype == _TEXT and not lines[C.NAME].hasnans:
            coded[C.NAME] = CodedText.of(lines[C.NAME])

        # sorted by timestamp (NaT last), then order id; stable: one integer key
        if C.TIMESTAMP in keys:
            t_codes, t_values = keys[C.TIMESTAMP]
        else:
            t_codes, t_values = pd.factorize(ts)
        t_rank = np.append(np.unique(np.asarray(t_values), return_inverse=True)[1], len(t_values))
        order = coded[C.ORDER_ID]
        key = t_rank[t_codes] * max(len(order.distinct), 1) + order.ranks[order.codes]
        lines = lines.assign(**ids, **{C.TIMESTAMP: ts})
        if not (key[1:] >= key[:-1]).all():
            perm = stable_argsort(key)
            lines = lines.take(perm)
            coded = {col: c.take(perm) for col, c in coded.items()}
            ts = ts.take(perm)
        lines = lines.reset_index(drop=True)

        ids_p, ids_c = coded[C.PRODUCT_ID], coded[C.CUSTOMER_ID]
        # the customers are the distinct ids in sorted order, and so is a derived catalogue
        cidx = ids_c.ranks[ids_c.codes]
        if products is None or products.empty:  # the catalogue and the matrices side by side
            pidx = ids_p.ranks[ids_p.codes]
            products, customers, matrices = parallel.run(
                lambda given=products: _complete_catalogue(lines, given, coded),
                lambda given=customers: _customers(lines, given, ids_c),
                lambda: _matrices(coded[C.ORDER_ID], pidx, cidx, ts, len(ids_p.distinct),
                                  len(ids_c.distinct)))
        else:
            products = _complete_catalogue(lines, products, coded)
            customers = _customers(lines, customers, ids_c)
            pidx = ids_p.lookup(products[C.PRODUCT_ID])
            matrices = _matrices(coded[C.ORDER_ID], pidx, cidx, ts, len(products), len(customers))
        lines[C.PRODUCT_IDX] = pidx.astype(np.int32)
        lines[C.CUSTOMER_IDX] = cidx.astype(np.int32)
        order_ids, order_customer, order_time, baskets, matrix = matrices
        return cls(
            lines=lines,
            products=products,
            customers=customers,
            matrix=matrix,
            baskets=baskets,
            order_ids=order_ids,
            order_customer=order_customer,
            order_time=order_time,
        )

    @classmethod
    def _from_frames_plain(
        cls,
        lines: pd.DataFrame,
        products: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> Dataset:
        """``from_frames`` step by step in pandas, for lines ``_build`` does not take."""
        lines = lines.copy()
        for col in (C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID):
            lines[col] = lines[col].astype(str)
        lines[C.TIMESTAMP] = pd.to_datetime(lines[C.TIMESTAMP])
        lines = lines.sort_values([C.TIMESTAMP, C.ORDER_ID], kind="stable").reset_index(drop=True)

        products = _complete_catalogue(lines, products)
        customers = _customers(lines, customers)

        pidx = pd.Index(products[C.PRODUCT_ID]).get_indexer(lines[C.PRODUCT_ID])
        cidx = pd.Index(customers[C.CUSTOMER_ID]).get_indexer(lines[C.CUSTOMER_ID])
        lines[C.PRODUCT_IDX] = pidx.astype(np.int32)
        lines[C.CUSTOMER_IDX] = cidx.astype(np.int32)

        order_codes, order_ids = pd.factorize(lines[C.ORDER_ID], sort=False)
        n_orders, n_products = len(order_ids), len(products)
        pair = pd.DataFrame({"o": order_codes, "p": pidx}).drop_duplicates()
        baskets = sp.csr_matrix(
            (np.ones(len(pair), np.float32), (pair["o"].to_numpy(), pair["p"].to_numpy())),
            shape=(n_orders, n_products),
        )
        first = pd.DataFrame({"o": order_codes, "c": cidx, "t": lines[C.TIMESTAMP]}).groupby("o").first()
        order_customer = first["c"].to_numpy(np.int32)
        order_time = first["t"].to_numpy()
        matrix = sp.csr_matrix(
            (np.ones(len(pair), np.float32), (order_customer[pair["o"].to_numpy()], pair["p"].to_numpy())),
            shape=(len(customers), n_products),
        )
        matrix.sum_duplicates()
        return cls(
            lines=lines,
            products=products,
            customers=customers,
            matrix=matrix,
            baskets=baskets,
            order_ids=np.asarray(order_ids, dtype=object),
            order_customer=order_customer,
            order_time=order_time,
        )


_TEXT = pd.Series([], dtype=str).dtype


def stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for non-negative integer keys: below 2**32,
    two 16-bit radix passes (numpy's radix sort), about twice as fast."""
    if not len(key) or key.min() < 0 or key.max() >= 1 << 32:
        return np.argsort(key, kind="stable")
    perm = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    if key.max() >= 1 << 16:
        perm = perm[np.argsort((key[perm] >> 16).astype(np.uint16), kind="stable")]
    return perm


def _matrices(orders: CodedText, pidx: np.ndarray, cidx: np.ndarray, ts: pd.Series,
              n_products: int, n_customers: int):
    """(order ids, order customer, order time, baskets, matrix) of sorted lines:
    orders numbered in order of first appearance, as pd.factorize does."""
    # sorted by time, an order's lines are mostly together: number the runs, and
    # where each order is one run that is pd.factorize's numbering
    run = np.r_[True, orders.codes[1:] != orders.codes[:-1]]
    first_seen = orders.codes[run]
    if len(first_seen) == len(orders.distinct):
        order_codes = np.cumsum(run) - 1
    else:
        order_codes, first_seen = pd.factorize(orders.codes)
    order_ids = orders.texts[first_seen]
    n_orders = len(order_ids)
    # the distinct (order, product) pairs, sorted: the baskets' rows as CSR
    pair = order_codes.astype(np.int64) * max(n_products, 1) + pidx
    seen = np.maximum.accumulate(order_codes)
    if (order_codes == seen).all():  # each order's lines together: nearly sorted
        pair = np.sort(pair, kind="stable")
    else:
        pair = pair[stable_argsort(pair)]
    pairs = pair[np.r_[True, pair[1:] != pair[:-1]]]
    pair_o, pair_p = np.divmod(pairs, max(n_products, 1))
    index = np.int32 if max(len(pairs), n_orders, n_products) < 1 << 31 else np.int64
    indptr = np.zeros(n_orders + 1, index)
    np.cumsum(np.bincount(pair_o, minlength=n_orders), out=indptr[1:])
    baskets = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), pair_p.astype(index), indptr),
        shape=(n_orders, n_products))
    # each order's first line (codes rise by one at each order's first line)
    first = np.flatnonzero(np.r_[True, seen[1:] > seen[:-1]])
    order_customer = cidx[first].astype(np.int32)
    if ts.hasnans:  # the first timestamp that is not NaT
        order_time = ts.groupby(order_codes).first().to_numpy()
    else:
        order_time = ts.to_numpy()[first]
    matrix = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), (order_customer[pair_o], pair_p)),
        shape=(n_customers, n_products),
    )
    matrix.sum_duplicates()
    return order_ids, order_customer, order_time, baskets, matrix


def _arrow_text(text: pd.Series) -> pa.Array:
    """The strings of a column as one arrow array (a column built by concat has chunks)."""
    arrow = pa.array(text, pa.large_string())
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


class CodedText:
    """A text column as codes into its distinct texts: ``texts[codes]`` is the column.

    The data stage hands its numbering of the ids over (``Dataset._build``'s
    ``keys``) so that 500k strings are hashed once, not once per stage."""

    def __init__(self, codes: np.ndarray, distinct: pa.Array, ranks: np.ndarray | None = None):
        self.codes = codes  # int64 per line
        self.distinct = distinct  # large_string, each text once, each used by some line
        self._ranks = ranks

    @classmethod
    def of(cls, text: pd.Series) -> CodedText:
        """Number a column of strings (no missing values) in order of first appearance."""
        encoded = pc.dictionary_encode(_arrow_text(text))
        return cls(encoded.indices.to_numpy().astype(np.int64), encoded.dictionary)

    @classmethod
    def compact(cls, codes: np.ndarray, texts: pd.Series, merge: bool = True) -> CodedText:
        """From codes into ``texts`` that may repeat (``merge``: ids normalised
        alike) or hold texts no line has (those of lines set aside)."""
        arrow = _arrow_text(texts)
        if merge:
            encoded = pc.dictionary_encode(arrow)
            codes = encoded.indices.to_numpy().astype(np.int64)[codes]
            arrow = encoded.dictionary
        used = np.bincount(codes, minlength=len(arrow)) > 0
        if not used.all():
            codes = (np.cumsum(used) - 1)[codes]
            arrow = arrow.filter(pa.array(used))
        return cls(codes, arrow)

    @functools.cached_property
    def texts(self) -> np.ndarray:
        """The distinct texts as an object array of str."""
        return self.distinct.to_numpy(zero_copy_only=False)

    @property
    def ranks(self) -> np.ndarray:
        """Each distinct text's place in sorted (code point) order."""
        if self._ranks is None:
            order = pc.sort_indices(self.distinct).to_numpy()
            self._ranks = np.empty(len(order), np.int64)
            self._ranks[order] = np.arange(len(order))
        return self._ranks

    def sorted_texts(self) -> np.ndarray:
        out = np.empty(len(self.texts), object)
        out[self.ranks] = self.texts
        return out

    def take(self, at: np.ndarray) -> CodedText:
        taken = CodedText(self.codes[at], self.distinct, self._ranks)
        if "texts" in self.__dict__:
            taken.texts = self.texts
        return taken

    def lookup(self, index: pd.Series) -> np.ndarray:
        """Each line's position in ``index`` (-1 where absent): get_indexer per distinct text."""
        return pd.Index(index).get_indexer(self.texts)[self.codes]


def _complete_catalogue(lines: pd.DataFrame, products: pd.DataFrame | None,
                        coded: dict[str, CodedText] | None = None) -> pd.DataFrame:
    """The catalogue, with products seen only in the lines derived from them
    (from the lines' codes where ``coded`` has them)."""
    if coded is None:
        line_names = _line_names(lines)
        derived = _derive_catalogue(lines, line_names)
    else:
        line_names = _line_names_coded(lines, coded)
        derived = _derive_catalogue_coded(lines, line_names, coded)
    if products is None or products.empty:
        derived[C.NAME] = product_names(derived, line_names)
        return derived
    products = products.copy()
    products[C.PRODUCT_ID] = products[C.PRODUCT_ID].astype(str)
    products = products.drop_duplicates(C.PRODUCT_ID, keep="first")
    extra = derived[~derived[C.PRODUCT_ID].isin(products[C.PRODUCT_ID])]
    out = pd.concat([products, extra], ignore_index=True)
    for col in (C.NAME, C.DESCRIPTION, C.CATEGORY):
        if col not in out:
            out[col] = ""
        out[col] = out[col].fillna("").astype(str)
    # a catalogue without a list price for a product: use the typical paid price
    typical = derived.set_index(C.PRODUCT_ID)[C.PRICE]
    if C.PRICE not in out:
        out[C.PRICE] = np.nan
    out[C.PRICE] = out[C.PRICE].astype(float).fillna(out[C.PRODUCT_ID].map(typical))
    if C.COST not in out:
        out[C.COST] = np.nan
    # a catalogue without a cost for a product: the lines' own unit cost, if they give one
    line_cost = derived.set_index(C.PRODUCT_ID)[C.COST]
    out[C.COST] = out[C.COST].astype(float).fillna(out[C.PRODUCT_ID].map(line_cost))
    out[C.NAME] = product_names(out, line_names)
    return out.reset_index(drop=True)


# --- product names ------------------------------------------------------------

# columns that are never part of a built name: the canonical ones (the category
# and description have their own rules) and what the Dataset adds
_NOT_NAME_PARTS = frozenset(
    {C.PRODUCT_ID, C.NAME, C.DESCRIPTION, C.CATEGORY, C.PRICE, C.COST, C.IN_STOCK,
     C.PRODUCT_IDX, C.CUSTOMER_IDX, C.SOURCE_FILE, C.SOURCE_ROW}
)
# a column with one of these words in its name holds identifiers or links, not words
_ID_WORDS = frozenset(
    {"id", "code", "sku", "ean", "upc", "gtin", "barcode", "isbn", "mpn", "asin", "no",
     "number", "num", "url", "link", "image", "img", "photo"}
)
_FLAG_VALUES = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1"})
_MAX_PART_LENGTH = 50  # median characters; longer values are prose, not a name part
_MAX_DESCRIPTION_NAME = 60


def _words(column: object) -> list[str]:
    """``"curr_size_of_product"`` → ``["curr", "size", "of", "product"]`` (camelCase split too)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(column))
    return [w for w in re.split(r"[^A-Za-z0-9]+", text.lower()) if w]


def is_identifier_column(column: object) -> bool:
    """Whether a column's name says it holds identifiers or links (``upc``, ``image_url``)."""
    return bool(_ID_WORDS & set(_words(column)))


def _text(values: pd.Series) -> pd.Series:
    """Values as single-spaced stripped text; missing values as ""."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    return _by_distinct(text, lambda t: t.str.split().str.join(" "))


def _by_distinct(text: pd.Series, fn) -> pd.Series:
    """``fn(text)`` for a function of each value alone, worked out once per distinct
    value (a catalogue's categories, sizes or blank descriptions repeat a lot)."""
    codes, uniques = pd.factorize(text, use_na_sentinel=False)
    if len(uniques) > len(text) // 2:
        return fn(text)
    out = fn(pd.Series(uniques, dtype=text.dtype))
    return pd.Series(out.to_numpy()[codes], index=text.index, dtype=out.dtype, name=text.name)


def name_columns(products: pd.DataFrame) -> list[str]:
    """The attribute columns a product name is built from, in the frame's order.

    Every column except the canonical ones, those named like identifiers or
    links (a word such as id, code, sku, ean, url in the name), those whose
    values are mostly numbers (codes, counts, weights without a unit), yes/no
    flags or prose (median over 50 characters), and a broader level ``X``
    when its finer ``sub X`` is there too (``commodity_desc`` beside
    ``sub_commodity_desc``): brand, type, colour, size and the like stay.
    """
    keep = []
    for col in products.columns:
        if col in _NOT_NAME_PARTS or is_identifier_column(col):
            continue
        text = _text(products[col])
        present = text[text != ""]
        if present.empty:
            continue
        if pd.to_numeric(present, errors="coerce").notna().mean() > 0.5:
            continue
        if set(present.str.casefold().unique()) <= _FLAG_VALUES:
            continue
        if present.str.len().median() > _MAX_PART_LENGTH:
            continue
        keep.append(col)
    finer = {"".join(_words(c)) for c in keep}
    return [c for c in keep if "sub" + "".join(_words(c)) not in finer]


def attribute_names(products: pd.DataFrame) -> pd.Series:
    """Names built from ``name_columns``: the product's non-empty values joined
    by spaces, a value repeating an earlier one (ignoring case) left out;
    "" where the product has none (e.g. ``"Acme Sub commodity 12 OZ"``)."""
    columns = name_columns(products)
    if not columns:
        return pd.Series([""] * len(products), index=products.index, dtype=object)
    parts = [_text(products[c]).tolist() for c in columns]
    names = []
    for i in range(len(products)):
        seen: list[str] = []
        for values in parts:
            value = values[i]
            if value and value.casefold() not in {s.casefold() for s in seen}:
                seen.append(value)
        names.append(" ".join(seen))
    return pd.Series(names, index=products.index, dtype=object)


def _short(text: pd.Series, limit: int = _MAX_DESCRIPTION_NAME) -> pd.Series:
    """The first line of each text, cut at a word boundary to ``limit`` characters with "…"."""
    def cut(t: str) -> str:
        if len(t) <= limit:
            return t
        head = t[: limit - 1].rsplit(" ", 1)[0] if " " in t[: limit - 1] else t[: limit - 1]
        return head.rstrip(" ,;:.-") + "…"

    return _by_distinct(text.astype(str), lambda t: t.str.split("\n").str[0].str.split()
                        .str.join(" ").map(cut))


def product_names(products: pd.DataFrame, line_names: pd.Series | None = None) -> pd.Series:
    """A readable name for every catalogue row; the first of these that is not blank:

    1. the catalogue's own ``name``;
    2. the product's most common order-line text (``line_names``, by product id);
    3. the catalogue's text attributes (``attribute_names``: brand, type, size… );
    4. the first line of its ``description``, cut to 60 characters;
    5. the product id, with the category in brackets when there is one
       (``"123 (Frozen pizza)"``): never a blank name, and a bare id only when
       the catalogue says nothing else about the product.
    """
    n = len(products)

    def col(name: str) -> pd.Series:
        if name in products:
            return _text(products[name])
        return pd.Series([""] * n, index=products.index, dtype=object)

    # a name the catalogue gives is kept exactly as given
    if C.NAME in products:
        names = products[C.NAME].astype(object).where(products[C.NAME].notna(), "").astype(str)
    else:
        names = pd.Series([""] * n, index=products.index, dtype=object)
    ids = products[C.PRODUCT_ID].astype(str)
    fallbacks = (
        lambda at: ids[at].map(line_names).fillna("") if line_names is not None else None,
        lambda at: attribute_names(products.loc[at]),
        lambda at: _short(col(C.DESCRIPTION)[at]),
    )
    for fallback in fallbacks:
        blank = names.str.strip() == ""
        if not blank.any():
            return names
        found = fallback(blank)
        if found is not None:
            names[blank] = found
    blank = names.str.strip() == ""
    if blank.any():
        category = col(C.CATEGORY)[blank]
        names[blank] = ids[blank].where(category == "", ids[blank] + " (" + category + ")")
    return names


def _line_names(lines: pd.DataFrame) -> pd.Series:
    """Most common non-empty line text per product id (ties: alphabetically first)."""
    if C.NAME not in lines:
        return pd.Series(dtype=object)
    ids = lines[C.PRODUCT_ID].astype(str)
    text = lines[C.NAME].fillna("").astype(str).str.strip()
    return (
        pd.DataFrame({"p": ids, "n": text})
        .loc[lambda d: d["n"] != ""]
        .groupby(["p", "n"]).size().rename("k").reset_index()
        .sort_values(["p", "k", "n"], ascending=[True, False, True])
        .drop_duplicates("p")
        .set_index("p")["n"]
    )


def derive_catalogue(lines: pd.DataFrame) -> pd.DataFrame:
    """Catalogue from order lines alone: name = most common line text (else
    the product id), list price = median paid unit price, category empty,
    cost unknown."""
    return _derive_catalogue(lines, _line_names(lines))


def _derive_catalogue(lines: pd.DataFrame, name: pd.Series) -> pd.DataFrame:
    """The catalogue from the lines alone: name from the line text, list price the
    median undiscounted price (the paid one where the export gives no discount),
    category the most common on the lines, cost the median unit cost."""
    ids = lines[C.PRODUCT_ID].astype(str)
    groups = lines.groupby(ids, sort=True)
    price = groups[C.UNIT_PRICE].median()
    if C.REGULAR_PRICE in lines:
        price = groups[C.REGULAR_PRICE].median().fillna(price)
    out = pd.DataFrame({C.PRODUCT_ID: price.index.astype(str)})
    out[C.NAME] = out[C.PRODUCT_ID].map(name).fillna("")
    out[C.DESCRIPTION] = ""
    out[C.CATEGORY] = ""
    if C.CATEGORY in lines:
        out[C.CATEGORY] = out[C.PRODUCT_ID].map(_most_common(ids, lines[C.CATEGORY])).fillna("")
    out[C.PRICE] = price.to_numpy(float)
    out[C.COST] = (groups[C.UNIT_COST].median().to_numpy(float) if C.UNIT_COST in lines
                   else np.nan)
    return out


def _line_names_coded(lines: pd.DataFrame, coded: dict[str, CodedText]) -> pd.Series:
    """``_line_names`` from the codes of the product ids and of the names."""
    if C.NAME not in lines:
        return _line_names(lines)
    names = coded.get(C.NAME) or CodedText.of(lines[C.NAME].fillna("").astype(str))
    top = _top_text(coded[C.PRODUCT_ID], names, "n")
    return _line_names(lines) if top is None else top


def _derive_catalogue_coded(lines: pd.DataFrame, name: pd.Series,
                            coded: dict[str, CodedText]) -> pd.DataFrame:
    """``_derive_catalogue`` grouped by the product's code (in sorted id order)
    rather than by 400k strings."""
    ids = coded[C.PRODUCT_ID]
    groups = lines.groupby(ids.ranks[ids.codes], sort=True)
    price = groups[C.UNIT_PRICE].median()
    if C.REGULAR_PRICE in lines:
        price = groups[C.REGULAR_PRICE].median().fillna(price)
    out = pd.DataFrame({C.PRODUCT_ID: pd.Index(ids.sorted_texts()).astype(str)})
    out[C.NAME] = out[C.PRODUCT_ID].map(name).fillna("")
    out[C.DESCRIPTION] = ""
    out[C.CATEGORY] = ""
    if C.CATEGORY in lines:
        category = _top_text(ids, coded.get(C.CATEGORY)
                             or CodedText.of(lines[C.CATEGORY].fillna("").astype(str)), "v")
        if category is None:
            category = _most_common(lines[C.PRODUCT_ID].astype(str), lines[C.CATEGORY])
        out[C.CATEGORY] = out[C.PRODUCT_ID].map(category).fillna("")
    out[C.PRICE] = price.to_numpy(float)
    out[C.COST] = (groups[C.UNIT_COST].median().to_numpy(float) if C.UNIT_COST in lines
                   else np.nan)
    return out


def _top_text(ids: CodedText, text: CodedText, name: str) -> pd.Series | None:
    """Most common non-empty stripped text per product id (ties: alphabetically
    first), as ``_most_common`` gives it, counted on codes; None when no line
    has a text (the caller asks ``_most_common``, whose empty answer it keeps)."""
    stripped = pd.Series(text.texts, dtype=str).str.strip()
    texts = CodedText.compact(text.codes, stripped)  # texts equal once stripped are one
    present = (texts.texts != "")[texts.codes]
    if not present.any():
        return None
    product, value = _top_pairs(ids.codes[present], texts.codes[present], texts.ranks,
                                len(ids.distinct))
    order = np.argsort(ids.ranks[product])  # by product id; each product is there once
    product, value = product[order], value[order]
    index = pd.Index(pd.array(ids.texts[product], dtype=str), name="p")
    return pd.Series(pd.array(texts.texts[value], dtype=str), index=index, name=name)


def _top_pairs(product: np.ndarray, text: np.ndarray, text_ranks: np.ndarray,
               n_products: int) -> tuple[np.ndarray, np.ndarray]:
    """(products, their most common text; ties: the text ranked first), each product
    with a line once. Most products have one text on all their lines: only the
    lines of the others are counted."""
    first = np.full(n_products, -1, np.int64)
    first[product[::-1]] = text[::-1]  # the last write wins: each product's first text
    mixed = np.zeros(n_products, bool)
    mixed[product[text != first[product]]] = True
    single = np.flatnonzero((first >= 0) & ~mixed)
    at = mixed[product]
    if not at.any():
        return single, first[single]
    n_texts = len(text_ranks)
    pair_codes, pairs = pd.factorize(product[at].astype(np.int64) * n_texts + text[at])
    counts = np.bincount(pair_codes)
    p, t = np.divmod(pairs, n_texts)
    # by product, then most lines, then text: the first row of each product wins
    order = np.lexsort((text_ranks[t], -counts, p))
    p, t = p[order], t[order]
    top = np.r_[True, p[1:] != p[:-1]]
    return np.r_[single, p[top]], np.r_[first[single], t[top]]


def _most_common(ids: pd.Series, values: pd.Series) -> pd.Series:
    text = values.fillna("").astype(str).str.strip()
    return (pd.DataFrame({"p": ids, "v": text}).loc[lambda d: d["v"] != ""]
            .groupby(["p", "v"]).size().rename("k").reset_index()
            .sort_values(["p", "k", "v"], ascending=[True, False, True])
            .drop_duplicates("p").set_index("p")["v"])


def _customers(lines: pd.DataFrame, customers: pd.DataFrame | None,
               coded: CodedText | None = None) -> pd.DataFrame:
    """Customers with at least one kept line, in first-seen-sorted id order."""
    distinct = (sorted(lines[C.CUSTOMER_ID].astype(str).unique()) if coded is None
                else coded.sorted_texts().tolist())
    ids = pd.Index(distinct, name=C.CUSTOMER_ID)
    out = pd.DataFrame({C.CUSTOMER_ID: ids})
    if customers is not None and not customers.empty:
        attrs = customers.copy()
        attrs[C.CUSTOMER_ID] = attrs[C.CUSTOMER_ID].astype(str)
        attrs = attrs.drop_duplicates(C.CUSTOMER_ID)
        out = out.merge(attrs, on=C.CUSTOMER_ID, how="left")
    return out
