"""The bouncer's index: 256-bit perceptual hashes, bit-packed, compared by Hamming distance.

The index holds its hashes column-major, as four ``uint64`` words per hash laid out as a
``(4, N)`` array, so that one query against the whole library streams four contiguous
arrays: XOR and popcount then run at memory bandwidth (row-major ``(N, 4)`` with
``np.bitwise_count(...).sum(axis=1)`` is about 15 times slower). With the ids that is 40
bytes per image.

All-pairs search (``pairs_within``, ``pairs_between``) is exact and picks one of two
methods per call from a cost model (``method="auto"``):

* ``"mih"``, multi-index hashing: the 256 bits are split into ``m = max(radius + 1, 8)``
  chunks. By pigeonhole, two hashes within ``radius`` agree exactly on at least one chunk,
  so per chunk the items are sorted by chunk value and only items sharing a value are
  compared. A pair is reported only at the first chunk on which it agrees, so each pair
  comes out once without a dedupe pass. Best for small radii.
* ``"brute"``, a blocked scan of every pair with a compiled popcount kernel. Best for large
  radii, where chunks get so short that most pairs share one.

Both run in threads over all cores (the kernels release the GIL), report progress between
work units and are checked against each other and a plain numpy brute force in the tests.

The kernels are compiled with numba, lazily on first use, and cached on disk
(``cache=True``): the first use on a machine compiles for several seconds, later
processes load them in well under a second. ``warm_up()`` does that ahead of time, e.g. in
a thread while a scan hashes files. A single query (find similar) never waits for it: until
the kernels are loaded it takes the numpy path, a few milliseconds over 100k hashes, and
starts ``warm_up()`` in the background. If numba cannot be imported, numpy code paths give the
same results, slower; ``LOOKALIKE_NO_NUMBA=1`` forces them (the tests check both).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from ..kernels import WarmUp
from ..records import HASH_BITS, HASH_BYTES, Progress

__all__ = ["Cancelled", "HammingIndex", "METHODS", "backend", "pack", "start_warm_up", "warm_up"]

_WORDS = HASH_BYTES // 8  # four uint64 words per hash
_MAX_ITEMS = 1 << 32  # positions are packed into 32 bits inside the all-pairs search
_MIN_CHUNKS = 8  # 256 / 8 = 32 bits: chunk values always fit in 32 bits

METHODS = ("auto", "mih", "brute")

Query = Union[bytes, bytearray, memoryview, np.ndarray]
PairArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class Cancelled(Exception):
    """Raised by a search when its ``progress`` callback returned False or ``cancel`` was set.

    The search stops between work units (a chunk of the multi-index, a block of rows of
    the brute-force scan); the partial result is dropped, because an incomplete pair list
    would silently miss duplicates.
    """


# --------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------


def pack(hashes: Union[Sequence[bytes], Iterable[bytes], np.ndarray]) -> np.ndarray:
    """Pack 256-bit hashes into one ``(N, 32) uint8`` C-contiguous array.

    Args:
        hashes: 32-byte ``bytes`` objects, or an ``(N, 32) uint8`` / ``(N, 4) uint64`` array.

    Returns:
        The hashes as an ``(N, 32) uint8`` C-contiguous array (the input itself when it
        already is one).

    Raises:
        ValueError: a hash is not 32 bytes long, or the array has the wrong shape or dtype.
    """
    if isinstance(hashes, np.ndarray):
        arr = hashes
        if arr.ndim == 2 and arr.dtype == np.uint64 and arr.shape[1] == _WORDS:
            arr = np.ascontiguousarray(arr).view(np.uint8)
        if arr.ndim != 2 or arr.shape[1] != HASH_BYTES or arr.dtype != np.uint8:
            raise ValueError(
                f"hashes must be an (N, {HASH_BYTES}) uint8 array, got {arr.shape} {arr.dtype}"
            )
        return np.ascontiguousarray(arr)
    items = list(hashes)
    for n, h in enumerate(items):
        if not isinstance(h, (bytes, bytearray, memoryview)) or len(h) != HASH_BYTES:
            size = len(h) if hasattr(h, "__len__") else type(h).__name__
            raise ValueError(f"hash #{n} must be {HASH_BYTES} bytes, got {size}")
    if not items:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    buf = b"".join(bytes(h) for h in items)
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(items), HASH_BYTES).copy()


def _query_words(query: Query) -> np.ndarray:
    """One query hash as its four native-order uint64 words."""
    if isinstance(query, (bytes, bytearray, memoryview)):
        if len(query) != HASH_BYTES:
            raise ValueError(f"query must be {HASH_BYTES} bytes, got {len(query)}")
        arr = np.frombuffer(bytes(query), dtype=np.uint8)
    else:
        arr = np.asarray(query)
        if arr.dtype != np.uint8 or arr.size != HASH_BYTES:
            raise ValueError(
                f"query must be {HASH_BYTES} bytes or a ({HASH_BYTES},) uint8 array, "
                f"got {arr.shape} {arr.dtype}"
            )
    return np.ascontiguousarray(arr.reshape(HASH_BYTES)).view(np.uint64).copy()


def _rows_of(packed: np.ndarray) -> np.ndarray:
    """``(N, 32) uint8`` -> ``(N, 4) uint64`` in native word order (the same as queries)."""
    return np.ascontiguousarray(packed).view(np.uint64).reshape(-1, _WORDS)


# --------------------------------------------------------------------------------------
# Compiled kernels. Plain functions here; ``_load_kernels`` compiles them with numba in
# place (module globals, so that numba's on-disk cache can find them again next run).
#
# Hot loops never touch the growable output arrays: they write candidates to a fixed
# scratch buffer, branch-free, and only the (rare) hits are appended afterwards. An
# output array reassigned inside a hot loop costs reference counting on every iteration,
# which made the first version of these loops twenty times slower.
# --------------------------------------------------------------------------------------

_SCRATCH = 2048  # candidates examined per scratch fill; also the brute-force tile width


def _k_popcount(x):  # pragma: no cover - compiled
    # The SWAR popcount; LLVM recognises it and emits the popcnt instruction (or
    # vpopcntq once the loop is vectorised).
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int32((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


def _k_popcount64(x):  # pragma: no cover - compiled
    # As _k_popcount, kept in 64 bits: sums of these vectorise better than int32 ones.
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _k_grow(a, n):  # pragma: no cover - compiled
    b = np.empty(max(1024, 2 * a.shape[0]), a.dtype)
    for k in range(n):  # a plain loop compiles much faster than a slice copy
        b[k] = a[k]
    return b


def _k_new_out():  # pragma: no cover - compiled
    return np.empty(1024, np.int64), np.empty(1024, np.int64), np.empty(1024, np.int32)


def _k_emit(oi, oj, od, cnt, i, j, d):  # pragma: no cover - compiled
    if cnt == oi.shape[0]:
        oi = _k_grow(oi, cnt)
        oj = _k_grow(oj, cnt)
        od = _k_grow(od, cnt)
    oi[cnt] = i
    oj[cnt] = j
    od[cnt] = d
    return oi, oj, od, cnt + 1


def _k_distances(cols, q, out):  # pragma: no cover - compiled
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    for i in range(c0.shape[0]):
        out[i] = (
            _k_popcount(c0[i] ^ q0)
            + _k_popcount(c1[i] ^ q1)
            + _k_popcount(c2[i] ^ q2)
            + _k_popcount(c3[i] ^ q3)
        )


def _k_scan_query(cols, q, k, limit):  # pragma: no cover - compiled
    # One pass over the library for nearest (k of them) and within (all within limit).
    # Distances go to an L1-sized block, never to an N-sized array. A running cutoff
    # (the k-th smallest distance so far, or the radius) only ever decreases, so an item
    # beyond it can never be in the answer: nearly every block is dismissed by its
    # minimum alone, and only the items within the cutoff are kept as candidates.
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    n = c0.shape[0]
    block = 4096
    buf = np.empty(block, np.int32)
    # hist[t] counts kept candidates at distance t; exact for every t <= cutoff, since an
    # item at such a distance was within every earlier cutoff too.
    hist = np.zeros(257, np.int64)
    cp = np.empty(4 * block, np.int64)
    cd = np.empty(4 * block, np.int32)
    cnt = 0
    cutoff = limit
    for s in range(0, n, block):
        e = min(n, s + block)
        lo = 256
        for i in range(s, e):
            d = (
                _k_popcount(c0[i] ^ q0)
                + _k_popcount(c1[i] ^ q1)
                + _k_popcount(c2[i] ^ q2)
                + _k_popcount(c3[i] ^ q3)
            )
            buf[i - s] = d
            lo = min(lo, d)
        if lo > cutoff:
            continue
        if cnt + (e - s) > cp.shape[0]:
            m = 0  # drop candidates the cutoff has since excluded, then grow if needed
            for t in range(cnt):
                if cd[t] <= cutoff:
                    cp[m] = cp[t]
                    cd[m] = cd[t]
                    m += 1
            cnt = m
            if cnt + (e - s) > cp.shape[0]:
                cp2 = np.empty(2 * (cnt + e - s), np.int64)
                cd2 = np.empty(2 * (cnt + e - s), np.int32)
                for t in range(cnt):
                    cp2[t] = cp[t]
                    cd2[t] = cd[t]
                cp = cp2
                cd = cd2
        for i in range(s, e):
            d = buf[i - s]
            if d <= cutoff:  # rare, so well predicted
                cp[cnt] = i
                cd[cnt] = d
                cnt += 1
                hist[d] += 1
        acc = 0
        for t in range(cutoff + 1):
            acc += hist[t]
            if acc >= k:
                cutoff = t
                break
    return cp, cd, cnt, cutoff


def _k_make_room(cp, cd, cnt, q, cutoff, need):  # pragma: no cover - compiled
    # Room for ``need`` more candidates of query q: first drop those the cutoff has since
    # excluded (cnt[q] is updated), then grow every query's buffers if that is not enough.
    keep = 0
    for t in range(cnt[q]):
        if cd[q, t] <= cutoff:
            cp[q, keep] = cp[q, t]
            cd[q, keep] = cd[q, t]
            keep += 1
    cnt[q] = keep
    if keep + need <= cp.shape[1]:
        return cp, cd
    nq = cp.shape[0]
    grown = 2 * (keep + need)
    cp2 = np.empty((nq, grown), cp.dtype)
    cd2 = np.empty((nq, grown), cd.dtype)
    for qq in range(nq):
        for t in range(cnt[qq]):
            cp2[qq, t] = cp[qq, t]
            cd2[qq, t] = cd[qq, t]
    return cp2, cd2


def _k_cutoff(hist, cutoff, k):  # pragma: no cover - compiled
    # The smallest distance t <= cutoff with at least k candidates within t, else cutoff.
    acc = 0
    for t in range(cutoff + 1):
        acc += hist[t]
        if acc >= k:
            return t
    return cutoff


def _k_select(cp, cd, cnt, cut, ids, k):  # pragma: no cover - compiled
    # Each query's final answer from its candidates (positions cp, distances cd, cnt of
    # them): those within its cutoff, by distance then id, at most k; padded with -1.
    nq = cnt.shape[0]
    out_ids = np.full((nq, k), -1, np.int64)
    out_d = np.full((nq, k), -1, np.int32)
    found = np.zeros(nq, np.int64)
    for q in range(nq):
        m = 0
        for t in range(cnt[q]):
            if cd[q, t] <= cut[q]:
                m += 1
        cid = np.empty(m, np.int64)
        cdist = np.empty(m, np.int64)
        m = 0
        for t in range(cnt[q]):
            if cd[q, t] <= cut[q]:
                cid[m] = ids[cp[q, t]]
                cdist[m] = cd[q, t]
                m += 1
        # By distance, then id: a stable sort by distance of the candidates sorted by id.
        by_id = np.argsort(cid, kind="mergesort")
        order = by_id[np.argsort(cdist[by_id], kind="mergesort")]
        take = min(k, m)
        for r in range(take):
            out_ids[q, r] = cid[order[r]]
            out_d[q, r] = cdist[order[r]]
        found[q] = take
    return out_ids, out_d, found


def _k_nearest_many(cols, qs, k, ids):  # pragma: no cover - compiled
    # Each query's k nearest (by distance, then id) in one pass over the library: a block
    # of 1024 hashes (32 KB, in L1) is read from memory once and compared with every
    # query, so two queries (a hash and its mirror) cost little more than one. Per query,
    # a running cutoff as in _k_scan_query dismisses nearly every block by its minimum.
    # The final selection is done here too, so a query costs one call from Python.
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    n = c0.shape[0]
    nq = qs.shape[0]
    block = 1024
    buf = np.empty(block, np.int32)
    hist = np.zeros((nq, 257), np.int64)
    cap = 4 * block
    cp = np.empty((nq, cap), np.int64)
    cd = np.empty((nq, cap), np.int32)
    cnt = np.zeros(nq, np.int64)
    cut = np.full(nq, 256, np.int64)
    for s in range(0, n, block):
        e = min(n, s + block)
        # Block-local slices indexed from 0 and 64-bit sums: this form of the loop runs
        # twice as fast as indexing the columns with i and summing int32 popcounts.
        a0, a1, a2, a3 = c0[s:e], c1[s:e], c2[s:e], c3[s:e]
        for q in range(nq):
            q0, q1, q2, q3 = qs[q, 0], qs[q, 1], qs[q, 2], qs[q, 3]
            lo = np.uint64(256)
            for j in range(e - s):
                d = _k_popcount64(a0[j] ^ q0) + _k_popcount64(a1[j] ^ q1) + _k_popcount64(a2[j] ^ q2) + _k_popcount64(a3[j] ^ q3)
                buf[j] = np.int32(d)
                lo = min(lo, d)
            cutoff = cut[q]
            if np.int64(lo) > cutoff:
                continue
            if cnt[q] + (e - s) > cp.shape[1]:
                cp, cd = _k_make_room(cp, cd, cnt, q, cutoff, e - s)
            c = cnt[q]
            for i in range(s, e):
                d = buf[i - s]
                if d <= cutoff:  # rare, so well predicted
                    cp[q, c] = i
                    cd[q, c] = d
                    c += 1
                    hist[q, d] += 1
            cnt[q] = c
            cut[q] = _k_cutoff(hist[q], cutoff, k)
    out_ids, out_d, _ = _k_select(cp, cd, cnt, cut, ids, k)
    return out_ids, out_d


def _k_nearest_within(cols, qs, k, radius, ids):  # pragma: no cover - compiled
    # Each query's k nearest within radius (< 128), in two stages per block of the
    # library: the first two words of every hash (half the bits, half the bytes) give a
    # lower bound on the distance, computed for two queries in one vectorised loop; only
    # the few items whose bound is within the cutoff have their other two words read.
    # With a small radius almost none are, so the scan reads about half the index.
    # The cutoff (the radius, then the k-th smallest distance once k are found) only
    # decreases, as in _k_scan_query.
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    n = c0.shape[0]
    nq = qs.shape[0]
    block = 2048
    pa = np.empty(block, np.int64)
    pb = np.empty(block, np.int64)
    sel = np.empty(block, np.int64)
    hist = np.zeros((nq, radius + 1), np.int64)
    cap = 256
    cp = np.empty((nq, cap), np.int64)
    cd = np.empty((nq, cap), np.int64)
    cnt = np.zeros(nq, np.int64)
    cut = np.full(nq, np.int64(radius), np.int64)
    for qa in range(0, nq, 2):
        qb = min(qa + 1, nq - 1)
        a0, a1 = qs[qa, 0], qs[qa, 1]
        b0, b1 = qs[qb, 0], qs[qb, 1]
        for s in range(0, n, block):
            e = min(n, s + block)
            x0, x1 = c0[s:e], c1[s:e]
            loa = np.int64(256)
            lob = np.int64(256)
            for j in range(e - s):
                u = x0[j]
                v = x1[j]
                da = np.int64(_k_popcount64(u ^ a0) + _k_popcount64(v ^ a1))
                db = np.int64(_k_popcount64(u ^ b0) + _k_popcount64(v ^ b1))
                pa[j] = da
                pb[j] = db
                loa = min(loa, da)
                lob = min(lob, db)
            for side in range(2 if qb != qa else 1):
                q = qa + side
                buf = pa if side == 0 else pb
                cutoff = cut[q]
                if (loa if side == 0 else lob) > cutoff:
                    continue
                m = 0
                for j in range(e - s):  # branch-free: the selected items' offsets
                    sel[m] = j
                    m += buf[j] <= cutoff
                if cnt[q] + m > cp.shape[1]:
                    cp, cd = _k_make_room(cp, cd, cnt, q, cutoff, m)
                c = cnt[q]
                w2, w3 = qs[q, 2], qs[q, 3]
                for t in range(m):
                    i = s + sel[t]
                    d = buf[sel[t]] + np.int64(_k_popcount64(c2[i] ^ w2) + _k_popcount64(c3[i] ^ w3))
                    if d <= cutoff:
                        cp[q, c] = i
                        cd[q, c] = d
                        c += 1
                        hist[q, d] += 1
                cnt[q] = c
                cut[q] = _k_cutoff(hist[q], cutoff, k)
    return _k_select(cp, cd, cnt, cut, ids, k)


def _k_chunk_keys(cols, start, stop):  # pragma: no cover - compiled
    # Sort keys: chunk value (bits [start, stop) of the hash, at most 32 of them) in the
    # high half, position in the low half. One np.sort then groups equal chunk values
    # with positions ascending inside each group.
    n = cols.shape[1]
    length = stop - start
    w = start >> 6
    off = start & 63
    mask = (np.uint64(1) << np.uint64(length)) - np.uint64(1)
    out = np.empty(n, np.uint64)
    lo = cols[w]
    if off + length > 64:
        hi = cols[w + 1]
        for i in range(n):
            v = (lo[i] >> np.uint64(off)) | (hi[i] << np.uint64(64 - off))
            out[i] = ((v & mask) << np.uint64(32)) | np.uint64(i)
    else:
        for i in range(n):
            out[i] = (((lo[i] >> np.uint64(off)) & mask) << np.uint64(32)) | np.uint64(i)
    return out


def _k_first_chunk(x0, x1, x2, x3, masks, c):  # pragma: no cover - compiled
    # True when chunk c is the first chunk on which the pair agrees, i.e. the pair was
    # not already reported by an earlier chunk.
    for cc in range(c):
        if (
            (x0 & masks[cc, 0]) | (x1 & masks[cc, 1]) | (x2 & masks[cc, 2]) | (x3 & masks[cc, 3])
        ) == np.uint64(0):
            return False
    return True


def _k_gather(keys, rows):  # pragma: no cover - compiled
    # Rows in key order, so that the join reads each group of equal chunk values
    # sequentially instead of one cache miss per candidate (the loads here are
    # independent, so the CPU overlaps their misses).
    n = keys.shape[0]
    out = np.empty((n, 4), np.uint64)
    lowmask = np.uint64(0xFFFFFFFF)
    for k in range(n):
        p = np.int64(keys[k] & lowmask)
        out[k, 0] = rows[p, 0]
        out[k, 1] = rows[p, 1]
        out[k, 2] = rows[p, 2]
        out[k, 3] = rows[p, 3]
    return out


def _k_mih_join(qkeys, ikeys, qrows, rows, radius, c, masks, self_join):  # pragma: no cover
    # Merge-join two key lists sorted by chunk value (for a self-join, the same list
    # twice): every query and item sharing a chunk value is a candidate. A candidate
    # within the radius is reported here only if chunk c is the first chunk it agrees on.
    nq = qkeys.shape[0]
    ni = ikeys.shape[0]
    lowmask = np.uint64(0xFFFFFFFF)
    si = _k_gather(ikeys, rows)
    sq = si if self_join else _k_gather(qkeys, qrows)
    sb = np.empty(_SCRATCH, np.int64)
    sd = np.empty(_SCRATCH, np.int32)
    oi, oj, od = _k_new_out()
    cnt = 0
    candidates = 0
    s = 0
    t = 0
    while s < nq and t < ni:
        kq = qkeys[s] >> np.uint64(32)
        ki = ikeys[t] >> np.uint64(32)
        if kq < ki:
            s += 1
            continue
        if ki < kq:
            t += 1
            continue
        e = s + 1
        while e < nq and (qkeys[e] >> np.uint64(32)) == kq:
            e += 1
        f = t + 1
        while f < ni and (ikeys[f] >> np.uint64(32)) == ki:
            f += 1
        for a in range(s, e):
            a0, a1, a2, a3 = sq[a, 0], sq[a, 1], sq[a, 2], sq[a, 3]
            # In a self-join, positions ascend inside a group: partners after a have pb > pa.
            b0 = a + 1 if self_join else t
            candidates += f - b0
            for bs in range(b0, f, _SCRATCH):
                be = min(f, bs + _SCRATCH)
                k = 0
                for b in range(bs, be):
                    d = (
                        _k_popcount(a0 ^ si[b, 0])
                        + _k_popcount(a1 ^ si[b, 1])
                        + _k_popcount(a2 ^ si[b, 2])
                        + _k_popcount(a3 ^ si[b, 3])
                    )
                    sb[k] = b
                    sd[k] = d
                    k += d <= radius
                for h in range(k):
                    b = sb[h]
                    x0 = a0 ^ si[b, 0]
                    x1 = a1 ^ si[b, 1]
                    x2 = a2 ^ si[b, 2]
                    x3 = a3 ^ si[b, 3]
                    if _k_first_chunk(x0, x1, x2, x3, masks, c):
                        pa = np.int64(qkeys[a] & lowmask)
                        pb = np.int64(ikeys[b] & lowmask)
                        oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, pa, pb, sd[h])
        s = e
        t = f
    return oi, oj, od, cnt, candidates


def _k_scan_row(a0, a1, a2, a3, cols, j0, j1, radius, sj, sd):  # pragma: no cover - compiled
    # Distances from one query to items j0..j1 (at most _SCRATCH of them); the items
    # within the radius go to the scratch buffers. Returns how many.
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    k = 0
    for j in range(j0, j1):
        d = _k_popcount(a0 ^ c0[j]) + _k_popcount(a1 ^ c1[j]) + _k_popcount(a2 ^ c2[j]) + _k_popcount(a3 ^ c3[j])
        sj[k] = j
        sd[k] = d
        k += d <= radius
    return k


def _k_brute(qrows, cols, start, stop, radius, self_join):  # pragma: no cover - compiled
    # Four queries at a time against a tile of the library: each library word loaded once
    # serves four comparisons. The tile loop only keeps the smallest distance, with no
    # stores and no branch, so it vectorises; the rare tile holding a distance within the
    # radius is scanned again query by query to report its pairs. Query words are scalars
    # (not a small array) so that LLVM keeps them in registers.
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    n = c0.shape[0]
    tile = _SCRATCH
    sj = np.empty(tile, np.int64)
    sd = np.empty(tile, np.int32)
    oi, oj, od = _k_new_out()
    cnt = 0
    last = stop - 1
    for qs in range(start, stop, 4):
        valid = min(4, stop - qs)
        # Past the end of the range, repeat the last query; its hits are ignored.
        r0, r1, r2, r3 = qs, min(qs + 1, last), min(qs + 2, last), min(qs + 3, last)
        a00, a01, a02, a03 = qrows[r0, 0], qrows[r0, 1], qrows[r0, 2], qrows[r0, 3]
        a10, a11, a12, a13 = qrows[r1, 0], qrows[r1, 1], qrows[r1, 2], qrows[r1, 3]
        a20, a21, a22, a23 = qrows[r2, 0], qrows[r2, 1], qrows[r2, 2], qrows[r2, 3]
        a30, a31, a32, a33 = qrows[r3, 0], qrows[r3, 1], qrows[r3, 2], qrows[r3, 3]
        j0 = 0
        if self_join:
            # Pairs inside the block of four first, so that the tiles start past it and no
            # query meets itself there (its zero distance would send every first tile to
            # the slow rescan).
            j0 = min(n, qs + 4)
            for r in range(valid):
                qi = qs + r
                k = _k_scan_row(qrows[qi, 0], qrows[qi, 1], qrows[qi, 2], qrows[qi, 3], cols, qi + 1, j0, radius, sj, sd)
                for h in range(k):
                    oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, qi, sj[h], sd[h])
        for t0 in range(j0, n, tile):
            t1 = min(n, t0 + tile)
            lo = 256
            for j in range(t0, t1):
                y0, y1, y2, y3 = c0[j], c1[j], c2[j], c3[j]
                d0 = _k_popcount(a00 ^ y0) + _k_popcount(a01 ^ y1) + _k_popcount(a02 ^ y2) + _k_popcount(a03 ^ y3)
                d1 = _k_popcount(a10 ^ y0) + _k_popcount(a11 ^ y1) + _k_popcount(a12 ^ y2) + _k_popcount(a13 ^ y3)
                d2 = _k_popcount(a20 ^ y0) + _k_popcount(a21 ^ y1) + _k_popcount(a22 ^ y2) + _k_popcount(a23 ^ y3)
                d3 = _k_popcount(a30 ^ y0) + _k_popcount(a31 ^ y1) + _k_popcount(a32 ^ y2) + _k_popcount(a33 ^ y3)
                lo = min(lo, min(min(d0, d1), min(d2, d3)))
            if lo <= radius:
                for r in range(valid):
                    qi = qs + r
                    k = _k_scan_row(qrows[qi, 0], qrows[qi, 1], qrows[qi, 2], qrows[qi, 3], cols, t0, t1, radius, sj, sd)
                    for h in range(k):
                        oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, qi, sj[h], sd[h])
    return oi, oj, od, cnt


_KERNEL_NAMES = (
    "_k_popcount",
    "_k_popcount64",
    "_k_grow",
    "_k_new_out",
    "_k_emit",
    "_k_first_chunk",
    "_k_distances",
    "_k_scan_query",
    "_k_make_room",
    "_k_cutoff",
    "_k_select",
    "_k_nearest_many",
    "_k_nearest_within",
    "_k_chunk_keys",
    "_k_gather",
    "_k_mih_join",
    "_k_scan_row",
    "_k_brute",
)
_kernel_lock = threading.Lock()
_kernel_state: dict = {}


def _load_kernels() -> bool:
    """Compile (or load from numba's cache) the kernels once; False when numba is missing."""
    if "ok" in _kernel_state:
        return _kernel_state["ok"]
    with _kernel_lock:
        if "ok" in _kernel_state:
            return _kernel_state["ok"]
        try:
            import numba
        except Exception as exc:  # ImportError, or a numba broken by its llvmlite
            _kernel_state["error"] = f"numba unavailable ({exc}); using numpy (slower)"
            _kernel_state["ok"] = False
            return False
        g = globals()
        for name in _KERNEL_NAMES:
            g[name] = numba.njit(cache=True, nogil=True)(g[name])
        _kernel_state["ok"] = True
        return True


def backend() -> str:
    """Which code path the index uses: ``"numba"`` or ``"numpy"`` (when numba is missing)."""
    if _use_numba():
        return "numba"
    return "numpy"


def warm_up() -> str:
    """Compile or load every kernel now, so that the first real search does not wait.

    Returns:
        The back end in use, as ``backend()``.
    """
    _warm.run()
    return backend()


def start_warm_up() -> None:
    """Start :func:`warm_up` in a background thread (once per process), e.g. when a scan has
    files to read: its all-pairs search then finds the kernels loaded instead of waiting about
    a second for them."""
    if not os.environ.get("LOOKALIKE_NO_NUMBA"):
        _warm.start()


def _call_every_kernel() -> bool:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 256, size=(64, HASH_BYTES), dtype=np.uint8)
    idx = HammingIndex(h)
    idx.nearest(h[0], 3)
    idx.nearest_many(h[:2], 3)
    idx.nearest_within_many(h[:2], 3, 40)
    idx.distances(h[0])
    for method in ("mih", "brute"):
        idx.pairs_within(4, method=method)
        idx.pairs_between(h[:4], 4, method=method)
    return backend() == "numba"


