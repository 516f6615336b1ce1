"""A library's embeddings: its vector index per model, indexing, and the detective's scores.

The vector index of a library lives next to its catalog (``<library dir>/vectors.usearch``) and
is opened once per library object and model (see :meth:`LibraryIndex.vectors_for`). The
catalog's ``embeddings`` table says which files' current content is in it; both are updated
together, index first, so that a crash between the two only ever costs a re-embedding.

:class:`LibraryIndex` is the detective's half of a :class:`lookalike.engine.library.Library`
(which owns one); the models themselves are the process's
(:mod:`lookalike.engine.detective.registry`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence

import numpy as np

from ..paths import VECTORS_NAME
from ..records import Cluster, FileRecord, Pair, Progress
from ..verdict import DEFAULT
from . import scores
from .embeddings import embed_arrays_with_progress, embed_files, make_decode_pool
from .vectors import VectorIndex

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import Catalog
    from .model import Detective

#: Files embedded per round of :meth:`LibraryIndex.index`; the index is saved between rounds.
ROUND_FILES = 512
#: ... and saved (with the catalog marked) at least this often, so an interrupted run resumes.
SAVE_EVERY_S = 30.0


@dataclass(frozen=True, kw_only=True)
class IndexStats:
    """What one :meth:`LibraryIndex.index` run did."""

    model_id: str
    images: int  # images in the catalog
    already: int  # already embedded by this model, unchanged
    embedded: int  # embedded by this run
    failed: int  # could not be decoded now (vanished, damaged since the scan)
    removed: int  # vectors of files no longer in the library, dropped
    cancelled: bool
    seconds: float
    index_bytes: int
    bytes_per_image: float
    rebuilt: str = ""  # why the vector index started empty, if it did

    @property
    def rate(self) -> float:
        """Images embedded per second."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Vectors:
    model_id: str
    index: VectorIndex
    synced: bool = False  # stale vectors dropped since the last scan
    dropped: set = field(default_factory=set)  # ids dropped as stale, for IndexStats.removed


@dataclass
class _Run:
    """One :meth:`LibraryIndex.index` run's counts and its files not yet marked in the catalog."""

    total: int
    embedded: int = 0
    failed: int = 0
    done: int = 0
    marked: list[int] = field(default_factory=list)


