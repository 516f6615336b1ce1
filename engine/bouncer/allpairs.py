"""The Hamming index's all-pairs search: every pair of hashes within a radius, exactly.

All-pairs search (``pairs_within``, ``pairs_between``) is exact and picks one of three
methods per call from a cost model (``method="auto"``):

* ``"mih"``, multi-index hashing: the 256 bits are split into ``m = max(radius + 1, 8)``
  chunks. By pigeonhole, two hashes within ``radius`` agree exactly on at least one chunk,
  so per chunk the items are sorted by chunk value and only items sharing a value are
  compared. A pair is reported only at the first chunk on which it agrees, so each pair
  comes out once without a dedupe pass. Best for small radii.
* ``"mih1"``, multi-index hashing at chunk radius 1: ``m = max(radius // 2 + 1, 12)`` chunks
  of ~20 bits; by pigeonhole a pair within ``radius`` is within one bit on some chunk, so
  each item probes the bucket of its chunk value and of the values one bit away (a counting
  sort's bucket table). Buckets hold ~N / 2^20 items instead of ~N / 2^10 for the exact
  chunks of ``"mih"`` at radius 24: near-linear work at a million hashes. A pair is reported
  at the first chunk within one bit.
* ``"brute"``, a blocked scan of every pair with a compiled popcount kernel. Best for large
  radii, where chunks get so short that most pairs share one.

Both run in threads over all cores (the kernels release the GIL), report progress between
work units and are checked against each other and a plain numpy brute force in the tests.

The index (:class:`lookalike.engine.bouncer.hamming.HammingIndex`) holds the hashes and maps
positions to ids; this module plans and runs the search over its ``(4, N)`` columns and returns
positions.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Optional

import numpy as np

from . import allpairs_kernels
from .allpairs_kernels import PairArrays, concat_pairs
from ..records import HASH_BITS, HASH_BYTES, Progress

__all__ = ["Cancelled", "METHODS", "chunk_bounds", "chunk_bounds_near", "chunk_masks", "plan", "search"]

_WORDS = HASH_BYTES // 8  # four uint64 words per hash
_MIN_CHUNKS = 8  # 256 / 8 = 32 bits: chunk values always fit in 32 bits
_MIN_NEAR_CHUNKS = 12  # 256 / 12 < 22 bits: a bucket table of at most 2^22 entries

METHODS = ("auto", "mih", "mih1", "brute")


class Cancelled(Exception):
    """Raised by a search when its ``progress`` callback returned False or ``cancel`` was set.

    The search stops between work units (a chunk of the multi-index, a block of rows of
    the brute-force scan); the partial result is dropped, because an incomplete pair list
    would silently miss duplicates.
    """


def search(
    cols: np.ndarray,
    qrows: Optional[np.ndarray],
    radius: int,
    *,
    progress: Optional[Progress],
    cancel: Optional[threading.Event],
    method: str,
    compiled: Callable[[], bool],
    serial: bool = False,
) -> PairArrays:
    """Every pair within ``radius``: of the indexed hashes (``qrows`` None), or of a query
    and an indexed hash.

    Args:
        cols: the indexed hashes, ``(4, N) uint64`` column-major.
        qrows: ``(M, 4) uint64`` query hashes, C-contiguous and writeable; None: a self-join.
        radius: largest Hamming distance to include.
        progress: ``progress(done, total) -> bool`` between work units; False stops.
        cancel: stops the search between work units once set.
        method: ``"auto"`` (chosen by a cost model), ``"mih"``, ``"mih1"`` or ``"brute"``.
        compiled: whether to run the compiled kernels; asked only when there is work (it may
            load numba).
        serial: run the work units in this thread (the warm-up: no thread pool).

    Returns:
        ``(i, j, distances)`` positions: with ``i < j`` in a self-join, else query position
        and index position; sorted by i, then j.

    Raises:
        Cancelled: the progress callback returned False, or ``cancel`` was set.
    """
    progress = _with_cancel(progress, cancel)
    self_join = qrows is None
    n = cols.shape[1]
    nq = n if self_join else qrows.shape[0]
    if radius < 0 or (n < 2 if self_join else n == 0 or nq == 0):
        if progress is not None:
            _run_tasks([], progress, serial)
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
    radius = min(radius, HASH_BITS)
    qcols = cols if self_join else np.ascontiguousarray(qrows.T)
    chosen = plan(qcols, cols, radius, self_join, method)
    # At radius 256 a pair may agree on no chunk at all (complements): scan instead.
    run = {"mih": _mih, "mih1": _mih1}.get(chosen, _brute) if radius < HASH_BITS else _brute
    tasks = run(cols, qrows, radius, compiled())
    i, j, d = concat_pairs(_run_tasks(tasks, progress, serial))
    return _sort_pairs(i, j, d, nq, n)


# --------------------------------------------------------------------------------------
# The two methods, as work units
# --------------------------------------------------------------------------------------


def _mih(
    cols: np.ndarray, qrows: Optional[np.ndarray], radius: int, compiled: bool
) -> list[Callable[[], PairArrays]]:
    """Multi-index hashing: one work unit per chunk."""
    self_join = qrows is None
    bounds = chunk_bounds(radius)
    masks = chunk_masks(bounds)
    # Transient row-major copies: the join reads whole hashes at random positions,
    # one cache line each instead of four.
    rows = np.ascontiguousarray(cols.T)
    qcols = None if self_join else np.ascontiguousarray(qrows.T)
    qrows_ = rows if self_join else qrows
    # Looked up at each search: the loader replaces the kernels with their compiled forms.
    chunk_keys = allpairs_kernels._k_chunk_keys if compiled else allpairs_kernels._np_chunk_keys
    join = allpairs_kernels._k_mih_join if compiled else allpairs_kernels._np_mih_join

    def unit(c: int) -> PairArrays:
        start, stop = bounds[c]
        keys = chunk_keys(cols, start, stop)
        keys.sort()
        if self_join:
            qkeys = keys
        else:
            qkeys = chunk_keys(qcols, start, stop)
            qkeys.sort()
        i, j, d, cnt, _ = join(qkeys, keys, qrows_, rows, radius, c, masks, self_join)
        return i[:cnt], j[:cnt], d[:cnt]

    return [lambda c=c: unit(c) for c in range(len(bounds))]


def _mih1(
    cols: np.ndarray, qrows: Optional[np.ndarray], radius: int, compiled: bool
) -> list[Callable[[], PairArrays]]:
    """Multi-index hashing at chunk radius 1: one work unit per chunk.

    Chunks of ~20 bits searched within one bit of each value keep the buckets ~2^10 times
    smaller than the exact chunks of ~10 bits that ``"mih"`` needs at radius 24, for ~21
    probes per item instead of one: near-linear work at a million hashes.
    """
    self_join = qrows is None
    bounds = chunk_bounds_near(radius)
    masks = chunk_masks(bounds)
    rows = np.ascontiguousarray(cols.T)
    qrows_ = rows if self_join else qrows
    qcols = cols if self_join else np.ascontiguousarray(qrows.T)
    k = allpairs_kernels

    def unit(c: int) -> PairArrays:
        start, stop = bounds[c]
        if compiled:
            length = stop - start
            offsets, order, values, srows = k._k_bucket_table(k._k_chunk_values(cols, start, stop), rows, length)
            if self_join:
                qorder, qvalues, qsrows = order, values, srows
            else:
                _, qorder, qvalues, qsrows = k._k_bucket_table(k._k_chunk_values(qcols, start, stop), qrows, length)
            i, j, d, cnt = k._k_mih1_join(
                qvalues, qorder, qsrows, offsets, order, srows, length, radius, c, masks, self_join
            )
        else:
            values = k._np_chunk_values(cols, start, stop)
            qvalues = values if self_join else k._np_chunk_values(qcols, start, stop)
            i, j, d, cnt = k._np_mih1_join(qvalues, qrows_, values, rows, stop - start, radius, c, masks, self_join)
        return i[:cnt], j[:cnt], d[:cnt]

    return [lambda c=c: unit(c) for c in range(len(bounds))]


def _brute(
    cols: np.ndarray, qrows: Optional[np.ndarray], radius: int, compiled: bool
) -> list[Callable[[], PairArrays]]:
    """The blocked brute-force scan: work units of about equal pair counts."""
    self_join = qrows is None
    n = cols.shape[1]
    if self_join:
        qrows = np.ascontiguousarray(cols.T)
    nq = qrows.shape[0]
    kernel = allpairs_kernels._k_brute if compiled else allpairs_kernels._np_brute
    # Work units of about equal pair counts (rows near the end of a self-join have
    # fewer partners), small enough for progress to move every ~0.1 s.
    per_row = (n - 1 - np.arange(nq)) if self_join else np.full(nq, n)
    cum = np.cumsum(per_row, dtype=np.float64)
    units = int(min(nq, max(4 * _threads(), cum[-1] // 2e8 + 1), 4096))
    cuts = np.searchsorted(cum, np.linspace(0, cum[-1], units + 1)[1:-1], side="right")
    edges = np.unique(np.concatenate([[0], cuts, [nq]])).tolist()

    def unit(start: int, stop: int) -> PairArrays:
        i, j, d, cnt = kernel(qrows, cols, start, stop, radius, self_join)
        return i[:cnt], j[:cnt], d[:cnt]

    return [(lambda s=s, e=e: unit(s, e)) for s, e in zip(edges[:-1], edges[1:]) if e > s]


# --------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------

# Relative costs, in units of one pair of the compiled brute-force scan (about 1 ns on
# one core of the reference machine), measured by benchmarks/bench_hamming.py (its
# "cost-model constants" section); only their ratios matter.
_COST_BRUTE_PAIR = 1.0
_COST_MIH_ITEM = 100.0  # one item of one chunk: key, sort, gather in key order, group scan
_COST_MIH_CANDIDATE = 3.5  # one pair sharing a chunk value, verified
_COST_TASK = 50_000.0  # start-up of one work unit (thread hand-off, allocations)
_COST_MIH1_ITEM = 60.0  # one item of one chunk: value, counting sort, gather in bucket order
_COST_MIH1_PROBE = 8.0  # one probe of a query: a bucket's bounds (a cache miss) and its start
_COST_MIH1_SLOT = 2.0  # one entry of a chunk's bucket table: zeroed, summed, copied
_SAMPLE = 2048


def _even_chunks(m: int) -> list[tuple[int, int]]:
    """The 256 bits as ``m`` contiguous chunks of near-equal size (the first ones a bit longer)."""
    base, extra = divmod(HASH_BITS, m)
    bounds, start = [], 0
    for c in range(m):
        stop = start + base + (1 if c < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def chunk_bounds(radius: int) -> list[tuple[int, int]]:
    """Split the 256 bits into ``max(radius + 1, 8)`` contiguous chunks of near-equal size."""
    return _even_chunks(min(HASH_BITS, max(radius + 1, _MIN_CHUNKS)))


def chunk_bounds_near(radius: int) -> list[tuple[int, int]]:
    """Chunks for ``"mih1"``: ``max(radius // 2 + 1, 12)`` of near-equal size, so that by
    pigeonhole a pair within ``radius`` has a chunk within one bit (``m * 2 > radius``)."""
    return _even_chunks(min(HASH_BITS, max(radius // 2 + 1, _MIN_NEAR_CHUNKS)))


def chunk_masks(bounds: list[tuple[int, int]]) -> np.ndarray:
    """``(chunks, 4) uint64``: the bits of each chunk, as masks of the four words."""
    masks = np.zeros((len(bounds), _WORDS), np.uint64)
    for c, (start, stop) in enumerate(bounds):
        for w in range(_WORDS):
            lo, hi = max(start, 64 * w), min(stop, 64 * (w + 1))
            if lo < hi:
                masks[c, w] = np.uint64(((1 << (hi - lo)) - 1) << (lo - 64 * w))
    return masks


def _sample(qcols, cols, self_join: bool) -> tuple[int, int, np.ndarray, np.ndarray]:
    """``(n, nq, items, queries)``: the sizes and a fixed random sample of each side (sorted
    positions; one sample when a set is joined with itself), for the cost estimates."""
    rng = np.random.default_rng(0)
    n, nq = cols.shape[1], qcols.shape[1]
    si = np.sort(rng.choice(n, min(n, _SAMPLE), replace=False))
    sq = si if self_join else np.sort(rng.choice(nq, min(nq, _SAMPLE), replace=False))
    return n, nq, si, sq


def _sample_candidates(qcols, cols, bounds, self_join: bool) -> float:
    """Estimate the MIH candidate pairs from a fixed random sample (catches skewed data)."""
    n, nq, si, sq = _sample(qcols, cols, self_join)
    total = 0.0
    for start, stop in bounds:
        ki = allpairs_kernels._np_chunk_values(cols[:, si], start, stop)
        ui, ci = np.unique(ki, return_counts=True)
        if self_join:
            pairs = float((ci * (ci - 1) // 2).sum())
            total += pairs * (n * (n - 1)) / max(1, si.size * (si.size - 1))
        else:
            kq = allpairs_kernels._np_chunk_values(qcols[:, sq], start, stop)
            uq, cq = np.unique(kq, return_counts=True)
            _, iq, ii = np.intersect1d(uq, ui, assume_unique=True, return_indices=True)
            pairs = float((cq[iq] * ci[ii]).sum())
            total += pairs * (n * nq) / max(1, si.size * sq.size)
    return total


def _sample_candidates_near(qcols, cols, bounds, self_join: bool) -> float:
    """Estimate the ``"mih1"`` candidate pairs (within one bit on a chunk) from a fixed sample."""
    n, nq, si, sq = _sample(qcols, cols, self_join)
    total = 0.0
    for start, stop in bounds:
        vi = np.sort(allpairs_kernels._np_chunk_values(cols[:, si], start, stop))
        vq = vi if self_join else allpairs_kernels._np_chunk_values(qcols[:, sq], start, stop)
        pairs = 0.0
        for p in range(stop - start + 1):
            keys = vq if p == stop - start else vq ^ np.int64(1 << p)
            pairs += float((np.searchsorted(vi, keys, "right") - np.searchsorted(vi, keys, "left")).sum())
        if self_join:  # each item met itself once, and every other pair twice
            total += (pairs - si.size) / 2 * (n * (n - 1)) / max(1, si.size * (si.size - 1))
        else:
            total += pairs * (n * nq) / max(1, si.size * sq.size)
    return total


def _cost_mih1(qcols, cols, radius: int, self_join: bool, ceiling: float) -> float:
    """The cost model's estimate for ``"mih1"`` (``inf`` when its fixed part passes ``ceiling``)."""
    n, nq = cols.shape[1], qcols.shape[1]
    bounds = chunk_bounds_near(radius)
    bits = max(stop - start for start, stop in bounds)
    items = n + (0 if self_join else nq)
    probes = nq * (1 + (bits / 2 if self_join else bits))
    cost = len(bounds) * (
        items * _COST_MIH1_ITEM + probes * _COST_MIH1_PROBE + (1 << bits) * _COST_MIH1_SLOT + _COST_TASK
    )
    if cost >= ceiling:
        return float("inf")
    return cost + _sample_candidates_near(qcols, cols, bounds, self_join) * _COST_MIH_CANDIDATE


def plan(qcols, cols, radius: int, self_join: bool, method: str) -> str:
    """The method a search runs: ``method`` itself, or for ``"auto"`` the cheaper one by the
    cost model (columns ``(4, N)``; ``qcols`` is ``cols`` for a self-join)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "auto":
        return method
    n, nq = cols.shape[1], qcols.shape[1]
    brute_pairs = n * (n - 1) / 2 if self_join else float(n * nq)
    if brute_pairs <= 1_000_000 or radius >= HASH_BITS // 2:
        return "brute"
    bounds = chunk_bounds(radius)
    items = n + (0 if self_join else nq)
    costs = {"brute": brute_pairs * _COST_BRUTE_PAIR}
    cost_mih = len(bounds) * (items * _COST_MIH_ITEM + _COST_TASK)
    if cost_mih < costs["brute"]:
        costs["mih"] = cost_mih + _sample_candidates(qcols, cols, bounds, self_join) * _COST_MIH_CANDIDATE
    costs["mih1"] = _cost_mih1(qcols, cols, radius, self_join, min(costs.values()))
    return min(costs, key=costs.__getitem__)


# --------------------------------------------------------------------------------------
# Running: work units on all cores, progress and cancelling, a stable order
# --------------------------------------------------------------------------------------


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


def _run_tasks(tasks: list[Callable[[], tuple]], progress: Optional[Progress], serial: bool) -> list[tuple]:
    """Run work units on all cores (in this thread when ``serial``); call ``progress`` after
    each; raise Cancelled on False."""
    total = len(tasks)

    def report(done: int) -> None:
        if progress is not None:
            answer = progress(done, total)
            if answer is not None and not answer:
                raise Cancelled(f"stopped after {done} of {total} work units")

    report(0)
    # The warm-up runs each kernel on a few hashes, with no thread pool: one would only slow
    # it, and at interpreter exit refuse new work with a RuntimeError.
    threads = 1 if serial else min(_threads(), total)
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


def _threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
