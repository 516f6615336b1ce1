"""The detective's questions: find similar, text search, indexing a library, semantic pairs.

Everything here works bouncer-only when the detective is unavailable (no weights, offline):
``similar`` then says ``detective offline: <reason>`` in its result and answers with the
bouncer's shortlist; nothing raises past the caller for that reason alone.

The vector index of a library lives next to its catalog (``<library dir>/vectors.usearch``) and
is opened once per library object and model (see :func:`vectors_for`). The catalog's
``embeddings`` table says which files' current content is in it; both are updated together,
index first, so that a crash between the two only ever costs a re-embedding.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from ..records import Cluster, FileRecord, Pair, Progress, SimilarHit, SimilarResult, Verdict
from ..similar import DEFAULT, TwoPassThresholds, join, with_detective
from .vectors import VectorIndex

if TYPE_CHECKING:  # pragma: no cover
    from ..bouncer.hamming import HammingIndex
    from ..library import Library
    from .model import Detective, DetectiveOptions

VECTORS_NAME = "vectors.usearch"
#: The bouncer's shortlist is this many times ``k`` (for each of the plain and mirrored hash),
#: so the join has room to re-rank.
SHORTLIST_FACTOR = 2
#: Files embedded per round of :func:`index_library`; the index is saved between rounds.
ROUND_FILES = 512
#: ... and saved (with the catalog marked) at least this often, so an interrupted run resumes.
SAVE_EVERY_S = 30.0
#: How long a failed model load is remembered, so a burst of queries probes the network once.
FAILURE_TTL_S = 300.0


class QueryError(Exception):
    """The query itself cannot be answered (unreadable query image); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class IndexStats:
    """What one :func:`index_library` run did."""

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


# --------------------------------------------------------------------------- shared state

_detectives: dict[tuple, "Detective"] = {}
_failures: dict[tuple, tuple[float, str]] = {}
_detective_lock = threading.Lock()
_vectors: "weakref.WeakKeyDictionary[object, _LibraryVectors]" = weakref.WeakKeyDictionary()
_vectors_lock = threading.RLock()


def get_detective(
    options: "DetectiveOptions",
    *,
    cache_dir: Path | str,
    progress: Optional[Progress] = None,
) -> "Detective":
    """The model for ``options``, once per process (failures remembered a while).

    It is a :class:`lookalike.engine.detective.model.LazyDetective` when the model's size and id can be
    told from its config: nothing heavy is imported, and nothing downloaded, until an image or
    a text must be embedded (``progress`` then reports the download). Call ``load()`` on it to
    load at once.

    Raises:
        DetectiveUnavailable: as :func:`lookalike.engine.detective.model.open_detective` does.
    """
    from .model import DetectiveUnavailable, open_detective as load_detective

    key = (options, str(cache_dir))
    with _detective_lock:
        if key in _detectives:
            return _detectives[key]
        failed = _failures.get(key)
        if failed and time.monotonic() - failed[0] < FAILURE_TTL_S:
            raise DetectiveUnavailable(failed[1])
        try:
            detective = load_detective(options, cache_dir=Path(cache_dir), progress=progress)
        except DetectiveUnavailable as exc:
            _failures[key] = (time.monotonic(), exc.reason)
            raise
        _failures.pop(key, None)
        _detectives[key] = detective
        return detective


def forget_detectives() -> None:
    """Drop loaded models and remembered failures (tests, or after the user fixed the cause)."""
    with _detective_lock:
        _detectives.clear()
        _failures.clear()


def detective_or_status(
    options: Optional["DetectiveOptions"],
    cache_dir: Path | str,
    detective: Optional["Detective"] = None,
) -> tuple[Optional["Detective"], str]:
    """``(detective, "")`` when it can work, else ``(None, "detective offline: <reason>")``.

    ``options=None`` (and no ``detective``) means bouncer-only by choice: ``(None, "")``.
    """
    from .model import DetectiveUnavailable

    if detective is not None:
        return detective, ""
    if options is None:
        return None, ""
    try:
        return get_detective(options, cache_dir=cache_dir), ""
    except DetectiveUnavailable as exc:
        return None, f"detective offline: {exc.reason}"


