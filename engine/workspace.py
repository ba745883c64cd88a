"""Where datasets, embeddings and runs live on disk, with atomic writes.

Layout under the root (``ENGINE_WORKSPACE``, else ``./.workspace``)::

    catalogue.json            {"current": name, "datasets": {name: entry}}
    salt                      random hex, created once, never regenerated
    datasets/<name>-<token>/  lines/products/customers/set_aside_rows.parquet,
                              sources/<file> (the uploaded bytes, for reloads)
    embeddings/               the encoder's on-disk cache
    runs/                     pipeline outputs

A save writes a fresh ``<name>-<token>`` directory, then swaps the catalogue
file in with ``os.replace``; the catalogue is the only pointer to a dataset,
so a crash at any point before that swap leaves the previous dataset in use
and intact. Directories no longer referenced are removed afterwards.

A save killed half-way leaves its temporary ``.tmp-*`` folder (in
``datasets/``) or file (``atomic_write``, the salt; at the root and in
``embeddings/``) behind. Opening a workspace removes those that nothing has
written to for ``STALE_TMP_S`` seconds (the newest mtime of the entry and
everything inside it): a live save keeps touching its entry, so it is kept,
whichever process, container or host it runs in. The rule needs no lock and
no pid, so it also covers leftovers of older versions; its worst case, a
writer stalled longer than that, is a save that fails, never a broken
dataset (the catalogue still points at the previous one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import columns as C
from engine.data.dataset import Dataset
from engine.files import atomic_write

log = logging.getLogger(__name__)

_FRAMES = ("lines", "products", "customers", "set_aside_rows")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TMP_GLOB = ".tmp-*"  # what tempfile.mkdtemp/mkstemp and atomic_write name their temporaries
STALE_TMP_S = 600.0  # a temporary untouched this long belongs to no live save


def default_root() -> Path:
    """``ENGINE_WORKSPACE`` if set, else ``./.workspace``."""
    return Path(os.environ.get("ENGINE_WORKSPACE") or ".workspace")


def safe_name(text: str) -> str:
    """A dataset name made from free text (e.g. a file name): letters, digits, ``_.-``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(text)).stem).strip("._-")[:64]
    return name or "dataset"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source_bytes(source: Any) -> tuple[str, bytes]:
    """(file name, bytes) of a path or of an object with ``name`` and ``data`` (InputFile)."""
    if isinstance(source, str | Path):
        path = Path(source)
        return path.name, path.read_bytes()
    return Path(source.name).name, bytes(source.data)


