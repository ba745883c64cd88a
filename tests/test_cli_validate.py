"""``python -m engine validate``: human and JSON output, mapping and overrides."""

from __future__ import annotations

import json

import pandas as pd

from engine.__main__ import main
from engine.pipeline.cli import parse_maps


def test_json_on_the_real_sample(real_sample_path, capsys):
    assert main(["validate", "--json", str(real_sample_path)]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert err == ""
    assert d["rows_read"] == 10_000
    assert d["rows_kept"] + sum(d["set_aside"].values()) == 10_000
    assert d["set_aside"]["cancelled"] == 100
    assert set(d["set_aside"]) >= {"return", "cancelled", "non_merchandise", "missing_customer",
                                   "bad_price", "duplicate", "bad_date", "bad_quantity"}
    assert d["mapping"][real_sample_path.name]["InvoiceNo"] == "order_id"
    assert d["errors"] == []
    assert {"file", "column", "rule", "rows", "hint", "message"} <= set(d["warnings"][0])


def test_human_report_lists_counts_and_codes(real_sample_path, capsys):
    assert main(["validate", str(real_sample_path)]) == 0
    out = capsys.readouterr().out
    assert "order lines read: 10,000" in out
    assert "cancelled" in out and "POSTAGE" in out and "--keep-non-merchandise" in out


def test_keep_non_merchandise_flag(real_sample_path, capsys):
    main(["validate", "--json", str(real_sample_path)])
    base = json.loads(capsys.readouterr().out)
    assert main(["validate", "--json", str(real_sample_path),
                 "--keep-non-merchandise", "POST", "DOT"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["set_aside"]["non_merchandise"] == base["set_aside"]["non_merchandise"] - 18 - 6


def test_map_flag_maps_foreign_columns(tmp_path, capsys):
    path = tmp_path / "bestellungen.csv"
    pd.DataFrame({"Nr": ["1", "1", "2"], "Artikel": ["A1", "B2", "A1"], "Menge": ["1", "2", "3"],
                  "Preis": ["2.5", "1.0", "2.5"], "Datum": ["2011-01-01"] * 3,
                  "Kunde": ["7", "7", "8"]}).to_csv(path, index=False)
    args = ["validate", "--json", str(path)]
    assert main(args) == 2
    capsys.readouterr()
    for m in ["Nr=order_id", "Artikel=product_id", "Menge=quantity", "bestellungen.csv:Preis=unit_price",
              "Datum=timestamp", "Kunde=customer_id"]:
        args += ["--map", m]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["rows_kept"] == 3 and d["summary"]["n_customers"] == 2
    assert d["mapping"]["bestellungen.csv"]["Preis"] == "unit_price"


def test_parse_maps():
    assert parse_maps(["a.csv:Nr=order_id", "Menge=quantity"]) == {
        "a.csv": {"Nr": "order_id"}, "*": {"Menge": "quantity"}}


def test_bad_map_argument_exits_2(real_sample_path, capsys):
    assert main(["validate", str(real_sample_path), "--map", "nonsense"]) == 2
    assert "--map" in capsys.readouterr().err


def test_map_file_json(tmp_path, capsys):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"Nr": ["1", "2"], "Artikel": ["A1", "B2"], "Menge": ["1", "2"],
                  "Preis": ["2.5", "1.0"], "Datum": ["2011-01-01", "2011-01-02"],
                  "Kunde": ["7", "8"]}).to_csv(path, index=False)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"orders.csv": {
        "Nr": "order_id", "Artikel": "product_id", "Menge": "quantity", "Preis": "unit_price",
        "Datum": "timestamp", "Kunde": "customer_id"}}))
    assert main(["validate", "--json", "--map-file", str(mapping), str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["rows_kept"] == 2
    mapping.write_text("[1, 2]")
    assert main(["validate", "--map-file", str(mapping), str(path)]) == 2
    assert "mapping.json" in capsys.readouterr().err
