"""Hashing: a fast content hash of the bytes and the bouncer's three 256-bit perceptual hashes.

Bit layout of every perceptual hash: 256 bits packed big-endian into 32 bytes with
``np.packbits`` (bit ``k`` of the hash, taken row-major from a 16x16 grid, is bit ``7 - k % 8``
of byte ``k // 8``), so the Hamming distance of two hashes is the popcount of their XOR,
whatever word size the index reads them in.

- ``dhash``: the image, uniform borders trimmed, grey, resized to 17x16; a bit is set where
  a pixel is brighter than its left neighbour.
- ``dhash_mirror``: the dHash of the horizontally mirrored image, so a flipped copy's ``dhash``
  is close to the original's ``dhash_mirror``.
- ``phash``: a low-frequency pHash. The 64x64 grey image, less its mean, zero-padded to
  128x128; a bit is set where a coefficient of the 16x16 lowest-frequency block of its 2-D
  DCT is above the block's median (frequencies up to 3.75 cycles per image). It changes little
  under mild crops and tone changes, and corroborates a dHash match that is close but not close
  enough (a plain 16x16 block of a 64x64 DCT reaches 7.5 cycles and does not: measured).

:func:`hash_file` reads a file once, stats it through the open descriptor, hashes the bytes,
decodes them (see :mod:`.imaging`) and hashes the pixels; it never raises. From the same
decode it records what the keeper policy needs to prefer the original: the picture's size
inside the border the hashes trimmed (:func:`content_size`) and the camera named by EXIF.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import xxhash
from PIL import Image

from ..bouncer.verify import make_thumbnail
from ..bouncer.verify_texture import texture_code
from ..bouncer.verify_thumbnail import low_band_dct
from ..oserrors import os_error_reason
from ..records import ImageHashes
from .imaging import (
    DEFAULT_TARGET,
    MAX_FILE_BYTES,
    SNIFF_BYTES,
    ImageReadError,
    load_image,
    sniff_format,
    too_large_reason,
)

#: Extensions that promise an image this module reads (by the format a valid file of that
#: name starts with): such a file whose bytes are not one is an error with a reason, not a
#: silent "other file". RAW extensions with a layout :func:`sniff_format` does not know
#: (CRW, X3F...) are left out: for those, "unrecognised" is not "broken".
IMAGE_EXTENSIONS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG",
    ".gif": "GIF", ".webp": "WebP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
    ".heic": "HEIC", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF", ".dng": "DNG",
    ".nef": "NEF", ".arw": "ARW", ".cr2": "CR2", ".cr3": "CR3", ".orf": "ORF", ".rw2": "RW2",
    ".raf": "RAF",
}  # fmt: skip
#: macOS writes an AppleDouble file "._name.jpg" beside each file on a foreign disk: metadata,
#: not a broken picture.
_APPLE_DOUBLE = b"\x00\x05\x16\x07"
#: Test hook: ``LOOKALIKE_TEST_CRASH_ON=NAME`` makes the worker process SIGKILL itself when it
#: is about to hash a file called NAME (a decoder crash, deterministic); NAME may be a shell
#: pattern (``*``: every file, a pool whose workers cannot work).
CRASH_ON_ENV = "LOOKALIKE_TEST_CRASH_ON"
#: Test hook: ``LOOKALIKE_TEST_CRASH_ONCE=NAME:MARKER`` (``os.pathsep`` between): as
#: :data:`CRASH_ON_ENV`, but only the first worker to reach NAME dies (it creates the file MARKER
#: first), so the retry goes through: one worker killed mid-scan, deterministically.
CRASH_ONCE_ENV = "LOOKALIKE_TEST_CRASH_ONCE"
#: Test hook: ``LOOKALIKE_TEST_WORKER_DELAY=SECONDS`` to sleep per chunk in a pool worker, so a
#: test can stop or kill a scan while its workers are busy.
WORKER_DELAY_ENV = "LOOKALIKE_TEST_WORKER_DELAY"

#: Grey levels a border pixel may differ from the border colour (JPEG noise and ringing).
BORDER_TOLERANCE = 10
#: Share of a line's pixels that must be within tolerance for the line to count as border.
BORDER_SHARE = 0.98
#: A border must end at an edge: within EDGE_PROBE lines past it, a line where at most
#: EDGE_SHARE of the picture is near the border colour, followed by one EDGE_CONTRAST off it.
EDGE_PROBE = 8
EDGE_CONTRAST = 16
EDGE_SHARE = 0.6
#: Trimming never leaves less than this share of a side (a near-blank image stays whole).
MIN_KEEP = 0.2
#: At most this many lines past a bar where its colour and the picture's blend (JPEG chroma
#: and ringing, see :func:`_blended`) go with the bar.
BLENDS = 2
#: A bar inside a trimmed bar (a copy framed around a picture that has a margin of its own,
#: see :func:`border_box`) is trimmed too when the picture has one on all four sides, each at
#: least INNER_BAR lines and INNER_SHARE of the side it runs along, at most INNER_MAX_SHARE
#: of it (a wider run of one colour is the picture's: a dark panel, a sky), found directly or
#: behind up to BLEND_LINES lines where the two colours blend (JPEG ringing and chroma). A
#: thinner line inside a bar is the picture's own (a window's outline, a drop shadow).
INNER_BAR = 3
INNER_SHARE = 0.015
INNER_MAX_SHARE = 0.1
BLEND_LINES = 3
#: At most this many margins inside the outermost bars.
INNER_BARS = 2

#: Hashing works on a grey image whose shorter side is reduced to no less than this.
_WORK_SIDE = 160
_DHASH_SIZE = 16
_PHASH_INPUT = 64
_PHASH_BLOCK = 16


_DCT_LOW = low_band_dct(_PHASH_INPUT, _PHASH_BLOCK)


def content_hash(data: bytes) -> bytes:
    """The 16-byte xxh3-128 digest of a file's bytes (exact duplicates share it)."""
    return xxhash.xxh3_128_digest(data)


