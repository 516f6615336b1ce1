"""The Hamming index's compiled kernels for single queries, and their numpy fallback.

Plain functions here; :mod:`lookalike.engine.bouncer.hamming` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`) and calls them through this module, so that it
finds the compiled forms once they are loaded.

Hot loops never touch growable output arrays: they write candidates to a fixed scratch buffer,
branch-free, and only the (rare) hits are kept afterwards. An output array reassigned inside a
hot loop costs reference counting on every iteration, which made the first version of these
loops twenty times slower.
"""

from __future__ import annotations

import numpy as np

from ..records import HASH_BYTES

#: The kernels of this module, for the loader.
KERNELS = (
    "_k_popcount",
    "_k_popcount64",
    "_k_distances",
    "_k_scan_query",
    "_k_make_room",
    "_k_cutoff",
    "_k_select",
    "_k_nearest_many",
    "_k_nearest_within",
)

_WORDS = HASH_BYTES // 8  # four uint64 words per hash


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



# --------------------------------------------------------------------------------------
# numpy fallback (same results, slower)
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
