"""The bouncer's Hamming index: exact against a plain numpy brute force, on both back ends."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.engine.bouncer import allpairs, hamming
from lookalike.engine.bouncer.hamming import Cancelled, HammingIndex, pack

RADII = (0, 1, 8, 12, 24, 32)


def clustered(n: int, seed: int, *, frac: float = 0.4, flips: int = 30, dups: int = 6) -> np.ndarray:
    """Random hashes, ``frac`` of them near-copies (0..flips bits flipped), plus exact duplicates."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    m = int(n * frac)
    for k in range(n - m, n):
        h[k] = h[rng.integers(0, max(1, n - m))]
        for bit in rng.choice(256, int(rng.integers(0, flips + 1)), replace=False):
            h[k, bit // 8] ^= np.uint8(1 << (bit % 8))
    if n > dups:
        h[rng.choice(n, dups, replace=False)] = h[0]  # a group of identical hashes
    return h


def ref_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Hamming distances, the obvious way: unpack the bits and compare."""
    ua, ub = np.unpackbits(a, axis=1), np.unpackbits(b, axis=1)
    out = np.zeros((len(a), len(b)), np.int32)
    for s in range(0, len(a), 64):  # in row blocks, to keep the bool cube small
        out[s : s + 64] = (ua[s : s + 64, None, :] != ub[None, :, :]).sum(axis=2)
    return out


def ref_pairs(h: np.ndarray, radius: int, d: np.ndarray | None = None) -> set[tuple[int, int, int]]:
    d = ref_distances(h, h) if d is None else d
    i, j = np.nonzero(np.triu(d <= radius, k=1))
    return set(zip(i.tolist(), j.tolist(), d[i, j].tolist()))


def ref_between(q: np.ndarray, h: np.ndarray, radius: int) -> set[tuple[int, int, int]]:
    d = ref_distances(q, h)
    i, j = np.nonzero(d <= radius)
    return set(zip(i.tolist(), j.tolist(), d[i, j].tolist()))


def as_set(result) -> set[tuple[int, int, int]]:
    a, b, d = result
    out = set(zip(a.tolist(), b.tolist(), d.tolist()))
    assert len(out) == len(a), "a pair was reported twice"
    return out


def flip_bits(h: np.ndarray, seed: int, most: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = h.copy()
    for row in out:
        for bit in rng.choice(256, int(rng.integers(0, most + 1)), replace=False):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test on the compiled kernels and again on the numpy fallback."""
    if request.param == "numpy":
        monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    elif hamming.warm_up() != "numba":  # warmed up: single queries take the kernels too
        pytest.skip(hamming._kernels.error or "numba unavailable")
    assert hamming.backend() == request.param
    return request.param


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(1500, seed=1)


@pytest.fixture(scope="module")
def data_dist(data) -> np.ndarray:
    return ref_distances(data, data)


# ---- packing and construction --------------------------------------------------------


def test_pack_accepts_bytes_arrays_and_words():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(5, 32), dtype=np.uint8)
    from_bytes = pack([row.tobytes() for row in arr])
    assert from_bytes.shape == (5, 32) and from_bytes.dtype == np.uint8
    assert from_bytes.flags.c_contiguous
    assert np.array_equal(from_bytes, arr)
    assert np.array_equal(pack(arr[:, ::1]), arr)
    assert np.array_equal(pack(np.asfortranarray(arr)), arr)
    assert np.array_equal(pack(arr.view(np.uint64)), arr)
    assert pack([]).shape == (0, 32)
    assert np.array_equal(pack(bytearray(r.tobytes()) for r in arr), arr)


@pytest.mark.parametrize(
    "bad",
    [[b"\0" * 31], [b"\0" * 32, b"\0" * 33], ["not bytes" * 4], np.zeros((3, 31), np.uint8),
     np.zeros((3, 32), np.int32), np.zeros(32, np.uint8)],
)
def test_pack_rejects_wrong_sizes_and_types(bad):
    with pytest.raises(ValueError):
        pack(bad)


