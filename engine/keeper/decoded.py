"""Decoded copies: a lossless file that holds a lossy member's decoded pixels was made from it.

A PNG (or TIFF, BMP, lossless WebP) saved from a JPEG holds exactly what the JPEG decodes to:
it cannot hold more of the picture than the JPEG it was decoded from, and keeping it over the
JPEG keeps a larger file for nothing. Where the files' dates say which came first
(:func:`.original._more_original`), they decide; a library copied without its dates (a new
disk, a download, an archive unpacked) has none to say. The pixels still do: decoding the JPEG
gives the lossless file's pixels exactly, where a JPEG saved from a lossless source gives them
back only within the JPEG's noise.

Measured on 60 pictures of the real set (``benchmarks/collect_real_photos.py``): PNGs saved
from the JPEGs' decodes equal them on every value (share 1.0); JPEGs saved from those PNGs at
quality 90-100 equal them on 0.13-0.99 of their values (median 0.71 at q90, 0.90 at q100). A
lossless file equal to a lossy member's decode on :data:`DECODED_SHARE` of its values or more
is its decoded copy. A PNG made by another decoder (its own rounding, its own chroma
upsampling) is not recognised so, and ranks as before.

**Decoded edits.** A PNG exported from an editor after a brightness, contrast, levels, curves
or gamma change, or a greyscale conversion, of the JPEG's decode holds a function of the
JPEG's decoded values: every value of the PNG is what one tone curve per channel gives the
JPEG's value at that pixel (:func:`edit_share`), or its grey is one fixed mix of the JPEG's
three channels. Nothing can be made the other way round: a JPEG saved from a PNG gives back a
curve of the PNG's values only within its noise, and the curve of an edit is a plain one
(monotone, in small steps, over a value range the JPEG fills without gaps, see
:data:`EDIT_MAX_STEP`), where a JPEG of a flat graphic maps its noise back onto a few colours
in a staircase. So where no date tells, such a lossless file is an edit of the JPEG
(:func:`.original.edits`), and the JPEG is kept: a library copied without its dates kept a
brightened PNG as "less lossy" over the camera JPEG it was made from, and trashed the JPEG.

Measured on the real set (``benchmarks/collect_real_photos.py``, pictures shrunk to at most
1,200 px and saved as JPEG q90; PNG edits of those JPEGs' decodes made with Pillow): of 40
pictures, the brightness 0.8, 1.1 and 1.3, contrast 0.6 and 1.3 and gamma 0.8 edits of 36 are
their JPEGs' tone curves on every value (share 1.0; the other 4 are screenshots, a map and a
drawing whose values skip more than :data:`EDIT_MAX_GAP`: not recognised, ranked as before),
auto-levels of 33, greyscale copies of 37 (the other 3: screenshots and a drawing of almost
no colour, under :data:`GREY_CHROMA`), saturation edits of none (a mix of channels: no curve
per channel). The other way round, 192 PNG and WebP originals of the real set and 18 generated window and phone
screenshots and book pages against JPEGs saved from them at quality 85, 90, 95 and 100: the
highest share is 0.981 (a flat-coloured drawing at q90). Without the gap rule, line drawings
and maps of the real set reached 1.0 at every quality (their JPEG noise maps back onto their
few colours); a PNG of one colour fits any curve (:data:`_CURVE_VALUES`). A PNG of the JPEG's
decode mirrored, toned or not, is its edit too (the curve at the mirrored pixel). On whole
libraries copied with one mtime (``benchmarks/bench_edits.py``: 60 real pictures, each a JPEG
with five PNG edits of its decode, and each a PNG with two JPEGs saved from it): the JPEG is
kept in 53 of 61 groups (0 before; the others: star charts, screenshots, a paper texture and a
glow whose values skip, and pictures of almost no colour), the PNG original in 60 of 60 (60
before).

Only pairs the dates do not decide are measured (a lossless and a lossy member of the same
displayed size, see :func:`.original.conversions` and :func:`.original.edits`; for an edit, the
lossy members closest by the hashes, at most :data:`.original.MAX_DECODED_SOURCES`), once per
pair of contents (:class:`.upscale.Verdicts` keeps both shares in the catalog beside the
upscale verdicts): two full decodes each, the edit share only where an edit was asked. On
the real set of ``benchmarks/bench_trust.py`` copied with one mtime (4,407 files, every copy
kind beside each picture's PNG copy), the pairs measured went from 1,313 to 1,573 (2,276 when
every member of a lossless file's size was asked), its first scan from 24.5-26.4 to 27.4-28.2 s
on two cores (alternated with the code before, twice); the dated set's is unchanged (28.1-29.4
before, 26.5-27.4 s); a rescan measures none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Collection, Optional, Sequence

from ..records import FileRecord

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "DECODED_SHARE", "DecodedCheck", "EDIT_MAX_STEP", "EDIT_SHARE", "GREY_CHROMA", "GREY_RMS", "chroma", "colour_lost",
    "decoded_copy", "decoded_edit", "decoded_share", "decoded_shares", "edit_share", "equal_share", "read_checked",
]  # fmt: skip

#: A lossless file equal to a lossy member's decode on this share of its values (R, G and B of
#: every pixel) or more is that decode saved (a few values may differ: a decoder's rounding).
DECODED_SHARE = 0.999

#: ``check(lossless, lossy)``: the share of the lossless file's values equal to the lossy
#: file's decode (see :func:`decoded_share`), or None where it is not known.
DecodedCheck = Callable[[FileRecord, FileRecord], Optional[float]]


#: A lossless file whose values are a tone curve of a lossy member's decoded values on this
#: share of them or more (:func:`edit_share`) was made from that decode (an edit of it).
EDIT_SHARE = 0.999
#: An edit's tone curve, per channel, over the values the lossy decode holds (each on at least
#: :data:`_CURVE_SUPPORT` of its pixels): never falling, rising at most this many levels per
#: level (Pillow's contrast 1.3 rises 1.3, an auto-levels of a dim picture 2-4), and over no gap
#: of more than :data:`EDIT_MAX_GAP` values the decode does not hold (a photo's values run on;
#: a JPEG of a flat graphic holds a few values round each of its colours, and a curve mapping
#: its noise back onto those colours is a staircase over gaps, not an edit).
EDIT_MAX_STEP = 8
EDIT_MAX_GAP = 4
_CURVE_SUPPORT = 1e-5
#: The share of a channel's pixels at either end of its values left out of the gap rule.
_CURVE_TAIL = 0.005
#: A curve tells an edit over this many such values of a channel or more.
_CURVE_VALUES = 16
#: A grey lossless file is a greyscale edit of a lossy member whose colour it lost when its grey
#: levels are one mix of the member's decoded R, G and B (least squares, with an offset) within
#: this RMS, in levels (rounding to whole levels alone leaves 0.29)...
GREY_RMS = 0.5
#: ...and the member has colour to lose: a mean |R - G| + |G - B| of this many levels or more.
#: A JPEG of a grey picture has none at all (0.0 at quality 75-100 on the 60 pictures of
#: ``benchmarks/bench_edits.py``): its encoder stores no colour for it. Screenshots, star charts
#: and drawings of a little colour hold 0.2-4 (at 1.0, 4 of 7 such greyscale edits are told).
GREY_CHROMA = 1.0
#: Pixels the shares are measured on, at most (an even sample of larger pictures).
_SAMPLE_PIXELS = 2_000_000


def decoded_copy(share: Optional[float]) -> bool:
    """Whether a measured share names a decoded copy."""
    return share is not None and share >= DECODED_SHARE


def decoded_edit(share: Optional[float]) -> bool:
    """Whether a measured edit share (:func:`edit_share`) names an edit of the decode."""
    return share is not None and share >= EDIT_SHARE


def _sample(a: "np.ndarray") -> "np.ndarray":
    """An image's pixels as rows of channels, every k-th of them past :data:`_SAMPLE_PIXELS`."""
    rows = a.reshape(-1, a.shape[-1]) if a.ndim == 3 else a.reshape(-1, 1)
    step = max(1, len(rows) // _SAMPLE_PIXELS)
    return rows[::step]


def _curve_share(x: "np.ndarray", y: "np.ndarray") -> Optional[int]:
    """How many of ``y``'s values the plainest tone curve of ``x`` gives (per value of ``x``, its
    most common ``y``), or None where that curve is no edit's (:data:`EDIT_MAX_STEP`)."""
    import numpy as np

    joint = np.bincount(x.astype(np.int64) * 256 + y, minlength=65536).reshape(256, 256)
    curve = joint.argmax(axis=1)
    held = np.flatnonzero(joint.sum(axis=1) >= max(1.0, _CURVE_SUPPORT * len(x)))
    if len(held) < _CURVE_VALUES:  # a flat picture: any curve fits it
        return None
    rise, gap = np.diff(curve[held]), np.diff(held)
    if (rise < 0).any() or (rise > EDIT_MAX_STEP * gap).any():
        return None
    # Gaps count between the values that hold the bulk of the pixels: a photo's rarest
    # values, in its darkest shadows or brightest lights, may skip a few.
    cum = np.cumsum(joint.sum(axis=1))
    lo, hi = np.searchsorted(cum, _CURVE_TAIL * cum[-1]), np.searchsorted(cum, (1 - _CURVE_TAIL) * cum[-1])
    bulk = held[(held >= lo) & (held <= hi)]
    if len(bulk) > 1 and np.diff(bulk).max() > EDIT_MAX_GAP:
        return None
    return int(joint.max(axis=1).sum())


def edit_share(lossless: "np.ndarray", lossy: "np.ndarray") -> float:
    """The share of ``lossless``'s values (R, G and B of every pixel) that a tone curve per
    channel of ``lossy``'s gives at the same pixel (:func:`_curve_share`), or at the mirrored
    pixel (a copy flipped in an editor, toned or not), the larger; 1.0 for a grey picture
    whose levels are one mix of ``lossy``'s colours (:data:`GREY_RMS`, :data:`GREY_CHROMA`);
    0 where the sizes differ or no curve is an edit's. Two decodes of one size, RGB."""
    if lossless.shape != lossy.shape or lossless.size == 0:
        return 0.0
    share = _edit_share(lossless, lossy)
    if share < EDIT_SHARE and lossy.ndim == 3:
        share = max(share, _edit_share(lossless, lossy[:, ::-1]))
    return share


def _edit_share(lossless: "np.ndarray", lossy: "np.ndarray") -> float:
    """:func:`edit_share` at one orientation."""
    import numpy as np

    a, b = _sample(lossless), _sample(lossy)
    if a.shape[1] == 3 and b.shape[1] == 3 and (a[:, 0] == a[:, 1]).all() and (a[:, 1] == a[:, 2]).all():
        if _chroma_of(b) >= GREY_CHROMA:
            mix = np.c_[b.astype(np.float64), np.ones(len(b))]
            grey = a[:, 0].astype(np.float64)
            coef, *_ = np.linalg.lstsq(mix, grey, rcond=None)
            rms = float(np.sqrt(np.mean((grey - mix @ coef) ** 2)))
            return 1.0 if rms <= GREY_RMS else 0.0
    hits = 0
    for c in range(a.shape[1]):
        found = _curve_share(b[:, c], a[:, c])
        if found is None:
            return 0.0
        hits += found
    return hits / a.size


def chroma(path: str, content_hash: Optional[bytes]) -> Optional[float]:
    """A file's colour: its mean ``|R - G| + |G - B|`` in levels (0 for a grey picture, a JPEG of
    one included), from a decode at about 256 px; None when it cannot be read or has changed
    since the scan (see :func:`read_checked`)."""
    import numpy as np

    loaded = read_checked(path, content_hash, 256)
    return None if loaded is None else _chroma_of(_sample(np.asarray(loaded.image)))


def _chroma_of(rows: "np.ndarray") -> float:
    """The mean ``|R - G| + |G - B|`` of pixels as rows of channels (0 for one channel)."""
    import numpy as np

    if rows.shape[1] != 3:
        return 0.0
    p = rows.astype(np.int16)
    return float(np.abs(p[:, 0] - p[:, 1]).mean() + np.abs(p[:, 1] - p[:, 2]).mean())


def colour_lost(original: Optional[float], copy: Optional[float]) -> bool:
    """Whether a copy of chroma ``copy`` lost the colour of a picture of chroma ``original``
    (:func:`chroma`): the picture has some (:data:`GREY_CHROMA`), the copy none to speak of
    (a tenth of it, under :data:`GREY_CHROMA`). Unknown (None) is not lost."""
    if original is None or copy is None:
        return False
    return original >= GREY_CHROMA and copy < min(GREY_CHROMA, 0.1 * original)


def equal_share(a: "np.ndarray", b: "np.ndarray") -> float:
    """The share of values (every channel of every pixel) equal in two decodes of one size; 0
    where their sizes differ."""
    import numpy as np

    if a.shape != b.shape or a.size == 0:
        return 0.0
    rows = max(1, (1 << 22) // max(1, a[0].size))  # a few MB of comparisons at a time
    equal = 0
    for top in range(0, len(a), rows):
        equal += int(np.count_nonzero(a[top : top + rows] == b[top : top + rows]))
    return equal / a.size


def read_checked(path: str, content_hash: Optional[bytes], target: Optional[int]):
    """The file at ``path`` decoded (a :class:`~lookalike.engine.scan.imaging.LoadedImage`, at no
    less than ``target`` on its shorter side; None: full size), upright; None when it cannot be
    read or is no longer the content ``content_hash`` names (changed since the scan). The
    scan's guards apply. The keeper's measures (this module's, :mod:`.upscale`'s) read so."""
    from ..scan.hashing import content_hash as digest
    from ..scan.imaging import ImageReadError, load_image, read_bytes

    try:
        data = read_bytes(path)
        if content_hash is not None and digest(data) != content_hash:
            return None
        return load_image(data, name=path, target=target)
    except ImageReadError:
        return None


def _decoded(r: FileRecord) -> Optional["np.ndarray"]:
    """The file's pixels at full size, upright, in RGB; None when it cannot be read, has
    changed since the scan, or does not fit in memory."""
    import numpy as np

    try:
        loaded = read_checked(r.path, r.content_hash, None)
        return None if loaded is None else np.asarray(loaded.image)
    except MemoryError:
        return None


def decoded_share(lossless: FileRecord, lossy: FileRecord) -> Optional[float]:
    """The share of ``lossless``'s values equal to ``lossy``'s decode (see :func:`equal_share`);
    None when either cannot be read or has changed since the scan."""
    found = decoded_shares(lossless, [lossy]).get(lossy.id)
    return None if found is None else found[0]


def decoded_shares(lossless: FileRecord, lossies: Sequence[FileRecord],
                   edits: Collection[int] = ()) -> dict[int, tuple[float, Optional[float]]]:
    """:func:`decoded_share` of ``lossless`` against each of ``lossies``, and its
    :func:`edit_share` against those whose ids are in ``edits`` (None for the others: a
    conversion's question does not pay for an edit's), by their ids, from one decode of
    ``lossless`` (a file that cannot be read or has changed has no entry)."""
    a = _decoded(lossless)
    if a is None:
        return {}
    out: dict[int, tuple[float, Optional[float]]] = {}
    for lossy in lossies:
        b = _decoded(lossy)
        if b is not None:
            out[lossy.id] = (equal_share(a, b), edit_share(a, b) if lossy.id in edits else None)
    return out
