"""Defect: after a new dataset loads, Pricing and Export showed only their sliders or
caption for about 8 s with no sign of work. Each step longer than about a second now
shows which step runs and how far it is."""

from __future__ import annotations

import pytest

# the browser and page fixtures are conftest's (one chromium per session)
from tests.browser import start_app, stop_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def fresh_url(tmp_path, browser):  # chromium first, so a skip starts no server
    """A server of its own: nothing computed yet."""
    proc, url = start_app(tmp_path / "ws")
    try:
        yield url
    finally:
        stop_app(proc)


@pytest.mark.parametrize("path", ["pricing", "export"])
def test_first_load_of_a_page_shows_its_step_and_progress(fresh_url, page, path):
    page.goto(f"{fresh_url}/{path}")
    # a fresh server: segments, demand, bundles and prices are computed now, a step at a time
    bar = page.locator('[data-testid="stProgress"]', has_text="Step ").first
    bar.wait_for(state="visible", timeout=60_000)
    assert " of 6: " in bar.inner_text()
    wait_idle(page, timeout=240_000)
    page.locator('[data-testid="stMetric"]').first.wait_for(state="visible", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
