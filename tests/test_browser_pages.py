"""The Preferences and Bundles pages in a real browser, on the sample market the
app opens on: charts and bundle cards render, and nothing shows an exception."""

from __future__ import annotations

import re

import pytest

from tests.browser import page_problems, wait_idle

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


def test_preferences_customer_views(page, app_url):
    """Both views of one customer, as tabs: the next purchase (bought products
    included) shows first, clicking the other shows the new products."""
    page.goto(app_url)
    wait_idle(page)
    _open(page, "Preferences")
    page.get_by_role("heading", name="A customer").wait_for(timeout=180_000)
    wait_idle(page)
    next_tab = page.get_by_role("tab", name="Next purchase (bought products included)")
    new_tab = page.get_by_role("tab", name="New to this customer")
    next_tab.wait_for(timeout=60_000)
    assert next_tab.get_attribute("aria-selected") == "true"
    page.get_by_text("Score: chance of buying it in the next weeks").wait_for()
    assert page.get_by_text(re.compile("^Next purchase: ")).count() == 1  # how it was fitted
    new_tab.click()
    page.get_by_text("Products the customer has not bought yet").wait_for()
    assert new_tab.get_attribute("aria-selected") == "true"
    assert not page.get_by_text("Score: chance of buying it in the next weeks").is_visible()
    panel = page.get_by_role("tabpanel").filter(has_text="Products the customer has not bought yet")
    panel.locator('[data-testid="stDataFrame"]').wait_for()
    assert page_problems(page) == []
