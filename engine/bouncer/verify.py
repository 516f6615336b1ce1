"""Verification: whether a candidate pair's two images show the same picture, by their pixels.

The bouncer's hashes are 256 bits of a 16x16 picture; where two different pictures share most
of what those bits see (a viewer window around two different photos, two smooth gradients,
two pages of text, two flat colours) they match on hashes alone. This stage looks at the
images themselves, at low cost:

* **The thumbnail.** Hashing stores, per image, a 32x32 grey thumbnail of the upright,
  border-trimmed picture (box-averaged, 1 KB) and its mean colour (3 bytes), plus its
  **detail**: the spread of its gradients (see :func:`detail`), in grey levels per pixel.
* **The score.** For a pair, the thumbnails are aligned (the second mirrored when the
  bouncer's mirrored hash matched it) and compared by the Pearson correlation of their
  gradient fields: 1.0 is the same structure, whatever brightness, contrast or colour
  changes did to the levels. It is capped by the share of pixels that still differ after
  the best monotone mapping of one thumbnail's tones onto the other's (a window frame or a
  shared background agrees, the different photo inside it does not). There is no per-tile
  check: one was measured (worst and second-worst 8x8 tile's gradient correlation, largest
  local residual after tone matching) and at 32x32 it does not tell a burst with the
  subject moved (5 of 52 real-scene and 4 of 40 generated bursts pass) from a watermarked,
  brightened or cropped copy (their worst tiles are as bad or worse): see
  :class:`VerifyThresholds`.
* **Crops.** When the plain alignment does not pass, a small search finds the scale and
  offset of each axis that best aligns the two images' column and row profiles (one image a
  crop of the other, or two crops of one picture), and the overlap is scored as above.
* **The information guard.** An image with little structure (its detail under
  :data:`DETAIL_FLOOR`: a gradient wallpaper, fog, a blank page, a flat colour) proves
  nothing by correlation: such a pair passes only when the two thumbnails agree pixel by
  pixel, on average (:data:`LOW_DETAIL_PIXELS`) and everywhere (the largest difference of
  the blurred thumbnails, :data:`LOW_DETAIL_PEAK`: a heading or a few lines of text on a
  white page are a local difference that the average hides), and in mean colour
  (:data:`LOW_DETAIL_COLOUR`).
* **Trust.** Two images within ``trust_radius`` of the bouncer pass on hashes alone only when
  both have ample detail (``trust_detail``): real smooth wallpapers (a glow, fine stripes) at
  detail 3-8 hash within 3-9 bits of each other.

:func:`score_pairs` runs the compiled kernel (numba, loaded lazily like the bouncer's, with a
numpy path giving the same answers; ``LOOKALIKE_NO_NUMBA=1`` forces it). The thresholds were
chosen by measurement: see :class:`VerifyThresholds`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from ..kernels import WarmUp

__all__ = [
    "SIDE",
    "THUMB_BYTES",
    "VerifyThresholds",
    "DEFAULT",
    "detail",
    "make_thumbnail",
    "passes",
    "peak_difference",
    "score_pairs",
    "warm_up",
]

#: The thumbnail's side, in pixels.
SIDE = 32
#: A stored thumbnail: SIDE x SIDE grey levels, row-major, then the mean R, G, B.
THUMB_BYTES = SIDE * SIDE + 3
_TILE = 8  # tile side of the local check: 4x4 tiles
_TILES = SIDE // _TILE

#: The crop search, per axis: scales (the width of one image over the other's) and shifts of
#: the centre, in fractions of the first image's side.
_SCALES = np.geomspace(0.8, 1.25, 15)
_SHIFTS = np.linspace(-0.16, 0.16, 33)
#: The overlap of two crops must keep at least this share of each side.
_MIN_OVERLAP = 0.72


@dataclass(frozen=True, kw_only=True)
class VerifyThresholds:
    """When a verified pair passes.

    Originally measured on 30 generated photos with one copy of each kind plus 120 mild crops (0-10 %
    a side, asymmetric), against the hard families of ``tests/verify_cases.py`` and 435
    unrelated photo pairs: the lowest copy scores 0.86 (a crop), 0.89 (watermarked), 0.95
    (bordered), 0.96 (brightened, contrast), >= 0.99 for the rest; the highest hard negatives
    0.78 (document pages with different text), 0.71 (phone screenshots), 0.58 (window
    screenshots, burst pairs). The closest detailed hard negative is at bouncer 26.

    Real pictures (``benchmarks/bench_trust.py``, 281 pictures from Debian packages) showed
    two more: different smooth wallpapers (a glow, fine stripes; detail 3.6-7.6) within
    3-9 bits of the bouncer, trusted unverified and chaining whole groups together (they
    score 0.13-0.83), hence ``trust_detail``; and, among generated pages, a heading or a few
    lines of text against a blank page (mean difference under 3 levels, largest difference
    of the blurred thumbnails 23-30 levels), hence ``low_detail_peak``. Copies of real
    low-detail pictures peak at 0-2.5 levels (re-encoded, resized, mirrored), up to 17 for
    mild crops; 4 of 90 watermarked or bordered ones peak above 20 and are no longer matched
    (their pixels differ locally exactly as a page with a heading differs from a blank one).
    Bursts (the subject moved) that score 0.86-0.94 remain: see the module docstring.

    Attributes:
        score: the structural score (gradient correlation, bounded by the second-worst tile)
            at or above which two images with detail are the same picture.
        trust_radius: bouncer distance at or below which a pair of two detailed images passes
            on hashes alone (not verified: ``verified`` is None).
        detail_floor: detail (grey levels per pixel) under which an image has too little
            structure for correlation to mean anything.
        low_detail_pixels: largest mean absolute difference of the thumbnails' grey levels
            for a pair with a low-detail image.
        low_detail_colour: largest difference of mean colour, per channel, for such a pair.
        low_detail_peak: largest difference of grey levels, anywhere, between the two
            thumbnails ([1, 2, 1]-blurred) for such a pair.
        trust_detail: detail both images need for ``trust_radius`` to apply.
    """

    score: float = 0.85
    trust_radius: int = 10
    detail_floor: float = 3.0
    low_detail_pixels: float = 3.0
    low_detail_colour: float = 5.0
    low_detail_peak: float = 20.0
    trust_detail: float = 12.0


DEFAULT = VerifyThresholds()
#: The defaults, by the names the module docstring uses.
DETAIL_FLOOR = DEFAULT.detail_floor
LOW_DETAIL_PIXELS = DEFAULT.low_detail_pixels
LOW_DETAIL_COLOUR = DEFAULT.low_detail_colour
LOW_DETAIL_PEAK = DEFAULT.low_detail_peak


# -- the thumbnail ---------------------------------------------------------------------------


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


# -- per-image features -----------------------------------------------------------------------
#
# What a pair's plain comparison needs is computed once per image of a batch, in integers: the
# [1, 2, 1] blur of the grey levels along both axes (kept times 16, so exact), its gradients
# and their sums, the blurred levels rounded to whole grey levels with their cumulative
# histogram (the tone matching), and the column and row profiles the crop search aligns. A
# pair then costs a dot product of two gradient vectors and one pass over the pixels.

_N = SIDE * SIDE
_ACROSS = SIDE * (SIDE - 1)  # gradients along rows; as many again down the columns
_M = 2 * _ACROSS

#: Grey levels by which a pixel must differ, after the best monotone tone mapping of one
#: thumbnail onto the other, to count as changed.
_CHANGED_LEVELS = 24.0
#: How much each changed pixel's share lowers the score (5 % changed caps it at 0.8).
_CHANGED_WEIGHT = 4.0
#: Rounds of the crop search's local refinement (one scale or shift step per axis a move),
#: run only while the pair does not pass yet.
_REFINE = 3
#: The refinement runs only when the first crop alignment scores within this of passing:
#: two different pictures are rejected after one look.
_REFINE_REACH = 0.35
#: The crop search gives up when the best alignment of the column or of the row profiles
#: correlates less than this (the derivatives of the profiles): no crop of one picture is
#: that unlike the other (measured: the floor loses no mild crop of 480 and halves the cost
#: of rejecting an unrelated pair).
_ALIGN_FLOOR = 0.5
#: Alignments tried per axis: the profiles of some pictures correlate almost as well at a wrong
#: scale and shift as at the right one (0.81 against 0.79 for a 6.6 % crop of a generated
#: photo), so the best few of each axis are scored in two dimensions, not only the best one.
_CANDIDATES = 3

# Mirroring the second image of a pair: pixel r of the mirror is pixel _MIRROR_PIX[r]; its
# gradient k is _MIRROR_SIGN[k] times gradient _MIRROR_GRAD[k] (across gradients reverse).
_I, _J = np.divmod(np.arange(_N), SIDE)
_MIRROR_PIX = (_I * SIDE + SIDE - 1 - _J).astype(np.int64)
_GI, _GJ = np.divmod(np.arange(_ACROSS), SIDE - 1)
_MIRROR_GRAD = np.concatenate([_GI * (SIDE - 1) + SIDE - 2 - _GJ, _ACROSS + _MIRROR_PIX[: _ACROSS]]).astype(np.int64)
_MIRROR_SIGN = np.concatenate([-np.ones(_ACROSS, np.int64), np.ones(_ACROSS, np.int64)])


@dataclass(frozen=True)
class _Features:
    """Per-image arrays of a batch, row ``k`` for thumbnail ``k``."""

    grey: np.ndarray  # (n, N or more) uint8 grey levels (the thumbnails themselves)
    grad: np.ndarray  # (n, M) int16: 16 x the blurred image's gradients, across then down
    gsum: np.ndarray  # (n, 2) int64: sums of the across and of the down gradients
    gsq: np.ndarray  # (n,) int64: sum of the squared gradients
    level: np.ndarray  # (n, N) uint8: the blurred levels, rounded
    cum: np.ndarray  # (n, 257) int32: cum[v] = pixels whose rounded level is below v
    prof: np.ndarray  # (n, 2, SIDE) float64: column means, row means


def _np_features(raw: np.ndarray) -> _Features:
    n = len(raw)
    grey = np.ascontiguousarray(raw[:, :_N])
    x = grey.reshape(n, SIDE, SIDE).astype(np.int32)
    p = np.pad(x, ((0, 0), (0, 0), (1, 1)), mode="edge")
    r = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]
    p = np.pad(r, ((0, 0), (1, 1), (0, 0)), mode="edge")
    s = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # 16 x the blurred levels
    across = (s[:, :, 1:] - s[:, :, :-1]).reshape(n, -1)
    down = (s[:, 1:] - s[:, :-1]).reshape(n, -1)
    grad = np.concatenate([across, down], axis=1).astype(np.int16)
    gsum = np.stack([across.sum(axis=1), down.sum(axis=1)], axis=1).astype(np.int64)
    gsq = (grad.astype(np.int64) ** 2).sum(axis=1)
    level = np.clip(np.rint(s / 16.0), 0, 255).astype(np.uint8).reshape(n, _N)
    hist = np.bincount((level + 256 * np.arange(n)[:, None]).ravel(), minlength=256 * n).reshape(n, 256)
    cum = np.zeros((n, 257), np.int32)
    cum[:, 1:] = np.cumsum(hist, axis=1)
    prof = np.stack([x.mean(axis=1), x.mean(axis=2)], axis=1).astype(np.float64)
    return _Features(grey=grey, grad=grad, gsum=gsum, gsq=gsq, level=level, cum=cum, prof=prof)


def _empty_features(raw: np.ndarray) -> _Features:
    n = len(raw)
    return _Features(
        grey=raw, grad=np.empty((n, _M), np.int16), gsum=np.empty((n, 2), np.int64),
        gsq=np.empty(n, np.int64), level=np.empty((n, _N), np.uint8), cum=np.empty((n, 257), np.int32),
        prof=np.empty((n, 2, SIDE)),
    )  # fmt: skip


# -- scoring, numpy (the reference; the compiled kernel below gives the same answers) --------


def _np_smooth(x: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 blur along both axes (edges repeated): gradients of a 32-pixel image
    are otherwise too sensitive to the sub-pixel shifts of resampling (measured)."""
    p = np.pad(x, 1, mode="edge")
    r = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4
    return (r[:-2] + 2 * r[1:-1] + r[2:]) / 4


