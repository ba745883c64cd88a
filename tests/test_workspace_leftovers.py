"""Opening a workspace removes the .tmp-* leftovers of killed saves, and only those."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from engine import columns as C
from engine.data.dataset import Dataset
from engine.files import atomic_write
from engine.workspace import STALE_TMP_S, Workspace


class _Report:
    set_aside_rows = pd.DataFrame()

    def to_dict(self) -> dict:
        return {}


class _Result:
    report = _Report()

    def __init__(self) -> None:
        lines = pd.DataFrame(
            {
                C.ORDER_ID: ["o1", "o1", "o2"],
                C.CUSTOMER_ID: ["c1", "c1", "c2"],
                C.PRODUCT_ID: ["A", "B", "A"],
                C.QUANTITY: [1, 2, 1],
                C.UNIT_PRICE: [2.5, 4.0, 2.5],
                C.TIMESTAMP: pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
                C.NAME: ["apple", "bread", "apple"],
            }
        )
        self.dataset = Dataset.from_frames(lines)


def _age(path: Path, seconds: float) -> None:
    """Set the mtime of ``path`` and everything under it ``seconds`` into the past."""
    then = time.time() - seconds
    for sub in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(sub, (then, then))


def _killed_save(root: Path) -> tuple[Path, Path, Path]:
    """What a save killed half-way leaves: a dataset folder, a catalogue and a cache tmp file."""
    folder = Path(tempfile.mkdtemp(dir=root / "datasets", prefix=".tmp-"))
    (folder / "lines.parquet").write_bytes(b"half a parquet file")
    (folder / "sources").mkdir()
    (folder / "sources" / "orders.csv").write_bytes(b"order_id,product_id\n")
    fd, catalogue_tmp = tempfile.mkstemp(dir=root, prefix=".tmp-catalogue.json-")
    os.close(fd)
    fd, shard_tmp = tempfile.mkstemp(dir=root / "embeddings", prefix=".tmp-shard-1.npz-")
    os.close(fd)
    return folder, Path(catalogue_tmp), Path(shard_tmp)


def test_stale_leftovers_are_removed_on_open_and_datasets_kept(tmp_path, caplog):
    ws = Workspace(tmp_path)
    ws.save("shop", _Result(), sources=[])
    salt = ws.salt
    before = Workspace(tmp_path).load("shop")[0].lines
    leftovers = _killed_save(tmp_path)
    for path in leftovers:
        _age(path, STALE_TMP_S + 60)

    with caplog.at_level(logging.INFO, logger="engine.workspace"):
        reopened = Workspace(tmp_path)

    for path in leftovers:
        assert not path.exists(), path
        assert path.name in caplog.text
    pd.testing.assert_frame_equal(reopened.load("shop")[0].lines, before)
    assert reopened.names() == ["shop"]
    assert reopened.salt == salt
    (folder,) = [p for p in (tmp_path / "datasets").iterdir()]
    assert folder.name.startswith("shop-")
    assert (tmp_path / ".lock").exists()


def test_live_saves_are_kept(tmp_path):
    Workspace(tmp_path)
    fresh = _killed_save(tmp_path)  # just written: a save in progress elsewhere
    # an old folder into which a live save is still writing
    writing = Path(tempfile.mkdtemp(dir=tmp_path / "datasets", prefix=".tmp-"))
    (writing / "lines.parquet").write_bytes(b"x")
    _age(writing, STALE_TMP_S + 60)
    (writing / "products.parquet").write_bytes(b"just now")

    assert Workspace(tmp_path).remove_stale_temporaries() == []
    for path in (*fresh, writing):
        assert path.exists(), path


def test_a_save_survives_its_leftovers_being_swept(tmp_path):
    ws = Workspace(tmp_path)
    ws.save("shop", _Result())
    atomic_write(tmp_path / "note.txt", b"kept")
    stale = _killed_save(tmp_path)
    for path in stale:
        _age(path, STALE_TMP_S + 60)
    reopened = Workspace(tmp_path)
    reopened.save("shop", _Result())
    assert reopened.names() == ["shop"]
    assert (tmp_path / "note.txt").read_bytes() == b"kept"
    assert not list(tmp_path.glob(".tmp-*")) and not list((tmp_path / "datasets").glob(".tmp-*"))
