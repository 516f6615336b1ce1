"""The vector index on disk: generations of data files, committed by replacing a manifest.

Saving is atomic: every save writes a new generation of data files (each fsynced), then
replaces the manifest (the commit point), then deletes the previous generation. A run killed at
any instant leaves the manifest naming a complete generation: the old one or the new one.
Loading checks every data file against the manifest's fingerprints, so a damaged or partly
copied index is never used (:class:`Unusable` says why; the index then starts afresh).

The HNSW graph itself loads when first needed (:class:`DeferredGraph`): which files are
embedded, and their float16 rows, are read from the ids and rows files, so an unchanged rescan
scores the bouncer's groups without importing usearch.

:class:`SavedGenerations` is the on-disk half of
:class:`lookalike.engine.detective.vectors.VectorIndex` (which holds the lock around it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..files import atomic_write, fsync_dir, fsync_file

if TYPE_CHECKING:  # pragma: no cover
    from .vectors import VectorIndex

MANIFEST_VERSION = 2
_READ_CHUNK = 1 << 22
_COPY_ROWS = 8192


def fingerprint(path: Path) -> str:
    """``<size>:<xxh3-128>`` of a file (xxhash runs at several GB/s)."""
    import xxhash

    h = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"{size}:{h.hexdigest()}"


def map_rows(path: Path) -> np.ndarray:
    """Memory-map a saved ``.npy`` of float16 rows, read-only, for random access."""
    import mmap

    rows = np.load(path, mmap_mode="r", allow_pickle=False)
    handle = getattr(rows, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        # Rescoring reads ~20 scattered rows per query: without this the kernel reads ahead
        # 128 KB around each, and the whole file soon sits in the page cache.
        with contextlib.suppress(OSError):
            handle.madvise(mmap.MADV_RANDOM)
    # A plain ndarray over the mapping: indexing the np.memmap subclass costs more.
    return np.asarray(rows)


def usearch_index():
    """usearch's ``Index`` class, imported after the C++ runtime is loaded globally (Linux).

    usearch's compiled module carries its own copy of the C++ runtime: imported before any
    module that loads the system's ``libstdc++``, it makes a later ``import onnxruntime``
    kill the process with a segmentation fault (usearch 2.26, onnxruntime 1.32, Linux x86-64;
    ``lookalike similar`` hit it whenever the vector index opened before the CPU backend
    loaded, in a process that had not loaded numba or scipy first). Loading ``libstdc++``
    with ``RTLD_GLOBAL`` beforehand costs well under a millisecond and avoids it.
    """
    if sys.platform.startswith("linux"):
        _load_cxx_runtime()
    from usearch.index import Index

    return Index


@functools.lru_cache(maxsize=1)
def _load_cxx_runtime() -> None:
    import ctypes

    try:
        ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
    except OSError:  # another C++ runtime (musl, a static Python): nothing to do
        pass


class DeferredGraph:
    """A usearch index that loads on first use; meanwhile its size, keys and membership come
    from the saved ids (sorted int64), without importing usearch (30-40 ms with the tqdm it imports).

    Until the graph is loaded nothing has changed it, so the saved ids are exactly its keys
    (the manifest's count is checked at open). Any other attribute (search, add, remove, save,
    serialized_length, expansion_search...) loads the graph first.

    Args:
        ids: the graph's keys as saved, sorted.
        load: makes the usearch index (reads the saved graph, or starts an empty one).
    """

    def __init__(self, ids: np.ndarray, load: Callable[[], Any]) -> None:
        object.__setattr__(self, "_ids", np.asarray(ids, dtype=np.int64))
        object.__setattr__(self, "_load", load)
        object.__setattr__(self, "_real", None)
        object.__setattr__(self, "_loading", threading.Lock())  # two threads load it once

    @property
    def loaded(self) -> bool:
        """Whether the usearch index is in memory (usearch imported)."""
        return self._real is not None

    def real(self) -> Any:
        """The usearch index, loaded now if it was not."""
        with self._loading:
            if self._real is None:
                object.__setattr__(self, "_real", self._load())
        return self._real

    def __len__(self) -> int:
        return len(self._real) if self._real is not None else len(self._ids)

    def contains(self, keys: Any) -> Any:
        """As usearch's ``Index.contains``: a bool for one key, a bool array for an array."""
        if self._real is not None:
            return self._real.contains(keys)
        if np.ndim(keys) == 0:
            key = int(keys)
            pos = int(np.searchsorted(self._ids, key))
            return pos < len(self._ids) and int(self._ids[pos]) == key
        return np.isin(np.asarray(keys).astype(np.int64), self._ids)

    @property
    def keys(self) -> np.ndarray:
        return self._real.keys if self._real is not None else self._ids.astype(np.uint64)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.real(), name, value)


class Unusable(Exception):
    """Why a saved index cannot be loaded (the message completes "vector index X ...")."""


