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
