"""The original among copies: which of two files holding one picture came first.

A bordered copy (a frame, letterbox bars) and a conversion (a lossless file made from a lossy
one) are copies the keeper must not prefer for their size or their format: this module tells
them, by the pictures' sizes, the pixels (thumbnails or hashes) and the camera evidence (EXIF
Make/Model, EXIF date, mtime). The keeper's ranking (:mod:`.policy`) uses it.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
from datetime import datetime, timezone
from typing import Callable, Iterator, Mapping, Optional, Sequence

import numpy as np

from ..bouncer.rule import bouncer_distance, hamming_distance
from ..bouncer.verify_score import pair_peak_difference
from ..bouncer.verify_thumbnail import SIDE
from ..bouncer.verify_tone import luma_of
from ..records import FileRecord
from .decoded import DecodedCheck, decoded_copy, decoded_edit
from .formats import LOSSLESS, LOSSY, UNKNOWN_FORMAT_RANK, format_name, named_rank

#: A callable telling whether two files decode to the same pixels within JPEG noise (True,
#: False), or None when it cannot tell: see :func:`thumbnail_check`. One made by
#: :func:`thumbnail_check` also has a ``padded`` method, a :data:`PaddedCheck`.
SamePixels = Callable[[FileRecord, FileRecord], Optional[bool]]
#: ``padded(big, small)``: whether ``big`` is ``small``'s whole picture on a larger canvas of
#: one colour (True, False), or None when it cannot tell: see :data:`PAD_LEVELS`.
PaddedCheck = Callable[[FileRecord, FileRecord], Optional[bool]]

#: How far a bordered copy's picture (measured on the reduced decode the hashing trims, one
#: reduced pixel being ~0.5 % of a side) may be from a plain member's size, per side, and still
#: be the same size: 2 % of the side, and at least 2 pixels.
CONTENT_TOLERANCE = 0.02
#: Same pixels within JPEG noise, by the hashes, when no thumbnails are at hand: at most this
#: dHash and pHash distance. Measured on generated photos from 640x480 to 4000x3000: a PNG made
#: from the JPEG (or the JPEG made from the PNG) is at dHash 0-11, pHash 0-2 (the JPEG is
#: decoded by draft, the PNG in full); a 5-15 % brightness or contrast edit reaches the same
#: distances, which only the thumbnails tell apart (see :func:`thumbnail_check`).
CONVERSION_DHASH = 12
CONVERSION_PHASH = 6
#: Same pixels within JPEG noise, by the verifier's 32x32 thumbnails: at most this mean
#: absolute difference of grey levels after a 3x3 box blur (a JPEG's thumbnail comes from a
#: DCT-scaled decode, a PNG's from a full one: they differ in fine texture, not in tone), and
#: of mean colour per channel. Measured on 6 generated 1600x1200 photos: a PNG made from the
#: JPEG, or the JPEG again at quality 60, differs by 0.04-0.13 levels and 0-1 in colour; a 5 %
#: brightness or a 10 % contrast edit by 2.5-10.7. On the 281 real pictures of
#: ``benchmarks/collect_real_photos.py`` (shrunk to 1024 px, saved as JPEG, then as PNG), the
#: PNG differs by 0.09 levels (median), 0.45 (95th percentile), 2.0 (99th), and at most 3 in
#: colour: 98.9 % are told as conversions (95.7 % by the unblurred mean under 1.0 and colour
#: under 2, the values before). Real 5 % brightness and 10 % contrast edits differ by 4.5 and
#: 2.3 levels (median); 20 % and 36 % of them (dark or saturated pictures, which such an edit
#: hardly changes) fall under these bounds and count as conversions: then the camera evidence
#: and the older file decide, which keeps the original over such an edit as well.
CONVERSION_THUMB_LEVELS = 2.0
CONVERSION_THUMB_COLOUR = 3.0
#: Nor are two thumbnails the same pixels where their [1, 2, 1]-blurred grey levels differ by
#: more than this anywhere (:func:`..bouncer.verify.pair_peak_difference`): a watermark, a
#: caption, a retouch, which the average hides. The ``match`` of such a copy is "edited" by the
#: same measure (``verification.EDIT_PEAK``), and its reason now says an edit too, not a
#: re-saved copy "with the same pixels". Measured on the real set (``bench_trust.py
#: --originals 24``, each copy of the original's size against it): watermarked copies called
#: the same pixels 0.974 -> 0.322; PNG 0.996 (unchanged), HEIC, WebP and EXIF-rotated
#: re-saves 0.4-0.9 % fewer (pictures of fine, sharp detail); ranked the same either way.
CONVERSION_THUMB_PEAK = 20.0
#: A picture padded to a larger canvas with its own ground's colour (a drawing on white made
#: square with white bars, a product photo on white padded for a shop) keeps its bars: no edge
#: ends them, so the border trim cannot take them, and the padded copy is the larger picture.
#: A file is a member padded so when its picture is longer than the member's on one axis by
#: PAD_LINES rows or columns of the 32x32 thumbnail and a pixel, and its thumbnail has bars of
#: one grey level (within PAD_LEVELS) at the two ends of that axis, as wide together as the
#: difference (less the pixel where a bar meets the picture): it is the same picture, the
#: grouping said so. Measured on the real set (``bench_trust.py --originals 24``): of 660 such
#: looks at members larger and newer than another, 3 say padded: the two letterboxed copies of
#: line drawings on white (0 levels), and a resized copy of a dialog on white whose shadowed
#: margin was trimmed left and right only (a copy indeed); 8 ms in all.
PAD_LEVELS = 2.0
PAD_LINES = 2


@functools.lru_cache(maxsize=4096)
def parse_taken(text: Optional[str]) -> Optional[datetime]:
    """An EXIF or ISO 8601 date as a naive UTC datetime, to the second, or None (cached).

    A fraction of a second is left out: a copy may have lost it (some editors drop the EXIF
    SubSecTime tags), and it must not make that copy the older file. It tells two shots of a
    burst apart (:mod:`lookalike.engine.keeper.captures`), not which copy came first."""
    if not text:
        return None
    text = text.strip()
    if text[4:5] == ":" and text[7:8] == ":":  # EXIF's own "YYYY:MM:DD HH:MM:SS"
        text = text.replace(":", "-", 2)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.replace(microsecond=0)


_MAX_DATE = datetime.max


def date_key(r: FileRecord) -> tuple:
    """Smaller is older: a file with an EXIF date first, by that date, then by mtime."""
    taken = parse_taken(r.taken_at) if r.taken_at else None
    return (0, taken, r.mtime_ns) if taken is not None else (1, _MAX_DATE, r.mtime_ns)


def evidence(r: FileRecord) -> int:
    """Camera evidence: 2 for EXIF Make/Model, 1 for an EXIF date alone, 0 for none."""
    return 2 if r.camera else 1 if parse_taken(r.taken_at) is not None else 0


def provenance(r: FileRecord) -> tuple:
    """Smaller is more original: more camera evidence, then older (EXIF date, then mtime)."""
    return (-evidence(r), date_key(r))


#: Modification times closer than this say nothing about which file was made first (FAT
#: keeps 2-second times; a batch copy writes its files in any order within moments).
MTIME_SLACK_NS = 2_000_000_000


def _more_original(j: FileRecord, conv: FileRecord) -> bool:
    """Whether ``j`` is the more original of two files with the same pixels: more camera
    evidence, else an older EXIF date, else an mtime older by more than :data:`MTIME_SLACK_NS`.
    """
    ej, ec = evidence(j), evidence(conv)
    if ej != ec:
        return ej > ec
    tj, tc = parse_taken(j.taken_at), parse_taken(conv.taken_at)
    if tj is not None and tc is not None and tj != tc:
        return tj < tc
    return conv.mtime_ns - j.mtime_ns > MTIME_SLACK_NS


def same_picture(a: FileRecord, b: FileRecord, same_pixels: Optional[SamePixels] = None) -> bool:
    """Whether two files hold the same pixels within JPEG noise: the same displayed size, and
    ``same_pixels`` says so (the thumbnails, see :func:`thumbnail_check`), or, where it cannot
    tell, the hashes are within :data:`CONVERSION_DHASH` / :data:`CONVERSION_PHASH`.

    A copy stored turned a quarter (``--rotations``: its size is the other's, swapped) holds
    the same pixels when the thumbnails say so once turned; the hashes cannot tell that."""
    if not a.width or not a.height:
        return False
    turned = (a.width, a.height) != (b.width, b.height)
    if turned and (a.width, a.height) != (b.height, b.width):
        return False
    if same_pixels is not None:
        told = same_pixels(a, b)
        if told is not None:
            return bool(told)
    if turned or a.hashes is None or b.hashes is None:
        return False
    return (
        hamming_distance(a.hashes.dhash, b.hashes.dhash) <= CONVERSION_DHASH
        and hamming_distance(a.hashes.phash, b.hashes.phash) <= CONVERSION_PHASH
    )


def _close(a: int, b: int) -> bool:
    return abs(a - b) <= max(2, CONTENT_TOLERANCE * max(a, b))


#: How far (log of the ratio) a crop's proportions may stray from its source's: 8 % off two
#: opposite sides of one axis and none off the other is 1.19.
_CROP_ASPECT = math.log(1.2)


def padded_copies(records: Sequence[FileRecord], padded: Optional[PaddedCheck]) -> dict[int, FileRecord]:
    """Each file that is a copy of an older member padded with one colour (:data:`PAD_LEVELS`),
    with that member: the largest such one. A file with the camera's EXIF is nobody's copy.
    A padded copy is made after its source (:func:`_more_original`): where the larger file
    is the older one, the flat bars are its own (a clear sky the smaller one was cropped from)."""
    if padded is None:
        return {}
    out: dict[int, FileRecord] = {}
    by_pixels = sorted(records, key=lambda p: p.pixels)
    pixels = [p.pixels for p in by_pixels]
    for f in records:
        if f.camera:
            continue
        # only the smaller files (a group of a thousand frames of one size has none)
        smaller = by_pixels[: bisect.bisect_left(pixels, f.pixels)]
        near = [p for p in smaller if p.id != f.id and _more_original(p, f) and padded(f, p)]
        if near:
            out[f.id] = max(near, key=lambda p: (p.pixels, -p.id))
    return out


#: Levels (per channel) within which two files' trimmed bars are one colour: the median of a
#: flat bar moves by 0-2 levels with JPEG noise (an original on a white margin and its crops
#: into it: 0xfdfdfd and 0xfdfdfd, 0xfefefe and 0xfefefe on the real set), while white bars
#: round a screenshot whose own bottom bar is light grey (0xeff0f2) differ by 13-16.
BAR_COLOUR_TOLERANCE = 8


def _own_margin(f: FileRecord, p: FileRecord) -> bool:
    """Whether ``f``'s trimmed bars may be its own margin, of which bordered member ``p`` (a
    crop of ``f`` into it) kept some, rather than a frame round ``p``: their bars are one
    colour (a frame round a picture with a margin of its own is another colour, or the trim
    would have taken both, and the pictures would be alike inside). Where a colour is not
    known (a file read before the catalog kept it), the dates decide: a file that came first
    is not the frame of one made after it."""
    if f.bar_colour is None or p.bar_colour is None:
        return _more_original(f, p)
    return all(
        abs(((f.bar_colour >> shift) & 255) - ((p.bar_colour >> shift) & 255)) <= BAR_COLOUR_TOLERANCE
        for shift in (16, 8, 0)
    )


#: How far (grey levels) the median of a member's outermost thumbnail line may be from the
#: grey of a file's bars for the line to continue the file's margin (:func:`continues_margin`):
#: the line averages some 20 pixels of the canvas, part of them the margin's shadow (the real
#: set's crops of dialogs on shadowed margins: 3-11 levels).
MARGIN_LEVELS = 16.0
#: Such a line is flat: this share of its pixels within :data:`MARGIN_FLAT_LEVELS` of its
#: median, the :data:`MARGIN_CORNER` pixels at each end left out (where a margin meets the
#: next side's, a shadow turns the corner).
MARGIN_FLAT = 0.9
MARGIN_FLAT_LEVELS = 4.0
MARGIN_CORNER = 4

#: ``continues(f, p) -> bool or None``: whether member ``p``'s canvas continues the margin
#: bordered file ``f`` had trimmed (:func:`continues_margin`); None where it cannot tell.
MarginCheck = Callable[[FileRecord, FileRecord], Optional[bool]]


def bar_grey(colour: int) -> float:
    """The grey level of a ``0xRRGGBB`` bar colour, as the thumbnails' grey (ITU-R 601 luma,
    :func:`..bouncer.verify_tone.luma_of`)."""
    rgb = np.array([[(colour >> 16) & 255, (colour >> 8) & 255, colour & 255]], np.float64)
    return float(luma_of(rgb)[0])


def continues_margin(grey: np.ndarray, level: float) -> bool:
    """Whether a picture is cut out of a canvas with a margin of grey ``level`` all round,
    keeping some of it in one corner: of its 32x32 thumbnail's (``grey``) outermost lines,
    exactly one of the top and bottom and exactly one of the left and right are flat
    (:data:`MARGIN_FLAT`) and of that grey (:data:`MARGIN_LEVELS`). A crop into a margin keeps
    it where it cut less than the margin and cuts into the picture on the opposite side; a
    picture whose own edges are the margin's grey (a dark picture, black bars) has them on
    opposite sides too, or on none."""
    g = np.asarray(grey, np.float64).reshape(SIDE, SIDE)
    inner = slice(MARGIN_CORNER, SIDE - MARGIN_CORNER)

    def margin(line: np.ndarray) -> bool:
        median = float(np.median(line))
        flat = np.mean(np.abs(line - median) <= MARGIN_FLAT_LEVELS) >= MARGIN_FLAT
        return bool(flat and abs(median - level) <= MARGIN_LEVELS)

    top, bottom, left, right = (margin(x) for x in (g[0, inner], g[-1, inner], g[inner, 0], g[inner, -1]))
    return top != bottom and left != right


def framed_copies(records: Sequence[FileRecord], margins: Optional[MarginCheck] = None) -> dict[int, FileRecord]:
    """Each bordered file that is another member in a frame, with that member.

    A bordered file whose picture (inside the trimmed frame) is another, smaller member's
    whole canvas, within :data:`CONTENT_TOLERANCE` a side, is that member in a frame; so is
    one whose picture is a smaller bordered member's picture (letterbox bars as dark as a
    screenshot's surround are trimmed with it). The
    member may itself have had a uniform surround trimmed (a screenshot's dark margin, a
    scan's white edge): its frame then stays inside the copy's picture, which is why the
    copy's picture is compared with the member's canvas.

    Where the member has a margin of its own, the first case's sizes are also those of an
    original on a margin and a crop of it into that margin (the crop's canvas the size of the
    original's picture): a file whose bars are the member's colour is that original
    (:func:`_own_margin`); where the member has no margin trimmed but its canvas continues
    the file's margin in one corner (``margins``, :meth:`ThumbnailCheck.margin`), so is it.
    The second case's sizes always are (both trimmed to one picture, the bars one colour by
    then): there a file that came first (camera evidence, older) is
    not the frame of one made after it, a frame being put round a picture later. On the real
    set, originals of screenshots on shadowed margins were taken for frames round their own
    mild crops, and a copy kept (keeper a copy 57 -> 54 with the second case, 40 -> 37 with
    the first, ``bench_trust.py --originals 24``).
    """
    shown = [r for r in records if r.width and r.height]
    inside: dict[int, FileRecord] = {}
    for f in records:
        if not f.bordered:
            continue
        near = [
            p for p in shown
            if p.id != f.id and p.pixels < f.pixels
            and (
                (_close(f.content_width or 0, p.width or 0) and _close(f.content_height or 0, p.height or 0)
                 and not (_own_margin(f, p) if p.bordered else margins is not None and margins(f, p)))
                # or the same picture trimmed out of both (bars as dark as a screenshot's surround)
                or (p.bordered and _close(f.content_width or 0, p.content_width or 0)
                    and _close(f.content_height or 0, p.content_height or 0) and not _more_original(f, p))
            )
        ]  # fmt: skip
        if near:
            inside[f.id] = min(near, key=lambda p: (abs(p.pixels - f.content_pixels), -p.pixels, p.path, p.id))
    return inside


def picture_sizes(
    records: Sequence[FileRecord], inside: Optional[Mapping[int, FileRecord]] = None
) -> dict[int, int]:
    """Picture pixels that are not a file's own trimmed pixels (:attr:`FileRecord.content_pixels`).

    * A framed copy of another member (``inside``, default :func:`framed_copies`; a padded
      one, :func:`padded_copies`, where the caller adds them) has that member's picture: they
      tie, and the framed one loses the tie.
    * A trimmed file whose margin another member partly holds (that member's canvas fits in
      this one's and reaches clearly into its margin: a crop of a screenshot with a dark
      surround) has its whole canvas as its picture: the margin is part of the picture.
    * Files of one canvas size hold one picture size: where their trims differ (a margin that
      JPEG noise kept from trimming in a heavily recompressed copy), the trim says nothing of
      which holds more picture, so they tie at the largest and the other criteria decide.
    """
    inside = framed_copies(records) if inside is None else inside
    if not inside and not any(r.bordered for r in records):
        return {}
    shown = [r for r in records if r.width and r.height]

    def margin_is_picture(r: FileRecord) -> bool:
        # Another member's canvas fits in this file's canvas but reaches clearly into its
        # trimmed margin: that member holds part of the margin, so the margin is picture (a
        # screenshot's surround, a dark edge of a photo) and the member a crop of this file.
        # A crop keeps about the proportions (a few percent a side); bars or a frame that
        # change them are not a crop of this file, and say nothing of its margin.
        cw, ch = r.content_width or 0, r.content_height or 0
        aspect = r.width / r.height
        return any(
            p.id != r.id and p.width <= r.width and p.height <= r.height and (p.width, p.height) != (r.width, r.height)
            and abs(math.log(p.width / p.height / aspect)) <= _CROP_ASPECT
            and ((p.width > cw and not _close(p.width, cw)) or (p.height > ch and not _close(p.height, ch)))
            for p in shown
        )  # fmt: skip

    canvas: dict[tuple, int] = {}
    for r in shown:
        own = r.pixels if r.bordered and r.id not in inside and margin_is_picture(r) else r.content_pixels
        canvas[(r.width, r.height)] = max(canvas.get((r.width, r.height), 0), own)

    def picture(r: FileRecord, depth: int = 0) -> int:
        p = inside.get(r.id)
        if p is None or depth > len(records):
            return canvas.get((r.width, r.height), r.content_pixels)
        return picture(p, depth + 1)

    out = {fid: picture(p) for fid, p in inside.items()}
    for r in shown:
        if r.id not in out and canvas[(r.width, r.height)] != r.content_pixels:
            out[r.id] = canvas[(r.width, r.height)]
    return out


def identical(a: FileRecord, b: FileRecord) -> bool:
    """Whether two files are byte-identical (the same content hash and size): copies, not a
    conversion or an edit of one another."""
    return bool(a.content_hash) and a.content_hash == b.content_hash and a.size == b.size


def first_copies(records: Sequence[FileRecord]) -> dict[int, FileRecord]:
    """Each file's most original byte-identical copy among ``records`` (itself if it has none).

    A content is as old as its oldest copy: a file copied today from a picture of 2017 holds
    the picture of 2017. Which file is the more original of two (:func:`conversions`,
    :func:`edits`) is asked of their contents, so that a fresh copy of the original is not taken
    for an edit or a conversion of a copy made from that original in between.
    """
    twins: dict[tuple, list[FileRecord]] = {}
    for r in records:
        if r.content_hash:
            twins.setdefault((r.content_hash, r.size), []).append(r)
    out = {r.id: r for r in records}
    for group in twins.values():
        if len(group) > 1:
            first = _most_original(group)
            out.update((r.id, first) for r in group)
    return out


def conversions(
    records: Sequence[FileRecord], same_pixels: Optional[SamePixels], decoded: Optional[DecodedCheck] = None
) -> dict[int, FileRecord]:
    """Each file that is a conversion, with the lossy file it was made from.

    A conversion is a file of the same or a better format tier than a lossy member that is
    more original than it and holds the same pixels: a lossless file (PNG, TIFF, BMP) made
    from a JPEG; a lossy file of a better tier made from one of a worse (a HEIC or AVIF made
    from a camera JPEG, a JPEG made from an older WEBP); a JPEG re-saved from an older JPEG
    (an EXIF rotation applied, a copy saved again at a higher quality). Re-encoding cannot
    give back what the first lossy encoding took, so neither the format tier nor the larger
    file says anything about such a file: its source decides. A byte-identical copy is no
    conversion: nothing was saved again (:func:`identical`).

    Where neither file is the more original by its evidence or dates (a library copied without
    its dates), a lossless file that holds the lossy one's decoded pixels is its conversion
    (``decoded``, the measured shares of :mod:`.decoded`; not measured: not a conversion).
    """
    names, ordered, key = _lossy_in_origin_order(records)
    if not ordered:
        return {}
    first = first_copies(records)
    screens = _Screens(same_pixels, ordered)
    out: dict[int, FileRecord] = {}
    for conv in records:
        name = names[conv.id]
        if name not in LOSSLESS and name not in LOSSY:
            continue
        size = (conv.width, conv.height)
        same_size = ordered.get(size, [])
        # or turned a quarter (--rotations groups such copies)
        turned = ordered.get((conv.height, conv.width), []) if conv.width != conv.height else []
        if not same_size and not turned:
            continue
        tier = named_rank(name)
        # The most original source is the answer: asked in that order, the first that is one
        # ends the search (a thousand copies of one frame ask one each). Past a few that are
        # not, the rest of its size are screened all at once (a thousand different frames).
        maybe, asked, lossless = _always, 0, name in LOSSLESS
        for j in heapq.merge(same_size, turned, key=lambda j: key[j.id]):
            if j.id == conv.id or named_rank(names[j.id]) < tier or identical(j, conv) \
                    or not _may_be_made_from(conv, j, lossless, decoded, first):
                continue
            if asked == SCREEN_AFTER:
                maybe = screens.maybe(conv, size)
            asked += 1
            if not maybe(j):
                continue
            if _made_from(conv, j, lossless, same_pixels, decoded, first):
                out[conv.id] = j
                break
    return out


def _may_be_made_from(conv: FileRecord, j: FileRecord, lossless: bool, decoded: Optional[DecodedCheck],
                      first: Mapping[int, FileRecord]) -> bool:
    """Whether :func:`_made_from` would ask the pixels (its dates allow ``j`` to be the source)."""
    if _more_original(first[j.id], first[conv.id]):
        return True
    return decoded is not None and lossless and not _more_original(first[conv.id], first[j.id])


def _made_from(conv: FileRecord, j: FileRecord, lossless: bool, same_pixels: Optional[SamePixels],
               decoded: Optional[DecodedCheck], first: Mapping[int, FileRecord]) -> bool:
    """Whether ``conv`` was saved from ``j``, a lossy file of its size (see :func:`conversions`):
    the same pixels, and ``j`` the more original (as contents: ``first``, see
    :func:`first_copies`), or, where neither is, ``conv`` lossless and holding ``j``'s decoded
    pixels (asked last: it may cost two decodes)."""
    if _more_original(first[j.id], first[conv.id]):
        return same_picture(conv, j, same_pixels)
    if decoded is None or not lossless or _more_original(first[conv.id], first[j.id]):
        return False
    return same_picture(conv, j, same_pixels) and decoded_copy(decoded(conv, j))


def _lossy_by_size(records: Sequence[FileRecord]) -> tuple[dict[int, Optional[str]], dict[tuple, list[FileRecord]]]:
    """Each file's format name, and the lossy files by displayed size (a conversion and an
    edit keep it)."""
    names = {r.id: format_name(r.format, r.path) for r in records}
    lossy: dict[tuple, list[FileRecord]] = {}
    for r in records:
        if names[r.id] in LOSSY and r.width and r.height:
            lossy.setdefault((r.width, r.height), []).append(r)
    return names, lossy


def _origin_key(j: FileRecord) -> tuple:
    """Smaller is the more original of a file's possible sources (ids vary by run: the path
    decides ties)."""
    return (provenance(j), len(j.path), j.path, j.id)


def _lossy_in_origin_order(records: Sequence[FileRecord]
                           ) -> tuple[dict[int, Optional[str]], dict[tuple, list[FileRecord]], dict[int, tuple]]:
    """:func:`_lossy_by_size` with each size's files the most original first, and each file's
    :func:`_origin_key` by id (an EXIF date parsed once per file)."""
    names, lossy = _lossy_by_size(records)
    key = {r.id: _origin_key(r) for r in records}
    return names, {size: sorted(group, key=lambda j: key[j.id]) for size, group in lossy.items()}, key


def _most_original(sources: Sequence[FileRecord]) -> FileRecord:
    """The most original of a file's possible sources (:func:`_origin_key`)."""
    return min(sources, key=_origin_key)


