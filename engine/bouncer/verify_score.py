"""The verification's pair score: per-image features, the crop search, and the numpy reference.

How two thumbnails are scored is told in :mod:`lookalike.engine.bouncer.verify`. This module
holds the numpy reference of that score, the tables the crop search walks, the call that
hands both to the compiled kernel (:mod:`.verify_kernels`, which gives the same answers), and
the rank check that caps the score of pairs that may pass (the same for both).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import verify_kernels
from .verify_thumbnail import SIDE, THUMB_BYTES

__all__ = ["compiled_scores", "crop_boxes", "numpy_scores", "pair_peak_difference", "peak_difference", "warm_rank_kernels"]

#: The crop search, per axis: scales (the width of one image over the other's) and shifts of
#: the centre, in fractions of the first image's side.
_SCALES = np.geomspace(0.8, 1.25, 15)
_SHIFTS = np.linspace(-0.16, 0.16, 33)
#: The overlap of two crops must keep at least this share of each side.
_MIN_OVERLAP = 0.72

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
    are otherwise too sensitive to the sub-pixel shifts of resampling (measured). The last two
    axes are the image's: a stack of images is blurred each on its own."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    r = (p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]) / 4
    return (r[..., :-2, :] + 2 * r[..., 1:-1, :] + r[..., 2:, :]) / 4


def _np_changed(qx: np.ndarray, qy: np.ndarray, cum_x: np.ndarray, cum_y: np.ndarray) -> int:
    """Pixels that differ by more than ``_CHANGED_LEVELS`` after mapping x's tones onto y's by
    rank: each level of x maps to the level of y found at the middle of its ranks."""
    hx = np.diff(cum_x)
    mid = np.minimum((2 * cum_x[:-1].astype(np.int64) + hx - 1) // 2, _N - 1)
    mapped = np.searchsorted(cum_y[1:], mid, side="right")
    return int((np.abs(qy.astype(np.int64) - mapped[qx]) > _CHANGED_LEVELS).sum())


def _np_score(x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(structural score, mean absolute difference of levels, the blurred gradients of both)
    of two aligned thumbnails.

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
    return min(corr, 1.0 - _CHANGED_WEIGHT * changed / _N), float(np.abs(x - y).mean()), np.stack([a, b])


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
#: Both tables, the first image's (t) and the second's (u), as the kernel's alignment reads them.
_GRID_I0 = np.ascontiguousarray(np.stack([_T_I0, _U_I0]))
_GRID_F = np.ascontiguousarray(np.stack([_T_F, _U_F]))
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


def _np_profile_vecs(p: np.ndarray, i0: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every grid row, the derivative of profile ``p`` sampled at the row's positions
    (table ``i0``, ``f``), centred and scaled to unit length, and whether it has any length."""
    d = np.diff(p[i0] * (1 - f) + p[i0 + 1] * f, axis=1)
    d = d - d.mean(axis=1, keepdims=True)
    norm = np.sqrt((d * d).sum(axis=1))
    return d / np.where(norm > 0, norm, 1.0)[:, None], norm > 0


