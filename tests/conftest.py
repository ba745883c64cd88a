"""Shared fixtures: paths to the committed sample market and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# browser fixtures registered once here, so the session-scoped chromium starts once
from tests.browser import app_url, browser, page  # noqa: F401,E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_SAMPLE = ROOT / "tests" / "data" / "online_retail_sample.csv"
REAL_FULL = SHARED_DATA / "online_retail.parquet"


@pytest.fixture(scope="session")
def real_sample_path() -> Path:
    """First 10,000 lines of UCI Online Retail, committed (CC BY 4.0)."""
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def real_full_path() -> Path:
    """The whole UCI Online Retail set; only beside the checkout, not committed."""
    if not REAL_FULL.exists():
        pytest.skip(f"full Online Retail data not found at {REAL_FULL} (lives in ../shared/data)")
    return REAL_FULL


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


def app_on_page(tmp_path_factory, page_path: str):
    """An AppTest of the app switched to ``page_path``, for a module-scoped fixture
    (``yield from``). The Pricing and Export tests share one workspace per session,
    so the embedding cache and the cached segments, bundles and prices are reused
    (the encoder is ~15 s cold)."""
    from streamlit.testing.v1 import AppTest

    mp = pytest.MonkeyPatch()
    shared = tmp_path_factory.getbasetemp() / "pages_workspace"
    shared.mkdir(exist_ok=True)
    mp.setenv("ENGINE_WORKSPACE", str(shared))
    mp.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run(timeout=180)  # first start: sample market, encoder, segments, bundles, prices
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(page_path).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    yield at
    mp.undo()