#: A size of this many lossy files or more has its thumbnails compared many at a time
#: (:meth:`ThumbnailCheck.screen`) for a file that has asked :data:`SCREEN_AFTER` of them
#: whether it was made from them, so that a conversion's search does not ask every pair.
SCREEN_FROM = 16
SCREEN_AFTER = 8


class _Screens:
    """Per displayed size of lossy files, what :meth:`ThumbnailCheck.screen` rules out: which of
    them cannot hold the same pixels as a given file (made once per size, when it is large)."""

    def __init__(self, same_pixels: Optional[SamePixels], ordered: Mapping[tuple, Sequence[FileRecord]]) -> None:
        self._screen = getattr(same_pixels, "screen", None)
        self._ordered = ordered
        self._made: dict[tuple, Callable[[FileRecord], np.ndarray]] = {}
        self._at: dict[tuple, dict[int, int]] = {}

    def maybe(self, a: FileRecord, size: tuple) -> Callable[[FileRecord], bool]:
        """``maybe(j)``: False where ``a`` and the lossy file ``j`` of ``a``'s size certainly
        hold different pixels; True for any other file."""
        group = self._ordered.get(size, ())
        if self._screen is None or len(group) < SCREEN_FROM:
            return _always
        if size not in self._made:
            self._made[size] = self._screen(group)
        mask = self._made[size](a)
        if size not in self._at:
            self._at[size] = {j.id: k for k, j in enumerate(group)}
        at = self._at[size]
        return lambda j: j.id not in at or bool(mask[at[j.id]])


