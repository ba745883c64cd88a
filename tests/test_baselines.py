"""PersonalFrequency and TIFU-KNN on tiny histories whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset
from engine.errors import ConfigError, NotFittedError
from engine.recommend.baselines import TIFUKNN, PersonalFrequency, temporal_vectors

T0 = pd.Timestamp("2024-01-01")


def history(baskets: dict[str, list[list[int]]], n_products: int = 10) -> Dataset:
    """Each customer's baskets (product numbers), oldest first, one day apart; products
    are ``p00``…, so a product's number is its index. Customer ``zz`` buys every product
    once, so the catalogue holds all ``n_products``."""
    baskets = {**baskets, "zz": [list(range(n_products))]}
    rows = []
    for cust, seq in baskets.items():
        for day, items in enumerate(seq):
            for p in items:
                rows.append((f"{cust}-{day}", cust, f"p{p:02d}", 1, 1.0, T0 + pd.Timedelta(days=day)))
    lines = pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY,
                                        C.UNIT_PRICE, C.TIMESTAMP])
    return Dataset.from_frames(lines)


def scores_of(model, data: Dataset, customer: str) -> np.ndarray:
    return model.score(data.customer_index([customer]))[0]


def test_personal_frequency_ranks_own_counts_then_popularity():
    data = history({
        "u": [[3], [3], [3], [3], [3, 7]],
        "v": [[7], [7, 5], [5]],
        "w": [[5, 1]],
    })
    model = PersonalFrequency().fit(data)
    ids, _ = model.recommend(data.customer_index(["u"]), k=4, exclude_seen=False)
    # 3 (5 orders), 7 (1 order), then unbought by buyers: 5 (3 buyers), then 1 (2 buyers,
    # ahead of the others' 1 by popularity)
    assert ids[0].tolist() == [3, 7, 5, 1]


def test_personal_frequency_breaks_equal_counts_by_popularity():
    data = history({"u": [[2, 8]], "v": [[8]]})
    ids, _ = PersonalFrequency().fit(data).recommend(data.customer_index(["u"]), k=2,
                                                     exclude_seen=False)
    assert ids[0].tolist() == [8, 2]


def test_tifu_one_group_and_alpha_one_is_the_decayed_mean():
    data = history({"u": [[0, 1], [1], [2]]})
    model = TIFUKNN(n_groups=1, within_decay=0.5, alpha=1.0, n_neighbours=1).fit(data)
    got = scores_of(model, data, "u")
    # (0.25·{0,1} + 0.5·{1} + 1·{2}) / 3
    want = np.zeros(10)
    want[[0, 1, 2]] = [0.25 / 3, 0.75 / 3, 1.0 / 3]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_tifu_neighbour_products_score_when_alpha_below_one():
    data = history({"a": [[0, 1]], "b": [[0, 2]], "c": [[5, 6, 7, 8, 9]]})
    model = TIFUKNN(n_neighbours=1, alpha=0.7).fit(data)
    a = data.customer_index(["a"])[0]
    assert model.neighbours_[a].tolist() == data.customer_index(["b"]).tolist()
    s = scores_of(model, data, "a")
    assert s[2] > 0  # only the neighbour bought it
    assert s[5] == 0
    assert s[0] > s[1] > s[2]  # both bought 0; own weighs 0.7, the neighbour's 0.3


def test_tifu_recent_baskets_weigh_more():
    data = history({"u": [[0, 9], [9], [9], [1, 9]]})
    s = scores_of(TIFUKNN(alpha=1.0).fit(data), data, "u")
    assert s[9] > s[1] > s[0] > 0


def grouped_vector(seq: list[list[int]], m: int, rb: float, rg: float, n_products: int):
    """The authors' grouping written out loop by loop: m groups, the larger ones last."""
    n = len(seq)
    vecs = []
    for i, items in enumerate(seq):
        v = np.zeros(n_products)
        v[items] = rb ** (n - 1 - i)
        vecs.append(v)
    if n < m:
        groups = [[v] for v in vecs]
    else:
        base, extra = divmod(n, m)
        sizes = [base] * (m - extra) + [base + 1] * extra
        bounds = np.cumsum([0] + sizes)
        groups = [vecs[bounds[g]:bounds[g + 1]] for g in range(m)]
    out = sum(np.mean(g, axis=0) * rg ** (m - 1 - j) for j, g in enumerate(groups))
    return out / len(groups)


@pytest.mark.parametrize("n_baskets", [1, 3, 7, 10, 17])
def test_tifu_vectors_match_the_grouping_written_out(n_baskets):
    rng = np.random.default_rng(n_baskets)
    seq = [sorted(rng.choice(10, size=3, replace=False).tolist()) for _ in range(n_baskets)]
    data = history({"u": seq})
    V = temporal_vectors(data.baskets, data.order_customer, data.order_time, data.n_customers,
                         3, 0.9, 0.7)
    got = V[data.customer_index(["u"])[0]].toarray().ravel()
    np.testing.assert_allclose(got, grouped_vector(seq, 3, 0.9, 0.7, 10), rtol=1e-5)


def test_tifu_cosine_neighbours_and_checks():
    data = history({"a": [[0, 1]], "b": [[0, 1, 2, 3]], "c": [[0]]})
    model = TIFUKNN(n_neighbours=1, metric="cosine").fit(data)
    assert model.neighbours_[data.customer_index(["c"])[0]].tolist() == \
        data.customer_index(["a"]).tolist()
    with pytest.raises(ConfigError, match="alpha"):
        TIFUKNN(alpha=1.5).fit(data)
    with pytest.raises(NotFittedError):
        TIFUKNN().score([0])
    with pytest.raises(ValueError, match="refit"):
        model.score_torch([0], history=data.matrix[:1])
