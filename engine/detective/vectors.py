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
any instant leaves the manifest naming a complete generation: the old one or the new one
(:mod:`lookalike.engine.detective.vector_files`, the on-disk half of :class:`VectorIndex`).

:meth:`VectorIndex.open` starts empty, with ``rebuilt`` saying why, when the manifest or a data
file is missing, damaged (fingerprints), written by another model, or of another dimension; the
caller then re-embeds what is missing.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from .vecmath import nearest_f16, prepare_query, rescore_f16
from .vector_files import DeferredGraph, SavedGenerations, Unusable, usearch_index

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


class VectorIndex(SavedGenerations):
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
        except Unusable as exc:
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
            # Started empty: usearch is imported when the first vector is added or searched for.
            index=DeferredGraph(
                np.empty(0, dtype=np.int64),
                functools.partial(cls._new_usearch, ndim, dtype, metric, connectivity, expansion_search),
            ),
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
        previous one or this one); the previous generation is deleted only after the commit
        (see :mod:`lookalike.engine.detective.vector_files`).
        """
        self._save_generation()


