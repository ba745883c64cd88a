"""The next-purchase list (engine/recommend/repeat.py) on synthetic shops whose answer
is planted: a weekly staple, a three-week repurchase cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data import Dataset
from engine.recommend import PreferenceConfig, fit_preferences, recommend_top_k
from engine.recommend.repeat import purchase_history

T0 = pd.Timestamp("2024-01-01")
WEEKS = 30
CYCLE = 21  # days between two purchases of the cycle product
CYCLE_PRODUCT = 50


def planted_shop(seed: int = 0, n_customers: int = 240, n_products: int = 80):
    """Every customer buys their staple (product c % 10) once a week and two random
    others from 10..79 on most visits; the first half also buys the cycle product
    every ``CYCLE`` days from a random phase. Returns the dataset, each customer's
    staple and phase (-1: no cycle)."""
    rng = np.random.default_rng(seed)
    others = np.setdiff1d(np.arange(10, n_products), [CYCLE_PRODUCT])
    rows = []
    staple = np.arange(n_customers) % 10
    phase = np.where(np.arange(n_customers) < n_customers // 2,
                     rng.integers(0, CYCLE, n_customers), -1)
    for c in range(n_customers):
        weekday = c % 7
        days = {}
        for w in range(WEEKS):
            day = 7 * w + weekday
            items = [staple[c]]
            if rng.random() < 0.7:
                items += list(rng.choice(others, 2, replace=False))
            days.setdefault(day, []).extend(items)
        if phase[c] >= 0:
            for day in range(phase[c], 7 * WEEKS, CYCLE):
                days.setdefault(day, []).append(CYCLE_PRODUCT)
        for day, items in days.items():
            for p in set(int(i) for i in items):
                rows.append((f"o{c}-{day}", f"c{c:03d}", f"p{p:02d}", 1, 2.0,
                             T0 + pd.Timedelta(days=day)))
    lines = pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY,
                                        C.UNIT_PRICE, C.TIMESTAMP])
    data = Dataset.from_frames(lines)
    order = data.customer_index([f"c{c:03d}" for c in range(n_customers)])
    product_of = {p: data.product_index([f"p{p:02d}"])[0] for p in range(n_products)}
    return data, order, np.array([product_of[s] for s in staple]), phase, product_of


@pytest.fixture(scope="module")
def shop():
    data, order, staple, phase, product_of = planted_shop()
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(data.n_products, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # one week of validation: only the customers due for the cycle product buy it there,
    # so the fit can learn what "due" means
    config = PreferenceConfig(sequence="off", validation_weeks=1, k_range=(2, 4))
    prefs = fit_preferences(data, emb, config, seed=0)
    return data, emb, prefs, order, staple, phase, product_of


def test_weekly_staple_comes_first_and_is_a_repeat(shop):
    data, emb, prefs, order, staple, _, _ = shop
    assert prefs.model.tuning_["next_purchase"]["fitted"]
    top, prob, repeat = prefs.model.next_purchase(order, 5)
    assert (top[:, 0] == staple).mean() >= 0.95
    assert repeat[:, 0].all()
    assert ((prob[:, :-1] >= prob[:, 1:]) | np.isnan(prob[:, 1:])).all()  # ranked by P
    recs = recommend_top_k(prefs, data, emb, 3, customers=order[:20])
    first = recs[recs["rank"] == 1]
    assert first["repeat"].all()
    assert first["reason"].str.match(r"Bought in 30 of \d+ orders, last \d+ days? ago; "
                                     r"usually every 7 days").all(), first["reason"].head()
    # new products only: the staple and everything else bought before are left out
    new = recommend_top_k(prefs, data, emb, 5, customers=order[:20], purchased="exclude")
    assert not new["repeat"].any()
    bought = {(c, p) for c, p in zip(data.lines[C.CUSTOMER_ID], data.lines[C.PRODUCT_ID],
                                     strict=True)}
    assert not any((c, p) in bought for c, p in zip(new[C.CUSTOMER_ID], new[C.PRODUCT_ID],
                                                    strict=True))


def test_planted_repurchase_cycle_is_recovered(shop):
    data, _, prefs, order, _, phase, product_of = shop
    history = prefs.model.history_
    cycle_product = product_of[CYCLE_PRODUCT]
    assert history.product_cycle_days[cycle_product] == pytest.approx(CYCLE, abs=0.5)
    has = phase >= 0
    pos = history.position(order[has], np.full(has.sum(), cycle_product))
    np.testing.assert_allclose(history.cycle_days[pos], CYCLE, atol=0.5)
    # customers due within the week rank the cycle product above those who just bought it
    top, prob, _ = prefs.model.next_purchase(order[has], 20)
    since = history.last_days[pos]
    rank = np.array([np.flatnonzero(row == cycle_product)[0] if (row == cycle_product).any()
                     else 20 for row in top])
    due, just_bought = since >= CYCLE - 7, since <= 6
    assert due.sum() >= 20 and just_bought.sum() >= 20
    assert (rank[due] <= 1).all(), rank[due]  # right after the staple
    # both groups rank it second (it is their second most bought product), but only
    # the due ones are likely to buy it next week
    p_of = np.where(top == cycle_product, prob, 0.0).sum(axis=1)
    assert p_of[due].mean() > 1.5 * p_of[just_bought].mean()  # measured 0.57 vs 0.25


def test_features_without_a_window_fall_back_to_own_counts():
    data, order, staple, _, _ = planted_shop(n_customers=60)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(data.n_products, 8)).astype(np.float32)
    prefs = fit_preferences(data, emb, PreferenceConfig(tune_weights=False, sequence="off",
                                                        k_range=(2, 3)), seed=0)
    assert not prefs.model.buy_again_.report["fitted"]
    top, _, repeat = prefs.model.next_purchase(order, 3)
    assert (top[:, 0] == staple).all() and repeat[:, 0].all()


def test_history_counts_orders_and_days_since():
    rows = [("o1", "u", "a", 1, 1.0, T0), ("o1", "u", "b", 1, 1.0, T0),
            ("o2", "u", "a", 2, 1.0, T0 + pd.Timedelta(days=10)),
            ("o3", "v", "b", 1, 1.0, T0 + pd.Timedelta(days=12))]
    lines = pd.DataFrame(rows, columns=[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY,
                                        C.UNIT_PRICE, C.TIMESTAMP])
    data = Dataset.from_frames(lines)
    h = purchase_history(data)
    u, v = data.customer_index(["u", "v"])
    a, b = data.product_index(["a", "b"])
    pos = h.position(np.array([u, u, v]), np.array([a, b, b]))
    assert h.orders[pos].tolist() == [2, 1, 1]
    assert h.last_days[pos].tolist() == [2, 12, 0]
    assert h.customer_orders[[u, v]].tolist() == [2, 1]


@pytest.mark.slow
def test_recommend_command_includes_or_excludes_what_was_bought(tmp_path, monkeypatch, capsys):
    from engine.__main__ import main

    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    data, *_ = planted_shop(n_customers=120)
    orders = tmp_path / "orders.csv"
    data.lines[[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE,
                C.TIMESTAMP]].to_csv(orders, index=False)
    bought = set(zip(data.lines[C.CUSTOMER_ID], data.lines[C.PRODUCT_ID], strict=True))
    lists = {}
    for how in ("include", "exclude"):
        out = tmp_path / f"{how}.csv"
        argv = ["recommend", str(orders), "--k", "3", "--out", str(out)]
        assert main(argv + ([] if how == "include" else ["--purchased", how])) == 0, \
            capsys.readouterr().err
        recs = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert list(recs.columns) == [C.CUSTOMER_ID, "rank", C.PRODUCT_ID, "score", "repeat",
                                      "reason"]
        was_bought = [(c, p) in bought for c, p in zip(recs[C.CUSTOMER_ID], recs[C.PRODUCT_ID],
                                                        strict=True)]
        assert recs["repeat"].eq("True").tolist() == was_bought  # the flag tells the truth
        lists[how] = recs
    # the default is the next purchase: each customer's weekly staple first
    assert lists["include"].query("rank == '1'")["repeat"].eq("True").all()
    assert lists["exclude"]["repeat"].eq("False").all()
    with pytest.raises(SystemExit) as stop:  # argparse's usage message, exit 2
        main(["recommend", str(orders), "--out", str(tmp_path / "x.csv"), "--purchased", "no"])
    assert stop.value.code == 2
    assert "--purchased: invalid choice: 'no'" in capsys.readouterr().err
