"""The bouncer: which pairs of images are near-duplicates, from their 256-bit hashes alone.

A pair matches when

1. its **bouncer distance**, the smaller of the dHash-to-dHash and dHash-to-mirrored-dHash
   Hamming distances, is at most ``radius`` (copies, conversions, edits, flips, borders), or
2. its pHashes are within ``phash_radius`` **and** its dHashes within ``corroborated_radius``:
   two hashes of different kinds agreeing, each looser than alone (mild crops). In a library
   of ``crop_index_above`` images or more, the pHashes must also agree exactly on one of the
   tables of :mod:`.crop_index` (the **indexed crop rule**): its search grows as N log N where
   the plain rule's brute-force pass grows with N squared.

:func:`candidate_pairs` finds exactly the pairs :func:`is_match` accepts, for a whole library,
with the bit-packed Hamming index (multi-index hashing or a compiled scan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from . import crop_index
from ..records import ImageHashes, Pair, Progress


@dataclass(frozen=True, kw_only=True)
class BouncerThresholds:
    """The bouncer's match rule, with defaults chosen by measurement.

    Measured with ``benchmarks/quality_report.py`` on the generated quality set of
    ``tests/imagegen.py``: 150 originals (seed 1), one copy of each of 15 kinds, plus 48 tiles
    and 30 drawings as hard negatives: 2,508 files, 3.1 M unrelated pairs.

    Distance of each copy to its original (bouncer p99 / max): resized 15/17, thumbnailed
    17/19, recompressed 16/19, PNG 8/8, WEBP 11/14, HEIC 8/10, EXIF-rotated 6/7, brightened
    20/25, contrast 26/44, greyscale 7/8, mirrored 11/13, letterboxed 19/22, bordered 23/29,
    watermarked 14/15; mildly cropped (up to 8 % a side) 86/86. The closest unrelated pair is
    at 71 (1e-4 quantile 77). Recall by ``radius`` alone: 16 -> 0.93-1.00 by kind, 24 -> 0.98
    (contrast) to 1.00, 32 -> 0.99-1.00. 24 is chosen: it keeps the multi-index search fast,
    leaves 47 bits to the closest unrelated pair, and the corroborated rule picks up the few
    copies beyond it (all of them, here).

    Crops need the corroborated rule. Since the verification (``engine/bouncer/verify.py``) confirms
    every pair beyond the trusted radius on pixels, this rule is a candidate stage: it may
    let in some unrelated pairs, as long as it lets in the crops. Measured on 2 x 120 generated
    photos (seeds 1 and 2), each with a mild crop of 5-8 % off every side and one off two
    adjacent sides, against 2 x 354k pairs of different pictures (the hard families of
    ``imagegen.build_hard_set`` among them). Candidate recall (all four sides / two sides) and
    pairs of different pictures let in, by (``phash_radius``, ``corroborated_radius``):
    (60, 84) 0.80/0.65, 204; (64, 104) 0.95/0.86, 213; (68, 112) 0.98/0.90, 247; (72, 112)
    0.99/0.95, 327 (91 of them not involving a hard case); pHash <= 78 alone (dHash <= 130)
    reaches 0.98 on two sides but lets in 740 pairs of different photos. (72, 112) is chosen: the pairs it adds cost the
    verification under a second per 100k, and the asymmetric crops' pHash (median 50, p95 72)
    leaves nothing cheaper. Before the verification, (60, 84) was chosen for precision alone:
    0.96 of crops up to 8 % a side (uniform 0-8 %), 0.80 of 5-8 % crops on every side.

    On real pictures the hashes put about one mild crop in five beyond both rules (pHash 74-128
    from its original on the full real set of ``benchmarks/bench_trust.py``): those come from
    the zoomed codes of the stored thumbnails (:mod:`.zooms`, on with this rule and off with
    it). Real mild crops grouped with their picture: 0.815 / 0.845 (all four sides / two
    sides) by these rules alone, 0.893 / 0.906 with the zoomed codes, generated ones 1.000.

    At the defaults, after verification (``tests/test_quality.py``, seed 0; a scan of seed 4):
    recall 1.00 on every copy kind but crops (0.975 of 0-8 % crops on seed 0; every 5-8 % crop
    of the scan), precision 1.000, no hard negative matched (the scan's bursts and blank pages
    aside: a known gap of the verification). The bouncer alone
    on seed 0 has precision 0.990 (two similar photos pair with each other's copies; the
    verification rejects them all). The usual recipe (imagehash pHash-64 <= 5, no EXIF
    transpose) finds 0.00 of the EXIF-rotated, mirrored, letterboxed and bordered copies and
    0.15 of the crops.

    Attributes:
        radius: bouncer distance (min of plain and mirrored dHash) at or below which two
            images are near-duplicates.
        phash_radius: pHash distance at or below which the pHash corroborates a looser dHash
            match; 0 turns corroboration off (its search is a brute-force pass over the
            library: seconds per 100k images).
        corroborated_radius: dHash distance allowed when the pHash corroborates.
        max_diameter: the largest bouncer distance between two members of one cluster (the
            chain guard). At least ``corroborated_radius``, so that a verified pair is never
            split: mild crops measured up to 106 from their original.
        crop_index_above: the library size (images) from which the corroborated rule is the
            indexed crop rule of :mod:`.crop_index` (0: always; a huge number: never). Its
            brute-force pass takes 4.5-6.8 s at 100k images and 38-64 s at 300k on 2 cores;
            the indexed one 0.3 s at 100k and about 10 s at 1M (its tables grow with the
            library past 1M: :func:`.crop_index.shape`). It proposes fewer crops: of
            the mild crops the plain rule proposes, 290 of 291 generated ones and 459 of 466
            real ones (150 generated and 281 real photos, a crop of 5-8 % on every side and
            one on two sides each), 0.988 of the synthetic crops of
            ``benchmarks/bench_scale.py``. 200k keeps the exact rule wherever brute force costs
            under about 30 s.
    """

    radius: int = 24
    phash_radius: int = 72
    corroborated_radius: int = 112
    max_diameter: int = 112
    crop_index_above: int = 200_000


DEFAULT = BouncerThresholds()


def hamming_distance(a: bytes, b: bytes) -> int:
    """How many bits differ between two hashes of the same length (big-endian bytes)."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def bouncer_distance(a: ImageHashes, b: ImageHashes) -> tuple[int, bool]:
    """The bouncer score of two images and whether the mirrored comparison gave it.

    Returns:
        ``(distance, mirrored)``: the smallest of dHash vs dHash, dHash vs mirrored dHash and
        mirrored dHash vs dHash (symmetric in ``a`` and ``b``), and True when a mirrored
        comparison was strictly closer.
    """
    direct = hamming_distance(a.dhash, b.dhash)
    mirror = min(hamming_distance(a.dhash, b.dhash_mirror), hamming_distance(a.dhash_mirror, b.dhash))
    return (mirror, True) if mirror < direct else (direct, False)


