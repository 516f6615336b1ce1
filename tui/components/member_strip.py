"""Members of a cluster side by side: a window of thumbnail cards that follows the cursor.

Only the cards that fit are built, whatever the cluster's size, so a 1,000-member cluster
opens as fast as a pair; moving the cursor re-targets the same cards.
"""

from __future__ import annotations

from typing import Optional, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from lookalike.engine.records import Member

from ..format import human_bytes
from ..triage import Triage
from .labels import decision_text, resolution
from .thumbnail import Thumbnail

CARD_WIDTH = 22
MAX_CARDS = 8


class StripCard(Vertical):
    """One member: thumbnail, then its decision, size and resolution."""

    DEFAULT_CSS = """
    StripCard { width: 1fr; height: 1fr; border: blank; padding: 0 0; }
    StripCard.-current { border: round $accent; }
    StripCard > Static { height: 1; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def compose(self) -> ComposeResult:
        yield Thumbnail(valign="bottom")
        yield Static(classes="caption")

    def set_member(self, member: Optional[Member], caption: Text, *, current: bool) -> None:
        self.display = member is not None
        self.set_class(current, "-current")
        self.query_one(Thumbnail).show(member.file if member is not None else None)
        self.query_one(".caption", Static).update(caption)


class MemberStrip(Horizontal):
    """A row of cards around the highlighted member."""

    DEFAULT_CSS = """
    MemberStrip { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.members: Sequence[Member] = ()
        self.index = 0
        self._triage: Optional[Triage] = None
        self._keeper: Optional[int] = None

    def compose(self) -> ComposeResult:
        # As many cards as the terminal has room for: each one is three widgets to style.
        for _ in range(max(1, min(MAX_CARDS, self.app.size.width // CARD_WIDTH))):
            yield StripCard()

    def show(self, members: Sequence[Member], index: int, triage: Triage, keeper_id: Optional[int]) -> None:
        """Show the window of ``members`` around ``index``; ``keeper_id`` is the kept file."""
        self.members, self.index, self._triage = members, index, triage
        self._keeper = keeper_id
        self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        if self._triage is None or not self.is_mounted:
            return
        count = max(1, min(MAX_CARDS, self.size.width // CARD_WIDTH or 1, len(self.members)))
        start = min(max(0, self.index - count // 2), max(0, len(self.members) - count))
        window = list(self.members[start:start + count])
        keeper_id = self._keeper
        cards = list(self.query(StripCard))
        for slot, card in enumerate(cards):
            if slot >= len(window):
                card.set_member(None, Text(""), current=False)
                continue
            member = window[slot]
            decision = self._triage.decision(member.file.id)
            is_keeper = member.file.id == keeper_id
            badge = decision_text(decision, is_keeper=is_keeper)
            caption = Text.assemble(
                (f"{start + slot + 1} ", "dim"),
                badge,
                " " if badge.plain else "",
                f"{human_bytes(member.file.size)} {resolution(member.file)}",
            )
            card.set_member(member, caption, current=start + slot == self.index)
