"""Re-calibrate the demand model to observed bundle sales and re-optimise.

For each bundle with observations (units sold and visitors who saw it), the
willingness to pay of its segment for its products is shifted by a common
log-factor delta so that the simulated take rate at the observed price equals
the observed one (found with scipy's brentq). The shift is shrunk towards 0 by
sample size, delta · V / (V + prior_visitors), so a handful of visitors moves
little. The bundle is then re-priced with the usual optimiser. (The
proportional rule p_new = p_old + α(S_pred − S_actual) is not used: it raises
a price when sales fall short.)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from engine import columns as C
from engine.errors import DataValidationError, Issue
from engine.pricing.optimise import PricingConfig, optimise_prices, segment_groups
from engine.pricing.simulate import Market, evaluate, prepare_choices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adjustment:
    """``moves``: one row per observed bundle (old and new price, predicted and
    observed take rates, the shift and a reason); ``market``: the re-calibrated market."""

    moves: pd.DataFrame
    market: Market


def _take_rate(market, items, segment, synergy, price, n, seed) -> float:
    choices = prepare_choices(market, [items], [segment], synergy, n, seed)
    return float(evaluate(choices, np.array([price])).per_bundle["take_rate"].iat[0])


def _matching_shift(market, items, seg, synergy, price, rate, n, seed, max_shift) -> float:
    """Log-shift of the segment's WTP for the items that reproduces ``rate`` at ``price``."""

    def gap(delta):
        shifted = _shifted(market, items, seg, delta)
        return _take_rate(shifted, items, seg, synergy, price, n, seed) - rate

    if gap(-max_shift) >= 0:
        return -max_shift
    if gap(max_shift) <= 0:
        return max_shift
    return brentq(gap, -max_shift, max_shift, xtol=1e-4)


def _shifted(market: Market, items, segment: int, delta: float) -> Market:
    mu = market.mu.copy()
    mu[segment, list(items)] += delta
    return replace(market, mu=mu)


def check_observed(observed: pd.DataFrame, bundle_ids: Sequence[str]) -> None:
    """Raise DataValidationError listing every problem of the observed results."""
    issues = []
    missing = [c for c in C.OBSERVED_COLUMNS if c not in observed]
    if missing:
        issues.append(
            Issue(
                "observed results",
                None,
                "required_columns",
                f"observed results miss columns {missing}; expected {list(C.OBSERVED_COLUMNS)}"
                f" (+ optional '{C.VISITORS}'), found {list(observed.columns)}",
                hint="rename the columns or map them on the Data page",
            )
        )
    if C.BUNDLE_ID in observed:
        unknown = sorted(set(observed[C.BUNDLE_ID].astype(str)) - {str(b) for b in bundle_ids})
        if unknown:
            issues.append(
                Issue(
                    "observed results",
                    C.BUNDLE_ID,
                    "known_bundle",
                    f"observed bundle ids not among the priced bundles: {unknown[:5]}",
                    hint="use the bundle_id column of the exported price list",
                )
            )
    if issues:
        raise DataValidationError(issues)


def _aggregate(observed: pd.DataFrame, default_visitors: dict[str, float]) -> pd.DataFrame:
    obs = observed.copy()
    obs[C.BUNDLE_ID] = obs[C.BUNDLE_ID].astype(str)
    if C.VISITORS not in obs:
        obs[C.VISITORS] = np.nan
    # without a visitor count a period's visitors are the segment's size
    obs[C.VISITORS] = obs[C.VISITORS].fillna(obs[C.BUNDLE_ID].map(default_visitors))
    obs["revenue"] = obs[C.PRICE] * obs[C.UNITS]
    agg = obs.groupby(C.BUNDLE_ID).agg(
        units=(C.UNITS, "sum"),
        visitors=(C.VISITORS, "sum"),
        revenue=("revenue", "sum"),
        price=(C.PRICE, "mean"),
    )
    # the price the units were sold at on average (mean listed price if nothing sold)
    sold = agg["units"] > 0
    agg.loc[sold, "price"] = agg.loc[sold, "revenue"] / agg.loc[sold, "units"]
    return agg


def adjust_prices(
    market: Market,
    bundles: Sequence[Sequence[int]],
    segments: Sequence[int],
    bundle_ids: Sequence[str],
    current_prices: Sequence[float],
    observed: pd.DataFrame,
    config: PricingConfig,
    synergy: float | Sequence[float] = 0.0,
    prior_visitors: float = 200.0,
    max_shift: float = 2.0,
) -> Adjustment:
    """Re-calibrate to ``observed`` (bundle_id, period, price, units[, visitors]) and re-price."""
    check_observed(observed, bundle_ids)
    pos = {str(b): k for k, b in enumerate(bundle_ids)}
    sizes = {b: float(market.segment_size[segments[k]]) for b, k in pos.items()}
    agg = _aggregate(observed, sizes)
    syn = np.broadcast_to(np.asarray(synergy, float), (len(bundles),))
    n, seed = config.n_customers, config.seed
    rows, new_market = [], market
    for bundle_id, row in agg.iterrows():
        k = pos[bundle_id]
        items, seg = bundles[k], int(segments[k])
        observed_rate = row["units"] / row["visitors"]
        predicted = _take_rate(market, items, seg, syn[k], row["price"], n, seed)

        delta = _matching_shift(
            market, items, seg, syn[k], row["price"], observed_rate, n, seed, max_shift
        )
        delta *= row["visitors"] / (row["visitors"] + prior_visitors)
        new_market = _shifted(new_market, items, seg, delta)
        rows.append(
            {
                C.BUNDLE_ID: bundle_id,
                C.SEGMENT: seg,
                "observed_price": row["price"],
                "units": row["units"],
                "visitors": row["visitors"],
                "predicted_take_rate": predicted,
                "observed_take_rate": observed_rate,
                "wtp_shift_pct": 100 * np.expm1(delta),
                "bundle": k,
            }
        )
    moves = pd.DataFrame(rows)
    if moves.empty:
        return Adjustment(moves, market)
    idx = moves["bundle"].to_numpy()
    # every bundle re-priced together, so the same products offered to several
    # segments keep within the price spread; only the observed ones are shown
    choices = prepare_choices(new_market, bundles, segments, syn, n, seed)
    results = optimise_prices(choices, config, groups=segment_groups(bundles))
    moves["old_price"] = np.asarray(current_prices, float)[idx]
    moves["new_price"] = [results[k].price for k in idx]
    moves["converged"] = [results[k].converged for k in idx]
    observed_prices = np.asarray(current_prices, float).copy()
    observed_prices[idx] = moves["observed_price"].to_numpy()
    moves["adjusted_take_rate"] = (
        evaluate(choices, observed_prices).per_bundle["take_rate"].to_numpy()[idx]
    )
    moves["reason"] = [_reason(r) for r in moves.itertuples()]
    return Adjustment(moves.drop(columns="bundle"), new_market)