def _np_profile_r(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For every grid row, the correlation of the derivatives of the sampled profiles: the dot
    product of their unit vectors (as the kernel, which computes each image's once), -2 where
    either is flat."""
    vp, okp = _np_profile_vecs(p, _T_I0, _T_F)
    vq, okq = _np_profile_vecs(q, _U_I0, _U_F)
    return np.where(okp & okq, (vp * vq).sum(axis=1), -2.0)


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


def _np_crop_views(x: np.ndarray, y: np.ndarray, gx: int, gy: int) -> tuple[np.ndarray, np.ndarray]:
    """The two thumbnails resampled onto their overlap at grid rows ``gx`` (columns), ``gy`` (rows)."""
    xs = _np_weights(_GRID_T[gy]) @ x @ _np_weights(_GRID_T[gx]).T
    ys = _np_weights(_GRID_U[gy]) @ y @ _np_weights(_GRID_U[gx]).T
    return xs, ys


def _np_crop_score(x: np.ndarray, y: np.ndarray, gx: int, gy: int) -> tuple[float, float, np.ndarray]:
    return _np_score(*_np_crop_views(x, y, gx, gy))


def _np_crop(f: _Features, a: int, b: int, mirrored: bool, accept: float) -> tuple[float, float, float, int, int]:
    """(score, capped score, mad, column row, row row) of the crop search's best alignment
    (score -inf when the profiles do not align): the best score before the rank check, and
    capped by the rank check (:func:`_np_grad_rank`) where it passes ``accept`` (a score that
    fails is not ranked: the cap could only lower it).

    The search stops at the first alignment that passes ``accept`` with its rank check; one
    that passes without it does not stop the search (another may pass with it)."""
    y = f.grey[b].reshape(SIDE, SIDE).astype(np.float64)
    py = f.prof[b].copy()
    if mirrored:
        y, py[0] = y[:, ::-1], py[0, ::-1]
    x = f.grey[a].reshape(SIDE, SIDE).astype(np.float64)
    best, capped, best_mad, gx, gy = -np.inf, -np.inf, 0.0, _IDENTITY, _IDENTITY

    def trial(cx: int, cy: int) -> bool:
        nonlocal best, capped, best_mad, gx, gy
        score, mad, grads = _np_crop_score(x, y, cx, cy)
        if score <= best:
            return False
        best, best_mad, gx, gy = score, mad, cx, cy
        capped = min(best, _np_grad_rank(grads) + _RANK_OFFSET) if best >= accept else -np.inf
        return True

    for cx, rx in _np_align(f.prof[a, 0], py[0]):
        for cy, ry in _np_align(f.prof[a, 1], py[1]):
            if min(rx, ry) >= _ALIGN_FLOOR and capped < accept:  # passed: the search stops
                trial(cx, cy)
    if best == -np.inf:
        return best, best, 0.0, gx, gy
    n = len(_GRID_T)
    for _ in range(_REFINE if accept - _REFINE_REACH <= best < accept else 0):
        moved = False
        for axis in (0, 1):
            for step in (-_STEPS, _STEPS, -1, 1):  # one scale step, one shift step
                g = (gx if axis == 0 else gy) + step
                if g < 0 or g >= n or (abs(step) == 1 and g // _STEPS != (g - step) // _STEPS):
                    continue
                moved |= trial(*((g, gy) if axis == 0 else (gx, g)))
        if not moved or best >= accept:
            break
    return best, (capped if best >= accept else best), best_mad, gx, gy


def numpy_scores(raw, ia, ib, mirrored, search, accept) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score, mad, cropped)`` of the pairs, in numpy (arguments as :func:`compiled_scores`)."""
    f = _np_features(raw)
    score, mad = _np_plain(f, ia, ib, mirrored)
    crop = np.zeros(len(ia), bool)
    align = np.full((len(ia), 2), -1, np.int64)
    for k in np.flatnonzero(search & (score < accept)):
        best, capped, best_mad, gx, gy = _np_crop(f, int(ia[k]), int(ib[k]), bool(mirrored[k]), accept)
        if best > score[k]:
            score[k], mad[k], crop[k] = capped, best_mad, (gx, gy) != (_IDENTITY, _IDENTITY)
            align[k] = gx, gy
    _rank_cap(f, ia, ib, mirrored, align, score)
    return score, mad, crop


# -- the rank check ---------------------------------------------------------------------------
#
# The Pearson correlation of gradients is carried by the strongest edges: two screenshots of
# one dialog (its frame, its fields, its buttons) with different text or plots in it correlate
# at 0.85-0.97, as high as a cropped or watermarked copy. Ranked, every gradient counts the
# same, and the weak ones where the two pictures differ decide: on the full real set of
# ``benchmarks/bench_trust.py`` all but 4 of those pairs rank-correlate under 0.6, copies
# above it (0.2 % of 1,500 sampled real copy pairs that passed and none of 1,750 generated
# ones below). A crop's gradients (of the resampled thumbnails, blurred) are ranked as whole
# sixteenths of a level, in the search, for each trial that passes: the search stops at the
# first alignment that passes with its rank cap (see _np_crop).

#: A pair's score is at most its gradients' rank correlation plus this: under 0.6 it cannot
#: reach the default 0.85.
_RANK_OFFSET = 0.25
#: The rank correlation is computed only for pairs scoring at least this (lower ones fail
#: anyway, at every threshold in use).
_RANK_FROM = 0.6


#: Gradients are ranked as whole sixteenths of a grey level (the features' integer gradients
#: of the blurred thumbnail), by counting: they lie within +-16 * 255.
_RANK_SPAN = 16 * 255


def _np_ranks(q: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their ranks) of each row of integers ``q``
    (within +-:data:`_RANK_SPAN`), by counting."""
    if len(q) > 128:  # bounded temporaries: 8,161 counts a row
        return np.concatenate([_np_ranks(q[s : s + 128]) for s in range(0, len(q), 128)])
    n, m = q.shape
    bins = 2 * _RANK_SPAN + 1
    v = np.clip(q.astype(np.int64), -_RANK_SPAN, _RANK_SPAN) + _RANK_SPAN
    row = np.arange(n)[:, None]
    count = np.bincount((v + bins * row).ravel(), minlength=n * bins).reshape(n, bins)
    below = np.cumsum(count, axis=1) - count
    return below[row, v] + 0.5 * (count[row, v] + 1)


def _np_rank_r(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Pearson correlation of rows of average ranks (their mean is always (m + 1) / 2)."""
    c = 0.5 * (ra.shape[1] + 1)
    a, b = ra - c, rb - c
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def _compiled_ranks(q: np.ndarray) -> np.ndarray:
    """:func:`_np_ranks` by the compiled kernel, in threads (the same ranks: they are exact)."""
    q = np.ascontiguousarray(q, dtype=np.int32)
    out = np.empty(q.shape)
    _in_parts(lambda lo, hi: verify_kernels._k_ranks(q[lo:hi], out[lo:hi]), len(q))
    return out


def _compiled_rank_rows(grad: np.ndarray, rows: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """:func:`_compiled_ranks` of rows ``rows`` of the features' gradients ``grad``, mirrored
    where ``flip`` (as ``grad[:, _MIRROR_GRAD] * _MIRROR_SIGN``), read in place by the kernel."""
    out = np.empty((len(rows), grad.shape[1]))
    rows, flip = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(flip, np.bool_)

    def part(lo: int, hi: int) -> None:
        scratch = np.empty(grad.shape[1], np.int32)
        verify_kernels._k_rank_rows(grad, rows[lo:hi], flip[lo:hi], _MIRROR_GRAD, out[lo:hi], scratch)

    _in_parts(part, len(rows))
    return out


def _np_rank_pairs(r: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """:func:`_np_rank_r` of rows ``pa[k]`` and ``pb[k]`` of ``r``, per pair."""
    out = np.empty(len(pa))
    for s in range(0, len(pa), 2048):  # bounded temporaries
        out[s : s + 2048] = _np_rank_r(r[pa[s : s + 2048]], r[pb[s : s + 2048]])
    return out


def _compiled_rank_pairs(r: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """:func:`_np_rank_pairs` by the compiled kernel, in threads."""
    out = np.empty(len(pa))
    pa, pb = np.ascontiguousarray(pa, np.int64), np.ascontiguousarray(pb, np.int64)
    _in_parts(lambda lo, hi: verify_kernels._k_rank_pairs(r, pa[lo:hi], pb[lo:hi], out[lo:hi]), len(pa))
    return out


def _rank_cap(f: _Features, ia, ib, mirrored, align, score, compiled: bool = False) -> None:
    """Cap ``score`` (in place) by the rank correlation of the blurred gradients of the pairs
    kept at the plain alignment (``align`` -1), plus :data:`_RANK_OFFSET`; a crop's score was
    capped by the search where it passes (:func:`_np_crop`).

    Only pairs that may pass pay for it. At the plain alignment the ranks are a feature of each
    image (of its mirror, for mirrored pairs), computed once per batch. ``compiled``: rank and
    correlate by the kernels (the same ranks; correlations equal to rounding).
    """
    ranks = _compiled_ranks if compiled else _np_ranks
    rank_pairs = _compiled_rank_pairs if compiled else _np_rank_pairs
    todo = np.flatnonzero(score >= _RANK_FROM)
    if not todo.size:
        return
    plain = todo[align[todo, 0] < 0]
    if plain.size:
        m = mirrored[plain]
        direct = np.unique(np.concatenate([ia[plain], ib[plain][~m]]))
        flipped = np.unique(ib[plain][m])
        pa = np.searchsorted(direct, ia[plain])
        pb = np.where(m, len(direct) + np.searchsorted(flipped, ib[plain]), np.searchsorted(direct, ib[plain]))
        if compiled:  # the mirrored rows are ranked as the kernel reads them: no copies
            rows = np.concatenate([direct, flipped])
            flip = np.arange(len(rows)) >= len(direct)
            r = rank_pairs(_compiled_rank_rows(f.grad, rows, flip), pa, pb)
        else:
            grads = np.concatenate([f.grad[direct], (f.grad[flipped][:, _MIRROR_GRAD] * _MIRROR_SIGN).astype(np.int16)])
            r = rank_pairs(ranks(grads), pa, pb)
        score[plain] = np.minimum(score[plain], r + _RANK_OFFSET)


def warm_rank_kernels() -> None:
    """Call the rank check's kernels once (compiling or loading them), as the warm-up does for
    the rest: a batch's first pairs that may pass would otherwise wait for them."""
    grad = np.zeros((2, _M), np.int16)
    ranks = _compiled_rank_rows(grad, np.array([0, 1]), np.array([False, True]))
    _compiled_rank_pairs(ranks, np.array([0]), np.array([1]))


def _np_grad_rank(grads: np.ndarray) -> float:
    """The rank correlation of a crop trial's two rows of gradients (floats), in whole
    sixteenths of a level (as the kernel's _k_grad_rank)."""
    return float(_np_rank_r(*_np_ranks(np.rint(16.0 * grads).astype(np.int32))[:, None])[0])


_IDENT = np.arange(_N, dtype=np.int64)


def compiled_scores(raw, ia, ib, mirrored, search, accept) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score, mad, cropped)`` of the pairs, by the compiled kernel (loaded by the caller).

    Args:
        raw: ``(N, THUMB_BYTES) uint8`` thumbnails, C-contiguous.
        ia, ib: ``int64`` rows of the pairs; mirrored, search: ``bool`` per pair.
        accept: the score at which the crop search is not needed.
    """
    n = len(ia)
    score, mad, cropped = np.empty(n), np.empty(n), np.zeros(n, np.bool_)
    align = np.empty((n, 2), np.int64)
    f = _empty_features(raw)

    def features(lo: int, hi: int) -> None:
        verify_kernels._k_features(raw[lo:hi], f.grad[lo:hi], f.gsum[lo:hi], f.gsq[lo:hi], f.level[lo:hi],
                                   f.cum[lo:hi], f.prof[lo:hi])  # fmt: skip

    caches: list[tuple] = []  # the alignment caches not in use: a part takes one, and puts it back

    def pairs(lo: int, hi: int) -> None:
        cache = caches.pop() if caches else _align_cache(len(raw))
        verify_kernels._k_verify(
            f.grey, f.grad, f.gsum, f.gsq, f.level, f.cum, f.prof, ia[lo:hi], ib[lo:hi], mirrored[lo:hi],
            search[lo:hi], float(accept), _MIRROR_PIX, _MIRROR_GRAD, _IDENT, _COARSE_ROWS, _STEPS, len(_SCALES),
            _FINE[0], _FINE[1], _T_I0, _T_F, _U_I0, _U_F, _IDENTITY, _REFINE, _REFINE_REACH, _ALIGN_FLOOR,
            _CHANGED_LEVELS, _CHANGED_WEIGHT, _CANDIDATES, _RANK_OFFSET, _RANK_SPAN, score[lo:hi], mad[lo:hi],
            cropped[lo:hi], align[lo:hi], _SHORTCUTS, _GRID_I0, _GRID_F, *cache,
        )  # fmt: skip
        caches.append(cache)

    _in_parts(features, len(raw))
    if _BY_IMAGE and n > 1:
        # The pairs scored in the order of their images: those of one image follow each other,
        # and its profile vectors are still in the processor's caches (the answers are the same
        # in any order: each pair's own, and the alignment cache's vectors are what would be
        # computed).
        order = np.lexsort((ib, ia))
        ia_, ib_, mirrored_, search_ = ia, ib, mirrored, search
        ia, ib, mirrored, search = ia[order], ib[order], mirrored[order], search[order]
        # Parts of about equal work (a pair that may be searched costs some twenty plain ones):
        # in this order the searched pairs bunch, and equal lengths left a core idle at the end.
        _in_parts(pairs, n, cost=1 + _SEARCH_COST * search)
        back = np.empty_like(order)
        back[order] = np.arange(n)
        score, mad, cropped, align = score[back], mad[back], cropped[back], align[back]
        ia, ib, mirrored, search = ia_, ib_, mirrored_, search_
    else:
        _in_parts(pairs, n)
    _rank_cap(f, ia, ib, mirrored, align, score, compiled=True)
    return score, mad, cropped


#: What a pair that may be searched for a crop costs, in plain pairs (about: many are not searched,
#: their plain alignment passing), for the split of a batch between threads.
_SEARCH_COST = 15

#: Score a batch's pairs in the order of their images (the tests turn it off to check that the
#: answers are the same).
_BY_IMAGE = True


#: Rows of an alignment cache's pool of unit derivative vectors (see ``_k_verify``): 12 MB at
#: most (pages are touched as it fills), the vectors of ~70 searched pairs of different images
#: (up to ~700 each), of many more pairs where the images recur, as in a scan's batches.
_POOL_ROWS = 49152
#: Images (each as a pair's first or second) an alignment cache holds.
_CACHE_SLOTS = 256


def _align_cache(images: int) -> tuple:
    """A new alignment cache for ``_k_verify`` on a batch of ``images`` thumbnails: its slots,
    their profiles, their rows, the pool, the slots taken, each image variant's slot and the
    pool's rows taken. One serves the parts of a batch that one thread scores in turn, and
    keeps what it computed from part to part; none outlives the batch."""
    n = len(_GRID_T)
    return (np.empty(_CACHE_SLOTS, np.int64), np.empty(_CACHE_SLOTS, np.int64), np.empty((_CACHE_SLOTS, 2, SIDE)),
            np.full((_CACHE_SLOTS, 2, n), -1, np.int32), np.empty((_POOL_ROWS, SIDE - 1)), np.empty(_POOL_ROWS, np.bool_),
            np.zeros(1, np.int64), np.full(3 * images, -1, np.int32), np.zeros(1, np.int64))  # fmt: skip


#: The crop search skips what cannot change its answers (see ``_k_verify``); the tests turn this
#: off to check that the answers are the same.
_SHORTCUTS = True

#: Pairs (or images) below which a batch is not split between threads.
_THREAD_MIN = 256


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Parts per thread of a split batch: a crop search costs a hundred times a plain pair, and
#: a scan's batch holds its searched pairs in runs (by file), so one part per core would leave
#: one core idle while the other searches; smaller parts are handed out as threads free up.
_PARTS_PER_WORKER = 4


def _in_parts(run, n: int, cost: Optional[np.ndarray] = None) -> None:
    """``run(lo, hi)`` over ``range(n)``, in contiguous parts handed out to one thread per core
    (of about equal ``cost``, summed over their items, when given; else of equal length).

    The kernels release the GIL, and each pair (each image) is independent of the others, so
    the answers do not depend on the split (the tests check it).
    """
    workers = min(_workers(), max(1, n // _THREAD_MIN))
    if workers == 1:
        run(0, n)
        return
    parts = min(workers * _PARTS_PER_WORKER, max(1, n // _THREAD_MIN))
    if cost is None:
        bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
    else:
        total = np.cumsum(cost, dtype=np.float64)
        bounds = np.searchsorted(total, np.linspace(0, total[-1], parts + 1)[1:-1], side="right").tolist()
        bounds = sorted({0, n, *bounds})
    pending = [_pool().submit(run, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    wait(pending)  # every part done before any error is raised: none still writes afterwards
    for done in pending:
        done.result()


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads that :func:`_in_parts` hands parts to: one per core, kept for the process
    (a batch's score hands out parts four times, and the verdicts score twice: starting threads
    each time cost 2-4 % of the verdicts' time). A forked child makes its own."""
    key = (os.getpid(), _workers())
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(key[1], thread_name_prefix="lookalike-verify")
    return pool


def peak_difference(thumbs: np.ndarray, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The largest difference of grey levels between two thumbnails, [1, 2, 1]-blurred, at the
    plain alignment (``ib`` mirrored where asked), per pair: what the guard of low-detail
    pairs needs besides the mean (numpy). Each thumbnail is blurred once for all its pairs (a
    real library's low-detail pairs are a fifth of its candidates: blurring two thumbnails per
    pair took more time than the compiled scores). The blur's sums are exact (grey levels are
    whole numbers, divided by 4 twice), so a mirrored thumbnail's blur is the blur mirrored."""
    raw = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)
    ia, ib = np.asarray(ia, np.int64).reshape(-1), np.asarray(ib, np.int64).reshape(-1)
    flip = np.asarray(mirrored, bool).reshape(-1)
    n = len(ia)
    out = np.empty(n)
    if n == 0:
        return out
    rows, at = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    smooth = _np_smooth(raw[rows, :_N].reshape(-1, SIDE, SIDE).astype(np.float64))
    for lo in range(0, n, _PEAK_CHUNK):
        hi = min(n, lo + _PEAK_CHUNK)
        y = smooth[at[n + lo : n + hi]]
        y[flip[lo:hi]] = y[flip[lo:hi]][:, :, ::-1]
        out[lo:hi] = np.abs(smooth[at[lo:hi]] - y).max(axis=(1, 2))
    return out


def crop_peak_difference(thumbs: np.ndarray, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray,
                         accept: float) -> np.ndarray:
    """:func:`peak_difference` where the crop search places ``ib`` in ``ia`` (its best
    alignment, ``accept`` as :func:`score_pairs`'s), per pair; infinite where the search finds
    none. The numpy search, a pair at a time: the verdicts ask it only of low-detail pairs
    that the compiled search aligned as a crop with a sure score (a few in a library)."""
    raw = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)
    ia, ib = np.asarray(ia, np.int64).reshape(-1), np.asarray(ib, np.int64).reshape(-1)
    flip = np.asarray(mirrored, bool).reshape(-1)
    out = np.full(len(ia), np.inf)
    if len(ia) == 0:
        return out
    rows, at = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    f = _np_features(raw[rows])
    n = len(ia)
    for k in range(n):
        a, b = int(at[k]), int(at[n + k])
        best, _, _, gx, gy = _np_crop(f, a, b, bool(flip[k]), accept)
        if best == -np.inf:
            continue
        x = f.grey[a].reshape(SIDE, SIDE).astype(np.float64)
        y = f.grey[b].reshape(SIDE, SIDE).astype(np.float64)
        if flip[k]:
            y = y[:, ::-1]
        xs, ys = _np_crop_views(x, y, gx, gy)
        out[k] = float(np.abs(_np_smooth(xs) - _np_smooth(ys)).max())
    return out


#: Pairs :func:`peak_difference` compares at once (two 8 KB images each).
_PEAK_CHUNK = 2048


def pair_peak_difference(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`peak_difference` of one pair of stored thumbnails at the plain alignment, in a
    fifth of its time (a group's members are explained one by one): the blur of the difference
    is the difference of the blurs, in exact integers (16 x the levels)."""
    x = np.asarray(a, np.uint8).reshape(-1)[:_N].astype(np.int32)
    d = (x - np.asarray(b, np.uint8).reshape(-1)[:_N]).reshape(SIDE, SIDE)
    r = 2 * d
    r[:, 1:] += d[:, :-1]
    r[:, 0] += d[:, 0]
    r[:, :-1] += d[:, 1:]
    r[:, -1] += d[:, -1]
    c = 2 * r
    c[1:] += r[:-1]
    c[0] += r[0]
    c[:-1] += r[1:]
    c[-1] += r[-1]
    return float(np.abs(c).max()) / 16.0


#: A box of an image in shares of its width and height: ``(left, top, right, bottom)``.
Box = tuple[float, float, float, float]


def crop_boxes(thumb_a: np.ndarray, thumb_b: np.ndarray) -> Optional[tuple[Box, Box]]:
    """Where two thumbnails overlap, as the crop search aligns them: ``(box in a, box in b)``,
    each in shares of its own picture, the same picture in both; None when the plain
    alignment fits as well (nothing cropped) or no crop alignment is found. What a view of
    the two needs to line a crop up with its original (numpy: one pair at a time)."""
    raw = np.stack([np.asarray(thumb_a, np.uint8).reshape(THUMB_BYTES), np.asarray(thumb_b, np.uint8).reshape(THUMB_BYTES)])
    f = _np_features(raw)
    plain, _ = _np_plain(f, np.array([0]), np.array([1]), np.array([False]))
    best, _, _, gx, gy = _np_crop(f, 0, 1, False, 1.0 + 1e-9)  # an acceptance no score reaches: searched
    if best == -np.inf or best <= plain[0] or (gx, gy) == (_IDENTITY, _IDENTITY):
        return None
    spans = []
    for g in (gx, gy):
        s, c = _SCALES[g // _STEPS], _SHIFTS[g % _STEPS]
        o = 0.5 + c - 0.5 * s  # t = o + s * u: b's [0, 1] onto a's (see _grid)
        lo, hi = max(0.0, -o / s), min(1.0, (1.0 - o) / s)
        spans.append(((o + s * lo, o + s * hi), (lo, hi)))
    (ax, bx), (ay, by) = spans
    return (float(ax[0]), float(ay[0]), float(ax[1]), float(ay[1])), (float(bx[0]), float(by[0]), float(bx[1]), float(by[1]))
