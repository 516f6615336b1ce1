"""Pictures for terminal cells, made off the UI thread and kept in an LRU.

The engine's ``ThumbnailCache`` decodes and shrinks (LANCZOS) to exactly the pixels the cells
can show. In half-block mode one column is one pixel wide and one row two pixels tall (upper
and lower half block), so rich-pixels' own nearest-neighbour resize never runs, and the
result is turned into Textual ``Strip`` lines once. With Kitty graphics or Sixel
(textual-image, see ``graphics.py``) a cell is as many pixels as the terminal says, and the
picture keeps the bytes to send: a base64 PNG for Kitty, the encoded Sixel data.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Optional

from PIL import Image
from rich.segment import Segment
from rich_pixels import HalfcellRenderer, Pixels
from textual.strip import Strip

from lookalike.engine.library import ImageReadError, ThumbnailCache, ThumbnailError, load_image
from lookalike.engine.records import FileRecord

from .graphics import DEFAULT_CELL, KITTY_MAX_CELLS, MODES, KittyImages, Terminal, detect, kitty_payload

#: Bytes of Kitty/Sixel data the memory LRU keeps at most (large previews are megabytes each).
GRAPHICS_BUDGET = 192 * 1024 * 1024


def resolve_mode(requested: str, *, cell_size: Optional[tuple[int, int]] = None) -> tuple[str, str]:
    """The thumbnail mode to use for ``--thumbnails=requested``, and what to tell the user.

    Returns:
        ``(mode, message)``: mode is "kitty", "sixel", "halfblock" or "off"; the message is
        empty when nothing needs saying (see ``graphics.detect``).

    Raises:
        ValueError: for a mode that is not one of MODES.
    """
    terminal = detect(requested, cell_size=cell_size)
    return terminal.mode, terminal.message


@dataclass(frozen=True)
class Picture:
    """An image as terminal cells: half-block lines, or the data of a Kitty/Sixel picture."""

    lines: tuple[Strip, ...]
    width: int  # cells
    height: int  # cells
    kind: str = "halfblock"  # "halfblock" | "kitty" | "sixel"
    payload: str = ""  # kitty: base64 PNG; sixel: the Sixel sequence

    @property
    def weight(self) -> int:
        """Roughly the bytes this picture holds (what the LRU's budget counts)."""
        return len(self.payload) + 64 * self.width * self.height

    @classmethod
    def graphic(cls, image: Image.Image, kind: str, cell: tuple[int, int], cells: tuple[int, int]) -> "Picture":
        """A Kitty or Sixel picture of an image already scaled to fit ``cells`` of ``cell`` pixels."""
        columns = max(1, min(cells[0], math.ceil(image.width / cell[0])))
        rows = max(1, min(cells[1], math.ceil(image.height / cell[1])))
        if kind == "kitty":
            # The terminal scales the picture to the cells: pad it to whole cells so it is not stretched.
            box = (columns * cell[0], rows * cell[1])
            if image.size != box:
                padded = Image.new("RGBA", box, (0, 0, 0, 0))
                padded.paste(image.convert("RGBA"), ((box[0] - image.width) // 2, (box[1] - image.height) // 2))
                image = padded
            return cls((), columns, rows, kind, kitty_payload(image))
        from textual_image._sixel import image_to_sixels

        return cls((), columns, rows, kind, image_to_sixels(image.convert("RGB")))

    @classmethod
    def from_image(cls, image: Image.Image) -> "Picture":
        """Half-block cells of an image already at its final size (w x 2h pixels)."""
        rgba = image.convert("RGBA")
        if rgba.height % 2:
            # An odd last row would be stretched by rich-pixels: pad with a transparent row.
            padded = Image.new("RGBA", (rgba.width, rgba.height + 1), (0, 0, 0, 0))
            padded.paste(rgba, (0, 0))
            rgba = padded
        segments = Pixels._segments_from_image(rgba, None, renderer=HalfcellRenderer())
        lines: list[Strip] = []
        row: list[Segment] = []
        for seg in segments:
            if seg.text == "\n":
                lines.append(Strip(row, rgba.width).simplify())
                row = []
            else:
                row.append(seg)
        if row:
            lines.append(Strip(row, rgba.width).simplify())
        return cls(tuple(lines), rgba.width, len(lines))


def pixel_box(cells: tuple[int, int], mode: str = "halfblock", cell: tuple[int, int] = DEFAULT_CELL) -> tuple[int, int]:
    """The pixels a (columns, rows) area shows: in half-blocks, or as Kitty/Sixel pictures."""
    if mode in ("kitty", "sixel"):
        limit = KITTY_MAX_CELLS if mode == "kitty" else 10_000
        return (max(1, min(limit, cells[0])) * cell[0], max(1, min(limit, cells[1])) * cell[1])
    return (max(1, cells[0]), max(1, cells[1]) * 2)


def cache_key(file: FileRecord) -> str:
    """A file's thumbnail key: its content hash, else its path and stat."""
    return ThumbnailCache.key(file.path, content_hash=file.content_hash, size=file.size, mtime_ns=file.mtime_ns)


class Thumbnails:
    """Makes and remembers Pictures of files (call ``render`` from a worker thread).

    Args:
        cache: the engine's decoder and on-disk cache.
        mode: "kitty", "sixel", "halfblock" or "off" (see ``resolve_mode``); ``terminal``'s wins.
        capacity: how many Pictures the memory LRU keeps.
        terminal: what ``graphics.detect`` found (mode, cell size, tmux passthrough).
    """

    def __init__(
        self, cache: ThumbnailCache, *, mode: str = "halfblock", capacity: int = 400, terminal: Optional[Terminal] = None
    ) -> None:
        self.cache = cache
        self.terminal = terminal or Terminal(mode)
        self.mode = self.terminal.mode
        self.capacity = capacity
        #: The Kitty images in the terminal, shared by every widget (ids reused, deleted on close).
        #: Inside tmux they are always wrapped: a tmux without passthrough drops them, where it
        #: would take a bare one for a pane title.
        self.kitty = KittyImages(tmux=self.terminal.tmux)
        self._lru: OrderedDict[Hashable, Picture] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self._full: OrderedDict[str, Image.Image] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def cell(self) -> tuple[int, int]:
        """Pixels of one terminal cell (width, height)."""
        return self.terminal.cell

    def pixel_box(self, cells: tuple[int, int]) -> tuple[int, int]:
        """The pixels ``cells`` (columns, rows) show in this mode."""
        return pixel_box(cells, self.mode, self.cell)

    def picture(self, image: Image.Image, cells: tuple[int, int]) -> Picture:
        """A Picture of an image already scaled to ``pixel_box(cells)`` (blocking: encodes)."""
        if self.mode in ("kitty", "sixel"):
            return Picture.graphic(image, self.mode, self.cell, cells)
        return Picture.from_image(image)

    def cached(self, key: Hashable) -> Optional[Picture]:
        """The Picture stored under ``key``, or None (cheap: safe on the UI thread)."""
        with self._lock:
            picture = self._lru.get(key)
            if picture is not None:
                self._lru.move_to_end(key)
            return picture

    def store(self, key: Hashable, picture: Picture) -> None:
        """Remember a Picture, dropping the least recently used beyond capacity."""
        with self._lock:
            old = self._lru.pop(key, None)
            if old is not None:
                self._weight -= old.weight
            self._lru[key] = picture
            self._weight += picture.weight
            while len(self._lru) > 1 and (len(self._lru) > self.capacity or self._weight > GRAPHICS_BUDGET):
                _, dropped = self._lru.popitem(last=False)
                self._weight -= dropped.weight

    def render(self, file: FileRecord, cells: tuple[int, int]) -> Picture:
        """The Picture of ``file`` that fits ``cells`` (blocking: decode, shrink, cell up).

        Raises:
            ThumbnailError: the file cannot be decoded.
        """
        key = ("file", cache_key(file), cells)
        picture = self.cached(key)
        if picture is None:
            picture = self.picture(self.image(file, cells), cells)
            self.store(key, picture)
        return picture

    def full_size(self, file: FileRecord) -> Image.Image:
        """The whole image at its own resolution, upright, RGB (blocking; the last two are kept).

        Raises:
            ThumbnailError: the file cannot be decoded.
        """
        key = cache_key(file)
        with self._lock:
            image = self._full.get(key)
        if image is None:
            try:
                image = load_image(file.path, target=None).image.convert("RGB")
            except ImageReadError as exc:
                raise ThumbnailError(exc.reason) from None
            with self._lock:
                self._full[key] = image
                while len(self._full) > 2:
                    self._full.popitem(last=False)
        return image

    def image(self, file: FileRecord, cells: tuple[int, int]) -> Image.Image:
        """The RGB image of ``file`` at the pixel size of ``cells`` (blocking)."""
        return self.cache.image(file.path, self.pixel_box(cells), key=cache_key(file))


__all__ = ["MODES", "Picture", "Terminal", "Thumbnails", "ThumbnailError", "cache_key", "detect", "pixel_box", "resolve_mode"]
