"""The Data page in a real browser: upload through the file input, load, read the report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import full_page_screenshot, metric_value, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
# the README's picture; rewritten only on request, so a test run leaves the tree clean:
#   UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_browser_data.py
SCREENSHOT = ROOT / "docs" / "screenshot_data.png"


def test_upload_load_and_report(page, app_url, real_sample_path, tmp_path):  # noqa: F811
    page.goto(app_url)
    wait_idle(page)
    # a fresh workspace opens on the bundled sample market
    page.get_by_text("Validation report · sample").wait_for()
    assert metric_value(page, "Products") == "300"

    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(real_sample_path)
    )
    page.get_by_text("Check the files").wait_for()
    page.get_by_text("online_retail_sample.csv · order lines · 10,000 rows").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Load", exact=True).click()

    page.get_by_text("Validation report · online_retail_sample").wait_for(timeout=60_000)
    wait_idle(page)
    assert metric_value(page, "Rows read") == "10,000"
    kept = int(metric_value(page, "Rows kept").replace(",", ""))
    aside = int(metric_value(page, "Rows set aside").replace(",", ""))
    assert kept + aside == 10_000 and 5_000 < kept < 10_000
    page.get_by_text("Loaded online_retail_sample from online_retail_sample.csv").wait_for()

    # set-aside bar, weekly activity, prices, top products, top pairs
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot').length >= 5",
        timeout=60_000,
    )
    for title in ("Orders and revenue per day", "Unit price distribution",
                  "Top 12 products by revenue", "Top co-purchased pairs by lift",
                  "Lines set aside, by reason"):
        assert page.locator(".js-plotly-plot", has_text=title).count() >= 1, title

    # the sidebar now shows the uploaded dataset in use
    sidebar = page.locator('[data-testid="stSidebar"]')
    picker = sidebar.locator('[data-testid="stSelectbox"]')
    assert "online_retail_sample" in (picker.inner_text() + picker.locator("input").input_value())
    assert metric_value(sidebar, "Order lines") == f"{kept:,}"

    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / SCREENSHOT.name
    full_page_screenshot(page, shot)
    assert shot.stat().st_size > 50_000

    # a browser refresh is a new session: the workspace still has the dataset in use
    page.reload()
    wait_idle(page)
    page.get_by_text("Validation report · online_retail_sample").wait_for()
    assert metric_value(page, "Rows read") == "10,000"


def test_full_online_retail_upload(page, app_url, real_full_path, tmp_path):  # noqa: F811
    """The whole UCI set as a 48 MB CSV through the real file input (limit: 200 MB)."""
    import pandas as pd

    csv = tmp_path / "online_retail_full.csv"
    pd.read_parquet(real_full_path).to_csv(csv, index=False)
    page.set_default_timeout(120_000)
    page.goto(app_url)
    wait_idle(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(csv))
    page.get_by_text("online_retail_full.csv · order lines · 541,909 rows").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Validation report · online_retail_full").wait_for()
    wait_idle(page)
    assert metric_value(page, "Rows read") == "541,909"
    kept = int(metric_value(page, "Rows kept").replace(",", ""))
    # the data's README: a simple clean keeps 397,884; the loader also drops duplicates
    # and non-merchandise codes, so it keeps somewhat fewer
    assert 380_000 < kept <= 397_884
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot').length >= 5"
    )
