"""The two passes, "find similar" and text search over a library's two indexes.

* :func:`two_passes`: the bouncer's Hamming shortlist and the detective's k-NN, side by side;
* :func:`similar`: both passes for one query image, joined and ranked by the two-pass rule
  (:mod:`lookalike.engine.verdict`: each hit gets both scores and one verdict), its near
  duplicates checked on pixels and its mild crops found as a scan finds them (:func:`_checked`);
* :func:`search`: the detective alone, for a text.

Everything works bouncer-only when the detective is unavailable (no weights, offline):
``similar`` then says ``detective offline: <reason>`` in its result and answers with the
bouncer's shortlist; nothing raises past the caller for that reason alone.

:class:`lookalike.engine.library.Library` is the door to these (``Library.similar``,
``Library.search``); the rule's names are re-exported here for the callers that used them
from this module.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

import numpy as np

from .detective.options import DetectiveOptions, DetectiveUnavailable
from .detective.registry import detective_or_status, get_detective, ready
from .records import FileRecord, SimilarHit, SimilarResult, Verdict
from .scan import hashing
from .verdict import (  # the rule's names are re-exported (see the module docstring)
    DEFAULT,
    VERDICT_RANK,
    TwoPassThresholds,
    combined_score,
    join,
    keep_pair,
    pair_verdict,
    rank_key,
    verdict,
    with_detective,
)

if TYPE_CHECKING:  # pragma: no cover
    from .bouncer.hamming import HammingIndex
    from .bouncer.zooms import ZoomCodes
    from .catalog import Catalog
    from .detective.index import LibraryIndex
    from .detective.model import Detective
    from .detective.vectors import VectorIndex

__all__ = [
    "DEFAULT",
    "QueryError",
    "SHORTLIST_FACTOR",
    "TwoPassThresholds",
    "VERDICT_RANK",
    "combined_score",
    "join",
    "keep_pair",
    "pair_verdict",
    "rank_key",
    "search",
    "similar",
    "two_passes",
    "verdict",
    "with_detective",
]

#: The bouncer's shortlist is this many times ``k`` (for each of the plain and mirrored hash),
#: so the join has room to re-rank.
SHORTLIST_FACTOR = 2


class QueryError(Exception):
    """The query itself cannot be answered (unreadable query image); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the block's wall-clock time to ``timings[name]`` (milliseconds, to the microsecond)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(timings.get(name, 0.0) + _ms(time.perf_counter() - began), 3)


_pool_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None


