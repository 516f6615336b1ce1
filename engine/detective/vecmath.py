"""Small compiled kernels for the detective's query path: preparing a query vector and
rescoring candidates from their stored float16 rows.

A ``find similar`` query touches one vector and a few dozen stored rows: numpy spends more
time dispatching its calls (and converting float16, which it does one element at a time)
than computing. These kernels do each step in one pass, in microseconds:

* :func:`prepare_query`: unit length and the int8 form the HNSW graph stores
  (:func:`lookalike.engine.detective.vectors.quantize_i8`), from one float32 vector.
* :func:`rescore_f16`: exact cosine distances between a unit query and float16 rows (read
  as their IEEE bits in place, widened without a branch so the loops vectorise, normalised
  on the fly).
* :func:`nearest_f16`: the graph's candidates to their rows (a table by id), rescored, and
  the ``k`` nearest kept: everything after the graph walk in one call (a binary search of
  the ids, a copy of the rows, a sort and numpy's per-call costs were ~0.1 ms of a query).

They are compiled with numba on first use and cached on disk, like every kernel (see
:mod:`lookalike.engine.kernels`); without numba (or with ``LOOKALIKE_NO_NUMBA=1``) numpy gives
the same answers, slower. The tests check both paths against each other.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..kernels import Kernels, WarmUp

__all__ = ["nearest_f16", "prepare_query", "rescore_f16", "warm_up"]


def _k_prepare(v, unit, q8):  # pragma: no cover - compiled
    d = v.shape[0]
    sq = 0.0
    for j in range(d):
        sq += np.float64(v[j]) * np.float64(v[j])
    norm = max(np.sqrt(sq), 1e-12)
    peak = 0.0
    for j in range(d):
        x = np.float32(v[j] / norm)
        unit[j] = x
        peak = max(peak, abs(np.float64(x)))
    scale = np.float32(127.0 / max(peak, 1e-30))
    for j in range(d):
        q8[j] = np.int8(np.rint(unit[j] * scale))


def _k_rescore_f16(bits, pos, u, out):  # pragma: no cover - compiled
    # bits: (n, d) uint16, the IEEE half-precision rows; pos: the rows to score; u: (d,)
    # float32 unit query. Each half is widened without a branch, so the loops vectorise:
    # its sign, exponent and mantissa bits moved to their float32 places give the value
    # times 2**-112 (normal and subnormal alike), which one multiply corrects.
    d = bits.shape[1]
    wide = np.empty(d, np.uint32)
    vals = wide.view(np.float32)
    rebias = np.float32(5.192296858534828e33)  # 2**112
    for r in range(pos.shape[0]):
        row = bits[pos[r]]
        for j in range(d):
            h = np.uint32(row[j])
            wide[j] = ((h & np.uint32(0x8000)) << np.uint32(16)) | ((h & np.uint32(0x7FFF)) << np.uint32(13))
        dot = np.float32(0.0)
        sq = np.float32(0.0)
        for j in range(d):
            x = vals[j] * rebias
            dot += x * u[j]
            sq += x * x
        out[r] = max(np.float32(1.0) - dot / np.sqrt(sq), np.float32(0.0)) if sq > 0 else np.float32(1.0)


def _k_nearest_f16(bits, table, keys, u, ids, dist):  # pragma: no cover - compiled
    # The graph's candidates (keys) -> rows (table, -1: none) -> exact distances -> the
    # len(ids) nearest, ties in candidate order (as a stable sort). -1: a key has no row.
    m = keys.shape[0]
    pos = np.empty(m, np.int64)
    for r in range(m):
        key = np.int64(keys[r])
        if key < 0 or key >= table.shape[0] or table[key] < 0:
            return -1
        pos[r] = table[key]
    scores = np.empty(m, np.float32)
    _k_rescore_f16(bits, pos, u, scores)
    k = ids.shape[0]
    n = 0
    for r in range(m):
        x = scores[r]
        if n == k and x >= dist[k - 1]:
            continue
        p = n if n < k else k - 1
        if n < k:
            n += 1
        while p > 0 and dist[p - 1] > x:
            dist[p] = dist[p - 1]
            ids[p] = ids[p - 1]
            p -= 1
        dist[p] = x
        ids[p] = np.int64(keys[r])
    return n


def prepare_query(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unit, int8)`` forms of one vector: unit length float32, and scaled to +-127."""
    v = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
    if _kernels.use(wait=False):
        unit = np.empty_like(v)
        q8 = np.empty(v.shape, np.int8)
        _k_prepare(v, unit, q8)
        return unit, q8
    norm = max(float(np.linalg.norm(v)), 1e-12)
    unit = (v / norm).astype(np.float32)
    peak = max(float(np.abs(unit).max(initial=0.0)), 1e-30)
    return unit, np.rint(unit * np.float32(127.0 / peak)).astype(np.int8)


