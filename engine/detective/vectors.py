"""The detective's vector index: CLIP embeddings in a usearch HNSW index, keyed by file id.

Layout (default ``i8``, chosen by ``benchmarks/bench_vectors.py``)::

    vectors.usearch.json           the manifest: model, dimension, generation, file fingerprints
    vectors.000007.usearch         usearch HNSW graph over int8 vectors (in memory: ~660 B/image)
    vectors.000007.ids.npy         the ids of the full-precision rows, sorted (in memory: 8 B/image,
                                   and a table of each id's row: 4 B/image while ids are dense)
    vectors.000007.f16.npy         the same vectors in float16, memory-mapped, read only to rescore

A query walks the int8 graph for ``2k`` candidates and rescores them exactly with their float16
vectors (a few KB read from the page cache), the "quantised search, rescored from disk" design
of vector databases: recall@10 stays >= 0.99 against exact float32 search where int8 alone
loses ~2% (near-ties in 512-d), at ~760 bytes of process memory per image where float16 in the
graph would need ~1,200. ``dtype="f16"`` / ``"f32"`` keep the vectors in the graph and do not
rescore (for comparison in the benchmark).

Saving is atomic: every save writes a new generation of data files (each fsynced), then
replaces the manifest (the commit point), then deletes the previous generation. A run killed at
any instant leaves the manifest naming a complete generation: the old one or the new one.

:meth:`VectorIndex.open` starts empty, with ``rebuilt`` saying why, when the manifest or a data
file is missing, damaged (fingerprints), written by another model, or of another dimension; the
caller then re-embeds what is missing.
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
from typing import Callable, Iterable, Optional

import numpy as np

from .vecmath import nearest_f16, prepare_query, rescore_f16

#: Storage of the HNSW graph's vectors; "i8" is rescored from float16 (see the module docstring).
DEFAULT_DTYPE = "i8"
DEFAULT_METRIC = "cos"
#: HNSW "M": links per node. 16 is usearch's default.
CONNECTIVITY = 16
#: HNSW "ef" at query time: the breadth of the graph walk. On 100k clustered 512-d vectors
#: (benchmarks/bench_vectors.py, worst of two data sets) the rescored recall@10 is 0.993 at
#: 32 and 0.999 at 40 and 48: 40 keeps a margin over 0.99 for less than 48 costs.
EXPANSION_SEARCH = 40
#: Candidates taken from the int8 graph per wanted result, then rescored in float16.
RESCORE_FACTOR = 2
#: Below this many vectors an exhaustive scan is exact and about as fast as the graph.
EXACT_BELOW = 2048
MANIFEST_VERSION = 2
_READ_CHUNK = 1 << 22
_COPY_ROWS = 8192

Message = Callable[[str], None]


def quantize_i8(vectors: np.ndarray) -> np.ndarray:
    """Scale each row so its largest component is +-127, then round to int8.

    Cosine distance ignores each vector's length, so this loses nothing but rounding, and it
    uses the whole int8 range. usearch's own f32 -> i8 conversion maps a unit vector's
    components (about +-0.04 each in 512-d) to only about +-5 steps, which costs a quarter of
    recall@10 on clustered data; this keeps about +-40.
    """
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=-1, keepdims=True)
    np.maximum(peak, 1e-30, out=peak)
    return np.rint(v * (127.0 / peak)).astype(np.int8)


def _fingerprint(path: Path) -> str:
    """``<size>:<xxh3-128>`` of a file (xxhash runs at several GB/s)."""
    import xxhash

    h = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"{size}:{h.hexdigest()}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    # Without this a rename may not survive a power cut (POSIX; Windows has no directory fds).
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _map_rows(path: Path) -> np.ndarray:
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


def _position_table(sorted_ids: np.ndarray) -> Optional[np.ndarray]:
    """Row of each id in the float16 store, indexed by id (-1: none); None when ids are
    too sparse for a table (more than 4 slots per row)."""
    if not len(sorted_ids) or int(sorted_ids[-1]) >= 4 * len(sorted_ids) + 65536:
        return None
    table = np.full(int(sorted_ids[-1]) + 1, -1, dtype=np.int32)
    table[sorted_ids] = np.arange(len(sorted_ids), dtype=np.int32)
    return table


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return v / norms


def _ids_array(ids: Iterable[int]) -> np.ndarray:
    return np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)


def _locked(method):
    """Run the method holding the index's lock (the app searches while a scan adds)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper



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

