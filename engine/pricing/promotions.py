"""Promotion weeks read from the order lines: what the cross-price response of
``engine.pricing.synergy`` is counted on.

A line carries the unit price paid; a product's week is a promotion week when
the median price paid for it that week is at least ``MIN_DISCOUNT`` under its
regular price (the export's ``regular_price`` where it has one, else the
catalogue's list price). Shops run promotions by the calendar week, but not
every shop's week starts on a Monday: of the seven weekly calendars (weeks
ending Sunday, Monday, …) the one under which the fewest product-weeks mix
promotion and regular prices is the shop's. A week in which a product did not
sell says nothing about its price and is *unknown*, neither promotion nor list.

Visits are customer-weeks of that calendar, as in ``demand.segment_visits``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine import columns as C
from engine.data.dataset import Dataset

log = logging.getLogger(__name__)

MIN_DISCOUNT = 0.05
# pandas weekly periods by the day a week ends; Sunday first, so a shop without
# promotions (every calendar ties) keeps pandas' default week
WEEK_ENDS = ("W-SUN", "W-MON", "W-TUE", "W-WED", "W-THU", "W-FRI", "W-SAT")


@dataclass(frozen=True)
class PromotionWeeks:
    """The visits and each product's price in each week.

    bought : (V, P) sparse 0/1 (CSC), the products each visit bought;
    segment : (V,) segment of each visit; week : (V,) week index of each visit;
    discount : (P, W) discount off the regular price of each product in each week,
        NaN where the product did not sell that week (its price is unknown);
    calendar : the pandas weekly frequency of the weeks (``W-TUE``: weeks end on Tuesday).
    """

    bought: sp.csc_matrix
    segment: np.ndarray
    week: np.ndarray
    discount: np.ndarray
    calendar: str

    @property
    def n_segments(self) -> int:
        return int(self.segment.max()) + 1 if len(self.segment) else 0

    def on_promotion(self) -> np.ndarray:
        """(P, W) bool: the product sold under a promotion that week."""
        return np.nan_to_num(self.discount, nan=0.0) >= MIN_DISCOUNT

    def n_promotion_weeks(self) -> np.ndarray:
        """(P,) weeks each product was seen on promotion."""
        return self.on_promotion().sum(axis=1)


def _line_discount(dataset: Dataset) -> np.ndarray:
    """Per line: 1 − paid / regular price, in 5 % steps (what promotions come in)."""
    lines = dataset.lines
    regular = dataset.products[C.PRICE].to_numpy(float)[lines[C.PRODUCT_IDX].to_numpy()]
    if C.REGULAR_PRICE in lines:
        own = lines[C.REGULAR_PRICE].to_numpy(float)
        regular = np.where(np.isfinite(own), own, regular)
    paid = lines[C.UNIT_PRICE].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(regular > 0, 1.0 - paid / regular, 0.0)
    return np.round(np.clip(off, 0.0, 0.9) / 0.05) * 0.05


def shop_calendar(dataset: Dataset) -> str:
    """The weekly calendar under which the fewest product-weeks mix promotion and
    regular prices (the week the shop's promotions run by)."""
    lines = dataset.lines
    promo = _line_discount(dataset) >= MIN_DISCOUNT
    if not promo.any():
        return WEEK_ENDS[0]
    product = lines[C.PRODUCT_IDX].to_numpy()
    mixed = []
    for freq in WEEK_ENDS:
        week = lines[C.TIMESTAMP].dt.to_period(freq).to_numpy()
        frame = pd.DataFrame({"p": product, "w": week, "promo": promo})
        seen = frame.groupby(["p", "w"])["promo"].agg(["min", "max"])
        mixed.append(float((seen["min"] != seen["max"]).mean()))
    best = WEEK_ENDS[int(np.argmin(mixed))]
    log.info("promotion weeks end on %s (%.1f%% of product-weeks mix prices; Sunday weeks "
             "%.1f%%)", best[2:], 100 * min(mixed), 100 * mixed[0])
    return best


def promotion_weeks(dataset: Dataset, segment_labels: np.ndarray) -> PromotionWeeks:
    """The visits (customer-weeks of the shop's calendar), what each bought, and each
    product's discount in each week."""
    labels = np.asarray(segment_labels)
    if labels.shape != (dataset.n_customers,):
        raise ValueError(
            f"segment_labels has shape {labels.shape}, expected ({dataset.n_customers},)"
        )
    lines = dataset.lines
    calendar = shop_calendar(dataset)
    week, _ = pd.factorize(lines[C.TIMESTAMP].dt.to_period(calendar), sort=True)
    n_weeks = int(week.max()) + 1 if len(week) else 0
    product = lines[C.PRODUCT_IDX].to_numpy()
    by_week = (pd.DataFrame({"p": product, "w": week, "d": _line_discount(dataset)})
               .groupby(["p", "w"])["d"].median())
    discount = np.full((dataset.n_products, n_weeks), np.nan)
    discount[by_week.index.get_level_values(0), by_week.index.get_level_values(1)] = by_week
    customer = lines[C.CUSTOMER_IDX].to_numpy()
    visit, uniques = pd.factorize(pd.MultiIndex.from_arrays([customer, week]))
    bought = sp.csc_matrix((np.ones(len(visit), np.int8), (visit, product)),
                           shape=(len(uniques), dataset.n_products))
    bought.data[:] = 1
    return PromotionWeeks(
        bought=bought,
        segment=labels[uniques.get_level_values(0).to_numpy()],
        week=uniques.get_level_values(1).to_numpy(),
        discount=discount,
        calendar=calendar,
    )