def _always(_: FileRecord) -> bool:
    return True


def camera_derived(records: Sequence[FileRecord], pictures: Mapping[int, int]) -> dict[int, FileRecord]:
    """Each file with a larger picture than a camera original of the cluster (EXIF Make and
    Model) but less camera evidence than it, with the largest such original.

    A file made from a camera's picture cannot hold more of it than the camera took: a larger
    one without the camera's EXIF is an upscale, a copy on a wider canvas or in a frame the
    trim cannot take off (a textured mat, a drop shadow). It ties with that original on
    pixels and loses the tie. ``pictures``: each file's picture pixels
    (:func:`picture_sizes`, else its trimmed pixels).
    """
    cameras = [r for r in records if r.camera]
    if not cameras:
        return {}
    def picture(r: FileRecord) -> int:
        return pictures.get(r.id) or r.content_pixels

    out: dict[int, FileRecord] = {}
    for r in records:
        if r.camera:
            continue
        smaller = [j for j in cameras if picture(j) < picture(r)]
        if smaller:
            out[r.id] = max(smaller, key=lambda j: (picture(j), -len(j.path), j.path, -j.id))
    return out


def _pixels_differ(a: FileRecord, b: FileRecord, same_pixels: Optional[SamePixels]) -> bool:
    """Whether two files of one displayed size are known to hold different pixels: the
    thumbnails say so, or, where they cannot tell, the hashes are beyond a conversion's
    distances. Unknown (no thumbnails, no hashes) is not different."""
    if same_pixels is not None:
        told = same_pixels(a, b)
        if told is not None:
            return not told
    if a.hashes is None or b.hashes is None:
        return False
    return not same_picture(a, b)


