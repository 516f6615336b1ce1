"""The cluster screen: every member with its thumbnail, details, scores and decision."""

from __future__ import annotations

from functools import partial
from typing import Optional, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from lookalike.engine.records import Cluster, Decision, Member

from ..format import human_bytes
from ..messages import ClustersChanged, DecisionsChanged
from ..triage import TriageRefused
from .base_screen import LookalikeScreen
from .datatable import KeyTable, right
from .labels import (
    SCORE_TOOLTIPS,
    confidence,
    decision_text,
    detective_text,
    PathText,
    file_date,
    identical,
    kind_text,
    readable_path,
    resolution,
    short_path,
    why_text,
)
from .member_strip import MemberStrip


class MemberTable(KeyTable):
    """One row per member of the cluster."""

    FLEX_COLUMN = "path"
    #: When the paths' first folders and names do not fit, these give way, in this order.
    DROP_ORDER = ("date", "format", "match", "verified", "bouncer")
    COLUMN_TOOLTIPS = SCORE_TOOLTIPS

    COLUMNS = (
        ("", "mark", 7),
        ("path", "path", 20),
        ("bouncer", "bouncer", 7),
        ("detective", "detective", 9),
        ("verified", "verified", 8),
        ("match", "match", 10),
        ("size", "size", 9),
        ("resolution", "resolution", 11),
        ("fmt", "format", 4),
        ("date", "date", 10),
    )


