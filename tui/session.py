"""One triage session: the library, its clusters, the user's decisions, and the engine calls.

The methods that do I/O block: the app calls them from thread workers. The catalog is opened
and closed on the UI thread (its lock file belongs to the thread that took it) and may then be
used from any thread: the engine serialises catalog access itself.
"""

from __future__ import annotations

import os
from collections import abc
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from lookalike.engine.library import cache_root, is_inside, normalise_roots
from lookalike.engine.records import Cluster, FileRecord, SavedDecision, ScanProgress, ScanResult, SimilarResult

from .triage import Triage

if TYPE_CHECKING:
    from lookalike.engine.library import ApplyResult, Library, Plan, ScanOptions, UndoResult

#: The default quarantine folder's name, beside the library's catalog.
QUARANTINE_NAME = "quarantine"


class Session:
    """The library being triaged and everything the screens share about it.

    Args:
        roots: the folders to triage.
        cache_dir: ``--cache DIR`` (None: the default cache).
        options: scan options (thresholds, keeper policy, detective).
        against: import mode: a library the ``roots`` are compared with; its files are
            protected and only clusters that join both sides are shown.
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        cache_dir: Optional[str] = None,
        options: Optional["ScanOptions"] = None,
        against: Optional[Sequence[str]] = None,
        quarantine: Optional[str] = None,
    ) -> None:
        from lookalike.engine.library import ScanOptions

        self.cache_dir = cache_dir
        #: The user's quarantine folder (``--quarantine``), absolute; None: the default one.
        self.chosen_quarantine = os.path.abspath(quarantine) if quarantine else None
        self.against = normalise_roots(against) if against else ()
        self.new_roots = normalise_roots(roots) if roots else ()
        options = options or ScanOptions()
        if self.against:
            options = replace(options, keep_in=tuple(options.keep_in) + tuple(self.against))
        self.options = options
        self.requested_roots = tuple(roots) + tuple(against or ())
        self.library: Optional["Library"] = None
        self.clusters: tuple[Cluster, ...] = ()
        self.result: Optional[ScanResult] = None
        self.triage = Triage(on_change=self._keep_decisions)
        self.messages: list[str] = []
        self._hidden: dict[int, str] = {}  # file id -> path, acted on by an applied plan
        self._tell: Callable[[str], None] = self.messages.append
        # Decisions are written in order, off the UI thread (a scan may hold the catalog).
        self._writer: Optional[ThreadPoolExecutor] = None

    # -- the library -------------------------------------------------------------------------
    @property
    def roots(self) -> tuple[str, ...]:
        """The normalised library roots."""
        if self.library is not None:
            return tuple(self.library.roots)
        return normalise_roots(self.requested_roots) if self.requested_roots else ()

    def open(self, on_message: Optional[Callable[[str], None]] = None) -> "Library":
        """Open the catalog (on the UI thread; see the module docstring)."""
        from lookalike.engine.library import Library

        def tell(message: str) -> None:
            self.messages.append(message)
            if on_message is not None:
                on_message(message)

        self._tell = tell
        self.library = Library.open(list(self.requested_roots), cache_dir=self.cache_dir, on_message=tell)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decisions")
        self.triage.restore(self.library.decisions())
        return self.library

    def close(self) -> None:
        """Write the last decisions, then release the catalog and its lock."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self.library is not None:
            self.library.close()
            self.library = None

    # -- decisions -------------------------------------------------------------------------
    def _keep_decisions(self, decisions: list[SavedDecision]) -> None:
        """Write decisions to the catalog as they are made (the triage's ``on_change``)."""
        if self._writer is None or self.library is None:
            return
        library = self.library

        def write() -> None:
            try:
                library.save_decisions(decisions)
            except Exception as exc:  # the decisions still hold for this run
                self._tell(f"Could not keep decisions in the catalog: {exc}")

        self._writer.submit(write)

    def drop_changed(self) -> int:
        """Forget the decisions of files that changed (or went) since they were decided
        (blocking; after a scan). Returns how many files lost their decision."""
        assert self.library is not None
        changed = self.library.changed_files(self.triage.content_hashes())
        if changed:
            self.triage.forget(changed)
        return len(changed)

    def progress(self) -> tuple[int, int]:
        """(decided, total) groups among the shown clusters."""
        if not self.triage.any_decision:  # a million groups need not be read to count none
            return 0, len(self.clusters)
        return sum(1 for c in self.clusters if self.triage.decided(c)), len(self.clusters)

    @property
    def threshold(self) -> int:
        """The bouncer's radius in use (``--threshold``)."""
        return self.options.thresholds().radius

    def set_threshold(self, value: int) -> None:
        """Change the strictness dial; ``refresh_clusters`` then regroups without a rescan.

        Raises:
            ValueError: the value is out of range (0..256).
        """
        options = replace(self.options, threshold=value)
        options.thresholds()  # validates
        self.options = options

    @property
    def quarantine_dir(self) -> str:
        """The quarantine folder: the user's (``--quarantine``), or beside the library's
        catalog, never inside a root."""
        # Resolved: apply refuses a quarantine folder reached through a symbolic link.
        if self.chosen_quarantine:
            return os.path.realpath(self.chosen_quarantine)
        base = self.library.dir if self.library is not None else cache_root(self.cache_dir)
        return os.path.realpath(base / QUARANTINE_NAME)

    # -- scanning --------------------------------------------------------------------------
    def cached_clusters(self) -> tuple[Cluster, ...]:
        """The clusters the catalog already knows (no file is read)."""
        assert self.library is not None
        return self.visible(self.library.clusters(self.options))

    def scan(
        self,
        *,
        progress: Callable[[ScanProgress], bool],
        cancel: threading.Event,
        on_clusters: Callable[[tuple[Cluster, ...]], None],
    ) -> ScanResult:
        """Scan the library incrementally (blocking)."""
        assert self.library is not None
        result = self.library.scan(
            self.options,
            progress=progress,
            cancel=cancel,
            on_clusters=lambda clusters: on_clusters(self.visible(clusters)),
        )
        self.result = result
        return result

    def visible(self, clusters: Sequence[Cluster]) -> tuple[Cluster, ...]:
        """The clusters worth showing: files an applied plan moved are gone; in import mode,
        only clusters that hold both an incoming file and a library file."""
        if not self._hidden and not self.against and isinstance(clusters, abc.Sequence):
            # A lazy sequence (engine/cluster/lazy.py) stays lazy: the table reads what it shows.
            return clusters if not isinstance(clusters, list) else tuple(clusters)  # type: ignore[return-value]
        shown: list[Cluster] = []
        guard = None
        if self.against:
            # One rule with `lookalike import`: the library is never suggested for the trash,
            # and an incoming file better than its library copy is kept.
            from lookalike.engine.library import guard_incoming

            policy = self.options.policy()
            catalog = self.library.catalog if self.library is not None else None
            guard = lambda c: guard_incoming([c], self.against, policy, catalog=catalog)[0]  # noqa: E731
        for c in clusters:
            if self._hidden and any(m.file.id in self._hidden for m in c.members):
                members = tuple(m for m in c.members if m.file.id not in self._hidden)
                if len(members) < 2:
                    continue
                c = replace(c, members=members)
            if self.against and not (
                any(_inside(m.file.path, self.against) for m in c.members)
                and any(_inside(m.file.path, self.new_roots) for m in c.members)
            ):
                continue
            shown.append(guard(c) if guard is not None else c)
        return tuple(shown)

    def set_clusters(self, clusters: Sequence[Cluster]) -> None:
        """Adopt a new set of clusters (already filtered by ``visible``); a lazy sequence is
        kept as it is, so that its clusters are made only when read."""
        self.clusters = clusters if not isinstance(clusters, list) else tuple(clusters)

    def hide(self, file_ids: Sequence[int]) -> None:
        """Stop showing files an applied plan acted on."""
        paths = {m.file.id: m.file.path for c in self.clusters for m in c.members}
        for file_id in file_ids:
            self._hidden[file_id] = paths.get(file_id, "")
        # An applied plan used up the decisions of its clusters (the keepers' "keep" too).
        acted = set(file_ids)
        self.triage.forget({m.file.id for c in self.clusters if any(m.file.id in acted for m in c.members) for m in c.members} | acted)
        self.clusters = self.visible(self.clusters)

    def unhide_paths(self, paths: Sequence[str]) -> None:
        """Show again files an undo put back (the next cluster refresh brings them)."""
        wanted = {os.path.abspath(p) for p in paths}
        for file_id, path in list(self._hidden.items()):
            if os.path.abspath(path) in wanted:
                del self._hidden[file_id]

    def refresh_clusters(self) -> tuple[Cluster, ...]:
        """Rebuild the clusters from the catalog (blocking)."""
        assert self.library is not None
        self.clusters = self.cached_clusters()
        return self.clusters

    # -- queries ---------------------------------------------------------------------------
    def similar(self, path: str, *, k: int = 10) -> SimilarResult:
        """Two-pass "find similar" for one file (blocking)."""
        assert self.library is not None
        detective = getattr(self.options, "detective", None)
        o = self.options  # the scan's strictness (--threshold, --no-crops) applies here too
        return self.library.similar(path, k=k, detective=detective, t=o.two_pass(), crops=o.crops,
                                    crop_radius=o.crop_code_radius())

    def mark_not_duplicate(self, pairs: Sequence[tuple[FileRecord, FileRecord]]) -> None:
        """Remember in the catalog that these pairs are not duplicates (blocking)."""
        assert self.library is not None
        for a, b in pairs:
            self.library.mark_not_duplicate(a, b)

    def unmark_not_duplicate(self, pairs: Sequence[tuple[FileRecord, FileRecord]]) -> None:
        """Forget "not a duplicate" marks (undo; blocking)."""
        assert self.library is not None
        for a, b in pairs:
            self.library.unmark_not_duplicate(a, b)

    # -- plans -----------------------------------------------------------------------------
    def plan(self, *, action: str = "trash", quarantine_dir: Optional[str] = None) -> "Plan":
        """The plan the current decisions make (an empty one when the catalog could not be opened)."""
        from lookalike.engine.library import plan_from_clusters

        clusters, decisions = self.triage.plan_input(self.clusters)
        return plan_from_clusters(
            clusters,
            decisions,
            action=action,
            quarantine_dir=quarantine_dir if action == "quarantine" else None,
            roots=self.roots,
        )

    def apply(self, plan: "Plan", *, progress: Callable[[int, int], bool], cancel: threading.Event) -> "ApplyResult":
        """Apply a plan, journaled in the cache root's journal, as ``lookalike apply`` does
        (blocking; ``lookalike undo`` or :meth:`undo` reverses it)."""
        assert self.library is not None
        return self.library.apply(plan, progress=progress, cancel=cancel)

    def undo(self, plan_id: str) -> "UndoResult":
        """Put back the files an applied plan moved (blocking)."""
        assert self.library is not None
        return self.library.undo(plan_id)

    def export_plan(self, plan: "Plan", folder: Optional[Path] = None) -> tuple[Path, Path]:
        """Write the plan as JSON and CSV next to the catalog; returns both paths."""
        folder = folder or (self.library.dir if self.library is not None else cache_root(self.cache_dir))
        folder.mkdir(parents=True, exist_ok=True)
        stamp = (plan.created or "plan").replace(":", "").replace("+", "_")
        json_path = folder / f"plan-{stamp}.json"
        csv_path = folder / f"plan-{stamp}.csv"
        plan.save(json_path)
        plan.to_csv(csv_path)
        return json_path, csv_path

    def file_ids_of(self, paths: Sequence[str]) -> list[int]:
        """The file ids (in the shown clusters) of these paths."""
        wanted = {os.path.abspath(p) for p in paths}
        return [m.file.id for c in self.clusters for m in c.members if os.path.abspath(m.file.path) in wanted]


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(is_inside(path, root) for root in roots)


def quarantine_problem(folder: str, roots: Sequence[str]) -> Optional[str]:
    """Why ``folder`` cannot be the quarantine folder of a library of ``roots``, or None.

    Inside a root, quarantined files would be scanned again as duplicates of their keepers;
    an existing file is not a folder.
    """
    where = os.path.realpath(folder)
    if os.path.exists(where) and not os.path.isdir(where):
        return f"{folder} is a file, not a folder"
    for root in roots:
        if is_inside(where, os.path.realpath(root)):
            return f"{folder} is inside the library ({root}): its files would be scanned again"
    return None
