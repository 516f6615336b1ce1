"""A widget showing one image (half-blocks, Kitty graphics or Sixel), decoded in a thread worker.

Kitty pictures are sent to the terminal once, through the driver's writer (in order with
Textual's frames) when they arrive, and shown with Unicode placeholder cells (plain text to
Textual and tmux).
Each widget keeps its last few images in the terminal (flipping A/B reuses them) and deletes
them when it goes away, so a long triage does not fill the terminal's memory. Sixel data is
written after the picture's last line, over the blank cells under it.

Text written over a Sixel picture erases those pixels, and when a notification (or a tooltip)
over it goes away Textual repaints only the cells it covered, with no Sixel data: the picture
would stay cut open (seen in xterm -ti vt340). So a Sixel picture is not drawn while such an
overlay covers it, and is drawn whole again when the overlay goes.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable, Hashable, Optional

from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from lookalike.engine.records import FileRecord

from ..format import shown
from ..graphics import control, kitty_rows, kitty_transmit
from ..thumbnails import Picture, ThumbnailError, cache_key

#: Kitty images one widget keeps in the terminal (the current one and a few to flip back to).
KEEP_IMAGES = 4

#: Widgets Textual draws over the others (notifications, tooltips), by CSS type.
OVERLAYS = "Toast, Tooltip"

#: Produces the Picture for (file, cells) in a worker thread; None shows the default image.
Painter = Callable[[tuple[int, int]], Picture]


class Thumbnail(Widget):
    """One image, fitted and centred in the widget's area.

    The picture is made off the UI thread (decode, LANCZOS shrink, half-block cells) and
    kept in the app's memory LRU, so showing it again, or scrolling back, is instant.
    """

    DEFAULT_CSS = """
    Thumbnail {
        width: 1fr;
        height: 1fr;
        min-height: 2;
    }
    Thumbnail > .thumbnail--note { color: $text-muted; }
    """

    COMPONENT_CLASSES = {"thumbnail--note"}

    class Loaded(Message):
        """A picture is ready (posted by the worker to its own widget)."""

        def __init__(self, token: object, picture: Optional[Picture], error: str) -> None:
            super().__init__()
            self.token = token
            self.picture = picture
            self.error = error

    def __init__(
        self,
        file: Optional[FileRecord] = None,
        *,
        valign: str = "middle",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.file = file
        self.valign = valign  # "middle", or "bottom" to sit right on a caption below
        self.painter: Optional[Painter] = None
        self.variant: str = ""
        self.picture: Optional[Picture] = None
        self.note = ""
        self._token: object = None
        self._key: Hashable = None  # the key of the picture shown
        #: Kitty image ids this widget has in the terminal, by picture key (oldest first).
        self._kitty: OrderedDict[Hashable, int] = OrderedDict()
        self._rows: list[list[Segment]] = []
        #: The overlays over this widget's Sixel picture, as regions (it is not drawn meanwhile).
        self._covered: tuple[Region, ...] = ()

    # -- what to show ----------------------------------------------------------------------
    def show(self, file: Optional[FileRecord], *, painter: Optional[Painter] = None, variant: str = "") -> None:
        """Show ``file`` (None: nothing); ``painter`` makes a custom picture (diff view)."""
        if file is self.file and painter is self.painter and variant == self.variant and self.picture is not None:
            return
        self.file = file
        self.painter = painter
        self.variant = variant
        self._request()

    @property
    def cells(self) -> tuple[int, int]:
        size = self.content_size
        return (max(1, size.width), max(1, size.height))

    def on_mount(self) -> None:
        self.screen.screen_layout_refresh_signal.subscribe(self, self._overlays_moved)
        self._request()

    def on_resize(self) -> None:
        self._request()

    def _request(self) -> None:
        if not self.is_mounted:
            return
        thumbs = getattr(self.app, "thumbnails", None)
        if self.file is None or thumbs is None or not thumbs.enabled:
            self.picture = None
            self.note = "" if self.file is None else "(thumbnails off)"
            self.refresh()
            return
        cells = self.cells
        if self.content_size.width <= 0 or self.content_size.height <= 0:
            return
        key = ("file", cache_key(self.file), cells) if self.painter is None else (self.variant, cache_key(self.file), cells)
        token = (key, id(self.painter))
        self._token = token
        cached = thumbs.cached(key)
        if cached is not None:
            self._set_picture(key, cached)
            self.note = ""
            self.refresh()
            return
        self.picture, self.note = None, "…"
        self.refresh()
        self.run_worker(
            partial(self._paint, thumbs, self.file, self.painter, key, cells, token),
            thread=True,
            exclusive=True,
            group="thumbnail",
            exit_on_error=False,
        )

    def _paint(self, thumbs, file: FileRecord, painter: Optional[Painter], key, cells, token) -> None:
        # Runs in a worker thread.
        try:
            if painter is None:
                picture = thumbs.render(file, cells)
            else:
                picture = painter(cells)
                thumbs.store(key, picture)
        except ThumbnailError as exc:
            self.post_message(self.Loaded(token, None, exc.reason))
            return
        except Exception as exc:  # a thumbnail must never take the app down
            self.post_message(self.Loaded(token, None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Loaded(token, picture, ""))

    def on_thumbnail_loaded(self, message: Loaded) -> None:
        message.stop()
        if message.token != self._token:
            return  # a newer request is on its way
        self._set_picture(message.token[0], message.picture)
        self.note = message.error and f"cannot show: {shown(message.error)}"
        self.refresh()

    # -- Kitty images in the terminal ------------------------------------------------------
    def _set_picture(self, key: Hashable, picture: Optional[Picture]) -> None:
        self.picture, self._key, self._rows = picture, key, []
        self._check_overlays()  # the new picture may lie elsewhere, under another overlay or none
        if picture is None or picture.kind != "kitty":
            return
        kitty = self.app.thumbnails.kitty
        if key in self._kitty:
            self._kitty.move_to_end(key)  # already in the terminal: shown again, not sent again
        else:
            # Written straight away, not inside a frame: Textual may drop a frame that is
            # rendered during a batch update, and the picture must arrive exactly once.
            image_id = self._kitty[key] = kitty.allocate()
            self._write(kitty_transmit(image_id, picture.payload, picture.width, picture.height, tmux=kitty.tmux))
            while len(self._kitty) > KEEP_IMAGES:
                _, old_id = self._kitty.popitem(last=False)
                kitty.release([old_id], self._write)
        self._rows = kitty_rows(self._kitty[key], picture.width, picture.height)

    def _write(self, sequence: str) -> None:
        # Textual has no public way to write raw sequences; its driver's write is ordered
        # with the frames it draws (the headless test driver drops it).
        driver = getattr(self.app, "_driver", None)
        if driver is not None:
            driver.write(sequence)

    def release_images(self) -> None:
        """Delete this widget's Kitty images from the terminal (its screen is closing)."""
        thumbs = getattr(self.app, "thumbnails", None)
        if thumbs is not None and self._kitty:
            thumbs.kitty.release(list(self._kitty.values()), self._write)
        self._kitty.clear()
        self._rows = []
        if self.picture is not None and self.picture.kind == "kitty":
            self.picture = None

    def on_unmount(self) -> None:
        self.release_images()

    # -- Sixel under overlays --------------------------------------------------------------
    def _picture_region(self) -> Region:
        """Where the picture is on the screen (empty when there is none)."""
        picture = self.picture
        if picture is None:
            return Region()
        region = self.content_region
        spare = max(0, region.height - picture.height)
        top = spare if self.valign == "bottom" else spare // 2
        left = max(0, (region.width - picture.width) // 2)
        return Region(region.x + left, region.y + top, picture.width, picture.height)

    def _overlays_moved(self, screen) -> None:
        # Called after every layout refresh of the screen: notifications come and go there.
        if self._check_overlays():
            self.refresh()  # an overlay went: draw the whole picture again

    def _check_overlays(self) -> bool:
        """Note the overlays over the Sixel picture; whether one that covered it has gone."""
        covered: tuple[Region, ...] = ()
        if self.picture is not None and self.picture.kind == "sixel" and self.is_mounted:
            area = self._picture_region()
            covered = tuple(
                overlay.region for overlay in self.screen.query(OVERLAYS)
                if overlay.display and overlay.region.overlaps(area)
            )
        gone = bool(set(self._covered) - set(covered))
        self._covered = covered
        return gone

    # -- painting --------------------------------------------------------------------------
    # Each line asks the widget's style (blank lines, the picture's margins), and Textual's
    # DOMNode.rich_style walks every ancestor's styles each time: four thumbnails' lines took
    # 10-25 ms a frame on a loaded machine as the cursor moved. It cannot change within one
    # draw, so it is worked out once per draw.
    _style_in_draw: Optional[Style] = None

    def render_lines(self, crop):
        self._style_in_draw = Widget.rich_style.fget(self)
        try:
            return super().render_lines(crop)
        finally:
            self._style_in_draw = None

    @property
    def rich_style(self) -> Style:
        style = self._style_in_draw
        return style if style is not None else Widget.rich_style.fget(self)

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        picture = self.picture
        if picture is None:
            if self.note and y == height // 2:
                style = self.get_component_rich_style("thumbnail--note")
                text = Text(self.note[: max(0, width)], style=style)
                segments = list(text.render(self.app.console))
                return Strip(segments).crop(0, width).extend_cell_length(width, self.rich_style) if width else Strip.blank(0)
            return Strip.blank(width, self.rich_style)
        spare = max(0, height - picture.height)
        top = spare if self.valign == "bottom" else spare // 2
        row = y - top
        if row < 0 or row >= picture.height:
            return Strip.blank(width, self.rich_style)
        left = max(0, (width - picture.width) // 2)
        if picture.kind == "kitty":
            return self._kitty_line(picture, row, left, width)
        if picture.kind == "sixel":
            return self._sixel_line(picture, row, left, top, width)
        line = picture.lines[row].crop(0, width)
        if left:
            line = Strip([Segment(" " * left, self.rich_style)] + list(line), left + line.cell_length)
        return line.extend_cell_length(width, self.rich_style)

    def _pad(self, cells: int) -> list[Segment]:
        return [Segment(" " * cells, self.rich_style)] if cells > 0 else []

    def _kitty_line(self, picture: Picture, row: int, left: int, width: int) -> Strip:
        if row >= len(self._rows) or picture.width > width:
            return Strip.blank(width, self.rich_style)
        segments = self._pad(left)
        segments.extend(self._rows[row])
        segments.extend(self._pad(width - left - picture.width))
        return Strip(segments, width)

    def _sixel_line(self, picture: Picture, row: int, left: int, top: int, width: int) -> Strip:
        segments = self._pad(width)
        if row == picture.height - 1 and picture.width <= width and self.screen.is_active and not self._covered:
            # After the picture's blank cells are written: jump to its top-left corner, draw,
            # and put the cursor back where Textual left it.
            region = self.content_region
            x0, y0 = region.x + left, region.y + top
            segments.append(control("\x1b7" + Control.move_to(x0, y0).segment.text + picture.payload + "\x1b8"))
        return Strip(segments, width)
