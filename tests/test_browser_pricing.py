"""The Pricing and Export pages in a real browser: a guardrail slider moved with
the keyboard reprices at once, the Pricing page's link leads to the Export page,
and the Export page's CSV download is that price list."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from engine import columns as C
from tests.browser import full_page_screenshot, metric_value, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
# the README's picture; rewritten only on request, so a test run leaves the tree clean:
#   UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_browser_pricing.py
SCREENSHOT = ROOT / "docs" / "screenshot_pricing.png"
PROFIT = "Profit per period"


def _open(tab, title: str) -> None:
    # the app's own menu (st.navigation) is up once the sidebar shows the dataset in use
    tab.get_by_text("Dataset in use", exact=True).wait_for(timeout=120_000)
    link = tab.locator('[data-testid="stSidebarNavLink"]')
    link.filter(has_text=re.compile(f"{title}$")).first.click()
    wait_idle(tab)


def test_slider_reprices_and_export_downloads_the_price_list(page, app_url, tmp_path):  # noqa: F811
    page.goto(app_url)
    wait_idle(page)
    _open(page, "Pricing")
    page.locator('[data-testid="stMetric"]', has_text=PROFIT).first.wait_for(timeout=120_000)
    wait_idle(page)
    before = metric_value(page, PROFIT)

    # the largest-discount guardrail from 30 % down to 1 %, under the sample's smallest
    # discount so it binds on every bundle: keyboard only, as an analyst would
    slider = page.locator('[data-testid="stSlider"]', has_text="Largest discount %").first
    # the thumb: an <input type="range">, role "slider" (implicit, so get_by_role, not CSS)
    thumb = slider.get_by_role("slider")
    thumb.focus()
    for _ in range(29):
        thumb.press("ArrowLeft")
    assert thumb.input_value() == "1"
    page.wait_for_timeout(1_500)  # the running indicator shows only after a short delay
    wait_idle(page)
    page.wait_for_function(
        "([label, old]) => [...document.querySelectorAll('[data-testid=\"stMetric\"]')].some("
        "m => m.innerText.includes(label) && "
        "m.querySelector('[data-testid=\"stMetricValue\"]').innerText.trim() !== old)",
        arg=[PROFIT, before],
        timeout=60_000,
    )
    assert metric_value(page, PROFIT) != before
    page.wait_for_timeout(1_500)
    wait_idle(page)  # the fragment stores the scenario's price list after the metrics

    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / SCREENSHOT.name
    full_page_screenshot(page, shot)
    assert shot.stat().st_size > 50_000

    # one place owns the downloads: the Pricing page links to the Export page
    assert page.get_by_role("button", name="Price list CSV").count() == 0
    page.get_by_role("link", name=re.compile("Download this scenario's price list")).click()
    wait_idle(page)
    # one settings object: the Export page prices with the Pricing page's guardrails
    page.get_by_role("heading", name="These settings").wait_for(timeout=120_000)
    button = page.get_by_role("button", name="Price list CSV")
    button.wait_for(timeout=120_000)
    with page.expect_download() as download:
        button.click()
    data = Path(download.value.path()).read_bytes()
    prices = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert tuple(prices.columns) == C.PRICE_LIST_COLUMNS
    assert len(prices) >= 5
    # the Export page hands over the scenario set on the Pricing page: at most 5 % off
    # (even where no .99 price fits between 5 % off and the list total: priced to the cent)
    over = prices.loc[prices["discount_pct"] > 5 + 1e-6,
                      ["bundle_id", "list_total", "bundle_price", "discount_pct"]]
    assert over.empty, over.to_dict("records")