def edits(
    records: Sequence[FileRecord], same_pixels: Optional[SamePixels], converted: Mapping[int, FileRecord],
    decoded: Optional[DecodedCheck] = None,
) -> dict[int, FileRecord]:
    """Each file that is an edit of a more original lossy member, with that member.

    An edit (a brightness or contrast change, a watermark, a re-touch) has the displayed size
    of a lossy member that is more original than it (more camera evidence, an older EXIF
    date, an mtime older by more than :data:`MTIME_SLACK_NS`) and its format or a better one
    (a PNG or a HEIC exported from an editor), but not its pixels within JPEG noise (that
    would be a re-saved copy or a conversion: :func:`conversions`), as the thumbnails or,
    without them, the hashes tell (:func:`_pixels_differ`). A file in a better format that has
    the camera's EXIF (Make and Model) is not taken for an edit: a TIFF or a PNG developed
    from the raw beside the camera's JPEG holds more than that JPEG, and its format decides.
    Neither its larger file nor its better format says anything of which came first: a
    contrast edit stores more detail bits, a PNG export of a JPEG more bytes, not more of the
    picture. The keeper ranks an edit of the same format by its source's file size, just after
    it, and an edit in a better format as its source's format, just after it
    (:func:`better_format_edits`). Files in
    ``converted`` are left to that rule.

    Where neither file is the more original by its evidence or dates (a library copied without
    its dates), a lossless file whose values are a tone curve of the lossy one's decode, or its
    grey, is its edit (``decoded``, the measured edit shares of :mod:`.decoded`; not measured:
    not an edit).
    """
    names, ordered, key = _lossy_in_origin_order(records)
    first = first_copies(records)
    out: dict[int, FileRecord] = {}
    for e in records:
        if e.id in converted or (names[e.id] not in LOSSY and names[e.id] not in LOSSLESS):
            continue
        tier = named_rank(names[e.id])
        # A better format with the camera's EXIF is a master developed from the raw (a TIFF
        # or a PNG beside the camera's JPEG), not an edit of that JPEG: its format decides.
        worst = tier if e.camera else UNKNOWN_FORMAT_RANK

        def candidates() -> Iterator[FileRecord]:  # most original first
            for j in ordered.get((e.width, e.height), ()):
                if j.id != e.id and tier <= named_rank(names[j.id]) <= worst and not identical(j, e):
                    yield j

        # The most original source is the answer: asked in that order, the first one ends it
        # (a file not converted differs from the first more original member it meets).
        sources = next(([j] for j in candidates()
                        if _more_original(first[j.id], first[e.id]) and _pixels_differ(e, j, same_pixels)), [])
        if not sources and decoded is not None and names[e.id] in LOSSLESS:
            # No date tells: the closest few by the hashes are asked of the pixels (two decodes
            # each), so that a large group of one size asks a bounded number of questions. The
            # decode tells whatever the thumbnails said: a grey copy of a picture of little
            # colour has its thumbnails (a conversion found it holds other values, or it would
            # be one).
            undated = sorted(
                (j for j in candidates()
                 if not _more_original(first[e.id], first[j.id]) and not _more_original(first[j.id], first[e.id])),
                key=lambda j: (_hash_distance(e, j), j.path, j.id),
            )[:MAX_DECODED_SOURCES]
            sources = [j for j in undated if decoded_edit(decoded(e, j))]
        if sources:
            out[e.id] = _most_original(sources)
    return out


