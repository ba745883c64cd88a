"""The ``bundles`` command: the bundles ``run`` would offer, and clean failures."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.__main__ import main


@pytest.fixture(autouse=True)
def _workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))


def _run(argv: list[str]) -> int:
    return main(argv)


def _orders(tmp_path):
    # customers 1-3 buy tea with a mug; customers 4-6 buy soap with a towel
    rows = []
    for c in range(1, 7):
        items = ["TEA", "MUG"] if c <= 3 else ["SOAP", "TOWEL"]
        for o in range(3):
            for item in items + (["PEN"] if o == 0 else []):
                rows.append((f"{c}{o}", f"C{c}", item, 1, 2.5, f"2024-01-0{o + 1} 10:00"))
    frame = pd.DataFrame(
        rows, columns=["order_id", "customer_id", "product_id", "quantity", "unit_price", "timestamp"]
    )
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    return path


def test_bundles_command_prints_json_with_each_segments_bundles(tmp_path, capsys):
    path = _orders(tmp_path)
    out = tmp_path / "bundles.csv"
    code = _run(["bundles", str(path), "--segments", "2", "--kmax", "2", "--per-segment", "1",
                 "--json", "--out", str(out)])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["bundles"]
    assert sorted(r["product_ids"] for r in rows) == ["MUG + TEA", "SOAP + TOWEL"]
    assert len(pd.read_csv(out)) == 2


def test_bundles_command_bad_settings_exit_2_with_the_field(tmp_path, capsys):
    path = _orders(tmp_path)
    assert _run(["bundles", str(path), "--kmin", "4", "--kmax", "3"]) == 2
    assert "kmax" in capsys.readouterr().err
    assert _run(["bundles", str(path), "--segments", "2", "--anchor", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err