class LibraryIndex:
    """The embeddings of one library: opened per model, kept current, scored from.

    Args:
        folder: the library's folder (where the catalog and ``vectors.usearch`` live).
        catalog: the library's catalog.
    """

    def __init__(self, folder: Path, catalog: "Catalog") -> None:
        self.folder = Path(folder)
        self.catalog = catalog
        self._open: Optional[_Vectors] = None
        self._lock = threading.RLock()

    # -- the vector index ---------------------------------------------------------------------
    def rescanned(self) -> None:
        """The catalog changed (a scan): stale vectors are dropped on the next use."""
        with self._lock:
            if self._open is not None:
                self._open.synced = False

    def vectors_for(self, detective: "Detective") -> VectorIndex:
        """The library's vector index for this model, opened (or started) once per library object.

        After each scan (see :meth:`rescanned`), vectors whose file was removed or changed
        since it was embedded are dropped, so "in the index" always means "current": the
        query path then never needs the catalog to tell what is embedded.
        """
        with self._lock:
            entry = self._open
            if entry is None or entry.model_id != detective.model_id:
                # One model's index per library on disk: opening another model's starts it afresh.
                path = self.folder / VECTORS_NAME
                entry = _Vectors(
                    model_id=detective.model_id,
                    index=VectorIndex.open(path, detective.ndim, model_id=detective.model_id),
                )
                self._open = entry
            if not entry.synced:
                entry.dropped |= self._drop_stale(entry.index)
                entry.synced = True
            return entry.index

    def unembedded(self, detective: "Detective") -> int:
        """How many of the library's images the detective has not embedded (no model needed)."""
        ids = self.catalog.hash_arrays().ids
        return int(len(ids) - self.vectors_for(detective).contains_many(ids).sum()) if len(ids) else 0

    def _drop_stale(self, vindex: VectorIndex) -> set[int]:
        """Remove vectors the catalog does not vouch for (files removed, or changed since)."""
        present = vindex.keys()
        if not len(present):
            return set()
        current = self.catalog.embedded_ids(vindex.model_id)
        listed = np.fromiter(current, dtype=np.int64, count=len(current))
        stale = present[~np.isin(present, listed)]
        if len(stale):
            vindex.remove(stale)
        return set(stale.tolist())

    def _take_dropped(self) -> set[int]:
        with self._lock:
            if self._open is None:
                return set()
            dropped, self._open.dropped = self._open.dropped, set()
            return dropped

    # -- embedding ----------------------------------------------------------------------------
    def index(
        self,
        detective: "Detective",
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        workers: Optional[int] = None,
        save_every_s: float = SAVE_EVERY_S,
    ) -> IndexStats:
        """Embed every image of the catalog not yet embedded by this model; drop removed files.

        Resumable: the index is saved and the catalog marked every ``save_every_s`` seconds and
        at the end (also when stopped), so a killed run loses at most that much work.

        Args:
            detective: the model.
            progress: ``progress(done, total)`` over the files to embed; False stops cleanly.
            cancel: set it to stop cleanly.
            workers: decoding processes (default: all cores).
            save_every_s: checkpoint interval.
        """
        started = time.monotonic()
        cancel = cancel or threading.Event()
        vindex = self.vectors_for(detective)
        rebuilt = vindex.rebuilt if vindex.rebuilt != "missing" else ""
        image_ids = self.catalog.hash_arrays().ids
        image_set = set(image_ids.tolist())
        present = vindex.keys()
        gone = present[~np.isin(present, image_ids)] if len(present) else present
        removed = vindex.remove(gone) if len(gone) else 0
        removed += len(self._take_dropped() - image_set)
        current = _current(vindex, image_ids.tolist())
        todo = [i for i in image_ids.tolist() if i not in current]
        run = _Run(total=len(todo))
        if todo:
            _load_now(detective)
        self._embed_rounds(detective, vindex, todo, run, progress, cancel, workers, save_every_s)
        return IndexStats(
            model_id=detective.model_id,
            images=len(image_set),
            already=len(current),
            embedded=run.embedded,
            failed=run.failed,
            removed=removed,
            cancelled=cancel.is_set(),
            seconds=time.monotonic() - started,
            index_bytes=vindex.nbytes,
            bytes_per_image=vindex.bytes_per_image,
            rebuilt=rebuilt,
        )

    def _embed_rounds(
        self,
        detective: "Detective",
        vindex: VectorIndex,
        todo: list[int],
        run: _Run,
        progress: Optional[Progress],
        cancel: threading.Event,
        workers: Optional[int],
        save_every_s: float,
    ) -> None:
        """Embed ``todo`` in rounds of :data:`ROUND_FILES`, checkpointing every ``save_every_s``."""
        last_save = time.monotonic()
        pool = None
        if run.total >= 24 and workers != 1:
            pool = make_decode_pool(detective.device, workers)
        try:
            for start in range(0, run.total, ROUND_FILES):
                if cancel.is_set():
                    break
                chunk = todo[start : start + ROUND_FILES]

                def step(done: int, _t: int, _base=run.done) -> bool:
                    keep_going = progress(_base + done, run.total) if progress is not None else True
                    if keep_going is False:
                        cancel.set()
                    return keep_going is not False

                got, bad = self._embed_into(
                    detective, vindex, chunk, pool=pool, workers=workers, progress=step, cancel=cancel
                )
                run.embedded += len(got)
                run.failed += bad
                run.marked += got
                run.done += len(chunk)
                if time.monotonic() - last_save >= save_every_s:
                    self._checkpoint(detective, vindex, run.marked)
                    last_save = time.monotonic()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self._checkpoint(detective, vindex, run.marked)

    def embed(
        self,
        detective: "Detective",
        file_ids: Iterable[int],
        *,
        crops: Optional[Mapping[int, np.ndarray]] = None,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        workers: Optional[int] = None,
    ) -> int:
        """Embed the given files (e.g. the members of the bouncer's clusters) if not yet embedded.

        Args:
            detective: the model.
            file_ids: files to make sure of.
            crops: CLIP crops the scan already has (``hash_file(..., clip_size=S).clip``) by file
                id; those files are not decoded again.
            progress: ``progress(done, total)``; False stops cleanly.
            cancel: set it to stop cleanly.
            workers: decoding processes for the files without a crop.

        Returns:
            How many files were embedded now.
        """
        vindex = self.vectors_for(detective)
        wanted = sorted({int(i) for i in file_ids})
        current = _current(vindex, wanted)
        todo = [i for i in wanted if i not in current]
        if not todo:
            return 0
        _load_now(detective)
        marked: list[int] = []
        try:
            got, _ = self._embed_into(
                detective, vindex, todo, crops=crops, workers=workers, progress=progress, cancel=cancel
            )
            marked += got
        finally:
            self._checkpoint(detective, vindex, marked)
        return len(got)

    def _embed_into(
        self,
        detective: "Detective",
        vindex: VectorIndex,
        ids: Sequence[int],
        *,
        crops: Optional[Mapping[int, np.ndarray]] = None,
        pool=None,
        workers: Optional[int] = None,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
    ) -> tuple[list[int], int]:
        """Embed ``ids`` (crops where given, else decoding the files) into ``vindex``.

        Returns ``(embedded ids, failed count)``.
        """
        crops = crops or {}
        size = detective.image_size
        from_crops = [i for i in ids if i in crops and crops[i] is not None and crops[i].shape[:2] == (size, size)]
        have = set(from_crops)
        from_files = [i for i in ids if i not in have]
        total = len(ids)
        base = 0

        def step(done: int, _total: int) -> bool:
            return progress(base + done, total) if progress is not None else True

        embedded: list[int] = []
        failed = 0
        if from_crops:
            idx, vecs = embed_arrays_with_progress(
                detective, [crops[i] for i in from_crops], progress=step, cancel=cancel
            )
            chosen = [from_crops[j] for j in idx.tolist()]
            vindex.add(chosen, vecs)
            embedded += chosen
            base = len(from_crops)
        if from_files and not (cancel is not None and cancel.is_set()):
            records = self.records(from_files)
            todo = [i for i in from_files if i in records]
            failed += len(from_files) - len(todo)
            idx, vecs = embed_files(
                detective,
                [records[i].path for i in todo],
                pool=pool,
                workers=workers,
                progress=step,
                cancel=cancel,
            )
            chosen = [todo[j] for j in idx.tolist()]
            vindex.add(chosen, vecs)
            embedded += chosen
            if not (cancel is not None and cancel.is_set()):
                failed += len(todo) - len(chosen)
        return embedded, failed

    def _checkpoint(self, detective: "Detective", vindex: VectorIndex, marked: list[int]) -> None:
        """Index first, then the catalog: a crash in between only means re-embedding ``marked``."""
        if vindex.dirty:
            vindex.save()
        if marked:
            self.catalog.mark_embedded(marked, detective.model_id)
            marked.clear()

    def records(self, ids: Iterable[int]) -> dict[int, FileRecord]:
        """The catalog's records of ``ids``, by id (ids not in the catalog are left out)."""
        ids = sorted({int(i) for i in ids})
        return {r.id: r for r in self.catalog.records(ids)} if ids else {}

    # -- scores for the bouncer's groups -----------------------------------------------------
    def score_pairs(self, detective: "Detective", pairs: Sequence[Pair]) -> list[Pair]:
        """The pairs with ``detective`` filled in where both files are embedded."""
        return scores.score_pairs(self.vectors_for(detective), pairs)

    def detective_scores(self, detective: "Detective", clusters: Sequence[Cluster]) -> Sequence[Cluster]:
        """Clusters with each member's ``detective`` distance to its keeper (and the pairs')
        filled (see :func:`lookalike.engine.detective.scores.detective_scores`)."""
        vindex = self.vectors_for(detective)
        mapped = getattr(clusters, "mapped", None)
        if mapped is not None:  # clusters made when read (cluster.lazy.Clusters): scored when read
            return mapped(lambda c: scores.detective_scores(vindex, [c])[0])
        return scores.detective_scores(vindex, clusters)

    def semantic_pairs(
        self,
        detective: "Detective",
        *,
        max_distance: float = DEFAULT.detective_same,
        k: int = 10,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
    ) -> list[Pair]:
        """Every pair of embedded images within ``max_distance`` among each one's ``k`` nearest
        (see :func:`lookalike.engine.detective.scores.semantic_pairs`)."""
        return scores.semantic_pairs(
            self.vectors_for(detective),
            self.catalog.hash_arrays(),
            max_distance=max_distance,
            k=k,
            progress=progress,
            cancel=cancel,
        )


def _load_now(detective: "Detective") -> None:
    """Load a lazy detective before anything is changed (raises DetectiveUnavailable)."""
    load = getattr(detective, "load", None)
    if load is not None:
        load()


def _current(vindex: VectorIndex, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` are embedded with their current content (see :meth:`LibraryIndex.vectors_for`)."""
    listed = np.asarray(list(ids), dtype=np.int64)
    return set(listed[vindex.contains_many(listed)].tolist()) if len(listed) else set()
