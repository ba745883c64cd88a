"""Shared fixtures for browser tests: a live ``streamlit run app.py`` and Debian's chromium.

Use them from a test module with::

    from tests.browser import app_url, browser, page  # noqa: F401  (pytest fixtures)

The server runs once per test module on a free port with its own empty
workspace (so it opens on the bundled sample data); the browser is the
system chromium at /usr/bin/chromium driven by Playwright's sync API
(``playwright install`` is never needed). Without that chromium the tests
skip and say why.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 1000}
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> None:
    """Wait until Streamlit's health endpoint answers "ok"; fail with its log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s")


def start_app(
    workspace: Path, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` with ``ENGINE_WORKSPACE=workspace`` (and ``env``
    on top of this process's environment); returns (process, url)."""
    port = port or free_port()
    env = {**os.environ, "ENGINE_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
           **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except BaseException:
        stop_app(proc)
        raise
    return proc, url


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    """URL of a live dashboard with a fresh workspace (opens on the sample data).

    One server per test module, so one module's uploads never change what
    another module's tests see (about 3 s to start)."""
    proc, url = start_app(tmp_path_factory.mktemp("browser_ws"))
    try:
        yield url
    finally:
        stop_app(proc)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium under Playwright; skips when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need chromium at {CHROMIUM} (apt-get install chromium); "
                    "not found, so skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab (its own session) with a desktop-sized viewport."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the app has finished its current run (the 'running' widget is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout,
    )


def metric_value(page, label: str) -> str:
    """The shown value of the st.metric with this label (first match)."""
    metric = page.locator('[data-testid="stMetric"]', has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def full_page_screenshot(page, path: str | Path, width: int = VIEWPORT["width"]) -> None:
    """Screenshot the whole app: Streamlit scrolls inside its main block, not the
    document, so the viewport is first grown to the main block's full height."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size({"width": width, "height": int(height) + 40})
    page.wait_for_timeout(800)  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)


NAV_LINK = '[data-testid="stSidebarNavLink"]'
# what a page must never show: an uncaught exception (with its traceback) or an error box
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'


def click_nav(page, title: str) -> None:
    """Click the sidebar menu entry of the page titled ``title``, as a user would
    (does not wait for the page's run)."""
    page.locator(NAV_LINK).filter(has_text=re.compile(f"{re.escape(title)}$")).first.click()


def page_problems(page) -> list[str]:
    """The text of every exception element and error box now shown, and any
    visible 'Traceback' (empty when the page is clean)."""
    found = [f"exception: {t[:2000]}" for t in page.locator(EXCEPTION).all_inner_texts()]
    # error boxes of their own (an exception element draws one too)
    found += [f"error box: {t[:500]}" for t in page.evaluate(
        "([box, exc]) => [...document.querySelectorAll(box)]"
        ".filter(e => !e.closest(exc)).map(e => e.innerText)", [ERROR_BOX, EXCEPTION])]
    if not found and page.get_by_text("Traceback").count():
        found.append("'Traceback' shown on the page")
    return found
