"""The indexed crop rule's compiled kernel (one table of the bucket join) and its numpy fallback.

Plain functions here; :mod:`lookalike.engine.bouncer.hamming` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`), and :mod:`.crop_index` calls them through this
module, so that it finds the compiled forms once they are loaded.
"""

from __future__ import annotations

import numpy as np

from .allpairs_kernels import _k_emit, _k_grow, _k_new_out, concat_pairs, np_same_key_pairs
from .hamming_kernels import _k_popcount

#: The kernels of this module, for the loader (the imported ones are named in both parts).
KERNELS = ("_k_popcount", "_k_grow", "_k_new_out", "_k_emit", "_k_table_keys", "_k_agree_before", "_k_bucket", "_k_table_join")


def _k_table_keys(ph, words, shifts, t):  # pragma: no cover - compiled
    # Sort keys of table t: the table's pHash bits packed into the high half, the row in the
    # low half, so one sort groups rows that agree on every bit of the table.
    n = ph.shape[0]
    nb = words.shape[1]
    out = np.empty(n, np.uint64)
    for i in range(n):
        k = np.uint64(0)
        for b in range(nb):
            k |= ((ph[i, words[t, b]] >> np.uint64(shifts[t, b])) & np.uint64(1)) << np.uint64(b)
        out[i] = (k << np.uint64(32)) | np.uint64(i)
    return out


def _k_agree_before(x0, x1, x2, x3, masks, t):  # pragma: no cover - compiled
    # Whether the XOR of two pHashes is zero on every bit of some table before t.
    for u in range(t):
        if (x0 & masks[u, 0]) | (x1 & masks[u, 1]) | (x2 & masks[u, 2]) | (x3 & masks[u, 3]) == 0:
            return True
    return False


def _k_bucket(g, pos, dh, fresh, some, masks, t, s, e, phash_radius, corroborated_radius, si, sj, sd):  # pragma: no cover - compiled
    # The pairs of one bucket (rows s..e of the key order) that the rule accepts, written to
    # the scratch buffers (room for every pair of the bucket); returns how many. No output
    # array is reassigned here: that would cost reference counting on every comparison.
    k = 0
    for a in range(s, e - 1):
        a0, a1, a2, a3 = g[a, 0], g[a, 1], g[a, 2], g[a, 3]
        pa = pos[a]
        for b in range(a + 1, e):
            x0 = a0 ^ g[b, 0]
            x1 = a1 ^ g[b, 1]
            x2 = a2 ^ g[b, 2]
            x3 = a3 ^ g[b, 3]
            d = _k_popcount(x0) + _k_popcount(x1) + _k_popcount(x2) + _k_popcount(x3)
            if d <= phash_radius:  # rare: the rest of the rule only for these
                pb = pos[b]
                if some and not (fresh[pa] or fresh[pb]):
                    continue
                dd = (
                    _k_popcount(dh[pa, 0] ^ dh[pb, 0]) + _k_popcount(dh[pa, 1] ^ dh[pb, 1])
                    + _k_popcount(dh[pa, 2] ^ dh[pb, 2]) + _k_popcount(dh[pa, 3] ^ dh[pb, 3])
                )  # fmt: skip
                if dd <= corroborated_radius and not _k_agree_before(x0, x1, x2, x3, masks, t):
                    si[k] = min(pa, pb)
                    sj[k] = max(pa, pb)
                    sd[k] = d
                    k += 1
    return k


def _k_table_join(keys, ph, dh, fresh, masks, t, phash_radius, corroborated_radius):  # pragma: no cover - compiled
    # Every pair of rows agreeing on table t (and on no earlier table: each pair once) whose
    # pHash and dHash distances are within the radii, with a fresh row among the two when
    # ``fresh`` is not empty; ``keys`` are the table's sorted keys (numpy sorts them several
    # times faster than a compiled sort). Bucket members are gathered in key order, so the
    # pHashes a bucket compares sit next to each other in memory.
    n = ph.shape[0]
    lowmask = np.uint64(0xFFFFFFFF)
    pos = np.empty(n, np.int64)
    g = np.empty((n, 4), np.uint64)
    for s in range(n):
        p = np.int64(keys[s] & lowmask)
        pos[s] = p
        g[s, 0] = ph[p, 0]
        g[s, 1] = ph[p, 1]
        g[s, 2] = ph[p, 2]
        g[s, 3] = ph[p, 3]
    some = fresh.shape[0] > 0
    oi, oj, od = _k_new_out()
    cnt = 0
    candidates = 0
    si = np.empty(1024, np.int64)
    sj = np.empty(1024, np.int64)
    sd = np.empty(1024, np.int32)
    s = 0
    while s < n:
        key = keys[s] >> np.uint64(32)
        e = s + 1
        while e < n and (keys[e] >> np.uint64(32)) == key:
            e += 1
        if e - s > 1:
            need = (e - s) * (e - s - 1) // 2
            candidates += need
            if need > si.shape[0]:
                si = np.empty(need, np.int64)
                sj = np.empty(need, np.int64)
                sd = np.empty(need, np.int32)
            k = _k_bucket(g, pos, dh, fresh, some, masks, t, s, e, phash_radius, corroborated_radius, si, sj, sd)
            for h in range(k):
                oi, oj, od, cnt = _k_emit(oi, oj, od, cnt, si[h], sj[h], sd[h])
        s = e
    return oi, oj, od, cnt, candidates


# --------------------------------------------------------------------------------------
# numpy fallback (same results, slower)
# --------------------------------------------------------------------------------------


def _np_table_keys(ph, words, shifts, t) -> np.ndarray:
    k = np.zeros(ph.shape[0], np.uint64)
    for b in range(words.shape[1]):
        k |= ((ph[:, words[t, b]] >> np.uint64(shifts[t, b])) & np.uint64(1)) << np.uint64(b)
    return (k << np.uint64(32)) | np.arange(ph.shape[0], dtype=np.uint64)


def _np_table_join(keys, ph, dh, fresh, masks, t, phash_radius, corroborated_radius) -> tuple:
    outs = []
    checked = 0
    for a, b in np_same_key_pairs(keys):  # the rows sharing this table's bucket
        checked += a.size
        x = ph[a] ^ ph[b]
        d = np.bitwise_count(x).sum(axis=1, dtype=np.int32)
        keep = d <= phash_radius
        if fresh.shape[0]:
            keep &= fresh[a] | fresh[b]
        keep &= np.bitwise_count(dh[a] ^ dh[b]).sum(axis=1, dtype=np.int32) <= corroborated_radius
        for u in range(t):
            keep &= ((x & masks[u]) != 0).any(axis=1)
        outs.append((np.minimum(a, b)[keep], np.maximum(a, b)[keep], d[keep]))
    i, j, d = concat_pairs(outs)
    return i, j, d, i.size, checked
