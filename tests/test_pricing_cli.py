"""The ``price`` sub-command on the sample market."""

from __future__ import annotations

import pandas as pd
import pytest

from engine import columns as C
from engine.__main__ import main


@pytest.fixture(autouse=True)
def _workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))


def _main(argv):
    return main(argv)


def test_price_command_writes_a_price_list(sample_dir, tmp_path, capsys):
    files = [str(sample_dir / f) for f in ("order_lines.csv", "products.csv", "customers.csv")]
    out = tmp_path / "prices.csv"
    status = _main(
        ["price", *files, "--customers", "3000", "--max-discount", "0.25", "--out", str(out)]
    )
    assert status == 0, capsys.readouterr().err
    prices = pd.read_csv(out, keep_default_na=False, dtype={"segment": str})
    assert tuple(prices.columns) == C.PRICE_LIST_COLUMNS
    assert len(prices) >= 5
    assert (prices["bundle_price"] <= prices["list_total"]).all()
    assert (prices["discount_pct"] <= 25 + 1e-6).all()
    assert "bundle prices written" in capsys.readouterr().out


def test_price_command_rejects_bad_settings(sample_dir, tmp_path, capsys):
    files = [str(sample_dir / "order_lines.csv")]
    status = _main(["price", *files, "--max-discount", "1.5", "--out", str(tmp_path / "p.csv")])
    assert status == 2
    assert "max_discount" in capsys.readouterr().err