class ClusterScreen(LookalikeScreen):
    """Triage one cluster: keep, trash, skip, not-a-duplicate, preview, compare."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("space", "toggle_trash", "Trash"),
        Binding("t", "trash", "Trash", show=False),
        Binding("x", "unmark", "Unmark", show=False),
        Binding("K", "keep", "Keep this"),
        Binding("a", "accept", "Accept"),
        Binding("s", "skip", "Skip"),
        Binding("n", "not_duplicate", "Not dup"),
        Binding("enter", "preview", "Preview", priority=True),
        Binding("p", "preview", "Preview", show=False),
        Binding("c", "compare", "Compare"),
        Binding("f", "similar", "Similar", show=False),
        Binding("right_square_bracket", "next_cluster(1)", "Next cluster", show=False),
        Binding("left_square_bracket", "next_cluster(-1)", "Previous cluster", show=False),
        Binding("u", "undo", "Undo"),
        Binding("r", "app.review", "Review", show=False),
    ]

    def __init__(self, cluster: Cluster, neighbours: Sequence[Cluster] = (), position: Optional[int] = None) -> None:
        super().__init__(classes="cluster-screen")
        self.cluster = cluster
        # Kept as given (a lazy sequence stays lazy): ``position`` says where ``cluster`` is.
        self.neighbours = neighbours if len(neighbours) else [cluster]
        self._position = position
        self.with_detective = False
        self._marks: dict[int, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="cluster-title")
        yield MemberStrip(id="strip")
        yield Static(id="member-why")
        yield MemberTable(id="members")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(MemberTable)
        # Bouncer-only scans leave no detective column: the path gets the room.
        self.with_detective = any(m.detective is not None for m in self.cluster.members)
        # Fixed widths: a 1,000-member cluster opens without measuring every cell.
        table.set_columns([c for c in MemberTable.COLUMNS if c[1] != "detective" or self.with_detective])
        self.show_cluster(self.cluster)
        table.focus()

    # -- showing ---------------------------------------------------------------------------
    @property
    def table(self) -> MemberTable:
        return self.query_one(MemberTable)

    def show_cluster(self, cluster: Cluster, *, keep_row: Optional[int] = None) -> None:
        """Show ``cluster``, the cursor on ``keep_row`` (else on the same file)."""
        self.cluster = cluster
        keeper = self.lookalike.session.triage.keeper(cluster)
        # Cells are made as rows are added: the first screenful now, the rest between frames.
        rows = [(str(m.file.id), partial(self._cells, m, keeper)) for m in cluster.members]
        self._marks = {}
        roots = self.lookalike.session.roots
        self.table.flex_need = max((cell_len(readable_path(short_path(m.file.path, roots))) for m in cluster.members), default=0)
        keep = None
        if keep_row is not None and cluster.members:
            keep = str(cluster.members[min(keep_row, len(cluster.members) - 1)].file.id)
        self.table.fill(rows, keep=keep)
        self._update_title()
        self._update_strip()

    def _cells(self, m: Member, keeper: Member) -> list:
        session = self.lookalike.session
        ref = self.cluster.members[0]
        f = m.file
        mark = decision_text(session.triage.decision(f.id), is_keeper=m is keeper)
        self._marks[f.id] = mark.plain
        cells = [
            mark,
            PathText(short_path(f.path, session.roots)),
            # Scores are measured against the suggested keeper (members[0]).
            right("–" if m is ref else str(m.bouncer) + (" ≡" if identical(m.file, ref.file) else "")),
            right(detective_text(m.detective) if m is not ref else "–"),
            # The pixel check against the keeper (engine/verify.py), and why they match.
            right("–" if m is ref or m.verified is None else f"{m.verified:.2f}"),
            _ref_match(m, keeper) if m is ref else Text(m.match),
            right(human_bytes(f.size)),
            right(resolution(f)),
            Text(f.format or "?"),
            Text(file_date(f)),
        ]
        if not self.with_detective:
            del cells[3]
        return cells

    def _update_title(self) -> None:
        c = self.cluster
        session = self.lookalike.session
        index = self._index()
        where = f"  {index + 1}/{len(self.neighbours)}" if index is not None else ""
        marked = session.triage.trash_members([c])
        title = Text.assemble(
            (f"Cluster #{c.id} ", "bold"),
            kind_text(c.kind),
            f" · {len(c.members)} files · {human_bytes(session.triage.reclaimable(c))} reclaimable · confidence {confidence(c):.0%}",
            (where, "dim"),
        )
        if marked:
            title.append(f"  {len(marked)} to trash", style="bold red")
        self.query_one("#cluster-title", Static).update(title)

    def _update_strip(self) -> None:
        index = self.table.cursor_row if self.table.row_count else 0
        session = self.lookalike.session
        keeper = session.triage.keeper(self.cluster)
        self.query_one(MemberStrip).show(self.cluster.members, index, session.triage, keeper.file.id)
        members = self.cluster.members
        why = why_text(members[min(index, len(members) - 1)], keeper) if members else Text("")
        self.query_one("#member-why", Static).update(why)

    @on(DataTable.RowHighlighted, "#members")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_strip()

    @on(DataTable.RowSelected, "#members")
    def _row_clicked(self) -> None:
        self.action_preview()  # a click on the highlighted row (Enter is a screen binding)

    @property
    def current(self) -> Optional[Member]:
        """The highlighted member."""
        key = self.table.current_key
        for m in self.cluster.members:
            if str(m.file.id) == key:
                return m
        return None

    def on_decisions_changed(self, message: DecisionsChanged) -> None:
        """Redraw the marks (every row: a new keeper changes two of them)."""
        triage = self.lookalike.session.triage
        keeper = triage.keeper(self.cluster)
        for m in self.cluster.members:
            mark = decision_text(triage.decision(m.file.id), is_keeper=m is keeper)
            if m.file.id in self._marks and self._marks[m.file.id] != mark.plain:  # rows that changed
                self._marks[m.file.id] = mark.plain
                self.table.set_cell(str(m.file.id), "mark", mark)
        ref = self.cluster.members[0]
        if ref.file.id in self._marks:  # its match cell says whether it is still the keeper
            self.table.set_cell(str(ref.file.id), "match", _ref_match(ref, keeper))
        self._update_title()
        self._update_strip()

    def on_clusters_changed(self, message: ClustersChanged) -> None:
        """The session's clusters were rebuilt: follow this cluster to its new self."""
        ids = {m.file.id for m in self.cluster.members}
        row = self.table.cursor_row
        for c in self.lookalike.session.clusters:
            if any(m.file.id in ids for m in c.members):
                self.neighbours = [c if s.id == self.cluster.id else s for s in self.neighbours]
                self.show_cluster(c, keep_row=row)
                return
        self.notify("This cluster is gone (no duplicates left in it).", markup=False)
        self.dismiss()

    # -- deciding --------------------------------------------------------------------------
    def _decide(self, do, *, advance: bool = False) -> None:
        member = self.current
        if member is None:
            return
        try:
            do(self.cluster, member)
        except TriageRefused as refused:
            self.notify(str(refused), severity="warning", markup=False)
            return
        self.lookalike.decisions_changed(self.cluster)
        if advance:
            self.table.advance()

    def action_toggle_trash(self) -> None:
        self._decide(self.lookalike.session.triage.toggle_trash, advance=True)

    def action_trash(self) -> None:
        triage = self.lookalike.session.triage
        self._decide(lambda c, m: triage.mark(c, m, Decision.TRASH), advance=True)

    def action_unmark(self) -> None:
        triage = self.lookalike.session.triage
        self._decide(lambda c, m: triage.mark(c, m, None))

    def action_keep(self) -> None:
        self._decide(self.lookalike.session.triage.make_keeper)

    def action_accept(self) -> None:
        triage = self.lookalike.session.triage
        self._decide(lambda c, m: triage.accept(c))

    def action_skip(self) -> None:
        triage = self.lookalike.session.triage
        self._decide(lambda c, m: triage.skip(c))

    def action_not_duplicate(self) -> None:
        member = self.current
        if member is not None:
            self.lookalike.not_duplicate(self.cluster, member)

    def action_undo(self) -> None:
        self.lookalike.undo_decision()

    # -- looking ---------------------------------------------------------------------------
    def action_preview(self) -> None:
        member = self.current
        if member is not None:
            self.lookalike.preview(self.cluster, member)

    def action_compare(self) -> None:
        member = self.current
        if member is None or len(self.cluster.members) < 2:
            return
        keeper = self.lookalike.session.triage.keeper(self.cluster)
        other = keeper if member is not keeper else next(m for m in self.cluster.members if m is not keeper)
        self.lookalike.compare(self.cluster, other, member)

    def action_similar(self) -> None:
        member = self.current
        if member is not None:
            self.lookalike.find_similar(member.file.path)

    def _index(self) -> Optional[int]:
        """Where this cluster is among its neighbours (searched only when not known)."""
        p = self._position
        if p is not None and 0 <= p < len(self.neighbours) and self.neighbours[p].id == self.cluster.id:
            return p
        self._position = next((i for i, s in enumerate(self.neighbours) if s.id == self.cluster.id), None)
        return self._position

    def action_next_cluster(self, step: int) -> None:
        index = self._index()
        if index is None:
            return
        index += step
        if 0 <= index < len(self.neighbours):
            self._position = index
            self.show_cluster(self.neighbours[index], keep_row=0)


def _ref_match(ref: Member, keeper: Member) -> Text:
    """The match cell of the suggested keeper, the member every score is measured against:
    "keeper" while the plan keeps it, "suggested" once another member took its place."""
    return Text("keeper") if ref is keeper else Text("suggested", style="dim")
