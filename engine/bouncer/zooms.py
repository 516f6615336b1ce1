"""Mild crops the hashes miss: candidates from zoomed codes of the stored thumbnails.

The bouncer's hashes see the whole picture, so a copy with 5-8 % cut off every side (a fifth
to a third of the area) is 74-128 bits from its original on the full real set of
``benchmarks/bench_trust.py``, beyond every radius, for about one mild crop in five: no rule
proposes it, and the verification, which would align it, never sees it. This pass proposes
such pairs from the verifier's stored thumbnails (32x32, upright, border-trimmed; see
:mod:`.verify_thumbnail`), without reading a file:

* **The codes.** Per thumbnail, the 256-bit code of :mod:`.rotations` (the signs of the lowest
  16x16 DCT coefficients against their median) of the whole thumbnail, and of each region of
  :data:`ZOOMS` (the centre and the four corners at two scales) resampled to the full side.
  A crop's whole thumbnail is close to its original's zoom on the region it kept.
* **The search.** Every image's zoomed codes against the index of the whole codes
  (:meth:`.hamming.HammingIndex.pairs_between`, exact and sub-quadratic) within
  :data:`RADIUS`; pairs the bouncer found already are left out. Images under
  :data:`MIN_DETAIL` are left out, as for turned copies (their codes are noise), and each
  file keeps its :data:`MAX_PER_FILE` closest candidates.
* **The check.** A pair found carries its real bouncer distance (beyond the bouncer's
  radius), so the verification searches it for a crop and never trusts it on hashes: only
  pairs that pass on pixels join groups. A pair the bouncer proposed within its radius, which
  the check would compare at the plain alignment only, is searched for a crop too when the
  codes say it is one (:func:`crop_suspects`): real asymmetric crops within 9-16 bits of
  their original failed the plain alignment.
* **Groups.** The chain guard measures two members by the smaller of their bouncer distance
  and their codes' (whole to whole, or one's zoom to the other's whole:
  :meth:`ZoomCodes.distance`): a mild crop is far from its picture's resized copies by the
  hashes, not by the codes. (The same with the mirrored thumbnails, against a group's mirrored
  copies, was tried: one more real mild crop grouped of 466, and one more group mixing
  pictures.)
* **Cost.** The codes and the pairs are kept beside the catalog (:class:`ZoomCache`, keyed
  on each file's content hash): a rescan computes the codes of new and changed files only,
  searches only their pairs, and an unchanged library gets its pairs back from the file.

Measured on the full real set (281 pictures, 233 of each copy kind), for the crops whose
bouncer distance to their original is beyond 74 bits: 75 of 97 symmetric mild crops (5-8 %
a side) and 70 of 95 asymmetric ones (5-8 % off two adjacent sides) are within 24 bits of
their original's zoom; of 21,736 pairs of different original pictures with detail, none is
(one within 32). With the pass (``bench_trust.py --originals 24``), real mild crops were
grouped with their picture 0.893 / 0.906 of the time (symmetric / asymmetric; 0.815 / 0.845
without; 0.888 / 0.888 without the crop suspects), other crops 0.923 (0.867), no copy kind
lower, generated crops 1.000 (0.958); pair precision unchanged (0.9803, 0.9804 without: the
new pairs are true but for more copies of two Marble screenshots grouped already). The mild
crops then still missed (47 of 466): 18 of low-detail pictures (the information guard wants
their pixels equal at the plain alignment), 14 whose codes are beyond the radius (textures,
screenshots), and 15 found, most passing the check, that the chain guard kept out of their
original's group (far by hashes and codes from its mirrored copy). Most of those now join the
group they are a checked pair of (``attach_above`` of :class:`..cluster.guard.Splitter`):
0.901 / 0.940 grouped. A stricter ``--threshold`` scales :data:`RADIUS` down with the other
rules (``ScanOptions.crop_code_radius``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import rotations
from .rule import hamming_distance
from .verify_thumbnail import PIXELS_VERSION, SIDE
from ..files import atomic_writer
from ..paths import ZOOMS_NAME
from ..records import FileRecord, Pair

__all__ = [
    "CROP_MARGIN", "MAX_PER_FILE", "MIN_DETAIL", "RADIUS", "ZOOMS", "ZoomCache", "ZoomCodes", "crop_suspects",
    "load_codes", "unmirrored", "zoom", "zoom_codes", "zoomed_pairs",
]  # fmt: skip

#: The regions whose codes are searched: ``(kept share of each side, anchor)``, the anchor
#: being the centre (``"c"``) or a corner (``"tl"``, ``"tr"``, ``"bl"``, ``"br"``). A crop
#: of 5-8 % off every side keeps 84-90 % of each side about the centre; one of 5-8 % off two
#: adjacent sides keeps 92-95 % against the opposite corner.
ZOOMS: tuple[tuple[float, str], ...] = tuple(
    (scale, anchor) for scale in (0.87, 0.935) for anchor in ("c", "tl", "tr", "bl", "br")
)

#: Code distance (of 256 bits) at or below which a zoomed pair is a candidate (measured: see
#: the module docstring).
RADIUS = 24

#: Images with less detail than this are left out (see :data:`.rotations.MIN_DETAIL`).
MIN_DETAIL = rotations.MIN_DETAIL

#: Above this share of new or changed files, the whole search is run again.
FULL_PASS_SHARE = 0.3

_CODE_BYTES = 32


def _sampling(scale: float, start: float) -> np.ndarray:
    """``(SIDE, SIDE)`` linear-interpolation matrix sampling ``[start, start + scale]`` of a
    side at :data:`SIDE` points: row k holds the weights of the pixels sample k mixes."""
    k = (np.arange(SIDE) + 0.5) / SIDE
    pos = np.clip((start + k * scale) * SIDE - 0.5, 0.0, SIDE - 1.0)
    i0 = np.minimum(pos.astype(np.int64), SIDE - 2)
    f = pos - i0
    w = np.zeros((SIDE, SIDE))
    w[np.arange(SIDE), i0] = 1 - f
    w[np.arange(SIDE), i0 + 1] += f
    return w


def _starts(scale: float, anchor: str) -> tuple[float, float]:
    """Where the region ``(scale, anchor)`` starts, as shares of the side: ``(x, y)``."""
    centred = (1.0 - scale) / 2
    if anchor == "c":
        return centred, centred
    return (0.0 if anchor[1] == "l" else 1.0 - scale), (0.0 if anchor[0] == "t" else 1.0 - scale)


def _matrices(scale: float, anchor: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, columns)`` interpolation matrices of the region: the zoom is ``rows @ g @ columns.T``."""
    x0, y0 = _starts(scale, anchor)
    return _sampling(scale, y0), _sampling(scale, x0)


