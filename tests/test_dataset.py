"""Dataset.from_frames and co-purchase statistics on small data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset
from engine.recommend import copurchase_stats


def _lines(rows):
    df = pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE, C.TIMESTAMP])
    df[C.NAME] = "item " + df[C.PRODUCT_ID]
    return df


@pytest.fixture()
def tiny() -> Dataset:
    return Dataset.from_frames(
        _lines(
            [
                ("o1", "u1", "a", 1, 2.0, "2024-01-01"),
                ("o1", "u1", "b", 2, 3.0, "2024-01-01"),
                ("o2", "u2", "a", 1, 4.0, "2024-01-02"),
                ("o2", "u2", "b", 1, 3.0, "2024-01-02"),
                ("o3", "u1", "c", 1, 5.0, "2024-01-03"),
                ("o3", "u1", "c", 1, 5.0, "2024-01-03"),  # same product twice in one order
            ]
        )
    )


def test_indices_and_matrices(tiny: Dataset):
    assert (tiny.n_customers, tiny.n_products, tiny.n_orders) == (2, 3, 3)
    assert list(tiny.product_ids) == ["a", "b", "c"]
    # customer u1 bought a and b in o1 and c in o3 (c counted once per order)
    u1 = tiny.customer_index(["u1"])[0]
    np.testing.assert_array_equal(tiny.matrix[u1].toarray().ravel(), [1, 1, 1])
    assert tiny.baskets.sum() == 5
    assert list(tiny.order_ids) == ["o1", "o2", "o3"]


def test_derived_catalogue_uses_median_price_and_line_text(tiny: Dataset):
    prices = tiny.products.set_index(C.PRODUCT_ID)[C.PRICE]
    assert prices["a"] == pytest.approx(3.0)  # median of 2 and 4
    assert tiny.products.set_index(C.PRODUCT_ID).loc["c", C.NAME] == "item c"
    assert tiny.products[C.COST].isna().all()


def test_catalogue_keeps_unsold_products_for_cold_start():
    products = pd.DataFrame({C.PRODUCT_ID: ["a", "z"], C.NAME: ["A", "Zed"], C.PRICE: [9.0, 1.0]})
    ds = Dataset.from_frames(_lines([("o1", "u1", "a", 1, 2.0, "2024-01-01"), ("o1", "u1", "b", 1, 1.0, "2024-01-01")]), products)
    assert list(ds.product_ids) == ["a", "z", "b"]
    assert ds.matrix.shape == (1, 3)
    assert ds.products.set_index(C.PRODUCT_ID).loc["a", C.PRICE] == 9.0  # catalogue list price wins


def test_unknown_ids_are_named(tiny: Dataset):
    with pytest.raises(KeyError, match="nope"):
        tiny.product_index(["a", "nope"])


def test_subset_lines_keeps_catalogue(tiny: Dataset):
    early = tiny.subset_lines(tiny.lines[C.TIMESTAMP] < "2024-01-03")
    assert early.n_products == tiny.n_products
    assert early.n_orders == 2


def test_lift_known_answer():
    # 10 orders: a and b always together (4 orders), c alone in 6
    rows = [(f"o{k}", "u", p, 1, 1.0, "2024-01-01") for k in range(4) for p in ("a", "b")]
    rows += [(f"o{k}", "u", "c", 1, 1.0, "2024-01-01") for k in range(4, 10)]
    ds = Dataset.from_frames(_lines(rows))
    stats = copurchase_stats(ds.baskets, shrinkage=0.0)
    a, b, c = ds.product_index(["a", "b", "c"])
    # raw lift = C_ab * N / (N_a N_b) = 4 * 10 / 16
    assert stats.pair_lift(a, b) == pytest.approx(2.5)
    assert stats.pair_lift(a, c) == pytest.approx(0.0)
    assert stats.top_pairs(1, min_count=1).tolist() == [[min(a, b), max(a, b)]]
    shrunk = copurchase_stats(ds.baskets, shrinkage=5.0)
    assert 1.0 < shrunk.pair_lift(a, b) < 2.5  # pulled towards 1