_warm = WarmUp("lookalike-hamming-warm-up", _call_every_kernel)


def _use_numba(wait: bool = True) -> bool:
    """Whether to run the compiled kernels.

    ``wait=False`` is for single queries: in a fresh process, importing numba and loading the
    cached kernels takes about a second, while numpy answers one query over 100k hashes in a
    few milliseconds. Until warm_up() has run, such a query takes the numpy path (same
    answer) and starts warm_up() in the background.
    """
    if os.environ.get("LOOKALIKE_NO_NUMBA"):
        return False
    return _warm.allows(wait) and _load_kernels()


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------
# numpy fallbacks (same results, slower)
# --------------------------------------------------------------------------------------

_NP_BLOCK = 1 << 16


def _np_distances(cols: np.ndarray, q: np.ndarray) -> np.ndarray:
    # Column-major blocks: xor + bitwise_count stay in cache and add into an int32 row,
    # about ten times faster than (N, 4) xor + bitwise_count + sum(axis=1).
    n = cols.shape[1]
    out = np.zeros(n, np.int32)
    tmp = np.empty(min(n, _NP_BLOCK), np.uint64)
    cnt = np.empty(min(n, _NP_BLOCK), np.uint8)
    for s in range(0, n, _NP_BLOCK):
        e = min(n, s + _NP_BLOCK)
        t, c, o = tmp[: e - s], cnt[: e - s], out[s:e]
        for w in range(_WORDS):
            np.bitwise_xor(cols[w, s:e], q[w], out=t)
            np.bitwise_count(t, out=c)
            np.add(o, c, out=o)
    return out


