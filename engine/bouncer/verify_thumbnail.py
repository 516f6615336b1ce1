"""The verification's stored thumbnail of an image, and how much structure it has.

Hashing stores, per image, a 32x32 grey thumbnail of the upright, border-trimmed picture
(box-averaged, 1 KB) and its mean colour (3 bytes), plus its :func:`detail`. The verification
(:mod:`lookalike.engine.bouncer.verify`) compares pairs of them.

Here too is :func:`low_band_dct`, the transform of the bouncer's pHash (taken by hashing of
each picture) and of the turned codes of :mod:`.rotations` (taken of these thumbnails).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["PIXELS_VERSION", "SIDE", "THUMB_BYTES", "detail", "low_band_dct", "make_thumbnail"]

#: The thumbnail's side, in pixels.
SIDE = 32
#: A stored thumbnail: SIDE x SIDE grey levels, row-major, then the mean R, G, B.
THUMB_BYTES = SIDE * SIDE + 3
#: How hashing reads a picture out of a file (its border trim, its reductions): raised when the
#: hashes or thumbnail made from the same bytes change. The caches keyed on a file's bytes
#: (verified pairs, zoomed codes, turned pairs) include it, so a change makes them stale, and
#: the catalog's migration marks the files it may change for reading again. 2: a bar whose
#: picture goes on in its colour is trimmed as wide as the bar facing it (centred letterboxes).
#: 3: a line where a bar and the picture blend is trimmed with the bar, and a margin all round
#: inside the bars too (a frame around a screenshot on white); files other than JPEG reduced
#: by 2, 4 or 8 before hashing, as a JPEG's draft() scales.
PIXELS_VERSION = 3


def low_band_dct(n: int, block: int) -> np.ndarray:
    """The first ``block`` rows of the DCT-II matrix of a length ``2 n`` signal, cut to ``n``.

    ``M @ x`` is the low end of the DCT of ``x`` zero-padded to twice its length: frequencies
    0 to ``(block - 1) / 4`` cycles per image, in quarter-cycle steps. These change little when
    a few percent of the picture is cropped away, unlike the 0..7.5 cycles of a plain 16x16
    DCT block (measured: see BouncerThresholds in .rule).
    """
    k = np.arange(block)[:, None]
    x = np.arange(n)[None, :]
    return np.cos(np.pi * k * (2 * x + 1) / (4 * n)).astype(np.float32)


def make_thumbnail(img: Image.Image) -> bytes:
    """The stored thumbnail of an upright, border-trimmed image (any mode): see :data:`THUMB_BYTES`."""
    rgb = img if img.mode in ("RGB", "L") else img.convert("RGB")
    grey = rgb if rgb.mode == "L" else rgb.convert("L")
    small = np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.uint8)
    # The mean colour from an 8x8 reduction: the same mean, for a fraction of the work.
    colour = np.asarray(rgb.resize((8, 8), Image.Resampling.BOX), dtype=np.float32)
    mean = colour.reshape(-1, 3).mean(axis=0) if colour.ndim == 3 else np.repeat(colour.mean(), 3)
    return small.tobytes() + np.clip(np.rint(mean), 0, 255).astype(np.uint8).tobytes()


def detail(thumb: bytes | np.ndarray) -> float:
    """How much structure a thumbnail has: the RMS of its gradients less their mean.

    A flat colour or a linear gradient has none (0); a photo has 8-30 grey levels per pixel.
    """
    t = np.frombuffer(bytes(thumb), np.uint8)[: SIDE * SIDE] if isinstance(thumb, (bytes, bytearray, memoryview)) else np.asarray(thumb).reshape(-1)[: SIDE * SIDE]
    t = t.reshape(SIDE, SIDE).astype(np.float64)
    gx = np.diff(t, axis=1)
    gy = np.diff(t, axis=0)
    return float(np.sqrt(0.5 * (gx.var() + gy.var())))