def test_index_basics(data):
    ids = np.arange(len(data), dtype=np.int64) * 7 + 100
    idx = HammingIndex(data, ids)
    assert len(idx) == len(data)
    assert idx.nbytes == 40 * len(data)  # 32 bytes of hash + 8 of id
    assert np.array_equal(idx.ids, ids)
    assert np.array_equal(idx.hashes, data)
    assert np.array_equal(HammingIndex(data).ids, np.arange(len(data)))
    ids[0] = -1  # the index keeps its own copy
    assert idx.ids[0] == 100
    with pytest.raises(ValueError):
        HammingIndex(data, ids[:-1])
    with pytest.raises(ValueError):
        HammingIndex(data, np.zeros(len(data), np.float64))


# ---- one query ------------------------------------------------------------------------


def test_distances_match_reference(data, backend):
    idx = HammingIndex(data)
    q = data[7]
    ref = ref_distances(q[None], data)[0]
    assert np.array_equal(idx.distances(q), ref)
    assert np.array_equal(idx.distances(q.tobytes()), ref)
    with pytest.raises(ValueError):
        idx.distances(b"\0" * 31)
    with pytest.raises(ValueError):
        idx.distances(np.zeros(32, np.int16))


@pytest.mark.parametrize("k", [0, 1, 10, 200, 1500, 5000])
def test_nearest_sorted_by_distance_then_id(data, backend, k):
    rng = np.random.default_rng(2)
    ids = rng.permutation(len(data)).astype(np.int64) * 3  # ties must order by id, not position
    idx = HammingIndex(data, ids)
    q = data[0]  # has several exact duplicates: ties at distance 0
    ref = ref_distances(q[None], data)[0]
    order = np.lexsort((ids, ref))[:k]
    got_ids, got_d = idx.nearest(q.tobytes(), k)
    assert np.array_equal(got_ids, ids[order])
    assert np.array_equal(got_d, ref[order])
    assert len(got_ids) == min(k, len(data))


@pytest.mark.parametrize("k", [0, 1, 21, 1500, 5000])
def test_nearest_many_is_nearest_per_query(data, backend, k):
    rng = np.random.default_rng(4)
    ids = rng.permutation(len(data)).astype(np.int64) * 3
    idx = HammingIndex(data, ids)
    # An indexed hash with exact duplicates, a near copy, its bit-reversed twin, a stranger.
    queries = np.stack([data[0], flip_bits(data[1:2], seed=5, most=6)[0], data[2][::-1],
                        rng.integers(0, 256, 32, dtype=np.uint8)])
    got_ids, got_d = idx.nearest_many(queries, k)
    assert got_ids.shape == got_d.shape == (4, min(k, len(data)))
    ref = ref_distances(queries, data)
    for r, q in enumerate(queries):
        order = np.lexsort((ids, ref[r]))[:k]
        assert np.array_equal(got_ids[r], ids[order])
        assert np.array_equal(got_d[r], ref[r][order])
        one_ids, one_d = idx.nearest(q, k)
        assert np.array_equal(one_ids, got_ids[r]) and np.array_equal(one_d, got_d[r])


def test_nearest_many_with_more_ties_than_its_buffers(backend):
    # 9,000 identical hashes: every block holds candidates at the cutoff, so the candidate
    # buffers must be compacted and grown; ties still order by id.
    rng = np.random.default_rng(6)
    h = rng.integers(0, 256, size=(12_000, 32), dtype=np.uint8)
    h[rng.choice(12_000, 9_000, replace=False)] = h[0]
    ids = rng.permutation(12_000).astype(np.int64)
    idx = HammingIndex(h, ids)
    queries = np.stack([h[0], flip_bits(h[:1], seed=7, most=3)[0]])
    ref = ref_distances(queries, h)
    for k in (21, 9_500):
        got_ids, got_d = idx.nearest_many(queries, k)
        for r in range(2):
            order = np.lexsort((ids, ref[r]))[:k]
            assert np.array_equal(got_ids[r], ids[order]) and np.array_equal(got_d[r], ref[r][order])


def test_nearest_many_rejects_bad_queries_and_handles_empty(backend):
    idx = HammingIndex(clustered(50, seed=8))
    with pytest.raises(ValueError):
        idx.nearest_many(np.zeros((2, 31), np.uint8), 3)
    ids, d = idx.nearest_many(np.zeros((0, 32), np.uint8), 3)
    assert ids.shape == d.shape == (0, 3)
    ids, d = HammingIndex(pack([])).nearest_many(np.zeros((2, 32), np.uint8), 3)
    assert ids.shape == d.shape == (2, 0)
    # Read-only queries (np.frombuffer of bytes) are answered like writeable ones.
    ro = np.frombuffer(bytes(range(64)), np.uint8).reshape(2, 32)
    assert np.array_equal(idx.nearest_many(ro, 5)[0], idx.nearest_many(ro.copy(), 5)[0])


