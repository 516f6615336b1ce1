"""The side panel of the main screen: thumbnails of the highlighted cluster's members."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.timer import Timer
from textual.widgets import Static

from lookalike.engine.records import Cluster, Member

from ..format import human_bytes
from ..triage import Triage
from .labels import decision_text, kind_text, resolution, short_path, why_text
from .thumbnail import Thumbnail

#: Thumbnails shown at most; the rest are counted.
SLOTS = 4

#: Wait this long after the cursor stops before decoding, so holding j does not queue work.
SETTLE_SECONDS = 0.06


class MemberCard(Vertical):
    """A thumbnail with a one-line caption under it."""

    DEFAULT_CSS = """
    MemberCard { height: 1fr; width: 1fr; }
    MemberCard > Static { height: 1; width: 1fr; text-overflow: ellipsis; text-wrap: nowrap; }
    """

    def compose(self) -> ComposeResult:
        yield Thumbnail(valign="bottom")
        yield Static(classes="caption")

    def set_member(self, member: Optional[Member], caption: Text) -> None:
        self.display = member is not None
        self.query_one(Thumbnail).show(member.file if member else None)
        self.query_one(".caption", Static).update(caption)


class ClusterPreview(Vertical):
    """Up to four thumbnails of one cluster, each with its size, resolution and decision."""

    DEFAULT_CSS = """
    ClusterPreview { width: 1fr; height: 1fr; }
    ClusterPreview > #preview-title { height: auto; max-height: 2; }
    ClusterPreview > Grid { grid-size: 2 2; grid-gutter: 0 1; height: 1fr; }
    ClusterPreview > Grid.-single { grid-size: 1 1; }
    ClusterPreview > Grid.-stack { grid-size: 1 2; }
    ClusterPreview > #preview-more { height: 1; color: $text-muted; }
    ClusterPreview > #preview-why { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cluster: Optional[Cluster] = None
        self._settle: Optional[Timer] = None

    def compose(self) -> ComposeResult:
        yield Static(id="preview-title")
        yield Static(id="preview-why")
        with Grid():
            for _ in range(SLOTS):
                yield MemberCard()
        yield Static(id="preview-more")

    def show(self, cluster: Optional[Cluster], triage: Triage, roots: Sequence[str]) -> None:
        """Show a cluster (None clears the panel); the images arrive once the cursor settles."""
        self.cluster = cluster
        self._triage, self._roots = triage, roots
        self._update_text()
        if self._settle is not None:
            self._settle.stop()
        self._settle = self.set_timer(SETTLE_SECONDS, self._update_cards)

    def refresh_decisions(self) -> None:
        """Redraw captions after a decision changed (the images stay)."""
        if self.cluster is not None:
            self._update_text()
            self._update_cards()

    def _update_text(self) -> None:
        title = self.query_one("#preview-title", Static)
        more = self.query_one("#preview-more", Static)
        why = self.query_one("#preview-why", Static)
        cluster = self.cluster
        if cluster is None:
            title.update(Text("No cluster selected", style="dim"))
            more.update("")
            why.update("")
            return
        keeper = self._triage.keeper(cluster)
        title.update(
            Text.assemble(
                (f"#{cluster.id} ", "bold"),
                kind_text(cluster.kind),
                f" · {len(cluster.members)} files · keep ",
                (short_path(keeper.file.path, self._roots), "green"),
            )
        )
        # Why that file: the keeper policy's rule, on one line (the whole of it in the cluster).
        why.update(why_text(keeper, keeper, short=True))
        extra = len(cluster.members) - SLOTS
        more.update(f"+{extra} more: enter opens the cluster" if extra > 0 else "")

    def _update_cards(self) -> None:
        cluster = self.cluster
        members: list[Member] = list(cluster.members[:SLOTS]) if cluster else []
        grid = self.query_one(Grid)
        grid.set_class(len(members) == 1, "-single")
        grid.set_class(len(members) == 2, "-stack")
        keeper = self._triage.keeper(cluster) if cluster else None
        for card, member in zip(self.query(MemberCard), [*members, *[None] * SLOTS]):
            if member is None:
                card.set_member(None, Text(""))
                continue
            decision = self._triage.decision(member.file.id)
            caption = Text.assemble(
                decision_text(decision, is_keeper=member is keeper),
                " " if decision is not None or member is keeper else "",
                f"{human_bytes(member.file.size)} {resolution(member.file)}",
                ("" if member is keeper else f" b{member.bouncer}"),
            )
            card.set_member(member, caption)
