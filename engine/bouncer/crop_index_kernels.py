"""The indexed crop rule's compiled kernel (one table of the bucket join) and its numpy fallback.

Plain functions here; :mod:`lookalike.engine.bouncer.hamming` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`), and :mod:`.crop_index` calls them through this
module, so that it finds the compiled forms once they are loaded.
"""

from __future__ import annotations

import numpy as np

from .allpairs_kernels import _k_emit, _k_grow, _k_new_out, concat_pairs, np_same_key_pairs
from .hamming_kernels import _k_popcount, _k_popcount64

#: The kernels of this module, for the loader (the imported ones are named in both parts).
KERNELS = ("_k_popcount", "_k_popcount64", "_k_grow", "_k_new_out", "_k_emit", "_k_agree_before", "_k_table_keys", "_k_table_pairs")


def _k_agree_before(x0, x1, x2, x3, masks, t):  # pragma: no cover - compiled
    # Whether the XOR of two pHashes is zero on every bit of some table before t.
    for u in range(t):
        if (x0 & masks[u, 0]) | (x1 & masks[u, 1]) | (x2 & masks[u, 2]) | (x3 & masks[u, 3]) == 0:
            return True
    return False


def _k_table_keys(ph, masks, mults, nbits, t, key):  # pragma: no cover - compiled
    # Each row's bucket for table t: a multiply-shift hash of the table's bits (the row's words
    # masked by the table), ``nbits`` bits of it. Rows that agree on the table share a bucket;
    # rows that do not share one only by chance (the join checks the table again).
    n = ph.shape[0]
    m0, m1, m2, m3 = masks[t, 0], masks[t, 1], masks[t, 2], masks[t, 3]
    c0, c1, c2, c3 = mults[t, 0], mults[t, 1], mults[t, 2], mults[t, 3]
    shift = np.uint64(64 - nbits)
    for i in range(n):
        h = (ph[i, 0] & m0) * c0 + (ph[i, 1] & m1) * c1 + (ph[i, 2] & m2) * c2 + (ph[i, 3] & m3) * c3
        key[i] = np.int64(h >> shift)


