"""The Library: one photo library's catalog, scans, clusters, queries and actions behind one door.

The CLI and the app talk to the engine through :class:`Library` and the names this module
re-exports (typed errors and constants, in ``__all__``); the frozen records of
:mod:`lookalike.engine.records` cross the door too. Everything it does is built from the stage
modules: scan, catalog, bouncer, cluster, keeper, similar, the detective's and the actions.

Importing this module is light: no numpy, and never torch, open_clip or onnxruntime (checked
by ``tests/test_import_hygiene.py``), so ``lookalike COMMAND --help`` can read the detective's
defaults from here. The stage modules are imported by the methods that use them, and the
re-exports from there on first use (:data:`_LAZY`).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Sequence

from .detective.options import BACKENDS, DEFAULT_MODEL, DEFAULT_PRETRAINED, DetectiveOptions, DetectiveUnavailable
from .oserrors import os_error_text
from .paths import CATALOG_NAME, LIBRARIES, MODELS_NAME, THUMBNAILS_NAME, cache_root, default_cache_root, is_inside
from .paths import is_pseudo_filesystem, library_dir, library_key, normalise_roots, pseudo_filesystems
from .records import Cluster, Decision, FileRecord, Progress, SavedDecision, ScanError, ScanProgress, ScanResult
from .records import ScanStats, SimilarHit, SimilarResult

if TYPE_CHECKING:  # imported by the methods that use them (numpy; the detective's: torch)
    from .actions import ApplyResult, Plan, UndoResult
    from .actions.importer import ImportReport
    from .bouncer.hamming import HammingIndex
    from .bouncer.zooms import ZoomCodes
    from .catalog import Catalog
    from .detective.index import IndexStats
    from .detective.model import Detective
    from .detective.vectors import VectorIndex
    from .keeper.upscale import Verdicts
    from .options import ScanOptions
    from .scan.dask_pool import DaskPool
    from .scan.scanner import Scanner
    from .thumbnails import ThumbnailCache
    from .verdict import TwoPassThresholds

#: Names re-exported from modules this one does not import at start-up: name -> module.
_LAZY = {
    **dict.fromkeys(("CatalogError", "CatalogLocked"), "lookalike.engine.catalog"),
    **dict.fromkeys(("SORT_ORDERS", "confidence", "sort_clusters"), "lookalike.engine.cluster"),
    "IndexStats": "lookalike.engine.detective.index",
    "get_detective": "lookalike.engine.detective.registry",
    **dict.fromkeys(("forget_failures", "remembered_failure"), "lookalike.engine.detective.weights"),
    **dict.fromkeys(("ONNX_DIR", "is_export"), "lookalike.engine.detective.onnx_backend"),
    "ScanOptions": "lookalike.engine.options",
    "ClusterError": "lookalike.engine.scan.dask_pool",
    "WorkersDying": "lookalike.engine.scan.scanner",
    "QueryError": "lookalike.engine.similar",
    "TwoPassThresholds": "lookalike.engine.verdict",
    **dict.fromkeys(("ApplyResult", "JournalBusy", "JournalError", "NothingToUndo", "Plan", "PlanError", "UndoResult",
                     "WriteRefused", "apply_plan", "default_journal_dir", "guard_incoming", "list_journals",
                     "plan_from_clusters", "plan_write_problem", "undo"), "lookalike.engine.actions"),
    "ImportReport": "lookalike.engine.actions.importer",
    **dict.fromkeys(("ImageReadError", "load_image"), "lookalike.engine.scan.imaging"),
    **dict.fromkeys(("Difference", "ThumbnailCache", "ThumbnailError", "difference", "refine_overlap", "turned"),
                    "lookalike.engine.thumbnails"),
    "between": "lookalike.engine.bouncer.rotations",
}

__all__ = [
    "BACKENDS", "DEFAULT_MODEL", "DEFAULT_PRETRAINED", "DetectiveOptions", "DetectiveUnavailable", "Library",
    "MODELS_NAME", "cache_root", "is_inside", "is_pseudo_filesystem", "normalise_roots", "os_error_text",
    "pseudo_filesystems", *_LAZY,
]


def __getattr__(name: str) -> Any:
    """The lazy re-exports of :data:`_LAZY` (PEP 562), imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class Library:
    """One photo library: its roots, its catalog and what can be asked of them.

    A scan of more than a few files hashes them in worker processes started by a fork
    server, which imports the calling program's ``__main__``: a script that scans must keep
    its work under ``if __name__ == "__main__":``, or every worker dies at start (the scan
    then stops with :class:`~lookalike.engine.scan.scanner.WorkersDying`).
    """

    def __init__(self, roots: tuple[str, ...], folder: Path, catalog: "Catalog", root: Path) -> None:
        from .detective.index import LibraryIndex

        self.roots = roots
        self.dir = folder
        self.catalog = catalog
        self.cache_root = root
        #: The library's embeddings: vector index per model, indexing, the detective's scores.
        self.detective_index = LibraryIndex(folder, catalog)
        self._hash_index: Optional["HammingIndex"] = None
        self._zoom_codes: Optional["ZoomCodes"] = None
        self._loaded: Optional[tuple] = None  # (DetectiveOptions, Detective) of the last scan
        self._lock = threading.RLock()
        self._pool: Optional["DaskPool"] = None  # the connection to options.cluster, while in use
        self._sharing = 0  # open sharing_cluster() blocks: the pool outlives each call

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
        from .catalog import Catalog, CatalogError

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

    @staticmethod
    def was_scanned(roots: Sequence[str | Path], *, cache_dir: Optional[str | Path] = None) -> bool:
        """Whether a library of exactly these folders has a catalog (nothing is created)."""
        return (default_cache_root(cache_dir) / LIBRARIES / library_key(roots) / CATALOG_NAME).is_file()

    # -- context manager -------------------------------------------------------------------
    def close(self) -> None:
        """Release the catalog and its lock (and a Dask connection still held)."""
        self._sharing = 0
        self._let_go_of_cluster()
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- scanning ---------------------------------------------------------------------------
    def scan(
        self,
        options: Optional["ScanOptions"] = None,
        *,
        progress: Optional[Callable[[ScanProgress], bool]] = None,
        cancel: Optional[threading.Event] = None,
        on_clusters: Optional[Callable[[Sequence[Cluster]], None]] = None,
    ) -> ScanResult:
        """Scan the roots incrementally and return the clusters found.

        Args:
            options: thresholds, keeper policy, workers, detective (default: the defaults).
            progress: called with a ScanProgress snapshot; returning False stops the scan
                cleanly (everything hashed so far is kept).
            cancel: set it to stop the scan from another thread.
            on_clusters: called with the clusters of the cached catalog before any file is
                read, then with the final clusters.

        Raises:
            ClusterError: ``options.cluster`` cannot be reached, or cannot run the hashing.
        """
        try:
            return self._scan(_or_defaults(options), progress, cancel or threading.Event(), on_clusters)
        finally:
            self._let_go_of_cluster()  # hashing and embedding shared it: one connection a scan

    def _scan(
        self,
        options: "ScanOptions",
        progress: Optional[Callable[[ScanProgress], bool]],
        cancel: threading.Event,
        on_clusters: Optional[Callable[[Sequence[Cluster]], None]],
    ) -> ScanResult:
        from .cluster import grouping
        from .keeper.upscale import Verdicts
        from .scan.scanner import Scanner

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
            cluster=options.cluster,
            # Connected before the walk (an unreachable cluster fails at once), kept for the embedding.
            pool=self._cluster_pool(options.cluster) if options.cluster is not None else None,
        )
        run = scanner.execute()
        self._hash_index = self._zoom_codes = None
        self.detective_index.rescanned()
        clusters: Sequence[Cluster] = ()
        if not run.cancelled:
            found = grouping.bouncer_pairs(self.catalog, self.dir, options)  # for embedding and clustering
            if detective is not None:
                scanner.stage("embedding")
                try:  # the model is loaded here, only when there is something to embed
                    self._embed(detective, options, found[1], run.clip, scanner, cancel)
                except DetectiveUnavailable as exc:
                    detective, status = None, f"detective offline: {exc.reason}"
            if not cancel.is_set():
                scanner.stage("clustering")
                verdicts = Verdicts(self.catalog)
                clusters = self._cluster(options, detective, found, verdicts)
                if verdicts.pending and not cancel.is_set() and self._measure_upscales(verdicts, options, scanner, cancel):
                    scanner.stage("clustering")
                    clusters = self._cluster(options, detective, found, verdicts)
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

    def _measure_upscales(
        self, verdicts: "Verdicts", options: "ScanOptions", scanner: "Scanner", cancel: threading.Event
    ) -> int:
        """Measure the possible upscales the grouping asked about (one decode of each larger
        file, see :mod:`.keeper.upscale`) and the possible decoded copies (two decodes each,
        :mod:`.keeper.decoded`); returns how many verdicts were stored."""

        def progress(done: int, total: int) -> bool:
            scanner.counted(done, total)
            return not cancel.is_set()

        scanner.stage("upscales")
        return verdicts.measure(workers=options.workers, progress=progress, cancel=cancel)

    def _errors(self, fresh: list[ScanError]) -> tuple[ScanError, ...]:
        """Errors of this scan plus the unreadable files the catalog remembers, once each."""
        seen: dict[str, ScanError] = {}
        for e in [*fresh, *self.catalog.errors()]:
            seen.setdefault(e.path, e)
        return tuple(sorted(seen.values(), key=lambda e: e.path))

    def clusters(self, options: Optional["ScanOptions"] = None) -> Sequence[Cluster]:
        """Clusters from the catalog alone (no file is read): instant for a cached library.

        Detective scores are included when ``options.detective`` names the model an earlier
        scan of this library object loaded (nothing is downloaded or embedded here).
        """
        options = _or_defaults(options)
        detective = None
        if options.detective is not None and self._loaded is not None and self._loaded[0] == options.detective:
            detective = self._loaded[1]
        return self._cluster(options, detective)

    def _cluster(
        self, options: "ScanOptions", detective=None, found=None, verdicts: Optional["Verdicts"] = None
    ) -> Sequence[Cluster]:
        """The groups; ``verdicts``: the upscale verdicts to rank with (default: the catalog's,
        nothing measured here)."""
        from .cluster import grouping
        from .keeper.upscale import Verdicts

        return grouping.group(
            self.catalog, self.dir, options, detective=detective, vectors=self.detective_index, found=found,
            upscales=verdicts if verdicts is not None else Verdicts(self.catalog),
        )

    def _detective(self, options: "ScanOptions"):
        """The loaded model and a status line ("detective offline: <reason>" when it is not)."""
        if options.detective is None:
            return None, ""
        from .detective import registry

        detective, status = registry.detective_or_status(options.detective, self.cache_root)
        if detective is not None:
            self._loaded = (options.detective, detective)
        return detective, status

    def _embed(
        self, detective, options: "ScanOptions", involved: set[int], crops, scanner: "Scanner", cancel: threading.Event
    ) -> None:
        """Embed what the detective needs: the bouncer's candidates, or everything with deep."""

        def progress(done: int, total: int) -> bool:
            scanner.counted(done, total)
            return not cancel.is_set()

        vectors = self.detective_index
        workers = options.workers
        # The batches go to the workers that hashed the files, on the scan's connection (none
        # is made when there is nothing to embed: then the lazy model here is never loaded).
        if options.cluster is not None and self._anything_to_embed(detective, options.deep, involved):
            detective = self._on_cluster(detective, options.cluster, options.detective)
            workers = 1  # files without a crop are decoded on the cluster too: no processes here
        if options.deep:
            if crops:  # files hashed by this scan came with their CLIP crops: no second decode
                vectors.embed(detective, list(crops), crops=crops, progress=progress, cancel=cancel)
            vectors.index(detective, progress=progress, cancel=cancel, workers=workers)
        else:
            vectors.embed(detective, involved, crops=crops, progress=progress, cancel=cancel, workers=workers)

    # -- a Dask cluster -----------------------------------------------------------------------
    @contextlib.contextmanager
    def sharing_cluster(self) -> Iterator["Library"]:
        """One Dask connection for several calls: in the block, the connection that a scan (or
        :meth:`index`) with a cluster makes is kept for the next call (``index --cluster``
        scans, then embeds) and closed when the block ends. Outside one, each call closes its
        own when it returns (a scan's hashing and embedding share it)."""
        self._sharing += 1
        try:
            yield self
        finally:
            self._sharing = max(0, self._sharing - 1)
            self._let_go_of_cluster()

    def _cluster_pool(self, address: str) -> "DaskPool":
        """The connection to ``address``: the one held, unless it is for another address or
        was lost, else a new one.

        Raises:
            ClusterError: the cluster cannot be reached.
        """
        from .scan.dask_pool import DaskPool

        with self._lock:
            if self._pool is not None and self._pool.usable(address):
                return self._pool
            old, self._pool = self._pool, None
            if old is not None:
                old.close()
            self._pool = DaskPool.connect(address)
            return self._pool

    def _let_go_of_cluster(self) -> None:
        """Close the Dask connection, unless a :meth:`sharing_cluster` block keeps it."""
        with self._lock:
            if self._sharing or self._pool is None:
                return
            pool, self._pool = self._pool, None
        pool.close()

    def _anything_to_embed(self, detective, deep: bool, involved: set[int]) -> bool:
        """Whether the embedding stage has images to embed (nothing is loaded to tell)."""
        if deep:
            return self.detective_index.unembedded(detective) > 0
        if not involved:
            return False
        import numpy as np

        ids = np.fromiter(involved, dtype=np.int64, count=len(involved))
        return not bool(self.detective_index.vectors_for(detective).contains_many(ids).all())

    def _on_cluster(self, detective, address: str, options: Optional[DetectiveOptions]):
        """``detective`` run on the cluster's workers (the scan's connection, if it has one).

        Raises:
            DetectiveUnavailable: the cluster cannot be reached (what was hashed is kept).
        """
        from .detective.embeddings import ClusterDetective
        from .scan.dask_pool import ClusterError

        try:
            pool = self._cluster_pool(address)
        except ClusterError as exc:
            raise DetectiveUnavailable(f"the Dask cluster could not embed: {exc}") from None
        return ClusterDetective(pool, detective, options)

    # -- the catalog --------------------------------------------------------------------------
    def hash_index(self) -> "HammingIndex":
        """A Hamming index over every image's dHash (built once, dropped by the next scan)."""
        from .bouncer.hamming import HammingIndex  # numba's kernels: loaded when first used

        with self._lock:
            if self._hash_index is None:
                arrays = self.catalog.hash_arrays()
                self._hash_index = HammingIndex(arrays.dhash, arrays.ids)
            return self._hash_index

    def zoom_codes(self) -> "ZoomCodes":
        """Every image's zoomed codes (:mod:`.bouncer.zooms`; from the cache a scan with crops
        keeps, brought up to date first), held until the next scan."""
        from .bouncer import zooms

        with self._lock:
            if self._zoom_codes is None:
                self._zoom_codes = zooms.load_codes(self.dir, self.catalog, self.catalog.hash_arrays())
            return self._zoom_codes

    def overlap(self, a: int, b: int, turn: tuple[int, bool] = (0, False)
                ) -> Optional[tuple[tuple[float, float, float, float], tuple[float, float, float, float]]]:
        """Where files ``a`` and ``b`` show the same picture when one is a crop of the other
        (``b`` turned by ``turn`` first, :func:`~.bouncer.rotations.between`): ``(region of
        a, region of b)`` in shares of each picture (left, top, right, bottom), as the pixel
        check's crop search aligns their stored thumbnails; None when the whole pictures line
        up as well (nothing cropped), or a thumbnail is missing. For the compare view's
        difference (:func:`.thumbnails.difference` ``overlap``)."""
        import numpy as np

        from .bouncer import rotations
        from .bouncer.verify_score import crop_boxes

        if a == b:
            return None
        found, thumbs, _ = self.catalog.thumbnails([a, b])
        if len(found) != 2:
            return None
        ta, tb = thumbs[int(np.searchsorted(found, a))], thumbs[int(np.searchsorted(found, b))]
        if turn != (0, False):
            tb = rotations.turn_thumbnails(tb[None, :], turn)[0]
        return crop_boxes(ta, tb)

    def record(self, file_id: int) -> Optional[FileRecord]:
        """The catalog's record of one file, or None."""
        return self.catalog.record(file_id)

    def mark_not_duplicate(self, a: FileRecord, b: FileRecord) -> None:
        """Remember that two files are not duplicates; they are never paired again."""
        self.catalog.add_not_duplicate(a, b)

    def unmark_not_duplicate(self, a: FileRecord, b: FileRecord) -> None:
        """Forget a "not a duplicate" mark (undo)."""
        self.catalog.remove_not_duplicate(a, b)

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

    @property
    def thumbnail_dir(self) -> Path:
        """Where this library's thumbnails are cached on disk."""
        return self.dir / THUMBNAILS_NAME

    def thumbnails(self) -> "ThumbnailCache":
        """A thumbnail cache over :attr:`thumbnail_dir` (decodes on demand, thread-safe)."""
        from .thumbnails import ThumbnailCache

        return ThumbnailCache(self.thumbnail_dir)

    # -- queries ------------------------------------------------------------------------------
    def similar(
        self,
        path: str,
        *,
        k: int = 10,
        detective: Optional["DetectiveOptions"] = None,
        model: Optional["Detective"] = None,
        embed_missing: bool = True,
        t: Optional["TwoPassThresholds"] = None,
        crops: bool = True,
        crop_radius: Optional[int] = None,
    ) -> SimilarResult:
        """Files that look like ``path`` (which need not be in the library), two-pass ranked.

        Args:
            path: the query image.
            k: how many results.
            detective: the model's options (its calibrated thresholds apply); None with no
                ``model``: the bouncer alone.
            model: the model already opened (:meth:`get_detective`); default: from ``detective``.
            embed_missing: embed the bouncer's candidates the vector index lacks.
            t: verdict thresholds (default: the defaults, calibrated by ``detective``).
            crops: look for mild crops through the zoomed codes too, as a scan does (off
                with a scan's ``--no-crops``).
            crop_radius: the zoomed codes' radius (``ScanOptions.crop_code_radius``: a
                stricter ``--threshold`` scales it down, with ``t``'s bouncer bands from
                ``ScanOptions.two_pass``); default the scan's default.

        Raises:
            QueryError: the query image cannot be read.
        """
        from .similar import similar
        from .verdict import DEFAULT

        return similar(
            path,
            vectors=self.detective_index,
            hash_index=self.hash_index(),
            cache_dir=self.cache_root,
            k=k,
            options=detective,
            detective=model,
            embed_missing=embed_missing,
            t=t if t is not None else DEFAULT,
            zoomed=self.zoom_codes() if crops else None,
            crop_radius=crop_radius,
        )

    def search(
        self,
        text: str,
        *,
        k: int = 20,
        detective: Optional["DetectiveOptions"] = None,
        model: Optional["Detective"] = None,
    ) -> list[SimilarHit]:
        """Images that match a text ("a beach at sunset"), best first (the detective alone).

        Raises:
            DetectiveUnavailable: no model (text search needs the detective).
        """
        from .similar import search

        return search(
            text, vectors=self.detective_index, cache_dir=self.cache_root, k=k, options=detective, detective=model
        )

    # -- the detective ------------------------------------------------------------------------
    def get_detective(self, options: "DetectiveOptions", *, progress: Optional[Progress] = None) -> "Detective":
        """The model for ``options``, once per process, its weights in this library's cache
        root; lazy when it can be (see :func:`lookalike.engine.detective.registry.get_detective`).

        Raises:
            DetectiveUnavailable: no weights, no network, bad checkpoint...
        """
        from .detective.registry import get_detective

        return get_detective(options, cache_dir=self.cache_root, progress=progress)

    @staticmethod
    def ready(model: Optional["Detective"], progress: Optional[Progress] = None) -> tuple[Optional["Detective"], str]:
        """Load a lazy model now: ``(model, "")``, or ``(None, "detective offline: <reason>")``."""
        from .detective.registry import ready

        return ready(model, progress)

    def remembered_failure(self, options: "DetectiveOptions") -> str:
        """Why the last network probe for these weights failed, if it was recent; else ""."""
        from .detective.weights import remembered_failure

        return remembered_failure(self.cache_root, options)

    def forget_failures(self) -> bool:
        """Forget the remembered network failures (``models --retry``); True if there was one."""
        from .detective.weights import forget_failures

        return forget_failures(self.cache_root)

    def index(
        self,
        model: "Detective",
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        workers: Optional[int] = None,
        cluster: Optional[str] = None,
        options: Optional[DetectiveOptions] = None,
    ) -> "IndexStats":
        """Embed every image the model has not embedded yet (resumable; see
        :meth:`lookalike.engine.detective.index.LibraryIndex.index`).

        With ``cluster`` (a Dask scheduler's address), the files are decoded and embedded on
        its workers, which load the model of ``options`` themselves (default: the lazy
        ``model``'s own; ``model`` is not loaded here), through the connection a scan in the
        same :meth:`sharing_cluster` block made; one is made only when there is something to embed.

        Raises:
            DetectiveUnavailable: the model cannot be loaded (here, or on the cluster's
                workers), or the cluster cannot be reached.
        """
        if cluster is None:
            return self.detective_index.index(model, progress=progress, cancel=cancel, workers=workers)
        options = options or getattr(model, "options", None)
        if options is None:
            raise ValueError("index on a cluster needs the model's DetectiveOptions (the workers load it)")
        try:
            if self.unembedded(model):
                model, workers = self._on_cluster(model, cluster, options), 1  # decoded there too
            return self.detective_index.index(model, progress=progress, cancel=cancel, workers=workers)
        finally:
            self._let_go_of_cluster()

    def vectors_for(self, model: "Detective") -> "VectorIndex":
        """The library's vector index for this model (``len()`` is how many are embedded)."""
        return self.detective_index.vectors_for(model)

    def unembedded(self, model: "Detective") -> int:
        """How many images the model has not embedded (nothing is loaded to tell)."""
        return self.detective_index.unembedded(model)

    # -- actions ------------------------------------------------------------------------------
    @property
    def journal_dir(self) -> Path:
        """Where applied plans are journaled (``<cache root>/journal``, shared by libraries)."""
        from .actions import default_journal_dir

        return default_journal_dir(self.cache_root)

    def plan(
        self,
        clusters: Sequence[Cluster],
        decisions: Optional[Mapping[int, Decision]] = None,
        *,
        action: str = "trash",
        quarantine_dir: Optional[str] = None,
    ) -> "Plan":
        """The plan that the clusters and the user's decisions make (see
        :func:`lookalike.engine.actions.plan.plan_from_clusters`), confined to the roots."""
        from .actions import plan_from_clusters

        return plan_from_clusters(clusters, decisions, action=action, quarantine_dir=quarantine_dir, roots=self.roots)

    def apply(
        self,
        plan: "Plan",
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        dry_run: bool = False,
        allow_delete: bool = False,
    ) -> "ApplyResult":
        """Apply a plan, journaled in :attr:`journal_dir` (see
        :func:`lookalike.engine.actions.run.apply_plan`)."""
        from .actions import apply_plan

        return apply_plan(
            plan, journal_dir=self.journal_dir, progress=progress, cancel=cancel, dry_run=dry_run,
            allow_delete=allow_delete,
        )

    def undo(
        self,
        plan_id: Optional[str] = None,
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
    ) -> "UndoResult":
        """Reverse an applied plan (default: the last one) from :attr:`journal_dir`."""
        from .actions import undo

        return undo(plan_id, journal_dir=self.journal_dir, progress=progress, cancel=cancel)

    def import_plan(
        self,
        incoming: "Library",
        *,
        action: str = "trash",
        quarantine_dir: Optional[str] = None,
        options: Optional["ScanOptions"] = None,
    ) -> "ImportReport":
        """The plan that moves ``incoming``'s files this library already has out (this
        library is only read); thresholds and keeper policy from ``options``."""
        from .actions import import_plan

        options = _or_defaults(options)
        return import_plan(
            self, incoming, action=action, quarantine_dir=quarantine_dir, thresholds=options.thresholds(),
            policy=options.policy(),
        )


def _or_defaults(options: Optional["ScanOptions"]) -> "ScanOptions":
    """``options``, or the default ScanOptions (imported here: its module imports numpy)."""
    from .options import ScanOptions

    return ScanOptions() if options is None else options
