"""A link straight to a page (a bookmark, a link in a mail) opens that page inside
the app's frame, even as the first visit to a freshly started server: with the page
scripts in a folder named pages/, Streamlit ran such a page on its own, with a
file-name menu ('app', 'data', ...) and no sidebar."""

from __future__ import annotations

import pytest

from tests.browser import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_direct_link_on_a_fresh_server_opens_the_page_in_the_app(page, app_url):
    page.goto(f"{app_url}/preferences")  # this module's server has had no visit yet
    wait_idle(page)
    page.get_by_text("Dataset in use", exact=True).wait_for(timeout=120_000)
    links = [t.split("\n")[-1] for t in
             page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()]
    assert links == ["Data", "Preferences", "Bundles", "Pricing", "Export"]
    page.get_by_role("heading", name="Preferences", exact=True).wait_for(timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
