"""Ta-Feng grocery in a real browser: a zipped slice of it uploaded on the Data page,
the mapping the page proposes (line totals, line costs, no order id), the progress
while it loads and the report after, then Preferences, Bundles, Pricing and Export on
it, each with its content and no error. The catalogue is codes only, so the text
encoder is off. The data's licence keeps it out of the repository: the test makes a
slice of ../shared/data/ta_feng.csv.zip and skips where it is absent."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator

import pytest

from tests.browser import click_nav, metric_value, page_problems, start_app, stop_app, wait_idle
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TA_FENG = SHARED_DATA / "ta_feng.csv.zip"
LINES = 20_000
SLICE = "ta_feng_slice.csv.zip"
NAME = "ta_feng_slice"  # the name the page proposes for it
# a chart in view: the Pricing page keeps its demand-fit chart in a closed expander
VISIBLE_CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot:visible'
# the mapping the page proposes: their column -> canonical
MAPPING = {
    "TRANSACTION_DT": "timestamp",
    "SALES_PRICE": "line_total",
    "AMOUNT": "quantity",
    "ASSET": "cost",
    "CUSTOMER_ID": "customer_id",
}
SETTLE_MS = 300_000  # segments, bundles and prices computed on the slice, on 2 cores


@pytest.fixture(scope="module")
def slice_zip(tmp_path_factory):
    """The first 20,000 lines, the header with its byte-order mark, zipped as the original."""
    if not TA_FENG.exists():
        pytest.skip(f"Ta-Feng not found at {TA_FENG}: its licence keeps it out of the "
                    "repository (it lives in ../shared/data beside the checkout)")
    with zipfile.ZipFile(TA_FENG) as z:
        member = z.namelist()[0]
        text = z.read(member)
    head = b"\n".join(text.split(b"\n")[: LINES + 1]) + b"\n"
    assert head.startswith(b"\xef\xbb\xbf")  # the export's own BOM, kept
    path = tmp_path_factory.mktemp("ta_feng_browser") / SLICE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, head)
    return path


@pytest.fixture
def fresh_url(tmp_path, browser, slice_zip) -> Iterator[str]:  # chromium and data first
    """A server of its own, with its own workspace (it opens on the sample market)."""
    proc, url = start_app(tmp_path / "ws")
    try:
        yield url
    finally:
        stop_app(proc)


def _selectbox_value(page, column: str) -> str:
    """What the mapping selectbox of ``column`` shows (its label left out)."""
    label = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(
        rf"^\s*{re.escape(column)} →\s*$"))
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has=label)
    assert box.count() == 1, f"{box.count()} selectboxes for {column}"
    text = box.inner_text().replace(label.inner_text(), "", 1)
    inputs = box.locator("input")
    if inputs.count():
        text += " " + (inputs.first.input_value() or "")
    return text.strip()


def _settle(page, title: str) -> None:
    """Wait until the page titled ``title`` has finished its run."""
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=SETTLE_MS)
    page.wait_for_timeout(1_000)  # the running indicator shows only after a short delay
    wait_idle(page, SETTLE_MS)


# records whether a progress bar saying "Loading" was ever on the page: the load of a
# 20,000-line slice may take less time than a poll between two checks
WATCH_PROGRESS = """() => {
  window.__sawLoading = false;
  const look = () => {
    for (const bar of document.querySelectorAll('[data-testid="stProgress"]')) {
      if (bar.innerText.includes('Loading')) { window.__sawLoading = true; }
    }
  };
  new MutationObserver(look).observe(document.body,
    {childList: true, subtree: true, characterData: true});
  look();
}"""


def test_ta_feng_slice_uploads_loads_and_every_page_shows_it(page, fresh_url, slice_zip):
    page.set_default_timeout(60_000)
    page.goto(fresh_url)
    wait_idle(page, 120_000)
    page.get_by_text("Validation report · sample").wait_for(timeout=120_000)

    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(slice_zip))
    page.get_by_text("Check the files").wait_for()
    page.get_by_text(f"{SLICE} · order lines · {LINES:,} rows").wait_for()
    wait_idle(page)
    shown = {column: _selectbox_value(page, column) for column in MAPPING}
    assert shown == MAPPING, shown
    assert page_problems(page) == []

    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text(f"Validation report · {NAME}").wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    assert page.evaluate("() => window.__sawLoading"), "no progress bar while loading"
    assert metric_value(page, "Rows read") == f"{LINES:,}"
    kept = int(metric_value(page, "Rows kept").replace(",", ""))
    assert 19_000 < kept <= LINES
    assert int(metric_value(page, "Orders").replace(",", "")) > 1_000
    notes = page.locator('[data-testid="stAlert"]', has_text="How the files were read")
    notes.wait_for()
    for said in ("unit price = the line's total / its quantity",
                 "an order is a customer's lines on one day", "unit cost = cost / quantity"):
        assert said in notes.inner_text(), said
    page.get_by_text(f"Loaded {NAME} from {SLICE}").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')"
        ".length >= 4", timeout=60_000)
    assert page_problems(page) == []

    # each page on the new dataset: its own content, and no error, exception or traceback
    seen: list[str] = []
    click_nav(page, "Preferences")
    _settle(page, "Preferences")
    page.get_by_text("Text encoder off").first.wait_for()
    page.locator('[data-testid="stMetric"]', has_text="Segments").first.wait_for()
    page.locator(VISIBLE_CHART).first.wait_for()
    seen += [f"Preferences: {p}" for p in page_problems(page)]

    click_nav(page, "Bundles")
    _settle(page, "Bundles")
    page.get_by_role("heading", name=re.compile("Bundles for segment")).first.wait_for()
    page.locator(VISIBLE_CHART).first.wait_for()
    seen += [f"Bundles: {p}" for p in page_problems(page)]

    click_nav(page, "Pricing")
    _settle(page, "Pricing")
    page.locator('[data-testid="stMetric"]', has_text="Profit per period").first.wait_for()
    page.locator(VISIBLE_CHART).first.wait_for()
    seen += [f"Pricing: {p}" for p in page_problems(page)]

    click_nav(page, "Export")
    _settle(page, "Export")
    page.get_by_role("heading", name="Bundle price list").wait_for()
    bundles = int(metric_value(page, "Bundles").replace(",", ""))
    assert bundles >= 1
    page.get_by_role("button", name="Price list CSV").wait_for()
    seen += [f"Export: {p}" for p in page_problems(page)]
    assert not seen, "\n\n".join(seen)