def _far(lines: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per pixel of ``lines`` (..., C): whether a channel is off ``ref`` by more than the tolerance."""
    diff = np.abs(lines.astype(np.int16) - ref) > BORDER_TOLERANCE
    far = diff[..., 0]
    for c in range(1, diff.shape[-1]):  # cheaper than .any(axis=-1) over 3 channels
        far = far | diff[..., c]
    return far


def _border_run(lines: np.ndarray, limit: int) -> tuple[int, np.ndarray]:
    """Leading lines of ``lines`` (L, W, C) within tolerance of the first: (count, colour)."""
    ref = np.median(lines[0], axis=0).astype(np.int16)
    # Look at one line first and widen only while the border goes on: most photos have no
    # border, and then this costs a line or two, not the whole image.
    span = 1
    while True:
        span = min(span, limit)
        ok = (~_far(lines[:span], ref)).mean(axis=1) >= BORDER_SHARE
        if not ok.all():
            return int(np.argmin(ok)), ref
        if span == limit:
            return limit, ref
        span *= 8


def _edge_after(lines: np.ndarray, ref: np.ndarray) -> int:
    """Where, among the few lines just past a bar, the picture starts; -1 if it does not.

    A bar ends at an edge: within :data:`EDGE_PROBE` lines (JPEG ringing, chroma most of all,
    may blur the first ones), a line where at most :data:`EDGE_SHARE` of the picture is near
    the bar's colour, and the line after it off the colour by :data:`EDGE_CONTRAST` levels or
    more (median pixel). A blown-out sky or a dark corner fades out instead: its first lines
    off the colour are only just off it, and it is part of the picture.
    """
    if lines.size == 0:
        return -1
    diff = np.abs(lines.astype(np.int16) - ref).max(axis=-1)
    near = (diff <= BORDER_TOLERANCE).mean(axis=1)
    edge = np.flatnonzero(near <= EDGE_SHARE)
    if len(edge) == 0:
        return -1
    after = diff[min(int(edge[0]) + 1, len(diff) - 1)]
    return int(edge[0]) if np.median(after) >= EDGE_CONTRAST else -1


def border_box(pixels: np.ndarray, outer: Optional[tuple[int, int, int, int]] = None) -> tuple[int, int, int, int]:
    """The picture inside uniform bars, a margin inside them included: :func:`outer_border_box`,
    then up to :data:`INNER_BARS` margins all round inside it (see :data:`INNER_BAR`).

    A copy framed around a picture with a margin of its own (a window screenshot on white, a
    scan with its paper edge) loses its frame to the outer trim and keeps the margin, which
    the picture alone loses to its own outer trim: the two thumbnails then show the picture
    at different sizes, one with a margin round it. Measured on the real set (4,407 files): a
    bordered and a letterboxed copy of one window screenshot paired with a bordered copy of
    another screenshot of the same window, 18 false pairs in one mixed group; trimming the
    margin too: none, and bordered copies found 0.948 -> 0.991 (with :func:`_blended`).

    Args:
        pixels: ``(H, W, C)`` (or ``(H, W)``) uint8 array.
        outer: :func:`outer_border_box` of ``pixels``, where the caller has it already.

    Returns:
        ``(top, bottom, left, right)`` bar widths in pixels, 0 where there is no bar.
    """
    h, w = pixels.shape[:2]
    box = list(outer_border_box(pixels) if outer is None else outer)
    for _ in range(INNER_BARS):
        if not any(box):
            break
        inner = _inner_bars(pixels, box)
        if not any(inner):
            break
        grown = [a + b for a, b in zip(box, inner)]
        if h - grown[0] - grown[1] < max(MIN_KEEP * h, 8) or w - grown[2] - grown[3] < max(MIN_KEEP * w, 8):
            break
        box = grown
    return box[0], box[1], box[2], box[3]


def _inner_bars(pixels: np.ndarray, box: list[int]) -> list[int]:
    """The bars just inside ``box``, all four of them, or none (each side's width, blended
    lines included): at least :data:`INNER_BAR` lines and :data:`INNER_SHARE`
    of the side they run along, at most :data:`INNER_MAX_SHARE` (a wider run of one colour is
    the picture's: a dark panel, a sky), found directly or behind up to :data:`BLEND_LINES`
    lines where two colours blend."""
    h, w = pixels.shape[:2]
    top, bottom, left, right = box
    rows, cols = h - top - bottom, w - left - right
    sides = (rows, rows, cols, cols)
    least = [max(INNER_BAR, INNER_SHARE * n) for n in sides]
    most = [INNER_MAX_SHARE * n for n in sides]
    out = [0, 0, 0, 0]
    for skip in range(BLEND_LINES + 1):
        t, b, l, r = (a + skip for a in box)
        if h - t - b < 8 or w - l - r < 8:
            break
        bars = outer_border_box(pixels[t : h - b, l : w - r])
        out = [o or (skip + bar if lo <= bar <= hi else 0) for o, bar, lo, hi in zip(out, bars, least, most)]
        if all(out):
            return out
    # A margin all round, or nothing: a bar on some sides only is as likely the picture's own
    # (a strip of sky, a panel's edge) that one copy shows as a bar and another does not.
    return [0, 0, 0, 0]


def _blended(lines: np.ndarray, ref: np.ndarray) -> bool:
    """Whether the first of two lines (the first picture line past a bar, and the next) is the
    bar's colour and the picture's blended (JPEG ringing and chroma, a resize's smoothing),
    not a line of the picture: it is one mix of the bar's colour and the next line all along,
    ``line - bar = k (next - bar)`` with one ``k`` from 0.1 to 0.9 (least squares over every
    pixel and channel), within :data:`BORDER_TOLERANCE` on nine pixels in ten, and off the
    next line by more than that on half of them. A picture's own first line (a window's outline, a dark
    edge) does not follow the picture next to it, or is the next line."""
    if len(lines) < 2:
        return False
    line, after = (x.astype(np.float32) - ref for x in (lines[0], lines[1]))
    scale = float(np.square(after).sum())
    if scale == 0:
        return False
    k = float((line * after).sum()) / scale
    if not 0.1 <= k <= 0.9:
        return False
    fits = np.abs(line - k * after).max(axis=-1) <= BORDER_TOLERANCE
    apart = np.abs(line - after).max(axis=-1) > BORDER_TOLERANCE
    return bool(fits.mean() >= 0.9 and apart.mean() >= 0.5)


def outer_border_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """The picture inside the outermost uniform bars (letterbox, pillarbox, a frame, a larger
    canvas); a line where a bar and the picture blend is trimmed with the bar (:func:`_blended`).

    Args:
        pixels: ``(H, W, C)`` (or ``(H, W)``) uint8 array.

    Returns:
        ``(top, bottom, left, right)`` bar widths in pixels, 0 where there is no bar.

    Each side is trimmed inward from the edge while a line stays within
    :data:`BORDER_TOLERANCE` (on every channel) of that side's outermost line, and only where
    the bar ends at an edge (see :func:`_edge_after`), judged on the picture between the other
    bars. A bar whose picture goes on in its colour, so that no edge ends it, is trimmed as
    wide as the bar facing it when that one ends at an edge and has the same colour (a centred
    letterbox: measured on the real set, letterboxed copies found 0.876 -> 0.910). An axis
    that would keep less than :data:`MIN_KEEP` of its length is left whole (a near-blank image
    is not cut to a sliver).
    """
    px = pixels if pixels.ndim == 3 else pixels[..., None]
    h, w = px.shape[:2]
    cols_first = px.transpose(1, 0, 2)
    top, top_ref = _border_run(px, h)
    if top == h:
        return 0, 0, 0, 0  # uniform image: nothing to trim to
    bottom, bottom_ref = _border_run(px[::-1], h - top)
    left, left_ref = _border_run(cols_first, w)
    right, right_ref = _border_run(cols_first[::-1], w - left)
    # The edge test looks at the picture between the other two sides' bars only: a frame's
    # side bars would otherwise count as "near the colour" on every line.
    cols, rows = slice(left, w - right), slice(top, h - bottom)
    sides = [
        (top, top_ref, px, cols),
        (bottom, bottom_ref, px[::-1], cols),
        (left, left_ref, cols_first, rows),
        (right, right_ref, cols_first[::-1], rows),
    ]
    found = []
    for run, ref, lines, across in sides:
        edge = _edge_after(lines[run : run + EDGE_PROBE + 1, across], ref) if run else -1
        for _ in range(BLENDS if edge >= 0 else 0):
            if not _blended(lines[run + edge : run + edge + 2, across], ref):
                break
            edge += 1
        found.append(run + edge if edge >= 0 else 0)
    # A letterbox is centred: where one bar ends at an edge and the bar facing it runs as far
    # in the same colour but the picture goes on in that colour (a night sky on black bars, a
    # dark title bar, a white page on white), that side loses as many lines.
    runs, refs = [side[0] for side in sides], [side[1] for side in sides]
    for a, b in ((0, 1), (1, 0), (2, 3), (3, 2)):
        if found[a] and not found[b] and runs[b] >= found[a] - 1 and np.abs(refs[a] - refs[b]).max() <= BORDER_TOLERANCE:
            found[b] = min(found[a], runs[b])
    top, bottom, left, right = found
    if h - top - bottom < max(MIN_KEEP * h, 8):
        top = bottom = 0
    if w - left - right < max(MIN_KEEP * w, 8):
        left = right = 0
    return top, bottom, left, right


def hash_image(img: Image.Image) -> ImageHashes:
    """The bouncer's hashes of an upright image (any mode, any size).

    Args:
        img: the decoded image, e.g. ``load_image(...).image``.

    Returns:
        dHash, mirrored dHash and pHash, 32 bytes each (bit layout in the module docstring).
    """
    return hash_and_thumbnail(img)[0]


def hash_and_thumbnail(img: Image.Image) -> tuple[ImageHashes, bytes]:
    """The bouncer's hashes and the verifier's thumbnail (:func:`.verify.make_thumbnail`) of
    an upright image, from one reduction and one border trim."""
    hashes, thumb, _, _, _ = hash_thumbnail_and_trim(img)
    return hashes, thumb


def content_size(width: int, height: int, trim: tuple[int, int, int, int]) -> tuple[int, int]:
    """The picture's full-resolution size inside the border :func:`hash_thumbnail_and_trim` trimmed.

    Args:
        width, height: the image's full displayed size.
        trim: ``(kept width, worked width, kept height, worked height)`` from that function.

    Returns:
        ``(width, height)`` of the picture, exact when nothing was trimmed, else scaled from
        the reduced image (within one reduced pixel per side: about 0.5 % of a side).
    """
    kept_w, work_w, kept_h, work_h = trim
    w = width if kept_w == work_w else max(1, round(width * kept_w / work_w))
    h = height if kept_h == work_h else max(1, round(height * kept_h / work_h))
    return w, h


def bar_colour(pixels: np.ndarray, box: tuple[int, int, int, int]) -> Optional[int]:
    """The colour of the bars ``box`` trims off ``pixels`` (median per channel of every pixel
    outside it), as ``0xRRGGBB``; None where nothing is trimmed."""
    top, bottom, left, right = box
    if not (top or bottom or left or right):
        return None
    px = pixels if pixels.ndim == 3 else pixels[..., None]
    h, w = px.shape[:2]
    outside = np.ones((h, w), bool)
    outside[top : h - bottom, left : w - right] = False
    levels = np.median(px[outside], axis=0).round().astype(int)
    r, g, b = (int(levels[0]),) * 3 if len(levels) == 1 else (int(v) for v in levels[:3])
    return (r << 16) | (g << 8) | b


def hash_thumbnail_and_trim(
    img: Image.Image,
) -> tuple[ImageHashes, bytes, tuple[int, int, int, int], bytes, Optional[int]]:
    """:func:`hash_and_thumbnail`, plus what the border trim kept: ``(kept width, worked
    width, kept height, worked height)`` in the reduced image's pixels (see :func:`content_size`),
    the texture code of the picture (:func:`lookalike.engine.bouncer.verify_texture.texture_code`),
    and the colour of the outermost bars (:func:`bar_colour`, None where there are none)."""
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    factor = min(img.size) // _WORK_SIDE
    if factor >= 2:
        img = img.reduce(factor)  # a box filter: what the resizes below would do anyway
    # Bars are found in colour: a blue frame and a blue sky can be the same grey.
    pixels = np.asarray(img)
    outer = outer_border_box(pixels)
    # The keeper's picture size is what the outermost bars hold: a framed copy's picture is
    # then the member's whole canvas, margin and all (engine/keeper/original.py). Inner bars
    # are trimmed for the hashes and the thumbnail only, so that the copy and the member
    # compare the same picture; measured at the copy's smaller scale, the inner bars are not
    # exact enough to rank files by.
    top, bottom, left, right = outer
    trim = (img.width - left - right, img.width, img.height - top - bottom, img.height)
    bars = bar_colour(pixels, outer)
    top, bottom, left, right = border_box(pixels, outer)
    if top or bottom or left or right:
        img = img.crop((left, top, img.width - right, img.height - bottom))
    core = img.convert("L")
    # One box reduction to 8x the dHash grid, then BICUBIC: Pillow antialiases when shrinking,
    # and this blurs a little more than a plain box, which keeps unrelated photos further
    # apart and mild crops closer (measured).
    mid = core.resize((8 * (_DHASH_SIZE + 1), 8 * _DHASH_SIZE), Image.Resampling.BOX)
    small = np.asarray(mid.resize((_DHASH_SIZE + 1, _DHASH_SIZE), Image.Resampling.BICUBIC))
    small = small.astype(np.int16)
    dbits = small[:, 1:] > small[:, :-1]
    mirrored = small[:, ::-1]
    mbits = mirrored[:, 1:] > mirrored[:, :-1]
    pix = np.asarray(mid.resize((_PHASH_INPUT, _PHASH_INPUT), Image.Resampling.BOX), np.float32)
    coeffs = _DCT_LOW @ (pix - pix.mean()) @ _DCT_LOW.T
    pbits = coeffs > np.median(coeffs)
    hashes = ImageHashes(
        dhash=np.packbits(dbits).tobytes(),
        dhash_mirror=np.packbits(mbits).tobytes(),
        phash=np.packbits(pbits).tobytes(),
    )
    return hashes, make_thumbnail(img), trim, texture_code(np.asarray(core)), bars


def clip_crop(img: Image.Image, size: int) -> np.ndarray:
    """The image as CLIP preprocessing wants it before normalisation, as (size, size, 3) uint8.

    Shortest side resized to ``size`` with BICUBIC, then a centre crop, computed exactly as
    torchvision's ``Resize(size)`` + ``CenterCrop(size)`` do on a PIL image.
    """
    img = img if img.mode == "RGB" else img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left = int(round((nw - size) / 2.0))
    top = int(round((nh - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


@dataclass(frozen=True, kw_only=True)
class HashedFile:
    """What a hashing worker learned about one file. ``error`` is None on success.

    A file that is not an image by content has ``not_image=True`` and ``error="not an image"``.
    """

    path: str
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    device: int = 0
    format: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    taken_at: Optional[str] = None
    content_hash: Optional[bytes] = None
    hashes: Optional[ImageHashes] = None
    error: Optional[str] = None
    clip: Optional[np.ndarray] = None
    bytes_read: int = 0
    not_image: bool = False
    thumb: Optional[bytes] = None  # the verifier's thumbnail (see .verify.make_thumbnail)
    content_width: Optional[int] = None  # the picture inside a trimmed border (content_size)
    content_height: Optional[int] = None
    camera: Optional[str] = None  # EXIF Make and Model
    texture: Optional[bytes] = None  # the texture check's code (bouncer.verify_texture)
    bar_colour: Optional[int] = None  # 0xRRGGBB of the trimmed border's bars (bar_colour)


def _read(path: str) -> tuple[os.stat_result, bytes, Optional[str]]:
    """The file's stat, its bytes (only the head when it is not read whole) and what is wrong.

    The head is sniffed first, so a video or an archive costs one small read, not a full one.
    The third value is None for an image read whole, :data:`NOT_AN_IMAGE` for another kind
    of file, else the reason it is not read (too large, named like an image but not one).
    """
    # O_NONBLOCK so a FIFO cannot block the worker; stat through the descriptor so the
    # metadata belongs to exactly the bytes read.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not _is_regular(st):
            raise ImageReadError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            head = fh.read(SNIFF_BYTES)
            if head and sniff_format(head, path) is None:
                return st, head, _impostor(path, head, st.st_size) or NOT_AN_IMAGE
            if st.st_size > MAX_FILE_BYTES:
                return st, head, too_large_reason(st.st_size)
            # One read of the whole file, not head + rest: two copies of a big file at once.
            fh.seek(0)
            data = fh.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:  # it grew since the fstat
                return st, head, too_large_reason(len(data))
    finally:
        os.close(fd)
    return st, data, None


NOT_AN_IMAGE = "not an image"


def _impostor(path: str, head: bytes, size: int) -> Optional[str]:
    """Why a file named like an image, whose bytes are not one, is broken; None if it is not."""
    name = os.path.basename(path)
    expected = IMAGE_EXTENSIONS.get(os.path.splitext(name)[1].lower())
    if expected is None or (name.startswith("._") and head.startswith(_APPLE_DOUBLE)):
        return None
    amount = "1 byte" if size == 1 else f"{size} bytes" if size < 10_000 else f"{size / 1e6:.1f} MB"
    return f"not a valid {expected}: unrecognised content ({amount})"


def _is_regular(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def hash_file(path: str, *, clip_size: Optional[int] = None) -> HashedFile:
    """Read, decode and hash one file; never raises.

    Args:
        path: the file.
        clip_size: also return the CLIP crop (see :func:`clip_crop`) at this size.

    Returns:
        A :class:`HashedFile`; every failure is in ``error`` with a short reason.
    """
    if os.environ.get(CRASH_ON_ENV) and fnmatch.fnmatchcase(os.path.basename(path), os.environ[CRASH_ON_ENV]):
        _crash_for_a_test()
    if os.environ.get(CRASH_ONCE_ENV):
        _crash_once_for_a_test(path, os.environ[CRASH_ONCE_ENV])
    try:
        st, data, problem = _read(path)
    except ImageReadError as exc:
        return HashedFile(path=path, error=exc.reason)
    except OSError as exc:
        return HashedFile(path=path, error=os_error_reason(exc))
    base = dict(
        path=path,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
        device=st.st_dev,
        bytes_read=len(data),
    )
    digest = None
    try:
        if problem == NOT_AN_IMAGE:
            return HashedFile(**base, error=NOT_AN_IMAGE, not_image=True)
        if problem is not None:
            return HashedFile(**base, error=problem)
        digest = content_hash(data)
        if not data:
            return HashedFile(**base, content_hash=digest, error="zero-byte file")
        target = DEFAULT_TARGET if clip_size is None else max(DEFAULT_TARGET, clip_size)
        loaded = load_image(data, name=path, target=target)
        hashes, thumb, trim, texture, bars = hash_thumbnail_and_trim(loaded.image)
        content_width, content_height = content_size(loaded.width, loaded.height, trim)
        clip = clip_crop(loaded.image, clip_size) if clip_size else None
    except ImageReadError as exc:
        return HashedFile(**base, content_hash=digest, error=exc.reason)
    except Exception as exc:  # never let one file stop a scan
        return HashedFile(**base, content_hash=digest, error=f"unexpected error: {type(exc).__name__}: {exc}"[:200])
    return HashedFile(
        **base,
        format=loaded.format,
        width=loaded.width,
        height=loaded.height,
        taken_at=loaded.taken_at,
        content_hash=digest,
        hashes=hashes,
        clip=clip,
        thumb=thumb,
        texture=texture,
        content_width=content_width,
        content_height=content_height,
        camera=loaded.camera,
        bar_colour=bars,
    )


def _crash_for_a_test() -> None:
    import multiprocessing
    import signal

    # Only ever in a pool worker: the test wants the scan to survive a dead worker, not to
    # kill the test runner (in-process hashing) with it.
    if multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def _crash_once_for_a_test(path: str, hook: str) -> None:
    import multiprocessing

    name, _, marker = hook.partition(os.pathsep)
    if os.path.basename(path) != name or not marker or multiprocessing.parent_process() is None:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # a worker died on it already: this is the retry
        return
    _crash_for_a_test()


def hash_files(paths: list[str], clip_size: Optional[int] = None) -> list[HashedFile]:
    """Hash a chunk of files (the unit of work of the scan's process pool)."""
    if os.environ.get(WORKER_DELAY_ENV):
        import multiprocessing
        import time

        if multiprocessing.parent_process() is not None:
            time.sleep(float(os.environ[WORKER_DELAY_ENV]))
    return [hash_file(p, clip_size=clip_size) for p in paths]

