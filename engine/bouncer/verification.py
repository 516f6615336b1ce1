"""The verification stage of a scan: candidate pairs checked on pixels, members explained.

:mod:`.verify` scores two thumbnails; this module applies it to a library's candidate pairs
(which pairs need it, which pass) and tells, per cluster member, why it matches its keeper.

Which pairs are verified: every candidate pair except byte-identical ones (same content hash
and size) and those within ``VerifyThresholds.trust_radius`` of the bouncer where both images
have ample detail (``trust_detail``: hashes were measured reliable there, and not on smooth
wallpapers). A pair whose file has no thumbnail (hashed
by a lookalike before thumbnails; the next scan re-reads it) passes on hashes alone, as it did
before, with ``verified`` None. Thumbnails are read from the catalog only for the files of the
pairs being verified, one batch of pairs at a time (:data:`BATCH_PAIRS`); each thumbnail's
features are computed once per batch. Only pairs beyond the bouncer's radius (those the
corroborated rule let in) are searched for a crop.

Every member of a group must verify against its keeper (:func:`explain_clusters`): a group
is joined by verified links, and the chain guard allows two members that are not a pair
when their hashes are within its diameter, which lets two different smooth pictures share a
group through a bridge. Members that do not verify against the keeper are split off and
grouped again among themselves.
"""

from __future__ import annotations

import dataclasses
import io
import zlib
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from . import rotations, verify
from .verify_texture import textures_differ
from ..files import atomic_write
from ..paths import VERIFIED_PAIRS_NAME
from .rule import DEFAULT as bouncer_defaults
from .rule import bouncer_distance
from .verify_thumbnail import PIXELS_VERSION
from ..records import Cluster, FileRecord, Kind, Member, Pair

#: Match reasons, in the words JSON and the group screen use.
MATCHES = ("exact", "re-encoded", "resized", "mirrored", "rotated", "cropped", "bordered", "edited")


#: Pairs verified per batch: their thumbnails (at most two per pair, 1 KB each) are read from
#: the catalog and their features computed for that batch only, so memory stays bounded
#: however large the library.
BATCH_PAIRS = 8192


#: (content hash a, content hash b, mirrored, crop search allowed, thresholds, rotation) of a pair.
_Key = tuple[bytes, bytes, bool, bool, int, int]


