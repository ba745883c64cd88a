"""Workspace: datasets survive a new Workspace object, saves are atomic, salt and pseudonyms stable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from engine import columns as C
from engine.data.dataset import Dataset
from engine.workspace import Workspace, safe_name


@dataclass
class _Report:
    """The two things the workspace reads from a ValidationReport."""

    rows_read: int
    set_aside_rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict:
        return {"rows_read": self.rows_read, "set_aside": {"missing_customer": len(self.set_aside_rows)}}


@dataclass
class _Result:
    dataset: Dataset
    report: _Report


def _lines(n_orders: int) -> pd.DataFrame:
    rows = []
    for o in range(n_orders):
        for p in ("A", "B", "C")[: 1 + o % 3]:
            rows.append(
                {
                    C.ORDER_ID: f"o{o}",
                    C.CUSTOMER_ID: f"cust{o % 4}",
                    C.PRODUCT_ID: p,
                    C.QUANTITY: 1 + o,
                    C.UNIT_PRICE: 2.5 if p == "A" else 4.0,
                    C.TIMESTAMP: pd.Timestamp("2024-01-01") + pd.Timedelta(days=o),
                    C.NAME: f"product {p}",
                }
            )
    return pd.DataFrame(rows)


def _result(n_orders: int = 6) -> _Result:
    aside = pd.DataFrame(
        {C.SOURCE_FILE: ["lines.csv"], C.SOURCE_ROW: [7], "reason": ["missing_customer"], C.QUANTITY: [3]}
    )
    return _Result(Dataset.from_frames(_lines(n_orders)), _Report(n_orders * 2, aside))


def test_reload_in_new_workspace_object_gives_equal_frames(tmp_path):
    result = _result()
    Workspace(tmp_path).save("shop", result)

    ws = Workspace(tmp_path)  # as after a server restart
    assert ws.names() == ["shop"]
    assert ws.current == "shop"
    ds, report = ws.load("shop")
    pd.testing.assert_frame_equal(ds.lines, result.dataset.lines)
    pd.testing.assert_frame_equal(ds.products, result.dataset.products)
    pd.testing.assert_frame_equal(ds.customers, result.dataset.customers)
    assert (ds.matrix != result.dataset.matrix).nnz == 0
    assert (ds.baskets != result.dataset.baskets).nnz == 0
    assert report == {"rows_read": 12, "set_aside": {"missing_customer": 1}}
    assert ws.set_aside_rows("shop")[C.SOURCE_ROW].tolist() == [7]
    assert ws.entry("shop")["counts"] == {"lines": 12, "orders": 6, "customers": 4, "products": 3}


def test_sources_are_kept_with_their_sha256(tmp_path):
    src = tmp_path / "orders.csv"
    src.write_bytes(b"InvoiceNo,StockCode\n1,A\n")
    ws = Workspace(tmp_path / "ws")
    ws.save("shop", _result(), sources=[src])
    files = ws.entry("shop")["files"]
    # sha256 of those exact bytes, from `sha256sum`
    assert files == [
        {
            "name": "orders.csv",
            "sha256": "1af1461f56b6de5101879a9eafc407a716ec67532a460f12ca0c36a4984f02bb",
            "bytes": 24,
        }
    ]
    assert ws.source_paths("shop")[0].read_bytes() == src.read_bytes()


def test_crash_mid_save_leaves_previous_dataset_intact(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    ws.save("shop", _result(6))
    before = ws.load("shop")[0].lines

    calls = {"n": 0}
    real = pd.DataFrame.to_parquet

    def crash_on_second(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # lines written, products not: the process dies here
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        ws.save("shop", _result(9))
    monkeypatch.undo()

    again = Workspace(tmp_path)
    pd.testing.assert_frame_equal(again.load("shop")[0].lines, before)
    assert again.entry("shop")["counts"]["orders"] == 6
    # no half-written directory left behind
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [again.entry("shop")["dir"]]


def test_crash_before_catalogue_swap_keeps_old_catalogue(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    ws.save("shop", _result(6))
    real_replace = os.replace

    def fail_on_catalogue(src, dst):
        if str(dst).endswith("catalogue.json"):
            raise OSError("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_catalogue)
    with pytest.raises(OSError, match="killed"):
        ws.save("shop", _result(9))
    monkeypatch.undo()
    assert Workspace(tmp_path).load("shop")[0].n_orders == 6


def test_current_persists_and_unknown_names_are_refused(tmp_path):
    ws = Workspace(tmp_path)
    ws.save("a", _result(3))
    ws.save("b", _result(4), make_current=False)
    assert ws.current == "a"
    ws.set_current("b")
    assert Workspace(tmp_path).current == "b"
    with pytest.raises(KeyError, match="no dataset 'zzz'"):
        ws.set_current("zzz")
    with pytest.raises(ValueError, match="not allowed"):
        ws.save("../evil", _result(3))
    ws.delete("b")
    assert ws.names() == ["a"] and ws.current == "a"


def test_salt_is_stable_and_pseudonyms_hide_ids(tmp_path):
    ws = Workspace(tmp_path)
    ids = ["17850", "13047", "17850"]
    first = ws.pseudonymise(ids)
    again = Workspace(tmp_path)
    assert again.salt == ws.salt and len(ws.salt) == 32
    np.testing.assert_array_equal(again.pseudonymise(ids), first)
    assert first[0] == first[2] and first[0] != first[1]
    assert not set(first) & set(ids)
    assert all(p.startswith("c_") and len(p) == 12 for p in first)
    # a different workspace (another salt) gives other pseudonyms
    assert Workspace(tmp_path / "other").pseudonymise(ids)[0] != first[0]


def test_default_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "env_ws"))
    ws = Workspace()
    assert ws.root == tmp_path / "env_ws"
    assert ws.embeddings_dir.is_dir() and ws.runs_dir.is_dir()


def test_safe_name_from_file_names():
    assert safe_name("Online Retail (2011).xlsx") == "Online_Retail_2011"
    assert safe_name("../../") == "dataset"


def test_concurrent_saves_keep_every_dataset(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    results = {n: _result(3 + n) for n in range(6)}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: Workspace(tmp_path).save(f"d{n}", results[n]), results))
    ws = Workspace(tmp_path)
    assert ws.names() == [f"d{n}" for n in range(6)]
    assert [ws.entry(f"d{n}")["counts"]["orders"] for n in range(6)] == [3, 4, 5, 6, 7, 8]


@pytest.mark.slow
def test_full_online_retail_round_trip(tmp_path, real_full_path):
    from engine.data import load_files

    result = load_files([real_full_path])
    ws = Workspace(tmp_path)
    ws.save("retail", result)
    ds, report = Workspace(tmp_path).load("retail")
    pd.testing.assert_frame_equal(ds.lines, result.dataset.lines)
    pd.testing.assert_frame_equal(ds.products, result.dataset.products)
    assert report["rows_read"] == 541_909
    assert len(ws.set_aside_rows("retail")) == 541_909 - report["rows_kept"]
