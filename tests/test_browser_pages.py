"""The Preferences and Bundles pages in a real browser, on the sample market the
app opens on: charts and bundle cards render, and nothing shows an exception."""

from __future__ import annotations

import re

import pytest

from tests.browser import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open(tab, title: str) -> None:
    tab.get_by_text("Dataset in use", exact=True).wait_for(timeout=120_000)
    link = tab.locator('[data-testid="stSidebarNavLink"]')
    link.filter(has_text=re.compile(f"{title}$")).first.click()
    wait_idle(tab)


def _no_exception(tab) -> None:
    assert tab.locator('[data-testid="stException"]').count() == 0


def test_preferences_and_bundles_pages(page, app_url):
    page.goto(app_url)
    wait_idle(page)

    _open(page, "Preferences")
    page.get_by_role("heading", name="Similar products").wait_for(timeout=180_000)
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 2  # sizes + heatmap
    page.get_by_role("heading", name="A customer").wait_for(timeout=60_000)
    _no_exception(page)

    _open(page, "Bundles")
    page.get_by_role("heading", name=re.compile("Bundles for segment")).wait_for(
        timeout=180_000
    )
    wait_idle(page)
    page.get_by_role("heading", name="Why these go together").wait_for(timeout=60_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1  # the network
    _no_exception(page)
