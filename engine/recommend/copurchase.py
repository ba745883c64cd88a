"""Co-purchase statistics: pair counts over orders, support and shrunk lift.

lift_ij = C_ij · N / (N_i · N_j). For rare pairs the raw lift is noise, so it
is shrunk towards 1 with a pseudo-count ``m`` of expected co-purchases:

    lift_ij = (C_ij + m) / (E_ij + m),   E_ij = N_i · N_j / N

A pair never bought together but expected often gets lift well under 1
(a substitute signal); a pair bought together far above chance gets lift > 1
(complements). Counts are kept sparse so a 20k-product catalogue fits; dense
lift is only ever built for blocks of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class CoPurchaseStats:
    """Pair statistics over ``n_orders`` baskets.

    counts : P × P CSR, number of orders containing both products (diagonal 0).
    item_counts : (P,), number of orders containing each product.
    shrinkage : pseudo-count ``m`` of the shrunk lift.
    """

    counts: sp.csr_matrix
    item_counts: np.ndarray
    n_orders: int
    shrinkage: float

    @property
    def n_products(self) -> int:
        return len(self.item_counts)

    def support(self) -> np.ndarray:
        """Share of orders containing each product."""
        return self.item_counts / max(self.n_orders, 1)

    def expected_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        n_i = self.item_counts[np.asarray(rows)].astype(np.float64)
        n_j = self.item_counts[np.asarray(cols)].astype(np.float64)
        return np.outer(n_i, n_j) / max(self.n_orders, 1)

    def count_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.counts[np.asarray(rows)][:, np.asarray(cols)].toarray().astype(np.float64)

    def lift_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dense shrunk lift for the given product indices (rows × cols).

        The diagonal of a square block over the same indices is set to 1.
        """
        rows, cols = np.asarray(rows), np.asarray(cols)
        lift = (self.count_block(rows, cols) + self.shrinkage) / (
            self.expected_block(rows, cols) + self.shrinkage
        )
        same = rows[:, None] == cols[None, :]
        lift[same] = 1.0
        return lift

    def top_pairs(self, n: int = 20, min_count: int = 2) -> np.ndarray:
        """The ``n`` pairs (i < j) with the highest shrunk lift among pairs
        bought together at least ``min_count`` times, as an (n, 2) index array,
        ties broken by count then indices."""
        upper = sp.triu(self.counts, k=1).tocoo()
        keep = upper.data >= min_count
        i, j, c = upper.row[keep], upper.col[keep], upper.data[keep].astype(np.float64)
        expected = self.item_counts[i] * self.item_counts[j] / max(self.n_orders, 1)
        lift = (c + self.shrinkage) / (expected + self.shrinkage)
        order = np.lexsort((j, i, -c, -lift))[:n]
        return np.stack([i[order], j[order]], axis=1)

    def lift_pairs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Shrunk lift of each pair (rows[i], cols[i]) (1 where they are the same product)."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        count = np.asarray(self.counts[rows, cols], dtype=np.float64).ravel()
        expected = self.item_counts[rows] * self.item_counts[cols] / max(self.n_orders, 1)
        lift = (count + self.shrinkage) / (expected + self.shrinkage)
        return np.where(rows == cols, 1.0, lift)

    def pair_lift(self, i: int, j: int) -> float:
        return float(self.lift_block(np.array([i]), np.array([j]))[0, 0])


def copurchase_stats(baskets: sp.spmatrix, shrinkage: float = 5.0) -> CoPurchaseStats:
    """Pair counts from an orders × products 0/1 matrix (``Dataset.baskets``)."""
    b = sp.csr_matrix(baskets, dtype=np.float32)
    b.data[:] = 1.0
    counts = (b.T @ b).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    item_counts = np.asarray(b.sum(axis=0)).ravel()
    return CoPurchaseStats(
        counts=counts.astype(np.float32),
        item_counts=item_counts.astype(np.float64),
        n_orders=b.shape[0],
        shrinkage=float(shrinkage),
    )