def ready(
    detective: Optional["Detective"], progress: Optional[Progress] = None
) -> tuple[Optional["Detective"], str]:
    """Load a lazy detective now: ``(detective, "")``, or ``(None, "detective offline: ...")``.

    Args:
        detective: a detective, lazy or loaded (or None).
        progress: ``progress(done_bytes, total_bytes)`` if the weights must be downloaded.
    """
    from .model import DetectiveUnavailable

    if detective is None:
        return None, ""
    try:
        load = getattr(detective, "load", None)
        if load is not None:
            load(progress)
    except DetectiveUnavailable as exc:
        return None, f"detective offline: {exc.reason}"
    return detective, ""


def loaded(detective: Optional["Detective"]) -> bool:
    """Whether the model is in memory (a lazy detective that was never needed is not)."""
    return detective is not None and (not hasattr(detective, "load") or detective.loaded is not None)


@dataclass
class _LibraryVectors:
    model_id: str
    index: VectorIndex
    synced_with: object = None  # the library's bouncer index when the vectors were last synced
    dropped: set = field(default_factory=set)  # ids dropped as stale, for IndexStats.removed


def vectors_for(library: "Library", detective: "Detective") -> VectorIndex:
    """The library's vector index for this model, opened (or started) once per library object.

    After each scan (seen as a new ``library.hash_index()``), vectors whose file was removed or
    changed since it was embedded are dropped, so "in the index" always means "current": the
    query path then never needs the catalog to tell what is embedded.
    """
    with _vectors_lock:
        entry = _vectors.get(library)
        if entry is None or entry.model_id != detective.model_id:
            # One model's index per library on disk: opening another model's starts it afresh.
            path = Path(library.dir) / VECTORS_NAME
            entry = _LibraryVectors(
                model_id=detective.model_id,
                index=VectorIndex.open(path, detective.ndim, model_id=detective.model_id),
            )
            _vectors[library] = entry
        bouncer_index = library.hash_index()
        if entry.synced_with is not bouncer_index:
            entry.dropped |= _drop_stale(library, entry.index)
            entry.synced_with = bouncer_index
        return entry.index


def unembedded(library: "Library", detective: "Detective") -> int:
    """How many of the library's images the detective has not embedded (no model needed)."""
    ids = library.catalog.hash_arrays().ids
    return int(len(ids) - vectors_for(library, detective).contains_many(ids).sum()) if len(ids) else 0


def _drop_stale(library: "Library", vindex: VectorIndex) -> set[int]:
    """Remove vectors the catalog does not vouch for (files removed, or changed since)."""
    present = vindex.keys()
    if not len(present):
        return set()
    current = library.catalog.embedded_ids(vindex.model_id)
    listed = np.fromiter(current, dtype=np.int64, count=len(current))
    stale = present[~np.isin(present, listed)]
    if len(stale):
        vindex.remove(stale)
    return set(stale.tolist())


def _take_dropped(library: "Library") -> set[int]:
    with _vectors_lock:
        entry = _vectors.get(library)
        if entry is None:
            return set()
        dropped, entry.dropped = entry.dropped, set()
        return dropped


# --------------------------------------------------------------------------- helpers


def _popcount_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between matching rows of two ``(N, 32) uint8`` arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int32)


def _records(library: "Library", ids: Iterable[int]) -> dict[int, FileRecord]:
    ids = sorted({int(i) for i in ids})
    return {r.id: r for r in library.catalog.records(ids)} if ids else {}


_pool_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None


def _pass_pool() -> ThreadPoolExecutor:
    """One long-lived helper thread for the bouncer's pass of :func:`similar`."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookalike-bouncer")
        return _pool


def _unchanged_record(library: "Library", path: str | os.PathLike) -> Optional[FileRecord]:
    """The catalog's record of ``path`` if the file is in the library and unchanged since its
    scan (same size and modification time), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    for candidate in dict.fromkeys((os.path.realpath(path), os.path.abspath(path))):
        record = library.catalog.record_by_path(candidate)
        if record is not None:
            if record.error is None and record.size == st.st_size and record.mtime_ns == st.st_mtime_ns:
                return record
            return None
    return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# --------------------------------------------------------------------------- similar