def _reason(m) -> str:
    direction = "below" if m.observed_take_rate < m.predicted_take_rate else "above"
    revised = "down" if m.wtp_shift_pct < 0 else "up"
    move = (
        "keeps the price"
        if np.isclose(m.new_price, m.old_price)
        else f"moves the price from {m.old_price:.2f} to {m.new_price:.2f}"
    )
    return (
        f"Sold {m.units:g} to {m.visitors:g} visitors ({m.observed_take_rate:.1%}) at "
        f"{m.observed_price:.2f}, {direction} the predicted {m.predicted_take_rate:.1%}: "
        f"willingness to pay revised {revised} {abs(m.wtp_shift_pct):.1f}% "
        f"(shrunk by sample size); re-optimising {move}."
    )


OBSERVED_HINT = (
    "one row per bundle and period: bundle_id (from the exported price list), period, "
    "price (the price it was sold at), units (bundles sold), optional visitors (who saw it)"
)


FILL = "fill it in or delete the row"


def read_observed(
    file_name: str, data: bytes, bundle_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """An uploaded observed-results CSV (bundle_id, period, price, units[, visitors]),
    checked row by row. Every problem is an Issue naming the file, the column and the
    rows as a spreadsheet numbers them (header = row 1); any problem raises
    DataValidationError. ``bundle_ids``: the priced bundles, when known."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' ParserError is a ValueError
        raise DataValidationError([Issue(file_name, None, "readable_csv", f"not a CSV: {err}",
                                         hint="save the file as CSV (UTF-8)")]) from err
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    issues = [
        Issue(file_name, col, "required_columns",
              f"no '{col}' column (found {list(frame.columns)})", hint=OBSERVED_HINT)
        for col in C.OBSERVED_COLUMNS if col not in frame.columns
    ]
    if not issues and frame.empty:
        issues.append(Issue(file_name, None, "has_rows", "no data rows", hint=OBSERVED_HINT))
    if issues:
        raise DataValidationError(issues)

    def rows(mask) -> tuple[int, ...]:
        return tuple(int(i) + 2 for i in np.flatnonzero(np.asarray(mask))[:5])

    def check(column: str, rule: str, message: str, mask, hint: str = OBSERVED_HINT) -> None:
        if np.any(mask):
            issues.append(Issue(file_name, column, rule,
                                f"{int(np.sum(mask))} row(s) {message}", rows(mask), hint))

    text = frame.apply(lambda col: col.str.strip())
    check(C.BUNDLE_ID, "not_blank", "without a bundle id", text[C.BUNDLE_ID] == "", FILL)
    check(C.PERIOD, "not_blank", "without a period", text[C.PERIOD] == "", FILL)
    if bundle_ids is not None:
        unknown = (text[C.BUNDLE_ID] != "") & ~text[C.BUNDLE_ID].isin([str(b) for b in bundle_ids])
        check(C.BUNDLE_ID, "known_bundle", "name a bundle that is not in the price list", unknown,
              hint="use the bundle_id column of the exported price list")
    out = frame.copy()
    out[C.BUNDLE_ID] = text[C.BUNDLE_ID]
    numbers = {C.PRICE: "a price above 0", C.UNITS: "a count of 0 or more",
               C.VISITORS: "a count above 0 (or blank)"}
    for col, wanted in numbers.items():
        if col not in text:
            continue
        value = pd.to_numeric(text[col], errors="coerce")
        blank = text[col] == ""
        if col == C.VISITORS:
            bad = ~blank & ~(value > 0)
        else:
            bad = blank | ~(value >= 0 if col == C.UNITS else value > 0)
        shown = ", ".join(repr(v) for v in text[col][bad].head(3))
        check(col, "number", f"where it is not {wanted} ({shown})", bad,
              "plain numbers, '.' for decimals, no currency signs")
        out[col] = value
    if C.VISITORS in out:
        check(C.UNITS, "units_within_visitors", "sold more units than they had visitors",
              out[C.UNITS] > out[C.VISITORS],
              "visitors: everyone who was offered the bundle in that period")
    if issues:
        raise DataValidationError(issues)
    return out
