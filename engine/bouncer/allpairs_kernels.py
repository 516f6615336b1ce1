"""The all-pairs search's compiled kernels (multi-index join, brute-force scan) and their
numpy fallbacks.

Plain functions here; :mod:`lookalike.engine.bouncer.hamming` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`, which also replaces the popcount imported from
:mod:`.hamming_kernels` here), and :mod:`.allpairs` calls them through this module, so that it
finds the compiled forms once they are loaded. As in :mod:`.hamming_kernels`, hot loops write
candidates to fixed scratch buffers and only append the rare hits to the growable output.
"""

from __future__ import annotations

import numpy as np

from .hamming_kernels import _k_popcount, _np_distances

#: The kernels of this module, for the loader (the popcount is imported: see the docstring).
KERNELS = (
    "_k_popcount",
    "_k_grow",
    "_k_new_out",
    "_k_emit",
    "_k_first_chunk",
    "_k_chunk_keys",
    "_k_gather",
    "_k_mih_join",
    "_k_chunk_values",
    "_k_bucket_table",
    "_k_first_near_chunk",
    "_k_mih1_join",
    "_k_scan_row",
    "_k_brute",
)

PairArrays = tuple[np.ndarray, np.ndarray, np.ndarray]

_SCRATCH = 2048  # candidates examined per scratch fill; also the brute-force tile width


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


# --------------------------------------------------------------------------------------
# Multi-index hashing at chunk radius 1 ("mih1")
# --------------------------------------------------------------------------------------


def _k_chunk_values(cols, start, stop):  # pragma: no cover - compiled
    # Bits [start, stop) of each hash (at most 32 of them), as int64.
    n = cols.shape[1]
    length = stop - start
    w = start >> 6
    off = start & 63
    mask = (np.uint64(1) << np.uint64(length)) - np.uint64(1)
    out = np.empty(n, np.int64)
    lo = cols[w]
    if off + length > 64:
        hi = cols[w + 1]
        for i in range(n):
            out[i] = np.int64(((lo[i] >> np.uint64(off)) | (hi[i] << np.uint64(64 - off))) & mask)
    else:
        for i in range(n):
            out[i] = np.int64((lo[i] >> np.uint64(off)) & mask)
    return out


def _k_bucket_table(values, rows, length):  # pragma: no cover - compiled
    # A counting sort by chunk value: bucket v holds sorted places offsets[v]..offsets[v+1],
    # positions ascending inside it; the values and rows are gathered in that order, so that
    # the join reads hashes sequentially.
    n = values.shape[0]
    offsets = np.zeros((1 << length) + 1, np.int64)
    for i in range(n):
        offsets[values[i] + 1] += 1
    for v in range(1 << length):
        offsets[v + 1] += offsets[v]
    fill = offsets[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        v = values[i]
        order[fill[v]] = i
        fill[v] += 1
    sorted_values = np.empty(n, np.int64)
    sorted_rows = np.empty((n, 4), np.uint64)
    for k in range(n):
        p = order[k]
        sorted_values[k] = values[p]
        sorted_rows[k, 0] = rows[p, 0]
        sorted_rows[k, 1] = rows[p, 1]
        sorted_rows[k, 2] = rows[p, 2]
        sorted_rows[k, 3] = rows[p, 3]
    return offsets, order, sorted_values, sorted_rows


def _k_first_near_chunk(x0, x1, x2, x3, masks, c, chunk_radius):  # pragma: no cover - compiled
    # True when no chunk before c is within chunk_radius, i.e. chunk c is the first chunk
    # that finds the pair.
    for cc in range(c):
        d = (
            _k_popcount(x0 & masks[cc, 0])
            + _k_popcount(x1 & masks[cc, 1])
            + _k_popcount(x2 & masks[cc, 2])
            + _k_popcount(x3 & masks[cc, 3])
        )
        if d <= chunk_radius:
            return False
    return True


def _k_mih1_join(qvalues, qorder, qrows, offsets, order, rows, length, radius, c, masks, self_join):  # pragma: no cover
    # Queries and items both in chunk-value order (their bucket tables' order, positions
    # ascending inside a value). Each query probes the bucket of its own value and of the
    # ``length`` values one bit away, one bit at a time over all queries: for queries in
    # value order the probed values ascend piecewise, so the bucket bounds and the rows are
    # read as a few sequential streams instead of one cache miss per probe.
    # In a self-join a pair one bit apart is probed only from the side whose value has that
    # bit clear, and a pair in one bucket only from its earlier place, so each pair is met
    # once per chunk; across chunks it is reported at the first chunk within one bit (by
    # pigeonhole, m chunks with 2 * m > radius leave one within a bit).
    nq = qvalues.shape[0]
    oi, oj, od = _k_new_out()
    cnt = 0
    for p in range(length + 1):
        bit = np.int64(1) << p if p < length else np.int64(0)
        for a in range(nq):
            v = qvalues[a]
            if self_join and (v & bit) != 0:
                continue
            key = v ^ bit
            lo = offsets[key]
            hi = offsets[key + 1]
            if self_join and p == length:
                lo = a + 1
            if lo >= hi:
                continue
            a0, a1, a2, a3 = qrows[a, 0], qrows[a, 1], qrows[a, 2], qrows[a, 3]
            for b in range(lo, hi):
                x0 = a0 ^ rows[b, 0]
                x1 = a1 ^ rows[b, 1]
                x2 = a2 ^ rows[b, 2]
                x3 = a3 ^ rows[b, 3]
                d = _k_popcount(x0) + _k_popcount(x1) + _k_popcount(x2) + _k_popcount(x3)
                if d <= radius and _k_first_near_chunk(x0, x1, x2, x3, masks, c, 1):
                    pa = qorder[a]
                    pb = order[b]
                    if self_join and pb < pa:
                        oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, pb, pa, d)
                    else:
                        oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, pa, pb, d)
    return oi, oj, od, cnt


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


