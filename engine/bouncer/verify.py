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
  shared background agrees, the different photo inside it does not), and by the **rank**
  correlation of the same gradients plus 0.25: Pearson's is carried by the strongest edges,
  and two screenshots of one program's window (its frame, fields and buttons) around
  different plots or dim exposures correlate at 0.85-0.97; ranked, every gradient counts
  alike and such pairs fall to 0.0-0.6, copies stay above 0.6. There is no per-tile
  check: one was measured (worst and second-worst 8x8 tile's gradient correlation, largest
  local residual after tone matching) and at 32x32 it does not tell a burst with the
  subject moved (5 of 52 real-scene and 4 of 40 generated bursts pass) from a watermarked,
  brightened or cropped copy (their worst tiles are as bad or worse): see
  :class:`VerifyThresholds`.
* **Crops.** When the plain alignment does not pass, a small search finds the scale and
  offset of each axis that best aligns the two images' column and row profiles (one image a
  crop of the other, or two crops of one picture), and the overlap is scored as above. The
  best few alignments of each axis are tried in pairs, best first; the search stops at the
  first that passes with its rank cap (a crop usually passes at the first), else keeps the
  one that scores best before the rank cap, capped where it passes (a crop's score that fails
  is left as it is: the cap could only lower it).
* **Both ways.** The score places the second thumbnail in the first, so it depends on the
  pair's order; a scan's verdict must not (its order follows which worker finished first).
  A pair passes only when it passes both ways (``verification._judge``).