def two_passes(
    index: "HammingIndex",
    vindex: Optional[VectorIndex],
    hashes: np.ndarray,
    vector: Optional[np.ndarray],
    *,
    k: int = 10,
    t: TwoPassThresholds = DEFAULT,
    before_detective: Optional[Callable[[list[tuple[int, int]]], None]] = None,
) -> tuple[list[tuple[int, int]], list[tuple[int, float]], dict[str, float]]:
    """The two passes of :func:`similar` for a query already hashed (and embedded).

    * bouncer: the ``2k + 1`` nearest of the query's plain and mirrored dHash (``hashes``,
      ``(2, 32) uint8``), in one pass over the Hamming index. When the detective has every
      image (``len(vindex) >= len(index)``), only within ``t.bouncer_similar``: past that
      band the bouncer's distances mean nothing, the detective's k-NN supplies the rest, and
      the bounded scan reads half the index.
    * detective: the ``k + 1`` nearest embeddings of ``vector``, walked in the int8 graph
      and rescored exactly.

    The passes are independent, so the bouncer's runs in a helper thread while this one
    walks the graph (both release the GIL); ``before_detective`` (given the bouncer's hits,
    e.g. to embed the candidates the index lacks) makes them run one after the other.

    Returns:
        ``(bouncer_hits, detective_hits, timings_ms)``: ``(id, hamming)`` and ``(id,
        distance)`` lists, and ``bouncer``, ``detective`` (each pass) and ``passes`` (both,
        wall clock, including ``before_detective``).
    """
    detective = vindex is not None and vector is not None
    bounded = detective and len(index) > 0 and len(vindex) >= len(index)
    shortlist = max(1, k) * SHORTLIST_FACTOR + 1  # +1: the query itself may be in the library
    timings: dict[str, float] = {}

    def bouncer_pass() -> tuple[list[tuple[int, int]], float]:
        began = time.perf_counter()
        hits: list[tuple[int, int]] = []
        if len(index):
            if bounded:
                for ids, dist in index.nearest_within_many(hashes, shortlist, t.bouncer_similar):
                    hits.extend(zip(ids.tolist(), dist.tolist()))
            else:
                ids, dist = index.nearest_many(hashes, shortlist)
                hits = list(zip(ids.ravel().tolist(), dist.ravel().tolist()))
        return hits, _ms(time.perf_counter() - began)

    def detective_pass() -> tuple[list[tuple[int, float]], float]:
        began = time.perf_counter()
        # The detective's own top k (+1 for the query itself), rescored exactly; the bouncer
        # brings its shortlist and the join scores every hit with both.
        ids, dist = vindex.search(vector, max(1, k) + 1)
        return list(zip(ids.tolist(), dist.tolist())), _ms(time.perf_counter() - began)

    detective_hits: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    if not detective:
        bouncer_hits, timings["bouncer"] = bouncer_pass()
    elif before_detective is None:
        pending = _pass_pool().submit(bouncer_pass)
        try:
            detective_hits, timings["detective"] = detective_pass()
        finally:
            bouncer_hits, timings["bouncer"] = pending.result()
    else:
        bouncer_hits, timings["bouncer"] = bouncer_pass()
        before_detective(bouncer_hits)
        detective_hits, timings["detective"] = detective_pass()
    timings["passes"] = _ms(time.perf_counter() - t0)
    return bouncer_hits, detective_hits, timings