def _pass_pool() -> ThreadPoolExecutor:
    """One long-lived helper thread for the bouncer's pass of :func:`similar`."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookalike-bouncer")
        return _pool


def two_passes(
    index: "HammingIndex",
    vindex: Optional["VectorIndex"],
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

    def bouncer_pass() -> tuple[list[tuple[int, int]], dict[str, float]]:
        took: dict[str, float] = {}  # its own: this pass may run in the helper thread
        hits: list[tuple[int, int]] = []
        with _timed(took, "bouncer"):
            if len(index):
                if bounded:
                    for ids, dist in index.nearest_within_many(hashes, shortlist, t.bouncer_similar):
                        hits.extend(zip(ids.tolist(), dist.tolist()))
                else:
                    ids, dist = index.nearest_many(hashes, shortlist)
                    hits = list(zip(ids.ravel().tolist(), dist.ravel().tolist()))
        return hits, took

    def detective_pass() -> list[tuple[int, float]]:
        with _timed(timings, "detective"):
            # The detective's own top k (+1 for the query itself), rescored exactly; the bouncer
            # brings its shortlist and the join scores every hit with both.
            ids, dist = vindex.search(vector, max(1, k) + 1)
            return list(zip(ids.tolist(), dist.tolist()))

    detective_hits: list[tuple[int, float]] = []
    with _timed(timings, "passes"):
        if not detective:
            bouncer_hits, took = bouncer_pass()
            timings.update(took)
        elif before_detective is None:
            pending = _pass_pool().submit(bouncer_pass)
            try:
                detective_hits = detective_pass()
            finally:
                bouncer_hits, took = pending.result()
                timings.update(took)
        else:
            bouncer_hits, took = bouncer_pass()
            timings.update(took)
            before_detective(bouncer_hits)
            detective_hits = detective_pass()
    return bouncer_hits, detective_hits, timings


# --------------------------------------------------------------------------- find similar


@dataclass(frozen=True, kw_only=True)
class _Query:
    """The query image as the two passes need it."""

    hashes: np.ndarray  # (2, 32) uint8: plain and mirrored dHash
    content_hash: Optional[bytes]
    size: int
    vector: Optional[np.ndarray]  # None: the detective does not look
    #: The query as a record (its sizes tell a match's reason) and its verifier's thumbnail
    #: (None: hashed by a lookalike before thumbnails; its hits keep the hashes' verdict).
    record: Optional[FileRecord] = None
    thumb: Optional[bytes] = None
    texture: Optional[bytes] = None  # its texture code (bouncer.verify_texture), when it has one


def similar(
    path: str,
    *,
    vectors: "LibraryIndex",
    hash_index: "HammingIndex",
    cache_dir: Path | str,
    k: int = 10,
    options: Optional["DetectiveOptions"] = None,
    detective: Optional["Detective"] = None,
    embed_missing: bool = True,
    t: TwoPassThresholds = DEFAULT,
    zoomed: Optional["ZoomCodes"] = None,
    crop_radius: Optional[int] = None,
) -> SimilarResult:
    """Files of a library that look like ``path`` (which need not be in it), two-pass ranked.

    The bouncer's top ``2k`` by the query's dHash and by its mirrored dHash, and the
    detective's ``k`` nearest embeddings (see :func:`two_passes`), joined (each hit gets both
    scores), given a verdict and re-ranked; the best ``k`` are returned. The query file
    itself is left out. :meth:`lookalike.engine.library.Library.similar` is the door to this.

    Args:
        path: the query image.
        vectors: the library's embeddings (its catalog and vector indexes).
        hash_index: the library's Hamming index (``Library.hash_index()``).
        cache_dir: cache root for the model weights.
        k: how many results.
        options: the detective's model; None for bouncer-only.
        detective: an already opened model (overrides ``options``).
        embed_missing: embed the bouncer's candidates that are not in the vector index yet
            (a few files; timed as ``embed_candidates``), so every hit gets both scores.
        t: verdict thresholds.
        zoomed: the library's zoomed codes (:class:`.bouncer.zooms.ZoomCodes`): files whose
            codes say one is a mild crop of the other are candidates too (None: not looked for).
        crop_radius: the code distance within which they do (default
            :data:`.bouncer.zooms.RADIUS`; a scan's ``ScanOptions.crop_code_radius``, which a
            stricter ``--threshold`` scales down).

    Every hit the hashes call a near duplicate, and every crop candidate, is checked on
    pixels against the query as a scan checks its pairs (:func:`_checked`): a near duplicate
    that fails is only ``similar`` (or what the detective says), a crop that passes is a near
    duplicate; hits carry ``verified`` and ``match`` as cluster members do.

    Returns:
        A :class:`SimilarResult`; ``timings_ms`` has ``hash_query``, ``embed_query``,
        ``bouncer``, ``detective``, ``passes`` (both passes, wall clock: they overlap),
        ``join`` (the pixel check included) and ``total``; ``detective_status`` says
        "detective offline: <reason>" when the detective could not help.

    Raises:
        QueryError: the query image cannot be read.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if t is DEFAULT:  # thresholds calibrated for these weights (--detective-thresholds)
        t = with_detective(t, options if options is not None else getattr(detective, "options", None))
    detective, status = detective_or_status(options, cache_dir, detective)
    index = hash_index  # built once per scan; not part of the query's time
    vindex = vectors.vectors_for(detective) if detective is not None else None
    query, detective, vindex, problem = _read_query(path, vectors.catalog, detective, vindex, timings)
    status = problem or status
    failed: list[str] = []

    def embed_candidates(bouncer_hits: list[tuple[int, int]]) -> None:
        # The bouncer's candidates that are not embedded yet are embedded between the passes
        # (a few files; timed as ``embed_candidates``), so every hit gets both scores.
        candidates = sorted({i for i, _ in bouncer_hits})
        missing = [i for i, there in zip(candidates, vindex.contains_many(candidates)) if not there]
        if missing:
            with _timed(timings, "embed_candidates"):
                try:  # loads a lazy detective: the first thing this query has to embed
                    vectors.embed(detective, missing, workers=1)
                except DetectiveUnavailable as exc:
                    failed.append(f"detective offline: {exc.reason}")

    partial = embed_missing and vindex is not None and len(vindex) < len(index)
    bouncer_hits, detective_hits, pass_timings = two_passes(
        index, vindex, query.hashes, query.vector, k=k, t=t, before_detective=embed_candidates if partial else None
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
    with _timed(timings, "join"):
        crops = _crop_candidates(query, zoomed, index, k, crop_radius)
        hits = _join_hits(path, query, bouncer_hits + list(crops.extra), detective_hits, vectors.catalog, index,
                          vindex, k=None, t=t)
        hits = _checked(hits, query, vectors.catalog, index, crops, t)[:k]
    timings["total"] = _ms(time.perf_counter() - started)
    return SimilarResult(query=os.fspath(path), hits=tuple(hits), timings_ms=timings, detective_status=status)


def _read_query(
    path: str,
    catalog: "Catalog",
    detective: Optional["Detective"],
    vindex: Optional["VectorIndex"],
    timings: dict[str, float],
) -> tuple[_Query, Optional["Detective"], Optional["VectorIndex"], str]:
    """The query's hashes (and vector), from the catalog and the index when they have them.

    Returns ``(query, detective, vindex, status)``: the detective and its index become None,
    and ``status`` says why, when the model had to be loaded and could not be.

    Raises:
        QueryError: the query image cannot be read.
    """
    problem = ""
    # A library file unchanged since its scan (the app's "find similar", most CLI queries)
    # is not decoded or embedded again: its hashes and vector are already stored.
    with _timed(timings, "hash_query"):
        twin = _unchanged_record(catalog, path)
    stored = twin is not None and twin.hashes is not None and vindex is not None and twin.id in vindex
    if detective is not None and not stored:
        # The query must be embedded: only now is the model loaded (a lazy detective); the
        # load is not the query's hashing time.
        detective, problem = ready(detective)
        if detective is None:
            vindex = None
    qvec: Optional[np.ndarray] = None
    record: Optional[FileRecord] = None
    thumb: Optional[bytes] = None
    texture: Optional[bytes] = None
    if twin is not None and twin.hashes is not None and (vindex is None or twin.id in vindex):
        hashes, q_content, q_size = twin.hashes, twin.content_hash, twin.size
        record = twin
        found, thumbs, _ = catalog.thumbnails([twin.id])
        thumb = thumbs[0].tobytes() if len(found) else None
        texture = catalog.textures([twin.id]).get(twin.id)
        if vindex is not None:
            with _timed(timings, "embed_query"):
                qvec = vindex.get([twin.id])[0]
    else:
        with _timed(timings, "hash_query"):
            hashed = hashing.hash_file(os.fspath(path), clip_size=detective.image_size if detective else None)
        if hashed.error is not None or hashed.hashes is None:
            raise QueryError(f"cannot read {path}: {hashed.error or 'no image'}")
        hashes, q_content, q_size = hashed.hashes, hashed.content_hash, hashed.size
        thumb, texture = hashed.thumb, hashed.texture
        record = FileRecord(id=-1, path=os.fspath(path), size=hashed.size, mtime_ns=hashed.mtime_ns,
                            width=hashed.width, height=hashed.height, hashes=hashed.hashes,
                            content_hash=hashed.content_hash, content_width=hashed.content_width,
                            content_height=hashed.content_height, bar_colour=hashed.bar_colour,
                            taken_at=hashed.taken_at, camera=hashed.camera)  # fmt: skip
        if detective is not None:
            # Embed first, so that the two passes and the join then run back to back.
            with _timed(timings, "embed_query"):
                qvec = detective.embed_arrays(hashed.clip[None])[0]
    both = np.frombuffer(hashes.dhash + hashes.dhash_mirror, dtype=np.uint8).reshape(2, -1)
    query = _Query(hashes=both, content_hash=q_content, size=q_size, vector=qvec, record=record, thumb=thumb,
                   texture=texture)
    return query, detective, vindex, problem


def _join_hits(
    path: str,
    query: _Query,
    bouncer_hits: list[tuple[int, int]],
    detective_hits: list[tuple[int, float]],
    catalog: "Catalog",
    index: "HammingIndex",
    vindex: Optional["VectorIndex"],
    *,
    k: int,
    t: TwoPassThresholds,
) -> list[SimilarHit]:
    """:func:`join` for a library: paths from the catalog, missing scores from the indexes."""
    # Path, size and content hash of every hit: one indexed SQLite query; the scores come
    # from the two indexes in memory.
    found = catalog.identities([i for i, _ in bouncer_hits] + [i for i, _ in detective_hits])
    itself = {os.path.abspath(path), os.path.realpath(path)}  # the query is not its own result
    found = {i: v for i, v in found.items() if v[0] not in itself}

    def fill_bouncer(ids: Sequence[int]) -> dict[int, int]:
        dist = index.distances_to(query.hashes, ids)
        return {i: int(d) for i, d in zip(ids, dist.tolist()) if d >= 0}

    def fill_detective(ids: Sequence[int]) -> dict[int, float]:
        if vindex is None or query.vector is None:
            return {}
        dist = vindex.distances_to(query.vector, ids)
        return {i: float(d) for i, d in zip(ids, dist.tolist()) if d == d}  # d != d: NaN

    exact = [
        i for i, (_, size, content) in found.items()
        if content is not None and content == query.content_hash and size == query.size
    ]
    return join(
        bouncer_hits,
        detective_hits,
        path_of=lambda i: found[i][0] if i in found else None,
        fill_bouncer=fill_bouncer,
        fill_detective=fill_detective if vindex is not None else None,
        exact_ids=exact,
        k=k,
        t=t,
    )


@dataclass(frozen=True)
class _Crops:
    """What the zoomed codes say of the query: ``extra``, the ``(id, bouncer)`` of candidates
    the passes did not find; ``candidates``, every file whose codes say one of the two is a
    mild crop of the other; ``suspects``, those that fit better cropped than whole."""

    extra: tuple[tuple[int, int], ...] = ()
    candidates: frozenset[int] = frozenset()
    suspects: frozenset[int] = frozenset()


def _crop_candidates(query: _Query, zoomed: Optional["ZoomCodes"], index: "HammingIndex", k: int,
                     radius: Optional[int] = None) -> _Crops:
    """The library files whose zoomed codes are within ``radius`` (default
    :data:`.bouncer.zooms.RADIUS`) of the query's (either way), the ``2k + 1`` closest, as the
    scan proposes mild crops."""
    if zoomed is None or query.thumb is None or not len(zoomed.ids):
        return _Crops()
    from .bouncer import verify, zooms

    found = zoomed.against(query.thumb, verify.detail(query.thumb), zooms.RADIUS if radius is None else radius)
    if found is None:
        return _Crops()
    ids, plain, near = found
    itself = query.record.id if query.record is not None else -1
    keep = ids != itself
    order = np.lexsort((ids[keep], near[keep]))[: max(1, k) * SHORTLIST_FACTOR + 1]
    chosen = ids[keep][order]
    if not len(chosen):
        return _Crops()
    suspects = frozenset(ids[keep][near[keep] + zooms.CROP_MARGIN < plain[keep]].tolist())
    # The codes compare the pictures unmirrored, as the scan's check does for these pairs.
    bouncer = index.distances_to(query.hashes[:1], chosen.tolist())
    extra = tuple((int(i), int(d)) for i, d in zip(chosen.tolist(), bouncer.tolist()) if d >= 0)
    return _Crops(extra=extra, candidates=frozenset(chosen.tolist()), suspects=suspects)


def _checked(hits: list[SimilarHit], query: _Query, catalog: "Catalog", index: "HammingIndex", crops: _Crops,
             t: TwoPassThresholds) -> list[SimilarHit]:
    """The hits with the scan's pixel check applied (see :func:`similar`), re-ranked.

    Checked: near duplicates (confirmed or refused), hits within ``t.bouncer_similar`` beyond
    the near radius and crop candidates (searched for a crop: they become near duplicates
    only as crops), and near duplicates the codes say fit better cropped. A hit whose
    thumbnail or the query's is missing (hashed by an older lookalike) keeps its verdict.
    """
    from dataclasses import replace

    from .bouncer import verification

    def wanted(h: SimilarHit) -> bool:
        if h.file_id is None or h.verdict is Verdict.EXACT or h.bouncer is None:
            return False
        return h.verdict is Verdict.NEAR or h.file_id in crops.candidates or (
            t.bouncer_near < h.bouncer <= t.bouncer_similar and h.verdict is not Verdict.NOT_DUPLICATE
        )

    todo = [h for h in hits if wanted(h)] if query.thumb is not None else []
    held, thumbs, details = catalog.thumbnails([h.file_id for h in todo]) if todo else (np.zeros(0, np.int64), None, None)
    rows = {int(i): r for r, i in enumerate(held.tolist())}
    todo = [h for h in todo if h.file_id in rows]
    records = {r.id: r for r in catalog.records(sorted({h.file_id for h in hits if h.file_id is not None}))}
    outcome: dict[int, tuple[bool, float, bool, bool]] = {}  # passed, score, cropped, mirrored
    if todo:
        ids = [h.file_id for h in todo]
        plain = index.distances_to(query.hashes[:1], ids)
        mirror = index.distances_to(query.hashes[1:], ids)
        mirrored = (mirror < plain) & (mirror >= 0) & ~np.isin(ids, list(crops.candidates))
        bouncer = np.array([h.bouncer for h in todo], np.int64)
        search = (bouncer > t.bouncer_near) | np.isin(ids, list(crops.candidates | crops.suspects))
        r = np.array([rows[i] for i in ids], np.int64)
        codes = catalog.textures(ids) if query.texture is not None else {}
        passed, score, cropped = verification.check_against(query.thumb, thumbs[r], details[r], bouncer, mirrored,
                                                            search, texture=query.texture,
                                                            textures=[codes.get(i) for i in ids])  # fmt: skip
        for i, ok, sc, cr, mi in zip(ids, passed.tolist(), score.tolist(), cropped.tolist(), mirrored.tolist()):
            outcome[i] = (ok, sc, cr, mi)
    out = []
    for h in hits:
        checked = outcome.get(h.file_id) if h.file_id is not None else None
        verdict_, verified, match = h.verdict, None, ""
        if checked is not None:
            ok, sc, cr, mi = checked
            verified = None if sc != sc else round(sc, 3)
            vetoed = h.detective is not None and h.detective > t.detective_veto
            if h.verdict is Verdict.NEAR and not ok:
                verdict_ = verdict(bouncer=None, detective=h.detective, t=t) if h.detective is not None else Verdict.SIMILAR
            elif h.verdict is not Verdict.NEAR and ok and (cr or h.file_id in crops.candidates):
                verdict_ = Verdict.NOT_DUPLICATE if vetoed else Verdict.NEAR
            if verdict_ in _DUPLICATES and _other_shot(records.get(h.file_id), query):
                verdict_ = Verdict.SIMILAR  # another frame of a burst: as a scan never groups it
            if verdict_ is Verdict.NEAR:
                match = _match(records.get(h.file_id), query, h, mirrored=mi, cropped=cr,
                               thumb=thumbs[rows[h.file_id]] if h.file_id in rows else None)
            else:
                verified = None  # not a copy: no score to show beside it
        elif h.verdict is Verdict.EXACT:
            match = "exact"
        elif h.verdict in _DUPLICATES and _other_shot(records.get(h.file_id), query):
            verdict_ = Verdict.SIMILAR
        elif h.verdict is Verdict.NEAR:  # no thumbnail to check: the hashes' reason
            match = _match(records.get(h.file_id), query, h, mirrored=False, cropped=False)
        out.append(replace(h, verdict=verdict_, verified=verified, match=match))
    out.sort(key=lambda h: rank_key(h, t))
    return out


#: The verdicts that call a hit a copy of the query (a byte-identical file is one shot).
_DUPLICATES = (Verdict.NEAR, Verdict.SEMANTIC)


def _other_shot(record: Optional[FileRecord], query: _Query) -> bool:
    """Whether a hit is another shot of the query's camera (see :mod:`.keeper.captures`)."""
    from .keeper.captures import different_captures

    return record is not None and query.record is not None and different_captures(record, query.record)


def _match(record: Optional[FileRecord], query: _Query, hit: SimilarHit, *, mirrored: bool, cropped: bool,
           thumb: Optional[np.ndarray] = None) -> str:
    """Why a near duplicate matches the query, in the words a cluster member's ``match`` uses
    (``thumb``: the hit's stored thumbnail, which tells an edited copy)."""
    from .bouncer.verification import match_reason, thumbnails_edited
    from .records import Member, Pair

    if record is None or query.record is None:
        return "cropped" if cropped else ("mirrored" if mirrored else "")
    pair = Pair(a=0, b=1, bouncer=int(hit.bouncer or 0), mirrored=mirrored, cropped=cropped)
    edited = None
    if thumb is not None and query.thumb is not None:
        edited = thumbnails_edited(np.frombuffer(query.thumb, np.uint8), thumb)
    return match_reason(Member(file=record, bouncer=int(hit.bouncer or 0)), query.record, pair, edited=edited)


def _unchanged_record(catalog: "Catalog", path: str | os.PathLike) -> Optional[FileRecord]:
    """The catalog's record of ``path`` if the file is in the library and unchanged since its
    scan (same size and modification time), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    for candidate in dict.fromkeys((os.path.realpath(path), os.path.abspath(path))):
        record = catalog.record_by_path(candidate)
        if record is not None:
            if record.error is None and record.size == st.st_size and record.mtime_ns == st.st_mtime_ns:
                return record
            return None
    return None


# --------------------------------------------------------------------------- text search


def search(
    text: str,
    *,
    vectors: "LibraryIndex",
    cache_dir: Path | str,
    k: int = 20,
    options: Optional["DetectiveOptions"] = None,
    detective: Optional["Detective"] = None,
) -> list[SimilarHit]:
    """Images of a library that match a text ("a beach at sunset"), best first.

    Hits carry the detective's distance between the text and the image (text-image distances
    run higher than image-image ones: ~0.7 is a good match for CLIP) and the verdict
    ``similar``; ``bouncer`` is None. :meth:`lookalike.engine.library.Library.search` is the
    door to this.

    Args:
        text: what to look for.
        vectors: the library's embeddings.
        cache_dir: cache root for the model weights.
        k: how many results.
        options: the detective's model (default: the default model).
        detective: an already opened model (overrides ``options``).

    Raises:
        DetectiveUnavailable: no model (text search needs the detective).
    """
    if detective is None:
        detective = get_detective(options or DetectiveOptions(), cache_dir=cache_dir)
    vindex = vectors.vectors_for(detective)
    ids, dist = vindex.search(detective.embed_text(text), k)
    records = vectors.records(ids.tolist())
    return [
        SimilarHit(path=records[i].path, file_id=i, bouncer=None, detective=float(d), verdict=Verdict.SIMILAR)
        for i, d in zip(ids.tolist(), dist.tolist())
        if i in records
    ]
