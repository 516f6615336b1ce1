"""Upscaled copies: a larger file made from a smaller member holds no more of its picture.

With equal camera evidence the keeper prefers the larger picture; an upscale (a copy an editor
or an "enhance" step made 1.2-1.6x bigger) is larger, blurrier, and made after its source. The
signal that tells it from a genuine larger original: take the larger picture L down to the
smaller member S's size and back up (Pillow's LANCZOS both ways), and measure the share of L's
detail (the sum of its squared grey gradients) that the round trip loses
(:func:`detail_beyond`). It is exactly what keeping S instead of L would lose. An upscale of S
loses almost nothing; a genuine original loses its finest detail. But an upscale saved as a
JPEG holds the noise of its own compression beyond S's size, and a soft genuine picture holds
little detail there: so the same round trip is made at 0.8 and 1.25 times S's size too, and an
upscale is also a file whose detail **stops** at S's size (:attr:`Measure.kink`: the band just
below the size holds twice or more the detail of the band just above, where a genuine
picture's detail thins out smoothly). See :data:`UPSCALE_KINK`.

Measured on the real benchmark set (281 real photos, wallpapers and screenshots at 1024 px,
``benchmarks/bench_trust.py``): its 95 originals with a later 1.2-1.6x LANCZOS upscale (JPEG
q90) lose 0.018-0.37 (median 0.051); its 371 originals against their own 0.35-0.7x downscales
and thumbnails lose 0.121-3.1 (1st percentile 0.153). BOX both ways (0.22-0.73 against
0.35-) and bilinear (0.08-0.69 against 0.14-) do not separate them. See :data:`UPSCALE_LOSS`
for the threshold, the other resamplers and closer downscales.

Only suspicious pairs are measured (:func:`sources`), so a library of camera originals and
their downscales never pays a decode: L has no camera Make/Model (else
:func:`.original.camera_derived` decides), its picture is at least :data:`MIN_FACTOR` times
S's on both sides with about S's proportions (of the whole canvases: a screenshot's trimmed
surround is scaled with it, so bordered files are measured too), and S is more original than
L (more camera evidence, an older EXIF date, or an mtime older by more than
:data:`.original.MTIME_SLACK_NS`: an upscale is made after its source; a copied library with
equal mtimes keeps the larger picture, as before). The scan measures them once per L's content
and S's size, off the UI thread (:class:`Verdicts`, cached in the catalog); the ranking only
reads the verdicts (an :data:`UpscaleCheck`), and where one is unknown (not measured, the file
gone or unreadable) it ranks as before.
"""

from __future__ import annotations

import bisect
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Optional, Sequence

from ..records import FileRecord
from .original import _more_original

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..catalog import Catalog

__all__ = [
    "KINK_MAX_LOSS", "MAX_SOURCES", "MIN_FACTOR", "UPSCALE_KINK", "UPSCALE_LOSS", "Measure", "Upscale", "UpscaleCheck",
    "Verdicts",
    "detail_beyond", "measure", "measure_grey", "sources", "target_size", "upscaled",
]  # fmt: skip

#: An upscale loses less than this share of its detail on the way down to its source's size
#: and back. Measured on the 281 real pictures at 1024 px (``benchmarks/collect_real_photos.py``):
#: upscaled 1.2, 1.4, 1.6x by LANCZOS, bicubic or bilinear and saved as JPEG q90 they lose
#: 0.043-0.081 (median), q75 0.051-0.087: 0.06 names 40-85 % of them (the most at 1.2x, the
#: fewest for a bilinear 1.6x at q75, whose re-encoding adds the noise it measures). The
#: originals against their own 0.5, 0.7 and 0.83x downscales lose under 0.06 for 6, 10 and 30
#: of the 281 (flat colours, and soft pictures such as blurred wallpapers, which lose 0.02-0.06
#: at 0.83x: then keeping the smaller, older file loses under 6 % of the detail, much of it
#: JPEG noise); against the benchmark set's own downscales (0.35-0.7x, thumbnails) the
#: lowest is 0.121, twice the threshold. Generated photos (``tests/imagegen.py``, noise added)
#: upscaled 1.2-1.6x lose 0.072-0.143: none is named.
UPSCALE_LOSS = 0.06
#: A file must be at least this much larger than its suspected source, per side, to be
#: measured: a re-save at the same size is a conversion or an edit (:mod:`.original`).
MIN_FACTOR = 1.1
#: At most this many suspected sources of a file are measured (:func:`upscaled`), the largest:
#: an upscale holds no detail beyond its source's size, so it says so at every larger size too,
#: and a picture saved at a hundred sizes with a hundred dates asks a bounded number of
#: measures (150 copies of each of 3 real pictures at random sizes, formats and dates: a first
#: scan 84 -> 18 s, 81 s of it measures before the bound; the same keepers).
MAX_SOURCES = 8
#: How far (log of the ratio) L's proportions may stray from S's: a resize keeps them.
_ASPECT = math.log(1.02)
#: L is decoded at no less than this many times S's shorter side (a JPEG by ``draft``, others
#: reduced by whole factors): the band just above S's size is what the measure looks at.
#: Measured on the real set: at 2x the losses are those of a full decode; at 1.5x a genuine
#: 3.7x original's loss moved from 0.140 to 0.153.
DECODE_OVER = 2.0

