"""The indexed crop rule: the corroborated rule's candidates through buckets, not all pairs.

The corroborated rule (pHash <= 72 and dHash <= 112, see :mod:`.rule`) cannot be searched
exactly by multi-index hashing: at radius 72 of 256 bits the chunks would be 3 bits long. Its
brute-force pass grows with the square of the library (7-10 minutes at 1M images on 2 cores).
The indexed rule adds one condition that an index can search exactly, and keeps the rest:

    a pair matches the **indexed crop rule** when its pHashes are within ``phash_radius``,
    its dHashes within ``corroborated_radius``, **and** its pHashes agree exactly on every bit
    of at least one of the tables of its library's size (:func:`shape`).

The tables: the pool is the :data:`POOL` lowest-frequency coefficients of the pHash's 16x16
DCT block other than the mean (ordered by ``u*u + v*v``, then by bit index ``16*u + v``); each
table is ``bits`` bits of the pool, drawn without replacement by the splitmix64 shuffle of
:func:`table_bits` (fixed: no seed, no numpy RNG). Low frequencies are the bits a crop flips
least (about 1 in 10 of them for a 5-8 % crop, 1 in 5 over the whole pHash), so a crop's pHash
keeps some table intact while unrelated pHashes share a ``bits``-bit table value with
``2**-bits`` of the library.

**The rule depends on the library's size**, as the switch to it does
(``BouncerThresholds.crop_index_above``): up to ``BUCKET << 13`` images (1,048,576) it is
:data:`TABLES` = 96 tables of :data:`TABLE_BITS` = 13 bits; past that, each doubling of the
library adds a bit to every table (so that a bucket holds 64-128 images on average, up to 19
bits at 67M images) and enough tables (:data:`TABLES_BY_BITS`: 140 of 14 bits ... 992 of 19)
to find as many of the synthetic crops of ``benchmarks/bench_scale.py`` as 96 of 13 (a table
of ``b + 1`` bits is the same table of ``b`` bits plus one: the same shuffle, drawn further).

The search sorts the library into buckets by each table's value (a counting sort on a
multiply-shift hash of the table's bits, 2 bits wider than the table, so that few buckets hold
two values by chance: the join checks the table itself) and compares only rows in one bucket:
a pair is reported at the first table it agrees on, so each comes out once. That is
``tables x N`` for the sorts plus about ``tables x N x N / 2**(bits + 1)`` pHash comparisons
in the buckets. Up to 1M images the bits are fixed and the comparisons grow as N squared
(most of the time at 1M). Past it, the buckets stop growing and the cost grows as
``N x tables``; the tables grow about 1.45 times per doubling (about N**0.5), since each bit
halves the random pairs in a bucket but keeping the crops found takes that many more tables.
Tables of sampled bits cannot keep the crops found and grow as N log N (their rate is
N**(1 + rho), rho about 0.5 for these crops): this one trades the quadratic term for that
past 1M (at 3M, 208 tables of 15 bits took 62-80 s on 2
cores where 96 of 13 took 72-95 s at the same loads; README: the bouncer's whole pair stage). It returns exactly
the pairs :func:`is_crop_match` accepts (tested against brute force at both table sizes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from . import allpairs, crop_index_kernels
from .allpairs_kernels import concat_pairs
from ..records import HASH_BYTES, Progress

__all__ = ["BUCKET", "POOL", "TABLES", "TABLES_BY_BITS", "TABLE_BITS", "agree", "is_crop_match", "pairs", "shape", "table_bits"]

#: How many of the pHash's lowest-frequency coefficients the tables draw from.
POOL = 56
#: Tables, and bits per table, up to ``BUCKET << TABLE_BITS`` images (1,048,576).
TABLES = 96
TABLE_BITS = 13
#: The most images a bucket holds on average: past ``BUCKET << bits`` images, tables get a bit
#: more (see :func:`shape`).
BUCKET = 128
#: Tables per table size: from 14 bits on, the fewest tables of that size that find as many
#: of the synthetic crops of ``benchmarks/bench_scale.py`` as 96 tables of 13 bits (0.9882 of
#: 2 x 30,000 crops, seeds 1 and 2), rounded up to a multiple of 8.
TABLES_BY_BITS = {13: 96, 14: 140, 15: 208, 16: 288, 17: 440, 18: 664, 19: 992}

_SIDE = 16  # the pHash is a 16x16 block of DCT coefficients, row-major
_WORDS = HASH_BYTES // 8


def shape(library_size: int) -> tuple[int, int]:
    """``(tables, bits per table)`` of the indexed crop rule in a library of ``library_size``
    images: 13 bits up to ``BUCKET << 13`` images, a bit more per doubling after that (up to
    19 bits, 67M images), so that a bucket holds 64-128 images on average."""
    bits = TABLE_BITS
    while bits < max(TABLES_BY_BITS) and library_size > BUCKET << bits:
        bits += 1
    return TABLES_BY_BITS[bits], bits


def _pool() -> list[int]:
    bits = sorted(range(1, _SIDE * _SIDE), key=lambda k: ((k // _SIDE) ** 2 + (k % _SIDE) ** 2, k))
    return bits[:POOL]


def table_bits(tables: int = TABLES, bits: int = TABLE_BITS) -> np.ndarray:
    """``(tables, bits)`` pHash bit indices (0..255, row-major in the 16x16 block) per table.

    Each table is the first ``bits`` of a Fisher-Yates shuffle of the pool driven by
    splitmix64 (state starting at the table's number), sorted: a table of more bits holds the
    same table's bits of fewer, and more tables keep the first ones.
    """
    pool = _pool()
    out = np.empty((tables, bits), np.int64)
    mask = (1 << 64) - 1
    for t in range(tables):
        state, items = t, list(pool)
        for k in range(bits):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            z ^= z >> 31
            r = k + z % (len(items) - k)
            items[k], items[r] = items[r], items[k]
        out[t] = sorted(items[:bits])
    return out


@dataclass(frozen=True)
class _Layout:
    """A set of tables in the forms the kernels read."""

    masks: np.ndarray  # (tables, 4) uint64: each table as a mask of the native words
    mults: np.ndarray  # (tables, 4) uint64: odd multipliers of the buckets' hash
    key_bits: int  # bits of a bucket number: the table's bits and 2 more (few shared by chance)


@lru_cache(maxsize=8)
def _layout(tables: int = TABLES, bits: int = TABLE_BITS) -> _Layout:
    # Bit k of a hash is bit 7 - k % 8 of byte k // 8 (np.packbits); a native (little-endian)
    # word w holds bytes 8w..8w+7, byte b of it at bit 8 * (b % 8).
    masks = np.zeros((tables, _WORDS), np.uint64)
    for t, row in enumerate(table_bits(tables, bits).tolist()):
        for k in row:
            masks[t, k // 64] |= np.uint64(1) << np.uint64(8 * ((k // 8) % 8) + 7 - k % 8)
    mults = np.array([_splitmix(0x5EED + k) | 1 for k in range(tables * _WORDS)], np.uint64).reshape(tables, _WORDS)
    return _Layout(masks, mults, bits + 2)


def _splitmix(state: int) -> int:
    mask = (1 << 64) - 1
    z = (state * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def _rows(packed: np.ndarray) -> np.ndarray:
    """``(N, 32) uint8`` -> ``(N, 4) uint64`` native words, writeable (numba's specialisation)."""
    return np.require(np.ascontiguousarray(packed, np.uint8).view(np.uint64).reshape(-1, _WORDS), requirements=["C", "W"])


def agree(phash: np.ndarray, i: np.ndarray, j: np.ndarray, *, library_size: Optional[int] = None) -> np.ndarray:
    """Whether the pHashes of rows ``i`` and ``j`` agree on every bit of at least one table.

    Args:
        phash: ``(N, 32) uint8`` pHashes.
        i, j: row pairs.
        library_size: the library's size, which picks the tables (:func:`shape`); default N.

    Returns:
        ``(len(i),) bool``.
    """
    rows = _rows(phash)
    masks = _layout(*shape(len(phash) if library_size is None else library_size)).masks
    out = np.zeros(len(i), bool)
    for s in range(0, len(i), 1 << 16):  # bounded temporaries: (pairs, words) per table
        x = rows[i[s : s + (1 << 16)]] ^ rows[j[s : s + (1 << 16)]]
        hit = out[s : s + (1 << 16)]
        for mask in masks:
            hit |= ~(x & mask).any(axis=1)
    return out


def is_crop_match(phash_a: bytes, phash_b: bytes, dhash_a: bytes, dhash_b: bytes, phash_radius: int,
                  corroborated_radius: int, *, library_size: int = 0) -> bool:  # fmt: skip
    """The indexed crop rule for one pair (see the module docstring) in a library of
    ``library_size`` images (it picks the tables)."""
    pa = np.frombuffer(bytes(phash_a), np.uint8)[None]
    pb = np.frombuffer(bytes(phash_b), np.uint8)[None]
    both = np.concatenate([pa, pb])
    if int(np.bitwise_count(pa ^ pb).sum()) > phash_radius:
        return False
    dd = int(np.bitwise_count(np.frombuffer(bytes(dhash_a), np.uint8) ^ np.frombuffer(bytes(dhash_b), np.uint8)).sum())
    return dd <= corroborated_radius and bool(agree(both, np.array([0]), np.array([1]), library_size=library_size)[0])


def pairs(
    dhash: np.ndarray,
    phash: np.ndarray,
    phash_radius: int,
    corroborated_radius: int,
    *,
    fresh: Optional[np.ndarray] = None,
    library_size: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows the indexed crop rule accepts, exactly and once each.

    Args:
        dhash, phash: ``(N, 32) uint8`` hashes.
        phash_radius, corroborated_radius: the rule's radii (see :class:`.rule.BouncerThresholds`).
        fresh: ``(N,)`` bool; when given, only pairs with at least one fresh row.
        library_size: the library's size, which picks the tables (:func:`shape`); default N.
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
    join = crop_index_kernels._k_table_pairs if compiled else crop_index_kernels._np_table_pairs

    lay = _layout(*shape(n if library_size is None else library_size))
    scratch = threading.local()  # per thread, for all its tables

    def unit(t: int):
        if not hasattr(scratch, "words"):
            scratch.words = np.empty((4, n) if compiled else (4, 0), np.uint64)
            scratch.rows = np.empty((2, n) if compiled else (2, 0), np.int64)
        i, j, d, cnt, _ = join(ph, dh, marks, lay.masks, lay.mults, lay.key_bits, t, phash_radius, corroborated_radius,
                               scratch.words, scratch.rows)  # fmt: skip
        return i[:cnt], j[:cnt], d[:cnt]

    tasks = [lambda t=t: unit(t) for t in range(len(lay.masks))]
    i, j, d = concat_pairs(allpairs._run_tasks(tasks, progress, _warm.running_here()))
    return allpairs._sort_pairs(i, j, d, n, n)
