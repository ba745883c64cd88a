"""The validated dataset: tables plus integer indices and sparse matrices.

Building the id mappings (``products``/``customers`` frames, whose row order is
the index) is separate from building the matrices, as in lightfm's Dataset.
Everything downstream works on integer indices; ids are only for display and
export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine import columns as C


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
        were never sold (cold start).
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
        median paid price, category empty, cost unknown.
        """
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


def _complete_catalogue(lines: pd.DataFrame, products: pd.DataFrame | None) -> pd.DataFrame:
    """The catalogue, with products seen only in the lines derived from them."""
    derived = derive_catalogue(lines)
    if products is None or products.empty:
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
    out[C.COST] = out[C.COST].astype(float)
    names = derived.set_index(C.PRODUCT_ID)[C.NAME]
    blank = out[C.NAME].str.strip() == ""
    out.loc[blank, C.NAME] = out.loc[blank, C.PRODUCT_ID].map(names).fillna(out.loc[blank, C.PRODUCT_ID])
    return out.reset_index(drop=True)


def derive_catalogue(lines: pd.DataFrame) -> pd.DataFrame:
    """Catalogue from order lines alone: name = most common line text,
    list price = median paid unit price, category empty, cost unknown."""
    ids = lines[C.PRODUCT_ID].astype(str)
    price = lines.groupby(ids, sort=True)[C.UNIT_PRICE].median()
    if C.NAME in lines:
        text = lines[C.NAME].fillna("").astype(str).str.strip()
        name = (
            pd.DataFrame({"p": ids, "n": text})
            .loc[lambda d: d["n"] != ""]
            .groupby(["p", "n"]).size().rename("k").reset_index()
            .sort_values(["p", "k", "n"], ascending=[True, False, True])
            .drop_duplicates("p")
            .set_index("p")["n"]
        )
    else:
        name = pd.Series(dtype=str)
    out = pd.DataFrame({C.PRODUCT_ID: price.index.astype(str)})
    out[C.NAME] = out[C.PRODUCT_ID].map(name).fillna(out[C.PRODUCT_ID])
    out[C.DESCRIPTION] = ""
    out[C.CATEGORY] = ""
    out[C.PRICE] = price.to_numpy(float)
    out[C.COST] = np.nan
    return out


def _customers(lines: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Customers with at least one kept line, in first-seen-sorted id order."""
    ids = pd.Index(sorted(lines[C.CUSTOMER_ID].astype(str).unique()), name=C.CUSTOMER_ID)
    out = pd.DataFrame({C.CUSTOMER_ID: ids})
    if customers is not None and not customers.empty:
        attrs = customers.copy()
        attrs[C.CUSTOMER_ID] = attrs[C.CUSTOMER_ID].astype(str)
        attrs = attrs.drop_duplicates(C.CUSTOMER_ID)
        out = out.merge(attrs, on=C.CUSTOMER_ID, how="left")
    return out