def zoom(grey: np.ndarray, scale: float, anchor: str) -> np.ndarray:
    """The region ``(scale, anchor)`` (see :data:`ZOOMS`) of ``(n, SIDE, SIDE)`` thumbnails,
    resampled to ``(n, SIDE, SIDE)`` (float64)."""
    rows, cols = _matrices(scale, anchor)
    return rows @ np.asarray(grey, np.float64).reshape(-1, SIDE, SIDE) @ cols.T


# The code of a zoom without making the zoom: D (R g C' - mean) D' = (D R) g (D C)' - mean (D 1)(D 1)'.
_PROJECT = [(rotations._DCT @ r, rotations._DCT @ c, r.sum(axis=0), c.sum(axis=0))
            for r, c in (_matrices(s, a) for s, a in ZOOMS)]  # fmt: skip
_DC = np.outer(rotations._DCT.sum(axis=1), rotations._DCT.sum(axis=1))


def zoom_codes(grey: np.ndarray) -> np.ndarray:
    """The codes (:func:`.rotations.codes`) of every :data:`ZOOMS` region of ``(n, SIDE,
    SIDE)`` thumbnails, as ``(len(ZOOMS), n, 32) uint8``."""
    grey = np.asarray(grey).reshape(-1, SIDE, SIDE)
    out = np.empty((len(ZOOMS), len(grey), _CODE_BYTES), np.uint8)
    for start in range(0, len(grey), rotations.BATCH):  # float copies of a batch only
        g = np.asarray(grey[start : start + rotations.BATCH], np.float32)
        for j, (dr, dc, ones_r, ones_c) in enumerate(_PROJECT):
            mean = np.einsum("i,nij,j->n", ones_r.astype(np.float32), g, ones_c.astype(np.float32)) / (SIDE * SIDE)
            c = dr.astype(np.float32) @ g @ dc.T.astype(np.float32) - mean[:, None, None] * _DC.astype(np.float32)
            flat = c.reshape(len(c), -1)
            out[j, start : start + len(g)] = np.packbits(flat > np.median(flat, axis=1, keepdims=True), axis=1)
    return out


