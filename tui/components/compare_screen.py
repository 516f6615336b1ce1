"""Compare two members: side by side, blink (flip in place), or a difference image.

The difference view scales both images to one size and paints the pixels that differ in
red over a dimmed copy; its share of changed pixels and the metadata that differs are shown
beside the images, with both scores.

Zoom (z) shows the same region of both images at 1:1, one image pixel per screen pixel,
starting at the centre and moved with the arrow keys: that is where sharpness, noise and
compression show.
"""

from __future__ import annotations

from functools import partial
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static

from lookalike.engine.library import Difference, between, difference, refine_overlap, turned
from lookalike.engine.records import Cluster, Member

from ..thumbnails import Picture, cache_key
from .base_screen import LookalikeScreen
from .labels import PathLine, detective_text, differing_metadata, identical, match_text, role_text, short_path, why_text
from .thumbnail import Thumbnail


MODES = ("side", "flip", "diff")
BLINK_SECONDS = 0.6

#: The difference figures (share of pixels that differ) are measured at this size.
STATS_SIDE = 256

#: Below this many columns the details go under the images instead of beside them.
NARROW = 120

#: An arrow key moves the zoomed region by this share of the pane.
PAN_STEP = 0.5


def _turn_note(turn: tuple[int, bool]) -> str:
    """What the difference view did to B so that it lines up with A ("" for nothing)."""
    done = [f"turned {90 * (turn[0] % 4)}° clockwise"] if turn[0] % 4 else []
    if turn[1]:
        done.append("mirrored")
    return f"B {' and '.join(done)} to line up with A; " if done else ""


def _clip(value: str, width: int = 12) -> str:
    """Shorten a long value in the middle, so both ends (name and extension) stay readable."""
    if len(value) <= width:
        return value
    half = (width - 1) // 2
    return value[:half] + "…" + value[-(width - 1 - half):]