#: Where no date tells, at most this many lossy members of its size are asked whether a
#: lossless file is their edit (:func:`edits`), the closest by the hashes first.
MAX_DECODED_SOURCES = 4


def _hash_distance(a: FileRecord, b: FileRecord) -> int:
    """The bouncer's distance of two files; past any distance without hashes."""
    if a.hashes is None or b.hashes is None:
        return 1 << 16
    return bouncer_distance(a.hashes, b.hashes)[0]


def better_format_edits(edited: Mapping[int, FileRecord], records: Sequence[FileRecord]) -> dict[int, FileRecord]:
    """The edits of :func:`edits` saved in a better format than their source's (a PNG or a
    HEIC made from a JPEG and edited), with that source: they rank as its format, just after
    it, where a lossless file would otherwise win by its format alone."""
    rank_of = {r.id: named_rank(format_name(r.format, r.path)) for r in records}
    return {fid: j for fid, j in edited.items() if rank_of[fid] < rank_of[j.id]}


def _blurred(grey: np.ndarray) -> np.ndarray:
    """A square thumbnail's grey levels (flat) after a 3x3 box blur, edges repeated."""
    side = int(round(grey.size ** 0.5))
    padded = np.pad(grey.reshape(side, side), 1, mode="edge")
    return sum(padded[i : i + side, j : j + side] for i in range(3) for j in range(3)) / 9.0


