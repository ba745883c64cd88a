"""Switching pages while a freshly started app first imports torch/transformers.

A page switch starts a new script thread while the old page's thread is still
importing transformers (Streamlit's fast reruns; see ui/preload.py); without the
preload the second page got ``ImportError: cannot import name 'AutoModel' from
'transformers'`` with a traceback, and overlapping encoder loads then broke every
later load ("Cannot copy out of meta tensor").

The server here is its own fresh process with an empty workspace in tmp, so the
first import happens during the clicks below. The window in which a second import
goes wrong is the run of ``transformers/__init__.py`` (about a second, so a plain run
caught it about one time in three); a ``sitecustomize`` on the server's PYTHONPATH
holds that import open for SLOW_IMPORT_S more, so the overlap is certain."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from tests.browser import NAV_LINK, click_nav, page_problems, start_app, stop_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLOW_IMPORT_S = 4
# sleeps at the start of transformers/__init__.py's execution, when the module is
# already in sys.modules and marked initialising: the window another thread's
# ``from transformers import AutoModel`` waits in and comes out of with the stale module
SITECUSTOMIZE = textwrap.dedent('''
    import importlib.abc
    import importlib.machinery
    import os
    import sys
    import time

    _SLOW = set(os.environ.get("TEST_SLOW_IMPORTS", "").split(",")) - {""}
    _DELAY = float(os.environ.get("TEST_SLOW_IMPORT_S", "0"))


    class _SlowImport(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in _SLOW:
                return None
            spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def slow_exec_module(module, _run=run):
                    time.sleep(_DELAY)
                    _run(module)

                spec.loader.exec_module = slow_exec_module
            return spec


    sys.meta_path.insert(0, _SlowImport())
''')

# after Preferences and Bundles, these half a second apart; every run but the last is
# stopped at its first yield point
SWITCHES = ["Pricing", "Export", "Preferences", "Bundles", "Pricing", "Export", "Preferences"]
GAP_MS = 500
SETTLE_TIMEOUT_MS = 300_000  # a cold encoder, segments, bundles and prices on 2 cores


@pytest.fixture(scope="module")
def slow_import_app_url(tmp_path_factory) -> Iterator[str]:
    """A fresh dashboard (empty workspace) whose first transformers import is slow."""
    hook = tmp_path_factory.mktemp("slow_import")
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    proc, url = start_app(tmp_path_factory.mktemp("first_load_ws"), env={
        "PYTHONPATH": str(hook), "TEST_SLOW_IMPORTS": "transformers",
        "TEST_SLOW_IMPORT_S": str(SLOW_IMPORT_S)})
    try:
        yield url
    finally:
        stop_app(proc)


def _settle(tab, title: str) -> None:
    """Wait until the page titled ``title`` has finished its run."""
    tab.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
    tab.wait_for_timeout(1_000)  # the running indicator shows only after a short delay
    wait_idle(tab, SETTLE_TIMEOUT_MS)


def test_fast_page_switches_during_the_first_load_show_no_traceback(page, slow_import_app_url):
    page.goto(slow_import_app_url)
    # the menu is up once the Data page's first run has loaded the sample; go on at once
    page.locator(NAV_LINK).filter(has_text="Preferences").first.wait_for(timeout=120_000)
    click_nav(page, "Preferences")
    # Bundles as soon as the Preferences run is under way (its title, or the wait for
    # the libraries): without the preload both runs import transformers at once
    page.get_by_role("heading", name="Preferences", exact=True).or_(
        page.get_by_text("Loading the model libraries")).first.wait_for(timeout=120_000)
    click_nav(page, "Bundles")
    _settle(page, "Bundles")
    seen = [f"Bundles, opened during the Preferences run: {p}" for p in page_problems(page)]

    for title in SWITCHES:
        click_nav(page, title)
        page.wait_for_timeout(GAP_MS)
        seen += [f"{title} (while switching): {p}" for p in page_problems(page)]

    # the last page of the sequence, then every page once more, each left to finish
    _settle(page, SWITCHES[-1])
    seen += [f"{SWITCHES[-1]}: {p}" for p in page_problems(page)]
    for title in ["Bundles", "Pricing", "Export", "Data", "Preferences"]:
        click_nav(page, title)
        _settle(page, title)
        seen += [f"{title}: {p}" for p in page_problems(page)]
    assert not seen, "\n\n".join(seen)
