"""The Export page's downloads in a real browser: every download button clicked in
turn, quickly, as an analyst grabbing all the files would (three passes), gives a
finished download whose file is non-empty and reads back (CSV and XLSX with pandas, JSON with
json, TOML with tomllib).

A download button that re-runs the page on click makes the next click's download
get canceled by the rerun; ``on_click="ignore"`` on st.download_button keeps the
page still."""

from __future__ import annotations

import io
import json
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from tests.browser import click_nav, page_problems, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BUTTONS = '[data-testid="stDownloadButton"] button'
MIN_BUTTONS = 6  # price list and offers, each as CSV, XLSX and JSON (the settings TOML besides)
SETTLE_TIMEOUT_MS = 300_000  # a cold encoder, segments, bundles and prices on 2 cores
DOWNLOADS_TIMEOUT_S = 60
ROUNDS = 3  # a canceled download depends on timing: three quick passes


def _parse(name: str, data: bytes):
    """The file read back by its kind; raises when it does not parse."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(io.BytesIO(data))
    if suffix == ".xlsx":
        return pd.read_excel(io.BytesIO(data), engine="openpyxl")
    if suffix == ".json":
        return json.loads(data)
    if suffix == ".toml":
        return tomllib.loads(data.decode("utf-8"))
    raise AssertionError(f"unexpected download {name!r}")


def test_every_download_button_clicked_quickly_downloads_a_file(page, app_url):
    page.goto(app_url)
    page.get_by_text("Dataset in use", exact=True).wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    click_nav(page, "Export")
    page.get_by_role("heading", name="Export", exact=True).wait_for(timeout=SETTLE_TIMEOUT_MS)
    page.locator(BUTTONS).nth(MIN_BUTTONS - 1).wait_for(timeout=SETTLE_TIMEOUT_MS)
    page.wait_for_timeout(1_000)  # the running indicator shows only after a short delay
    wait_idle(page, SETTLE_TIMEOUT_MS)
    assert not page_problems(page), page_problems(page)

    buttons = page.locator(BUTTONS)
    labels = [t.strip().splitlines()[-1] for t in buttons.all_inner_texts()]  # after the icon
    assert len(labels) >= MIN_BUTTONS, labels

    problems: list[str] = []
    for round_ in range(1, ROUNDS + 1):
        problems += [f"round {round_}: {p}" for p in _click_all(page, len(labels))]
        page.wait_for_timeout(1_000)
        wait_idle(page, SETTLE_TIMEOUT_MS)
    assert not problems, f"buttons {labels}:\n" + "\n".join(problems)
    assert not page_problems(page), page_problems(page)


def _click_all(page, n: int) -> list[str]:
    """Click the n download buttons in turn without waiting for the page in between
    (as fast as a user clicks); what went wrong with the downloads (empty if nothing)."""
    downloads = []

    def on_download(download) -> None:
        downloads.append(download)

    page.on("download", on_download)
    try:
        for i in range(n):
            page.locator(BUTTONS).nth(i).click()
        deadline = time.monotonic() + DOWNLOADS_TIMEOUT_S
        while len(downloads) < n and time.monotonic() < deadline:
            page.wait_for_timeout(200)
    finally:
        page.remove_listener("download", on_download)

    names = [d.suggested_filename for d in downloads]
    problems = [] if len(downloads) == n else [f"{n} clicks, {len(downloads)} downloads {names}"]
    for download, name in zip(downloads, names, strict=True):
        failure = download.failure()  # waits until the download has finished
        if failure is not None:
            problems.append(f"{name}: download {failure}")
            continue
        data = Path(download.path()).read_bytes()
        if not data:
            problems.append(f"{name}: empty file")
            continue
        try:
            parsed = _parse(name, data)
        except Exception as err:  # noqa: BLE001 - reported with the file's name
            problems.append(f"{name}: does not parse ({err!r})")
            continue
        if len(parsed) == 0:
            problems.append(f"{name}: parses to nothing")
    if len(set(names)) != len(names):
        problems.append(f"the same file twice: {names}")
    return problems