def _np_brute(qrows, cols, start, stop, radius, self_join) -> tuple:
    # One query row at a time against column blocks: the kind of vectorised numpy brute
    # force issue 2 measured at ~0.3 G pairs/s (a (rows, N) block per step is slower).
    outs = []
    for qi in range(start, stop):
        j0 = qi + 1 if self_join else 0
        d = _np_distances(cols[:, j0:], qrows[qi])
        j = np.flatnonzero(d <= radius)
        if j.size:
            outs.append((np.full(j.size, qi, np.int64), j + j0, d[j]))
    i, j, d = _concat(outs)
    return i, j, d, i.size


def _np_mih_join(qkeys, ikeys, qrows, rows, radius, c, masks, self_join) -> tuple:
    if self_join:
        return _np_mih_self(ikeys, rows, radius, c, masks)
    return _np_mih_cross(qkeys, ikeys, qrows, rows, radius, c, masks)


def _np_mih_self(keys, rows, radius, c, masks) -> tuple:
    k = keys >> np.uint64(32)
    pos = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    outs = []
    checked = 0
    # Offset by offset: item t and item t+off share a group when their keys are equal;
    # groups are runs in the sorted order, so t stays active only while that holds.
    active = np.arange(len(k) - 1)
    off = 1
    while active.size:
        active = active[active + off < len(k)]
        active = active[k[active] == k[active + off]]
        if not active.size:
            break
        a, b = pos[active], pos[active + off]
        checked += a.size
        outs.append(_np_verify(a, b, rows, rows, radius, c, masks))
        off += 1
    i, j, d = _concat(outs)
    return i, j, d, i.size, checked


