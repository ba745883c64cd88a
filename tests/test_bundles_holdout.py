"""Hold-out measures of bundles on tiny order books whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from engine.bundles.holdout import (
    bought_anywhere,
    bought_by_segment,
    order_segments,
    orders_covered,
    score_recommendations,
    together_rate,
)
from engine.bundles.itemsets import frequent_itemsets_by_segment

# five hold-out orders over products 0..4
#   order 0 (segment 0): 0 1 2
#   order 1 (segment 0): 3
#   order 2 (segment 1): 0 1
#   order 3 (segment 1): 2 4
#   order 4 (new customer, -1): 3 4
BASKETS = sp.csr_matrix(
    np.array(
        [
            [1, 1, 1, 0, 0],
            [0, 0, 0, 1, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 1, 0, 1],
            [0, 0, 0, 1, 1],
        ],
        dtype=np.float32,
    )
)
SEGMENT = np.array([0, 0, 1, 1, -1])


def test_bought_by_segment_needs_all_products_in_one_order_of_that_segment():
    recs = [
        (0, (0, 1)),  # order 0: yes
        (0, (0, 1, 2)),  # order 0 holds all three: yes
        (0, (3, 4)),  # bought together only by a new customer: no
        (1, (0, 1)),  # order 2: yes
        (1, (0, 2)),  # segment 1 bought 0 and 2, but in different orders: no
        (1, (1, 2)),  # together only in segment 0's order: no
    ]
    assert bought_by_segment(BASKETS, SEGMENT, recs).tolist() == [
        True, True, False, True, False, False,
    ]


def test_bought_by_segment_of_a_segment_without_hold_out_orders_is_false():
    assert bought_by_segment(BASKETS, SEGMENT, [(7, (0, 1))]).tolist() == [False]


def test_together_rate_is_the_share_of_the_segments_orders_holding_the_whole_bundle():
    recs = [
        (0, (0, 1)),  # segment 0 placed orders 0 and 1; order 0 holds both: 1/2
        (1, (2, 4)),  # segment 1 placed orders 2 and 3; order 3 holds both: 1/2
        (1, (0, 2)),  # never in one order of segment 1: 0
        (0, (3,)),  # a single product: order 1 holds it: 1/2
        (5, (0, 1)),  # a segment without hold-out orders: 0
    ]
    assert together_rate(BASKETS, SEGMENT, recs).tolist() == pytest.approx(
        [0.5, 0.5, 0.0, 0.5, 0.0]
    )


def test_bought_anywhere_ignores_segments():
    got = bought_anywhere(BASKETS, [(3, 4), (0, 2), (0, 3), (0, 1, 2)])
    assert got.tolist() == [True, True, False, True]


def test_orders_covered_counts_returning_customers_orders_with_two_bundle_products():
    # segment 0 is shown {1, 2, 3}: order 0 holds 1 and 2 (hit), order 1 only 3 (miss);
    # segment 1 is shown {4, 3}: order 3 holds only 4 (miss), order 2 nothing (miss).
    # The new customer's order 4 holds 3 and 4 but has no segment, so it is not counted.
    recs = [(0, (1, 2, 3)), (1, (3, 4))]
    assert orders_covered(BASKETS, SEGMENT, recs) == pytest.approx(1 / 4)
    # a second bundle for segment 1 covering order 2
    assert orders_covered(BASKETS, SEGMENT, recs + [(1, (0, 1))]) == pytest.approx(2 / 4)
    # needing all three of segment 0's bundle: no order has 1, 2 and 3
    assert orders_covered(BASKETS, SEGMENT, recs, min_together=3) == 0.0


def test_orders_covered_is_zero_without_returning_customers():
    assert orders_covered(BASKETS, np.full(5, -1), [(0, (0, 1))]) == 0.0


def test_score_recommendations_reports_all_three_and_counts_distinct_bundles():
    recs = [(0, (1, 0)), (1, (0, 1)), (1, (2, 4)), (0, (3, 4))]
    scores = score_recommendations(BASKETS, SEGMENT, recs)
    assert scores.n_recommendations == 4
    assert scores.n_distinct == 3  # (0, 1) shown to both segments counts once
    assert scores.bought_by_segment == pytest.approx(3 / 4)  # (3, 4) only by the new customer
    # (0,1) in 1 of segment 0's 2 orders, (0,1) and (2,4) each in 1 of segment 1's 2, (3,4) in none
    assert scores.together_rate == pytest.approx((0.5 + 0.5 + 0.5 + 0.0) / 4)
    assert scores.bought_anywhere == 1.0  # every distinct bundle turns up somewhere
    # orders 0, 2 and 3 covered; order 1 (only product 3) not; order 4 not counted
    assert scores.orders_covered == pytest.approx(3 / 4)


def test_order_segments_maps_hold_out_orders_through_training_customers():
    got = order_segments(
        holdout_customers=["c9", "c1", "c2"],
        order_customer=np.array([0, 1, 2, 1]),
        train_customers=["c1", "c2", "c3"],
        train_labels=np.array([4, 0, 2]),
    )
    assert got.tolist() == [-1, 4, 0, 4]


def test_mismatched_inputs_are_named():
    with pytest.raises(ValueError, match="5 hold-out orders but 3 order segments"):
        bought_by_segment(BASKETS, np.zeros(3), [(0, (0, 1))])
    with pytest.raises(ValueError, match="2 training customers but 3 segment labels"):
        order_segments(["a"], np.array([0]), ["a", "b"], np.array([0, 1, 2]))


def test_itemsets_by_segment_are_mined_on_each_segments_own_orders():
    # segment 0 buys products 0+1 together (8 orders), segment 1 buys 2+3 (6) and,
    # less often, 0+2 (5); over everybody 0+1 would top the list for both
    rows = [[1, 1, 0, 0]] * 8 + [[0, 0, 1, 1]] * 6 + [[1, 0, 1, 0]] * 5
    segment = np.array([0] * 8 + [1] * 11)
    found = frequent_itemsets_by_segment(
        sp.csr_matrix(np.array(rows, np.float32)), segment, 2, list("abcd"), n=5,
        rank_by="support", sizes=(2,),
    )
    assert [[(i.product_ids, i.count) for i in seg] for seg in found] == [
        [(("a", "b"), 8)],
        [(("c", "d"), 6), (("a", "c"), 5)],
    ]
    with pytest.raises(ValueError, match="19 orders but 3 order segments"):
        frequent_itemsets_by_segment(sp.csr_matrix(np.array(rows)), segment[:3], 2)