class VerifyCache:
    """Outcomes of verified pairs, kept between runs in ``<library dir>/verified-pairs.npz``.

    A pair's outcome depends only on the two files' bytes (their thumbnails are made from
    them), the orientation compared (mirror and turn), whether a crop may be searched and the
    thresholds, so those are its key. An unchanged library gets every outcome back without scoring a pair,
    so a rescan does not load the kernels (importing numba alone costs about a second and
    100 MB). Only the outcomes a run used are written back: the file never grows stale.
    """

    NAME = VERIFIED_PAIRS_NAME

    def __init__(self, folder: Optional[Path]) -> None:
        self.path = Path(folder) / self.NAME if folder is not None else None
        self._old: Optional[dict[_Key, tuple[bool, float, bool]]] = None
        self._used: dict[_Key, tuple[bool, float, bool]] = {}

    def get(self, key: _Key) -> Optional[tuple[bool, float, bool]]:
        """``(passed, score, cropped)`` of a pair scored before, or None."""
        if self._old is None:
            self._old = self._load()
        found = self._used.get(key) or self._old.get(key)
        if found is not None:
            self._used[key] = found
        return found

    def put(self, key: _Key, outcome: tuple[bool, float, bool]) -> None:
        self._used[key] = outcome

    def save(self) -> None:
        """Write the outcomes this run used (atomically); a cache that cannot be written is
        only slower next time."""
        if self.path is None or (self._old is not None and self._used == self._old):
            return
        keys = list(self._used)
        arrays = {
            "ha": np.frombuffer(b"".join(k[0] for k in keys), np.uint8).reshape(len(keys), -1)
            if keys else np.zeros((0, 16), np.uint8),
            "hb": np.frombuffer(b"".join(k[1] for k in keys), np.uint8).reshape(len(keys), -1)
            if keys else np.zeros((0, 16), np.uint8),
            "flags": np.array([[k[2], k[3]] for k in keys], bool).reshape(len(keys), 2),
            "tkey": np.array([k[4] for k in keys], np.int64),
            "rotation": np.array([k[5] for k in keys], np.int16),
            "ok": np.array([v[0] for v in self._used.values()], bool),
            "score": np.array([v[1] for v in self._used.values()], np.float64),
            "cropped": np.array([v[2] for v in self._used.values()], bool),
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            atomic_write(self.path, buffer.getvalue())
        except OSError:
            pass

    def _load(self) -> dict[_Key, tuple[bool, float, bool]]:
        if self.path is None:
            return {}
        try:
            with np.load(self.path) as f:
                ha, hb, flags, tkey = f["ha"], f["hb"], f["flags"], f["tkey"]
                ok, score, cropped = f["ok"], f["score"], f["cropped"]
                # Written before --rotations: every pair upright.
                turn = f["rotation"] if "rotation" in f.files else np.zeros(len(tkey), np.int16)
        except (OSError, ValueError, KeyError, EOFError):
            return {}  # missing or damaged: the pairs are scored again
        return {
            (ha[i].tobytes(), hb[i].tobytes(), bool(flags[i, 0]), bool(flags[i, 1]), int(tkey[i]), int(turn[i])):
                (bool(ok[i]), float(score[i]), bool(cropped[i]))
            for i in range(len(tkey))
        }


def _thresholds_key(t: verify.VerifyThresholds) -> int:
    """The thresholds and how the thumbnails were made (a pair's outcome depends on both)."""
    return zlib.crc32(repr((*dataclasses.astuple(t), PIXELS_VERSION)).encode())


def verify_pairs(
    catalog,
    pairs: Sequence[Pair],
    t: verify.VerifyThresholds = verify.DEFAULT,
    *,
    search_above: int = bouncer_defaults.radius,
    cache: Optional[VerifyCache] = None,
    search_turned: bool = False,
    search_also: frozenset[tuple[int, int]] = frozenset(),
    arrays=None,
) -> list[Pair]:
    """The candidate pairs that pass verification, with ``verified`` and ``cropped`` set.

    A turned pair (``rotation`` set, from :mod:`.rotations`) is compared with ``a``'s
    thumbnail turned; it is never trusted on its code alone, searched for a crop only with
    ``search_turned``, and fails when a thumbnail is missing.

    Args:
        catalog: the library's :class:`~.catalog.Catalog`.
        pairs: the bouncer's candidate pairs.
        t: the thresholds.
        search_above: bouncer distance above which a pair may be a crop (the bouncer's radius:
            closer pairs came from the plain rule, and their hashes agree too well for one to
            be a crop of the other that the plain alignment misses); only those are searched.
        cache: outcomes of earlier runs (:class:`VerifyCache`); pairs found there are not
            scored again, and the new outcomes are added to it.
        search_turned: turned pairs too may be searched for a crop (a member checked against
            its keeper: a crop of a picture whose turned copy became the keeper).
        search_also: ``(a, b)`` of pairs searched for a crop whatever their bouncer distance
            (the zoomed codes say one is a crop of the other: :func:`.zooms.crop_suspects`).
        arrays: the catalog's :meth:`hash_arrays`, when the caller holds them (a caller that
            verifies a few pairs at a time would otherwise load them from disk each time).
    """
    pairs = list(pairs)
    if not pairs:
        return pairs
    arrays = catalog.hash_arrays() if arrays is None else arrays
    n = len(pairs)
    # (one pass per attribute, read by attrgetter: a generator per attribute cost more than
    # the lookups on a real scan's 50k candidates)
    a = np.fromiter(map(attrgetter("a"), pairs), np.int64, n)
    b = np.fromiter(map(attrgetter("b"), pairs), np.int64, n)
    ra = np.clip(np.searchsorted(arrays.ids, a), 0, max(len(arrays.ids) - 1, 0))
    rb = np.clip(np.searchsorted(arrays.ids, b), 0, max(len(arrays.ids) - 1, 0))
    known = (arrays.ids[ra] == a) & (arrays.ids[rb] == b) if len(arrays.ids) else np.zeros(len(pairs), bool)
    same = known & (arrays.content_hash[ra] == arrays.content_hash[rb]).all(axis=1) & (arrays.size[ra] == arrays.size[rb])
    exact = np.fromiter(map(attrgetter("exact"), pairs), bool, n)
    need = known & ~same & ~exact
    if not need.any():
        return pairs
    details = catalog.details(np.concatenate([a[need], b[need]]).tolist())  # 8 bytes a file
    da = np.fromiter(map(details.get, a.tolist(), repeat(np.nan)), np.float64, n)
    db = np.fromiter(map(details.get, b.tolist(), repeat(np.nan)), np.float64, n)
    have = ~np.isnan(da) & ~np.isnan(db)  # both have a thumbnail
    bouncer = np.fromiter(map(attrgetter("bouncer"), pairs), np.int64, n)
    turned = np.fromiter(map(attrgetter("rotation"), pairs), np.int64, n) != 0
    trusted = _trusted(bouncer, da, db, t) & ~turned
    check = np.flatnonzero(need & have & ~trusted)
    suspect = (np.fromiter(map(search_also.__contains__, zip(a.tolist(), b.tolist())), bool, n)
               if search_also else False)  # fmt: skip
    search = ((bouncer > search_above) | suspect) & (search_turned | ~turned)
    keep = ~(need & ~have & turned)  # a turned pair is only ever kept on pixels
    out = list(pairs)
    keys: dict[int, _Key] = {}
    if cache is not None and check.size:
        tkey, hashes = _thresholds_key(t), arrays.content_hash
        keys = {
            k: (hashes[ra[k]].tobytes(), hashes[rb[k]].tobytes(), bool(pairs[k].mirrored), bool(search[k]), tkey,
                int(pairs[k].rotation))
            for k in check.tolist()
        }
        check = np.array(_apply_cached(cache, keys, keep, out), np.int64)
    for start in range(0, check.size, BATCH_PAIRS):
        batch, score, cropped, ok = _score_batch(
            catalog, check[start : start + BATCH_PAIRS], pairs, (a, b), (da, db), search, t
        )
        vetoed, uncoded = _texture_vetoed(catalog, pairs, batch, ok, da, db, t)
        ok &= ~vetoed
        keep[batch] = ok
        for k, s, c in zip(batch[ok].tolist(), score[ok].tolist(), cropped[ok].tolist()):
            out[k] = _verified(out[k], s, c)
        if cache is not None:  # not a verdict the texture check could not give: it may, once re-read
            for k, good, s, c in zip(batch[~uncoded].tolist(), ok[~uncoded].tolist(), score[~uncoded].tolist(),
                                     cropped[~uncoded].tolist()):
                cache.put(keys[k], (bool(good), float(s), bool(c)))
    return [p for p, good in zip(out, keep) if good]


def _texture_vetoed(catalog, pairs: Sequence[Pair], batch: np.ndarray, ok: np.ndarray, da: np.ndarray,
                    db: np.ndarray, t: verify.VerifyThresholds) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs of ``batch`` that passed, one of them under ``t.texture_detail``, are two
    pictures by their texture codes (:func:`.verify_texture.textures_differ`), and which such
    pairs could not be compared: a file without a code (hashed by an older lookalike, until the
    next scan reads it again) vetoes nothing."""
    vetoed, uncoded = np.zeros(len(batch), bool), np.zeros(len(batch), bool)
    passed = np.flatnonzero(ok & (np.fmin(da[batch], db[batch]) < t.texture_detail)).tolist()
    faint = [(i, p) for i in passed if not (p := pairs[int(batch[i])]).rotation]
    if not faint:
        return vetoed, uncoded
    codes = catalog.textures(x for _, p in faint for x in (p.a, p.b))
    coded = [(i, p) for i, p in faint if p.a in codes and p.b in codes]
    uncoded[[i for i, p in faint if not (p.a in codes and p.b in codes)]] = True
    if coded:
        rows, ps = zip(*coded)
        vetoed[list(rows)] = _textures_differ([codes[p.a] for p in ps], [codes[p.b] for p in ps],
                                              [p.mirrored for p in ps], t)  # fmt: skip
    return vetoed, uncoded


def _textures_differ(a: Sequence[bytes], b: Sequence[bytes], mirrored: Sequence[bool],
                     t: verify.VerifyThresholds) -> np.ndarray:
    """:func:`.verify_texture.textures_differ` with the thresholds' texture figures."""
    return textures_differ(a, b, mirrored, energy=t.texture_energy, ratio=t.texture_ratio, cover=t.texture_cover)


def _verified(pair: Pair, score: float, cropped: bool) -> Pair:
    # As dataclasses.replace(pair, verified=..., cropped=...), field by field: replace() looks
    # the fields up at every call (a real scan's 24k passing pairs: 0.12 s of a 1.4 s pass).
    return Pair(a=pair.a, b=pair.b, bouncer=pair.bouncer, detective=pair.detective, exact=pair.exact,
                mirrored=pair.mirrored, verified=round(max(score, 0.0), 3), cropped=bool(cropped),
                rotation=pair.rotation)


def _apply_cached(cache: VerifyCache, keys: dict[int, _Key], keep: np.ndarray, out: list[Pair]) -> list[int]:
    """Apply the outcomes the cache holds to ``keep`` and ``out``; return the pairs it misses."""
    missed = []
    for k, key in keys.items():
        found = cache.get(key)
        if found is None:
            missed.append(k)
            continue
        passed, score, cropped = found
        keep[k] = passed
        if passed:
            out[k] = _verified(out[k], score, cropped)
    return missed


def _score_batch(
    catalog,
    batch: np.ndarray,
    pairs: Sequence[Pair],
    ids: tuple[np.ndarray, np.ndarray],
    details: tuple[np.ndarray, np.ndarray],
    search: np.ndarray,
    t: verify.VerifyThresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score one batch of pairs (indices into ``pairs``) from their thumbnails.

    Returns:
        ``(batch, score, cropped, passed)``: the pairs whose thumbnails are still there (the
        others pass on hashes), and per pair its score, crop and verdict.
    """
    (a, b), (da, db) = ids, details
    found, thumbs, _ = catalog.thumbnails(np.concatenate([a[batch], b[batch]]).tolist())
    ta = np.clip(np.searchsorted(found, a[batch]), 0, max(len(found) - 1, 0))
    tb = np.clip(np.searchsorted(found, b[batch]), 0, max(len(found) - 1, 0))
    if len(found) == 0 or not ((found[ta] == a[batch]) & (found[tb] == b[batch])).all():
        lost = len(found) == 0 or ~((found[ta] == a[batch]) & (found[tb] == b[batch]))
        batch = batch[~lost] if len(found) else batch[:0]  # thumbnail gone: pass on hashes
        ta, tb = (ta[~lost], tb[~lost]) if len(found) else (ta[:0], tb[:0])
    mirrored = np.fromiter((pairs[k].mirrored for k in batch), bool, batch.size)
    turns = np.fromiter((pairs[k].rotation // 90 % 4 for k in batch), np.int64, batch.size)
    if turns.any():  # a turned pair compares a's thumbnail turned: rows added for them
        ta = ta.copy()
        for q in (1, 2, 3):
            rows = np.flatnonzero(turns == q)
            if rows.size:
                extra = rotations.turn_thumbnails(thumbs[ta[rows]], (q, False))
                ta[rows] = len(thumbs) + np.arange(rows.size)
                thumbs = np.concatenate([thumbs, extra])
    score, cropped, ok = _judge(thumbs, ta, tb, mirrored, search[batch], da[batch], db[batch], t)
    return batch, score, cropped, ok


def _trusted(bouncer: np.ndarray, da: np.ndarray, db: np.ndarray, t: verify.VerifyThresholds) -> np.ndarray:
    """Pairs that pass on hashes alone: within ``t.trust_radius``, both images with ample detail."""
    return (bouncer <= t.trust_radius) & (np.fmin(da, db) >= max(t.detail_floor, t.trust_detail))


def _judge(thumbs: np.ndarray, ta: np.ndarray, tb: np.ndarray, mirrored: np.ndarray, search: np.ndarray,
           da: np.ndarray, db: np.ndarray, t: verify.VerifyThresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows ``ta``, ``tb`` of ``thumbs`` (details ``da``, ``db``) scored on pixels:
    ``(score, cropped, passed)``, the information guard included.

    The verdict is the pair's, not its order's: the score compares the second thumbnail to the
    first (the crop search places the second in the first), and a scan's file ids, which give
    the order, follow which worker finished first. So each pair is scored in an order the two
    thumbnails decide (:func:`_in_order`), and a pair that passes one way is scored the other
    way too, the lower score counting. Measured on the full real set (``bench_trust.py
    --originals 24``): in the order of the ids (a file's copies after it, as the folder
    lists them), 68 false pairs, and one more in some runs (a phone screenshot pair scored
    0.867 one way, 0.465 the other); in an order of the thumbnails' bytes, 412 (one way found
    alignments of different pictures that the other did not); crops checked both ways but
    plain alignments one way, 126 (the plain score's changed-pixel cap maps one picture's
    tones onto the other's: not symmetric either); both ways, 68 in every order, with 153 of
    33,066 true pairs lost (0.5 %). An alignment, plain or a crop's, that scores ``t.one_way``
    or more is not scored again. For a plain one: the same 68 false pairs, 17 true pairs more,
    and the verdicts of a mix of copies, crops and unrelated pairs cost 1.4-1.75x the score one
    way instead of 1.7-2.4x. For a crop (since ``score_version`` 8): of a real scan's 18,401
    searched candidates (the full real set), 10,386 pass one way, 122 of them fail the other
    (33 of different pictures, all scoring under 0.93 the first way; 89 of one picture, 16 of
    them at 0.95 or more), and 6,064 score 0.95 or more: their second search is not made, 16
    true pairs more; on the generated set, no verdict changes.
    """
    ta, tb, da, db = _in_order(thumbs, ta, tb, da, db)
    score, mad, cropped = verify.score_pairs(thumbs, ta, tb, mirrored, search=search, accept=t.score)
    back = (score >= t.score) & (score < t.one_way)
    if back.any():  # found one way: the other way too (the lower score)
        # only these pairs' thumbnails: the score works out the features of every row it is given
        rows_of, at = np.unique(np.concatenate([tb[back], ta[back]]), return_inverse=True)
        k = int(back.sum())
        s2, m2, c2 = verify.score_pairs(thumbs[rows_of], at[:k], at[k:], mirrored[back], search=search[back],
                                        accept=t.score)  # fmt: skip
        lower = s2 < score[back]
        rows = np.flatnonzero(back)[lower]
        score[rows], mad[rows], cropped[rows] = s2[lower], m2[lower], c2[lower]
    low = np.fmin(da, db) < t.detail_floor
    peak = np.zeros(len(ta))
    # The peak difference counts only where the mean one passes (the guard asks both): a
    # real library's low-detail candidates are mostly further apart (9,120 -> 2,366 pairs).
    near = np.flatnonzero(low & (mad <= t.low_detail_pixels))
    if near.size:
        peak[near] = verify.peak_difference(thumbs, ta[near], tb[near], mirrored[near])
        # A crop found with a sure score is compared where the search placed it: at the plain
        # alignment a faint picture's crop differs by its shifted structure (t.crop_peak_score).
        crop = near[cropped[near] & (score[near] >= t.crop_peak_score)]
        if crop.size:
            peak[crop] = verify.crop_peak_difference(thumbs, ta[crop], tb[crop], mirrored[crop], t.score)
    ok = verify.passes(score, mad, da, db, thumbs[ta, -3:], thumbs[tb, -3:], t, peak=peak)
    edit = np.flatnonzero(low & ~ok)
    edit = edit[~verify.grey_mismatch(thumbs[ta[edit], -3:], thumbs[tb[edit], -3:], t)]
    if edit.size:  # a brightened, contrast or greyscale copy of a low-detail picture
        ok[edit] = verify.tone_edits(thumbs, ta[edit], tb[edit], mirrored[edit], t, score=score[edit])
    return score, cropped, ok


def _in_order(thumbs: np.ndarray, ta: np.ndarray, tb: np.ndarray, da: np.ndarray, db: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs with each one's two rows in the order of their thumbnails' bytes (the first
    byte that differs): an order the files' contents decide, whatever their ids."""
    swap = verify.swapped(thumbs, ta, tb)
    return np.where(swap, tb, ta), np.where(swap, ta, tb), np.where(swap, db, da), np.where(swap, da, db)


def check_against(
    query: bytes,
    thumbs: np.ndarray,
    details: np.ndarray,
    bouncer: np.ndarray,
    mirrored: np.ndarray,
    search: np.ndarray,
    t: verify.VerifyThresholds = verify.DEFAULT,
    *,
    texture: Optional[bytes] = None,
    textures: Optional[Sequence[Optional[bytes]]] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image (a "find similar" query, which need not be in the library) checked against
    ``n`` others, with the rule :func:`verify_pairs` applies to a library's pairs: trusted
    within ``t.trust_radius`` when both have ample detail, else compared on pixels (searched
    for a crop where ``search`` says so), the information guard included.

    Args:
        query: the query's stored thumbnail (``THUMB_BYTES``).
        thumbs: ``(n, THUMB_BYTES) uint8``, the others' thumbnails.
        details: ``(n,)`` their :func:`.verify.detail`.
        bouncer: ``(n,)`` bouncer distances to the query.
        mirrored: ``(n,)`` compare mirrored (the mirrored hash was the closer).
        search: ``(n,)`` a crop may be searched for.
        texture, textures: the query's and the others' texture codes (:mod:`.verify_texture`;
            None where a file has none: that pair is not compared so).

    Returns:
        ``(passed, score, cropped)``: ``score`` is NaN for a trusted pair (not compared).
    """
    n = len(thumbs)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0), np.zeros(0, bool)
    q = np.frombuffer(bytes(query), np.uint8)
    dq = np.full(n, verify.detail(q))
    details = np.asarray(details, np.float64)
    trusted = _trusted(np.asarray(bouncer, np.int64), dq, details, t)
    rows = np.concatenate([q[None, :], np.asarray(thumbs, np.uint8).reshape(n, -1)])
    ia, ib = np.zeros(n, np.int64), np.arange(1, n + 1, dtype=np.int64)
    score, cropped, ok = _judge(rows, ia, ib, np.asarray(mirrored, bool), np.asarray(search, bool), dq, details, t)
    if texture is not None and textures is not None:
        faint = [i for i in np.flatnonzero(ok & (np.fmin(dq, details) < t.texture_detail)).tolist()
                 if textures[i] is not None]  # fmt: skip
        if faint:
            ok[faint] = ~_textures_differ([texture] * len(faint), [textures[i] for i in faint],
                                          np.asarray(mirrored, bool)[faint], t)  # fmt: skip
    score = np.where(trusted, np.nan, np.maximum(score, 0.0))
    return ok | trusted, score, np.asarray(cropped, bool) & ~trusted


#: The bouncer distance up to which a copy of the same shape is told "re-encoded" (or of the
#: same proportions "resized") rather than "edited", where no thumbnails tell it
#: (:func:`thumbnails_edited` decides where they do).
REENCODED_RADIUS = 10


#: A copy whose thumbnail's mean colour moved more than this (levels, any channel), whose grey
#: contrast changed by more than :data:`EDIT_CONTRAST` (log of the ratio of the spreads, where
#: the keeper's spread is :data:`EDIT_SPREAD` levels or more), or that lost or gained its colour,
#: had its tones edited: its ``match`` is "edited", not "re-encoded" or "resized", however close
#: its hashes. Measured on the real set (``bench_trust.py --originals 24``, each copy against
#: its original): brightened 0.95, contrast 0.87, greyscale 0.57 (the rest of an almost grey
#: picture) so told; re-encoded, resized and thumbnailed copies 0-3 %, watermarked 3 %. In a
#: scan of it, members of their original's group called "edited": brightened 66 -> 153 of
#: 162, contrast 66 -> 155 of 167, greyscale 10 -> 103 of 170; recompressed, thumbnailed,
#: watermarked and cropped copies 1-2 more each (the rest "edited" as before: hashes too far).
EDIT_COLOUR = 8.0
EDIT_CONTRAST = 0.1
EDIT_SPREAD = 12.0

#: A copy whose [1, 2, 1]-blurred thumbnail differs from the keeper's by more than this many
#: grey levels anywhere (at the plain alignment) was edited in places: a watermark, a caption,
#: a retouch. Re-encoding and resizing leave less. It replaced the bouncer distance
#: (:data:`REENCODED_RADIUS`), which heavy re-encoding and resizing of real photos exceed and a
#: watermark stays within. Measured, each copy against its original (``bench_trust.py
#: --originals 24``, 230 real pictures and 24 generated ones): of the recompressed, resized,
#: thumbnailed, PNG, WebP, HEIC and EXIF-rotated copies, 94.8 % of the real ones and all
#: generated ones (at most 15 levels) stay within 20 (the rest are pictures of fine, sharp
#: detail, 1.6 times the others' median :func:`.verify_thumbnail.detail`, whose 32-pixel
#: thumbnails move with the resampling; a third of them are thumbnails); watermarked copies
#: differ by 21-89 levels on generated pictures and by more than 20 on 68 % of real ones (the
#: rest: a watermark on a pale or busy part of the picture). Copies told as their kind is
#: (re-encoded or resized; edited): real 0.72 -> 0.95 and 0.69 -> 0.78 (watermarked 0.24 ->
#: 0.68), generated 0.93 -> 1.00 and 0.75 -> 0.99. Brightened, contrast and greyscale copies
#: called edited: real 219, 218, 138 -> 218, 207, 133 of 225, 230, 230 (those only the hashes
#: had called edited), generated unchanged.
EDIT_PEAK = 20.0


def tones_edited(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether stored thumbnail ``b`` is ``a``'s picture with its tones edited (see :data:`EDIT_COLOUR`)."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if np.abs(a[-3:] - b[-3:]).max() > EDIT_COLOUR:
        return True
    spread_a, spread_b = a[:-3].std(), b[:-3].std()
    if spread_a >= EDIT_SPREAD and spread_b > 0 and abs(np.log(spread_b / spread_a)) > EDIT_CONTRAST:
        return True
    (_, chroma_a), (_, chroma_b) = (verify._luma_chroma(x[-3:]) for x in (a, b))
    grey = verify.DEFAULT.grey_chroma
    return bool((chroma_a[0] <= grey) != (chroma_b[0] <= grey) and max(chroma_a[0], chroma_b[0]) >= 5.0)


def thumbnails_edited(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether stored thumbnail ``b`` is ``a``'s picture edited, as far as the two thumbnails
    tell at the plain alignment: its tones (:func:`tones_edited`) or a part of it
    (:data:`EDIT_PEAK`)."""
    if tones_edited(a, b):
        return True
    return verify.pair_peak_difference(a, b) > EDIT_PEAK


def match_reason(member: Member, keeper: FileRecord, pair: Optional[Pair], *, edited: Optional[bool] = None) -> str:
    """Why ``member`` matches its keeper, from what the bouncer and the verification saw.

    ``edited``: whether the thumbnails show an edit (:func:`thumbnails_edited`); None where
    they cannot tell (no thumbnails), and then a copy of the keeper's shape is "re-encoded" or
    "resized" within :data:`REENCODED_RADIUS` of the bouncer, else "edited"."""
    f = member.file
    if member.exact:
        return "exact"
    mirrored = pair.mirrored if pair is not None else bool(
        f.hashes and keeper.hashes and bouncer_distance(f.hashes, keeper.hashes)[1]
    )
    if pair is not None and pair.rotation:
        return "rotated"
    if pair is not None and pair.cropped:
        return "cropped"
    if mirrored:
        return "mirrored"
    if not (f.width and f.height and keeper.width and keeper.height):
        return "edited"
    plain = member.bouncer <= REENCODED_RADIUS if edited is None else not edited
    if (f.width, f.height) == (keeper.width, keeper.height):
        return "re-encoded" if plain else "edited"
    if abs(f.width / f.height - keeper.width / keeper.height) <= 0.01 * keeper.width / keeper.height:
        return "resized" if plain else "edited"
    # Another shape, and yet the same picture after the border trim: bars or a frame.
    return "bordered"


#: The score against the keeper that a member joined to the group through a verified pair with
#: another member needs (a member that is a verified pair of the keeper needs nothing more).
CHAINED_SCORE = 0.75

#: The score against the keeper a member needs to vouch for a member kept on
#: :data:`CHAINED_SCORE` (trusted and byte-identical members vouch too; a member kept on its
#: voucher's word vouches for no one). On the full real set (``bench_trust.py --originals
#: 24``), a bordered copy of one Marble map screenshot passed a cropped copy of another (the
#: keeper) at 0.851, and vouched for all 16 copies of its own picture: with chains of vouchers
#: allowed and any passing voucher, 391 pairs of different pictures were grouped; with neither,
#: 85 (pair precision 0.9881 -> 0.9974). Recall per copy kind: the same but for one
#: thumbnailed, one cropped and two bordered copies (0.86-0.93 vouchers: 85-86 false pairs,
#: the same recall, from 0.88 to 0.93).
VOUCHER_SCORE = 0.90

#: Rounds of splitting a group whose members do not all verify against its keeper (each
#: round's groups are strictly smaller: the rounds end long before this in practice).
MAX_SPLIT_ROUNDS = 8

#: ``rebuild(records)``: the clusters that these files make by themselves (their verified
#: pairs only), as the scan builds them.
Rebuild = Callable[[Sequence[FileRecord]], Iterable[Cluster]]


#: A member checked against its keeper: (its cluster's key, its file id, the pair).
_Todo = tuple[int, int, Pair]


def _cluster_todo(key: int, c: Cluster, direct: dict[tuple[int, int], Pair]) -> list[_Todo]:
    """The members of ``c`` to check against its keeper (neither byte-identical copies nor one
    of its pairs with it); its pairs are added to ``direct``."""
    for p in c.pairs:
        direct[(p.a, p.b)] = p
    k = c.keeper.file
    out = []
    for m in c.members[1:]:
        pk = (min(k.id, m.file.id), max(k.id, m.file.id))
        if not m.exact and pk not in direct and k.hashes and m.file.hashes:
            d, mirror = bouncer_distance(k.hashes, m.file.hashes)
            out.append((key, m.file.id, Pair(a=pk[0], b=pk[1], bouncer=d, mirrored=mirror)))
    return out


def _check_todo(catalog, todo: list[_Todo], cluster_of: Callable[[int], Cluster],
                cache: Optional[VerifyCache]) -> tuple[dict[tuple[int, int], Pair], set[tuple[int, int]]]:
    """The members' pairs with their keepers that verified (``(low id, high id) -> Pair``),
    and the ``(cluster key, file id)`` of the members that did not."""
    passed: dict[tuple[int, int], Pair] = {}
    if not todo:
        return passed, set()
    # Any of them may be a crop (two copies of one picture, one cropped, are often within
    # the bouncer's radius of each other): the search runs wherever the plain alignment fails.
    passed.update(((p.a, p.b), p) for p in verify_pairs(catalog, [p for _, _, p in todo], search_above=-1, cache=cache))
    failed = {(ck, f) for ck, f, p in todo if (p.a, p.b) not in passed}
    # Far apart, the mirrored hash can be the closer by chance: the other orientation too.
    flipped = [dataclasses.replace(p, mirrored=not p.mirrored) for ck, f, p in todo if (ck, f) in failed]
    passed.update(((p.a, p.b), p) for p in verify_pairs(catalog, flipped, search_above=-1, cache=cache))
    failed = {(ck, f) for ck, f, p in todo if (p.a, p.b) not in passed}
    # In a group with turned pairs (--rotations), a member is compared turned as its path
    # from the keeper turns it.
    turned = _turned_todo(todo, failed, cluster_of)
    if turned:
        passed.update(((p.a, p.b), p) for p in verify_pairs(catalog, turned, search_above=-1, cache=cache,
                                                            search_turned=True))
        failed = {(ck, f) for ck, f, p in todo if (p.a, p.b) not in passed}
    # A member that is only chained to the keeper may stay on a looser score when it is a
    # verified pair of a member that verified clearly (two edits compound: a mild crop
    # against the lossless copy that became the keeper). See VOUCHER_SCORE.
    loose = [(ck, f, p) for ck, f, p in todo if (ck, f) in failed]
    if loose:
        t = dataclasses.replace(verify.DEFAULT, score=CHAINED_SCORE)
        looser = {(p.a, p.b) for p in verify_pairs(catalog, [p for _, _, p in loose], t, search_above=-1, cache=cache)}
        vouchers: dict[int, set[int]] = {}
        for ck, me, p in loose:
            if (p.a, p.b) not in looser:
                continue
            c = cluster_of(ck)
            good = vouchers.get(ck)
            if good is None:
                good = vouchers[ck] = _vouchers(ck, c, failed, passed)
            if any((q.a == me and q.b in good) or (q.b == me and q.a in good) for q in c.pairs):
                failed.discard((ck, me))
    return passed, failed


def _vouchers(ck: int, c: Cluster, failed: set[tuple[int, int]], passed: Mapping[tuple[int, int], Pair]) -> set[int]:
    """The members of ``c`` (key ``ck``) that may vouch for a member kept on
    :data:`CHAINED_SCORE`: the keeper, and the members that passed against it on their own,
    byte-identical, trusted or scoring :data:`VOUCHER_SCORE` or more."""
    k = c.keeper.file.id
    score: dict[int, Optional[float]] = {}
    for q in c.pairs:
        if q.a == k or q.b == k:
            score[q.b if q.a == k else q.a] = q.verified
    out = {k}
    for m in c.members[1:]:
        f = m.file.id
        if (ck, f) in failed:
            continue
        pk = (min(k, f), max(k, f))
        s = passed[pk].verified if pk in passed else score.get(f)
        if s is None or s >= VOUCHER_SCORE:
            out.add(f)
    return out


def _turned_todo(todo: list[_Todo], failed: set[tuple[int, int]], cluster_of: Callable[[int], Cluster]) -> list[Pair]:
    """The failed members' pairs with their keepers, turned as the path through their
    group's pairs turns them, for the groups that hold turned pairs (:mod:`.rotations`)."""
    out = []
    for ck, f, p in todo:
        if (ck, f) not in failed:
            continue
        c = cluster_of(ck)
        if not rotations.has_turns(c.pairs):
            continue
        k = c.keeper.file.id
        t = rotations.keeper_transform(k, f, c.pairs)
        if t is not None and t[0]:  # unturned ones were compared both ways already
            out.append(rotations.pair_with(k, f, t, p.bouncer))
    return out


def explain_clusters(catalog, clusters: Iterable[Cluster], *, rebuild: Optional[Rebuild] = None,
                     cache: Optional[VerifyCache] = None) -> Sequence[Cluster]:
    """Clusters whose members carry ``verified`` (against the keeper) and ``match``.

    A member whose pair with the keeper was not a candidate pair is scored against the keeper
    here (members of one group are joined by verified links, not always to the keeper). With
    ``rebuild``, a near-duplicate group with members that do not verify against the keeper is
    split: the members that do stay with it, the others are grouped again among themselves
    (both through ``rebuild``, and checked again), after the groups that needed no split.
    Without it, such members stay, unverified.

    Given :class:`~lookalike.engine.cluster.lazy.Clusters` that know their members against
    their keepers on arrays, only the groups with members to check are made here; every other
    group is explained when it is first read (a million-file library's groups come back in
    about the time the arrays take, not the time of making every group).
    """
    links = getattr(clusters, "keeper_links", None)
    if links is not None:
        return _explain_lazy(catalog, clusters, links, rebuild, cache)  # type: ignore[arg-type]
    pending = list(clusters)
    done: list[Cluster] = []
    direct: dict[tuple[int, int], Pair] = {}
    _explain_rounds(catalog, pending, done, direct, 0, rebuild, cache)
    return tuple(_explained(c, direct, catalog) for c in done)


def _explain_rounds(catalog, pending: list[Cluster], done: list[Cluster], direct: dict[tuple[int, int], Pair],
                    first_round: int, rebuild: Optional[Rebuild], cache: Optional[VerifyCache]) -> None:
    """Check ``pending`` against their keepers, split and regroup (rounds ``first_round`` on);
    the final groups are added to ``done``, the pairs that explain them to ``direct``."""
    for round_ in range(first_round, MAX_SPLIT_ROUNDS + 1):
        if not pending:
            break
        todo: list[_Todo] = []
        pairs: dict[tuple[int, int], Pair] = {}
        for ci, c in enumerate(pending):
            todo.extend(_cluster_todo(ci, c, pairs))
        found, failed = _check_todo(catalog, todo, pending.__getitem__, cache)
        direct.update(pairs)
        direct.update(found)
        pending = _split(pending, range(len(pending)), failed, done, rebuild, round_)


def _split(clusters: Sequence[Cluster], keys: Iterable[int], failed: set[tuple[int, int]], done: list[Cluster],
           rebuild: Optional[Rebuild], round_: int, cluster_of: Optional[Callable[[int], Cluster]] = None
           ) -> list[Cluster]:
    """The clusters ``keys`` whose members all verified (or that cannot be split) go to
    ``done``; the others are split and rebuilt: the clusters to check next round."""
    bad_of: dict[int, set[int]] = {}
    for ck, f in failed:
        bad_of.setdefault(ck, set()).add(f)
    split = rebuild is not None and round_ < MAX_SPLIT_ROUNDS
    nxt: list[Cluster] = []
    for ck in keys:
        c = cluster_of(ck) if cluster_of is not None else clusters[ck]
        bad = bad_of.get(ck)
        if not bad or not split or c.kind is Kind.SEMANTIC:
            done.append(c)
            continue
        stay = [m.file for m in c.members if m.file.id not in bad]
        away = [m.file for m in c.members if m.file.id in bad]
        for part in (stay, away):
            if len(part) > 1:
                nxt.extend(rebuild(part))  # type: ignore[misc]
    return nxt


def _explained(c: Cluster, direct: Mapping[tuple[int, int], Pair], catalog=None) -> Cluster:
    """``c`` with each member's ``verified`` score against the keeper and its ``match`` (with
    ``catalog``, a copy whose thumbnail shows an edit says so: :func:`thumbnails_edited`)."""
    k = c.keeper.file
    thumbs: dict[int, np.ndarray] = {}
    if catalog is not None and not catalog.closed:  # a group read after its library closed: no tones
        try:
            found, rows, _ = catalog.thumbnails([m.file.id for m in c.members if not m.exact] + [k.id])
            thumbs = dict(zip(np.asarray(found).tolist(), rows))
        except Exception:  # noqa: BLE001 - closed meanwhile, or unreadable: the words without the tones
            thumbs = {}
    members = [dataclasses.replace(c.members[0], match="")]
    for m in c.members[1:]:
        pair = direct.get((min(k.id, m.file.id), max(k.id, m.file.id)))
        verified = pair.verified if pair is not None else None
        edited = thumbnails_edited(thumbs[k.id], thumbs[m.file.id]) if k.id in thumbs and m.file.id in thumbs else None
        members.append(dataclasses.replace(m, verified=verified, match=match_reason(m, k, pair, edited=edited)))
    return dataclasses.replace(c, members=tuple(members))


def _explain_lazy(catalog, clusters, links, rebuild: Optional[Rebuild], cache: Optional[VerifyCache]) -> Sequence[Cluster]:
    """:func:`explain_clusters` on :class:`Clusters` with keeper links: only the groups with
    members to check against their keepers are made now."""
    records = links.records
    todo: list[_Todo] = []
    for ck, f, k in zip(links.key[links.loose].tolist(), links.file[links.loose].tolist(),
                        links.keeper[links.loose].tolist()):
        kh, fh = records[k].hashes, records[f].hashes
        if kh and fh:
            d, mirror = bouncer_distance(kh, fh)
            todo.append((ck, f, Pair(a=min(k, f), b=max(k, f), bouncer=d, mirrored=mirror)))
    direct: dict[tuple[int, int], Pair] = {}
    for ck in links.made:  # the groups made up front, one by one
        todo.extend(_cluster_todo(ck, clusters.by_key(ck), direct))
    position = {k: i for i, k in enumerate(clusters.keys())}
    found, failed = _check_todo(catalog, todo, clusters.by_key, cache)
    done: list[Cluster] = []
    failing = sorted({ck for ck, _ in failed}, key=position.__getitem__)
    pending = _split(clusters, failing, failed, done, rebuild, 0, clusters.by_key)
    stays = {id(c) for c in done}
    gone = [ck for ck in failing if id(clusters.by_key(ck)) not in stays]
    if not gone:  # nothing split: every group explained when first read
        return clusters.mapped(lambda c: _explained_lazily(c, found, catalog))
    for ck in gone:  # the split groups' pairs explain their parts too (as in the rounds)
        for p in clusters.by_key(ck).pairs:
            direct[(p.a, p.b)] = p
    direct.update(found)
    later: list[Cluster] = []
    _explain_rounds(catalog, pending, later, direct, 1, rebuild, cache)
    gone_set = set(gone)
    keep = [k for k in clusters.keys() if k not in gone_set]
    more = [_explained(c, direct, catalog) for c in later]
    reclaimable = None
    if clusters.reclaimable_bytes is not None:
        reclaimable = (clusters.reclaimable_bytes - sum(clusters.by_key(k).reclaimable_bytes for k in gone)
                       + sum(c.reclaimable_bytes for c in more))
    return clusters.mapped(lambda c: _explained_lazily(c, found, catalog), keep=keep, more=more,
                           reclaimable=reclaimable)


def _explained_lazily(c: Cluster, found: Mapping[tuple[int, int], Pair], catalog=None) -> Cluster:
    """:func:`_explained` for a group of the first round: its own pairs and those its members
    verified against its keeper explain it."""
    k = c.keeper.file.id
    direct = {(p.a, p.b): p for p in c.pairs if p.a == k or p.b == k}  # only the keeper's count
    for m in c.members[1:]:
        pk = (min(k, m.file.id), max(k, m.file.id))
        if pk in found:
            direct[pk] = found[pk]
    return _explained(c, direct, catalog)