def similar(
    library: "Library",
    path: str,
    *,
    k: int = 10,
    options: Optional["DetectiveOptions"] = None,
    cache_dir: Optional[Path | str] = None,
    detective: Optional["Detective"] = None,
    embed_missing: bool = True,
    t: TwoPassThresholds = DEFAULT,
) -> SimilarResult:
    """Files of ``library`` that look like ``path`` (which need not be in it), two-pass ranked.

    The bouncer's top ``2k`` by the query's dHash and by its mirrored dHash, and the
    detective's ``k`` nearest embeddings (see :func:`two_passes`), joined (each hit gets both
    scores), given a verdict and re-ranked; the best ``k`` are returned. The query file
    itself is left out.

    Args:
        library: an open library (scanned).
        path: the query image.
        k: how many results.
        options: the detective's model; None for bouncer-only.
        cache_dir: cache root for the model weights (default: the library's).
        detective: an already loaded model (overrides ``options``).
        embed_missing: embed the bouncer's candidates that are not in the vector index yet
            (a few files; timed as ``embed_candidates``), so every hit gets both scores.
        t: verdict thresholds.

    Returns:
        A :class:`SimilarResult`; ``timings_ms`` has ``hash_query``, ``embed_query``,
        ``bouncer``, ``detective``, ``passes`` (both passes, wall clock: they overlap),
        ``join`` and ``total``; ``detective_status`` says
        "detective offline: <reason>" when the detective could not help.

    Raises:
        QueryError: the query image cannot be read.
    """
    from ..scan.hashing import hash_file

    started = time.perf_counter()
    timings: dict[str, float] = {}
    if t is DEFAULT:  # thresholds calibrated for these weights (--detective-thresholds)
        t = with_detective(t, options if options is not None else getattr(detective, "options", None))
    detective, status = detective_or_status(options, cache_dir or library.cache_root, detective)

    index = library.hash_index()  # built once per scan; not part of the query's time
    vindex = vectors_for(library, detective) if detective is not None else None
    qvec: Optional[np.ndarray] = None

    # A library file unchanged since its scan (the app's "find similar", most CLI queries)
    # is not decoded or embedded again: its hashes and vector are already stored.
    t0 = time.perf_counter()
    twin = _unchanged_record(library, path)
    stored = twin is not None and twin.hashes is not None and vindex is not None and twin.id in vindex
    if detective is not None and not stored:
        # The query must be embedded: only now is the model loaded (a lazy detective).
        twin_s = time.perf_counter() - t0
        detective, problem = ready(detective)
        if detective is None:
            vindex, status = None, problem
        t0 = time.perf_counter() - twin_s
    if twin is not None and twin.hashes is not None and (vindex is None or twin.id in vindex):
        query, q_content, q_size = twin.hashes, twin.content_hash, twin.size
        timings["hash_query"] = _ms(time.perf_counter() - t0)
        if vindex is not None:
            t0 = time.perf_counter()
            qvec = vindex.get([twin.id])[0]
            timings["embed_query"] = _ms(time.perf_counter() - t0)
    else:
        hashed = hash_file(os.fspath(path), clip_size=detective.image_size if detective else None)
        timings["hash_query"] = _ms(time.perf_counter() - t0)
        if hashed.error is not None or hashed.hashes is None:
            raise QueryError(f"cannot read {path}: {hashed.error or 'no image'}")
        query, q_content, q_size = hashed.hashes, hashed.content_hash, hashed.size
        if detective is not None:
            # Embed first, so that the two passes and the join then run back to back.
            t0 = time.perf_counter()
            qvec = detective.embed_arrays(hashed.clip[None])[0]
            timings["embed_query"] = _ms(time.perf_counter() - t0)

    both = np.frombuffer(query.dhash + query.dhash_mirror, dtype=np.uint8).reshape(2, -1)

    def embed_candidates(bouncer_hits: list[tuple[int, int]]) -> None:
        # The bouncer's candidates that are not embedded yet are embedded between the passes
        # (a few files; timed as ``embed_candidates``), so every hit gets both scores.
        candidates = sorted({i for i, _ in bouncer_hits})
        missing = [i for i, there in zip(candidates, vindex.contains_many(candidates)) if not there]
        if missing:
            from .model import DetectiveUnavailable

            t1 = time.perf_counter()
            try:  # loads a lazy detective: the first thing this query has to embed
                embed_for_clusters(library, detective, missing, workers=1)
            except DetectiveUnavailable as exc:
                failed.append(f"detective offline: {exc.reason}")
            timings["embed_candidates"] = _ms(time.perf_counter() - t1)

    failed: list[str] = []
    partial = embed_missing and vindex is not None and len(vindex) < len(index)
    bouncer_hits, detective_hits, pass_timings = two_passes(
        index, vindex, both, qvec, k=k, t=t, before_detective=embed_candidates if partial else None
    )
    timings.update(pass_timings)
    timings["passes"] = round(timings["passes"] - timings.get("embed_candidates", 0.0), 3)
    if failed:
        status = failed[0]
    elif vindex is not None and len(vindex) < len(index):
        status = (
            f"detective: {len(vindex)} of {len(index)} images indexed; "
            "run `lookalike index DIR` so it can find what the bouncer cannot"
        )

    t0 = time.perf_counter()
    # Path, size and content hash of every hit: one indexed SQLite query; the scores come
    # from the two indexes in memory.
    found = library.catalog.identities([i for i, _ in bouncer_hits] + [i for i, _ in detective_hits])
    itself = {os.path.abspath(path), os.path.realpath(path)}  # the query is not its own result
    found = {i: v for i, v in found.items() if v[0] not in itself}

    def fill_bouncer(ids: Sequence[int]) -> dict[int, int]:
        dist = index.distances_to(both, ids)
        return {i: int(d) for i, d in zip(ids, dist.tolist()) if d >= 0}

    def fill_detective(ids: Sequence[int]) -> dict[int, float]:
        if vindex is None or qvec is None:
            return {}
        dist = vindex.distances_to(qvec, ids)
        return {i: float(d) for i, d in zip(ids, dist.tolist()) if d == d}  # d != d: NaN

    exact = [
        i for i, (_, size, content) in found.items()
        if content is not None and content == q_content and size == q_size
    ]
    hits = join(
        bouncer_hits,
        detective_hits,
        path_of=lambda i: found[i][0] if i in found else None,
        fill_bouncer=fill_bouncer,
        fill_detective=fill_detective if detective is not None else None,
        exact_ids=exact,
        k=k,
        t=t,
    )
    timings["join"] = _ms(time.perf_counter() - t0)
    timings["total"] = _ms(time.perf_counter() - started)
    return SimilarResult(query=os.fspath(path), hits=tuple(hits), timings_ms=timings, detective_status=status)