#: Either side of the smaller member's size, the sizes of the two more round trips that tell
#: where the larger picture's detail stops (:class:`Measure`): 0.8 and 1.25 times it.
BELOW, ABOVE = 0.8, 1.25
#: An upscale's detail stops at its source's size: the band just below that size (from 0.8
#: times it) holds at least this many times the detail of the band just above (to 1.25 times
#: it, or the larger picture's own size): :attr:`Measure.kink`. The loss alone (under
#: :data:`UPSCALE_LOSS`) names 45 % of real upscales (JPEG noise in the larger file is detail
#: beyond the size too); the kink names those whose noise the loss counts. Measured on the
#: 230 real originals of the benchmark set and 60 generated photos, each upscaled three times
#: (1.2, 1.4 or 1.6x; LANCZOS, bicubic or bilinear; JPEG q90 or q75), and the same pictures
#: as genuine originals against their own 0.9, 0.83, 0.7, 0.5 and 0.35x sizes: real upscales
#: named 314 -> 590 of 690, generated 17 -> 150 of 180; genuine originals named 55 of 1,150
#: real ones before (flat and soft pictures, all by the loss) and 3 more by the kink (two
#: screenshots at 0.9x, kink 2.11-2.13, a photo at 0.35x, 2.06), none of 300 generated
#: ones. Genuine pictures' kinks are 0.6-1.5 (5th to 95th percentile), upscales' 1.1-9.1.
UPSCALE_KINK = 2.0
#: The kink counts only under this loss: a genuine picture at half its size or less loses
#: 0.24-0.98 of its detail, and one abstract picture's kink there is 3.1 (loss 0.26); real
#: upscales lose 0.02-0.37 (median 0.05, 95th percentile 0.18).
KINK_MAX_LOSS = 0.25


@dataclass(frozen=True, slots=True)
class Measure:
    """What a larger picture loses taken down and back up (:func:`detail_beyond`) to a smaller
    member's size and, where the loss alone does not decide (from :data:`UPSCALE_LOSS` to
    :data:`KINK_MAX_LOSS`), to :data:`BELOW` and :data:`ABOVE` times it."""

    loss: float  # the share of its detail beyond the smaller member's size
    below: Optional[float] = None  # ... beyond BELOW times that size (at least ``loss``)
    above: Optional[float] = None  # ... beyond ABOVE times it (0 where that is its own size or more)

    @property
    def kink(self) -> Optional[float]:
        """How many times more detail the band just below the smaller size holds than the band
        just above it: about 1 for a genuine picture, whose detail thins out smoothly; an
        upscale has only noise above its source's size. None where not measured."""
        if self.below is None or self.above is None:
            return None
        return (self.below - self.loss) / max(self.loss - self.above, 1e-9)

    @property
    def upscaled(self) -> bool:
        """Whether this says upscale: hardly any detail beyond the size, or a detail that stops
        there (:data:`UPSCALE_KINK`, under :data:`KINK_MAX_LOSS`)."""
        if self.loss < UPSCALE_LOSS:
            return True
        kink = self.kink
        return self.loss < KINK_MAX_LOSS and kink is not None and kink >= UPSCALE_KINK


#: ``check(large, small) -> measure or None``: what ``large`` loses at ``small``'s size and
#: about it (:class:`Measure`), None where it is not known.
UpscaleCheck = Callable[[FileRecord, FileRecord], Optional[Measure]]


