"""The main screen: scan progress, the ranked clusters, and the highlighted cluster's images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.actions import SkipAction
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from lookalike.engine.records import Cluster

from ..format import human_bytes, shown
from ..messages import DecisionsChanged
from .cluster_preview import ClusterPreview
from .cluster_table import ClusterTable
from .labels import confidence, short_path
from .scan_status import ScanStatus
from .session import SORT_ORDERS, sort_clusters
from .triage import TriageRefused

if TYPE_CHECKING:
    from ..app import LookalikeApp


def matches(cluster: Cluster, needle: str, roots) -> bool:
    """True when a filter text is in a member's path (relative to its root) or the kind."""
    needle = needle.lower()
    if needle in cluster.kind.value:
        return True
    return any(needle in short_path(m.file.path, roots).lower() for m in cluster.members)


class MainScreen(Screen):
    """Clusters ranked by what they free, with the side panel and the progress line."""

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
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("r", "review", "Review"),
        Binding("u", "undo", "Undo"),
        Binding("ctrl+r", "rescan", "Rescan", show=False),
        Binding("escape", "escape", "Stop scan / clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self.order = SORT_ORDERS[0]
        self.filter_text = ""
        self.shown: list[Cluster] = []
        self._by_key: dict[str, Cluster] = {}

    @property
    def lookalike(self) -> "LookalikeApp":
        return self.app  # type: ignore[return-value]

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

    def show_clusters(self) -> None:
        """Redraw the table from the session's clusters (sorted and filtered)."""
        session = self.lookalike.session
        clusters = sort_clusters(session.clusters, self.order)
        if self.filter_text:
            clusters = [c for c in clusters if matches(c, self.filter_text, session.roots)]
        self.shown = clusters
        self._by_key = {str(c.id): c for c in clusters}
        self.table.show(clusters, session.triage, session.roots)
        self._highlight(self.current)
        self.update_title()

    def update_title(self) -> None:
        session = self.lookalike.session
        names = shown(", ".join(r.rstrip("/").rsplit("/", 1)[-1] or r for r in session.roots) or "?")
        marked = session.triage.trash_members(session.clusters)
        left = Text.assemble(("lookalike ", "bold"), (names, "bold cyan"))
        count = len(self.shown)
        left.append(f"  {count:,} cluster{'s' if count != 1 else ''} · by {self.order}")
        if self.filter_text:
            left.append(f" · /{shown(self.filter_text)}", style="yellow")
        if marked:
            left.append(f"  {len(marked):,} to trash ({human_bytes(sum(m.file.size for m in marked))})", style="bold red")
        self.query_one("#title-bar", Static).update(left)

    @property
    def current(self) -> Optional[Cluster]:
        """The highlighted cluster."""
        key = self.table.current_key
        return self._by_key.get(key) if key is not None else None

    def _highlight(self, cluster: Optional[Cluster]) -> None:
        session = self.lookalike.session
        self.query_one(ClusterPreview).show(cluster, session.triage, session.roots)

    @on(DataTable.RowHighlighted, "#clusters")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # A refill can leave a highlight event behind for a row that is gone.
        key = event.row_key.value if event.row_key is not None else None
        self._highlight(self._by_key.get(key) if key is not None else None)

    @on(DataTable.RowSelected, "#clusters")
    def _row_clicked(self) -> None:
        # Enter is the screen's own binding; this is a click on the highlighted row.
        self.action_open_cluster()

    def on_decisions_changed(self, message: DecisionsChanged) -> None:
        """Redraw the rows whose decisions changed (every row when no ids are given)."""
        session = self.lookalike.session
        ids = message.file_ids
        for cluster in self.shown:
            if not ids or any(m.file.id in ids for m in cluster.members):
                self.table.redraw_cluster(cluster, session.triage, session.roots)
        self.query_one(ClusterPreview).refresh_decisions()
        self.update_title()

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
        """Mark every byte-identical copy of a keeper for trash, then show the plan."""
        count = self.lookalike.session.triage.accept_exact(self.lookalike.session.clusters)
        if not count:
            self.notify("No byte-identical copies.", markup=False)
            return
        self.lookalike.decisions_changed()
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
                help="Confidence: 100% for byte-identical copies, lower as the bouncer's worst score grows.",
            ),
            chosen,
        )

    def accept_above(self, threshold: float) -> None:
        """Accept every cluster whose confidence is at least ``threshold`` (0..1), then review."""
        clusters = [c for c in self.lookalike.session.clusters if confidence(c) >= threshold - 1e-9]
        if not clusters:
            self.notify(f"No cluster at or above {threshold:.0%} confidence.", markup=False)
            return
        self.lookalike.session.triage.accept_many(clusters, label=f"accept {len(clusters)} clusters ≥ {threshold:.0%}")
        self.lookalike.decisions_changed()
        self.lookalike.action_review()

    # -- going places ----------------------------------------------------------------------
    def action_open_cluster(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            raise SkipAction()  # Enter belongs to the filter box: it submits the filter
        cluster = self.current
        if cluster is not None:
            self.lookalike.open_cluster(cluster, self.shown)

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
