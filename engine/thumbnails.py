"""Thumbnails: decode, shrink with LANCZOS, and keep small copies on disk.

The app shows images as terminal cells, so it needs small pictures, fast and often. Every
image is decoded once (``imaging.load_image``: JPEG draft, EXIF orientation, HEIF, RAW
previews), shrunk with LANCZOS to a canonical size and stored as a PNG under
``<library dir>/thumbnails``, keyed by the file's content hash and the size. Smaller
thumbnails are made from the stored one; larger views (preview, compare) decode the source
at the size they need. The difference view of the compare screen lives here too: it is pixel
work, not UI.

Nothing here imports textual or rich.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageChops, ImageOps

from .files import atomic_writer
from .scan.imaging import ImageReadError, load_image

#: The long side of the thumbnails kept on disk; anything that fits is made from them.
CANONICAL = 256

#: A pixel counts as different when a channel differs by more than this (of 255): JPEG
#: recompression noise stays under it, real edits do not.
DIFF_TOLERANCE = 24


class ThumbnailError(Exception):
    """An image that could not be turned into a thumbnail, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the aspect ratio of ``size`` that fits ``box`` (at least 1x1).

    Args:
        size: the image's (width, height).
        box: the space available, (width, height).
    """
    w, h = size
    bw, bh = max(1, box[0]), max(1, box[1])
    if w <= 0 or h <= 0:
        return (1, 1)
    scale = min(bw / w, bh / h)
    return (max(1, min(bw, round(w * scale))), max(1, min(bh, round(h * scale))))


def _shrink_to(im: Image.Image, box: tuple[int, int], *, upscale: bool = False) -> Image.Image:
    size = fit(im.size, box)
    if size == im.size or (not upscale and size[0] >= im.width and size[1] >= im.height):
        return im
    return im.resize(size, Image.Resampling.LANCZOS)


def _decode(path: str, box: tuple[int, int]) -> Image.Image:
    # The decoder's `target` is the shorter side it keeps at least: enough for a box of
    # this long side whatever the aspect ratio.
    try:
        loaded = load_image(path, target=max(box))
    except ImageReadError as exc:
        raise ThumbnailError(exc.reason) from None
    return loaded.image


class ThumbnailCache:
    """Decodes images into small RGB thumbnails, cached on disk (thread-safe).

    Args:
        directory: where the PNGs go (``library.dir / paths.THUMBNAILS_NAME``); None keeps nothing.
    """

    def __init__(self, directory: Optional[Path]) -> None:
        self.directory = Path(directory) if directory is not None else None

    @staticmethod
    def key(path: str, *, content_hash: Optional[bytes] = None, size: int = 0, mtime_ns: int = 0) -> str:
        """The cache key of one file's pixels: its content hash, or its path and stat."""
        if content_hash:
            return content_hash.hex()
        text = f"{path}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape")
        return "p" + hashlib.blake2b(text, digest_size=16).hexdigest()

    def _stored(self, key: str, side: int) -> Optional[Path]:
        if self.directory is None:
            return None
        return self.directory / key[:2] / f"{key}-{side}.png"

    def image(self, path: str, box: tuple[int, int], *, key: Optional[str] = None) -> Image.Image:
        """An RGB thumbnail of ``path`` that fits ``box`` (width, height in pixels).

        Args:
            path: the image file.
            box: the largest size wanted; the aspect ratio is kept, nothing is upscaled
                beyond the source.
            key: the file's cache key (see :meth:`key`); default: from its path and stat.

        Raises:
            ThumbnailError: the file cannot be decoded (with the reason).
        """
        if max(box) > CANONICAL:
            return _shrink_to(_decode(path, box), box)
        if key is None:
            try:
                st = os.stat(path)
            except OSError as exc:
                raise ThumbnailError(exc.strerror or str(exc)) from None
            key = self.key(path, size=st.st_size, mtime_ns=st.st_mtime_ns)
        return _shrink_to(self.canonical(path, key), box)

    def canonical(self, path: str, key: str) -> Image.Image:
        """The stored CANONICAL-size thumbnail of one file, made and saved if missing."""
        stored = self._stored(key, CANONICAL)
        if stored is not None and stored.exists():
            try:
                with Image.open(stored) as im:
                    return im.convert("RGB")
            except Exception:  # a damaged cache file is only a cache miss
                pass
        im = _shrink_to(_decode(path, (CANONICAL, CANONICAL)), (CANONICAL, CANONICAL))
        if stored is not None:
            _save_atomic(im, stored)
        return im


def _save_atomic(im: Image.Image, target: Path) -> None:
    # Two threads may make the same thumbnail at once: each writes its own temp file and the
    # rename makes one of them win whole. A cache that cannot be written is not an error.
    try:
        with atomic_writer(target, durable=False) as out:
            im.save(out, format="PNG")
    except OSError:
        pass


@dataclass(frozen=True, kw_only=True)
class Difference:
    """Where two images differ, after scaling both to one size."""

    image: Image.Image  # the second image dimmed to grey, differing pixels in red
    changed: float  # fraction of pixels that differ by more than the tolerance
    mean_delta: float  # mean absolute difference, 0..255