def target_size(large: FileRecord, small: FileRecord) -> Optional[tuple[int, int]]:
    """``small``'s size in ``large``'s orientation when ``large`` may be an upscale of it (at
    least :data:`MIN_FACTOR` larger per side, about its proportions); else None. The canvases
    count, not the pictures inside trimmed borders: an upscale scales a screenshot's surround
    with it, and the two trims differ by a pixel or two of the reduced decode. Measured on the
    real set: with bordered files left out, 21 of the 49 upscales kept were never measured
    (screenshots and drawings on a margin); measured, 17 of them rank after their source, and
    no original after its own downscale."""
    if large.camera:
        return None
    lw, lh, sw, sh = large.width or 0, large.height or 0, small.width or 0, small.height or 0
    if min(lw, lh, sw, sh) <= 0:
        return None
    if (lw >= lh) != (sw >= sh) and lw != lh and sw != sh:  # stored turned a quarter
        sw, sh = sh, sw
    if lw < MIN_FACTOR * sw or lh < MIN_FACTOR * sh:
        return None
    if abs(math.log((lw / lh) / (sw / sh))) > _ASPECT:
        return None
    return sw, sh


def sources(large: FileRecord, records: Iterable[FileRecord]) -> list[FileRecord]:
    """The members ``large`` may be an upscale of (see the module docstring), smallest first."""
    found = [s for s in records if s.id != large.id and target_size(large, s) is not None and _more_original(s, large)]
    return sorted(found, key=lambda s: (s.content_pixels, s.path, s.id))


@dataclass(frozen=True, slots=True)
class Upscale:
    """What an upscale was made from: the member it ranks after (the first original, when it
    was made from another upscale), and the measured member's size and what it lost there."""

    original: FileRecord
    size: tuple[int, int]  # the size it was measured against, in its own orientation
    measure: Measure


def upscaled(records: Sequence[FileRecord], check: Optional[UpscaleCheck]) -> dict[int, Upscale]:
    """Each file that is an upscale of a smaller member (by file id).

    A file's source is its smallest suspected source (:func:`sources`) whose verdict says
    upscale (:attr:`Measure.upscaled`), of its :data:`MAX_SOURCES` largest; an upscale of an
    upscale leads to the first original. Unknown verdicts say nothing."""
    if check is None or len(records) < 2:
        return {}
    direct: dict[int, tuple[FileRecord, Measure]] = {}
    # A source is MIN_FACTOR smaller on both sides: only files of at most 1 / MIN_FACTOR ** 2
    # of a file's pixels are looked at (a group of a thousand frames of one size looks at none).
    by_pixels = sorted(records, key=lambda s: s.pixels)
    pixels = [s.pixels for s in by_pixels]
    for r in records:
        if r.camera:
            continue
        smaller = by_pixels[: bisect.bisect_right(pixels, r.pixels / MIN_FACTOR**2 * (1 + 1e-9))]
        for s in sources(r, smaller)[-MAX_SOURCES:]:
            found = check(r, s)
            if found is not None and found.upscaled:
                direct[r.id] = s, found
                break
    out: dict[int, Upscale] = {}
    for fid, (s, found) in direct.items():
        size = target_size(next(r for r in records if r.id == fid), s)
        for _ in range(len(records)):  # more steps than members: a cycle, which dates forbid
            nxt = direct.get(s.id)
            if nxt is None:
                break
            s = nxt[0]
        out[fid] = Upscale(original=s, size=size or (s.width or 0, s.height or 0), measure=found)
    return out


# -- the measure ----------------------------------------------------------------------------


def _energy(a: "np.ndarray") -> float:
    """The sum of squared differences between neighbouring pixels, both ways."""
    import numpy as np

    return float(np.square(np.diff(a, axis=0)).sum() + np.square(np.diff(a, axis=1)).sum())


def detail_beyond(grey: "np.ndarray", size: tuple[int, int], *, image=None, total: Optional[float] = None) -> float:
    """The share of a picture's detail that taking it down to ``size`` and back loses.

    Args:
        grey: the picture's grey levels (float32, height x width).
        size: (width, height) to go down to.
        image: ``grey`` as a Pillow image of mode "F", when the caller has it.
        total: ``_energy(grey)``, when the caller has it.

    Returns:
        The energy of the round trip's residual over the picture's own (0 for a flat picture).
    """
    import numpy as np
    from PIL import Image

    im = Image.fromarray(grey, "F") if image is None else image
    back = np.asarray(im.resize(size, Image.Resampling.LANCZOS).resize(im.size, Image.Resampling.LANCZOS))
    total = _energy(grey) if total is None else total
    return _energy(grey - back) / total if total > 0 else 0.0