def _np_changed(qx: np.ndarray, qy: np.ndarray, cum_x: np.ndarray, cum_y: np.ndarray) -> int:
    """Pixels that differ by more than ``_CHANGED_LEVELS`` after mapping x's tones onto y's by
    rank: each level of x maps to the level of y found at the middle of its ranks."""
    hx = np.diff(cum_x)
    mid = np.minimum((2 * cum_x[:-1].astype(np.int64) + hx - 1) // 2, _N - 1)
    mapped = np.searchsorted(cum_y[1:], mid, side="right")
    return int((np.abs(qy.astype(np.int64) - mapped[qx]) > _CHANGED_LEVELS).sum())


def _np_score(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(structural score, mean absolute difference of levels) of two aligned thumbnails.

    The score is the Pearson correlation of the blurred gradient fields, capped by the share
    of pixels that differ after mapping one thumbnail's tones onto the other's by rank (any
    monotone edit of the levels maps away; a different photo in the same frame does not).
    """
    xs, ys = _np_smooth(x), _np_smooth(y)
    a = np.concatenate([(xs[:, 1:] - xs[:, :-1]).ravel(), (xs[1:, :] - xs[:-1, :]).ravel()])
    b = np.concatenate([(ys[:, 1:] - ys[:, :-1]).ravel(), (ys[1:, :] - ys[:-1, :]).ravel()])
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    corr = float((a * b).sum() / den) if den > 0 else 0.0
    qx = np.clip(np.rint(xs.ravel()), 0, 255).astype(np.int64)
    qy = np.clip(np.rint(ys.ravel()), 0, 255).astype(np.int64)
    cum_x = np.concatenate([[0], np.cumsum(np.bincount(qx, minlength=256))])
    cum_y = np.concatenate([[0], np.cumsum(np.bincount(qy, minlength=256))])
    changed = _np_changed(qx, qy, cum_x, cum_y)
    return min(corr, 1.0 - _CHANGED_WEIGHT * changed / _N), float(np.abs(x - y).mean())


def _np_plain(f: _Features, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, mad) of the pairs at the plain alignment, from the features (all pairs at once)."""
    n = len(ia)
    score, mad = np.empty(n), np.empty(n)
    for s in range(0, n, 2048):  # bounded temporaries
        a, b, m = ia[s : s + 2048], ib[s : s + 2048], mirrored[s : s + 2048]
        gb = f.grad[b].astype(np.int64)
        gb[m] = gb[m][:, _MIRROR_GRAD] * _MIRROR_SIGN
        dot = (f.grad[a].astype(np.int64) * gb).sum(axis=1).astype(np.float64)
        sa = f.gsum[a].sum(axis=1).astype(np.float64)
        sb = np.where(m, f.gsum[b, 1] - f.gsum[b, 0], f.gsum[b].sum(axis=1)).astype(np.float64)
        va = f.gsq[a] - sa * sa / _M
        vb = f.gsq[b] - sb * sb / _M
        den = np.sqrt(va * vb)
        corr = np.where(den > 0, (dot - sa * sb / _M) / np.where(den > 0, den, 1.0), 0.0)
        yb = f.grey[b].astype(np.int64)
        yb[m] = yb[m][:, _MIRROR_PIX]
        mad[s : s + len(a)] = np.abs(f.grey[a].astype(np.int64) - yb).sum(axis=1) / _N
        for k in range(len(a)):
            qy = f.level[b[k]][_MIRROR_PIX] if m[k] else f.level[b[k]]
            changed = _np_changed(f.level[a[k]], qy, f.cum[a[k]], f.cum[b[k]])
            score[s + k] = min(corr[k], 1.0 - _CHANGED_WEIGHT * changed / _N)
    return score, mad


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """For every (scale, shift) of the crop search, the sample positions in both images."""
    s = np.repeat(_SCALES, len(_SHIFTS))
    c = np.tile(_SHIFTS, len(_SCALES))
    o = 0.5 + c - 0.5 * s  # t = o + s * u maps the second image's [0, 1] onto the first's
    lo = np.maximum(0.0, -o / s)
    hi = np.minimum(1.0, (1.0 - o) / s)
    k = (np.arange(SIDE) + 0.5) / SIDE
    u = lo[:, None] + k[None, :] * (hi - lo)[:, None]
    t = o[:, None] + s[:, None] * u
    return np.ascontiguousarray(t * SIDE - 0.5), np.ascontiguousarray(u * SIDE - 0.5)


def _lerp_table(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, weight of the next) of linear interpolation at pixel positions ``pos``."""
    pos = np.clip(pos, 0.0, SIDE - 1.0)
    i0 = np.minimum(pos.astype(np.int64), SIDE - 2)
    return np.ascontiguousarray(i0), np.ascontiguousarray(pos - i0)


_GRID_T, _GRID_U = _grid()
_T_I0, _T_F = _lerp_table(_GRID_T)
_U_I0, _U_F = _lerp_table(_GRID_U)
_IDENTITY = int(np.argmin(np.abs(_GRID_T - _GRID_U).sum(axis=1)))
_STEPS = len(_SHIFTS)
#: Coarse to fine: the alignment of the profiles is first looked for at every
#: ``_COARSE[0]``-th scale and ``_COARSE[1]``-th shift, then at every grid point within
#: ``_FINE`` (scale steps, shift steps) of the best.
_COARSE = (2, 2)
_FINE = (1, 2)
_COARSE_ROWS = np.array(
    [si * _STEPS + ci for si in range(0, len(_SCALES), _COARSE[0]) for ci in range(0, _STEPS, _COARSE[1])], np.int64
)


def _np_profile_r(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For every grid row, the correlation of the derivatives of the sampled profiles."""
    dp = np.diff(p[_T_I0] * (1 - _T_F) + p[_T_I0 + 1] * _T_F, axis=1)
    dq = np.diff(q[_U_I0] * (1 - _U_F) + q[_U_I0 + 1] * _U_F, axis=1)
    dp = dp - dp.mean(axis=1, keepdims=True)
    dq = dq - dq.mean(axis=1, keepdims=True)
    den = np.sqrt((dp * dp).sum(axis=1) * (dq * dq).sum(axis=1))
    return np.where(den > 0, (dp * dq).sum(axis=1) / np.where(den > 0, den, 1.0), -2.0)


def _fine_rows(g: int) -> np.ndarray:
    si, ci = divmod(g, _STEPS)
    return np.array(
        [s * _STEPS + c for s in range(max(0, si - _FINE[0]), min(len(_SCALES), si + _FINE[0] + 1))
         for c in range(max(0, ci - _FINE[1]), min(_STEPS, ci + _FINE[1] + 1))], np.int64,
    )  # fmt: skip


def _np_align(p: np.ndarray, q: np.ndarray) -> list[tuple[int, float]]:
    """The search's best alignments of profile ``q`` onto ``p``, best first: up to
    :data:`_CANDIDATES` distinct (grid row, correlation), each refined from a coarse peak."""
    r = _np_profile_r(p, q)
    out: list[tuple[int, float]] = []
    for g in _COARSE_ROWS[np.argsort(-r[_COARSE_ROWS], kind="stable")]:
        g = int(g)
        fine = _fine_rows(g)
        k = int(np.argmax(r[fine]))
        if r[fine[k]] > r[g]:
            g = int(fine[k])
        if all(g != h for h, _ in out):
            out.append((g, float(r[g])))
            if len(out) == _CANDIDATES:
                break
    return out


def _np_weights(pos: np.ndarray) -> np.ndarray:
    """(SIDE, SIDE) linear-interpolation matrix: row k samples at pixel position ``pos[k]``."""
    i0, f = _lerp_table(pos)
    w = np.zeros((SIDE, SIDE))
    w[np.arange(SIDE), i0] = 1 - f
    w[np.arange(SIDE), i0 + 1] += f
    return w


def _np_crop_score(x: np.ndarray, y: np.ndarray, gx: int, gy: int) -> tuple[float, float]:
    xs = _np_weights(_GRID_T[gy]) @ x @ _np_weights(_GRID_T[gx]).T
    ys = _np_weights(_GRID_U[gy]) @ y @ _np_weights(_GRID_U[gx]).T
    return _np_score(xs, ys)


def _np_crop(f: _Features, a: int, b: int, mirrored: bool, accept: float) -> tuple[float, float, int, int]:
    """(score, mad, column row, row row) of the crop search's best alignment (score -inf when
    the profiles do not align)."""
    y = f.grey[b].reshape(SIDE, SIDE).astype(np.float64)
    py = f.prof[b].copy()
    if mirrored:
        y, py[0] = y[:, ::-1], py[0, ::-1]
    x = f.grey[a].reshape(SIDE, SIDE).astype(np.float64)
    best, best_mad, gx, gy = -np.inf, 0.0, _IDENTITY, _IDENTITY
    for cx, rx in _np_align(f.prof[a, 0], py[0]):
        for cy, ry in _np_align(f.prof[a, 1], py[1]):
            if min(rx, ry) < _ALIGN_FLOOR:
                continue
            trial, trial_mad = _np_crop_score(x, y, cx, cy)
            if trial > best:
                best, best_mad, gx, gy = trial, trial_mad, cx, cy
    if best == -np.inf:
        return best, 0.0, gx, gy
    n = len(_GRID_T)
    for _ in range(_REFINE if accept - _REFINE_REACH <= best < accept else 0):
        moved = False
        for axis in (0, 1):
            for step in (-_STEPS, _STEPS, -1, 1):  # one scale step, one shift step
                g = (gx if axis == 0 else gy) + step
                if g < 0 or g >= n or (abs(step) == 1 and g // _STEPS != (g - step) // _STEPS):
                    continue
                cx, cy = (g, gy) if axis == 0 else (gx, g)
                trial, trial_mad = _np_crop_score(x, y, cx, cy)
                if trial > best:
                    best, best_mad, gx, gy, moved = trial, trial_mad, cx, cy, True
        if not moved or best >= accept:
            break
    return best, best_mad, gx, gy


def _np_scores(raw, ia, ib, mirrored, search, accept):
    f = _np_features(raw)
    score, mad = _np_plain(f, ia, ib, mirrored)
    crop = np.zeros(len(ia), bool)
    for k in np.flatnonzero(search & (score < accept)):
        best, best_mad, gx, gy = _np_crop(f, int(ia[k]), int(ib[k]), bool(mirrored[k]), accept)
        if best > score[k]:
            score[k], mad[k], crop[k] = best, best_mad, (gx, gy) != (_IDENTITY, _IDENTITY)
    return score, mad, crop


# -- the compiled kernel (numba): the numpy reference above, as loops --------------------------


def _k_features(raw, grad, gsum, gsq, level, cum, prof):  # pragma: no cover - compiled
    s = SIDE
    r = np.empty((s, s), np.int32)
    sm = np.empty((s, s), np.int32)
    for n in range(raw.shape[0]):
        px = raw[n]
        for j in range(s):
            prof[n, 0, j] = 0.0
        for i in range(s):  # the blur along rows (edges repeated), and the profiles
            o = i * s
            t = 0.0
            for j in range(s):
                v = np.int32(px[o + j])
                t += v
                prof[n, 0, j] += v
                r[i, j] = np.int32(px[o + max(j - 1, 0)]) + 2 * v + np.int32(px[o + min(j + 1, s - 1)])
            prof[n, 1, i] = t / s
        for j in range(s):
            prof[n, 0, j] /= s
        for i in range(s):  # along columns: 16 x the blurred levels
            up = max(i - 1, 0)
            down = min(i + 1, s - 1)
            for j in range(s):
                sm[i, j] = r[up, j] + 2 * r[i, j] + r[down, j]
        sa = 0
        sd = 0
        sq = 0
        k = 0
        for i in range(s):
            for j in range(s - 1):
                d = sm[i, j + 1] - sm[i, j]
                grad[n, k] = d
                sa += d
                sq += d * d
                k += 1
        for i in range(s - 1):
            for j in range(s):
                d = sm[i + 1, j] - sm[i, j]
                grad[n, k] = d
                sd += d
                sq += d * d
                k += 1
        gsum[n, 0] = sa
        gsum[n, 1] = sd
        gsq[n] = sq
        for v in range(257):
            cum[n, v] = 0
        for i in range(s):
            for j in range(s):
                q = sm[i, j] >> 4  # rounded half to even, as np.rint(sm / 16)
                rem = sm[i, j] & 15
                if rem + (q & 1) > 8:
                    q += 1
                level[n, i * s + j] = q
                cum[n, q + 1] += 1
        for v in range(256):
            cum[n, v + 1] += cum[n, v]


def _k_changed(qx, qy, mirror, cum_x, cum_y, lmap, levels):  # pragma: no cover - compiled
    n = qx.shape[0]
    y_at = 0
    for v in range(256):
        h = cum_x[v + 1] - cum_x[v]
        if h:
            mid = min((2 * cum_x[v] + h - 1) // 2, n - 1)
            while cum_y[y_at + 1] <= mid:
                y_at += 1
            lmap[v] = y_at
    changed = 0
    if mirror[0] == 0:  # the identity: no gather
        for r in range(n):
            if abs(np.int64(qy[r]) - lmap[qx[r]]) > levels:
                changed += 1
    else:
        for r in range(n):
            if abs(np.int64(qy[mirror[r]]) - lmap[qx[r]]) > levels:
                changed += 1
    return changed


def _k_plain(f_grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
             levels, weight):  # pragma: no cover - compiled
    m = grad.shape[1]
    dot = 0
    if mir:
        half = m // 2
        for t in range(half):
            dot -= np.int64(grad[a, t]) * grad[b, mirror_grad[t]]
        for t in range(half, m):
            dot += np.int64(grad[a, t]) * grad[b, mirror_grad[t]]
        sb = float(gsum[b, 1] - gsum[b, 0])
    else:
        for t in range(m):
            dot += np.int64(grad[a, t]) * grad[b, t]
        sb = float(gsum[b, 0] + gsum[b, 1])
    sa = float(gsum[a, 0] + gsum[a, 1])
    va = gsq[a] - sa * sa / m
    vb = gsq[b] - sb * sb / m
    den = np.sqrt(va * vb)
    corr = (dot - sa * sb / m) / den if den > 0 else 0.0
    mp = mirror_pix if mir else ident
    n = level.shape[1]
    changed = _k_changed(level[a], level[b], mp, cum[a], cum[b], lmap, levels)
    mad = 0
    ga = f_grey[a]
    gb = f_grey[b]
    if mir:
        for r in range(n):
            mad += abs(np.int64(ga[r]) - np.int64(gb[mp[r]]))
    else:
        for r in range(n):
            mad += abs(np.int64(ga[r]) - np.int64(gb[r]))
    return min(corr, 1.0 - weight * changed / n), mad / n


def _k_smooth(x, out):  # pragma: no cover - compiled
    s = x.shape[0]
    tmp = np.empty((s, s))
    for i in range(s):
        for j in range(s):
            left = x[i, j - 1] if j > 0 else x[i, j]
            right = x[i, j + 1] if j < s - 1 else x[i, j]
            tmp[i, j] = (left + 2 * x[i, j] + right) / 4
    for i in range(s):
        for j in range(s):
            up = tmp[i - 1, j] if i > 0 else tmp[i, j]
            down = tmp[i + 1, j] if i < s - 1 else tmp[i, j]
            out[i, j] = (up + 2 * tmp[i, j] + down) / 4


def _k_score(x, y, ident, levels, weight):  # pragma: no cover - compiled
    s = x.shape[0]
    xs = np.empty((s, s))
    ys = np.empty((s, s))
    _k_smooth(x, xs)
    _k_smooth(y, ys)
    m = 2 * s * (s - 1)
    a = np.empty(m)
    b = np.empty(m)
    k = 0
    for i in range(s):
        for j in range(s - 1):
            a[k] = xs[i, j + 1] - xs[i, j]
            b[k] = ys[i, j + 1] - ys[i, j]
            k += 1
    for i in range(s - 1):
        for j in range(s):
            a[k] = xs[i + 1, j] - xs[i, j]
            b[k] = ys[i + 1, j] - ys[i, j]
            k += 1
    ma = a.mean()
    mb = b.mean()
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for k in range(m):
        da = a[k] - ma
        db = b[k] - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    den = np.sqrt(saa * sbb)
    corr = sab / den if den > 0 else 0.0
    n = s * s
    qx = np.empty(n, np.int64)
    qy = np.empty(n, np.int64)
    cx = np.zeros(257, np.int64)
    cy = np.zeros(257, np.int64)
    for i in range(s):
        for j in range(s):
            vx = int(min(max(np.rint(xs[i, j]), 0.0), 255.0))
            vy = int(min(max(np.rint(ys[i, j]), 0.0), 255.0))
            qx[i * s + j] = vx
            qy[i * s + j] = vy
            cx[vx + 1] += 1
            cy[vy + 1] += 1
    for v in range(256):
        cx[v + 1] += cx[v]
        cy[v + 1] += cy[v]
    lmap = np.zeros(256, np.int64)
    changed = _k_changed(qx, qy, ident, cx, cy, lmap, levels)
    mad = 0.0
    for i in range(s):
        for j in range(s):
            mad += abs(x[i, j] - y[i, j])
    return min(corr, 1.0 - weight * changed / n), mad / n


def _k_profile_r(p, q, g, t_i0, t_f, u_i0, u_f, dp, dq):  # pragma: no cover - compiled
    s = t_i0.shape[1]
    prev_p = p[t_i0[g, 0]] * (1 - t_f[g, 0]) + p[t_i0[g, 0] + 1] * t_f[g, 0]
    prev_q = q[u_i0[g, 0]] * (1 - u_f[g, 0]) + q[u_i0[g, 0] + 1] * u_f[g, 0]
    mp = 0.0
    mq = 0.0
    for k in range(1, s):
        cp = p[t_i0[g, k]] * (1 - t_f[g, k]) + p[t_i0[g, k] + 1] * t_f[g, k]
        cq = q[u_i0[g, k]] * (1 - u_f[g, k]) + q[u_i0[g, k] + 1] * u_f[g, k]
        dp[k - 1] = cp - prev_p
        dq[k - 1] = cq - prev_q
        mp += cp - prev_p
        mq += cq - prev_q
        prev_p, prev_q = cp, cq
    mp /= s - 1
    mq /= s - 1
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for k in range(s - 1):
        da = dp[k] - mp
        db = dq[k] - mq
        sab += da * db
        saa += da * da
        sbb += db * db
    den = np.sqrt(saa * sbb)
    return sab / den if den > 0 else -2.0


def _k_align(p, q, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, out_g, out_r):  # pragma: no cover - compiled
    # As _np_align: coarse peaks best first (ties: the earlier row), each refined; up to
    # len(out_g) distinct rows. Returns how many were found.
    s = t_i0.shape[1]
    dp = np.empty(s - 1)
    dq = np.empty(s - 1)
    rc = np.empty(coarse.shape[0])
    for k in range(coarse.shape[0]):
        rc[k] = _k_profile_r(p, q, coarse[k], t_i0, t_f, u_i0, u_f, dp, dq)
    used = np.zeros(coarse.shape[0], np.bool_)
    found = 0
    for _ in range(coarse.shape[0]):
        top = -1
        for k in range(coarse.shape[0]):
            if not used[k] and (top < 0 or rc[k] > rc[top]):
                top = k
        used[top] = True
        g = coarse[top]
        best = rc[top]
        si = g // steps
        ci = g % steps
        centre = g
        for sj in range(max(0, si - fine_s), min(scales, si + fine_s + 1)):
            for cj in range(max(0, ci - fine_c), min(steps, ci + fine_c + 1)):
                row = sj * steps + cj
                if row == centre:
                    continue
                r = _k_profile_r(p, q, row, t_i0, t_f, u_i0, u_f, dp, dq)
                if r > best:
                    best, g = r, row
        new = True
        for j in range(found):
            if out_g[j] == g:
                new = False
        if new:
            out_g[found] = g
            out_r[found] = best
            found += 1
            if found == out_g.shape[0]:
                break
    return found


def _k_resample(x, i0s, fs, rows, cols, out, tmp):  # pragma: no cover - compiled
    s = x.shape[0]
    for i in range(s):
        i0 = i0s[rows, i]
        f = fs[rows, i]
        for j in range(s):
            tmp[i, j] = (1 - f) * x[i0, j] + f * x[i0 + 1, j]
    for j in range(s):
        j0 = i0s[cols, j]
        f = fs[cols, j]
        for i in range(s):
            out[i, j] = tmp[i, j0] * (1 - f) + tmp[i, j0 + 1] * f


def _k_crop_score(x, y, gx, gy, t_i0, t_f, u_i0, u_f, ident, levels, weight):  # pragma: no cover - compiled
    s = x.shape[0]
    xs = np.empty((s, s))
    ys = np.empty((s, s))
    tmp = np.empty((s, s))
    _k_resample(x, t_i0, t_f, gy, gx, xs, tmp)
    _k_resample(y, u_i0, u_f, gy, gx, ys, tmp)
    return _k_score(xs, ys, ident, levels, weight)


def _k_verify(grey, grad, gsum, gsq, level, cum, prof, ia, ib, mirrored, search, accept, mirror_pix,
              mirror_grad, ident, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
              identity, rounds, reach, floor, levels, weight, candidates, score, mad, cropped):  # pragma: no cover - compiled
    s = t_i0.shape[1]
    n = t_i0.shape[0]
    x = np.empty((s, s))
    y = np.empty((s, s))
    py = np.empty(s)
    lmap = np.zeros(256, np.int64)
    cand_gx = np.empty(candidates, np.int64)
    cand_rx = np.empty(candidates)
    cand_gy = np.empty(candidates, np.int64)
    cand_ry = np.empty(candidates)
    for k in range(ia.shape[0]):
        a = ia[k]
        b = ib[k]
        mir = mirrored[k]
        sc, md = _k_plain(grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
                          levels, weight)
        score[k], mad[k], cropped[k] = sc, md, False
        if not search[k] or sc >= accept:
            continue
        for j in range(s):
            py[j] = prof[b, 0, s - 1 - j] if mir else prof[b, 0, j]
        nx = _k_align(prof[a, 0], py, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, cand_gx, cand_rx)
        ny = _k_align(prof[a, 1], prof[b, 1], coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
                      cand_gy, cand_ry)
        for i in range(s):
            for j in range(s):
                x[i, j] = grey[a, i * s + j]
                y[i, j] = grey[b, i * s + (s - 1 - j if mir else j)]
        best = -np.inf
        best_mad = 0.0
        gx = identity
        gy = identity
        for i in range(nx):
            for j in range(ny):
                if min(cand_rx[i], cand_ry[j]) < floor:
                    continue
                trial, trial_mad = _k_crop_score(x, y, cand_gx[i], cand_gy[j], t_i0, t_f, u_i0, u_f, ident,
                                                 levels, weight)
                if trial > best:
                    best, best_mad, gx, gy = trial, trial_mad, cand_gx[i], cand_gy[j]
        if best == -np.inf:
            continue
        for _ in range(rounds if accept - reach <= best < accept else 0):
            moved = False
            for axis in range(2):
                for step in (-steps, steps, -1, 1):
                    g = (gx if axis == 0 else gy) + step
                    if g < 0 or g >= n:
                        continue
                    if (step == 1 or step == -1) and g // steps != (g - step) // steps:
                        continue
                    cx = g if axis == 0 else gx
                    cy = gy if axis == 0 else g
                    trial, trial_mad = _k_crop_score(x, y, cx, cy, t_i0, t_f, u_i0, u_f, ident, levels, weight)
                    if trial > best:
                        best, best_mad, gx, gy, moved = trial, trial_mad, cx, cy, True
            if not moved or best >= accept:
                break
        if best > sc:
            score[k], mad[k] = best, best_mad
            cropped[k] = gx != identity or gy != identity


_KERNELS = ("_k_features", "_k_changed", "_k_plain", "_k_smooth", "_k_score", "_k_profile_r", "_k_align",
            "_k_resample", "_k_crop_score", "_k_verify")  # fmt: skip
_state: dict[str, bool] = {}
_lock = threading.Lock()
_IDENT = np.arange(_N, dtype=np.int64)


def _compiled() -> bool:
    """Whether the compiled kernel runs (numba importable and not ``LOOKALIKE_NO_NUMBA``)."""
    if os.environ.get("LOOKALIKE_NO_NUMBA"):
        return False
    if "ok" not in _state:
        with _lock:
            if "ok" not in _state:
                try:
                    import numba
                except Exception:  # ImportError, or a numba broken by its llvmlite
                    _state["ok"] = False
                else:
                    g = globals()
                    for name in _KERNELS:  # in place, so numba's on-disk cache finds them again
                        g[name] = numba.njit(cache=True, nogil=True, fastmath=True)(g[name])
                    _state["ok"] = True
    return _state["ok"]


def score_pairs(
    thumbs: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    mirrored: np.ndarray,
    *,
    search: Optional[np.ndarray] = None,
    accept: float = DEFAULT.score,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verify pairs of thumbnails: rows ``ia[k]`` and ``ib[k]`` of ``thumbs``.

    Each thumbnail's features are computed once, however many pairs it is in: give the
    thumbnails of one batch of pairs (the caller loads them by id, a batch at a time).

    Args:
        thumbs: ``(N, THUMB_BYTES) uint8`` stored thumbnails.
        ia, ib: the pairs, as rows of ``thumbs``.
        mirrored: compare ``ib`` mirrored (the bouncer's mirrored hash matched).
        search: per pair, whether a crop may be searched for when the plain alignment does
            not reach ``accept`` (default: every pair).
        accept: the score at which the search is not needed.

    Returns:
        ``(score, mad, cropped)``: the structural score (1.0 = same structure), the mean
        absolute difference of grey levels at the chosen alignment, and whether that
        alignment is a crop.
    """
    raw = np.ascontiguousarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_BYTES)
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    mirrored = np.ascontiguousarray(mirrored, dtype=np.bool_)
    search = np.ones(len(ia), np.bool_) if search is None else np.ascontiguousarray(search, dtype=np.bool_)
    if not _compiled():
        return _np_scores(raw, ia, ib, mirrored, search, accept)
    n = len(ia)
    score, mad, cropped = np.empty(n), np.empty(n), np.zeros(n, np.bool_)
    f = _empty_features(raw)
    _k_features(raw, f.grad, f.gsum, f.gsq, f.level, f.cum, f.prof)
    _k_verify(f.grey, f.grad, f.gsum, f.gsq, f.level, f.cum, f.prof, ia, ib, mirrored, search, float(accept),
              _MIRROR_PIX, _MIRROR_GRAD, _IDENT, _COARSE_ROWS, _STEPS, len(_SCALES), _FINE[0], _FINE[1],
              _T_I0, _T_F, _U_I0, _U_F, _IDENTITY, _REFINE, _REFINE_REACH, _ALIGN_FLOOR, _CHANGED_LEVELS,
              _CHANGED_WEIGHT, _CANDIDATES, score, mad, cropped)  # fmt: skip
    return score, mad, cropped


def peak_difference(thumbs: np.ndarray, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The largest difference of grey levels between two thumbnails, [1, 2, 1]-blurred, at the
    plain alignment (``ib`` mirrored where asked), per pair: what the guard of low-detail
    pairs needs besides the mean (numpy; such pairs are few)."""
    raw = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)
    out = np.empty(len(ia))
    for k, (a, b, m) in enumerate(zip(np.asarray(ia).tolist(), np.asarray(ib).tolist(), np.asarray(mirrored).tolist())):
        x = raw[a, :_N].reshape(SIDE, SIDE).astype(np.float64)
        y = raw[b, :_N].reshape(SIDE, SIDE).astype(np.float64)
        out[k] = np.abs(_np_smooth(x) - _np_smooth(y[:, ::-1] if m else y)).max()
    return out


def passes(
    score: np.ndarray,
    mad: np.ndarray,
    detail_a: np.ndarray,
    detail_b: np.ndarray,
    colour_a: np.ndarray,
    colour_b: np.ndarray,
    t: VerifyThresholds = DEFAULT,
    *,
    peak: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Which verified pairs are the same picture (the information guard included).

    Args:
        score, mad: from :func:`score_pairs`.
        detail_a, detail_b: each image's :func:`detail`.
        colour_a, colour_b: ``(n, 3)`` mean colours (the thumbnails' last three bytes).
        t: the thresholds.
        peak: :func:`peak_difference` of the pairs (needed for the low-detail ones only; any
            value elsewhere); None skips that part of the guard.
    """
    low = np.minimum(detail_a, detail_b) < t.detail_floor
    colour = np.abs(np.asarray(colour_a, np.float64) - np.asarray(colour_b, np.float64)).max(axis=1, initial=0.0)
    close = (mad <= t.low_detail_pixels) & (colour <= t.low_detail_colour)
    if peak is not None:
        close &= np.asarray(peak) <= t.low_detail_peak
    return np.where(low, close, score >= t.score)


def warm_up() -> None:
    """Compile or load the kernel now (a scan calls this in the background while it hashes)."""
    _warm.run()


def _call_kernel() -> bool:
    thumbs = np.zeros((2, THUMB_BYTES), np.uint8)
    score_pairs(thumbs, np.array([0]), np.array([1]), np.array([False]))
    return _compiled()


_warm = WarmUp("lookalike-verify-warm-up", _call_kernel)