def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=str).encode("utf-8"))


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame; object columns with mixed types (set-aside raw values) become text."""
    try:
        frame.to_parquet(path, index=False)
    except (TypeError, ValueError, ArithmeticError):
        fixed = frame.copy()
        for col in fixed.select_dtypes(include="object").columns:
            fixed[col] = fixed[col].map(lambda v: None if v is None or v is pd.NA else str(v))
        fixed.to_parquet(path, index=False)


def _newest_mtime_and_size(path: Path) -> tuple[float, int]:
    """Latest mtime of ``path`` and everything under it, and their total size in bytes."""
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return st.st_mtime, st.st_size
    newest, size = st.st_mtime, 0
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(parent, name))
            except FileNotFoundError:
                continue
            newest = max(newest, st.st_mtime)
            size += st.st_size if name in files else 0
    return newest, size


class Workspace:
    """The analyst's datasets on disk.

    ``save`` and ``load`` take and give what the data stage produces
    (``LoadResult``: a Dataset plus a validation report); ``current`` is the
    dataset in use, remembered across restarts.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        (self.root / "datasets").mkdir(parents=True, exist_ok=True)
        self.embeddings_dir.mkdir(exist_ok=True)
        self.runs_dir.mkdir(exist_ok=True)
        self._salt: str | None = None
        self.remove_stale_temporaries()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # --- places -----------------------------------------------------------
    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def _catalogue_path(self) -> Path:
        return self.root / "catalogue.json"

    # --- leftovers --------------------------------------------------------
    def remove_stale_temporaries(self, older_than_s: float = STALE_TMP_S) -> list[Path]:
        """Remove ``.tmp-*`` leftovers of killed saves; returns what was removed.

        Only entries whose newest mtime (their own or anything inside) is more
        than ``older_than_s`` seconds old: see the module docstring. Called
        when the workspace is opened; failures are logged, never raised.
        """
        removed = []
        now = time.time()
        for folder in (self.root, self.root / "datasets", self.embeddings_dir):
            for entry in folder.glob(_TMP_GLOB):
                try:
                    newest, size = _newest_mtime_and_size(entry)
                    if now - newest < older_than_s:
                        continue
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                except FileNotFoundError:  # its writer finished or removed it meanwhile
                    continue
                except OSError as err:
                    log.warning("could not remove leftover %s: %s", entry, err)
                    continue
                log.info(
                    "removed %s, left by an interrupted save (%.1f MB, untouched for %.0f min)",
                    entry, size / 1e6, (now - newest) / 60,
                )
                removed.append(entry)
        return removed

    # --- catalogue --------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """Serialise catalogue read-modify-write between sessions and processes."""
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _catalogue(self) -> dict:
        try:
            return json.loads(self._catalogue_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"current": None, "datasets": {}}

    def names(self) -> list[str]:
        """Saved dataset names, sorted."""
        return sorted(self._catalogue()["datasets"])

    def entry(self, name: str) -> dict:
        """The catalogue entry of a dataset: files with sha256, created time, counts."""
        datasets = self._catalogue()["datasets"]
        if name not in datasets:
            raise KeyError(f"no dataset {name!r} in workspace {self.root}; saved: {sorted(datasets)}")
        return datasets[name]

    @property
    def current(self) -> str | None:
        """The dataset in use, or None when the workspace is empty."""
        cat = self._catalogue()
        name = cat.get("current")
        return name if name in cat["datasets"] else None

    def set_current(self, name: str) -> None:
        with self._locked():
            cat = self._catalogue()
            if name not in cat["datasets"]:
                raise KeyError(
                    f"no dataset {name!r} in workspace {self.root}; saved: {sorted(cat['datasets'])}"
                )
            cat["current"] = name
            _write_json_atomic(self._catalogue_path, cat)

    # --- datasets ---------------------------------------------------------
    def save(
        self,
        name: str,
        result: Any,
        sources: Sequence[Any] = (),
        keep_non_merchandise: Iterable[str] = (),
        make_current: bool = True,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Save a ``LoadResult`` under ``name``, atomically replacing any earlier one.

        ``sources`` are the input files (paths or InputFile) whose bytes and
        sha256 are kept, so the dataset can be reloaded with another mapping;
        ``options`` (plain values: the loader's ``orders``, ``keep_outliers``) are
        kept in the entry as they are, for that reload.
        """
        if not _NAME_RE.match(name):
            raise ValueError(
                f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '_', '.', '-'"
            )
        tmp = Path(tempfile.mkdtemp(dir=self.root / "datasets", prefix=".tmp-"))
        try:
            files = self._write_dataset(tmp, result, sources)
            final = self.root / "datasets" / f"{name}-{secrets.token_hex(4)}"
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report = result.report.to_dict()
        ds = result.dataset
        with self._locked():
            old = self._commit(name, final, files, keep_non_merchandise, ds, report, make_current,
                               options)
        if old and old != final.name:
            shutil.rmtree(self.root / "datasets" / old, ignore_errors=True)
        log.info("saved dataset %r to %s", name, final)

    def _commit(self, name, final, files, keep, ds, report, make_current,
                options=None) -> str | None:
        """Point the catalogue at the new folder; returns the folder it replaced."""
        cat = self._catalogue()
        old = cat["datasets"].get(name, {}).get("dir")
        cat["datasets"][name] = {
            "name": name,
            "dir": final.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            "keep_non_merchandise": sorted(map(str, keep)),
            "options": dict(options or {}),
            "counts": {
                "lines": len(ds.lines),
                "orders": int(ds.n_orders),
                "customers": int(ds.n_customers),
                "products": int(ds.n_products),
            },
            "report": report,
        }
        if make_current or cat.get("current") not in cat["datasets"]:
            cat["current"] = name
        _write_json_atomic(self._catalogue_path, cat)  # the commit point
        return old

    def _write_dataset(self, folder: Path, result: Any, sources: Sequence[Any]) -> list[dict]:
        ds: Dataset = result.dataset
        lines = ds.lines.drop(columns=[C.CUSTOMER_IDX, C.PRODUCT_IDX], errors="ignore")
        set_aside = getattr(result.report, "set_aside_rows", None)
        if set_aside is None:
            set_aside = pd.DataFrame()
        frames = {
            "lines": lines,
            "products": ds.products,
            "customers": ds.customers,
            "set_aside_rows": set_aside,
        }
        for key, frame in frames.items():
            _to_parquet(frame, folder / f"{key}.parquet")
        files = []
        if sources:
            (folder / "sources").mkdir()
        for source in sources:
            fname, data = _source_bytes(source)
            (folder / "sources" / fname).write_bytes(data)
            files.append({"name": fname, "sha256": _sha256(data), "bytes": len(data)})
        return files

    def load(self, name: str) -> tuple[Dataset, dict]:
        """The saved dataset and its report (as ``report.to_dict()`` gave it)."""
        entry = self.entry(name)
        folder = self.root / "datasets" / entry["dir"]
        lines = pd.read_parquet(folder / "lines.parquet")
        products = pd.read_parquet(folder / "products.parquet")
        customers = pd.read_parquet(folder / "customers.parquet")
        return Dataset.from_frames(lines, products=products, customers=customers), entry["report"]

    def set_aside_rows(self, name: str) -> pd.DataFrame:
        """The lines set aside when ``name`` was loaded (empty frame when none)."""
        folder = self.root / "datasets" / self.entry(name)["dir"]
        return pd.read_parquet(folder / "set_aside_rows.parquet")

    def source_paths(self, name: str) -> list[Path]:
        """The saved input files of ``name``, for reloading with another mapping."""
        entry = self.entry(name)
        folder = self.root / "datasets" / entry["dir"] / "sources"
        return [folder / f["name"] for f in entry["files"]]

    def delete(self, name: str) -> None:
        with self._locked():
            cat = self._catalogue()
            entry = cat["datasets"].pop(name, None)
            if entry is None:
                return
            if cat.get("current") == name:
                cat["current"] = next(iter(sorted(cat["datasets"])), None)
            _write_json_atomic(self._catalogue_path, cat)
        shutil.rmtree(self.root / "datasets" / entry["dir"], ignore_errors=True)

    # --- privacy ----------------------------------------------------------
    @property
    def salt(self) -> str:
        """Random salt of this workspace: created on first use, then read back, never renewed."""
        if self._salt is None:
            path = self.root / "salt"
            if not path.exists():
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-salt-")
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(16))
                try:
                    # link() fails if another process created it first: theirs wins
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                finally:
                    os.unlink(tmp)
            self._salt = path.read_text().strip()
        return self._salt

    def pseudonymise(self, ids: Iterable[Any], prefix: str = "c_") -> np.ndarray:
        """Salted-hash pseudonyms: ``prefix`` + the first 10 hex digits of sha256(salt + id)."""
        salt = self.salt
        out = [
            prefix + hashlib.sha256((salt + str(i)).encode("utf-8")).hexdigest()[:10]
            for i in ids
        ]
        return np.array(out, dtype=object)