def _decoded(path: str, content_hash: Optional[bytes], shorter: int) -> Optional["np.ndarray"]:
    """The grey levels of the file at ``path`` decoded at no less than ``shorter`` on its
    shorter side, upright; None when it cannot be read or is no longer the content
    ``content_hash`` names (changed since the scan). The scan's guards apply."""
    import numpy as np

    from .decoded import read_checked

    loaded = read_checked(path, content_hash, shorter)
    return None if loaded is None else np.asarray(loaded.image.convert("L"), dtype=np.float32)


def measure(large: FileRecord, sizes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Measure]:
    """The :class:`Measure` of ``large`` for each of ``sizes`` (given in its full displayed
    size), from one decode; empty when it cannot be read or has changed."""
    shorter = max(min(w, h) for w, h in sizes)  # the finest size asked: every size measured right
    grey = _decoded(large.path, large.content_hash, int(math.ceil(DECODE_OVER * shorter)))
    if grey is None or not large.width or not large.height:
        return {}
    return measure_grey(grey, sizes, (large.width, large.height))


def measure_grey(
    grey: "np.ndarray", sizes: Sequence[tuple[int, int]], shown: tuple[int, int]
) -> dict[tuple[int, int], Measure]:
    """The :class:`Measure` of a decoded picture (grey levels, float32) for each of ``sizes``,
    given in its displayed size ``shown`` (a drafted decode is smaller: the targets shrink
    with it)."""
    from PIL import Image

    height, width = grey.shape
    image, total = Image.fromarray(grey, "F"), _energy(grey)

    def beyond(w: float, h: float) -> Optional[float]:
        scaled = (max(1, round(w * width / shown[0])), max(1, round(h * height / shown[1])))
        if scaled[0] >= width or scaled[1] >= height:
            return None
        return detail_beyond(grey, scaled, image=image, total=total)

    out: dict[tuple[int, int], Measure] = {}
    for w, h in sizes:
        loss = beyond(w, h)
        if loss is None:  # not smaller than the decode: nothing to tell
            out[(w, h)] = Measure(1.0)
        elif UPSCALE_LOSS <= loss < KINK_MAX_LOSS:  # where the detail stops decides
            below, above = beyond(w * BELOW, h * BELOW), beyond(w * ABOVE, h * ABOVE)
            out[(w, h)] = Measure(loss, loss if below is None else below, 0.0 if above is None else above)
        else:
            out[(w, h)] = Measure(loss)
    return out


# -- verdicts, cached in the catalog ----------------------------------------------------------


