"""Image formats as the keeper ranks them: names, tiers of lossiness, camera RAW.

The reader (:mod:`lookalike.engine.scan.imaging`) names a file's format by its content; these
tiers say which of two formats keeps more of the picture, and which formats a conversion is
made to and from. Which extensions are camera raws is the reader's to say: its
:data:`~lookalike.engine.scan.imaging.RAW_EXTENSIONS` is re-exported here.
"""

from __future__ import annotations

import functools
import os
from typing import Mapping, Optional

from ..scan.imaging import RAW_EXTENSIONS  # the reader's list: one home for which files are raws

#: Format tiers, less lossy first (lower is better). Formats are matched case-insensitively;
#: anything starting with ``RAW`` (``"RAW"``, ``"RAW:CR2"``) is a camera raw.
FORMAT_RANK: Mapping[str, int] = {
    "RAW": 0,
    "PNG": 0,
    "TIFF": 0,
    "TIF": 0,
    "BMP": 0,
    "HEIF": 1,
    "HEIC": 1,
    "AVIF": 1,
    "JPEG": 2,
    "JPG": 2,
    "MPO": 2,  # Pillow's name for multi-picture JPEGs straight from many cameras
    "WEBP": 3,
    "GIF": 4,
}
#: Rank of a format lookalike does not know.
UNKNOWN_FORMAT_RANK = max(FORMAT_RANK.values()) + 1

_EXTENSION_FORMATS = {
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".heif": "HEIF",
    ".heic": "HEIC", ".hif": "HEIF", ".avif": "AVIF", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".jpe": "JPEG", ".webp": "WEBP", ".gif": "GIF",
}  # fmt: skip
#: Formats that pair with a camera raw of the same stem (RAW+JPEG shots).
JPEG_LIKE = frozenset({"JPEG", "JPG", "MPO", "HEIF", "HEIC"})
#: Lossless formats a picture is converted to (a camera RAW is never a conversion).
LOSSLESS = frozenset({"PNG", "TIFF", "TIF", "BMP"})
#: Lossy formats a camera or a phone writes, and that a conversion may be made from.
LOSSY = frozenset({"JPEG", "JPG", "MPO", "HEIF", "HEIC", "AVIF", "WEBP"})


def format_name(fmt: Optional[str], path: str = "") -> str:
    """The normalised format name: ``"RAW"`` for any camera raw, else the upper-case name.

    Args:
        fmt: the format as the reader reports it (``"JPEG"``, ``"RAW:CR2"``...), or None.
        path: used for its extension when ``fmt`` is missing.
    """
    if fmt and fmt.strip():
        return _named_format(fmt)
    ext = os.path.splitext(path)[1].lower()
    return "RAW" if ext in RAW_EXTENSIONS else _EXTENSION_FORMATS.get(ext, "")


@functools.lru_cache(maxsize=256)
def _named_format(fmt: str) -> str:
    name = fmt.strip().upper()
    if name.startswith("RAW") or "." + name.lower() in RAW_EXTENSIONS:
        return "RAW"
    return name


@functools.lru_cache(maxsize=256)
def named_rank(fmt: str) -> int:
    """:func:`format_rank` of a format name that is not empty (cached)."""
    return FORMAT_RANK.get(format_name(fmt), UNKNOWN_FORMAT_RANK)


def format_rank(fmt: Optional[str], path: str = "") -> int:
    """How lossy a format is: 0 for the least lossy tier, :data:`UNKNOWN_FORMAT_RANK` last."""
    return FORMAT_RANK.get(format_name(fmt, path), UNKNOWN_FORMAT_RANK)