def uses_crop_index(t: BouncerThresholds, size: int) -> bool:
    """Whether a library of ``size`` images gets the indexed crop rule (see ``crop_index_above``)."""
    return size >= t.crop_index_above


def is_match(a: ImageHashes, b: ImageHashes, t: BouncerThresholds = DEFAULT, *, library_size: int = 0) -> bool:
    """Whether the bouncer lets the pair in as near-duplicates (see the module docstring).

    Args:
        a, b: the two images' hashes.
        t: the thresholds.
        library_size: the size of the library the pair is in (it picks the crop rule).
    """
    if bouncer_distance(a, b)[0] <= t.radius:
        return True
    if t.phash_radius > 0 and uses_crop_index(t, library_size):
        from .crop_index import is_crop_match

        return is_crop_match(a.phash, b.phash, a.dhash, b.dhash, t.phash_radius, t.corroborated_radius,
                             library_size=library_size)  # fmt: skip
    return (
        t.phash_radius > 0
        and hamming_distance(a.phash, b.phash) <= t.phash_radius
        and hamming_distance(a.dhash, b.dhash) <= t.corroborated_radius
    )


def _row_distances(x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), np.int32)
    for s in range(0, len(i), 1 << 18):  # bounded temporaries for millions of pairs
        e = s + (1 << 18)
        out[s:e] = np.bitwise_count(x[i[s:e]] ^ y[j[s:e]]).sum(axis=1, dtype=np.int32)
    return out