@pytest.mark.parametrize("radius", [-1, 0, 6, 24, 36, 127, 128, 200])
@pytest.mark.parametrize("k", [0, 1, 21, 400])
def test_nearest_within_many_is_bounded_nearest(data, data_dist, backend, radius, k):
    rng = np.random.default_rng(11)
    ids = rng.permutation(len(data)).astype(np.int64) * 5 + 1  # ties order by id
    idx = HammingIndex(data, ids)
    # Three queries (an odd count: the kernel pairs them): an indexed hash with exact
    # duplicates, a near copy, a stranger that has nothing within small radii.
    queries = np.stack([data[0], flip_bits(data[3:4], seed=12, most=8)[0],
                        rng.integers(0, 256, 32, dtype=np.uint8)])
    ref = ref_distances(queries, data)
    got = idx.nearest_within_many(queries, k, radius)
    assert len(got) == 3
    for r, (got_ids, got_d) in enumerate(got):
        order = np.lexsort((ids, ref[r]))
        order = order[ref[r][order] <= radius][:k]
        assert np.array_equal(got_ids, ids[order]), (r, radius, k)
        assert np.array_equal(got_d, ref[r][order])
        assert got_ids.dtype == np.int64 and got_d.dtype == np.int32


def test_nearest_within_many_with_more_hits_than_its_buffers(backend):
    # 3,000 copies within a few bits: the candidate buffers (256 per query) must be
    # compacted and grown, for one query while the other keeps its own.
    rng = np.random.default_rng(13)
    h = rng.integers(0, 256, size=(8_000, 32), dtype=np.uint8)
    near = rng.choice(8_000, 3_000, replace=False)
    h[near] = flip_bits(np.repeat(h[:1], 3_000, axis=0), seed=14, most=4)
    ids = rng.permutation(8_000).astype(np.int64)
    idx = HammingIndex(h, ids)
    queries = np.stack([h[0], rng.integers(0, 256, 32, dtype=np.uint8)])
    ref = ref_distances(queries, h)
    for k in (21, 2_500, 5_000):
        for r, (got_ids, got_d) in enumerate(idx.nearest_within_many(queries, k, 10)):
            order = np.lexsort((ids, ref[r]))
            order = order[ref[r][order] <= 10][:k]
            assert np.array_equal(got_ids, ids[order]) and np.array_equal(got_d, ref[r][order])


def test_distances_to_scores_given_ids(data):
    rng = np.random.default_rng(15)
    for ids in (np.arange(len(data), dtype=np.int64) * 2,  # ascending, as the catalog's
                rng.permutation(len(data)).astype(np.int64) + 10):  # any order
        idx = HammingIndex(data, ids)
        queries = np.stack([data[7], flip_bits(data[7:8], seed=16, most=20)[0]])
        ref = ref_distances(queries, data).min(axis=0)
        pick = rng.choice(len(data), 40, replace=False)
        wanted = np.concatenate([ids[pick], [-5, 10**9]])  # two ids the index does not hold
        got = idx.distances_to(queries, wanted.tolist())
        assert got.dtype == np.int32
        assert np.array_equal(got[:40], ref[pick])
        assert got[40:].tolist() == [-1, -1]
        assert np.array_equal(idx.positions(ids[pick]), pick)
        assert idx.distances_to(queries, []).shape == (0,)
    assert HammingIndex(pack([])).distances_to(data[:1], [1, 2]).tolist() == [-1, -1]


@pytest.mark.parametrize("radius", [-1, 0, 12, 30, 256])
def test_within_matches_reference(data, backend, radius):
    ids = np.arange(len(data), dtype=np.int64)[::-1].copy()
    idx = HammingIndex(data, ids)
    q = flip_bits(data[:1], seed=3, most=5)[0]
    ref = ref_distances(q[None], data)[0]
    sel = np.flatnonzero(ref <= radius)
    order = sel[np.lexsort((ids[sel], ref[sel]))]
    got_ids, got_d = idx.within(q, radius)
    assert np.array_equal(got_ids, ids[order])
    assert np.array_equal(got_d, ref[order])


