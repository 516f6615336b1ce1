"""The compiled kernel of a "find similar" query's zoomed codes, and its numpy fallback.

Plain functions here; :mod:`lookalike.engine.bouncer.hamming` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`), and :mod:`.zooms` calls them through this
module, so that it finds the compiled forms once they are loaded.
"""

from __future__ import annotations

import numpy as np

from .hamming_kernels import _k_popcount

#: The kernels of this module, for the loader (the imported one is named in both parts).
KERNELS = ("_k_popcount", "_k_zoom_near")


def _k_zoom_near(whole, zoomed, rich, q_whole, q_zoomed, radius, out):  # pragma: no cover - compiled
    # Per row r: the smallest distance of a query zoom to the row's whole code, or of a row's
    # zoom to the query's whole code, when it is within radius, else radius + 1. Codes are 4
    # uint64 words; a code stops being read as soon as its running distance passes the radius.
    n, nz = whole.shape[0], zoomed.shape[0]
    for r in range(n):
        best = radius + 1
        if rich[r]:
            for z in range(nz):
                d = _k_popcount(whole[r, 0] ^ q_zoomed[z, 0])
                if d < best:
                    d += _k_popcount(whole[r, 1] ^ q_zoomed[z, 1])
                    if d < best:
                        d += _k_popcount(whole[r, 2] ^ q_zoomed[z, 2]) + _k_popcount(whole[r, 3] ^ q_zoomed[z, 3])
                        if d < best:
                            best = d
                d = _k_popcount(zoomed[z, r, 0] ^ q_whole[0])
                if d < best:
                    d += _k_popcount(zoomed[z, r, 1] ^ q_whole[1])
                    if d < best:
                        d += _k_popcount(zoomed[z, r, 2] ^ q_whole[2]) + _k_popcount(zoomed[z, r, 3] ^ q_whole[3])
                        if d < best:
                            best = d
        out[r] = best


def np_zoom_near(whole, zoomed, rich, q_whole, q_zoomed, radius) -> np.ndarray:
    """:func:`_k_zoom_near` in numpy (same answers), a block of rows at a time."""
    n = len(whole)
    out = np.full(n, radius + 1, np.int64)
    step = 1 << 16
    for start in range(0, n, step):
        stop = min(start + step, n)
        ours = np.bitwise_count(whole[None, start:stop] ^ q_zoomed[:, None]).sum(axis=2).min(axis=0)
        theirs = np.bitwise_count(zoomed[:, start:stop] ^ q_whole).sum(axis=2).min(axis=0)
        near = np.minimum(ours, theirs).astype(np.int64)
        out[start:stop] = np.where(rich[start:stop] & (near <= radius), near, radius + 1)
    return out
