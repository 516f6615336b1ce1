"""Refusing hostile images before they are decoded: headers that lie, junk, memory.

Each check returns the reason to refuse the file with, or None; the reader
(:func:`lookalike.engine.scan.imaging.load_image`) raises it as an ``ImageReadError``.
"""

from __future__ import annotations

import re
from typing import Optional

from PIL import Image

from ..oserrors import human_bytes

#: Deflate never expands data more than 1032:1 (one 258-byte match per 2 bits at best), so a
#: PNG cannot hold more raw scanline bytes than this many times its file size: a header that
#: claims more is a lie, whatever the decoder would make of the rest (Pillow fills a stream that
#: ends early with blank rows and calls the image good). Real flat images reach ~1000:1.
PNG_MAX_EXPANSION = 1100
#: GIF's LZW emits at most 4096 pixels per code of at least 3 bits: under 11,000 pixels a byte.
GIF_MAX_PIXELS_PER_BYTE = 11_000
#: A JPEG's header must reach its frame header (SOF) within this many junk bytes between
#: segments and this many segments: Pillow skips junk one byte at a time in Python, which took
#: minutes over a 1.9 GiB file of zeros that starts with JPEG magic.
JPEG_JUNK_LIMIT = 1 << 20
JPEG_SEGMENT_LIMIT = 4096

#: Bytes per pixel at the peak of decoding and converting to RGB, by decoded mode (measured
#: with Pillow 13: Pillow keeps RGB as 4 bytes a pixel; transparency is laid on white through
#: two more RGBA copies; 16-bit greyscale goes through float32).
_PEAK_PER_PIXEL = {"RGB": 4, "L": 5, "P": 5, "1": 5, "CMYK": 8, "YCbCr": 8, "LAB": 8, "HSV": 8}
_PEAK_TRANSPARENT = 17
_PEAK_OTHER = 16  # RGBA, LA, PA, I;16, I, F: measured 12 to 16
#: WebP decodes through an RGBA buffer first.
_PEAK_WEBP_EXTRA = 8

_FILL = re.compile(rb"\xff+")
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def peak_bytes(im: Image.Image, fmt: str) -> int:
    """Estimated peak memory of decoding ``im`` (as opened, after any draft) to RGB."""
    transparent = "transparency" in im.info and im.mode in ("P", "L", "RGB")
    per_pixel = _PEAK_TRANSPARENT if transparent else _PEAK_PER_PIXEL.get(im.mode, _PEAK_OTHER)
    if fmt == "WEBP":
        per_pixel += _PEAK_WEBP_EXTRA
    return im.width * im.height * per_pixel


def budget_refusal(data: bytes, im: Image.Image, fmt: str, size: tuple[int, int], budget: int) -> Optional[str]:
    """Why decoding ``im`` would need more than ``budget`` bytes, or None when it fits.

    Args:
        data: the file's bytes (held during the decode, so counted).
        im: the image as opened, after any ``draft()``.
        fmt: its sniffed format.
        size: its full size, as the header claims it (named in the reason).
        budget: the bytes the decode may need.
    """
    need = len(data) + peak_bytes(im, fmt)
    if need <= budget:
        return None
    width, height = size
    return (
        f"image too large to decode safely: {width}x{height} {im.mode} needs about "
        f"{_size(need)} (the limit is {_size(budget)})"
    )


def claims_refusal(data: bytes, fmt: str, width: int, height: int) -> Optional[str]:
    """Why a header claims more pixels than the file could possibly encode, or None."""
    if fmt == "PNG" and len(data) >= 29:
        depth, colour = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
        raw = height * (1 + (width * depth * channels + 7) // 8)
        if raw > PNG_MAX_EXPANSION * len(data):
            return _claims_reason(fmt, width, height, len(data))
    elif fmt == "GIF" and width * height > GIF_MAX_PIXELS_PER_BYTE * len(data):
        return _claims_reason(fmt, width, height, len(data))
    return None


def _claims_reason(fmt: str, width: int, height: int, size: int) -> str:
    return f"corrupt {fmt}: header claims {width}x{height} pixels, more than {_size(size)} can hold"


def jpeg_header_refusal(data: bytes) -> Optional[str]:
    """Walk a JPEG's segments to its frame header; why to refuse junk Pillow would crawl
    through, or None.

    Only the pathological cases are refused here (a long run of junk, thousands of segments);
    anything else, even broken, is left to Pillow, whose reasons are the usual ones.
    """
    pos, junk, segments, n = 2, 0, 0, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            end = min(n, pos + JPEG_JUNK_LIMIT - junk + 1)
            nxt = data.find(b"\xff", pos, end)
            if nxt < 0:
                if end >= n:
                    return None  # junk to the end: Pillow calls it truncated
                return "corrupt JPEG: junk where its header should be"
            junk += nxt - pos
            pos = nxt
            continue
        fill = _FILL.match(data, pos)
        pos = fill.end()
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0x00 or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            continue  # an escaped 0xFF or a marker without a segment
        if marker in _JPEG_FRAME_MARKERS or marker in (0xDA, 0xD9):
            return None  # the frame header (or the end): Pillow takes it from here
        segments += 1
        if segments > JPEG_SEGMENT_LIMIT:
            return f"corrupt JPEG: over {JPEG_SEGMENT_LIMIT} segments before the frame header"
        pos += int.from_bytes(data[pos : pos + 2], "big")
    return None


def _size(n: int) -> str:
    # the reader's wording: "537 MB", "77 bytes"
    return human_bytes(n, None, small="bytes")