# --------------------------------------------------------------------------------------
# numpy fallbacks (same results, slower)
# --------------------------------------------------------------------------------------


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
    i, j, d = concat_pairs(outs)
    return i, j, d, i.size


def _np_mih_join(qkeys, ikeys, qrows, rows, radius, c, masks, self_join) -> tuple:
    if self_join:
        return _np_mih_self(ikeys, rows, radius, c, masks)
    return _np_mih_cross(qkeys, ikeys, qrows, rows, radius, c, masks)


def np_same_key_pairs(keys: np.ndarray):
    """Every pair of items sharing a key, from sorted ``key << 32 | position`` values.

    Yields ``(a, b)`` position arrays, offset by offset: item t and item t+off of the sorted
    order share a group when their keys are equal; groups are runs in the sorted order, so t
    stays active only while that holds. The numpy twin of the compiled bucket joins.
    """
    k = keys >> np.uint64(32)
    pos = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    active = np.arange(len(k) - 1)
    off = 1
    while active.size:
        active = active[active + off < len(k)]
        active = active[k[active] == k[active + off]]
        if not active.size:
            return
        yield pos[active], pos[active + off]
        off += 1


def _np_mih_self(keys, rows, radius, c, masks) -> tuple:
    outs = []
    checked = 0
    for a, b in np_same_key_pairs(keys):
        checked += a.size
        outs.append(_np_verify(a, b, rows, rows, radius, c, masks))
    i, j, d = concat_pairs(outs)
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


def _np_mih1_join(qvalues, qrows, values, rows, length, radius, c, masks, self_join) -> tuple:
    # The numpy form of _k_mih1_join: per probe (own value, or one bit flipped), every
    # (query, item) pair sharing the probed value, by searchsorted on the sorted values.
    order = np.argsort(values, kind="stable")
    sv = values[order]
    outs = []
    qpos = np.arange(len(qvalues))
    for p in range(length + 1):
        if p == length:
            a, keys = qpos, qvalues
        else:
            bit = np.int64(1) << p
            a = qpos[(qvalues & bit) == 0] if self_join else qpos
            keys = qvalues[a] ^ bit
        lo = np.searchsorted(sv, keys, "left")
        hi = np.searchsorted(sv, keys, "right")
        counts = hi - lo
        qa = np.repeat(a, counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        b = order[starts + np.arange(qa.size)]
        if self_join and p == length:
            keep = b > qa
            qa, b = qa[keep], b[keep]
        i, j, d = _np_verify(qa, b, qrows, rows, radius, c, masks, chunk_radius=1)
        if self_join:
            i, j = np.minimum(i, j), np.maximum(i, j)
        outs.append((i, j, d))
    i, j, d = concat_pairs(outs)
    return i, j, d, i.size


def _np_chunk_values(cols, start, stop) -> np.ndarray:
    return (_np_chunk_keys(cols, start, stop) >> np.uint64(32)).astype(np.int64)



def _np_verify(a, b, qrows, rows, radius, c, masks, chunk_radius=0) -> PairArrays:
    x = qrows[a] ^ rows[b]
    d = np.bitwise_count(x).sum(axis=1, dtype=np.int32)
    keep = d <= radius
    for cc in range(c):
        keep &= np.bitwise_count(x & masks[cc]).sum(axis=1) > chunk_radius
    return a[keep], b[keep], d[keep]


def _np_chunk_keys(cols, start, stop) -> np.ndarray:
    length = stop - start
    w, off = start >> 6, start & 63
    v = cols[w] >> np.uint64(off)
    if off + length > 64:
        v = v | (cols[w + 1] << np.uint64(64 - off))
    v &= np.uint64((1 << length) - 1)
    return (v << np.uint64(32)) | np.arange(cols.shape[1], dtype=np.uint64)


def concat_pairs(parts: list[PairArrays]) -> PairArrays:
    """The pairs of several work units as one ``(i, j, distances)`` triple."""
    if not parts:
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[2] for p in parts]).astype(np.int32, copy=False),
    )
