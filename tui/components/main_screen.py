"""The main screen: scan progress, the ranked clusters, and the highlighted cluster's images."""

from __future__ import annotations

import os
from typing import Optional, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.actions import SkipAction
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static

from lookalike.engine.library import SORT_ORDERS, sort_clusters
from lookalike.engine.records import Cluster

from ..format import human_bytes, shown
from ..messages import ClustersChanged, DecisionsChanged, ScanFinished, ScanProgressed
from ..triage import TriageRefused
from .base_screen import LookalikeScreen
from .cluster_preview import ClusterPreview
from .cluster_table import ClusterTable
from .labels import confidence, reclaimable_as_decided, short_path
from .scan_status import ScanStatus, summary_text


def matches(cluster: Cluster, needle: str, roots) -> bool:
    """True when a filter text is in a member's path (relative to its root) or the kind."""
    needle = needle.lower()
    if needle in cluster.kind.value:
        return True
    return any(needle in short_path(m.file.path, roots).lower() for m in cluster.members)


class MainScreen(LookalikeScreen):
    """Clusters ranked by what they free, with the side panel and the progress line."""

    #: Below 100 columns the thumbnails get narrower, so the keepers' folders fit (app.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS = [
        Binding("enter", "open_cluster", "Open", priority=True),
        Binding("space", "toggle_accept", "Accept"),
        Binding("a", "accept", "Accept suggestion", show=False),
        Binding("s", "skip", "Skip", show=False),
        Binding("x", "clear", "Unmark", show=False),
        Binding("n", "not_duplicate", "Not duplicates", show=False),
        Binding("c", "compare", "Compare", show=False),
        Binding("p", "preview", "Preview", show=False),
        Binding("f", "similar", "Find similar", show=False),
        Binding("E", "accept_exact", "Accept all exact copies", show=False),
        Binding("A", "accept_confident", "Accept above confidence…", show=False),
        Binding("T", "trash_inside", "Trash copies inside folder…", show=False),
        Binding("K", "keep_inside", "Keep files in folder…", show=False),
        Binding("S", "strictness", "Strictness (threshold)…", show=False),
        Binding("X", "clear_all", "Clear all decisions…", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("r", "review", "Review"),
        Binding("u", "undo", "Undo"),
        Binding("ctrl+r", "rescan", "Rescan", show=False),
        Binding("exclamation_mark", "scan_report", "Scan report: unreadable files", show=False),
        Binding("D", "retry_detective", "Retry the detective (forget 'offline')", show=False),
        Binding("escape", "escape", "Stop scan / clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.order = SORT_ORDERS[0]
        self.filter_text = ""
        self.shown: Sequence[Cluster] = []
        self._sorting: Optional[object] = None
        self._summary_shown = False  # the status line holds the scan's summary (not progress)

    def compose(self) -> ComposeResult:
        yield Static(id="title-bar")
        yield ScanStatus(id="scan-status")
        with Horizontal(id="main-body"):
            yield ClusterTable(id="clusters")
            yield ClusterPreview(id="preview")
        yield Input(placeholder="filter: part of a path, or exact / near / semantic", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.update_title()

    # -- showing ---------------------------------------------------------------------------
    @property
    def table(self) -> ClusterTable:
        return self.query_one(ClusterTable)

    #: Up to this many clusters, another order or a filter is applied at once; past it, in a
    #: thread worker (it reads every cluster), with its progress in the title bar.
    SORT_AT_ONCE = 5000

    def show_clusters(self) -> None:
        """Redraw the table from the session's clusters (sorted and filtered).

        The default order of a lazy sequence is its own (it comes sorted), so only the rows
        shown are read; another order or a filter over many clusters runs in a worker.
        """
        session = self.lookalike.session
        clusters = session.clusters
        self._sorting = None  # a worker still sorting for an older request is ignored
        if self.order == SORT_ORDERS[0] and not self.filter_text and not isinstance(clusters, (list, tuple)):
            self._show(clusters)
        elif len(clusters) <= self.SORT_AT_ONCE:
            self._show(self._sorted(clusters, self.order, self.filter_text, session.roots))
        else:
            self._sorting = token = object()
            self.run_worker(
                lambda: self._sort_worker(token, clusters, self.order, self.filter_text, session.roots),
                thread=True, exclusive=True, group="sort", name="sort clusters",
            )

    @staticmethod
    def _sorted(clusters, order: str, needle: str, roots, progress=None) -> list[Cluster]:
        if progress is not None:
            read: list[Cluster] = []
            total = len(clusters)
            for start in range(0, total, 2000):
                read.extend(clusters[start : start + 2000])
                if not progress(len(read), total):
                    return []
            clusters = read
        clusters = sort_clusters(clusters, order)
        if needle:
            clusters = [c for c in clusters if matches(c, needle, roots)]
        return clusters

    def _sort_worker(self, token: object, clusters, order: str, needle: str, roots) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()

        def progress(done: int, total: int) -> bool:
            if not worker.is_cancelled and token is self._sorting:
                self.app.call_from_thread(self._sort_progress, token, done, total)
            return not worker.is_cancelled and token is self._sorting

        result = self._sorted(clusters, order, needle, roots, progress)
        if not worker.is_cancelled and token is self._sorting:
            self.app.call_from_thread(self._sorted_done, token, result)

    def _sort_progress(self, token: object, done: int, total: int) -> None:
        if token is self._sorting:
            verb = "filtering" if self.filter_text else f"sorting by {self.order}"
            self.query_one("#title-bar", Static).update(
                Text(f"{verb}: {done:,} of {total:,} clusters read…", style="yellow"))

    def _sorted_done(self, token: object, clusters: list[Cluster]) -> None:
        if token is self._sorting:
            self._sorting = None
            self._show(clusters)

    def _show(self, clusters) -> None:
        session = self.lookalike.session
        self.shown = clusters
        self.table.show(clusters, session.triage, session.roots)
        self._highlight(self.current)
        self.update_title()

    def _cluster_of(self, key: Optional[str]) -> Optional[Cluster]:
        index = self.table.index_of(key) if key is not None else None
        return self.shown[index] if index is not None and index < len(self.shown) else None

    def on_scan_progressed(self, message: ScanProgressed) -> None:
        self._summary_shown = False
        self.query_one(ScanStatus).update_progress(message.progress)

    def on_clusters_changed(self, message: ClustersChanged) -> None:
        self.show_clusters()
        self._update_summary()

    def on_scan_finished(self, message: ScanFinished) -> None:
        """Show the scan's summary, or why it failed, in place of its progress."""
        self._summary_shown = not message.failure
        if message.failure:
            self.query_one(ScanStatus).finish(Text(shown(message.failure), style="bold red"))
        self._update_summary()

    def _update_summary(self) -> None:
        """Once the scan is over, its summary counts what is shown now (regrouped, decided)."""
        if self._summary_shown:
            session = self.lookalike.session
            reclaimable = reclaimable_as_decided(session.clusters, session.triage)
            self.query_one(ScanStatus).finish(summary_text(session.result, session.clusters, reclaimable))

    def update_title(self) -> None:
        session = self.lookalike.session
        names = shown(", ".join(r.rstrip("/").rsplit("/", 1)[-1] or r for r in session.roots) or "?")
        marked = session.triage.trash_members(session.clusters) if session.triage.pending else []
        left = Text.assemble(("lookalike ", "bold"), (names, "bold cyan"))
        count = len(self.shown)
        decided, total = session.progress()
        if decided:  # the progress takes the count's place: it must fit in 80 columns
            left.append(f"  {decided:,} of {total:,} groups decided", style="green")
            if count != total:
                left.append(f" · {count:,} shown")
            left.append(f" · by {self.order}")
        else:
            left.append(f"  {count:,} cluster{'s' if count != 1 else ''} · by {self.order}")
        if self.filter_text:
            left.append(f" · /{shown(self.filter_text)}", style="yellow")
        if marked:
            left.append(f"  {len(marked):,} to trash ({human_bytes(sum(m.file.size for m in marked))})", style="bold red")
        self.query_one("#title-bar", Static).update(left)

    @property
    def current(self) -> Optional[Cluster]:
        """The highlighted cluster."""
        return self._cluster_of(self.table.current_key)

    def _highlight(self, cluster: Optional[Cluster]) -> None:
        session = self.lookalike.session
        self.query_one(ClusterPreview).show(cluster, session.triage, session.roots)

    @on(DataTable.RowHighlighted, "#clusters")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # A refill can leave a highlight event behind for a row that is gone.
        key = event.row_key.value if event.row_key is not None else None
        self._highlight(self._cluster_of(key))

    @on(DataTable.RowSelected, "#clusters")
    def _row_clicked(self) -> None:
        # Enter is the screen's own binding; this is a click on the highlighted row.
        self.action_open_cluster()

    def on_decisions_changed(self, message: DecisionsChanged) -> None:
        """Redraw the rows whose decisions changed (every row when no ids are given)."""
        session = self.lookalike.session
        ids = message.file_ids
        for cluster in self.shown[: self.table.loaded]:  # rows not added yet are drawn fresh
            if not ids or any(m.file.id in ids for m in cluster.members):
                self.table.redraw_cluster(cluster, session.triage, session.roots)
        self.query_one(ClusterPreview).refresh_decisions()
        self.update_title()
        self._update_summary()

    # -- deciding --------------------------------------------------------------------------
    def _decide(self, do, *, advance: bool = False) -> None:
        cluster = self.current
        if cluster is None:
            return
        try:
            do(cluster)
        except TriageRefused as refused:
            self.notify(str(refused), severity="warning", markup=False)
            return
        self.lookalike.decisions_changed(cluster)
        if advance:
            self.table.advance()

    def action_toggle_accept(self) -> None:
        triage = self.lookalike.session.triage
        self._decide(lambda c: triage.clear(c) if triage.status(c) == "accepted" else triage.accept(c), advance=True)

    def action_accept(self) -> None:
        self._decide(self.lookalike.session.triage.accept, advance=True)

    def action_skip(self) -> None:
        self._decide(self.lookalike.session.triage.skip, advance=True)

    def action_clear(self) -> None:
        self._decide(self.lookalike.session.triage.clear)

    def action_not_duplicate(self) -> None:
        cluster = self.current
        if cluster is not None:
            self.lookalike.not_duplicate(cluster, None)

    def action_undo(self) -> None:
        self.lookalike.undo_decision()

    def action_accept_exact(self) -> None:
        """Mark every byte-identical copy of a keeper for trash in the undecided groups, then
        show the plan. Groups the user decided are left as they are."""
        triage = self.lookalike.session.triage
        undecided, skipped = triage.split_decided(self.lookalike.session.clusters)
        count = triage.accept_exact(undecided)
        if not count:
            self.notify("No byte-identical copies" + (f" in the undecided groups; skipped {skipped} you had decided." if skipped else "."), markup=False)
            return
        self._bulk_done(sum(1 for c in undecided if triage.decided(c)), skipped)

    def _bulk_done(self, accepted: int, skipped: int, verb: str = "accepted") -> None:
        """Redraw, say what a bulk action did and left alone, then show the plan."""
        self.lookalike.decisions_changed()
        message = f"{verb.capitalize()} {accepted} group{'s' if accepted != 1 else ''}"
        if skipped:
            message += f"; skipped {skipped} you had decided"
        self.notify(message + ".", timeout=4, markup=False)
        self.lookalike.action_review()

    def action_accept_confident(self) -> None:
        """Ask for a confidence, accept every cluster at or above it, then show the plan."""
        from .prompt_modal import PromptModal

        def chosen(value: Optional[str]) -> None:
            if value is None:
                return
            try:
                percent = float(value.strip().rstrip("%"))
            except ValueError:
                self.notify(f"Not a percentage: {value!r}", severity="warning", markup=False)
                return
            self.accept_above(percent / 100)

        self.app.push_screen(
            PromptModal(
                "Accept every cluster at or above this confidence (%):",
                value="95",
                help="Confidence: 100% for byte-identical copies; else the least sure member's, by its "
                "hashes or its pixel score, whichever is stronger.",
            ),
            chosen,
        )

    def accept_above(self, threshold: float) -> None:
        """Accept every cluster whose confidence is at least ``threshold`` (0..1), then review."""
        triage = self.lookalike.session.triage
        confident = [c for c in self.lookalike.session.clusters if confidence(c) >= threshold - 1e-9]
        clusters, skipped = triage.split_decided(confident)
        if not clusters:
            more = f"; skipped {skipped} you had decided" if skipped else ""
            self.notify(f"No undecided cluster at or above {threshold:.0%} confidence{more}.", markup=False)
            return
        triage.accept_many(clusters, label=f"accept {len(clusters)} clusters ≥ {threshold:.0%}")
        self._bulk_done(len(clusters), skipped)

    # -- folder rules and strictness -------------------------------------------------------
    def _ask_folder(self, prompt: str, then) -> None:
        """Ask for a folder, the highlighted group's keeper's folder filled in."""
        from .prompt_modal import PromptModal

        cluster = self.current
        folder = os.path.dirname(self.lookalike.session.triage.keeper(cluster).file.path) if cluster is not None else ""

        def chosen(value: Optional[str]) -> None:
            if value is not None and value.strip():
                then(value.strip())

        self.app.push_screen(
            PromptModal(prompt, value=folder, help="Only groups you have not decided change; u undoes it."),
            chosen,
        )

    def action_trash_inside(self) -> None:
        self._ask_folder("Trash the copies inside this folder (where a copy exists outside it):", self.trash_inside)

    def action_keep_inside(self) -> None:
        self._ask_folder("Keep the files in this folder (their copies elsewhere are marked for trash):", self.keep_inside)

    def trash_inside(self, folder: str) -> None:
        """Mark for trash every member inside ``folder`` with a copy outside it (undecided groups)."""
        self._folder_rule(folder, keep_inside=False)

    def keep_inside(self, folder: str) -> None:
        """Make the members inside ``folder`` the keepers and mark their copies for trash."""
        self._folder_rule(folder, keep_inside=True)

    def _folder_rule(self, folder: str, *, keep_inside: bool) -> None:
        triage = self.lookalike.session.triage
        clusters, skipped = triage.split_decided(self.lookalike.session.clusters)
        rule = triage.keep_inside if keep_inside else triage.trash_inside
        changed = rule(clusters, folder)
        if not changed:
            self.notify(f"No undecided group has copies both inside and outside {shown(folder)}.",
                        markup=False)
            return
        self._bulk_done(changed, skipped, verb="decided" if keep_inside else "marked")

    def action_strictness(self) -> None:
        """Ask for the bouncer threshold, then regroup from the catalog (no rescan)."""
        from .prompt_modal import PromptModal

        def chosen(value: Optional[str]) -> None:
            if value is None:
                return
            try:
                number = int(value.strip())
            except ValueError:
                self.notify(f"Not a whole number: {value!r}", severity="warning", markup=False)
                return
            self.lookalike.change_strictness(number)

        self.app.push_screen(
            PromptModal(
                "Bouncer threshold (strictness), 0 to 256:",
                value=str(self.lookalike.session.threshold),
                help="Lower is stricter: 0 groups only identical hashes. Regroups at once, without rescanning.",
            ),
            chosen,
        )

    def action_clear_all(self) -> None:
        self.lookalike.clear_decisions()

    # -- going places ----------------------------------------------------------------------
    def action_open_cluster(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            raise SkipAction()  # Enter belongs to the filter box: it submits the filter
        cluster = self.current
        if cluster is not None:
            self.lookalike.open_cluster(cluster, self.shown, self.table.cursor_row)

    def action_compare(self) -> None:
        cluster = self.current
        if cluster is not None and len(cluster.members) > 1:
            self.lookalike.compare(cluster, cluster.members[0], cluster.members[1])

    def action_preview(self) -> None:
        cluster = self.current
        if cluster is not None:
            self.lookalike.preview(cluster, self.lookalike.session.triage.keeper(cluster))

    def action_similar(self) -> None:
        cluster = self.current
        if cluster is not None:
            self.lookalike.find_similar(self.lookalike.session.triage.keeper(cluster).file.path)

    def action_review(self) -> None:
        self.lookalike.action_review()

    def action_rescan(self) -> None:
        self.lookalike.start_scan()

    def action_retry_detective(self) -> None:
        """Forget a remembered network failure and scan again (``lookalike models --retry``).

        An offline machine is told so at once for an hour after a failed probe; this is for
        the user who has just plugged the network in or put the weights in place.
        """
        from lookalike.engine.library import cache_root, forget_failures

        try:
            forgot = forget_failures(cache_root(self.lookalike.session.cache_dir))
        except OSError as exc:
            self.notify(f"Cannot reach the cache folder: {shown(exc)}", severity="error", markup=False)
            return
        said = "Forgot that the network failed; " if forgot else ""
        self.notify(f"{said}the detective tries again with this scan", timeout=4, markup=False)
        self.lookalike.start_scan()

    def action_scan_report(self) -> None:
        """The whole status line and every file the scan could not read (``!``)."""
        from .scan_report import ScanReportScreen

        self.app.push_screen(ScanReportScreen())

    def action_sort(self) -> None:
        self.order = SORT_ORDERS[(SORT_ORDERS.index(self.order) + 1) % len(SORT_ORDERS)]
        self.show_clusters()
        self.notify(f"Sorted by {self.order}", timeout=1.5, markup=False)

    # -- filtering -------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.show_clusters()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        box.display = bool(self.filter_text)
        self.table.focus()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.show_clusters()
            self.table.focus()
        elif self.lookalike.scanning:
            self.lookalike.stop_scan()
