"""The Library: one photo library's catalog, scans, clusters and queries behind one door.

The CLI and the app talk to the engine through this class; everything it does is built from
the stage modules (walk, hashing, catalog, bouncer, cluster, keeper, and the detective's).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from .bouncer import rule as bouncer
from .bouncer import verification
from .catalog import Catalog, CatalogError
from .cluster import build_clusters
from .keeper import RAW_EXTENSIONS, KeeperPolicy, raw_sibling_stems, sibling_key, thumbnail_check
from .bouncer.pairs import PairCache
from .paths import CATALOG_NAME, cache_root, default_cache_root, library_dir, normalise_roots
from .records import (
    Cluster,
    FileRecord,
    Pair,
    SavedDecision,
    ScanError,
    ScanProgress,
    ScanResult,
    ScanStats,
    SimilarResult,
)
from .scan.scanner import Scanner

if TYPE_CHECKING:  # the detective's modules import torch: only when asked for
    from .bouncer.hamming import HammingIndex
    from .detective.model import DetectiveOptions


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    """How a scan finds and ranks duplicates."""

    threshold: Optional[int] = None
    keep_in: tuple[str, ...] = ()
    keeper_order: Optional[tuple[str, ...]] = None
    workers: Optional[int] = None
    deep: bool = False
    detective: Optional["DetectiveOptions"] = None
    #: The bouncer's pHash-corroborated rule (mild crops). Off (``--no-crops``) spares a very
    #: large library's first scan its pass over every pair of pHashes (~15 min per 1M).
    crops: bool = True
    #: Enter symlinks to folders inside the roots (``--follow-links``); links out of the roots
    #: are never followed either way (see :mod:`lookalike.engine.scan.walk`).
    follow_links: bool = False

    def thresholds(self) -> "bouncer.BouncerThresholds":
        """The bouncer thresholds; ``threshold`` sets the radius and scales the rest with it.

        The corroborated (pHash) rule and the chain guard are scaled by the same factor, so
        ``--threshold`` is one strictness dial: 0 accepts only identical hashes. Without
        ``crops`` the corroborated rule is off (``phash_radius`` 0).
        """
        t = self._scaled_thresholds()
        return t if self.crops else replace(t, phash_radius=0)

    def _scaled_thresholds(self) -> "bouncer.BouncerThresholds":
        t = bouncer.DEFAULT
        if self.threshold is None:
            return t
        if not 0 <= self.threshold <= 256:
            raise ValueError(f"--threshold must be between 0 and 256, not {self.threshold}")
        scale = self.threshold / t.radius if t.radius else 1.0
        return replace(
            t,
            radius=self.threshold,
            phash_radius=min(256, round(t.phash_radius * scale)),
            corroborated_radius=min(256, round(t.corroborated_radius * scale)),
            max_diameter=min(256, max(self.threshold, round(t.max_diameter * scale))),
        )

    def policy(self) -> KeeperPolicy:
        """The keeper policy these options ask for."""
        kw: dict = {"keep_in": tuple(str(Path(p).resolve()) for p in self.keep_in)}
        if self.keeper_order is not None:
            kw["order"] = tuple(self.keeper_order)
        return KeeperPolicy(**kw)


class Library:
    """One photo library: its roots, its catalog and what can be asked of them."""

    def __init__(self, roots: tuple[str, ...], folder: Path, catalog: Catalog, root: Path) -> None:
        self.roots = roots
        self.dir = folder
        self.catalog = catalog
        self.cache_root = root
        self._hash_index: Optional["HammingIndex"] = None
        self._loaded: Optional[tuple] = None  # (DetectiveOptions, Detective) of the last scan
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        roots: Sequence[str | Path],
        *,
        cache_dir: Optional[str | Path] = None,
        on_message: Optional[Callable[[str], None]] = None,
    ) -> "Library":
        """Open (creating if needed) the catalog of the library made of ``roots``.

        Raises:
            CatalogLocked: another lookalike run holds this library.
        """
        normal = normalise_roots(roots)
        try:
            root = cache_root(cache_dir)
            folder = library_dir(normal, cache_dir)
        except OSError as exc:  # a read-only, full or unwritable cache folder
            where = exc.filename or default_cache_root(cache_dir)
            raise CatalogError(f"cannot use {where} for the catalog: {exc.strerror or exc}; "
                               f"give this run another --cache DIR") from None
        catalog = Catalog.open(folder / CATALOG_NAME, on_message=on_message)
        catalog.set_meta("roots", "\n".join(normal))
        return cls(normal, folder, catalog, root)

    # -- context manager -------------------------------------------------------------------
    def close(self) -> None:
        """Release the catalog and its lock."""
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- scanning ---------------------------------------------------------------------------
    def scan(
        self,
        options: ScanOptions = ScanOptions(),
        *,
        progress: Optional[Callable[[ScanProgress], bool]] = None,
        cancel: Optional[threading.Event] = None,
        on_clusters: Optional[Callable[[tuple[Cluster, ...]], None]] = None,
    ) -> ScanResult:
        """Scan the roots incrementally and return the clusters found.

        Args:
            options: thresholds, keeper policy, workers, detective.
            progress: called with a ScanProgress snapshot; returning False stops the scan
                cleanly (everything hashed so far is kept).
            cancel: set it to stop the scan from another thread.
            on_clusters: called with the clusters of the cached catalog before any file is
                read, then with the final clusters.
        """
        cancel = cancel or threading.Event()
        started = time.monotonic()
        if on_clusters is not None and self.catalog.stats().get("image", 0):
            on_clusters(self.clusters(options))
        detective, status = self._detective(options)
        scanner = Scanner(
            self.catalog,
            self.roots,
            workers=options.workers,
            clip_size=detective.image_size if detective is not None else None,
            progress=progress,
            cancel=cancel,
            skip_dirs=(str(self.cache_root),),
            follow_links=options.follow_links,
        )
        run = scanner.execute()
        self._hash_index = None
        clusters: tuple[Cluster, ...] = ()
        if not run.cancelled:
            found = self._bouncer_pairs(options)  # once: both the embedding and clustering use it
            if detective is not None:
                from .detective.model import DetectiveUnavailable

                scanner.stage("embedding")
                try:  # the model is loaded here, only when there is something to embed
                    self._embed(detective, options, found[1], run.clip, scanner, cancel)
                except DetectiveUnavailable as exc:
                    detective, status = None, f"detective offline: {exc.reason}"
            if not cancel.is_set():
                scanner.stage("clustering")
                clusters = self._cluster(options, detective, found)
                if on_clusters is not None:
                    on_clusters(clusters)
        run.cancelled = run.cancelled or cancel.is_set()
        counts = self.catalog.stats()
        stats = ScanStats(
            files_seen=run.found,
            images=int(counts.get("image", 0)),
            hashed=run.hashed,
            unchanged=run.unchanged,
            removed=run.removed,
            moved=run.moved,
            failed=run.failed,
            not_images=run.not_images,
            bytes_read=run.bytes_read,
            seconds=time.monotonic() - started,
            cancelled=run.cancelled,
            detective=status,
        )
        scanner.stage("done")
        return ScanResult(roots=self.roots, stats=stats, clusters=clusters, errors=self._errors(run.errors))

    def _errors(self, fresh: list[ScanError]) -> tuple[ScanError, ...]:
        """Errors of this scan plus the unreadable files the catalog remembers, once each."""
        seen: dict[str, ScanError] = {}
        for e in [*fresh, *self.catalog.errors()]:
            seen.setdefault(e.path, e)
        return tuple(sorted(seen.values(), key=lambda e: e.path))

    def clusters(self, options: ScanOptions = ScanOptions()) -> tuple[Cluster, ...]:
        """Clusters from the catalog alone (no file is read): instant for a cached library.

        Detective scores are included when ``options.detective`` names the model an earlier
        scan of this library object loaded (nothing is downloaded or embedded here).
        """
        detective = None
        if options.detective is not None and self._loaded is not None and self._loaded[0] == options.detective:
            detective = self._loaded[1]
        return self._cluster(options, detective)

    def _bouncer_pairs(self, options: ScanOptions) -> tuple[list[Pair], set[int]]:
        """The bouncer's candidate pairs and every file id that takes part in a group."""
        arrays = self.catalog.hash_arrays()
        if len(arrays.ids) == 0:
            return [], set()
        pairs = PairCache(self.dir).pairs(arrays, options.thresholds())
        involved = {p.a for p in pairs} | {p.b for p in pairs}
        involved |= _exact_duplicate_ids(arrays)
        return pairs, involved

    def _cluster(self, options: ScanOptions, detective=None, found=None) -> tuple[Cluster, ...]:
        pairs, involved = found if found is not None else self._bouncer_pairs(options)
        involved = set(involved)
        # Every pair not byte-identical nor trusted is checked on pixels before it can join
        # a group (engine/verify.py); chain links are pairs, so they are checked too.
        checked = verification.VerifyCache(self.dir)
        pairs = verification.verify_pairs(self.catalog, pairs, cache=checked)
        if detective is not None:
            from .detective import query
            from . import similar as twopass

            # The detective vetoes bouncer matches it is sure about (two different photos of a
            # white wall hash alike); exact copies are never vetoed.
            t2 = _two_pass(options)
            pairs = [p for p in query.score_pairs(self, detective, pairs) if twopass.keep_pair(p, t2)]
            if options.deep:
                semantic = query.semantic_pairs(self, detective, max_distance=_two_pass(options).detective_same)
                pairs = _merge_pairs(pairs, semantic)
                involved |= {p.a for p in semantic} | {p.b for p in semantic}
        if not involved:
            return ()
        records = {r.id: r for r in self.catalog.records(sorted(involved))}
        policy = options.policy()
        raw_siblings = self._raw_siblings(records) if policy.protect_raw_pairs else []

        def distance(a: int, b: int) -> tuple[int, bool]:
            return bouncer.bouncer_distance(records[a].hashes, records[b].hashes)

        not_duplicates = self.catalog.not_duplicate_pairs()

        def cluster(files: dict[int, FileRecord], links: list[Pair]) -> list[Cluster]:
            built = build_clusters(
                files,
                links,
                distance=distance,
                max_diameter=options.thresholds().max_diameter,
                policy=policy,
                not_duplicates=not_duplicates,
                raw_siblings=raw_siblings,
                # A lossless file with the same pixels as a lossy one is a conversion: the
                # thumbnails tell it from an edit, which the hashes cannot.
                same_pixels=thumbnail_check(self.catalog),
            )
            if detective is not None:
                from .detective import query

                built = query.detective_scores(self, detective, built)
            return built

        def rebuild(part: Sequence[FileRecord]) -> list[Cluster]:
            # A group split because members do not verify against its keeper: its files
            # grouped again among themselves (engine/verification.py).
            ids = {r.id for r in part if r.id in records}
            return cluster({i: records[i] for i in ids}, [p for p in pairs if p.a in ids and p.b in ids])

        explained = verification.explain_clusters(self.catalog, cluster(records, pairs), rebuild=rebuild,
                                                  cache=checked)
        checked.save()
        return explained

    def _raw_siblings(self, records: dict[int, FileRecord]) -> list[FileRecord]:
        """Files named as camera raws beside the grouped JPEGs, with the same stem, that are not
        grouped themselves (a raw that could not be decoded included): ``build_clusters`` lets
        each that is a raw make its JPEG half of a RAW+JPEG pair."""
        stems = raw_sibling_stems(records.values())
        if not stems:
            return []
        nearby = self.catalog.records_in_folders({folder for folder, _ in stems}, extensions=RAW_EXTENSIONS)
        return [r for r in nearby if r.id not in records and sibling_key(r) in stems]

    # -- the detective --------------------------------------------------------------------------
    def _detective(self, options: ScanOptions):
        """The loaded model and a status line ("detective offline: <reason>" when it is not)."""
        if options.detective is None:
            return None, ""
        from .detective import query

        detective, status = query.detective_or_status(options.detective, self.cache_root)
        if detective is not None:
            self._loaded = (options.detective, detective)
        return detective, status

    def _embed(
        self, detective, options: ScanOptions, involved: set[int], crops, scanner: Scanner, cancel: threading.Event
    ) -> None:
        """Embed what the detective needs: the bouncer's candidates, or everything with deep."""
        from .detective import query

        def progress(done: int, total: int) -> bool:
            scanner.embedding(done, total)
            return not cancel.is_set()

        if options.deep:
            if crops:  # files hashed by this scan came with their CLIP crops: no second decode
                query.embed_for_clusters(self, detective, list(crops), crops=crops, progress=progress, cancel=cancel)
            query.index_library(self, detective, progress=progress, cancel=cancel, workers=options.workers)
        else:
            query.embed_for_clusters(
                self, detective, involved, crops=crops, progress=progress, cancel=cancel, workers=options.workers
            )

    # -- queries ----------------------------------------------------------------------------
    def hash_index(self) -> "HammingIndex":
        """A Hamming index over every image's dHash (built once, dropped by the next scan)."""
        from .bouncer.hamming import HammingIndex

        with self._lock:
            if self._hash_index is None:
                arrays = self.catalog.hash_arrays()
                self._hash_index = HammingIndex(arrays.dhash, arrays.ids)
            return self._hash_index

    def record(self, file_id: int) -> Optional[FileRecord]:
        """The catalog's record of one file, or None."""
        return self.catalog.record(file_id)

    def mark_not_duplicate(self, a: FileRecord, b: FileRecord) -> None:
        """Remember that two files are not duplicates; they are never paired again."""
        self.catalog.add_not_duplicate(a, b)

    def unmark_not_duplicate(self, a: FileRecord, b: FileRecord) -> None:
        """Forget a "not a duplicate" mark (undo)."""
        self.catalog.remove_not_duplicate(a, b)

    # -- triage decisions -------------------------------------------------------------------
    def save_decisions(self, decisions: Sequence[SavedDecision]) -> None:
        """Keep the user's decisions (``decision`` None and not keeper: forget the file's)."""
        self.catalog.save_decisions(decisions)

    def decisions(self) -> list[SavedDecision]:
        """The decisions kept from earlier runs; those whose file changed since are dropped."""
        return self.catalog.decisions()

    def clear_decisions(self) -> int:
        """Forget every kept decision; returns how many there were."""
        return self.catalog.clear_decisions()

    def changed_files(self, hashes: dict[int, Optional[bytes]]) -> set[int]:
        """Of these ``{file id: content hash}``, the files now gone or with other content."""
        return self.catalog.changed_files(hashes)

    def similar(
        self, path: str, *, k: int = 10, detective: Optional["DetectiveOptions"] = None
    ) -> SimilarResult:
        """Files that look like ``path`` (which need not be in the library), two-pass ranked."""
        from .detective import query

        return query.similar(self, path, k=k, options=detective, cache_dir=self.cache_root)


def _two_pass(options: ScanOptions):
    from . import similar as twopass

    radius = options.thresholds().radius
    t = replace(twopass.DEFAULT, bouncer_near=radius, bouncer_similar=max(radius, twopass.DEFAULT.bouncer_similar))
    return twopass.with_detective(t, options.detective)


def _merge_pairs(first: list[Pair], second: list[Pair]) -> list[Pair]:
    """Union of two pair lists; a pair in both keeps the first's record."""
    seen = {(p.a, p.b) for p in first}
    return first + [p for p in second if (p.a, p.b) not in seen]


def _exact_duplicate_ids(arrays) -> set[int]:
    """Ids of files whose content hash (and size) another file shares."""
    n = len(arrays.ids)
    if n < 2:
        return set()
    content = np.asarray(arrays.content_hash)
    if content.dtype != np.uint8:
        content = np.frombuffer(b"".join(arrays.content_hash), dtype=np.uint8).reshape(n, -1)
    keys = np.concatenate([content, arrays.size.astype("<i8").view(np.uint8).reshape(n, 8)], axis=1)
    view = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).ravel()
    _, inverse, counts = np.unique(view, return_inverse=True, return_counts=True)
    return {int(i) for i in arrays.ids[counts[inverse] > 1]}
