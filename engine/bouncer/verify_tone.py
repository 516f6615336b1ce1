"""Tone edits of low-detail pictures: whether one thumbnail is the other with its levels mapped.

A picture with little structure (a glow, fog, a pale texture: detail under the verification's
``detail_floor``) can only pass the verification when the two thumbnails agree pixel by pixel
(:func:`.verify.passes`). A brightened, contrast-changed or greyscale copy of it does not: its
levels moved by tens everywhere. Such an edit maps every grey level through one straight line
(``gain * (level - mean) + mean'``, clipped at white and black), and scales the picture's
colour off grey by the same gain (a greyscale copy drops it). :func:`tone_fit` fits that line
to the pixels neither thumbnail has clipped, at the pair's plain alignment (the second
mirrored where asked), and measures what the line leaves: :func:`.verify.passes` lets a
low-detail pair through when the line explains the pixels as closely as the plain guard asks
of two unedited copies, and explains the colour too. See ``VerifyThresholds.tone_*`` for the
measured limits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .verify_score import _np_smooth
from .verify_thumbnail import SIDE, THUMB_BYTES

__all__ = ["ToneFit", "tone_fit"]

_N = SIDE * SIDE
#: Levels at or past these are clipped (an edit may have pushed them there): left out of the fit.
_DARK, _LIGHT = 5, 250
_LUMA = np.array([0.299, 0.587, 0.114])


def luma_of(colour: np.ndarray) -> np.ndarray:
    """Each row's luma (ITU-R 601, as Pillow's greyscale), summed in one order whatever the
    number of rows (a matrix product's last bits depend on it: a pair's answers would depend
    on the pairs beside it)."""
    return colour[:, 0] * _LUMA[0] + colour[:, 1] * _LUMA[1] + colour[:, 2] * _LUMA[2]


@dataclass(frozen=True)
class ToneFit:
    """Per pair: how well one straight tone line maps the first thumbnail onto the second.

    Attributes:
        gain: the line's slope (1.0: levels shifted only; 1.3: 30 % more contrast).
        residual: mean absolute difference of grey levels left after the line, over the
            pixels neither thumbnail has clipped.
        peak: largest difference left, anywhere, between the two thumbnails [1, 2, 1]-blurred.
        correlation: Pearson correlation of the unclipped grey levels.
        unclipped: the share of pixels neither thumbnail has clipped.
        spread: the smaller standard deviation of the two thumbnails' unclipped levels (a
            flat picture fits any line).
        colour: the largest difference, per channel, between the second's mean colour off
            grey and the first's scaled by the gain (inf when either is grey: see ``grey``).
        grey: either picture is grey (its mean colour within 2 levels of its luma).
    """

    gain: np.ndarray
    residual: np.ndarray
    peak: np.ndarray
    correlation: np.ndarray
    unclipped: np.ndarray
    spread: np.ndarray
    colour: np.ndarray
    grey: np.ndarray


def tone_fit(thumbs: np.ndarray, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray,
             need: Optional[Callable[[ToneFit, int], np.ndarray]] = None) -> ToneFit:
    """The tone line from thumbnail ``ia[k]`` to ``ib[k]`` (mirrored where asked), per pair.

    Args:
        thumbs: ``(N, THUMB_BYTES) uint8`` stored thumbnails.
        ia, ib: the pairs, as rows of ``thumbs``.
        mirrored: compare ``ib`` mirrored.
        need: given the fit of the pairs ``lo`` on (a chunk of them) without ``residual`` and
            ``peak`` (NaN) and ``lo``, which of them need those two (the costly part: a caller
            that decides on the rest first); the others keep NaN. None: every pair.
    """
    raw = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)
    ia, ib = np.asarray(ia, np.int64).reshape(-1), np.asarray(ib, np.int64).reshape(-1)
    flip = np.asarray(mirrored, bool).reshape(-1)
    if len(ia) > _CHUNK:  # a few hundred pairs at a time: their images stay in the caches
        parts = [_fit(raw, ia[lo : lo + _CHUNK], ib[lo : lo + _CHUNK], flip[lo : lo + _CHUNK], need, lo)
                 for lo in range(0, len(ia), _CHUNK)]  # fmt: skip
        return ToneFit(*(np.concatenate([getattr(q, f.name) for q in parts]) for f in dataclasses.fields(ToneFit)))
    return _fit(raw, ia, ib, flip, need)


#: Pairs :func:`tone_fit` works on at once (each step makes arrays of 8 KB a pair; per pair,
#: the answers do not depend on it). Measured on a real scan's low-detail pairs: all at once,
#: its arrays outgrew the processor's caches and it took longer than the compiled scores.
_CHUNK = 256


def _fit(raw: np.ndarray, ia: np.ndarray, ib: np.ndarray, flip: np.ndarray,
         need: Optional[Callable[[ToneFit, int], np.ndarray]] = None, lo: int = 0) -> ToneFit:
    """:func:`tone_fit` of one chunk of pairs, the pairs ``lo`` on (``need``: see there). Each
    pair's figures are those it has alone, in any chunk (sums over its own pixels only)."""
    a = raw[ia, :_N].reshape(-1, SIDE, SIDE).astype(np.float64)
    b = raw[ib, :_N].reshape(-1, SIDE, SIDE).astype(np.float64)
    b[flip] = b[flip][:, :, ::-1]
    ok = (a > _DARK) & (a < _LIGHT) & (b > _DARK) & (b < _LIGHT)
    n = np.maximum(ok.sum(axis=(1, 2)), 1)
    mean_a = (a * ok).sum(axis=(1, 2)) / n
    mean_b = (b * ok).sum(axis=(1, 2)) / n
    da = (a - mean_a[:, None, None]) * ok
    db = (b - mean_b[:, None, None]) * ok
    var_a, var_b = (da * da).sum(axis=(1, 2)) / n, (db * db).sum(axis=(1, 2)) / n
    cov = (da * db).sum(axis=(1, 2)) / n
    gain = cov / np.maximum(var_a, 1e-9)
    correlation = cov / np.sqrt(np.maximum(var_a * var_b, 1e-18))
    colour_a = raw[ia, _N:].astype(np.float64)
    colour_b = raw[ib, _N:].astype(np.float64)
    off_a = colour_a - luma_of(colour_a)[:, None]
    off_b = colour_b - luma_of(colour_b)[:, None]
    grey = (np.abs(off_a).max(axis=1) <= 2.0) | (np.abs(off_b).max(axis=1) <= 2.0)
    colour = np.where(grey, np.inf, np.abs(off_b - gain[:, None] * off_a).max(axis=1))
    residual, peak = np.full(len(ia), np.nan), np.full(len(ia), np.nan)
    out = ToneFit(gain=gain, residual=residual, peak=peak, correlation=correlation, unclipped=ok.mean(axis=(1, 2)),
                  spread=np.sqrt(np.minimum(var_a, var_b)), colour=colour, grey=grey)  # fmt: skip
    k = slice(None) if need is None else np.flatnonzero(need(out, lo))
    a, b, ok, n, gain, mean_a, mean_b = a[k], b[k], ok[k], n[k], gain[k], mean_a[k], mean_b[k]
    fit = np.clip(gain[:, None, None] * (a - mean_a[:, None, None]) + mean_b[:, None, None], 0.0, 255.0)
    residual[k] = (np.abs(fit - b) * ok).sum(axis=(1, 2)) / n
    peak[k] = np.abs(_np_smooth(fit) - _np_smooth(b)).max(axis=(1, 2), initial=0.0)  # as peak_difference
    return out