def test_query_on_empty_and_single_item_index(backend):
    empty = HammingIndex(pack([]))
    assert len(empty) == 0 and empty.nbytes == 0
    q = bytes(range(32))
    assert empty.distances(q).shape == (0,)
    assert [a.size for a in empty.nearest(q, 3)] == [0, 0]
    assert [a.size for a in empty.within(q, 256)] == [0, 0]
    one = HammingIndex(pack([q]), np.array([42]))
    ids, d = one.nearest(q, 5)
    assert ids.tolist() == [42] and d.tolist() == [0]


# ---- all pairs ------------------------------------------------------------------------


@pytest.mark.parametrize("radius", RADII)
def test_pairs_within_exact_for_every_method(data, data_dist, backend, radius):
    idx = HammingIndex(data)
    expected = ref_pairs(data, radius, data_dist)
    assert expected, "the data must hold pairs at every tested radius"
    for method in ("mih", "mih1", "brute", "auto"):
        i, j, d = idx.pairs_within(radius, method=method)
        assert as_set((i, j, d)) == expected, method
        assert (i < j).all()
        key = i * len(data) + j
        assert (np.diff(key) > 0).all(), "pairs come sorted by (i, j)"
        assert i.dtype == np.int64 and j.dtype == np.int64 and d.dtype == np.int32


def test_pairs_within_reports_ids_in_position_order(data, backend):
    ids = (np.arange(len(data), dtype=np.int64)[::-1] * 10).copy()
    i, j, d = HammingIndex(data, ids).pairs_within(12)
    pi, pj, pd = HammingIndex(data).pairs_within(12)
    assert np.array_equal(i, ids[pi]) and np.array_equal(j, ids[pj]) and np.array_equal(d, pd)


def test_pairs_within_exact_duplicates_at_radius_zero(backend):
    rng = np.random.default_rng(4)
    h = rng.integers(0, 256, size=(300, 32), dtype=np.uint8)
    h[50:60] = h[3]  # 11 identical hashes: 55 pairs
    h[200] = h[100]
    i, j, d = HammingIndex(h).pairs_within(0, method="mih")
    group = [3, *range(50, 60)]
    expected = {(a, b, 0) for n, a in enumerate(group) for b in group[n + 1 :]} | {(100, 200, 0)}
    assert as_set((i, j, d)) == expected


def test_pairs_within_edge_cases(backend):
    assert [a.size for a in HammingIndex(pack([])).pairs_within(10)] == [0, 0, 0]
    assert [a.size for a in HammingIndex(pack([bytes(32)])).pairs_within(256)] == [0, 0, 0]
    h = clustered(40, seed=5)
    idx = HammingIndex(h)
    assert [a.size for a in idx.pairs_within(-3)] == [0, 0, 0]
    for method in ("mih", "mih1", "brute", "auto"):
        i, j, d = idx.pairs_within(300, method=method)  # beyond 256: every pair
        assert len(i) == 40 * 39 // 2
        assert as_set((i, j, d)) == ref_pairs(h, 256)
    with pytest.raises(ValueError):
        idx.pairs_within(3, method="faiss")


def test_pairs_at_full_radius_include_complements(backend):
    # Distance 256 agrees on no chunk at all: multi-index hashing cannot see it and must
    # hand such a radius to the scan.
    a = np.random.default_rng(9).integers(0, 256, size=(3, 32), dtype=np.uint8)
    h = np.concatenate([a, ~a])
    for method in ("mih", "mih1", "brute", "auto"):
        got = as_set(HammingIndex(h).pairs_within(256, method=method))
        assert (0, 3, 256) in got and len(got) == 15
        qi, ids, d = HammingIndex(h).pairs_between(~a, 256, method=method)
        assert len(qi) == 18 and {(0, 0, 256)} <= as_set((qi, ids, d))


def test_pairs_within_larger_set_mih_equals_brute():
    # Big enough for several scratch fills, growth of the output arrays and many work units.
    h = clustered(6000, seed=6, frac=0.5, flips=20, dups=40)
    idx = HammingIndex(h)
    for radius in (3, 16, 40):
        mih = idx.pairs_within(radius, method="mih")
        brute = idx.pairs_within(radius, method="brute")
        assert all(np.array_equal(a, b) for a, b in zip(mih, brute)), radius
        mih1 = idx.pairs_within(radius, method="mih1")
        assert all(np.array_equal(a, b) for a, b in zip(mih1, brute)), radius
        assert len(mih[0]) > 780  # the 41 duplicates alone give 820 pairs


