"""On-disk cache of embeddings keyed by sha256(model identity + text).

Storage: ``shard-*.npz`` files in one directory, each holding ``keys`` (hex
digests) and ``vectors`` (float32, one row per key). Every write goes to a
temporary file first and is moved into place with ``os.replace``, so a crash
leaves either the old files or the new one, never half of one. A shard that
cannot be read (truncated, corrupt, wrong shapes) is logged, deleted and
ignored: its texts are simply encoded again. Many small shards are merged
into one when there are more than ``max_shards``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.files import atomic_write

log = logging.getLogger(__name__)

_SHARD_GLOB = "shard-*.npz"


def cache_key(identity: str, text: str) -> str:
    """Hex sha256 of the model identity and the text, separated by a NUL."""
    return hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()


def cache_keys(identity: str, texts: Sequence[str]) -> list[str]:
    return [cache_key(identity, t) for t in texts]


class EmbeddingCache:
    """Vectors on disk by key; safe to share between runs of the same process or others."""

    def __init__(self, directory: str | os.PathLike, max_shards: int = 16) -> None:
        self.directory = Path(directory)
        self.max_shards = max_shards
        # shard path -> (mtime_ns, size, keys, vectors); shards never change once written
        self._loaded: dict[Path, tuple[int, int, np.ndarray, np.ndarray]] = {}

    def _shards(self) -> list[tuple[Path, np.ndarray, np.ndarray]]:
        if not self.directory.is_dir():
            return []
        shards = []
        for path in sorted(self.directory.glob(_SHARD_GLOB)):
            try:
                st = path.stat()
            except FileNotFoundError:  # merged away by another writer meanwhile
                continue
            hit = self._loaded.get(path)
            if hit is None or hit[:2] != (st.st_mtime_ns, st.st_size):
                arrays = self._read(path)
                if arrays is None:
                    continue
                hit = (st.st_mtime_ns, st.st_size, *arrays)
                self._loaded[path] = hit
            shards.append((path, hit[2], hit[3]))
        return shards

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
            if vectors.ndim != 2 or len(keys) != len(vectors) or keys.ndim != 1:
                raise ValueError(f"keys {keys.shape} do not match vectors {vectors.shape}")
            if not np.isfinite(vectors).all():
                raise ValueError("non-finite vectors")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("ignoring unreadable embedding cache file %s (%s); removing it", path, err)
            path.unlink(missing_ok=True)
            return None
        return keys.astype(str), vectors.astype(np.float32, copy=False)

    def get_many(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask (n,), vectors (n, d)); rows not found are zero.

        ``d`` is the width of the vectors found (all keys of one call should
        belong to one model); 0 when nothing was found.
        """
        n = len(keys)
        found = np.zeros(n, dtype=bool)
        if n == 0:
            return found, np.zeros((0, 0), dtype=np.float32)
        wanted = {k: i for i, k in enumerate(keys)}
        hits: list[tuple[np.ndarray, np.ndarray]] = []  # (positions in keys, vectors)
        dim = None
        for _, shard_keys, vectors in reversed(self._shards()):  # newest first
            pos = np.fromiter((wanted.get(k, -1) for k in shard_keys), np.int64, len(shard_keys))
            sel = (pos >= 0) & ~found[np.maximum(pos, 0)]
            if not sel.any():
                continue
            if dim is None:
                dim = vectors.shape[1]
            elif vectors.shape[1] != dim:
                raise ValueError(f"cached vectors of widths {dim} and {vectors.shape[1]} mixed")
            hits.append((pos[sel], vectors[sel]))
            found[pos[sel]] = True
        out = np.zeros((n, dim or 0), dtype=np.float32)
        for pos, vectors in hits:
            out[pos] = vectors
        # a key asked twice is found at its last position only; fill the others
        if len(wanted) < n:
            for i, k in enumerate(keys):
                j = wanted[k]
                if j != i and found[j]:
                    out[i], found[i] = out[j], True
        return found, out

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per key (a new shard, written atomically)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"need one row per key: {len(keys)} keys, vectors {vectors.shape}")
        if len(keys) == 0:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write(self._new_shard_path(), np.asarray(keys), vectors)
        if len(list(self.directory.glob(_SHARD_GLOB))) > self.max_shards:
            self.compact()

    def compact(self) -> None:
        """Merge the shards into one per vector width, keeping the newest vector of each key."""
        by_width: dict[int, list[tuple[Path, np.ndarray, np.ndarray]]] = {}
        for shard in self._shards():
            by_width.setdefault(shard[2].shape[1], []).append(shard)
        for shards in by_width.values():
            if len(shards) < 2:
                continue
            keys = np.concatenate([k for _, k, _ in shards])
            vectors = np.concatenate([v for _, _, v in shards])
            # np.unique keeps the first occurrence: reverse so the newest shard wins
            _, first = np.unique(keys[::-1], return_index=True)
            keep = len(keys) - 1 - np.sort(first)
            merged = self._new_shard_path()
            self._write(merged, keys[keep], vectors[keep])
            for path, _, _ in shards:
                path.unlink(missing_ok=True)
                self._loaded.pop(path, None)

    def _new_shard_path(self) -> Path:
        # names sort by creation time, so "newest wins" can follow name order
        return self.directory / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"

    def _write(self, path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, keys=keys.astype(str), vectors=vectors)
        atomic_write(path, buf.getvalue())

    def __len__(self) -> int:
        return sum(len(k) for _, k, _ in self._shards())