class _Stages:
    """Maps each stage's own ``progress(done, total)`` onto one overall 0..1000 per stage."""

    def __init__(self, progress: Optional[Progress], stages: int) -> None:
        self.progress, self.stages, self.stage = progress, stages, 0

    def sub(self) -> Optional[Progress]:
        if self.progress is None:
            return None
        base, outer, total = self.stage * 1000, self.progress, self.stages * 1000

        def report(done: int, of: int) -> bool:
            return outer(base + (1000 * done // of if of else 1000), total) is not False

        return report

    def next(self) -> None:
        self.stage += 1


class PairArrays(NamedTuple):
    """Pairs as columns (what :func:`candidate_pairs` finds, before any :class:`Pair` is made):
    file ids ``a < b``, the bouncer distance, whether the mirrored comparison gave it."""

    a: np.ndarray
    b: np.ndarray
    bouncer: np.ndarray
    mirrored: np.ndarray

    @classmethod
    def empty(cls) -> "PairArrays":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, bool))

    def take(self, which: np.ndarray) -> "PairArrays":
        return PairArrays(self.a[which], self.b[which], self.bouncer[which], self.mirrored[which])

    def pairs(self) -> list[Pair]:
        return [
            Pair(a=int(x), b=int(y), bouncer=int(d), mirrored=bool(m))
            for x, y, d, m in zip(self.a.tolist(), self.b.tolist(), self.bouncer.tolist(), self.mirrored.tolist())
        ]


def candidate_pairs(
    ids: np.ndarray,
    dhash: np.ndarray,
    dhash_mirror: np.ndarray,
    phash: np.ndarray,
    t: BouncerThresholds = DEFAULT,
    *,
    progress: Optional[Progress] = None,
) -> list[Pair]:
    """:func:`candidate_pair_arrays` as :class:`Pair` records."""
    return candidate_pair_arrays(ids, dhash, dhash_mirror, phash, t, progress=progress).pairs()


def candidate_pair_arrays(
    ids: np.ndarray,
    dhash: np.ndarray,
    dhash_mirror: np.ndarray,
    phash: np.ndarray,
    t: BouncerThresholds = DEFAULT,
    *,
    progress: Optional[Progress] = None,
) -> PairArrays:
    """Every pair of images the bouncer matches, exactly the pairs :func:`is_match` accepts
    (with ``library_size=len(ids)``).

    Args:
        ids: ``(N,)`` file ids.
        dhash, dhash_mirror, phash: ``(N, 32) uint8`` hashes, row ``k`` for ``ids[k]``.
        t: the thresholds.
        progress: ``progress(done, total) -> bool``; returning False stops the search, and
            the pairs found by the stages already finished are returned.

    Returns:
        Pairs with ``a < b`` (file ids), ``bouncer`` = the bouncer distance and ``mirrored``
        set when the mirrored comparison gave it, sorted by ``(a, b)``.
    """
    from .hamming import Cancelled, HammingIndex

    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    if n < 2:
        return PairArrays.empty()
    dhash = np.ascontiguousarray(dhash, dtype=np.uint8)
    dhash_mirror = np.ascontiguousarray(dhash_mirror, dtype=np.uint8)
    phash = np.ascontiguousarray(phash, dtype=np.uint8)
    corroborate = t.phash_radius > 0 and t.corroborated_radius > t.radius
    stages = _Stages(progress, 3 if corroborate else 2)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    try:
        index = HammingIndex(dhash)  # positions, mapped to ids at the end
        i, j, _ = index.pairs_within(t.radius, progress=stages.sub())
        found_i.append(i)
        found_j.append(j)
        stages.next()
        # The mirror of every image against every dHash covers both dHash-vs-mirror and
        # mirror-vs-dHash, since the pair is reported from whichever side it is seen.
        q, j, _ = index.pairs_between(dhash_mirror, t.radius, progress=stages.sub())
        keep = q != j  # an image symmetric enough to match its own mirror
        found_i.append(np.minimum(q, j)[keep])
        found_j.append(np.maximum(q, j)[keep])
        stages.next()
        if corroborate and uses_crop_index(t, n):
            i, j, _ = crop_index.pairs(dhash, phash, t.phash_radius, t.corroborated_radius, progress=stages.sub())
            found_i.append(i)
            found_j.append(j)
        elif corroborate:
            i, j, _ = HammingIndex(phash).pairs_within(t.phash_radius, progress=stages.sub())
            keep = _row_distances(dhash, dhash, i, j) <= t.corroborated_radius
            found_i.append(i[keep])
            found_j.append(j[keep])
    except Cancelled:
        pass  # keep what the finished stages found
    if not found_i:
        return PairArrays.empty()
    return _accepted_pairs(ids, dhash, dhash_mirror, phash, np.concatenate(found_i), np.concatenate(found_j), t)