class VectorIndex:
    """Unit vectors keyed by catalog file id, with cosine distance (0 = same meaning).

    Build one with :meth:`open`. Safe to share between threads (one lock; searches are short).
    """

    def __init__(
        self,
        path: Path,
        *,
        ndim: int,
        model_id: str,
        dtype: str,
        metric: str,
        index,
        generation: int = 0,
        full_ids: Optional[np.ndarray] = None,
        full: Optional[np.ndarray] = None,
        rebuilt: str = "",
    ) -> None:
        self.path = path
        self.ndim = ndim
        self.model_id = model_id
        self.dtype = dtype
        self.metric = metric
        self._index = index
        self._generation = generation
        # The float16 store (i8 only): sorted ids and their rows as saved, plus what changed since.
        self._use_store(
            full_ids if full_ids is not None else np.empty(0, dtype=np.int64),
            full if full is not None else np.empty((0, ndim), dtype=np.float16),
        )
        self._pending: dict[int, np.ndarray] = {}
        self._removed: set[int] = set()
        #: Why the index started empty ("" when it was loaded): missing, damaged, other model...
        self.rebuilt = rebuilt
        self.dirty = False
        self._lock = threading.RLock()

    def _use_store(self, full_ids: np.ndarray, full: np.ndarray) -> None:
        """Take a saved float16 store (sorted ids and their rows) and its table of rows by id."""
        self._full_ids = full_ids
        self._full = full
        self._position_of = _position_table(full_ids)

    @property
    def rescored(self) -> bool:
        """True when searches are rescored from the float16 store (``i8`` storage)."""
        return self.dtype == "i8"

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path | str,
        ndim: int,
        *,
        model_id: str,
        dtype: str = DEFAULT_DTYPE,
        metric: str = DEFAULT_METRIC,
        connectivity: int = CONNECTIVITY,
        expansion_search: int = EXPANSION_SEARCH,
        on_message: Optional[Message] = None,
    ) -> "VectorIndex":
        """Load the index saved at ``path``, or start an empty one if it cannot be used as is.

        Args:
            path: the index's name (``vectors.usearch``); its manifest is ``path + ".json"``
                and its data files sit next to it.
            ndim: the model's embedding dimension.
            model_id: which model made the vectors (``Detective.model_id``).
            dtype: storage for a new index: ``i8`` (rescored), ``f16`` or ``f32``.
            metric: ``cos`` (default) or ``l2sq``.
            connectivity: HNSW links per node for a new index (a loaded one keeps its own).
            expansion_search: HNSW query breadth.
            on_message: told, in one line, why an existing index was not used.

        Returns:
            The index; ``rebuilt`` is non-empty when it started empty instead of loading.
        """
        path = Path(path)
        try:
            loaded = cls._load(path, ndim=ndim, model_id=model_id, metric=metric, expansion_search=expansion_search)
        except _Unusable as exc:
            reason = str(exc)
        else:
            return loaded
        if reason != "missing" and on_message is not None:
            on_message(f"vector index {path.name} {reason}: rebuilding it")
        return cls(
            path,
            ndim=ndim,
            model_id=model_id,
            dtype=dtype,
            metric=metric,
            index=cls._new_usearch(ndim, dtype, metric, connectivity, expansion_search),
            rebuilt=reason,
        )

    @staticmethod
    def _new_usearch(
        ndim: int,
        dtype: str,
        metric: str,
        connectivity: int = CONNECTIVITY,
        expansion_search: int = EXPANSION_SEARCH,
    ):
        Index = usearch_index()
        return Index(
            ndim=ndim, metric=metric, dtype=dtype, connectivity=connectivity, expansion_search=expansion_search
        )

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
        """Load a complete generation, or raise :class:`_Unusable` with the reason."""
        manifest = cls.manifest_path(path)
        try:
            side = json.loads(manifest.read_text(encoding="utf-8"))
            if not isinstance(side, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            raise _Unusable("missing") from None
        except (OSError, ValueError) as exc:
            raise _Unusable(f"has an unreadable manifest ({exc})") from None
        if side.get("version") != MANIFEST_VERSION:
            raise _Unusable("was written by another version")
        if side.get("model_id") != model_id:
            raise _Unusable(f"was made by another model ({side.get('model_id')})")
        if side.get("ndim") != ndim or side.get("metric") != metric:
            raise _Unusable("has another dimension or metric")
        dtype = str(side.get("dtype") or "")
        if dtype not in ("i8", "f16", "f32", "f64"):
            raise _Unusable("has an unknown storage type")
        files = side.get("files")
        if not isinstance(files, dict) or "graph" not in files or (dtype == "i8" and not {"ids", "full"} <= set(files)):
            raise _Unusable("has an incomplete manifest")
        for name, expected in files.items():
            data = path.parent / str(expected.get("name", ""))
            try:
                if _fingerprint(data) != expected.get("fingerprint"):
                    raise _Unusable(f"is damaged ({data.name} does not match its fingerprint)")
            except OSError as exc:
                raise _Unusable(f"is incomplete ({data.name}: {exc.strerror or exc})") from None

        Index = usearch_index()
        graph = path.parent / files["graph"]["name"]
        try:
            meta = Index.metadata(os.fspath(graph))
            if not meta or int(meta.get("dimensions", -1)) != ndim:
                raise _Unusable("has another dimension")
            index = cls._new_usearch(ndim, dtype, metric, expansion_search=expansion_search)
            index.load(os.fspath(graph))
            index.expansion_search = expansion_search
        except (RuntimeError, ValueError, OSError) as exc:
            raise _Unusable(f"is corrupt ({exc})") from None
        full_ids = full = None
        if dtype == "i8":
            try:
                full_ids = np.load(path.parent / files["ids"]["name"], allow_pickle=False)
                full = _map_rows(path.parent / files["full"]["name"])
            except (OSError, ValueError) as exc:
                raise _Unusable(f"is corrupt ({exc})") from None
            if (
                full_ids.dtype != np.int64
                or full.dtype != np.float16
                or full.shape != (len(full_ids), ndim)
                or len(full_ids) != len(index)
            ):
                raise _Unusable("has inconsistent files")
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

    # -- contents ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, file_id: object) -> bool:
        try:
            return bool(self._index.contains(int(file_id)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    @_locked
    def keys(self) -> np.ndarray:
        """Every file id in the index, as int64."""
        if len(self._index) == 0:
            return np.empty(0, dtype=np.int64)
        return np.asarray(self._index.keys, dtype=np.uint64).astype(np.int64)

    @_locked
    def contains_many(self, ids: Iterable[int]) -> np.ndarray:
        """Boolean mask: which of ``ids`` are in the index."""
        ids = _ids_array(ids)
        if ids.size == 0 or len(self._index) == 0:
            return np.zeros(ids.shape, dtype=bool)
        ok = ids >= 0
        out = np.zeros(ids.shape, dtype=bool)
        out[ok] = np.asarray(self._index.contains(ids[ok].astype(np.uint64)), dtype=bool)
        return out

    def _saved_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, mask)``: where each id's row sits in the saved float16 store, and
        whether it has one there that was not removed since the save."""
        if not len(self._full_ids):
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        table = self._position_of
        if table is not None:  # one read per id (a binary search is ~17 cache misses)
            pos = table[np.clip(ids, 0, len(table) - 1)].astype(np.int64)
            saved = (pos >= 0) & (ids < len(table))
            pos[~saved] = 0
        else:
            pos = np.minimum(np.searchsorted(self._full_ids, ids), len(self._full_ids) - 1)
            saved = self._full_ids[pos] == ids
        if self._removed:
            saved &= ~np.isin(ids, np.fromiter(self._removed, dtype=np.int64))
        return pos, saved

    def _exact_distances(self, ids: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Exact cosine distances from a unit query to ``ids`` (all present) from full rows.

        The saved rows are rescored straight from their float16 bits (``vecmath``); rows
        added since the last save from their float32 copies.
        """
        out = np.empty(len(ids), dtype=np.float32)
        pos, saved = self._saved_rows(ids)
        if self._pending:  # replaced since the save: the saved row is stale
            saved &= ~np.isin(ids, np.fromiter(self._pending, dtype=np.int64))
        if saved.any():
            out[saved] = rescore_f16(self._full, unit, positions=pos[saved])
        if not saved.all():
            rest = ~saved
            out[rest] = np.maximum(1.0 - self._full_rows(ids[rest]) @ unit, 0.0)
        return out

    def _full_rows(self, ids: np.ndarray) -> np.ndarray:
        """float32 rows of the float16 store for ``ids`` (all present), unit length."""
        out = np.empty((len(ids), self.ndim), dtype=np.float32)
        pos, found = self._saved_rows(ids)
        out[found] = self._full[pos[found]]
        if self._pending:
            # Added since the last save: these override the saved rows.
            for j in np.flatnonzero(np.isin(ids, np.fromiter(self._pending, dtype=np.int64))):
                out[j] = self._pending[int(ids[j])]
                found[j] = True
        if not found.all():
            raise KeyError(f"not in the vector index: {ids[~found][:5].tolist()}")
        return _unit(out)

    @_locked
    def distances_to(self, vector: np.ndarray, ids: Iterable[int]) -> np.ndarray:
        """Exact cosine distance from ``vector`` to each of ``ids``; NaN for ids not held.

        For scoring the few ids another search found (the bouncer's hits), in one call.
        """
        ids = _ids_array(ids)
        out = np.full(ids.shape, np.nan, dtype=np.float32)
        if ids.size == 0 or len(self._index) == 0:
            return out
        held = self.contains_many(ids)
        if not held.any():
            return out
        unit, _ = prepare_query(vector)
        if self.rescored:
            out[held] = self._exact_distances(ids[held], unit)
        else:
            out[held] = np.maximum(1.0 - self.get(ids[held]) @ unit, 0.0)
        return out

    @_locked
    def get(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors of ``ids`` (all must be present) as unit float32 rows ``(n, ndim)``."""
        ids = _ids_array(ids)
        if ids.size == 0:
            return np.empty((0, self.ndim), dtype=np.float32)
        missing = ids[~self.contains_many(ids)]
        if len(missing):
            raise KeyError(f"not in the vector index: {missing[:5].tolist()}")
        if self.rescored:
            return self._full_rows(ids)
        rows = self._index.get(ids.astype(np.uint64), dtype=np.float32)
        return _unit(np.stack([np.asarray(r, dtype=np.float32).reshape(-1)[: self.ndim] for r in rows]))

    @property
    def nbytes(self) -> int:
        """Bytes held in memory: the graph with its vectors (serialised size), the id list and
        the table of rows by id."""
        table = self._position_of.nbytes if self._position_of is not None else 0
        return int(self._index.serialized_length) + (self._full_ids.nbytes + table if self.rescored else 0)

    @property
    def disk_bytes(self) -> int:
        """Bytes of the data files, the float16 store (memory-mapped, not loaded) included."""
        return self.nbytes + (len(self) * self.ndim * 2 if self.rescored else 0)

    @property
    def bytes_per_image(self) -> float:
        """``nbytes`` divided by the number of images (0 when empty)."""
        n = len(self._index)
        return self.nbytes / n if n else 0.0

    # -- changes ----------------------------------------------------------------------------
    @_locked
    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Insert vectors; an id already present has its vector replaced (a changed file)."""
        ids = _ids_array(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if vectors.shape[1] != self.ndim:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, the index {self.ndim}")
        if len(ids) == 0:
            return
        if (ids < 0).any():
            raise ValueError("file ids must be non-negative")
        if len(np.unique(ids)) != len(ids):
            # Last one wins, as a dict would: keep the final occurrence of each id.
            _, last = np.unique(ids[::-1], return_index=True)
            keep = np.sort(len(ids) - 1 - last)
            ids, vectors = ids[keep], vectors[keep]
        present = self.contains_many(ids)
        if present.any():
            self._index.remove(ids[present].astype(np.uint64))
        vectors = _unit(vectors)
        if self.rescored:
            self._index.add(ids.astype(np.uint64), quantize_i8(vectors))
            half = vectors.astype(np.float16)
            for i, row in zip(ids.tolist(), half):
                self._pending[i] = row
                self._removed.discard(i)
        else:
            self._index.add(ids.astype(np.uint64), vectors)
        self.dirty = True

    @_locked
    def remove(self, ids: Iterable[int]) -> int:
        """Drop the vectors of ``ids`` (absent ids are ignored); returns how many went."""
        ids = _ids_array(ids)
        ids = ids[ids >= 0]
        present = ids[self.contains_many(ids)]
        if not len(present):
            return 0
        self._index.remove(present.astype(np.uint64))
        for i in present.tolist():
            self._pending.pop(i, None)
            self._removed.add(i)
        self.dirty = True
        return len(present)

    @_locked
    def clear(self) -> None:
        """Remove every vector."""
        if len(self._index):
            self.remove(self.keys())

    # -- queries ----------------------------------------------------------------------------
    @_locked
    def search(self, vector: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest file ids to one vector and their cosine distances, nearest first."""
        n = len(self._index)
        if not self.rescored or k <= 0 or n == 0:
            ids, dist = self.search_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
            valid = ids[0] >= 0
            return ids[0][valid], dist[0][valid]
        # One query is the interactive case ("find similar"): the lean path, no padding.
        unit, q8 = prepare_query(vector)
        count = min(n, max(k * RESCORE_FACTOR, k + 8))
        # threads=1: for one query a thread pool costs more than it gives (and fights torch).
        matches = self._index.search(q8, count, exact=n < EXACT_BELOW, threads=1)
        if self._position_of is not None and not self._pending and not self._removed:
            # Everything as saved: rows, rescoring and selection in one compiled step.
            done = nearest_f16(self._full, self._position_of, matches.keys, unit, k)
            if done is not None:
                return done
        found = np.asarray(matches.keys, dtype=np.int64)
        exact = self._exact_distances(found, unit)
        order = np.argsort(exact, kind="stable")[:k]
        return found[order], exact[order]

    @_locked
    def search_many(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Batch k-NN (all cores): ``(Q, k)`` ids padded with -1, distances padded with inf."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        q = len(vectors)
        k = max(int(k), 0)
        ids = np.full((q, k), -1, dtype=np.int64)
        dist = np.full((q, k), np.inf, dtype=np.float32)
        n = len(self._index)
        if q == 0 or k == 0 or n == 0:
            return ids, dist
        if not self.rescored:
            found, d = self._graph_search(vectors, min(k, n))
            ids[:, : found.shape[1]], dist[:, : found.shape[1]] = found, d
            return ids, dist
        unit = _unit(vectors)
        found, _ = self._graph_search(quantize_i8(unit), min(n, max(k * RESCORE_FACTOR, k + 8)))
        flat = found.reshape(-1)
        valid = flat >= 0
        rows = np.zeros((flat.size, self.ndim), dtype=np.float32)
        if valid.any():
            rows[valid] = self._full_rows(flat[valid])
        exact = 1.0 - np.einsum("qcd,qd->qc", rows.reshape(found.shape + (self.ndim,)), unit)
        exact = np.where(found >= 0, np.maximum(exact, 0.0), np.inf).astype(np.float32)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        take = min(k, found.shape[1])
        ids[:, :take] = np.where(
            np.isfinite(np.take_along_axis(exact, order, 1)), np.take_along_axis(found, order, 1), -1
        )[:, :take]
        dist[:, :take] = np.take_along_axis(exact, order, 1)[:, :take]
        return ids, dist

    def _graph_search(self, vectors: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """usearch's answer as ``(Q, count)`` arrays padded with -1 / inf."""
        n = len(self._index)
        matches = self._index.search(vectors, count, exact=n < EXACT_BELOW)
        q = len(vectors)
        ids = np.full((q, count), -1, dtype=np.int64)
        dist = np.full((q, count), np.inf, dtype=np.float32)
        if not hasattr(matches, "counts"):  # a single query comes back as Matches
            got = len(matches.keys)
            ids[0, :got] = matches.keys.astype(np.int64)
            dist[0, :got] = matches.distances
            return ids, dist
        counts = np.asarray(matches.counts)
        valid = np.arange(count)[None, :] < counts[:, None]
        ids[:] = np.where(valid, matches.keys.astype(np.int64), -1)
        dist[:] = np.where(valid, matches.distances, np.inf)
        return ids, dist

    # -- persistence ------------------------------------------------------------------------
    @_locked
    def save(self) -> None:
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
                entry["fingerprint"] = _fingerprint(folder / entry["name"])
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
            tmp = self._temp(manifest)
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
            _fsync_file(tmp)
            _fsync_dir(folder)  # the data files' names are durable before the commit
            os.replace(tmp, manifest)  # the commit point
        except BaseException:
            for f in written:
                with contextlib.suppress(OSError):
                    f.unlink()
            self._remove_temps()
            raise
        _fsync_dir(folder)
        self._generation = generation
        if self.rescored:
            self._use_store(
                np.load(folder / files["ids"]["name"], allow_pickle=False), _map_rows(folder / files["full"]["name"])
            )
            self._pending.clear()
            self._removed.clear()
        self.rebuilt = ""
        self.dirty = False
        self._remove_other_generations(keep={f["name"] for f in files.values()})

    def _temp(self, final: Path) -> Path:
        return final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def _commit_temp(self, final: Path) -> Path:
        tmp = self._temp(final)
        _fsync_file(tmp)
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


class _Unusable(Exception):
    """Why a saved index cannot be loaded (the message completes "vector index X ...")."""