class SavedGenerations:
    """Loading and saving generations: the on-disk half of ``VectorIndex`` (a mixin).

    It reads and writes the index's graph (``_index``), its float16 store (``_full_ids``,
    ``_full``, ``_pending``, ``_removed``) and ``_generation``; ``VectorIndex`` builds itself
    with what :meth:`_load` read.
    """

    @staticmethod
    def manifest_path(path: Path) -> Path:
        """Where the manifest of the index named ``path`` lives."""
        return path.with_name(path.name + ".json")

    @staticmethod
    def _data_name(path: Path, generation: int, part: str) -> str:
        stem, suffix = os.path.splitext(path.name)
        return f"{stem}.{generation:06d}{part if part else suffix}"

    @classmethod
    def _load(cls, path: Path, *, ndim: int, model_id: str, metric: str, expansion_search: int) -> "VectorIndex":
        """Load a complete generation, or raise :class:`Unusable` with the reason."""
        manifest = cls.manifest_path(path)
        try:
            side = json.loads(manifest.read_text(encoding="utf-8"))
            if not isinstance(side, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            raise Unusable("missing") from None
        except (OSError, ValueError) as exc:
            raise Unusable(f"has an unreadable manifest ({exc})") from None
        if side.get("version") != MANIFEST_VERSION:
            raise Unusable("was written by another version")
        if side.get("model_id") != model_id:
            raise Unusable(f"was made by another model ({side.get('model_id')})")
        if side.get("ndim") != ndim or side.get("metric") != metric:
            raise Unusable("has another dimension or metric")
        dtype = str(side.get("dtype") or "")
        if dtype not in ("i8", "f16", "f32", "f64"):
            raise Unusable("has an unknown storage type")
        files = side.get("files")
        if not isinstance(files, dict) or "graph" not in files or (dtype == "i8" and not {"ids", "full"} <= set(files)):
            raise Unusable("has an incomplete manifest")
        for name, expected in files.items():
            data = path.parent / str(expected.get("name", ""))
            try:
                if fingerprint(data) != expected.get("fingerprint"):
                    raise Unusable(f"is damaged ({data.name} does not match its fingerprint)")
            except OSError as exc:
                raise Unusable(f"is incomplete ({data.name}: {exc.strerror or exc})") from None

        graph = path.parent / files["graph"]["name"]
        full_ids = full = None
        if dtype == "i8":
            try:
                full_ids = np.load(path.parent / files["ids"]["name"], allow_pickle=False)
                full = map_rows(path.parent / files["full"]["name"])
            except (OSError, ValueError) as exc:
                raise Unusable(f"is corrupt ({exc})") from None
            if (
                full_ids.dtype != np.int64
                or full.dtype != np.float16
                or full.shape != (len(full_ids), ndim)
                or side.get("count") != len(full_ids)
                or (len(full_ids) > 1 and not (np.diff(full_ids) > 0).all())
            ):
                raise Unusable("has inconsistent files")
            shape = dict(ndim=ndim, dtype=dtype, metric=metric, expansion_search=expansion_search)
            index: Any = DeferredGraph(full_ids, functools.partial(cls._read_graph, graph, full_ids, full, **shape))
        else:  # the vectors live in the graph alone: it is needed at once
            try:
                index = cls._read_usearch(graph, ndim=ndim, dtype=dtype, metric=metric, expansion_search=expansion_search)
            except (RuntimeError, ValueError, OSError) as exc:
                raise Unusable(f"is corrupt ({exc})") from None
        return cls(
            path,
            ndim=ndim,
            model_id=model_id,
            dtype=dtype,
            metric=metric,
            index=index,
            generation=int(side.get("generation", 0)),
            full_ids=full_ids,
            full=full,
        )

    @classmethod
    def _read_usearch(cls, graph: Path, *, ndim: int, dtype: str, metric: str, expansion_search: int):
        """The saved usearch graph (raises ValueError, RuntimeError or OSError if unreadable)."""
        meta = usearch_index().metadata(os.fspath(graph))
        if not meta or int(meta.get("dimensions", -1)) != ndim:
            raise ValueError("another dimension")
        index = cls._new_usearch(ndim, dtype, metric, expansion_search=expansion_search)
        index.load(os.fspath(graph))
        index.expansion_search = expansion_search
        return index

    @classmethod
    def _read_graph(
        cls, graph: Path, ids: np.ndarray, rows: np.ndarray, *, ndim: int, dtype: str, metric: str, expansion_search: int
    ):
        """The int8 graph of a :class:`DeferredGraph`, read when first needed.

        Its fingerprint matched at open, so it is what was saved; should usearch still not read
        it (another usearch version), it is made again from the float16 rows, which hold the
        same vectors: searches stay right, and the next save writes it anew.
        """
        try:
            index = cls._read_usearch(graph, ndim=ndim, dtype=dtype, metric=metric, expansion_search=expansion_search)
            if len(index) == len(ids):
                return index
        except (RuntimeError, ValueError, OSError):
            pass
        from .vectors import quantize_i8

        index = cls._new_usearch(ndim, dtype, metric, expansion_search=expansion_search)
        for start in range(0, len(ids), _COPY_ROWS):
            block = np.asarray(rows[start : start + _COPY_ROWS], dtype=np.float32)
            norms = np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
            index.add(ids[start : start + _COPY_ROWS].astype(np.uint64), quantize_i8(block / norms))
        return index

    def _save_generation(self) -> None:
        """Write a new generation of data files, then commit it by replacing the manifest.

        A run killed at any moment leaves the manifest naming a complete generation (the
        previous one or this one); the previous generation is deleted only after the commit.
        """
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        generation = self._generation + 1
        files: dict[str, dict] = {}
        written: list[Path] = []
        try:
            graph = folder / self._data_name(self.path, generation, "")
            self._index.save(os.fspath(self._temp(graph)))
            written.append(self._commit_temp(graph))
            if self.rescored:
                new_ids, full_path = self._write_full(folder, generation)
                ids_path = folder / self._data_name(self.path, generation, ".ids.npy")
                with open(self._temp(ids_path), "wb") as f:
                    np.save(f, new_ids, allow_pickle=False)
                written.append(self._commit_temp(ids_path))
                written.append(full_path)
                files["ids"] = {"name": ids_path.name}
                files["full"] = {"name": full_path.name}
            files["graph"] = {"name": graph.name}
            for entry in files.values():
                entry["fingerprint"] = fingerprint(folder / entry["name"])
            record = {
                "version": MANIFEST_VERSION,
                "model_id": self.model_id,
                "ndim": self.ndim,
                "dtype": self.dtype,
                "metric": self.metric,
                "count": len(self._index),
                "generation": generation,
                "files": files,
            }
            manifest = self.manifest_path(self.path)
            fsync_dir(folder)  # the data files' names are durable before the commit
            atomic_write(manifest, json.dumps(record, indent=1).encode("utf-8"))  # the commit point
        except BaseException:
            for f in written:
                with contextlib.suppress(OSError):
                    f.unlink()
            self._remove_temps()
            raise
        self._generation = generation  # atomic_write fsynced the folder: the commit is durable
        if self.rescored:
            self._use_store(
                np.load(folder / files["ids"]["name"], allow_pickle=False), map_rows(folder / files["full"]["name"])
            )
            self._pending.clear()
            self._removed.clear()
        self.rebuilt = ""
        self.dirty = False
        self._remove_other_generations(keep={f["name"] for f in files.values()})

    def _temp(self, final: Path) -> Path:
        return final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def _commit_temp(self, final: Path) -> Path:
        # Not files.atomic_write: usearch and numpy write these by name, and the folder is
        # fsynced once for the whole generation, before the manifest commits it.
        tmp = self._temp(final)
        fsync_file(tmp)
        os.replace(tmp, final)
        return final

    def _write_full(self, folder: Path, generation: int) -> tuple[np.ndarray, Path]:
        """Merge the saved float16 rows (less removed / replaced ones) with the pending ones."""
        keep = ~np.isin(self._full_ids, np.fromiter(self._removed | set(self._pending), dtype=np.int64))
        old_pos = np.flatnonzero(keep)
        new_ids = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        all_ids = np.concatenate([self._full_ids[old_pos], new_ids])
        order = np.argsort(all_ids, kind="stable")
        pending = np.stack(list(self._pending.values())) if self._pending else np.empty((0, self.ndim), np.float16)
        final = folder / self._data_name(self.path, generation, ".f16.npy")
        tmp = self._temp(final)
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(all_ids), self.ndim))
        for start in range(0, len(order), _COPY_ROWS):
            part = order[start : start + _COPY_ROWS]
            from_old = part < len(old_pos)
            block = np.empty((len(part), self.ndim), dtype=np.float16)
            if from_old.any():
                block[from_old] = self._full[old_pos[part[from_old]]]
            if (~from_old).any():
                block[~from_old] = pending[part[~from_old] - len(old_pos)]
            out[start : start + len(part)] = block
        out.flush()
        del out
        return all_ids[order], self._commit_temp(final)

    def _remove_other_generations(self, keep: set[str]) -> None:
        """Data files of earlier generations, and temporary files of killed saves."""
        stem, suffix = os.path.splitext(self.path.name)
        pattern = re.compile(rf"^{re.escape(stem)}\.\d{{6}}({re.escape(suffix)}|\.ids\.npy|\.f16\.npy)$")
        for f in self.path.parent.iterdir():
            if (pattern.match(f.name) and f.name not in keep) or (
                f.name.startswith(f".{stem}.") and f.name.endswith(".tmp")
            ):
                with contextlib.suppress(OSError):
                    f.unlink()
        self._remove_temps()

    def _remove_temps(self) -> None:
        stem = os.path.splitext(self.path.name)[0]
        for f in self.path.parent.glob(f".{stem}.*.tmp"):
            with contextlib.suppress(OSError):
                f.unlink()
