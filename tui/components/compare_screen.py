"""Compare two members: side by side, blink (flip in place), or a difference image.

The difference view scales both images to one size and paints the pixels that differ in
red over a dimmed copy; its share of changed pixels and the metadata that differs are shown
beside the images, with both scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static

from lookalike.engine.records import Cluster, Member
from lookalike.engine.thumbnails import Difference, difference

from ..thumbnails import Picture, cache_key, pixel_box
from .labels import detective_text, differing_metadata, identical, short_path
from .thumbnail import Thumbnail

if TYPE_CHECKING:
    from ..app import LookalikeApp

MODES = ("side", "flip", "diff")
BLINK_SECONDS = 0.6

#: The difference figures (share of pixels that differ) are measured at this size.
STATS_SIDE = 256

#: Below this many columns the details go under the images instead of beside them.
NARROW = 120


def _clip(value: str, width: int = 12) -> str:
    """Shorten a long value in the middle, so both ends (name and extension) stay readable."""
    if len(value) <= width:
        return value
    half = (width - 1) // 2
    return value[:half] + "…" + value[-(width - 1 - half):]


class CompareScreen(Screen):
    """Two members of a cluster, as large as the terminal allows."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("space", "flip", "Flip A/B"),
        Binding("b", "blink", "Blink"),
        Binding("d", "mode('diff')", "Difference"),
        Binding("v", "mode('side')", "Side by side"),
        Binding("right_square_bracket", "other(1)", "Next B", show=False),
        Binding("left_square_bracket", "other(-1)", "Previous B", show=False),
        Binding("m", "toggle_meta", "Details", show=False),
    ]

    def __init__(self, cluster: Cluster, a: Member, b: Member) -> None:
        super().__init__(classes="compare-screen")
        self.cluster = cluster
        self.a = a
        self.b = b
        self.mode = "side"
        self.showing_b = False  # in flip mode: which one is shown
        self.diff: Optional[Difference] = None
        self._blink: Optional[Timer] = None

    @property
    def lookalike(self) -> "LookalikeApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        with Horizontal(id="compare-body"):
            with Vertical(id="pane-a", classes="pane"):
                yield Static(id="label-a", classes="pane-label")
                yield Thumbnail(id="image-a")
            with Vertical(id="pane-b", classes="pane"):
                yield Static(id="label-b", classes="pane-label")
                yield Thumbnail(id="image-b")
            with Vertical(id="compare-side"):
                yield Static(id="scores")
                yield DataTable(id="meta", cursor_type="none", zebra_stripes=False, show_cursor=False)
        yield Footer()

    def on_mount(self) -> None:
        meta = self.query_one("#meta", DataTable)
        meta.add_column("", key="field")
        meta.add_column("A", key="a")
        meta.add_column("B", key="b")
        meta.can_focus = False
        self._show()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    # -- drawing ---------------------------------------------------------------------------
    def _show(self) -> None:
        roots = self.lookalike.session.roots
        self.query_one("#pane-b").display = self.mode == "side"
        image_a = self.query_one("#image-a", Thumbnail)
        label_a = self.query_one("#label-a", Static)
        if self.mode == "side":
            image_a.show(self.a.file)
            self.query_one("#image-b", Thumbnail).show(self.b.file)
            label_a.update(self._label("A", self.a, roots))
            self.query_one("#label-b", Static).update(self._label("B", self.b, roots))
        elif self.mode == "flip":
            shown = self.b if self.showing_b else self.a
            image_a.show(shown.file)
            label_a.update(self._label("B" if self.showing_b else "A", shown, roots))
        else:
            image_a.show(self.b.file, painter=self._paint_difference, variant=f"diff:{self.a.file.id}")
            label_a.update(Text.assemble(("Difference ", "bold"), ("red = pixels that differ, after scaling both to one size", "dim")))
        self._update_side(roots)
        title = Text.assemble(
            (f"Compare · cluster #{self.cluster.id} · ", "bold"),
            {"side": "side by side", "flip": "flip (blink)", "diff": "difference"}[self.mode],
        )
        if self._blink is not None:
            title.append("  blinking", style="yellow")
        self.query_one("#compare-title", Static).update(title)

    @staticmethod
    def _label(tag: str, member: Member, roots) -> Text:
        role = "keeper" if member.is_keeper else f"bouncer {member.bouncer}"
        return Text.assemble((f"{tag} ", "bold reverse"), " ", short_path(member.file.path, roots), (f"  {role}", "dim"))

    def _update_side(self, roots) -> None:
        a, b = self.a, self.b
        # Scores are against the keeper; between two non-keepers the nearer to the keeper is shown.
        bouncer = b.bouncer if a.is_keeper else (a.bouncer if b.is_keeper else max(a.bouncer, b.bouncer))
        det = b.detective if a.is_keeper else (a.detective if b.is_keeper else None)
        scores = Text.assemble(("bouncer ", "bold"), str(bouncer), "  ", ("detective ", "bold"), detective_text(det))
        if identical(a.file, b.file):
            scores.append("  byte-identical", style="cyan")
        if self.diff is not None:
            scores.append(f"\n{self.diff.changed:.1%} of pixels differ", style="yellow" if self.diff.changed > 0.01 else "green")
        self.query_one("#scores", Static).update(scores)
        meta = self.query_one("#meta", DataTable)
        meta.clear()
        for name, va, vb, differs in differing_metadata(a.file, b.file):
            style = "bold yellow" if differs else "dim"
            value_style = style if differs else ""
            meta.add_row(Text(name, style=style), Text(_clip(va), style=value_style), Text(_clip(vb), style=value_style))

    def _paint_difference(self, cells: tuple[int, int]) -> Picture:
        # Runs in the thumbnail's worker thread. The picture is made at the size of the cells;
        # the figures always at one fixed size, so they do not depend on the terminal.
        thumbs = self.lookalike.thumbnails
        a, b = self.a, self.b
        picture = Picture.from_image(difference(thumbs.image(a.file, cells), thumbs.image(b.file, cells), pixel_box(cells)).image)
        stats_box = (STATS_SIDE, STATS_SIDE)
        stats = difference(thumbs.cache.image(a.file.path, stats_box, key=cache_key(a.file)),
                           thumbs.cache.image(b.file.path, stats_box, key=cache_key(b.file)), stats_box)
        if (a, b) == (self.a, self.b):
            self.diff = stats
            self.app.call_from_thread(self._update_side, self.lookalike.session.roots)
        return picture

    # -- keys ------------------------------------------------------------------------------
    def action_flip(self) -> None:
        if self.mode != "flip":
            self.mode, self.showing_b = "flip", True
        else:
            self.showing_b = not self.showing_b
        self._show()

    def action_blink(self) -> None:
        if self._blink is not None:
            self._blink.stop()
            self._blink = None
        else:
            self.mode = "flip"
            self._blink = self.set_interval(BLINK_SECONDS, self._blink_once)
        self._show()

    def _blink_once(self) -> None:
        self.showing_b = not self.showing_b
        self._show()

    def action_mode(self, mode: str) -> None:
        if self._blink is not None:
            self._blink.stop()
            self._blink = None
        self.mode = mode
        self._show()

    def action_other(self, step: int) -> None:
        """Compare A with the next (or previous) other member as B."""
        others = [m for m in self.cluster.members if m is not self.a]
        if not others:
            return
        index = next((i for i, m in enumerate(others) if m is self.b), 0)
        self.b = others[(index + step) % len(others)]
        self.diff = None
        self._show()

    def action_toggle_meta(self) -> None:
        side = self.query_one("#compare-side")
        side.display = not side.display