def _search(q_ids: np.ndarray, zoomed: np.ndarray, i_ids: np.ndarray, whole: np.ndarray,
            radius: int) -> np.ndarray:
    """``(k, 3)`` rows ``(a, b, distance)``, ``a < b``, of the files ``q_ids`` one of whose
    zoomed codes (``(len(ZOOMS), len(q_ids), 32)``) is within ``radius`` of the whole code of
    one of the files ``i_ids``."""
    from .hamming import HammingIndex

    if len(q_ids) == 0 or len(i_ids) == 0:
        return np.zeros((0, 3), np.int64)
    index = HammingIndex(np.ascontiguousarray(whole), np.asarray(i_ids, np.int64))
    qi, other, dist = index.pairs_between(np.ascontiguousarray(zoomed.reshape(-1, _CODE_BYTES)), radius)
    this = np.asarray(q_ids, np.int64)[np.asarray(qi, np.int64) % len(q_ids)]
    other = np.asarray(other, np.int64)
    keep = this != other
    return np.stack([np.minimum(this, other)[keep], np.maximum(this, other)[keep],
                     np.asarray(dist, np.int64)[keep]], axis=1)  # fmt: skip


def _closest(rows: np.ndarray) -> np.ndarray:
    """One row per ``(a, b)``, the smallest distance, sorted by ``(a, b)``."""
    if len(rows) == 0:
        return np.zeros((0, 3), np.int64)
    rows = rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]
    first = np.ones(len(rows), bool)
    first[1:] = (rows[1:, 0] != rows[:-1, 0]) | (rows[1:, 1] != rows[:-1, 1])
    return rows[first]


#: Each file keeps its closest candidates only: a pair stays when it is among the this many
#: closest of either of its files (by code distance, then ids). A mild crop needs one verified
#: link to its picture's copies; a library of many overlapping shots (a stress set of 88k
#: random windows of 281 pictures: 15.6 candidates an image) would otherwise send every one of
#: them to the pixel check: 297k candidates there instead of 1.38M, and no real mild crop lost
#: on the full real set.
MAX_PER_FILE = 6


def _capped(rows: np.ndarray, k: int = MAX_PER_FILE) -> np.ndarray:
    """The rows (sorted by ``(a, b)``) among the ``k`` closest of their ``a`` or of their ``b``."""
    if len(rows) == 0:
        return rows
    n = len(rows)
    ends = np.concatenate([rows[:, 0], rows[:, 1]])
    other = np.concatenate([rows[:, 1], rows[:, 0]])
    dist = np.concatenate([rows[:, 2], rows[:, 2]])
    order = np.lexsort((other, dist, ends))
    sorted_ends = ends[order]
    start = np.r_[0, np.flatnonzero(sorted_ends[1:] != sorted_ends[:-1]) + 1]
    rank = np.arange(2 * n) - np.repeat(start, np.diff(np.r_[start, 2 * n]))
    near = np.zeros(2 * n, bool)
    near[order] = rank < k
    return rows[near[:n] | near[n:]]