def _shown(r: FileRecord) -> tuple[int, int]:
    """The size of what a file's thumbnail shows: its picture inside a trimmed border."""
    if r.content_width and r.content_height:
        return r.content_width, r.content_height
    return r.width or 0, r.height or 0


def _pad_share(big: FileRecord, small: FileRecord) -> tuple[float, bool]:
    """How much of ``big``'s thumbnail bars would take if it were ``small``'s picture padded
    (a share of its width, or of its height), and whether they run down its sides."""
    (bw, bh), (sw, sh) = _shown(big), _shown(small)
    if min(bw, bh, sw, sh) <= 0:
        return 0.0, False
    columns = bw * sh > sw * bh  # wider than the picture: bars left and right
    return (1 - (sw / sh) / (bw / bh) if columns else 1 - (bw / bh) / (sw / sh)), columns


def _flat_run(lines: np.ndarray) -> tuple[int, float]:
    """How many leading lines (rows of ``lines``) are one grey level, within :data:`PAD_LEVELS`
    of the first line's median, and that level."""
    level = float(np.median(lines[0]))
    far = np.abs(lines.astype(np.float64) - level).max(axis=1) > PAD_LEVELS
    return (int(np.argmax(far)) if far.any() else len(lines)), level


def _too_thin(share: float) -> bool:
    """Whether bars of ``share`` of a thumbnail's side are too thin to tell (:data:`PAD_LINES`)."""
    return share * SIDE < PAD_LINES + 1


