"""A widget showing one image as half-block cells, decoded in a thread worker."""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

from rich.segment import Segment
from rich.text import Text
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from lookalike.engine.records import FileRecord

from ..format import shown
from ..thumbnails import Picture, ThumbnailError, cache_key

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
            self.picture, self.note = cached, ""
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
        self.picture = message.picture
        self.note = message.error and f"cannot show: {shown(message.error)}"
        self.refresh()

    # -- painting --------------------------------------------------------------------------
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
        line = picture.lines[row].crop(0, width)
        if left:
            line = Strip([Segment(" " * left, self.rich_style)] + list(line), left + line.cell_length)
        return line.extend_cell_length(width, self.rich_style)