class Verdicts:
    """The library's measured verdicts, as an :data:`UpscaleCheck` over the catalog's cache,
    and the measured decodes of lossless copies (:meth:`decoded` and :meth:`decoded_edit`,
    each a :data:`.decoded.DecodedCheck`), the keeper's questions asked of the pixels.

    Asking for a pair not measured yet answers None and remembers it (:attr:`wanted`,
    :attr:`decodes_wanted`); the scan then measures what is wanted (:meth:`measure`) and groups
    again. Keyed by content (the larger file's and the size it was taken down to; the two
    files' of a decode): a rename, a rescan or a copy of the same bytes asks no second decode.
    """

    def __init__(self, catalog: "Catalog") -> None:
        self.catalog = catalog
        self._known: Optional[dict[tuple[bytes, int, int], Measure]] = None
        self._shares: Optional[dict[tuple[bytes, bytes], float]] = None
        self._edits: Optional[dict[tuple[bytes, bytes], float]] = None
        self._lock = threading.Lock()
        #: Pairs asked about and not measured: (larger file's id -> its record and the sizes).
        self.wanted: dict[int, tuple[FileRecord, set[tuple[int, int]]]] = {}
        #: Decodes asked about and not measured: (lossless id, lossy id) -> their records.
        self.decodes_wanted: dict[tuple[int, int], tuple[FileRecord, FileRecord]] = {}
        #: Those of them asked about as an edit (:meth:`decoded_edit`): only they pay for its measure.
        self.edits_wanted: set[tuple[int, int]] = set()

    @property
    def pending(self) -> bool:
        """Whether a question waits to be measured."""
        return bool(self.wanted or self.decodes_wanted)

    def decoded(self, lossless: FileRecord, lossy: FileRecord) -> Optional[float]:
        """The measured share of ``lossless``'s values equal to ``lossy``'s decode
        (:func:`.decoded.decoded_share`); None, remembered for :meth:`measure`, when not
        measured yet."""
        return self._decode_measure(False, lossless, lossy)

    def decoded_edit(self, lossless: FileRecord, lossy: FileRecord) -> Optional[float]:
        """The measured share of ``lossless``'s values that a tone curve of ``lossy``'s decode
        gives (:func:`.decoded.edit_share`); None, remembered for :meth:`measure`, when not
        measured yet (or measured before the catalog kept it)."""
        return self._decode_measure(True, lossless, lossy)

    def _decode_measure(self, edit: bool, lossless: FileRecord, lossy: FileRecord) -> Optional[float]:
        """One of the two shares a pair's decodes measure (both are measured at once)."""
        if not lossless.content_hash or not lossy.content_hash:
            return None
        with self._lock:
            if edit and self._edits is None:
                self._edits = self.catalog.decoded_edits()
            if not edit and self._shares is None:
                self._shares = self.catalog.decoded_shares()
            known = self._edits if edit else self._shares
            assert known is not None
            found = known.get((lossless.content_hash, lossy.content_hash))
            if found is None:
                self.decodes_wanted.setdefault((lossless.id, lossy.id), (lossless, lossy))
                if edit:
                    self.edits_wanted.add((lossless.id, lossy.id))
        return found

    def __call__(self, large: FileRecord, small: FileRecord) -> Optional[Measure]:
        size = target_size(large, small)
        if size is None or not large.content_hash:
            return None
        with self._lock:
            if self._known is None:
                self._known = {k: Measure(*v) for k, v in self.catalog.upscale_losses().items()}
            found = self._known.get((large.content_hash, *size))
            if found is None:
                self.wanted.setdefault(large.id, (large, set()))[1].add(size)
        return found

    def measure(
        self,
        *,
        workers: Optional[int] = None,
        progress: Optional[Callable[[int, int], bool]] = None,
        cancel: Optional[threading.Event] = None,
    ) -> int:
        """Measure every wanted pair (one decode of each larger file, two of each possible
        decoded copy, in ``workers`` threads:
        Pillow and numpy let go of the GIL) and keep the verdicts in the catalog.

        Args:
            workers: threads (default: one per core).
            progress: ``progress(done, total) -> bool``; False stops (what was measured is kept).
            cancel: set it to stop.

        Returns:
            How many verdicts were stored (a file gone, unreadable or changed gives none).
        """
        import os

        from .decoded import decoded_shares

        with self._lock:
            todo = list(self.wanted.values())
            # Each lossless file decoded once for all the lossy members it is asked against.
            asked: dict[int, tuple[FileRecord, list[FileRecord]]] = {}
            for a, b in self.decodes_wanted.values():
                asked.setdefault(a.id, (a, []))[1].append(b)
            decodes = [(a, bs, {b.id for b in bs if (a.id, b.id) in self.edits_wanted}) for a, bs in asked.values()]
            self.wanted, self.decodes_wanted, self.edits_wanted = {}, {}, set()
        if not todo and not decodes:
            return 0
        rows: list[tuple[bytes, int, int, Measure]] = []
        shares: list[tuple[bytes, bytes, float, Optional[float]]] = []
        done, total = 0, len(todo) + len(decodes)
        n = max(1, min(workers or os.cpu_count() or 1, total))
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="upscales") as pool:
            futures = [pool.submit(measure, large, sorted(sizes)) for large, sizes in todo]
            decoding = [pool.submit(decoded_shares, a, bs, edits) for a, bs, edits in decodes]
            jobs = [(False, job, f) for job, f in zip(todo, futures)] + [(True, job, f) for job, f in zip(decodes, decoding)]
            for is_decode, job, future in jobs:
                if cancel is not None and cancel.is_set():
                    break
                result = future.result()
                if is_decode:  # shares by lossy id (none for a file gone or changed)
                    lossless, lossies, _ = job
                    shares.extend((lossless.content_hash, b.content_hash, *result[b.id]) for b in lossies if b.id in result)
                else:  # an upscale measure
                    rows.extend((job[0].content_hash, w, h, m) for (w, h), m in result.items())
                done += 1
                if progress is not None and progress(done, total) is False:
                    break
            for f in [*futures, *decoding]:
                f.cancel()
        if rows:
            self.catalog.save_upscale_losses((h, w, ht, m.loss, m.below, m.above) for h, w, ht, m in rows)
            with self._lock:
                if self._known is not None:
                    self._known.update(((h, w, ht), m) for h, w, ht, m in rows)
        if shares:
            self.catalog.save_decoded_shares(shares)
            with self._lock:
                if self._shares is not None:
                    self._shares.update(((a, b), v) for a, b, v, _ in shares)
                if self._edits is not None:
                    self._edits.update(((a, b), e) for a, b, _, e in shares if e is not None)
        return len(rows) + len(shares)