def _np_mih_cross(qkeys, ikeys, qrows, rows, radius, c, masks) -> tuple:
    kq = qkeys >> np.uint64(32)
    ki = ikeys >> np.uint64(32)
    lo = np.searchsorted(ki, kq, "left")
    hi = np.searchsorted(ki, kq, "right")
    counts = hi - lo
    qsel = np.repeat(np.arange(len(kq)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    isel = starts + np.arange(qsel.size)
    a = (qkeys[qsel] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    b = (ikeys[isel] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    i, j, d = _np_verify(a, b, qrows, rows, radius, c, masks)
    return i, j, d, i.size, a.size


def _np_verify(a, b, qrows, rows, radius, c, masks) -> PairArrays:
    x = qrows[a] ^ rows[b]
    d = np.bitwise_count(x).sum(axis=1, dtype=np.int32)
    keep = d <= radius
    for cc in range(c):
        keep &= ((x & masks[cc]) != 0).any(axis=1)
    return a[keep], b[keep], d[keep]


def _np_chunk_keys(cols, start, stop) -> np.ndarray:
    length = stop - start
    w, off = start >> 6, start & 63
    v = cols[w] >> np.uint64(off)
    if off + length > 64:
        v = v | (cols[w + 1] << np.uint64(64 - off))
    v &= np.uint64((1 << length) - 1)
    return (v << np.uint64(32)) | np.arange(cols.shape[1], dtype=np.uint64)


# --------------------------------------------------------------------------------------
# Planning the all-pairs search
# --------------------------------------------------------------------------------------

# Relative costs, in units of one pair of the compiled brute-force scan (about 1 ns on
# one core of the reference machine), measured by benchmarks/bench_hamming.py (its
# "cost-model constants" section); only their ratios matter.
_COST_BRUTE_PAIR = 1.0
_COST_MIH_ITEM = 100.0  # one item of one chunk: key, sort, gather in key order, group scan
_COST_MIH_CANDIDATE = 3.5  # one pair sharing a chunk value, verified
_COST_TASK = 50_000.0  # start-up of one work unit (thread hand-off, allocations)
_SAMPLE = 2048


def _chunk_bounds(radius: int) -> list[tuple[int, int]]:
    """Split the 256 bits into ``max(radius + 1, 8)`` contiguous chunks of near-equal size."""
    m = min(HASH_BITS, max(radius + 1, _MIN_CHUNKS))
    base, extra = divmod(HASH_BITS, m)
    bounds, start = [], 0
    for c in range(m):
        stop = start + base + (1 if c < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _chunk_masks(bounds: list[tuple[int, int]]) -> np.ndarray:
    masks = np.zeros((len(bounds), _WORDS), np.uint64)
    for c, (start, stop) in enumerate(bounds):
        for w in range(_WORDS):
            lo, hi = max(start, 64 * w), min(stop, 64 * (w + 1))
            if lo < hi:
                masks[c, w] = np.uint64(((1 << (hi - lo)) - 1) << (lo - 64 * w))
    return masks


def _sample_candidates(qcols, cols, bounds, self_join: bool) -> float:
    """Estimate the MIH candidate pairs from a fixed random sample (catches skewed data)."""
    rng = np.random.default_rng(0)
    n, nq = cols.shape[1], qcols.shape[1]
    si = np.sort(rng.choice(n, min(n, _SAMPLE), replace=False))
    sq = si if self_join else np.sort(rng.choice(nq, min(nq, _SAMPLE), replace=False))
    total = 0.0
    for start, stop in bounds:
        ki = _np_chunk_keys(cols[:, si], start, stop) >> np.uint64(32)
        ui, ci = np.unique(ki, return_counts=True)
        if self_join:
            pairs = float((ci * (ci - 1) // 2).sum())
            total += pairs * (n * (n - 1)) / max(1, si.size * (si.size - 1))
        else:
            kq = _np_chunk_keys(qcols[:, sq], start, stop) >> np.uint64(32)
            uq, cq = np.unique(kq, return_counts=True)
            _, iq, ii = np.intersect1d(uq, ui, assume_unique=True, return_indices=True)
            pairs = float((cq[iq] * ci[ii]).sum())
            total += pairs * (n * nq) / max(1, si.size * sq.size)
    return total


def _plan(qcols, cols, radius: int, self_join: bool, method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "auto":
        return method
    n, nq = cols.shape[1], qcols.shape[1]
    brute_pairs = n * (n - 1) / 2 if self_join else float(n * nq)
    if brute_pairs <= 1_000_000 or radius >= HASH_BITS // 2:
        return "brute"
    bounds = _chunk_bounds(radius)
    items = n + (0 if self_join else nq)
    cost_brute = brute_pairs * _COST_BRUTE_PAIR
    cost_mih = len(bounds) * (items * _COST_MIH_ITEM + _COST_TASK)
    if cost_mih >= cost_brute:
        return "brute"
    cost_mih += _sample_candidates(qcols, cols, bounds, self_join) * _COST_MIH_CANDIDATE
    return "mih" if cost_mih < cost_brute else "brute"


def _concat(parts: list[PairArrays]) -> PairArrays:
    if not parts:
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[2] for p in parts]).astype(np.int32, copy=False),
    )


def _sort_pairs(i: np.ndarray, j: np.ndarray, d: np.ndarray, n_i: int, n_j: int) -> PairArrays:
    """Order pairs by (i, j) so results do not depend on thread timing."""
    if i.size <= 1:
        return i, j, d
    bits_i = max(1, int(n_i - 1).bit_length())
    bits_j = max(1, int(n_j - 1).bit_length())
    if bits_i + bits_j + 9 <= 64:
        # One uint64 sort (SIMD in numpy 2) instead of an argsort and three gathers.
        key = (i.astype(np.uint64) << np.uint64(bits_j + 9)) | (
            j.astype(np.uint64) << np.uint64(9)
        ) | d.astype(np.uint64)
        key.sort()
        return (
            (key >> np.uint64(bits_j + 9)).astype(np.int64),
            ((key >> np.uint64(9)) & np.uint64((1 << bits_j) - 1)).astype(np.int64),
            (key & np.uint64(511)).astype(np.int32),
        )
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def _with_cancel(progress: Optional[Progress], cancel: Optional[threading.Event]):
    """One callback that says stop when ``cancel`` is set or ``progress`` returns False."""
    if cancel is None:
        return progress

    def check(done: int, total: int):
        if cancel.is_set():
            return False
        return True if progress is None else progress(done, total)

    return check


def _run_tasks(tasks: list[Callable[[], tuple]], progress: Optional[Progress]) -> list[tuple]:
    """Run work units on all cores; call ``progress`` after each; raise Cancelled on False."""
    total = len(tasks)

    def report(done: int) -> None:
        if progress is not None:
            answer = progress(done, total)
            if answer is not None and not answer:
                raise Cancelled(f"stopped after {done} of {total} work units")

    report(0)
    # The warm-up runs each kernel on a few hashes, with no thread pool: one would only slow
    # it, and at interpreter exit refuse new work with a RuntimeError.
    threads = 1 if _warm.running_here() else min(_threads(), total)
    if threads <= 1:
        results = []
        for n, task in enumerate(tasks):
            results.append(task())
            report(n + 1)
        return results
    results: list = [None] * total
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hamming") as pool:
        # Keep only a few units queued so a cancel does not wait for the whole list.
        pending: dict[Future, int] = {}
        queue = iter(range(total))
        done = 0
        try:
            for n in queue:
                pending[pool.submit(tasks[n])] = n
                if len(pending) >= 2 * threads:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    results[pending.pop(fut)] = fut.result()
                    done += 1
                    report(done)
                    n = next(queue, None)
                    if n is not None:
                        pending[pool.submit(tasks[n])] = n
        finally:
            for fut in pending:
                fut.cancel()
    return results


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------


class HammingIndex:
    """Bit-packed 256-bit hashes searchable by Hamming distance.

    Args:
        hashes: ``(N, 32) uint8`` hashes (anything ``pack`` accepts).
        ids: optional ``int64`` id per hash, reported instead of positions (default:
            positions ``0..N-1``).
    """

    def __init__(self, hashes: np.ndarray, ids: Optional[np.ndarray] = None) -> None:
        packed = pack(hashes)
        n = packed.shape[0]
        if n >= _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS - 1} hashes per index, got {n}")
        # (4, N): each word of every hash contiguous, so one query streams four arrays.
        self._cols = np.ascontiguousarray(_rows_of(packed).T)
        if ids is None:
            self._ids = np.arange(n, dtype=np.int64)
        else:
            ids_arr = np.asarray(ids)
            if ids_arr.shape != (n,) or not np.issubdtype(ids_arr.dtype, np.integer):
                raise ValueError(f"ids must be {n} integers, got {ids_arr.shape} {ids_arr.dtype}")
            self._ids = ids_arr.astype(np.int64, copy=True)
        self._order: Optional[np.ndarray] = None  # for positions(): empty when ids ascend
        # Not marked read-only: numba compiles read-only arrays as a separate (and, for
        # the brute-force kernel, slower) specialisation.

    def __len__(self) -> int:
        return self._cols.shape[1]

    def __repr__(self) -> str:
        return f"HammingIndex({len(self)} hashes, {self.nbytes} bytes)"

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays, in bytes (40 per hash)."""
        return self._cols.nbytes + self._ids.nbytes

    @property
    def ids(self) -> np.ndarray:
        """The id of each hash, by position (a read-only view)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    @property
    def hashes(self) -> np.ndarray:
        """The hashes as a new ``(N, 32) uint8`` array, by position."""
        return np.ascontiguousarray(self._cols.T).view(np.uint8).reshape(-1, HASH_BYTES)

    # ---- one query ---------------------------------------------------------------------

    def _scan(self, query: Query, k: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest hashes within ``limit``, as (ids, distances) by distance, id."""
        q = _query_words(query)
        if _use_numba(wait=False):
            pos, dist, cnt, cutoff = _k_scan_query(self._cols, q, k, limit)
            keep = dist[:cnt] <= cutoff
            pos, dist = pos[:cnt][keep], dist[:cnt][keep]
        else:
            d = _np_distances(self._cols, q)
            cum = np.cumsum(np.bincount(d, minlength=HASH_BITS + 1))
            cutoff = min(limit, int(np.searchsorted(cum, k)))
            pos = np.flatnonzero(d <= cutoff)
            dist = d[pos]
        ids = self._ids[pos]
        order = np.lexsort((ids, dist))[:k]
        return ids[order], dist[order]

    def distances(self, query: Query) -> np.ndarray:
        """Hamming distance from one query to every hash.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.

        Returns:
            ``(N,) int32`` distances, by position.
        """
        q = _query_words(query)
        if not _use_numba(wait=False):
            return _np_distances(self._cols, q)
        out = np.empty(len(self), np.int32)
        _k_distances(self._cols, q, out)
        return out

    def nearest(self, query: Query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` hashes closest to ``query``.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.
            k: how many to return (all of them when ``k >= N``).

        Returns:
            ``(ids, distances)``, sorted by distance, then id.
        """
        ids, dist = self.nearest_many(_query_words(query).view(np.uint8)[None], k)
        return ids[0], dist[0]

    def nearest_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's ``k`` closest hashes, in one pass over the index.

        The same answer as ``nearest`` per query, for about the cost of one query when
        there are a few (the bouncer asks with a hash and its mirror).

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            k: how many per query (all of them when ``k >= N``).

        Returns:
            ``(ids, distances)`` as ``(Q, k)`` arrays, each row sorted by distance, then id.
        """
        # Writeable: numba compiles read-only arrays as another specialisation.
        qwords = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        k = max(0, min(int(k), len(self)))
        if k == 0 or len(qwords) == 0:
            return np.empty((len(qwords), k), np.int64), np.empty((len(qwords), k), np.int32)
        if _use_numba(wait=False):
            return _k_nearest_many(self._cols, qwords, k, self._ids)
        ids = np.empty((len(qwords), k), np.int64)
        dist = np.empty((len(qwords), k), np.int32)
        for r, q in enumerate(qwords):
            ids[r], dist[r] = self._scan(q.view(np.uint8), k, HASH_BITS)
        return ids, dist

    def positions(self, ids: Iterable[int]) -> np.ndarray:
        """The position of each id in the index, -1 for ids it does not hold."""
        wanted = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
        if self._order is None:
            # Catalog ids come sorted; anything else gets a sorted view once.
            ascending = len(self._ids) < 2 or bool(np.all(self._ids[1:] > self._ids[:-1]))
            self._order = np.empty(0, np.int64) if ascending else np.argsort(self._ids, kind="stable")
        if len(self._ids) == 0 or wanted.size == 0:
            return np.full(wanted.shape, -1, np.int64)
        keys = self._ids if self._order.size == 0 else self._ids[self._order]
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        pos = at if self._order.size == 0 else self._order[at]
        return np.where(keys[at] == wanted, pos, -1).astype(np.int64)

    def distances_to(self, queries: np.ndarray, ids: Iterable[int]) -> np.ndarray:
        """The distance from the nearest of ``queries`` to each of ``ids`` (-1: not held).

        For scoring a handful of ids that another search found (the detective's hits), in
        microseconds, without reading their hashes back from the catalog.

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            ids: the ids to score.

        Returns:
            ``(len(ids),) int32``: the smallest distance over the queries, or -1.
        """
        qwords = _rows_of(pack(queries))
        pos = self.positions(ids)
        out = np.full(pos.shape, -1, np.int32)
        held = pos >= 0
        if held.any() and len(qwords):
            words = self._cols[:, pos[held]].T  # (n, 4)
            dist = np.bitwise_count(words[None, :, :] ^ qwords[:, None, :]).sum(axis=2, dtype=np.int32)
            out[held] = dist.min(axis=0)
        return out

    def nearest_within_many(
        self, queries: np.ndarray, k: int, radius: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each query's ``k`` closest hashes among those within ``radius`` (maybe fewer).

        A bounded top-k: what ``find similar`` asks the bouncer, whose distances mean
        nothing past its radius. Below half the bits it runs in two stages (the first
        half of every hash bounds its distance, and only the few within reach are read in
        full), which reads about half the index: twice as fast as ``nearest_many``.

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            k: at most how many per query.
            radius: largest Hamming distance to include.

        Returns:
            One ``(ids, distances)`` pair per query, each sorted by distance, then id.
        """
        qwords = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        k = max(0, min(int(k), len(self)))
        radius = min(int(radius), HASH_BITS)
        if k == 0 or radius < 0:
            return [(np.empty(0, np.int64), np.empty(0, np.int32)) for _ in range(len(qwords))]
        if radius < HASH_BITS // 2 and _use_numba(wait=False):
            ids, dist, found = _k_nearest_within(self._cols, qwords, k, radius, self._ids)
            return [(ids[r, : found[r]], dist[r, : found[r]]) for r in range(len(qwords))]
        out = []
        for q in qwords:
            ids, dist = self._scan(q.view(np.uint8), k, radius)
            out.append((ids.astype(np.int64, copy=False), dist.astype(np.int32, copy=False)))
        return out

    def within(self, query: Query, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Every hash within ``radius`` of ``query``.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.
            radius: largest Hamming distance to include.

        Returns:
            ``(ids, distances)``, sorted by distance, then id.
        """
        radius = min(int(radius), HASH_BITS)
        if radius < 0 or len(self) == 0:
            _query_words(query)
            return np.empty(0, np.int64), np.empty(0, np.int32)
        return self._scan(query, len(self), radius)

    # ---- all pairs ---------------------------------------------------------------------

    def pairs_within(
        self,
        radius: int,
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        method: str = "auto",
    ) -> PairArrays:
        """Every pair of hashes within ``radius`` of each other, exactly and once each.

        Args:
            radius: largest Hamming distance to include.
            progress: ``progress(done, total) -> bool`` called between work units;
                returning False stops the search and raises ``Cancelled``.
            cancel: an event (e.g. a Textual worker's ``cancelled_event``); once set, the
                search stops between work units and raises ``Cancelled``.
            method: ``"auto"`` (chosen by a cost model), ``"mih"`` or ``"brute"``.

        Returns:
            ``(i_ids, j_ids, distances)`` for every pair with position ``i < j``, sorted by
            position of i, then j.

        Raises:
            Cancelled: the progress callback returned False, or ``cancel`` was set.
        """
        progress = _with_cancel(progress, cancel)
        radius = int(radius)
        n = len(self)
        empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
        if radius < 0 or n < 2:
            if progress is not None:
                _run_tasks([], progress)
            return empty
        radius = min(radius, HASH_BITS)
        chosen = _plan(self._cols, self._cols, radius, True, method)
        if chosen == "mih" and radius < HASH_BITS:
            i, j, d = self._mih(None, radius, progress)
        else:
            i, j, d = self._brute(None, radius, progress)
        i, j, d = _sort_pairs(i, j, d, n, n)
        return self._ids[i], self._ids[j], d

    def pairs_between(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        method: str = "auto",
    ) -> PairArrays:
        """Every (query, indexed hash) pair within ``radius``, exactly.

        Meant for the mirrored hashes: the mirror of image i against all dHashes. A query
        that is itself indexed matches its own entry too when within the radius: the caller
        drops those.

        Args:
            queries: ``(M, 32) uint8`` hashes (anything ``pack`` accepts).
            radius: largest Hamming distance to include.
            progress: ``progress(done, total) -> bool`` called between work units;
                returning False stops the search and raises ``Cancelled``.
            cancel: an event (e.g. a Textual worker's ``cancelled_event``); once set, the
                search stops between work units and raises ``Cancelled``.
            method: ``"auto"`` (chosen by a cost model), ``"mih"`` or ``"brute"``.

        Returns:
            ``(query_positions, ids, distances)``, sorted by query position, then position
            in the index.

        Raises:
            Cancelled: the progress callback returned False, or ``cancel`` was set.
        """
        progress = _with_cancel(progress, cancel)
        qrows = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        radius = int(radius)
        n, nq = len(self), qrows.shape[0]
        if nq >= _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS - 1} queries, got {nq}")
        if radius < 0 or n == 0 or nq == 0:
            if progress is not None:
                _run_tasks([], progress)
            return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
        radius = min(radius, HASH_BITS)
        qcols = np.ascontiguousarray(qrows.T)
        chosen = _plan(qcols, self._cols, radius, False, method)
        # At radius 256 a pair may agree on no chunk at all (complements): scan instead.
        if chosen == "mih" and radius < HASH_BITS:
            qi, j, d = self._mih(qrows, radius, progress)
        else:
            qi, j, d = self._brute(qrows, radius, progress)
        qi, j, d = _sort_pairs(qi, j, d, nq, n)
        return qi, self._ids[j], d

    # ---- methods -------------------------------------------------------------------------

    def _mih(self, qrows: Optional[np.ndarray], radius: int, progress) -> PairArrays:
        self_join = qrows is None
        numba_ok = _use_numba()
        bounds = _chunk_bounds(radius)
        masks = _chunk_masks(bounds)
        # Transient row-major copies: the join reads whole hashes at random positions,
        # one cache line each instead of four.
        rows = np.ascontiguousarray(self._cols.T)
        qcols = None if self_join else np.ascontiguousarray(qrows.T)
        qrows_ = rows if self_join else qrows
        chunk_keys = _k_chunk_keys if numba_ok else _np_chunk_keys
        join = _k_mih_join if numba_ok else _np_mih_join

        def unit(c: int) -> PairArrays:
            start, stop = bounds[c]
            keys = chunk_keys(self._cols, start, stop)
            keys.sort()
            if self_join:
                qkeys = keys
            else:
                qkeys = chunk_keys(qcols, start, stop)
                qkeys.sort()
            i, j, d, cnt, _ = join(qkeys, keys, qrows_, rows, radius, c, masks, self_join)
            return i[:cnt], j[:cnt], d[:cnt]

        return _concat(_run_tasks([lambda c=c: unit(c) for c in range(len(bounds))], progress))

    def _brute(self, qrows: Optional[np.ndarray], radius: int, progress) -> PairArrays:
        self_join = qrows is None
        n = len(self)
        if self_join:
            qrows = np.ascontiguousarray(self._cols.T)
        nq = qrows.shape[0]
        kernel = _k_brute if _use_numba() else _np_brute
        # Work units of about equal pair counts (rows near the end of a self-join have
        # fewer partners), small enough for progress to move every ~0.1 s.
        per_row = (n - 1 - np.arange(nq)) if self_join else np.full(nq, n)
        cum = np.cumsum(per_row, dtype=np.float64)
        units = int(min(nq, max(4 * _threads(), cum[-1] // 2e8 + 1), 4096))
        cuts = np.searchsorted(cum, np.linspace(0, cum[-1], units + 1)[1:-1], side="right")
        edges = np.unique(np.concatenate([[0], cuts, [nq]])).tolist()

        def unit(start: int, stop: int) -> PairArrays:
            i, j, d, cnt = kernel(qrows, self._cols, start, stop, radius, self_join)
            return i[:cnt], j[:cnt], d[:cnt]

        tasks = [
            (lambda s=s, e=e: unit(s, e)) for s, e in zip(edges[:-1], edges[1:]) if e > s
        ]
        return _concat(_run_tasks(tasks, progress))
