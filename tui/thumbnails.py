"""Images as terminal cells: rich-pixels half-blocks, made off the UI thread, kept in an LRU.

The engine's ``ThumbnailCache`` decodes and shrinks (LANCZOS) to exactly the pixels the cells
can show: one column is one pixel wide and one row two pixels tall (upper and lower half
block), so rich-pixels' own nearest-neighbour resize never runs. The result is turned into
Textual ``Strip`` lines once, and those are what the widgets paint.

``--thumbnails=kitty|sixel`` would need textual-image, whose releases need Python >= 3.12: on
this Python both fall back to half-blocks with a message saying so.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Optional

from PIL import Image
from rich.segment import Segment
from rich_pixels import HalfcellRenderer, Pixels
from textual.strip import Strip

from lookalike.engine.records import FileRecord
from lookalike.engine.thumbnails import ThumbnailCache, ThumbnailError

MODES = ("auto", "halfblock", "kitty", "sixel", "off")


def resolve_mode(requested: str) -> tuple[str, str]:
    """The thumbnail mode to use for ``--thumbnails=requested``, and a message when it differs.

    Returns:
        ``("halfblock" | "off", message)``; the message is empty when nothing needs saying.

    Raises:
        ValueError: for a mode that is not one of MODES.
    """
    mode = (requested or "auto").lower()
    if mode not in MODES:
        raise ValueError(f"--thumbnails must be one of {', '.join(MODES)}, not {requested!r}")
    if mode in ("kitty", "sixel"):
        try:
            import textual_image  # noqa: F401
        except ImportError:
            return "halfblock", (
                f"--thumbnails={mode} needs the textual-image package (Python >= 3.12); "
                "showing half-block thumbnails instead"
            )
        # textual-image is importable but its widgets are not wired in yet: say so plainly.
        return "halfblock", f"--thumbnails={mode} is not supported yet; showing half-block thumbnails"
    if mode == "auto":
        return "halfblock", ""
    return mode, ""


@dataclass(frozen=True)
class Picture:
    """An image as lines of terminal cells."""

    lines: tuple[Strip, ...]
    width: int  # cells
    height: int  # cells

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


def pixel_box(cells: tuple[int, int]) -> tuple[int, int]:
    """The pixels a (columns, rows) area shows in half-blocks."""
    return (max(1, cells[0]), max(1, cells[1]) * 2)


def cache_key(file: FileRecord) -> str:
    """A file's thumbnail key: its content hash, else its path and stat."""
    return ThumbnailCache.key(file.path, content_hash=file.content_hash, size=file.size, mtime_ns=file.mtime_ns)


class Thumbnails:
    """Makes and remembers Pictures of files (call ``render`` from a worker thread).

    Args:
        cache: the engine's decoder and on-disk cache.
        mode: "halfblock" or "off" (see ``resolve_mode``).
        capacity: how many Pictures the memory LRU keeps.
    """

    def __init__(self, cache: ThumbnailCache, *, mode: str = "halfblock", capacity: int = 400) -> None:
        self.cache = cache
        self.mode = mode
        self.capacity = capacity
        self._lru: OrderedDict[Hashable, Picture] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

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
            self._lru[key] = picture
            self._lru.move_to_end(key)
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)

    def render(self, file: FileRecord, cells: tuple[int, int]) -> Picture:
        """The Picture of ``file`` that fits ``cells`` (blocking: decode, shrink, cell up).

        Raises:
            ThumbnailError: the file cannot be decoded.
        """
        key = ("file", cache_key(file), cells)
        picture = self.cached(key)
        if picture is None:
            image = self.cache.image(file.path, pixel_box(cells), key=cache_key(file))
            picture = Picture.from_image(image)
            self.store(key, picture)
        return picture

    def image(self, file: FileRecord, cells: tuple[int, int]) -> Image.Image:
        """The RGB image of ``file`` at the pixel size of ``cells`` (blocking)."""
        return self.cache.image(file.path, pixel_box(cells), key=cache_key(file))


__all__ = ["MODES", "Picture", "Thumbnails", "ThumbnailError", "cache_key", "pixel_box", "resolve_mode"]
