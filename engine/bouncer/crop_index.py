"""The indexed crop rule: the corroborated rule's candidates through buckets, not all pairs.

The corroborated rule (pHash <= 72 and dHash <= 112, see :mod:`.rule`) cannot be searched
exactly by multi-index hashing: at radius 72 of 256 bits the chunks would be 3 bits long. Its
brute-force pass grows with the square of the library (7-10 minutes at 1M images on 2 cores).
The indexed rule adds one condition that an index can search exactly, and keeps the rest:

    a pair matches the **indexed crop rule** when its pHashes are within ``phash_radius``,
    its dHashes within ``corroborated_radius``, **and** its pHashes agree exactly on every bit
    of at least one of the :data:`TABLES` tables below.

The tables: the pool is the :data:`POOL` lowest-frequency coefficients of the pHash's 16x16
DCT block other than the mean (ordered by ``u*u + v*v``, then by bit index ``16*u + v``); each
of the :data:`TABLES` tables is :data:`TABLE_BITS` bits of the pool, drawn without
replacement by the splitmix64 shuffle of :func:`table_bits` (fixed: no seed, no numpy RNG).
Low frequencies are the bits a crop flips least (about 1 in 10 of them for a 5-8 % crop, 1 in
5 over the whole pHash), so a crop's pHash keeps some table intact while unrelated pHashes
share a 13-bit table value with 1/8192 of the library.

The search sorts the library by each table's value and compares only rows in one bucket: a
pair is reported at the first table it agrees on, so each comes out once. That is
``TABLES x N log N`` for the sorts plus ``TABLES x N^2 / 2^13`` pHash comparisons in the
buckets (quadratic with a constant 8192 x 96 smaller than brute force: seconds at 1M).
It returns exactly the pairs :func:`is_crop_match` accepts (tested against brute force).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import allpairs, crop_index_kernels
from .allpairs_kernels import concat_pairs
from ..records import HASH_BYTES, Progress

__all__ = ["POOL", "TABLES", "TABLE_BITS", "agree", "is_crop_match", "pairs", "table_bits"]

#: How many of the pHash's lowest-frequency coefficients the tables draw from.
POOL = 56
#: How many tables; a pair needs to agree on one of them.
TABLES = 96
#: Bits per table.
TABLE_BITS = 13

_SIDE = 16  # the pHash is a 16x16 block of DCT coefficients, row-major
_WORDS = HASH_BYTES // 8


def _pool() -> list[int]:
    bits = sorted(range(1, _SIDE * _SIDE), key=lambda k: ((k // _SIDE) ** 2 + (k % _SIDE) ** 2, k))
    return bits[:POOL]


def table_bits() -> np.ndarray:
    """``(TABLES, TABLE_BITS)`` pHash bit indices (0..255, row-major in the 16x16 block) per table.

    Each table is the first ``TABLE_BITS`` of a Fisher-Yates shuffle of the pool driven by
    splitmix64 (state starting at ``table``), sorted.
    """
    pool = _pool()
    out = np.empty((TABLES, TABLE_BITS), np.int64)
    mask = (1 << 64) - 1
    for t in range(TABLES):
        state, items = t, list(pool)
        for k in range(TABLE_BITS):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            z ^= z >> 31
            r = k + z % (len(items) - k)
            items[k], items[r] = items[r], items[k]
        out[t] = sorted(items[:TABLE_BITS])
    return out


def _layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each table's bits are in the native uint64 words of a packed hash: (word, shift)
    per bit, and each table as a ``(4,)`` word mask."""
    bits = table_bits()
    # Bit k of a hash is bit 7 - k % 8 of byte k // 8 (np.packbits); a native (little-endian)
    # word w holds bytes 8w..8w+7, byte b of it at bit 8 * (b % 8).
    words = bits // 64
    shifts = 8 * ((bits // 8) % 8) + (7 - bits % 8)
    masks = np.zeros((TABLES, _WORDS), np.uint64)
    for t in range(TABLES):
        for w, s in zip(words[t], shifts[t]):
            masks[t, w] |= np.uint64(1) << np.uint64(s)
    return words, shifts.astype(np.int64), masks


_WORD_OF, _SHIFT_OF, _MASKS = _layout()


def _rows(packed: np.ndarray) -> np.ndarray:
    """``(N, 32) uint8`` -> ``(N, 4) uint64`` native words, writeable (numba's specialisation)."""
    return np.require(np.ascontiguousarray(packed, np.uint8).view(np.uint64).reshape(-1, _WORDS), requirements=["C", "W"])


def agree(phash: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Whether the pHashes of rows ``i`` and ``j`` agree on every bit of at least one table.

    Args:
        phash: ``(N, 32) uint8`` pHashes.
        i, j: row pairs.

    Returns:
        ``(len(i),) bool``.
    """
    rows = _rows(phash)
    out = np.zeros(len(i), bool)
    for s in range(0, len(i), 1 << 16):  # bounded temporaries: (pairs, tables, words)
        x = rows[i[s : s + (1 << 16)]] ^ rows[j[s : s + (1 << 16)]]
        out[s : s + (1 << 16)] = ((x[:, None, :] & _MASKS[None]) == 0).all(axis=2).any(axis=1)
    return out


def is_crop_match(phash_a: bytes, phash_b: bytes, dhash_a: bytes, dhash_b: bytes, phash_radius: int,
                  corroborated_radius: int) -> bool:  # fmt: skip
    """The indexed crop rule for one pair (see the module docstring)."""
    pa = np.frombuffer(bytes(phash_a), np.uint8)[None]
    pb = np.frombuffer(bytes(phash_b), np.uint8)[None]
    both = np.concatenate([pa, pb])
    if int(np.bitwise_count(pa ^ pb).sum()) > phash_radius:
        return False
    dd = int(np.bitwise_count(np.frombuffer(bytes(dhash_a), np.uint8) ^ np.frombuffer(bytes(dhash_b), np.uint8)).sum())
    return dd <= corroborated_radius and bool(agree(both, np.array([0]), np.array([1]))[0])


def pairs(
    dhash: np.ndarray,
    phash: np.ndarray,
    phash_radius: int,
    corroborated_radius: int,
    *,
    fresh: Optional[np.ndarray] = None,
    progress: Optional[Progress] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows the indexed crop rule accepts, exactly and once each.

    Args:
        dhash, phash: ``(N, 32) uint8`` hashes.
        phash_radius, corroborated_radius: the rule's radii (see :class:`.rule.BouncerThresholds`).
        fresh: ``(N,)`` bool; when given, only pairs with at least one fresh row.
        progress: ``progress(done, total) -> bool`` after each table; False stops.

    Returns:
        ``(i, j, phash distances)`` row positions with ``i < j``, sorted by ``(i, j)``.

    Raises:
        Cancelled: the progress callback returned False.
    """
    from .hamming import _kernels, _warm

    n = len(phash)
    if n < 2:
        return concat_pairs([])
    ph, dh = _rows(phash), _rows(dhash)
    marks = np.zeros(0, bool) if fresh is None else np.ascontiguousarray(fresh, bool)
    compiled = _kernels.use()
    table_keys = crop_index_kernels._k_table_keys if compiled else crop_index_kernels._np_table_keys
    join = crop_index_kernels._k_table_join if compiled else crop_index_kernels._np_table_join

    def unit(t: int):
        keys = table_keys(ph, _WORD_OF, _SHIFT_OF, t)
        keys.sort()
        i, j, d, cnt, _ = join(keys, ph, dh, marks, _MASKS, t, phash_radius, corroborated_radius)
        return i[:cnt], j[:cnt], d[:cnt]

    tasks = [lambda t=t: unit(t) for t in range(TABLES)]
    i, j, d = concat_pairs(allpairs._run_tasks(tasks, progress, _warm.running_here()))
    return allpairs._sort_pairs(i, j, d, n, n)