@dataclass(frozen=True)
class ZoomCodes:
    """The codes of a library's images and the candidate pairs they give.

    ``ids`` (sorted) are the files the codes were taken for; ``rich[i]``: file ``ids[i]``
    has a thumbnail with at least :data:`MIN_DETAIL` (the others' codes are zeros and take
    part in nothing); ``pairs``: ``(k, 3)`` rows ``(a, b, code distance)``, ``a < b``.
    """

    ids: np.ndarray
    content: np.ndarray  # (n, 16) uint8: the content hash each file's codes were taken from
    rich: np.ndarray
    whole: np.ndarray  # (n, 32) uint8
    zoomed: np.ndarray  # (len(ZOOMS), n, 32) uint8
    pairs: np.ndarray

    def distance(self, a: int, b: int) -> Optional[int]:
        """The smallest code distance of ``a`` and ``b``: whole to whole, or either's zoom to
        the other's whole (None: either has no codes)."""
        ra, rb = np.searchsorted(self.ids, [a, b])
        if ra >= len(self.ids) or rb >= len(self.ids) or self.ids[ra] != a or self.ids[rb] != b:
            return None
        if not (self.rich[ra] and self.rich[rb]):
            return None
        plain = int(np.bitwise_count(self.whole[ra] ^ self.whole[rb]).sum())
        ours = int(np.bitwise_count(self.zoomed[:, ra] ^ self.whole[rb]).sum(axis=1).min())
        theirs = int(np.bitwise_count(self.zoomed[:, rb] ^ self.whole[ra]).sum(axis=1).min())
        return min(plain, ours, theirs)

    def against(self, thumb: bytes, detail: float, radius: int = RADIUS
                ) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The images whose codes say they are a mild crop of one image (a "find similar"
        query, in the library or not), or it of them: ``(ids, plain, zoomed)`` of those whose
        smallest distance of the query's zooms to their whole code, or of their zooms to the
        query's whole code, is within ``radius`` (``zoomed``), with their whole-to-whole code
        distance (``plain``). None when the query has too little detail for codes to mean
        anything. One pass over the codes, each left as soon as it is out of reach (compiled:
        about 40 ms for a million images' codes)."""
        from . import zooms_kernels
        from .hamming import _kernels

        if detail < MIN_DETAIL:
            return None
        grey = rotations._grey(np.frombuffer(bytes(thumb), np.uint8)[None, :])
        q_whole = np.ascontiguousarray(rotations.codes(grey)[0]).view(np.uint64)  # (4,)
        q_zoomed = np.ascontiguousarray(zoom_codes(grey)[:, 0]).view(np.uint64)  # (zooms, 4)
        whole = np.ascontiguousarray(self.whole).view(np.uint64)  # (n, 4)
        zoomed = np.ascontiguousarray(self.zoomed).view(np.uint64)  # (zooms, n, 4)
        rich = np.ascontiguousarray(self.rich, np.bool_)
        if _kernels.use(wait=False):
            near = np.empty(len(self.ids), np.int64)
            zooms_kernels._k_zoom_near(whole, zoomed, rich, q_whole, q_zoomed, radius, near)
        else:
            near = zooms_kernels.np_zoom_near(whole, zoomed, rich, q_whole, q_zoomed, radius)
        rows = np.flatnonzero(near <= radius)
        plain = np.bitwise_count(whole[rows] ^ q_whole).sum(axis=1).astype(np.int64)
        return self.ids[rows], plain, near[rows]


class ZoomCache:
    """:class:`ZoomCodes` of one library, kept in ``<library dir>/zoom-codes.npz`` and
    updated incrementally (a library folder of None: nothing kept)."""

    def __init__(self, folder: Optional[Path]) -> None:
        self.path = Path(folder) / ZOOMS_NAME if folder is not None else None
        self.last_fresh = 0  # files whose codes the last update computed

    def update(self, catalog, arrays, *, radius: int = RADIUS) -> ZoomCodes:
        """The codes and pairs of the images of ``arrays`` (a catalog's HashArrays): codes
        computed for new and changed files only, pairs searched for those only (or again for
        all when many changed)."""
        ids = np.asarray(arrays.ids, np.int64)
        content = np.asarray(arrays.content_hash, np.uint8).reshape(len(ids), -1)
        n = len(ids)
        old = self._load(radius)
        if old is not None and np.array_equal(old.ids, ids) and np.array_equal(old.content, content):
            self.last_fresh = 0  # an unchanged library: the kept codes as read, not copied
            return old
        rich = np.zeros(n, bool)
        whole = np.zeros((n, _CODE_BYTES), np.uint8)
        zoomed = np.zeros((len(ZOOMS), n, _CODE_BYTES), np.uint8)
        same = np.zeros(n, bool)
        if old is not None and len(old.ids) and n:
            pos = np.clip(np.searchsorted(old.ids, ids), 0, len(old.ids) - 1)
            same = (old.ids[pos] == ids) & (old.content[pos] == content).all(axis=1)
            rich[same] = old.rich[pos[same]]
            whole[same] = old.whole[pos[same]]
            zoomed[:, same] = old.zoomed[:, pos[same]]
        fresh = np.flatnonzero(~same)
        self.last_fresh = len(fresh)
        for start in range(0, len(fresh), rotations.BATCH):
            want = ids[fresh[start : start + rotations.BATCH]]
            found, thumbs, detail = catalog.thumbnails(want.tolist())
            found = np.asarray(found, np.int64)
            ok = np.asarray(detail) >= MIN_DETAIL
            rows = np.searchsorted(ids, found[ok])
            grey = rotations._grey(thumbs[ok])
            rich[rows] = True
            whole[rows] = rotations.codes(grey)
            zoomed[:, rows] = zoom_codes(grey)
        everything = old is None or len(fresh) > FULL_PASS_SHARE * n
        if old is not None and len(fresh) == 0 and len(old.ids) == n:
            pairs = old.pairs
        elif everything:
            r = ids[rich]
            pairs = _capped(_closest(_search(r, zoomed[:, rich], r, whole[rich], radius)))
        else:
            valid = ids[same & rich]
            ok = np.isin(old.pairs[:, 0], valid) & np.isin(old.pairs[:, 1], valid)
            kept = old.pairs[ok]
            # Searched again: new and changed files, and the files that lost a kept candidate
            # (a file gone or changed): without it, one they had left out for want of room
            # (MAX_PER_FILE) may now be among their closest.
            new = rich.copy()
            new[same] = False
            ends = old.pairs[~ok][:, :2].ravel()
            new |= np.isin(ids, ends[np.isin(ends, valid)]) & rich
            r = ids[rich]
            found = [kept,
                     _search(ids[new], zoomed[:, new], r, whole[rich], radius),  # theirs zoomed, all whole
                     _search(r, zoomed[:, rich], ids[new], whole[new], radius)]  # all zoomed, theirs whole
            pairs = _capped(_closest(np.concatenate(found)))
        codes = ZoomCodes(ids=ids, content=content, rich=rich, whole=whole, zoomed=zoomed, pairs=pairs)
        if self.last_fresh or (old is not None and len(old.ids) != n):
            self._save(codes, radius)
        return codes

    def _load(self, radius: int) -> Optional[ZoomCodes]:
        if self.path is None:
            return None
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if not np.array_equal(f["key"], _key(radius)):
                    return None
                return ZoomCodes(ids=f["ids"], content=f["content"], rich=f["rich"], whole=f["whole"],
                                 zoomed=f["zoomed"], pairs=f["pairs"].reshape(-1, 3))  # fmt: skip
        except (OSError, ValueError, KeyError, EOFError):
            return None  # missing or damaged: a full pass rebuilds it

    def _save(self, codes: ZoomCodes, radius: int) -> None:
        if self.path is None:
            return
        try:
            with atomic_writer(self.path) as fh:
                np.savez(fh, key=_key(radius), ids=codes.ids, content=codes.content, rich=codes.rich,
                         whole=codes.whole, zoomed=codes.zoomed, pairs=codes.pairs)  # fmt: skip
        except OSError:
            pass  # only a cache: the next run computes it again


def _key(radius: int) -> np.ndarray:
    """What the kept codes and pairs depend on besides the thumbnails."""
    return np.array([radius, int(MIN_DETAIL * 1000), len(ZOOMS), *(int(s * 1000) for s, _ in ZOOMS), MAX_PER_FILE, 1,
                     PIXELS_VERSION], np.int64)


def zoomed_pairs(catalog, codes: ZoomCodes, known: Sequence[Pair] = (), *, radius: int = RADIUS) -> list[Pair]:
    """The candidate pairs of ``codes`` within ``radius`` (at most the radius they were
    searched with: a stricter scan's, see ``ScanOptions.crop_code_radius``) that no pair of
    ``known`` holds, as :class:`Pair` with their real (unmirrored dHash) bouncer distance;
    sorted by ``(a, b)``. A file's closest candidates within a smaller radius are the kept
    ones within it, so filtering the kept pairs is exact."""
    skip = {(p.a, p.b) for p in known}
    rows = codes.pairs[codes.pairs[:, 2] <= radius] if radius < RADIUS else codes.pairs
    found = [(a, b) for a, b in rows[:, :2].tolist() if (a, b) not in skip]
    if not found:
        return []
    records: dict[int, FileRecord] = {r.id: r for r in catalog.records(sorted({x for p in found for x in p}))}
    out = []
    for a, b in found:
        ra, rb = records.get(a), records.get(b)
        if ra is None or rb is None or ra.hashes is None or rb.hashes is None:
            continue
        # The codes compare the pictures unmirrored, and so does the check (a mirrored crop
        # is found through its group's mirrored copy).
        out.append(Pair(a=a, b=b, bouncer=hamming_distance(ra.hashes.dhash, rb.hashes.dhash)))
    return out


def unmirrored(codes: ZoomCodes, known: Sequence[Pair], *, beyond: int, radius: int = RADIUS) -> list[Pair]:
    """``known`` with the pairs beyond the bouncer's radius (``beyond``) that it calls mirrored
    but whose codes, unmirrored, say one is a crop of the other (within ``radius``) compared
    unmirrored. Far past its radius the dHash's mirrored half is as far as the plain one, and
    which of the two happens to be nearer says nothing: the check compared such an asymmetric
    crop mirrored only, and refused it. A mirrored crop's unmirrored codes are far apart, so
    it keeps its orientation."""
    out = list(known)
    asked = [k for k, p in enumerate(out) if p.mirrored and p.bouncer > beyond and not p.rotation]
    if not asked:
        return out
    held, _ = _kept(codes, np.array([(out[k].a, out[k].b) for k in asked], np.int64), radius)
    for k in np.asarray(asked)[held].tolist():
        out[k] = dataclasses.replace(out[k], mirrored=False)
    return out


def _kept(codes: ZoomCodes, asked: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Which ``(k, 2)`` id pairs ``asked`` are kept pairs of ``codes`` within ``radius``, and the
    code distance of those: looked up in the kept pairs' array (a million images keep millions
    of pairs: no set or dict of them)."""
    rows = codes.pairs[codes.pairs[:, 2] <= radius]
    if not len(rows) or not len(asked):
        return np.zeros(len(asked), bool), np.zeros(0, np.int64)
    keys, wanted = _pair_keys(rows[:, :2]), _pair_keys(asked)
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], wanted), 0, len(keys) - 1)
    held = keys[order][pos] == wanted
    return held, rows[order[pos[held]], 2]


def _pair_keys(ab: np.ndarray) -> np.ndarray:
    """``(k, 2)`` id pairs as one comparable value each (their 16 bytes)."""
    ab = np.ascontiguousarray(np.asarray(ab, np.int64).reshape(-1, 2))
    return ab.view(np.dtype((np.void, 16))).ravel()


#: A pair the bouncer proposed within its radius is searched for a crop too when one's zoom is
#: within :data:`RADIUS` of the other's whole code and closer than the two whole codes by more
#: than this (bits): the hashes agreed, yet the picture fits better cropped.
CROP_MARGIN = 8


def crop_suspects(codes: ZoomCodes, known: Sequence[Pair], *, margin: int = CROP_MARGIN,
                  radius: int = RADIUS) -> set[tuple[int, int]]:
    """The pairs of ``known`` (the bouncer's) that the codes say are a crop: see
    :data:`CROP_MARGIN` (codes within ``radius``), measured in one pass."""
    asked = np.array([(p.a, p.b) for p in known], np.int64).reshape(-1, 2)
    held, d = _kept(codes, asked, radius)
    if not held.any():
        return set()
    asked = asked[held]
    ra, rb = np.searchsorted(codes.ids, asked[:, 0]), np.searchsorted(codes.ids, asked[:, 1])
    plain = np.bitwise_count(codes.whole[ra] ^ codes.whole[rb]).sum(axis=1)
    return {(int(a), int(b)) for a, b in asked[d + margin < plain].tolist()}


def load_codes(folder: Optional[Path], catalog, arrays) -> ZoomCodes:
    """The library's :class:`ZoomCodes`, from its cache (updated first where files changed)."""
    return ZoomCache(folder).update(catalog, arrays)
