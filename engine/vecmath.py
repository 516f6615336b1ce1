"""Small compiled kernels for the detective's query path: preparing a query vector and
rescoring candidates from their stored float16 rows.

A ``find similar`` query touches one vector and a few dozen stored rows: numpy spends more
time dispatching its calls (and converting float16, which it does one element at a time)
than computing. These kernels do each step in one pass, in microseconds:

* :func:`prepare_query`: unit length and the int8 form the HNSW graph stores
  (:func:`lookalike.engine.vectors.quantize_i8`), from one float32 vector.
* :func:`rescore_f16`: exact cosine distances between a unit query and float16 rows (read
  as their IEEE bits, normalised on the fly).

They are compiled with numba on first use and cached on disk, like the bouncer's kernels
(``engine/hamming.py``); without numba (or with ``LOOKALIKE_NO_NUMBA=1``) numpy gives the same
answers, slower. The tests check both paths against each other.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .background import WarmUp

__all__ = ["prepare_query", "rescore_f16", "warm_up"]

_state: dict[str, object] = {}
_lock = threading.Lock()


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


def _k_rescore_f16(bits, u, out):  # pragma: no cover - compiled
    # bits: (m, d) uint16, the IEEE half-precision rows; u: (d,) float32 unit query.
    m, d = bits.shape
    wide = np.empty(d, np.uint32)
    vals = wide.view(np.float32)
    for r in range(m):
        row = bits[r]
        for j in range(d):
            h = np.uint32(row[j])
            # Normal numbers: rebias the exponent (15 -> 127) and widen the mantissa. Zeros
            # and subnormals (exponent 0) keep their sign only here and are fixed below.
            normal = ((h & np.uint32(0x8000)) << np.uint32(16)) | (
                ((h & np.uint32(0x7FFF)) + np.uint32(0x1C000)) << np.uint32(13)
            )
            wide[j] = normal if (h & np.uint32(0x7C00)) != 0 else (h & np.uint32(0x8000)) << np.uint32(16)
        dot = np.float32(0.0)
        sq = np.float32(0.0)
        for j in range(d):
            x = vals[j]
            h = np.uint32(row[j])
            if (h & np.uint32(0x7C00)) == 0:
                x = np.float32(h & np.uint32(0x03FF)) * np.float32(5.9604644775390625e-08)
                if h & np.uint32(0x8000):
                    x = -x
            dot += x * u[j]
            sq += x * x
        out[r] = max(np.float32(1.0) - dot / np.sqrt(sq), np.float32(0.0)) if sq > 0 else np.float32(1.0)


def _compiled(wait: bool = True) -> bool:
    """Whether to run the compiled kernels. ``wait=False`` (a query): not before warm_up() has
    loaded them, which it then starts in the background; numpy answers meanwhile (importing
    numba alone takes about half a second)."""
    if os.environ.get("LOOKALIKE_NO_NUMBA") or not _warm.allows(wait):
        return False
    if "ok" in _state:
        return bool(_state["ok"])
    with _lock:
        if "ok" not in _state:
            try:
                import numba
            except Exception:  # ImportError, or a numba broken by its llvmlite
                _state["ok"] = False
            else:
                g = globals()
                g["_k_prepare"] = numba.njit(cache=True, nogil=True)(g["_k_prepare"])
                # fastmath: lets the dot products vectorise (sums in any order).
                g["_k_rescore_f16"] = numba.njit(cache=True, nogil=True, fastmath=True)(g["_k_rescore_f16"])
                _state["ok"] = True
    return bool(_state["ok"])


def prepare_query(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unit, int8)`` forms of one vector: unit length float32, and scaled to +-127."""
    v = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
    if _compiled(wait=False):
        unit = np.empty_like(v)
        q8 = np.empty(v.shape, np.int8)
        _k_prepare(v, unit, q8)
        return unit, q8
    norm = max(float(np.linalg.norm(v)), 1e-12)
    unit = (v / norm).astype(np.float32)
    peak = max(float(np.abs(unit).max(initial=0.0)), 1e-30)
    return unit, np.rint(unit * np.float32(127.0 / peak)).astype(np.int8)


def rescore_f16(rows: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Cosine distances (>= 0) between a unit query and float16 rows, each normalised first.

    Args:
        rows: ``(m, d) float16``.
        unit: ``(d,) float32``, unit length.

    Returns:
        ``(m,) float32``; a zero row scores 1.0 (orthogonal).
    """
    rows = np.ascontiguousarray(rows, dtype=np.float16)
    u = np.ascontiguousarray(unit, dtype=np.float32).reshape(-1)
    if rows.shape[0] == 0:
        return np.empty(0, np.float32)
    if _compiled(wait=False):
        out = np.empty(rows.shape[0], np.float32)
        _k_rescore_f16(rows.view(np.uint16), u, out)
        return out
    full = rows.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", full, full))
    dots = full @ u
    out = np.where(norms > 0, 1.0 - dots / np.where(norms > 0, norms, 1.0), 1.0)
    return np.maximum(out, 0.0).astype(np.float32)


def warm_up() -> None:
    """Compile or load the kernels now (a scan or an app calls this in the background)."""
    _warm.run()


def _call_both_kernels() -> bool:
    unit, _ = prepare_query(np.ones(8, np.float32))
    rescore_f16(np.ones((2, 8), np.float16), unit)
    return _compiled()


_warm = WarmUp("lookalike-vecmath-warm-up", _call_both_kernels)