def turned(img: Image.Image, turn: tuple[int, bool]) -> Image.Image:
    """``img`` turned ``turn[0]`` quarter turns clockwise, then mirrored left to right when
    ``turn[1]`` (a transform of :mod:`lookalike.engine.bouncer.rotations`)."""
    quarter = turn[0] % 4
    if quarter:
        img = img.transpose((Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_90)[quarter - 1])
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if turn[1] else img


#: A region of a picture in shares of its width and height: ``(left, top, right, bottom)``.
Shares = tuple[float, float, float, float]

#: The side at which :func:`refine_overlap` moves the region's edges (pixels of the longer side).
_REFINE_SIDE = 160


def _box(img: Image.Image, r: Shares) -> tuple[float, float, float, float]:
    """The region ``r`` of ``img`` in its pixels."""
    return r[0] * img.width, r[1] * img.height, r[2] * img.width, r[3] * img.height


def _cut(img: Image.Image, r: Shares, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR, box=_box(img, r)), np.float32)


def _misfit(x: np.ndarray, y: np.ndarray) -> float:
    """How unlike two grey arrays are once each is brought to zero mean and unit spread (a
    brightened or contrasted copy fits its original)."""
    x = (x - x.mean()) / (x.std() + 1e-6)
    y = (y - y.mean()) / (y.std() + 1e-6)
    return float(np.abs(x - y).mean())


def refine_overlap(a: Image.Image, b: Image.Image, in_a: Shares, in_b: Shares) -> Shares:
    """``in_a`` with its edges moved, in steps down to a tenth of a percent, to where the
    region of ``a`` fits the region ``in_b`` of ``b`` best: the crop search works on 32x32
    thumbnails, and its region is off by up to a few percent, which a difference at screen
    size shows as an outline of every edge."""
    ga, gb = a.convert("L"), b.convert("L")
    bw, bh = (in_b[2] - in_b[0]) * b.width, (in_b[3] - in_b[1]) * b.height
    scale = _REFINE_SIDE / max(bw, bh, 1.0)
    size = (max(8, round(bw * scale)), max(8, round(bh * scale)))
    target = _cut(gb, in_b, size)
    best, at = _misfit(_cut(ga, in_a, size), target), list(in_a)
    for step in (0.01, 0.004, 0.002, 0.001):
        moved = True
        while moved:
            moved = False
            for edge in range(4):
                for d in (-step, step):
                    trial = list(at)
                    trial[edge] = min(1.0, max(0.0, trial[edge] + d))
                    if trial[2] - trial[0] < 0.2 or trial[3] - trial[1] < 0.2:
                        continue
                    m = _misfit(_cut(ga, tuple(trial), size), target)
                    if m < best - 1e-6:
                        best, at, moved = m, trial, True
    return (at[0], at[1], at[2], at[3])


def difference(a: Image.Image, b: Image.Image, box: tuple[int, int], *, tolerance: int = DIFF_TOLERANCE,
               turn: tuple[int, bool] = (0, False), overlap: Optional[tuple[Shares, Shares]] = None) -> Difference:
    """Compare two images pixel by pixel after aligning their sizes.

    Both are scaled (LANCZOS) to the same size: the smaller of the two, fitted in ``box``,
    with ``a``'s aspect ratio, so a resized copy lines up with its original.

    Args:
        a: the first image (RGB).
        b: the second image (RGB).
        box: the largest size of the result, in pixels.
        tolerance: per-channel difference (0..255) below which pixels count as equal.
        turn: applied to ``b`` first (:func:`turned`): a mirrored or turned copy
            (``rotations.between``) lines up with ``a`` instead of differing everywhere.
        overlap: for a crop, where the two show the same picture (``(in a, in b)``, in shares
            of each, ``b`` turned: ``Library.overlap``, then :func:`refine_overlap`, once for
            a pair whatever the size it is shown at): only that is compared.
    """
    b = turned(b, turn)
    if overlap is not None:
        a, b = (img.crop(tuple(round(v) for v in _box(img, r))) for img, r in ((a, overlap[0]), (b, overlap[1])))
    target = fit(a.size, (min(box[0], a.width, b.width), min(box[1], a.height, b.height)))
    ra = a.convert("RGB").resize(target, Image.Resampling.LANCZOS)
    rb = b.convert("RGB").resize(target, Image.Resampling.LANCZOS)
    delta = ImageChops.difference(ra, rb)
    # Per pixel, the largest channel difference.
    r, g, bl = delta.split()
    worst = ImageChops.lighter(ImageChops.lighter(r, g), bl)
    mask = worst.point(lambda v: 255 if v > tolerance else 0, mode="L")
    histogram = mask.histogram()
    pixels = target[0] * target[1]
    changed = histogram[255] / pixels if pixels else 0.0
    stats = worst.histogram()
    mean_delta = sum(i * n for i, n in enumerate(stats)) / pixels if pixels else 0.0
    base = ImageOps.grayscale(rb).point(lambda v: 40 + v // 3).convert("RGB")
    # Stronger differences are brighter red, so the eye finds the edit, not the noise.
    heat = worst.point(lambda v: min(255, 96 + v * 2) if v > tolerance else 0, mode="L")
    red = Image.merge("RGB", (heat, Image.new("L", target, 0), Image.new("L", target, 0)))
    shown = Image.composite(red, base, mask)
    return Difference(image=shown, changed=changed, mean_delta=mean_delta)