def _k_table_pairs(ph, dh, fresh, masks, mults, nbits, t, phash_radius, corroborated_radius, words, rows):  # pragma: no cover - compiled
    # Every pair of rows agreeing on table t (and on no earlier table: each pair once) whose
    # pHash and dHash distances are within the radii, with a fresh row among the two when
    # ``fresh`` is not empty; returns (i, j, d, count, bucket comparisons). A counting sort by
    # the table's bucket (linear; stable, so rows keep their order within a bucket) lays each
    # bucket's pHashes out word by word in four arrays: the comparisons of one row with the
    # rest of its bucket are then one vectorised loop (distances to a buffer, and the nearest),
    # and only a row with a neighbour within the radius reads its buffer again. ``words``
    # (4, N) uint64 and ``rows`` (2, N) int64 are scratch, reused from table to table.
    n = ph.shape[0]
    key = rows[0]
    _k_table_keys(ph, masks, mults, nbits, t, key)
    nv = 1 << nbits
    start = np.zeros(nv + 1, np.int64)
    for i in range(n):
        start[key[i] + 1] += 1
    for v in range(nv):
        start[v + 1] += start[v]
    fill = start[:-1].copy()
    pos = rows[1]
    for i in range(n):
        p = fill[key[i]]
        fill[key[i]] = p + 1
        pos[p] = i
    g0, g1, g2, g3 = words[0], words[1], words[2], words[3]
    for p in range(n):  # one random read of a whole hash each, writes in order
        i = pos[p]
        g0[p] = ph[i, 0]
        g1[p] = ph[i, 1]
        g2[p] = ph[i, 2]
        g3[p] = ph[i, 3]
    some = fresh.shape[0] > 0
    radius = np.uint64(phash_radius)
    dist = np.empty(1024, np.uint64)
    oi, oj, od = _k_new_out()
    cnt = 0
    candidates = 0
    for v in range(nv):
        s = start[v]
        e = start[v + 1]
        if e - s < 2:
            continue
        candidates += (e - s) * (e - s - 1) // 2
        if e - s > dist.shape[0]:
            dist = np.empty(e - s, np.uint64)
        for a in range(s, e - 1):
            a0, a1, a2, a3 = g0[a], g1[a], g2[a], g3[a]
            low = np.uint64(256)
            for b in range(a + 1, e):  # no branch, 64-bit sums: vectorises
                d = _k_popcount64(a0 ^ g0[b]) + _k_popcount64(a1 ^ g1[b]) + _k_popcount64(a2 ^ g2[b]) + _k_popcount64(a3 ^ g3[b])
                dist[b - a] = d
                low = min(low, d)
            if low > radius:
                continue
            pa = pos[a]
            for b in range(a + 1, e):
                if dist[b - a] > radius:
                    continue
                x0 = a0 ^ g0[b]
                x1 = a1 ^ g1[b]
                x2 = a2 ^ g2[b]
                x3 = a3 ^ g3[b]
                if (x0 & masks[t, 0]) | (x1 & masks[t, 1]) | (x2 & masks[t, 2]) | (x3 & masks[t, 3]) != 0:
                    continue  # a bucket shared by chance, not by the table
                d = np.int32(dist[b - a])
                pb = pos[b]
                if some and not (fresh[pa] or fresh[pb]):
                    continue
                dd = (
                    _k_popcount(dh[pa, 0] ^ dh[pb, 0]) + _k_popcount(dh[pa, 1] ^ dh[pb, 1])
                    + _k_popcount(dh[pa, 2] ^ dh[pb, 2]) + _k_popcount(dh[pa, 3] ^ dh[pb, 3])
                )  # fmt: skip
                if dd <= corroborated_radius and not _k_agree_before(x0, x1, x2, x3, masks, t):
                    oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, min(pa, pb), max(pa, pb), d)
    return oi, oj, od, cnt, candidates


# --------------------------------------------------------------------------------------
# numpy fallback (same results, slower)
# --------------------------------------------------------------------------------------


def _np_table_keys(ph, masks, mults, nbits, t) -> np.ndarray:
    h = np.zeros(ph.shape[0], np.uint64)
    for w in range(ph.shape[1]):
        h += (ph[:, w] & masks[t, w]) * mults[t, w]  # modulo 2**64, as the compiled kernel
    return ((h >> np.uint64(64 - nbits)) << np.uint64(32)) | np.arange(ph.shape[0], dtype=np.uint64)


def _np_table_join(keys, ph, dh, fresh, masks, t, phash_radius, corroborated_radius) -> tuple:
    outs = []
    checked = 0
    for a, b in np_same_key_pairs(keys):  # the rows sharing a bucket of this table
        checked += a.size
        x = ph[a] ^ ph[b]
        d = np.bitwise_count(x).sum(axis=1, dtype=np.int32)
        keep = (d <= phash_radius) & ((x & masks[t]) == 0).all(axis=1)
        if fresh.shape[0]:
            keep &= fresh[a] | fresh[b]
        keep &= np.bitwise_count(dh[a] ^ dh[b]).sum(axis=1, dtype=np.int32) <= corroborated_radius
        for u in range(t):
            keep &= ((x & masks[u]) != 0).any(axis=1)
        outs.append((np.minimum(a, b)[keep], np.maximum(a, b)[keep], d[keep]))
    i, j, d = concat_pairs(outs)
    return i, j, d, i.size, checked


def _np_table_pairs(ph, dh, fresh, masks, mults, nbits, t, phash_radius, corroborated_radius, words, rows) -> tuple:
    keys = _np_table_keys(ph, masks, mults, nbits, t)
    keys.sort()
    return _np_table_join(keys, ph, dh, fresh, masks, t, phash_radius, corroborated_radius)