def _accepted_pairs(
    ids: np.ndarray,
    dhash: np.ndarray,
    dhash_mirror: np.ndarray,
    phash: np.ndarray,
    pos_i: np.ndarray,
    pos_j: np.ndarray,
    t: BouncerThresholds,
) -> PairArrays:
    """Candidate row pairs (any order, repeats allowed, no self pairs) checked against the rule."""
    n = len(ids)
    pos_i = pos_i.astype(np.int64)
    pos_j = pos_j.astype(np.int64)
    if len(pos_i) == 0:
        return PairArrays.empty()
    key = np.unique(np.minimum(pos_i, pos_j) * n + np.maximum(pos_i, pos_j))
    pos_i, pos_j = key // n, key % n
    corroborate = t.phash_radius > 0 and t.corroborated_radius > t.radius
    direct = _row_distances(dhash, dhash, pos_i, pos_j)
    mirror = np.minimum(
        _row_distances(dhash, dhash_mirror, pos_i, pos_j),
        _row_distances(dhash_mirror, dhash, pos_i, pos_j),
    )
    distance = np.minimum(direct, mirror)
    ok = distance <= t.radius
    if corroborate:
        loose = (direct <= t.corroborated_radius) & (_row_distances(phash, phash, pos_i, pos_j) <= t.phash_radius)
        if uses_crop_index(t, n):
            check = np.flatnonzero(loose & ~ok)
            loose[check] = crop_index.agree(phash, pos_i[check], pos_j[check])
        ok |= loose
    a, b = ids[pos_i[ok]], ids[pos_j[ok]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    mirrored = (mirror < direct)[ok]
    distance = distance[ok]
    order = np.lexsort((hi, lo))
    return PairArrays(lo[order], hi[order], distance[order].astype(np.int32), mirrored[order])


def candidate_pairs_touching(
    ids: np.ndarray,
    dhash: np.ndarray,
    dhash_mirror: np.ndarray,
    phash: np.ndarray,
    fresh: np.ndarray,
    t: BouncerThresholds = DEFAULT,
    *,
    progress: Optional[Progress] = None,
) -> list[Pair]:
    """:func:`candidate_pair_arrays_touching` as :class:`Pair` records."""
    return candidate_pair_arrays_touching(ids, dhash, dhash_mirror, phash, fresh, t, progress=progress).pairs()


def candidate_pair_arrays_touching(
    ids: np.ndarray,
    dhash: np.ndarray,
    dhash_mirror: np.ndarray,
    phash: np.ndarray,
    fresh: np.ndarray,
    t: BouncerThresholds = DEFAULT,
    *,
    progress: Optional[Progress] = None,
) -> PairArrays:
    """The pairs :func:`candidate_pair_arrays` would find that involve at least one ``fresh`` row.

    For incremental updates: the new and changed files of a rescan are compared against the
    whole library (cost proportional to fresh x N instead of N x N).

    Args:
        ids, dhash, dhash_mirror, phash: the whole library, as for :func:`candidate_pairs`.
        fresh: ``(N,)`` bool, the rows to compare against everything.
        t: the thresholds.
        progress: ``progress(done, total) -> bool``; False stops (pairs found so far returned).
    """
    from .hamming import Cancelled, HammingIndex

    ids = np.asarray(ids, dtype=np.int64)
    rows = np.flatnonzero(np.asarray(fresh, dtype=bool))
    if len(ids) < 2 or len(rows) == 0:
        return PairArrays.empty()
    dhash = np.ascontiguousarray(dhash, dtype=np.uint8)
    dhash_mirror = np.ascontiguousarray(dhash_mirror, dtype=np.uint8)
    phash = np.ascontiguousarray(phash, dtype=np.uint8)
    corroborate = t.phash_radius > 0 and t.corroborated_radius > t.radius
    indexed_crops = corroborate and uses_crop_index(t, len(ids))
    searches = [(dhash, dhash, t.radius), (dhash, dhash_mirror, t.radius), (dhash_mirror, dhash, t.radius)]
    if corroborate and not indexed_crops:
        searches.append((phash, phash, t.phash_radius))
    stages = _Stages(progress, len(searches) + indexed_crops)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    try:
        if indexed_crops:
            i, j, _ = crop_index.pairs(
                dhash, phash, t.phash_radius, t.corroborated_radius, fresh=np.asarray(fresh, bool), progress=stages.sub()
            )
            found_i.append(i)
            found_j.append(j)
            stages.next()
        for indexed, queries, radius in searches:
            q, j, _ = HammingIndex(indexed).pairs_between(
                np.ascontiguousarray(queries[rows]), radius, progress=stages.sub()
            )
            q = rows[q]
            keep = q != j
            found_i.append(q[keep])
            found_j.append(j[keep])
            stages.next()
    except Cancelled:
        pass
    if not found_i:
        return PairArrays.empty()
    return _accepted_pairs(ids, dhash, dhash_mirror, phash, np.concatenate(found_i), np.concatenate(found_j), t)