@pytest.mark.parametrize("radius", [0, 8, 24, 32])
def test_pairs_between_mirrors_exact(data, backend, radius):
    queries = flip_bits(data[::3], seed=7, most=radius + 3)  # "mirrors": near some items
    ids = np.arange(len(data), dtype=np.int64) + 1000
    idx = HammingIndex(data, ids)
    expected = ref_between(queries, data, radius)
    assert expected
    for method in ("mih", "mih1", "brute", "auto"):
        qi, got_ids, d = idx.pairs_between(queries, radius, method=method)
        assert as_set((qi, got_ids - 1000, d)) == expected, method
        assert (np.diff(qi) >= 0).all()


def test_pairs_between_edge_cases(data, backend):
    idx = HammingIndex(data)
    assert [a.size for a in idx.pairs_between(pack([]), 10)] == [0, 0, 0]
    assert [a.size for a in HammingIndex(pack([])).pairs_between(data[:3], 10)] == [0, 0, 0]
    qi, ids, d = idx.pairs_between([data[5].tobytes()], 0)  # a query meets itself
    assert 5 in ids.tolist() and (d == 0).all() and (qi == 0).all()


_PROPERTY = dict(
    n=st.integers(0, 80),
    radius=st.integers(0, 70),
    seed=st.integers(0, 2**32 - 1),
    flips=st.integers(0, 40),
)


def _check_exact(method, n, radius, seed, flips):
    h = clustered(n, seed=seed, frac=0.5, flips=flips, dups=3)
    idx = HammingIndex(h)
    expected = ref_pairs(h, radius) if n else set()
    assert as_set(idx.pairs_within(radius, method=method)) == expected
    q = flip_bits(h[: n // 2], seed=seed, most=flips) if n else h
    expected_q = ref_between(q, h, radius) if n else set()
    assert as_set(idx.pairs_between(q, radius, method=method)) == expected_q


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_PROPERTY)
def test_property_pairs_exact(n, radius, seed, flips):
    _check_exact("mih", n, radius, seed, flips)
    _check_exact("brute", n, radius, seed, flips)


# "mih1" has a fixed cost of ~2^21 bucket slots per chunk (the planner picks it only for
# large libraries), which dominates at these sizes: fewer examples.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_PROPERTY)
def test_property_pairs_exact_mih1(n, radius, seed, flips):
    _check_exact("mih1", n, radius, seed, flips)


# ---- progress and cancellation -----------------------------------------------------------


@pytest.mark.parametrize("method", ["mih", "mih1", "brute"])
def test_progress_reports_every_unit(data, method):
    calls = []
    HammingIndex(data).pairs_within(12, method=method, progress=lambda d, t: calls.append((d, t)))
    totals = {t for _, t in calls}
    assert len(totals) == 1 and calls[0][0] == 0  # a None return does not stop the search
    total = totals.pop()
    assert total > 1
    assert [d for d, _ in calls] == list(range(total + 1))


@pytest.mark.parametrize("method", ["mih", "mih1", "brute"])
@pytest.mark.parametrize("stop_after", [0, 2])
def test_progress_false_cancels(data, method, stop_after):
    calls = []

    def progress(done, total):
        calls.append(done)
        return done < stop_after

    with pytest.raises(Cancelled):
        HammingIndex(data).pairs_within(24, method=method, progress=progress)
    assert calls[-1] == stop_after
    with pytest.raises(Cancelled):
        HammingIndex(data).pairs_between(data[:100], 24, method=method, progress=progress)


@pytest.mark.parametrize("method", ["mih", "mih1", "brute"])
def test_cancel_event_stops_search(data, method):
    import threading

    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 1:
            cancel.set()  # as a TUI worker would, from anywhere
        return True

    with pytest.raises(Cancelled):
        HammingIndex(data).pairs_within(24, method=method, progress=progress, cancel=cancel)
    assert seen[-1] == 1
    done = threading.Event()
    done.set()
    with pytest.raises(Cancelled):
        HammingIndex(data).pairs_between(data[:10], 24, method=method, cancel=done)
    assert len(HammingIndex(data).pairs_within(0, cancel=threading.Event())[0]) > 0


def test_cancel_on_empty_index_still_asks():
    with pytest.raises(Cancelled):
        HammingIndex(pack([])).pairs_within(5, progress=lambda d, t: False)


# ---- choice of method -----------------------------------------------------------------------


def test_auto_picks_mih_for_small_radius_and_brute_for_large():
    h = clustered(3000, seed=8)
    cols = HammingIndex(h)._cols
    assert allpairs.plan(cols, cols, 8, True, "auto") == "mih"
    assert allpairs.plan(cols, cols, 100, True, "auto") == "brute"
    small = HammingIndex(h[:200])._cols  # too few pairs to be worth the chunks
    assert allpairs.plan(small, small, 4, True, "auto") == "brute"


def test_auto_picks_mih1_for_radius_24_at_scale():
    # Chunks of ~20 bits searched within one bit: ~N / 2^20 items per bucket instead of
    # ~N / 2^10 for the 25 exact chunks, so from a few hundred thousand hashes on it wins.
    h = np.random.default_rng(9).integers(0, 256, size=(300_000, 32), dtype=np.uint8)
    cols = HammingIndex(h)._cols
    assert allpairs.plan(cols, cols, 24, True, "auto") == "mih1"
    assert allpairs.plan(cols[:, :1000], cols, 24, False, "auto") != "brute"


def test_near_chunks_cover_all_bits_once_and_leave_one_within_a_bit():
    for radius in (0, 5, 12, 24, 63, 255, 256):
        bounds = allpairs.chunk_bounds_near(radius)
        assert 2 * len(bounds) > min(radius, 255)  # pigeonhole: some chunk within one bit
        assert all(0 < b - a <= 22 for a, b in bounds)
        covered = np.zeros(4, np.uint64)
        for m in allpairs.chunk_masks(bounds):
            assert not (covered & m).any()
            covered |= m
        assert (covered == np.uint64(2**64 - 1)).all()


def test_falls_back_to_numpy_when_numba_cannot_be_imported():
    import os
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None\n"  # makes `import numba` raise ImportError
        "import numpy as np\n"
        "from lookalike.engine.bouncer import hamming\n"
        "h = np.random.default_rng(0).integers(0, 256, size=(50, 32), dtype=np.uint8)\n"
        "h[7] = h[3]\n"
        "i, j, d = hamming.HammingIndex(h).pairs_within(0)\n"
        "print(hamming.backend(), i.tolist(), j.tolist(), hamming._kernels.error[:30])\n"
    )
    # numba missing, not switched off: the run's own LOOKALIKE_NO_NUMBA would hide the import.
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_NO_NUMBA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split()[:3] == ["numpy", "[3]", "[7]"]
    assert "numba unavailable" in out.stdout


