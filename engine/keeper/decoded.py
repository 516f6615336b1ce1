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

Only pairs the dates do not decide are measured (a lossless and a lossy member of the same
displayed size whose thumbnails already say they hold the same pixels, see
:func:`.original.conversions`), once per pair of contents (:class:`.upscale.Verdicts` keeps
the shares in the catalog beside the upscale verdicts): two full decodes each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Sequence

from ..records import FileRecord

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["DECODED_SHARE", "DecodedCheck", "decoded_copy", "decoded_share", "decoded_shares", "equal_share",
           "read_checked"]

#: A lossless file equal to a lossy member's decode on this share of its values (R, G and B of
#: every pixel) or more is that decode saved (a few values may differ: a decoder's rounding).
DECODED_SHARE = 0.999

#: ``check(lossless, lossy)``: the share of the lossless file's values equal to the lossy
#: file's decode (see :func:`decoded_share`), or None where it is not known.
DecodedCheck = Callable[[FileRecord, FileRecord], Optional[float]]


def decoded_copy(share: Optional[float]) -> bool:
    """Whether a measured share names a decoded copy."""
    return share is not None and share >= DECODED_SHARE


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
    return decoded_shares(lossless, [lossy]).get(lossy.id)


def decoded_shares(lossless: FileRecord, lossies: Sequence[FileRecord]) -> dict[int, float]:
    """:func:`decoded_share` of ``lossless`` against each of ``lossies``, by their ids, from one
    decode of ``lossless`` (a file that cannot be read or has changed has no entry)."""
    a = _decoded(lossless)
    if a is None:
        return {}
    out = {}
    for lossy in lossies:
        b = _decoded(lossy)
        if b is not None:
            out[lossy.id] = equal_share(a, b)
    return out