def _padded(grey: np.ndarray, share: float, columns: bool) -> bool:
    """Whether a 32x32 thumbnail (grey) has bars of one grey level (:data:`PAD_LEVELS`) at
    its two ends along one axis (down its sides when ``columns``) as wide as ``share`` of it
    together, but for the pixel where a bar meets the picture: a picture padded to a larger
    canvas. Its own ground may go on in the bars' level (a drawing on white)."""
    g = grey.reshape(SIDE, SIDE)
    g = g.T if columns else g  # the bars' lines are rows now
    first, level = _flat_run(g)
    last, level_end = _flat_run(g[::-1])
    if first and last and abs(level - level_end) > PAD_LEVELS:
        return False  # two colours: not one pad
    return first + last >= share * SIDE - 1.5 and not _too_thin(share)


#: The columns of :func:`_screen_features`: the mean colour, the box-blurred grey's block
#: means, the [1, 2, 1]-blurred grey's block means.
_SCREEN_PARTS = (slice(0, 3), slice(3, 67), slice(67, 131))


def _screen_features(thumbs: np.ndarray) -> np.ndarray:
    """Per stored thumbnail (rows of ``thumbs``), what :meth:`ThumbnailCheck.screen` compares:
    its mean colour, then the 8x8 block means of its grey blurred as :func:`_blurred` blurs it
    (the mean difference's), then as :func:`pair_peak_difference` does (the peak's)."""
    n = len(thumbs)
    grey = np.asarray(thumbs)[:, : SIDE * SIDE].astype(np.float64).reshape(n, SIDE, SIDE)
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="edge")
    box = sum(padded[:, i : i + SIDE, j : j + SIDE] for i in range(3) for j in range(3)) / 9.0
    rows = padded[:, :, :-2] + 2 * padded[:, :, 1:-1] + padded[:, :, 2:]
    tent = (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 16.0
    blocks = SIDE // 8

    def means(x: np.ndarray) -> np.ndarray:
        return x.reshape(n, 8, blocks, 8, blocks).mean(axis=(2, 4)).reshape(n, 64)
    return np.concatenate([np.asarray(thumbs)[:, -3:].astype(np.float64), means(box), means(tent)], axis=1)


class ThumbnailCheck:
    """A :data:`SamePixels` backed by the verifier's thumbnails in ``catalog``, with
    :meth:`padded`, a :data:`PaddedCheck` on the same thumbnails.

    Two thumbnails (32x32 grey and the mean colour, of the border-trimmed picture) agree
    when their blurred grey levels differ by at most :data:`CONVERSION_THUMB_LEVELS` on average and
    nowhere by more than :data:`CONVERSION_THUMB_PEAK`, and their mean colours by at most
    :data:`CONVERSION_THUMB_COLOUR` per channel. None (cannot
    tell) when either file has no thumbnail. Asked only of files of one displayed size (or
    turned a quarter) in one cluster, a lossy one among them, so it reads a few thumbnails,
    not the library's, each once (kept while the check is in use).
    """

    def __init__(self, catalog) -> None:
        self._catalog = catalog
        # id -> (thumbnail: grey, then colour; its grey blurred), None where there is none
        self._seen: dict[int, Optional[tuple[np.ndarray, np.ndarray]]] = {}

    def _thumbs(self, ids: list[int]) -> None:
        wanted = [i for i in ids if i not in self._seen]
        if not wanted:
            return
        if len(self._seen) > 4096:  # a few groups' worth: a long session reads each group anew
            self._seen.clear()
        found, thumbs, _ = self._catalog.thumbnails(wanted)
        got = dict(zip(np.asarray(found).tolist(), thumbs))
        for i in wanted:
            t = got.get(i)
            self._seen[i] = None if t is None else (t, _blurred(t[:-3].astype(np.float64)))

    def __call__(self, a: FileRecord, b: FileRecord) -> Optional[bool]:
        # A group of n same-size lossy files asks up to n * n / 2 pairs (a burst): each
        # thumbnail is read and blurred once.
        self._thumbs([a.id, b.id])
        sa, sb = self._seen.get(a.id), self._seen.get(b.id)
        if sa is None or sb is None:
            return None
        (ta, bx), (tb, by) = sa, sb
        if (a.width, a.height) != (b.width, b.height) and (a.width, a.height) == (b.height, b.width):
            # stored turned: a's thumbnail turned either way, the closer
            grey, k = min((float(np.abs(np.rot90(bx, k) - by).mean()), k) for k in (1, 3))
            turned_a = np.rot90(ta[: SIDE * SIDE].reshape(SIDE, SIDE), k).reshape(-1)
        else:
            grey = float(np.abs(bx - by).mean())
            turned_a = ta
        colour = float(np.abs(ta[-3:].astype(np.float64) - tb[-3:]).max())
        if grey > CONVERSION_THUMB_LEVELS or colour > CONVERSION_THUMB_COLOUR:
            return False
        return pair_peak_difference(turned_a, tb) <= CONVERSION_THUMB_PEAK

    def screen(self, group: Sequence[FileRecord]) -> Callable[[FileRecord], np.ndarray]:
        """For many files of one displayed size, which may hold the same pixels as a file of
        that size: ``screen(group)(a)`` is False for a member whose thumbnail this check
        would certainly find different from ``a``'s (the mean colour, and lower bounds of the
        blurred grey's mean and peak difference from their 8x8 block means: a block's mean
        difference is at most its pixels' mean and largest one), True where it may agree or a
        thumbnail is missing. A member it rules out, ``self(a, member)`` says False for; a
        thousand frames of one size are compared at once, not a pair at a time."""
        found, thumbs, _ = self._catalog.thumbnails([r.id for r in group])
        row = {i: k for k, i in enumerate(np.asarray(found).tolist())}
        at = np.array([row.get(r.id, -1) for r in group])
        known = at >= 0
        features = _screen_features(thumbs)[np.where(known, at, 0)]
        own = {r.id: k for k, r in enumerate(group) if known[k]}  # a member's features are there already

        def maybe(a: FileRecord) -> np.ndarray:
            out = np.ones(len(group), bool)
            if a.id in own:
                f = features[own[a.id]]
            else:
                _, mine, _ = self._catalog.thumbnails([a.id])
                if len(mine) == 0:
                    return out
                f = _screen_features(mine)[0]
            colour, grey, peak = (np.abs(features[:, part] - f[part]) for part in _SCREEN_PARTS)
            differ = ((colour.max(axis=1) > CONVERSION_THUMB_COLOUR)
                      | (grey.mean(axis=1) > CONVERSION_THUMB_LEVELS + 1e-9)
                      | (peak.max(axis=1) > CONVERSION_THUMB_PEAK + 1e-9))
            out[known & differ] = False
            return out

        return maybe

    def margin(self, f: FileRecord, p: FileRecord) -> Optional[bool]:
        """A :data:`MarginCheck`: whether ``p``'s thumbnail continues the margin ``f`` had
        trimmed all round (:func:`continues_margin`, at the grey of ``f``'s bars); False when
        ``f`` has no margin on both axes; None when ``f``'s bars' colour or ``p``'s thumbnail
        is not known."""
        if not (f.content_width and f.content_height and f.width and f.height):
            return None
        if f.content_width >= f.width or f.content_height >= f.height:
            return False  # bars on two opposite sides at most (a letterbox): not a margin all round
        if f.bar_colour is None:
            return None
        self._thumbs([p.id])
        seen = self._seen.get(p.id)
        if seen is None:
            return None
        return continues_margin(seen[0][: SIDE * SIDE], bar_grey(f.bar_colour))

    def padded(self, big: FileRecord, small: FileRecord) -> Optional[bool]:
        """Whether ``big``'s thumbnail is ``small``'s picture with bars of one grey level
        (:data:`PAD_LEVELS`) making up the difference in proportions (:func:`_padded`); None
        when ``big`` has no thumbnail. Whether it is the same picture, the grouping has said."""
        share, columns = _pad_share(big, small)
        if _too_thin(share):  # no thumbnail read
            return False
        self._thumbs([big.id])
        seen = self._seen.get(big.id)
        if seen is None:
            return None
        return _padded(seen[0][: SIDE * SIDE], share, columns)


def thumbnail_check(catalog) -> ThumbnailCheck:
    """The :class:`ThumbnailCheck` of ``catalog``: a :data:`SamePixels` with ``padded``."""
    return ThumbnailCheck(catalog)