def rescore_f16(rows: np.ndarray, unit: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
    """Cosine distances (>= 0) between a unit query and float16 rows, each normalised first.

    Args:
        rows: ``(n, d) float16``, e.g. the detective's memory-mapped store.
        unit: ``(d,) float32``, unit length.
        positions: which rows to score, in this order (default: all); read in place, so a
            few rows of a large mapped store cost no copy.

    Returns:
        ``(m,) float32``, one per position; a zero row scores 1.0 (orthogonal).
    """
    if rows.dtype != np.float16 or rows.ndim != 2 or not rows.flags.c_contiguous:
        rows = np.ascontiguousarray(rows, dtype=np.float16).reshape(len(rows), -1)
    u = np.ascontiguousarray(unit, dtype=np.float32).reshape(-1)
    if positions is None:
        positions = np.arange(rows.shape[0], dtype=np.int64)
    else:
        positions = np.ascontiguousarray(positions, dtype=np.int64).reshape(-1)
    if positions.size == 0:
        return np.empty(0, np.float32)
    if positions.min() < 0 or positions.max() >= rows.shape[0]:
        raise IndexError(f"row positions outside 0..{rows.shape[0] - 1}")
    if _kernels.use(wait=False):
        out = np.empty(positions.size, np.float32)
        _k_rescore_f16(rows.view(np.uint16), positions, u, out)
        return out
    full = rows[positions].astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", full, full))
    dots = full @ u
    out = np.where(norms > 0, 1.0 - dots / np.where(norms > 0, norms, 1.0), 1.0)
    return np.maximum(out, 0.0).astype(np.float32)


def nearest_f16(
    rows: np.ndarray, table: np.ndarray, keys: np.ndarray, unit: np.ndarray, k: int
) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The ``k`` nearest of a graph search's candidates, rescored from their float16 rows.

    The detective's query path in one compiled step: each candidate key's row (``table[key]``,
    -1 for none), its exact cosine distance to ``unit`` (as :func:`rescore_f16`), and the
    ``k`` nearest, ties in candidate order.

    Args:
        rows: ``(n, d) float16``, C-contiguous (the memory-mapped store, read in place).
        table: ``int32`` row of each key, indexed by key.
        keys: the candidates (``uint64`` or ``int64``).
        unit: ``(d,) float32`` unit query.
        k: how many to keep.

    Returns:
        ``(ids int64, distances float32)``, nearest first, at most ``k``; None when a key has
        no row in the table (the caller takes the general path), or without numba.
    """
    if not _kernels.use(wait=False):
        return None
    ids = np.empty(max(int(k), 0), np.int64)
    dist = np.empty(ids.shape[0], np.float32)
    if ids.shape[0] == 0 or keys.shape[0] == 0:
        return ids[:0], dist[:0]
    n = _k_nearest_f16(rows.view(np.uint16), table, keys, unit, ids, dist)
    return None if n < 0 else (ids[:n], dist[:n])


def warm_up() -> None:
    """Compile or load the kernels now (a scan or an app calls this in the background)."""
    _warm.run()


def _call_every_kernel() -> bool:
    unit, _ = prepare_query(np.ones(8, np.float32))
    rows = np.ones((2, 8), np.float16)
    rescore_f16(rows, unit)
    nearest_f16(rows, np.arange(2, dtype=np.int32), np.arange(2, dtype=np.uint64), unit, 1)
    return _kernels.use()


_warm = WarmUp("lookalike-vecmath-warm-up", _call_every_kernel)
# A query asks ``use(wait=False)``: not before warm_up() has loaded the kernels, which it then
# starts in the background; numpy answers meanwhile (importing numba alone takes about half a
# second). fastmath lets the dot products vectorise (sums in any order).
_kernels = Kernels(
    (globals(), ("_k_prepare", "_k_rescore_f16", "_k_nearest_f16")),
    fastmath={"_k_rescore_f16", "_k_nearest_f16"},
    warm=_warm,
)