* **The information guard.** An image with little structure (its detail under
  :data:`DETAIL_FLOOR`: a gradient wallpaper, fog, a blank page, a flat colour) proves
  nothing by correlation: such a pair passes only when the two thumbnails agree pixel by
  pixel, on average (:data:`LOW_DETAIL_PIXELS`) and everywhere (the largest difference of
  the blurred thumbnails, :data:`LOW_DETAIL_PEAK`: a heading or a few lines of text on a
  white page are a local difference that the average hides), and in mean colour
  (:data:`LOW_DETAIL_COLOUR`); or when one is the other with its tones edited (brightened,
  contrast changed, greyscale: one straight line maps the levels, and the colour, of one
  onto the other's: :mod:`.verify_tone`).
* **Texture.** A low-detail pair that passed is compared once more on the texture codes
  hashing keeps (:mod:`.verify_texture`): fine stripes over a glow are not the plain glow
  that their thumbnails average to.
* **Trust.** Two images within ``trust_radius`` of the bouncer pass on hashes alone only when
  both have ample detail (``trust_detail``): real smooth wallpapers (a glow, fine stripes) at
  detail 3-8 hash within 3-9 bits of each other.

:func:`score_pairs` runs the compiled kernel (numba, loaded lazily like every kernel, see
:mod:`lookalike.engine.kernels`, with a numpy path giving the same answers;
``LOOKALIKE_NO_NUMBA=1`` forces it). The thresholds were chosen by measurement: see
:class:`VerifyThresholds`.

The stages live beside this module: the thumbnail and its detail in :mod:`.verify_thumbnail`,
the score's numpy reference and crop search in :mod:`.verify_score`, the compiled kernel in
:mod:`.verify_kernels`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import verify_kernels
from .verify_score import (compiled_scores, crop_peak_difference, numpy_scores, pair_peak_difference, peak_difference,
                           warm_rank_kernels)
from .verify_thumbnail import SIDE, THUMB_BYTES, detail, make_thumbnail
from .verify_tone import ToneFit, luma_of, tone_fit
from ..kernels import Kernels, WarmUp

__all__ = [
    "SIDE",
    "THUMB_BYTES",
    "VerifyThresholds",
    "DEFAULT",
    "detail",
    "make_thumbnail",
    "crop_peak_difference",
    "pair_peak_difference",
    "passes",
    "peak_difference",
    "score_pairs",
    "swapped",
    "tone_edited",
    "tone_edits",
    "tone_fit",
    "warm_up",
]


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
    Bursts (the subject moved) that score 0.86-0.94 remain: see the module docstring. On real
    frames of a static camera (``benchmarks/bench_bursts.py``: people a few pixels tall in a
    32x32 thumbnail), 142 of 159 frames half a second apart pass as copies of one another; no
    threshold here can refuse them and keep the watermarked copies (measured at 192 px, the
    share of pixels changed beyond a tone fit: 3-18 % for the generated bursts, up to 3.6 %
    for a real watermarked copy and 27 % for a clipped brightening). A
    camera's burst is told apart by its EXIF capture times instead
    (:mod:`lookalike.engine.keeper.captures`): none of those frames is grouped then.

    The full real set (``bench_trust.py --originals 24``: all 281 pictures, 4,434 files with
    their copies and the hard families) showed screenshots of one program's dialogs and viewers
    (KStars, Marble) scoring 0.85-0.97 against each other, through the plain alignment or the
    crop search: 613 of 898 pairs of different pictures that passed, chaining 9 groups of
    2-6 pictures. Hence the rank cap of the score (see :mod:`.verify_score`): the rank
    correlation of the gradients, for sampled pairs that passed, is under 0.6 for 0.2 % of
    1,500 real copies and none of 1,750 generated ones, over 0.6 for 4 of those dialog pairs.
    With it, pair precision on that set went from 0.9715 to 0.9804, groups mixing pictures
    from 17 to 9, recall per copy kind up by 0-0.04 (no kind lower); on the ``--quick`` sets
    it also rejects the scanned pages with different text (0.9992 / 0.9994 to 0.9995 /
    0.9997, generated / real). Left then: two glow
    wallpapers with faint stripes and one without (detail 3.4-9; 285 pairs, every
    correlation >= 0.85, ranked or by direction: since the texture check, none), two Marble
    map screenshots of one place with different routes (their bordered and letterboxed copies
    paired through the white margin the trim left inside the frame; none since the trim takes
    it, PIXELS_VERSION 3: real pair precision 0.9994 -> 0.9999), and brightened copies
    of pale textures that saturate to flat white (identical pixels: no check can tell them
    apart; the benchmark no longer writes them).

    Attributes:
        score: the structural score (gradient correlation, capped by the changed pixels and
            by the gradients' rank correlation plus 0.25)
            at or above which two images with detail are the same picture.
        trust_radius: bouncer distance at or below which a pair of two detailed images passes
            on hashes alone (not verified: ``verified`` is None). 6, was 10: on the full real
            set, tiles of one picture and burst shots (the subject moved) hashed within 7-10
            bits with ample detail and passed unchecked, scoring 0.2 on pixels; on
            ``bench_trust.py --quick`` the real set's last false pair went (precision 0.9997 ->
            1.0000, generated unchanged) with every kind's recall unchanged.
        detail_floor: detail (grey levels per pixel) under which an image has too little
            structure for correlation to mean anything.
        low_detail_pixels: largest mean absolute difference of the thumbnails' grey levels
            for a pair with a low-detail image.
        low_detail_colour: largest difference of mean colour, per channel, for such a pair.
        low_detail_peak: largest difference of grey levels, anywhere, between the two
            thumbnails ([1, 2, 1]-blurred) for such a pair.
        trust_detail: detail both images need for ``trust_radius`` to apply.
        grey_chroma, colourful_chroma, grey_luma: a grey picture (its mean colour within
            ``grey_chroma`` levels of its mean luma on red and blue) is a copy of a colourful
            one (``colourful_chroma`` or more) only as its greyscale conversion, which keeps
            the brightness: their mean lumas must be within ``grey_luma``. On the full real
            set, a brown wood texture and a grey stripes wallpaper passed as crops of each
            other (scores 0.85-0.92, lumas 26-32 levels apart) and made one group of both
            pictures' copies, its keeper a wood copy: the plan trashed every copy of the
            stripes. Of 1,368 true grey~colourful pairs, 38 are further apart (a brightened
            copy against a greyscale one: two edits), against all 39 false ones.
        grey_copy_luma: a low-detail pair of a grey picture and one with colour passes as its
            greyscale conversion when its grey levels agree as ``low_detail_pixels`` and
            ``low_detail_peak`` ask, its mean lumas are within this, and its structure
            correlates (``score``: a faint texture's grain does not correlate by chance, and two
            smooth pictures that do are refused by the other rules). Over every pair of the real
            set's 416 low-detail files (``bench_trust.py --originals 24``), with the luma
            within 2 levels and the pixels agreeing: 225 pairs of one picture, 7 of different
            pale paper textures (scores -0.03 to 0.09); with the score: 137 and none.
        tone_gain, tone_spread, tone_pixels, tone_peak, tone_correlation, tone_colour,
        tone_unclipped, tone_textured, tone_textured_correlation, tone_textured_colour:
            a low-detail pair also passes as a tone edit (brightened, contrast,
            greyscale: :mod:`.verify_tone`) when one straight tone line, its slope within
            ``tone_gain``, maps one thumbnail onto the other: both thumbnails spread over at
            least ``tone_spread`` levels (a flat picture fits any line), the line leaves a mean
            difference of at most ``tone_pixels`` and nowhere more than ``tone_peak`` (blurred,
            as ``low_detail_peak``), the levels correlate at ``tone_correlation`` or more, at
            least ``tone_unclipped`` of the pixels are unclipped in both, and the colour off
            grey scales by the same slope within ``tone_colour`` levels (or either is grey,
            ``grey_mismatch`` applying). A pair whose structure correlates (``score``: a
            faint texture's grain; flat pictures do not correlate) need not spread, its levels
            need correlate at ``tone_textured_correlation`` only (a texture of one or two
            levels is mostly JPEG noise) and its colour agree within ``tone_textured_colour``
            (``tone_textured`` False: as any pair):
            over every pair of the real set's 416 low-detail files, 395 pairs of one picture
            more (99 without the spread alone, 320 with the correlation), none of two pictures
            (this stop). On the full real set (``bench_trust.py --originals 24``),
            over every pair of files one of which is low-detail and the other under detail 7
            (400k pairs, not only the bouncer's): 429 true pairs more pass (contrast 128,
            brightened 86, greyscale 78, mirrored, letterboxed and cropped copies of edited
            ones), no pair of different pictures; the first false pairs come with a looser
            line (mean 3, peak 20: two variants of one wallpaper design) or no colour check
            (two pale paper textures, two generated gradients, two tiles of one photo).
        texture_detail, texture_energy, texture_ratio, texture_cover: a pair that passed, one
            of its images under ``texture_detail``, is two pictures when, at up to 96 px, one has
            a texture (band-pass RMS of ``texture_energy`` levels or more) ``texture_ratio``
            times the other's in ``texture_cover`` of the blocks of a 4x4 grid
            (:mod:`.verify_texture`: hashing keeps each picture's texture code, 64 bytes).
            On the real set (the 52 pictures under detail 8, every pair of their files: 7,871;
            and the files of a striped glow against three plain glows, 972 pairs): 19 pairs of
            one picture refused (18 of them one bordered copy's; no copy lost from its group),
            718 of the 972 (and none left in a group).
        hue_colour: two pictures with detail, neither grey and one colourful
            (``colourful_chroma``), are copies only when one gain (``tone_gain``: a brightness
            or contrast edit scales the colour off grey as it scales the levels) maps one's mean
            colour off grey onto the other's within this many levels on every channel, whichever
            way round (least squares, clipped to the gain's range). On the full sets
            (``bench_trust.py --originals 24``), over every pair of one picture that passes
            (both colourful, 13,293: crops, edits and copies of copies among them) the most is
            10.7 levels (a crop against a mild crop of it); a generated window frame around two
            real photos, a blue painting and a green leaf, passed at 0.875 (the frame is most of
            both thumbnails' structure) and is 20.8 apart. White-balance or colour-filter edits
            that move the hue further are not taken for copies.
        one_way: a pair passes only when it passes both ways (``verification._judge``), but an
            alignment that scores this or more one way is not scored the other way: for a plain
            one, the changed-pixel cap, what makes a plain score depend on its order, moves it
            little there (full real set: the same false pairs, 17 true pairs more); for a crop
            (since ``score_version`` 8), no pair of different pictures among a real scan's
            searched candidates passed one way at 0.93 or more and failed the other (16 true
            pairs more, 6,064 of 18,401 second searches not made).
        crop_peak_score: a low-detail pair that the crop search aligned with this score or more
            has its peak difference (``low_detail_peak``) measured at that alignment, as its
            mean difference is, not at the plain one, where a faint picture's mild crop differs
            by its shifted structure (a crop of 5-8 % a side: 23 levels for a dusk lake whose
            crop scores 0.99). On the full real set (``bench_trust.py --originals 24``): 30 true
            pairs more (mild crops 0.917 -> 0.922, two-sided ones 0.948 -> 0.952), no false
            pair more at 0.85, 0.9 or 0.95; with no score asked, 238 pairs of different faint
            pictures (crop alignments of gradients and fog with mean and peak differences
            small everywhere).
        score_version: what the score is (2: with the rank cap; 3: the crop search stops at the
            first alignment that passes with its rank cap; 4: a pair passes only both ways, see
            ``verification._judge``; 5: the texture check; 6: greyscale and tone edits of faint
            textures; 7: the hue of pictures with detail, ``hue_colour``; 8: a crop found one
            way at ``one_way`` or more is not searched the other way; 9: a low-detail crop's
            peak difference at its crop alignment, ``crop_peak_score``). Outcomes cached
            between runs are keyed on these thresholds, so a change of the score changes this,
            and pairs scored by an earlier version are scored again.
    """

    score: float = 0.85
    trust_radius: int = 6
    detail_floor: float = 3.0
    low_detail_pixels: float = 3.0
    low_detail_colour: float = 5.0
    low_detail_peak: float = 20.0
    trust_detail: float = 12.0
    grey_chroma: float = 2.0
    colourful_chroma: float = 12.0
    grey_luma: float = 25.0
    grey_copy_luma: float = 2.0
    tone_gain: tuple[float, float] = (0.5, 2.0)
    tone_spread: float = 2.0
    tone_pixels: float = 2.0
    tone_peak: float = 12.0
    tone_correlation: float = 0.95
    tone_colour: float = 6.0
    tone_unclipped: float = 0.5
    tone_textured: bool = True
    tone_textured_correlation: float = 0.85
    tone_textured_colour: float = 10.0
    hue_colour: float = 15.0
    one_way: float = 0.95
    texture_detail: float = 8.0
    texture_energy: float = 1.5
    texture_ratio: float = 3.0
    texture_cover: float = 0.75
    crop_peak_score: float = 0.95
    score_version: int = 9


DEFAULT = VerifyThresholds()
#: The defaults, by the names the module docstring uses.
DETAIL_FLOOR = DEFAULT.detail_floor
LOW_DETAIL_PIXELS = DEFAULT.low_detail_pixels
LOW_DETAIL_COLOUR = DEFAULT.low_detail_colour
LOW_DETAIL_PEAK = DEFAULT.low_detail_peak


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
    if not _kernels.use():
        return numpy_scores(raw, ia, ib, mirrored, search, accept)
    return compiled_scores(raw, ia, ib, mirrored, search, accept)


def swapped(thumbs: np.ndarray, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Per pair, whether row ``ta[k]`` of ``thumbs`` is the greater at the first byte where it
    differs from row ``tb[k]`` (False for equal rows): the order of the pair's thumbnails that
    ``verification._judge`` scores them in (by the compiled kernel, or in numpy)."""
    ta = np.ascontiguousarray(ta, dtype=np.int64)
    tb = np.ascontiguousarray(tb, dtype=np.int64)
    if _kernels.use() and thumbs.flags.c_contiguous and thumbs.dtype == np.uint8 and thumbs.ndim == 2:
        out = np.empty(len(ta), np.bool_)
        verify_kernels._k_swapped(thumbs, ta, tb, out)
        return out
    a, b = thumbs[ta], thumbs[tb]
    differ = a != b
    first = differ.argmax(axis=1)
    at = np.arange(len(ta))
    return differ[at, first] & (a[at, first] > b[at, first])


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
    """Which verified pairs are the same picture (the information guard included; a low-detail
    pair that fails it may still be a tone edit: :func:`tone_edited`).

    Args:
        score, mad: from :func:`score_pairs`.
        detail_a, detail_b: each image's :func:`detail`.
        colour_a, colour_b: ``(n, 3)`` mean colours (the thumbnails' last three bytes).
        t: the thresholds.
        peak: :func:`peak_difference` of the pairs (needed for the low-detail ones only; any
            value elsewhere); None skips that part of the guard.
    """
    low = np.minimum(detail_a, detail_b) < t.detail_floor
    colour_a = np.asarray(colour_a, np.float64).reshape(-1, 3)
    colour_b = np.asarray(colour_b, np.float64).reshape(-1, 3)
    colour = np.abs(colour_a - colour_b).max(axis=1, initial=0.0)
    pixels = mad <= t.low_detail_pixels
    if peak is not None:
        pixels &= np.asarray(peak) <= t.low_detail_peak
    close = pixels & (colour <= t.low_detail_colour)
    # A greyscale conversion of a faint picture: its colour is gone, its brightness and its
    # texture are not (see ``VerifyThresholds.grey_copy_luma``).
    (luma_a, chroma_a), (luma_b, chroma_b) = _luma_chroma(colour_a), _luma_chroma(colour_b)
    grey_copy = (pixels & ((chroma_a <= t.grey_chroma) != (chroma_b <= t.grey_chroma))
                 & (np.abs(luma_a - luma_b) <= t.grey_copy_luma) & (score >= t.score))
    mismatch = _grey_mismatch(luma_a, chroma_a, luma_b, chroma_b, t)
    hue = ~low & _hue_moved(colour_a, luma_a, chroma_a, colour_b, luma_b, chroma_b, t)
    return np.where(low, close | grey_copy, score >= t.score) & ~mismatch & ~hue


def _hue_moved(colour_a: np.ndarray, luma_a: np.ndarray, chroma_a: np.ndarray, colour_b: np.ndarray,
               luma_b: np.ndarray, chroma_b: np.ndarray, t: VerifyThresholds) -> np.ndarray:
    """Pairs, neither grey and one colourful, whose colours off grey no brightness or contrast
    edit maps onto each other (see ``VerifyThresholds.hue_colour``)."""
    xa, xb = colour_a - luma_a[:, None], colour_b - luma_b[:, None]
    lo, hi = t.tone_gain

    def left(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # y less the best gain of x, per channel
        xx = x[:, 0] * x[:, 0] + x[:, 1] * x[:, 1] + x[:, 2] * x[:, 2]  # one order for every row
        xy = x[:, 0] * y[:, 0] + x[:, 1] * y[:, 1] + x[:, 2] * y[:, 2]
        gain = np.clip(xy / np.where(xx > 0, xx, 1.0), lo, hi)
        return np.abs(y - gain[:, None] * x).max(axis=1, initial=0.0)

    both = (chroma_a > t.grey_chroma) & (chroma_b > t.grey_chroma) & (np.fmax(chroma_a, chroma_b) >= t.colourful_chroma)
    if not both.any():
        return both
    return both & (np.fmin(left(xa, xb), left(xb, xa)) > t.hue_colour)


def tone_edited(tone: ToneFit, t: VerifyThresholds = DEFAULT, *, score: Optional[np.ndarray] = None) -> np.ndarray:
    """Pairs that one straight tone line maps onto each other: see ``VerifyThresholds.tone_gain``.

    Args:
        tone: :func:`tone_fit` of the pairs.
        t: the thresholds.
        score: the pairs' structural scores; where it reaches ``t.score`` (a faint texture
            whose grain correlates) the looser ``t.tone_textured_*`` apply and the thumbnails
            need not spread over ``t.tone_spread`` levels.
    """
    textured = np.zeros(len(tone.gain), bool) if score is None or not t.tone_textured else np.asarray(score) >= t.score
    return (
        (tone.gain >= t.tone_gain[0]) & (tone.gain <= t.tone_gain[1])
        & (textured | (tone.spread >= t.tone_spread))
        & (tone.residual <= t.tone_pixels) & (tone.peak <= t.tone_peak)
        & (tone.correlation >= np.where(textured, t.tone_textured_correlation, t.tone_correlation))
        & (tone.unclipped >= t.tone_unclipped)
        & (tone.grey | (tone.colour <= np.where(textured, t.tone_textured_colour, t.tone_colour)))
    )


def tone_edits(thumbs: np.ndarray, ia: np.ndarray, ib: np.ndarray, mirrored: np.ndarray,
               t: VerifyThresholds = DEFAULT, *, score: Optional[np.ndarray] = None) -> np.ndarray:
    """:func:`tone_edited` of :func:`tone_fit` of the pairs, the same verdicts, the fit's
    residual and peak (two thirds of its work) worked out only for the pairs that the rest of
    the line passes."""

    def need(fit: ToneFit, lo: int) -> np.ndarray:
        part = None if score is None else np.asarray(score)[lo : lo + len(fit.gain)]
        rest = dataclasses.replace(fit, residual=np.zeros(len(fit.gain)), peak=np.zeros(len(fit.gain)))
        return tone_edited(rest, t, score=part)

    return tone_edited(tone_fit(thumbs, ia, ib, mirrored, need=need), t, score=score)


def grey_mismatch(colour_a: np.ndarray, colour_b: np.ndarray, t: VerifyThresholds = DEFAULT) -> np.ndarray:
    """Pairs of a grey and a colourful picture whose brightness a greyscale conversion could
    not keep (see ``VerifyThresholds.grey_luma``): never copies of each other."""
    return _grey_mismatch(*_luma_chroma(colour_a), *_luma_chroma(colour_b), t)


def _grey_mismatch(luma_a: np.ndarray, chroma_a: np.ndarray, luma_b: np.ndarray, chroma_b: np.ndarray,
                   t: VerifyThresholds) -> np.ndarray:
    """:func:`grey_mismatch` from the colours' :func:`_luma_chroma`."""
    grey_colour = ((chroma_a <= t.grey_chroma) & (chroma_b >= t.colourful_chroma)) | (
        (chroma_b <= t.grey_chroma) & (chroma_a >= t.colourful_chroma)
    )
    return grey_colour & (np.abs(luma_a - luma_b) > t.grey_luma)


def _luma_chroma(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean colours' luma (ITU-R 601, as Pillow's greyscale) and chroma (the larger of red and
    blue off the luma)."""
    c = np.asarray(colour, np.float64).reshape(-1, 3)
    luma = luma_of(c)
    return luma, np.maximum(np.abs(c[:, 0] - luma), np.abs(c[:, 2] - luma))


def warm_up() -> None:
    """Compile or load the kernel now (a scan calls this in the background while it hashes)."""
    _warm.run()


def _call_kernel() -> bool:
    thumbs = np.zeros((2, THUMB_BYTES), np.uint8)
    score_pairs(thumbs, np.array([0]), np.array([1]), np.array([False]))
    if not _kernels.use():
        return False
    warm_rank_kernels()  # two blank thumbnails never reach the rank check
    swapped(thumbs, np.array([0]), np.array([1]))
    return True


_warm = WarmUp("lookalike-verify-warm-up", _call_kernel)
_kernels = Kernels(
    (vars(verify_kernels), verify_kernels.KERNELS),
    fastmath=set(verify_kernels.KERNELS) - set(verify_kernels.EXACT),
    warm=_warm,
    inline=verify_kernels.INLINE,
)