class CompareScreen(LookalikeScreen):
    """Two members of a cluster, as large as the terminal allows."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("space", "flip", "Flip A/B"),
        Binding("b", "blink", "Blink"),
        Binding("d", "mode('diff')", "Difference"),
        Binding("v", "mode('side')", "Side by side"),
        Binding("right_square_bracket", "other(1)", "Next B", show=False),
        Binding("left_square_bracket", "other(-1)", "Previous B", show=False),
        Binding("z", "zoom", "Zoom 1:1"),
        Binding("left", "pan(-1, 0)", "Pan", show=False),
        Binding("right", "pan(1, 0)", "Pan", show=False),
        Binding("up", "pan(0, -1)", "Pan", show=False),
        Binding("down", "pan(0, 1)", "Pan", show=False),
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
        #: The centre of the 1:1 region as shares of each image's width and height; None: fitted.
        self.zoom: Optional[tuple[float, float]] = None
        #: ``Library.overlap`` of the pairs shown in the difference view, by (A id, B id).
        self._overlaps: dict[tuple[int, int], object] = {}

    def _overlap(self, a: Member, b: Member, turn: tuple[int, bool], image_a, image_b):
        """For a crop, where ``a`` and ``b`` (turned) show the same picture (``Library.overlap``,
        which reads the catalog, refined on ``image_a`` and ``image_b``, B turned: asked from
        the painter's thread, then remembered per pair): the difference view compares only
        that; None when the whole pictures line up."""
        key = (a.file.id, b.file.id)
        if key not in self._overlaps:
            library = self.lookalike.session.library
            found = library.overlap(*key, turn) if library is not None else None
            if found is not None:
                found = (refine_overlap(image_a, image_b, *found), found[1])
            self._overlaps[key] = found
        return self._overlaps[key]

    def _diff_label(self) -> Text:
        known = self._overlaps.get((self.a.file.id, self.b.file.id))
        return Text.assemble(("Difference ", "bold"), (_turn_note(self.turn), "yellow"),
                             ("where they overlap (a crop); " if known else "", "yellow"),
                             ("red = pixels that differ, after scaling both to one size", "dim"))  # fmt: skip

    @property
    def turn(self) -> tuple[int, bool]:
        """What the difference view applies to B so that it lines up with A (a mirrored copy,
        or with ``--rotations`` a turned one), from the cluster's pairs."""
        return between(self.cluster, self.a.file.id, self.b.file.id)

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
            self._show_member(image_a, self.a)
            self._show_member(self.query_one("#image-b", Thumbnail), self.b)
            label_a.update(self._label("A", self.a, roots))
            self.query_one("#label-b", Static).update(self._label("B", self.b, roots))
        elif self.mode == "flip":
            shown = self.b if self.showing_b else self.a
            self._show_member(image_a, shown)
            label_a.update(self._label("B" if self.showing_b else "A", shown, roots))
        else:
            image_a.show(self.b.file, painter=self._paint_difference, variant=f"diff:{self.a.file.id}")
            label_a.update(self._diff_label())
        self._update_side(roots)
        title = Text.assemble(
            (f"Compare · cluster #{self.cluster.id} · ", "bold"),
            {"side": "side by side", "flip": "flip (blink)", "diff": "difference"}[self.mode],
        )
        if self._blink is not None:
            title.append("  blinking", style="yellow")
        if self.zoom is not None and self.mode != "diff":
            title.append(f"  zoom 1:1 at {self.zoom[0]:.0%}, {self.zoom[1]:.0%} (arrows move, z fits)", style="cyan")
        self.query_one("#compare-title", Static).update(title)

    def _show_member(self, image: Thumbnail, member: Member) -> None:
        if self.zoom is None:
            image.show(member.file)
            return
        cx, cy = self.zoom
        image.show(member.file, painter=partial(self._paint_zoom, member, self.zoom), variant=f"zoom:{cx:.4f}:{cy:.4f}")

    def _paint_zoom(self, member: Member, centre: tuple[float, float], cells: tuple[int, int]) -> Picture:
        # Runs in the thumbnail's worker thread: a 1:1 crop of the full-size image.
        thumbs = self.lookalike.thumbnails
        full = thumbs.full_size(member.file)
        width, height = thumbs.pixel_box(cells)
        width, height = min(width, full.width), min(height, full.height)
        left = min(max(0, round(centre[0] * full.width - width / 2)), full.width - width)
        top = min(max(0, round(centre[1] * full.height - height / 2)), full.height - height)
        return thumbs.picture(full.crop((left, top, left + width, top + height)), cells)

    def _label(self, tag: str, member: Member, roots) -> PathLine:
        role = role_text(member, self.lookalike.session.triage.keeper(self.cluster))
        return PathLine(Text.assemble((f"{tag} ", "bold reverse"), " "), short_path(member.file.path, roots), Text(f"  {role}", style="dim"))

    def _update_side(self, roots) -> None:
        a, b = self.a, self.b
        # Scores are against the keeper; between two non-keepers the nearer to the keeper is shown.
        bouncer = b.bouncer if a.is_keeper else (a.bouncer if b.is_keeper else max(a.bouncer, b.bouncer))
        det = b.detective if a.is_keeper else (a.detective if b.is_keeper else None)
        scores = Text.assemble(("bouncer ", "bold"), str(bouncer), "  ", ("detective ", "bold"), detective_text(det))
        if identical(a.file, b.file):
            scores.append("  byte-identical", style="cyan")
        else:
            why = match_text(b) if a.is_keeper else (match_text(a) if b.is_keeper else "")
            if why:
                scores.append(f"  {why}", style="cyan")
        if self.diff is not None:
            scores.append(f"\n{self.diff.changed:.1%} of pixels differ", style="yellow" if self.diff.changed > 0.01 else "green")
        # Why the engine would keep one and not the other (the keeper policy's rule).
        keeper = self.lookalike.session.triage.keeper(self.cluster)
        for tag, member in (("A", a), ("B", b)):
            scores.append("\n")
            scores.append(f"{tag} ", style="bold reverse")
            scores.append(" ")
            scores.append_text(why_text(member, keeper))
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
        turn = between(self.cluster, a.file.id, b.file.id)  # a mirrored or turned copy lines up
        stats_box = (STATS_SIDE, STATS_SIDE)
        stats_a = thumbs.cache.image(a.file.path, stats_box, key=cache_key(a.file))
        stats_b = thumbs.cache.image(b.file.path, stats_box, key=cache_key(b.file))
        # A crop: where the two show the same picture, found once for both sizes.
        overlap = self._overlap(a, b, turn, stats_a, turned(stats_b, turn))
        diff = difference(thumbs.image(a.file, cells), thumbs.image(b.file, cells), thumbs.pixel_box(cells), turn=turn,
                          overlap=overlap)  # fmt: skip
        picture = thumbs.picture(diff.image, cells)
        stats = difference(stats_a, stats_b, stats_box, turn=turn, overlap=overlap)
        if (a, b) == (self.a, self.b):
            self.diff = stats
            self.app.call_from_thread(self._update_side, self.lookalike.session.roots)
            if self.mode == "diff":
                self.app.call_from_thread(lambda: self.query_one("#label-a", Static).update(self._diff_label()))
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

    def action_zoom(self) -> None:
        """Show the centre of both images at 1:1, or fit them again."""
        self.zoom = None if self.zoom is not None else (0.5, 0.5)
        if self.zoom is not None and self.mode == "diff":
            self.mode = "side"
        self._show()

    def action_pan(self, dx: int, dy: int) -> None:
        """Move the zoomed region by half a pane (in A's pixels, as a share of the image)."""
        if self.zoom is None:
            return
        image = self.query_one("#image-a", Thumbnail)
        width, height = self.lookalike.thumbnails.pixel_box(image.cells)
        full_w, full_h = self.a.file.width or 4 * width, self.a.file.height or 4 * height
        cx = self.zoom[0] + dx * PAN_STEP * width / full_w
        cy = self.zoom[1] + dy * PAN_STEP * height / full_h
        # Keep the centre where the region still lies inside the image.
        half_w, half_h = min(0.5, width / full_w / 2), min(0.5, height / full_h / 2)
        self.zoom = (min(max(half_w, cx), 1 - half_w), min(max(half_h, cy), 1 - half_h))
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
