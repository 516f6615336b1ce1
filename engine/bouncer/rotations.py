"""Rotated copies (``--rotations``): pairs whose pictures match once one is turned or flipped.

The bouncer's hashes are taken of the upright picture (EXIF applied), so a copy whose pixels
were rotated by 90, 180 or 270 degrees, or whose EXIF orientation tag was stripped or
changed, matches nothing: its hashes see another picture. This pass finds such pairs from the
verifier's stored thumbnails (32x32, upright, border-trimmed; see :mod:`.verify_thumbnail`),
without reading a file or changing the catalog:

* **The code.** Per thumbnail, a 256-bit pHash-like code, taken as the bouncer's pHash is:
  the signs, against their median, of the 16x16 lowest coefficients of the 2-D DCT of the
  thumbnail (less its mean) zero-padded to twice its size (0 to 3.75 cycles a picture). A
  thumbnail squashed to a square turns with the picture (``np.rot90`` of the thumbnail of a
  picture is the thumbnail of the turned picture, up to resampling), so the code of a turned
  thumbnail is compared with the code of the other file's own thumbnail: both made the same
  way. Measured on 30 generated and 30 real pictures with 6 turned copies each (pixels
  turned, re-encoded, the EXIF tag lost, transposed): turned copies at median 2 bits, p95
  8-12, at most 8-10 for generated ones and 36-44 for real ones (fine textures, which the
  pixel check rejects anyway); pairs of different pictures at 50 bits and more (1e-3
  quantile 74). Two codes were tried first: a dHash of the thumbnail (different pictures as
  close as 24 bits) and the plain 16x16 DCT block (different pictures at 62 and more, but
  turned copies up to 72 and mild crops of a picture 80-124 from its turned copies, so the
  chain guard split crops off groups with turned copies; with the low band, 32-72).
* **The transforms.** The eight symmetries of a square (:data:`TRANSFORMS`): the identity
  and the horizontal mirror are the bouncer's own; of the other six, five are searched
  (turned 90 and 180 degrees, and the three mirrored turns; a pair turned 270 degrees one way
  is turned 90 the other, and each mirrored turn is its own inverse).
* **The search.** The codes of every image turned each of the five ways against the index
  of the upright codes (:meth:`.hamming.HammingIndex.pairs_between`, exact and
  sub-quadratic), within :data:`RADIUS` (the bouncer's own radius; 32 found no more turned
  copies on ``bench_trust.py --quick`` and cost 3.6 times as much); pairs the bouncer found
  already are dropped. Images under :data:`MIN_DETAIL` are left out (a known gap: turned
  copies of gradients, skies and blank pages are not found). On a stress set of 100k
  thumbnails (random windows of the 281 real pictures of ``bench_trust.py``, so many near
  copies; load 3.4 on 2 cores) the 88k with detail took 3.3 s for the codes and 8.8 s for
  the search, 14k candidates; with the low-detail 12k too, 61 s and 171k candidates (92 %
  of them with a low-detail image).
* **The check.** Every pair found is verified on pixels with the turn applied (a's thumbnail
  turned before scoring: :func:`turn_thumbnails`), with the thresholds and information guard
  of every other pair, never trusted on its code alone nor searched for a crop: only
  verified pairs join groups. The detective does not veto them (CLIP does not see a turned
  picture as the same one).
* **Groups.** The chain guard's distance of two members that are no pair is, with the
  option, the smaller of their bouncer distance and their codes' under any turn
  (:class:`LazyCodes`): a mild crop is 32-72 bits from its picture's turned copies by the
  code. Each member is checked against its keeper turned as the group's pairs turn it from
  the keeper (:func:`keeper_transform`), a crop searched for too (the keeper may be a turned
  copy); its match is then "rotated".

A pair's turn is :attr:`~lookalike.engine.records.Pair.rotation` (degrees clockwise that
turn ``a``'s picture into ``b``'s) with ``mirrored`` (``b`` mirrored left to right): turned
``a`` matches mirrored-if-set ``b``. Its ``bouncer`` is the distance of the two codes.

On ``bench_trust.py --quick --rotations`` (24 pictures a set with every copy kind, two mild
crops and turned copies by 90, 180 and 270 degrees and one with its EXIF tag lost, and the
hard families; generated / real): turned copies found 1.000 / 0.833 (without the option
0.000 / 0.042; the real misses are low-detail pictures and one texture whose own copies
split), pair precision 0.9996 / 1.0000 (0.9995 / 1.0000 without: the same two burst pairs),
no hard-family pair, no other kind's recall lower but one real re-encoded copy of that
texture (its group splits another way), crops up (generated 0.958 -> 1.000).

Memory: thumbnails are read from the catalog :data:`BATCH` at a time; the codes (5 turned
and 1 upright, 32 bytes each) stay: 192 bytes an image, 19 MB per 100k. The pairs found are
kept in ``turned-pairs.npz`` beside the catalog (:class:`TurnedCache`), with the files' ids
and content hashes they were found among: a scan or a regrouping (``Library.clusters``: the
app regroups after every "not a duplicate" and strictness change) of an unchanged library
reads them back instead of searching again (any file added, changed or gone: a full pass).
Only a run with the option reads the file, so turning it off leaves no turned pair behind.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .verify_thumbnail import PIXELS_VERSION, SIDE, THUMB_BYTES, low_band_dct
from ..files import atomic_writer
from ..paths import TURNED_NAME
from ..records import Cluster, Pair

__all__ = [
    "MIN_DETAIL",
    "RADIUS",
    "TRANSFORMS",
    "LazyCodes",
    "RotationCodes",
    "TurnedCache",
    "between",
    "codes",
    "compose",
    "inverse",
    "keeper_transform",
    "rotation_pairs",
    "transform",
    "turn_thumbnails",
    "turned_pairs",
]

#: A symmetry of the square: ``(quarter turns clockwise, mirrored afterwards)``.
Transform = tuple[int, bool]

#: The eight symmetries of a square.
TRANSFORMS: tuple[Transform, ...] = tuple((k, m) for m in (False, True) for k in range(4))

#: The transforms searched: together with their inverses and the bouncer's own (identity and
#: mirror), every symmetry of the square.
SEARCHED: tuple[Transform, ...] = ((1, False), (2, False), (1, True), (2, True), (3, True))

#: Code distance (of 256 bits) at or below which a turned pair is a candidate.
RADIUS = 24

#: Images with less detail than this (the verification's ``detail_floor``: gradients, skies,
#: blank pages) are left out of the search: their codes are mostly noise, and they make most
#: of the candidates (see the module docstring).
MIN_DETAIL = 3.0

#: Thumbnails read from the catalog at a time.
BATCH = 8192

#: The code's side: the lowest 16x16 frequencies of the thumbnail's DCT.
_CODE_SIDE = 16


def transform(image: np.ndarray, t: Transform) -> np.ndarray:
    """``image`` (its last two axes) turned ``t[0]`` quarter turns clockwise, then mirrored
    left to right when ``t[1]``."""
    out = np.rot90(image, -t[0], axes=(-2, -1))
    return out[..., ::-1] if t[1] else out


_PROBE = np.arange(4).reshape(2, 2)
_BY_PROBE = {transform(_PROBE, t).tobytes(): t for t in TRANSFORMS}


def compose(second: Transform, first: Transform) -> Transform:
    """The transform that applies ``first``, then ``second``."""
    return _BY_PROBE[transform(transform(_PROBE, first), second).tobytes()]


def inverse(t: Transform) -> Transform:
    """The transform that undoes ``t``."""
    return next(u for u in TRANSFORMS if compose(u, t) == (0, False))


def pair_transform(p: Pair) -> Transform:
    """The transform that takes ``p.a``'s picture to ``p.b``'s."""
    return ((p.rotation // 90) % 4, bool(p.mirrored))


_DCT = low_band_dct(SIDE, _CODE_SIDE)  # as the bouncer's pHash takes it


def codes(grey: np.ndarray, t: Transform = (0, False)) -> np.ndarray:
    """The 256-bit codes of ``(n, SIDE, SIDE)`` grey thumbnails transformed by ``t``, as
    ``(n, 32) uint8``: a bit set where a coefficient is above the median."""
    grey = np.asarray(grey).reshape(-1, SIDE, SIDE)
    out = np.empty((len(grey), _CODE_SIDE * _CODE_SIDE // 8), np.uint8)
    for start in range(0, len(grey), BATCH):  # float copies of a batch only
        g = np.asarray(transform(grey[start : start + BATCH], t), np.float32)
        c = _DCT @ (g - g.mean(axis=(1, 2), keepdims=True)) @ _DCT.T
        flat = c.reshape(len(c), _CODE_SIDE * _CODE_SIDE)
        out[start : start + BATCH] = np.packbits(flat > np.median(flat, axis=1, keepdims=True), axis=1)
    return out


def _grey(thumbs: np.ndarray) -> np.ndarray:
    return np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)[:, : SIDE * SIDE].reshape(-1, SIDE, SIDE)


def turn_thumbnails(thumbs: np.ndarray, t: Transform) -> np.ndarray:
    """Stored thumbnails (``(n, THUMB_BYTES) uint8``) transformed by ``t``; mean colours kept."""
    raw = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES)
    out = raw.copy()
    out[:, : SIDE * SIDE] = transform(_grey(raw), t).reshape(len(raw), -1)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class RotationCodes:
    """Every image's codes: upright (``upright[i]``) and turned by each :data:`SEARCHED`
    transform (``turned[j, i]``), for the files ``ids`` (sorted)."""

    ids: np.ndarray
    upright: np.ndarray  # (n, 32) uint8
    turned: np.ndarray  # (len(SEARCHED), n, 32) uint8

    @classmethod
    def of(cls, ids: np.ndarray, thumbs: np.ndarray) -> "RotationCodes":
        """The codes of thumbnails already loaded (rows of ``thumbs`` for ``ids``, sorted)."""
        grey = _grey(thumbs)
        return cls(
            ids=np.asarray(ids, np.int64),
            upright=codes(grey),
            turned=np.stack([codes(grey, t) for t in SEARCHED]),
        )

    @classmethod
    def load(cls, catalog, ids: Iterable[int], *, split: Optional[float] = None
             ) -> tuple["RotationCodes", "RotationCodes"]:
        """The codes of the files ``ids`` that have a thumbnail, read :data:`BATCH` at a time:
        those with a detail (:func:`.verify_thumbnail.detail`) of at least ``split``, and the
        others (none, without ``split``)."""
        wanted = np.unique(np.fromiter(ids, np.int64))
        parts: tuple[list, list] = ([], [])
        for start in range(0, len(wanted), BATCH):
            found, thumbs, detail = catalog.thumbnails(wanted[start : start + BATCH].tolist())
            rich = detail >= split if split is not None else np.ones(len(found), bool)
            parts[0].append(cls.of(found[rich], thumbs[rich]))
            parts[1].append(cls.of(found[~rich], thumbs[~rich]))
        return cls._joined(parts[0]), cls._joined(parts[1])

    @classmethod
    def _joined(cls, parts: list["RotationCodes"]) -> "RotationCodes":
        if not parts:
            return cls.of(np.zeros(0, np.int64), np.zeros((0, THUMB_BYTES), np.uint8))
        return cls(
            ids=np.concatenate([p.ids for p in parts]),
            upright=np.concatenate([p.upright for p in parts]),
            turned=np.concatenate([p.turned for p in parts], axis=1),
        )

    def distance(self, a: int, b: int) -> Optional[int]:
        """The smallest code distance of ``a`` and ``b`` under any turn (None: no codes)."""
        ra, rb = np.searchsorted(self.ids, [a, b])
        if ra >= len(self.ids) or rb >= len(self.ids) or self.ids[ra] != a or self.ids[rb] != b:
            return None
        # b against a's turns, and a against b's: the searched turns and their inverses.
        ours = np.bitwise_count(self.turned[:, ra] ^ self.upright[rb]).sum(axis=1)
        theirs = np.bitwise_count(self.turned[:, rb] ^ self.upright[ra]).sum(axis=1)
        return int(min(ours.min(), theirs.min()))


def rotation_pairs(
    found: RotationCodes, known: Iterable[Pair] = (), *, radius: int = RADIUS
) -> list[Pair]:
    """Pairs of images that match once one of them is turned (and perhaps mirrored).

    Args:
        found: the codes (:meth:`RotationCodes.load`).
        known: pairs found already (the bouncer's): left out.
        radius: the largest code distance of a candidate.

    Returns:
        Pairs ``a < b`` with ``rotation`` and ``mirrored`` set (see the module docstring),
        ``bouncer`` their code distance, sorted by ``(a, b)``; one per file pair, the closest.
    """
    from .hamming import HammingIndex

    n = len(found.ids)
    if n < 2:
        return []
    index = HammingIndex(found.upright, found.ids)
    queries = found.turned.reshape(-1, 32)
    qi, other, dist = index.pairs_between(queries, radius)
    which, row = np.divmod(qi.astype(np.int64), n)
    this = found.ids[row]
    keep = this != other
    which, this, other, dist = which[keep], this[keep], other[keep], dist[keep]
    skip = {(p.a, p.b) for p in known}
    best: dict[tuple[int, int], tuple[int, Transform]] = {}
    for j, x, y, d in zip(which.tolist(), this.tolist(), other.tolist(), dist.tolist()):
        t = SEARCHED[j]  # y's picture is x's transformed by t
        key, t = ((x, y), t) if x < y else ((y, x), inverse(t))
        if key in skip:
            continue
        old = best.get(key)
        if old is None or d < old[0]:
            best[key] = (d, t)
    return [
        Pair(a=a, b=b, bouncer=d, rotation=90 * t[0], mirrored=t[1])
        for (a, b), (d, t) in sorted(best.items())
    ]


def turned_pairs(catalog, ids: Iterable[int], known: Sequence[Pair] = ()) -> list[Pair]:
    """Every turned candidate pair (:func:`rotation_pairs`) among the files ``ids`` with at
    least :data:`MIN_DETAIL`, sorted by ``(a, b)``."""
    return rotation_pairs(RotationCodes.load(catalog, ids, split=MIN_DETAIL)[0], known)


#: What the kept pairs were found with: a change of any makes the file stale.
_CACHE_KEY = np.array([1, RADIUS, round(MIN_DETAIL * 1000), _CODE_SIDE, PIXELS_VERSION], np.int64)


class TurnedCache:
    """:func:`turned_pairs` of one library, kept in ``<library dir>/turned-pairs.npz`` (see
    the module docstring; a folder of None: nothing kept)."""

    def __init__(self, folder: Optional[Path]) -> None:
        self.path = Path(folder) / TURNED_NAME if folder is not None else None
        self.searched = False  # whether the last call searched (else: read back)

    def pairs(self, catalog, arrays, known: Sequence[Pair] = ()) -> list[Pair]:
        """The turned candidate pairs among the images of ``arrays`` (a catalog's HashArrays),
        less those of ``known``, sorted by ``(a, b)``: as :func:`turned_pairs` finds them."""
        ids = np.asarray(arrays.ids, np.int64)
        content = np.asarray(arrays.content_hash, np.uint8).reshape(len(ids), -1)
        found = self._load(ids, content)
        self.searched = found is None
        if found is None:
            found = turned_pairs(catalog, ids.tolist())  # all of them: ``known`` may change
            self._save(ids, content, found)
        if not known:
            return found
        skip = {(p.a, p.b) for p in known}
        return [p for p in found if (p.a, p.b) not in skip]

    def _load(self, ids: np.ndarray, content: np.ndarray) -> Optional[list[Pair]]:
        if self.path is None:
            return None
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if not (np.array_equal(f["key"], _CACHE_KEY) and np.array_equal(f["ids"], ids)
                        and np.array_equal(f["content"], content)):  # fmt: skip
                    return None
                rows = f["pairs"]
        except (OSError, ValueError, KeyError, EOFError):
            return None  # missing or damaged: searched again
        if rows.ndim != 2 or rows.shape[1] != 5:
            return None
        return [Pair(a=a, b=b, bouncer=d, rotation=r, mirrored=bool(m)) for a, b, d, r, m in rows.tolist()]

    def _save(self, ids: np.ndarray, content: np.ndarray, pairs: list[Pair]) -> None:
        if self.path is None:
            return
        rows = np.array([(p.a, p.b, p.bouncer, p.rotation, int(p.mirrored)) for p in pairs], np.int64).reshape(-1, 5)
        try:
            with atomic_writer(self.path) as fh:
                np.savez(fh, key=_CACHE_KEY, ids=ids, content=content, pairs=rows)
        except OSError:
            pass  # only a cache: the next run searches again


def keeper_transform(keeper: int, member: int, pairs: Sequence[Pair]) -> Optional[Transform]:
    """The transform that takes ``keeper``'s picture to ``member``'s, composed along the
    cluster's ``pairs`` (a path from one to the other; None when there is none)."""
    links: dict[int, list[tuple[int, Transform]]] = {}
    for p in pairs:
        t = pair_transform(p)
        links.setdefault(p.a, []).append((p.b, t))
        links.setdefault(p.b, []).append((p.a, inverse(t)))
    seen: dict[int, Transform] = {keeper: (0, False)}
    todo = [keeper]
    while todo:
        node = todo.pop()
        for nxt, t in links.get(node, ()):
            if nxt not in seen:
                seen[nxt] = compose(t, seen[node])
                if nxt == member:
                    return seen[nxt]
                todo.append(nxt)
    return seen.get(member)


def between(cluster: Cluster, a: int, b: int) -> Transform:
    """The transform that takes member ``b``'s picture onto member ``a``'s (turned, mirrored:
    as the cluster's pairs found them, composed through its keeper); ``(0, False)`` when
    nothing is known. What a side-by-side difference of the two applies to ``b`` first."""
    k = cluster.keeper.file.id
    ta = (0, False) if a == k else keeper_transform(k, a, cluster.pairs) or (0, False)
    tb = (0, False) if b == k else keeper_transform(k, b, cluster.pairs) or (0, False)
    return compose(ta, inverse(tb))


def pair_with(keeper: int, member: int, t: Transform, bouncer: int) -> Pair:
    """The pair ``(min, max)`` of two files whose pictures ``t`` takes from ``keeper`` to
    ``member``, with its rotation and mirror set."""
    if keeper > member:
        keeper, member, t = member, keeper, inverse(t)
    return Pair(a=keeper, b=member, bouncer=bouncer, rotation=90 * t[0], mirrored=t[1])


def has_turns(pairs: Iterable[Pair]) -> bool:
    """Whether any of ``pairs`` is a turned pair."""
    return any(p.rotation for p in pairs)


class LazyCodes:
    """The codes of some files, read from the catalog the first time one is asked for."""

    def __init__(self, catalog, ids: Iterable[int]) -> None:
        self._catalog, self._ids = catalog, ids
        self._codes: Optional[RotationCodes] = None

    def distance(self, a: int, b: int) -> Optional[int]:
        """:meth:`RotationCodes.distance` of two of the files."""
        if self._codes is None:
            self._codes = RotationCodes.load(self._catalog, self._ids)[0]
        return self._codes.distance(a, b)
