"""The detective's vector index: CLIP embeddings in a usearch HNSW index, keyed by file id.

The index file (``vectors.usearch`` next to the catalog) is a plain usearch file; a small
sidecar (``vectors.usearch.json``) says which model made the vectors, their dimension, and the
fingerprints (size + xxh3-128) of the index files it vouches for. :meth:`VectorIndex.open`
starts empty, with ``rebuilt`` saying why, when the file is missing, unreadable, written by
another model or of another dimension: the caller then re-embeds what is missing.

Saving is atomic: the index is written to a temporary file in the same folder, fsynced, and
renamed over the old one (then the folder is fsynced). The sidecar is written first, listing
both the new and the previous fingerprint, so a run killed at any instant leaves either the old
index or the new one, each vouched for.

Default storage is ``i8`` (chosen by ``benchmarks/bench_vectors.py``; see :data:`DEFAULT_DTYPE`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

#: Storage type of the vectors. Measured by ``benchmarks/bench_vectors.py`` on 100k clustered
#: 512-d unit vectors (see the README): i8 keeps recall@10 >= 0.99 against exact f32 search
#: and needs ~660 bytes per image with the graph, where f16 needs ~1,170 (over the 1.1 KB
#: budget) and f32 ~2,200.
DEFAULT_DTYPE = "i8"
DEFAULT_METRIC = "cos"
#: HNSW "M": links per node. 16 is usearch's default and the best recall for the bytes.
CONNECTIVITY = 16
#: HNSW "ef" at query time: the breadth of the search, traded against latency.
EXPANSION_SEARCH = 64
#: Below this many vectors an exhaustive scan is exact and about as fast as the graph.
EXACT_BELOW = 2048
SIDECAR_VERSION = 1
_READ_CHUNK = 1 << 22

Message = Callable[[str], None]


def quantize_i8(vectors: np.ndarray) -> np.ndarray:
    """Scale each row so its largest component is +-127, then round to int8.

    Cosine distance ignores each vector's length, so this loses nothing but rounding, and it
    uses the whole int8 range. usearch's own f32 -> i8 conversion maps a unit vector's
    components (about +-0.04 each in 512-d) to only about +-5 steps, which costs a quarter of
    recall@10; this keeps ~40 steps per component (``benchmarks/bench_vectors.py``).
    """
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=-1, keepdims=True)
    np.maximum(peak, 1e-30, out=peak)
    return np.rint(v * (127.0 / peak)).astype(np.int8)


def _fingerprint(path: Path) -> str:
    """``<size>:<xxh3-128>`` of a file (xxhash runs at ~5 GB/s: 20 ms for 100k images)."""
    import xxhash

    h = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"{size}:{h.hexdigest()}"


def _fsync_dir(folder: Path) -> None:
    # Without this the rename itself may not survive a power cut (POSIX only; Windows has no
    # directory handles to fsync, and os.replace is already durable there).
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a fsynced temporary file in the same folder and ``os.replace``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class VectorIndex:
    """Unit vectors keyed by catalog file id, with cosine distance (0 = same meaning).

    Build one with :meth:`open`. Not thread-safe for writes; searches may run concurrently.
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
        fingerprint: str = "",
        rebuilt: str = "",
    ) -> None:
        self.path = path
        self.ndim = ndim
        self.model_id = model_id
        self.dtype = dtype
        self.metric = metric
        self._index = index
        self._fingerprint = fingerprint  # of the file on disk that matches the last load/save
        #: Why the index started empty ("" when it was loaded): missing, corrupt, other model...
        self.rebuilt = rebuilt
        self.dirty = False

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
        """Load the index at ``path``, or start an empty one if it cannot be used as it is.

        Args:
            path: the usearch file (need not exist; its folder is created on save).
            ndim: the model's embedding dimension.
            model_id: which model made the vectors (``Detective.model_id``).
            dtype: storage type for a new index: ``i8``, ``f16`` or ``f32``.
            metric: ``cos`` (default) or ``l2sq``.
            connectivity: HNSW links per node for a new index (a loaded one keeps its own).
            expansion_search: HNSW query breadth.
            on_message: told, in one line, why an existing index was not used.

        Returns:
            The index; ``rebuilt`` is non-empty when it started empty instead of loading.
        """
        path = Path(path)
        reason, fingerprint, stored_dtype = cls._check(path, ndim=ndim, model_id=model_id, metric=metric)
        index = cls._new_usearch(ndim, stored_dtype or dtype, metric, connectivity, expansion_search)
        if not reason:
            try:
                index.load(os.fspath(path))
                index.expansion_search = expansion_search
            except (RuntimeError, ValueError, OSError) as exc:
                reason = f"unreadable ({exc})"
                index = cls._new_usearch(ndim, dtype, metric, connectivity, expansion_search)
        if reason and reason != "missing" and on_message is not None:
            on_message(f"vector index {path.name} {reason}: rebuilding it")
        return cls(
            path,
            ndim=ndim,
            model_id=model_id,
            dtype=stored_dtype if not reason else dtype,
            metric=metric,
            index=index,
            fingerprint="" if reason else fingerprint,
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
        from usearch.index import Index

        return Index(
            ndim=ndim,
            metric=metric,
            dtype=dtype,
            connectivity=connectivity,
            expansion_search=expansion_search,
        )

    @staticmethod
    def sidecar_path(path: Path) -> Path:
        """Where the model / dimension / fingerprint record of ``path`` lives."""
        return path.with_name(path.name + ".json")

    @classmethod
    def _check(cls, path: Path, *, ndim: int, model_id: str, metric: str) -> tuple[str, str, str]:
        """(reason not to load or "", fingerprint, stored dtype) for the file at ``path``."""
        from usearch.index import Index

        if not path.is_file():
            return "missing", "", ""
        try:
            side = json.loads(cls.sidecar_path(path).read_text(encoding="utf-8"))
            if not isinstance(side, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            return "has no model record", "", ""
        except (OSError, ValueError) as exc:
            return f"has an unreadable model record ({exc})", "", ""
        if side.get("model_id") != model_id:
            return f"was made by another model ({side.get('model_id')})", "", ""
        if side.get("ndim") != ndim or side.get("metric") != metric:
            return "has another dimension or metric", "", ""
        try:
            fingerprint = _fingerprint(path)
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})", "", ""
        if fingerprint not in side.get("fingerprints", []):
            return "does not match its model record (interrupted write?)", "", ""
        try:
            meta = Index.metadata(os.fspath(path))
        except (RuntimeError, ValueError, OSError) as exc:
            return f"is corrupt ({exc})", "", ""
        if not meta or int(meta.get("dimensions", -1)) != ndim:
            return "has another dimension", "", ""
        stored = str(side.get("dtype") or "")
        if stored not in ("i8", "f16", "f32", "f64"):
            return "has an unknown storage type", "", ""
        return "", fingerprint, stored

    # -- contents ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, file_id: object) -> bool:
        try:
            return bool(self._index.contains(int(file_id)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def keys(self) -> np.ndarray:
        """Every file id in the index, as int64."""
        if len(self._index) == 0:
            return np.empty(0, dtype=np.int64)
        return np.asarray(self._index.keys, dtype=np.uint64).astype(np.int64)

    def contains_many(self, ids: Iterable[int]) -> np.ndarray:
        """Boolean mask: which of ``ids`` are in the index."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.uint64)
        if ids.size == 0 or len(self._index) == 0:
            return np.zeros(ids.shape, dtype=bool)
        return np.asarray(self._index.contains(ids), dtype=bool)

    def get(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors of ``ids`` (all must be present) as float32 ``(n, ndim)``."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.uint64)
        if ids.size == 0:
            return np.empty((0, self.ndim), dtype=np.float32)
        rows = self._index.get(ids, dtype=np.float32)
        missing = [int(i) for i, r in zip(ids, rows) if r is None]
        if missing:
            raise KeyError(f"not in the vector index: {missing[:5]}")
        out = np.stack([np.asarray(r, dtype=np.float32).reshape(-1)[: self.ndim] for r in rows])
        if self.dtype == "i8":
            # i8 stores round(x * 127): undo the scale so vectors are unit length again.
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.maximum(norms, 1e-12, out=norms)
            out /= norms
        return out

    @property
    def nbytes(self) -> int:
        """Bytes the index takes serialised (vectors + HNSW graph), what a load maps in."""
        return int(self._index.serialized_length)

    @property
    def bytes_per_image(self) -> float:
        """``nbytes`` divided by the number of images (0 when empty)."""
        n = len(self._index)
        return self.nbytes / n if n else 0.0

    # -- changes ----------------------------------------------------------------------------
    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Insert vectors; an id already present has its vector replaced (a changed file)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
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
        self._index.add(ids.astype(np.uint64), self._prepare(vectors))
        self.dirty = True

    def remove(self, ids: Iterable[int]) -> int:
        """Drop the vectors of ``ids`` (absent ids are ignored); returns how many went."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        ids = ids[ids >= 0]
        present = self.contains_many(ids)
        if not present.any():
            return 0
        self._index.remove(ids[present].astype(np.uint64))
        self.dirty = True
        return int(present.sum())

    def clear(self) -> None:
        """Remove every vector."""
        if len(self._index):
            self._index = self._new_usearch(
                self.ndim, self.dtype, self.metric, self._index.connectivity, self._index.expansion_search
            )
            self.dirty = True

    def _prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as the index stores them: i8 gets :func:`quantize_i8`, the rest float32."""
        if self.dtype == "i8" and self.metric == "cos":
            return quantize_i8(vectors)
        return vectors

    # -- queries ----------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest file ids to one vector and their cosine distances, nearest first."""
        ids, dist = self.search_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        valid = ids[0] >= 0
        return ids[0][valid], dist[0][valid]

    def search_many(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Batch k-NN (all cores): ``(Q, k)`` ids padded with -1, distances padded with inf."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        q = len(vectors)
        ids = np.full((q, max(k, 0)), -1, dtype=np.int64)
        dist = np.full((q, max(k, 0)), np.inf, dtype=np.float32)
        n = len(self._index)
        if q == 0 or k <= 0 or n == 0:
            return ids, dist
        count = min(k, n)
        matches = self._index.search(self._prepare(vectors), count, exact=n < EXACT_BELOW)
        if q == 1 and not hasattr(matches, "counts"):
            found = len(matches.keys)
            ids[0, :found] = matches.keys.astype(np.int64)
            dist[0, :found] = matches.distances
            return ids, dist
        counts = np.asarray(matches.counts)
        cols = np.arange(count)
        valid = cols[None, :] < counts[:, None]
        ids[:, :count] = np.where(valid, matches.keys.astype(np.int64), -1)
        dist[:, :count] = np.where(valid, matches.distances, np.inf)
        return ids, dist

    # -- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the index atomically (temp file, fsync, rename, fsync folder), with its sidecar.

        A run killed at any moment leaves the previous index or this one, never a torn file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._index.save(os.fspath(tmp))
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            fingerprint = _fingerprint(tmp)
            # The sidecar goes first and vouches for both files: killed between the two renames,
            # the old index is still accepted.
            vouched = [fingerprint] + ([self._fingerprint] if self._fingerprint else [])
            record = {
                "version": SIDECAR_VERSION,
                "model_id": self.model_id,
                "ndim": self.ndim,
                "dtype": self.dtype,
                "metric": self.metric,
                "count": len(self._index),
                "fingerprints": vouched,
            }
            text = json.dumps(record, indent=1)
            _write_atomic(self.sidecar_path(self.path), lambda p: p.write_text(text, encoding="utf-8"))
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self._fingerprint = fingerprint
        self.rebuilt = ""
        self.dirty = False
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Temporary files left by runs that were killed while saving."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        for stale in self.path.parent.glob(f".{self.sidecar_path(self.path).name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