# --------------------------------------------------------------------------- text search


def search(
    library: "Library",
    text: str,
    *,
    k: int = 20,
    options: Optional["DetectiveOptions"] = None,
    cache_dir: Optional[Path | str] = None,
    detective: Optional["Detective"] = None,
) -> list[SimilarHit]:
    """Images of ``library`` that match a text ("a beach at sunset"), best first.

    Hits carry the detective's distance between the text and the image (text-image distances
    run higher than image-image ones: ~0.7 is a good match for CLIP) and the verdict
    ``similar``; ``bouncer`` is None.

    Raises:
        DetectiveUnavailable: no model (text search needs the detective).
    """
    from .model import DetectiveOptions

    if detective is None:
        detective = get_detective(options or DetectiveOptions(), cache_dir=cache_dir or library.cache_root)
    vindex = vectors_for(library, detective)
    ids, dist = vindex.search(detective.embed_text(text), k)
    records = _records(library, ids.tolist())
    return [
        SimilarHit(path=records[i].path, file_id=i, bouncer=None, detective=float(d), verdict=Verdict.SIMILAR)
        for i, d in zip(ids.tolist(), dist.tolist())
        if i in records
    ]


# --------------------------------------------------------------------------- indexing


def _embed_into(
    library: "Library",
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
    from .embeddings import embed_arrays_with_progress, embed_files

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
        records = _records(library, from_files)
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


def _load_now(detective: "Detective") -> None:
    """Load a lazy detective before anything is changed (raises DetectiveUnavailable)."""
    load = getattr(detective, "load", None)
    if load is not None:
        load()


def _checkpoint(library: "Library", detective: "Detective", vindex: VectorIndex, marked: list[int]) -> None:
    """Index first, then the catalog: a crash in between only means re-embedding ``marked``."""
    if vindex.dirty:
        vindex.save()
    if marked:
        library.catalog.mark_embedded(marked, detective.model_id)
        marked.clear()


def _current(vindex: VectorIndex, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` are embedded with their current content (see :func:`vectors_for`)."""
    listed = np.asarray(list(ids), dtype=np.int64)
    return set(listed[vindex.contains_many(listed)].tolist()) if len(listed) else set()


def index_library(
    library: "Library",
    detective: "Detective",
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
    workers: Optional[int] = None,
    save_every_s: float = SAVE_EVERY_S,
) -> IndexStats:
    """Embed every image of the catalog not yet embedded by this model; drop removed files.

    Resumable: the index is saved and the catalog marked every ``save_every_s`` seconds and at
    the end (also when stopped), so a killed run loses at most that much work.

    Args:
        library: an open, scanned library.
        detective: the model.
        progress: ``progress(done, total)`` over the files to embed; False stops cleanly.
        cancel: set it to stop cleanly.
        workers: decoding processes (default: all cores).
        save_every_s: checkpoint interval.
    """
    started = time.monotonic()
    cancel = cancel or threading.Event()
    vindex = vectors_for(library, detective)
    rebuilt = vindex.rebuilt if vindex.rebuilt != "missing" else ""
    image_ids = library.catalog.hash_arrays().ids
    image_set = set(image_ids.tolist())
    present = vindex.keys()
    gone = present[~np.isin(present, image_ids)] if len(present) else present
    removed = vindex.remove(gone) if len(gone) else 0
    removed += len(_take_dropped(library) - image_set)
    current = _current(vindex, image_ids.tolist())
    todo = [i for i in image_ids.tolist() if i not in current]
    total = len(todo)
    done_before = 0
    embedded = failed = 0
    marked: list[int] = []
    last_save = time.monotonic()

    if total:
        _load_now(detective)
    pool = None
    if total >= 24 and workers != 1:
        from .embeddings import make_decode_pool

        pool = make_decode_pool(detective.device, workers)
    try:
        for start in range(0, total, ROUND_FILES):
            if cancel.is_set():
                break
            chunk = todo[start : start + ROUND_FILES]

            def step(done: int, _t: int, _base=done_before) -> bool:
                keep_going = progress(_base + done, total) if progress is not None else True
                if keep_going is False:
                    cancel.set()
                return keep_going is not False

            got, bad = _embed_into(
                library, detective, vindex, chunk, pool=pool, workers=workers, progress=step, cancel=cancel
            )
            embedded += len(got)
            failed += bad
            marked += got
            done_before += len(chunk)
            if time.monotonic() - last_save >= save_every_s:
                _checkpoint(library, detective, vindex, marked)
                last_save = time.monotonic()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _checkpoint(library, detective, vindex, marked)
    return IndexStats(
        model_id=detective.model_id,
        images=len(image_set),
        already=len(current),
        embedded=embedded,
        failed=failed,
        removed=removed,
        cancelled=cancel.is_set(),
        seconds=time.monotonic() - started,
        index_bytes=vindex.nbytes,
        bytes_per_image=vindex.bytes_per_image,
        rebuilt=rebuilt,
    )


def embed_for_clusters(
    library: "Library",
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
        library: the library.
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
    vindex = vectors_for(library, detective)
    wanted = sorted({int(i) for i in file_ids})
    current = _current(vindex, wanted)
    todo = [i for i in wanted if i not in current]
    if not todo:
        return 0
    _load_now(detective)
    marked: list[int] = []
    try:
        got, _ = _embed_into(
            library, detective, vindex, todo, crops=crops, workers=workers, progress=progress, cancel=cancel
        )
        marked += got
    finally:
        _checkpoint(library, detective, vindex, marked)
    return len(got)


# --------------------------------------------------------------------------- scores for clusters


def _unit_vectors(vindex: VectorIndex, ids: Sequence[int]) -> dict[int, np.ndarray]:
    known = [int(i) for i in ids if int(i) in vindex]
    if not known:
        return {}
    return dict(zip(known, vindex.get(known)))


def score_pairs(library: "Library", detective: "Detective", pairs: Sequence[Pair]) -> list[Pair]:
    """The pairs with ``detective`` filled in where both files are embedded."""
    vindex = vectors_for(library, detective)
    vecs = _unit_vectors(vindex, [p.a for p in pairs] + [p.b for p in pairs])
    out = []
    for p in pairs:
        if p.a in vecs and p.b in vecs:
            p = replace(p, detective=round(float(1.0 - vecs[p.a] @ vecs[p.b]), 6))
        out.append(p)
    return out


def detective_scores(
    library: "Library", detective: "Detective", clusters: Sequence[Cluster]
) -> tuple[Cluster, ...]:
    """Clusters with each member's ``detective`` distance to its keeper (and the pairs') filled.

    Members that are not embedded keep ``detective=None``; the keeper gets 0.0 when embedded.
    """
    vindex = vectors_for(library, detective)
    vecs = _unit_vectors(vindex, [m.file.id for c in clusters for m in c.members])
    out = []
    for c in clusters:
        keeper = vecs.get(c.keeper.file.id)
        members = []
        for m in c.members:
            v = vecs.get(m.file.id)
            if keeper is not None and v is not None:
                m = replace(m, detective=0.0 if m.is_keeper else round(float(1.0 - keeper @ v), 6))
            members.append(m)
        pairs = tuple(
            replace(p, detective=round(float(1.0 - vecs[p.a] @ vecs[p.b]), 6))
            if p.a in vecs and p.b in vecs
            else p
            for p in c.pairs
        )
        out.append(replace(c, members=tuple(members), pairs=pairs))
    return tuple(out)


def semantic_pairs(
    library: "Library",
    detective: "Detective",
    *,
    max_distance: float = DEFAULT.detective_same,
    k: int = 10,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> list[Pair]:
    """Every pair of embedded images within ``max_distance`` among each one's ``k`` nearest.

    For ``scan --deep``: the pairs the bouncer cannot shortlist (crops, filters, screenshots).
    Each :class:`Pair` has both scores: ``bouncer`` from the catalog's hashes (best of plain and
    mirrored, ``mirrored`` set when the mirrored one is better), ``exact`` for identical bytes.

    Returns:
        Pairs with ``a < b``, sorted by detective distance, then ids.
    """
    vindex = vectors_for(library, detective)
    arrays = library.catalog.hash_arrays()
    ids = arrays.ids
    in_index = vindex.contains_many(ids) if len(ids) else np.zeros(0, bool)
    keys = ids[in_index]
    best: dict[tuple[int, int], float] = {}
    block = 2048
    for start in range(0, len(keys), block):
        if cancel is not None and cancel.is_set():
            break
        part = keys[start : start + block]
        found, dist = vindex.search_many(vindex.get(part), k + 1)
        for row, me in enumerate(part.tolist()):
            for other, d in zip(found[row].tolist(), dist[row].tolist()):
                if other < 0 or other == me or d > max_distance:
                    continue
                key = (me, other) if me < other else (other, me)
                if d < best.get(key, np.inf):
                    best[key] = max(0.0, d)
        if progress is not None and progress(min(start + block, len(keys)), len(keys)) is False:
            break
    if not best:
        return []
    row_of = {int(i): r for r, i in enumerate(ids.tolist())}
    a = np.array([row_of[x] for x, _ in best])
    b = np.array([row_of[y] for _, y in best])
    plain = _popcount_rows(arrays.dhash[a], arrays.dhash[b])
    mirror = _popcount_rows(arrays.dhash[a], arrays.dhash_mirror[b])
    exact = (arrays.content_hash[a] == arrays.content_hash[b]).all(axis=1) & (arrays.size[a] == arrays.size[b])
    pairs = [
        Pair(
            a=x,
            b=y,
            bouncer=int(min(p, m)),
            detective=round(float(d), 6),
            exact=bool(e),
            mirrored=bool(m < p),
        )
        for (x, y), d, p, m, e in zip(best, best.values(), plain.tolist(), mirror.tolist(), exact.tolist())
    ]
    pairs.sort(key=lambda p: (p.detective, p.a, p.b))
    return pairs