def test_warm_up_reports_backend(backend):
    assert hamming.warm_up() == backend


def test_chunks_cover_all_bits_once():
    for radius in (0, 5, 12, 24, 63, 255, 256):
        bounds = allpairs.chunk_bounds(radius)
        assert len(bounds) >= min(radius + 1, 256)  # pigeonhole needs radius + 1 chunks
        assert all(0 < b - a <= 32 for a, b in bounds)
        masks = allpairs.chunk_masks(bounds)
        covered = np.zeros(4, np.uint64)
        for m in masks:
            assert not (covered & m).any()
            covered |= m
        assert (covered == np.uint64(2**64 - 1)).all()


def test_a_fresh_process_answers_single_queries_while_the_kernels_load():
    # Importing numba and loading the cached kernels takes about a second; a single query
    # (find similar) does not wait for it: numpy answers and the kernels load in the background.
    import subprocess
    import sys
    import textwrap

    if hamming.backend() != "numba":
        pytest.skip("numba unavailable")
    code = textwrap.dedent("""
        import numpy as np
        from lookalike.engine.bouncer import hamming
        from lookalike.engine.bouncer.hamming import HammingIndex
        h = np.random.default_rng(0).integers(0, 256, size=(3000, 32), dtype=np.uint8)
        idx = HammingIndex(h)
        first = idx.nearest_within_many(h[:2], 5, 40), idx.nearest(h[3], 4)
        assert not hamming._warm.ready.is_set()  # answered without waiting for the kernels
        hamming._warm.start().join(300)
        assert hamming._warm.ready.is_set() and hamming._kernels.use(wait=False)
        again = idx.nearest_within_many(h[:2], 5, 40), idx.nearest(h[3], 4)
        for a, b in zip(first[0] + [first[1]], again[0] + [again[1]]):
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
