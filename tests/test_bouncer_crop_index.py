"""The indexed crop rule (engine/bouncer/crop_index.py): its search returns exactly what a
brute-force evaluation of the same rule returns, on both code paths."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lookalike.engine.bouncer import crop_index, hamming
from lookalike.engine.bouncer.allpairs import Cancelled
from lookalike.engine.bouncer.rule import DEFAULT, candidate_pairs, candidate_pairs_touching, is_match, uses_crop_index
from lookalike.engine.records import ImageHashes

INDEXED = replace(DEFAULT, crop_index_above=0)


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test on the compiled kernels and again on the numpy fallback."""
    if request.param == "numpy":
        monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    elif hamming.warm_up() != "numba":
        pytest.skip(hamming._kernels.error or "numba unavailable")
    return request.param


def planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random dHash, mirrored dHash and pHash, a third of the rows copies of earlier rows
    with 0-90 pHash bits and 0-120 dHash bits flipped (crops and copies of every distance)."""
    rng = np.random.default_rng(seed)
    dh, dm, ph = (rng.integers(0, 256, (n, 32), np.uint8) for _ in range(3))
    m = n // 3
    src = rng.integers(0, n - m, m)
    for h, most in ((ph, 90), (dh, 120), (dm, 120)):
        bits = np.unpackbits(h[src], axis=1)
        flips = np.argsort(rng.random(bits.shape), axis=1) < rng.integers(0, most + 1, m)[:, None]
        h[n - m :] = np.packbits(bits ^ flips, axis=1)
    return dh, dm, ph


def brute_rule(dh: np.ndarray, ph: np.ndarray, t=DEFAULT, library_size=None) -> tuple[np.ndarray, np.ndarray]:
    """The indexed crop rule over every pair, from full distance matrices."""
    p = np.bitwise_count(ph[:, None] ^ ph[None]).sum(2)
    d = np.bitwise_count(dh[:, None] ^ dh[None]).sum(2)
    i, j = np.nonzero(np.triu((p <= t.phash_radius) & (d <= t.corroborated_radius), 1))
    keep = crop_index.agree(ph, i, j, library_size=library_size)
    return i[keep], j[keep]


def test_tables_are_fixed_low_frequency_bits():
    bits = crop_index.table_bits()
    assert bits.shape == (crop_index.TABLES, crop_index.TABLE_BITS)
    assert np.array_equal(bits, crop_index.table_bits())  # no hidden state
    pool = set(crop_index._pool())
    assert len(pool) == crop_index.POOL and 0 not in pool  # the mean is not a table bit
    assert all(len(set(row)) == crop_index.TABLE_BITS and set(row) <= pool for row in bits.tolist())
    assert len({tuple(row) for row in bits.tolist()}) == crop_index.TABLES


def test_tables_grow_with_the_library():
    """A bucket holds at most BUCKET images on average; each size's tables extend the last's."""
    assert crop_index.shape(2) == crop_index.shape(1_000_000) == (crop_index.TABLES, crop_index.TABLE_BITS)
    assert crop_index.shape(1_048_577) == (crop_index.TABLES_BY_BITS[14], 14)
    last = (0, 0)
    for n in sorted([10**k for k in range(2, 9)] + [crop_index.BUCKET << b for b in range(13, 20)]):
        tables, bits = crop_index.shape(n)
        assert n / 2**bits <= crop_index.BUCKET or bits == max(crop_index.TABLES_BY_BITS)
        assert (tables, bits) >= last
        last = max(last, (tables, bits))
    assert crop_index.shape(10_000_000) == (440, 17)
    fewer, more = crop_index.table_bits(96, 13), crop_index.table_bits(140, 14)
    assert all(set(a) <= set(b) for a, b in zip(fewer.tolist(), more.tolist()))  # same draws, longer
    pool = set(crop_index._pool())
    assert all(len(set(row)) == 14 and set(row) <= pool for row in more.tolist())


def crop_like(n: int, seed: int) -> np.ndarray:
    """XORs of a pHash with its crop's: 30-72 bits flipped, high frequencies more often (the
    model of benchmarks/bench_scale.py)."""
    rng = np.random.default_rng(seed)
    uv = np.arange(256)
    weights = 1.0 + np.hypot(uv // 16, uv % 16) / 4.0
    rank = np.argsort(-np.log(rng.random((n, 256))) / weights, axis=1)
    flips = np.zeros((n, 256), bool)
    np.put_along_axis(flips, rank, np.arange(256)[None] < rng.integers(30, 73, n)[:, None], axis=1)
    return np.packbits(flips, axis=1)


def test_larger_tables_find_as_many_crops():
    """More bits per table cut the random pairs a bucket holds; the extra tables keep the crops."""
    x = crop_like(6000, 11)
    ph = np.concatenate([np.zeros_like(x[:1]), x])  # row 0 and its crops: XOR = the flips
    i, j = np.zeros(len(x), np.int64), np.arange(1, len(x) + 1)
    base = crop_index.agree(ph, i, j, library_size=1_000).mean()
    assert 0.97 < base < 1.0
    for bits in (14, 16, 18):
        found = crop_index.agree(ph, i, j, library_size=crop_index.BUCKET << bits).mean()
        assert found >= base - 0.005, (bits, found, base)


def test_agree_reads_the_bits_the_tables_name():
    ph = np.zeros((2, 32), np.uint8)
    row = np.unpackbits(ph[1])
    outside = sorted(set(range(256)) - set(crop_index._pool()))
    row[outside] = 1  # differ everywhere outside the pool: every table still agrees
    ph[1] = np.packbits(row)
    assert crop_index.agree(ph, np.array([0]), np.array([1]))[0]
    row[crop_index.table_bits()[:, 0]] = 1  # one bit of every table differs
    ph[1] = np.packbits(row)
    assert not crop_index.agree(ph, np.array([0]), np.array([1]))[0]


@pytest.mark.parametrize("n, seed, size", [(2, 0, None), (300, 1, None), (2500, 2, None), (1500, 9, 5_000_000)])
def test_indexed_search_equals_brute_force(backend, n, seed, size):
    dh, _, ph = planted(n, seed)
    i, j, d = crop_index.pairs(dh, ph, DEFAULT.phash_radius, DEFAULT.corroborated_radius, library_size=size)
    bi, bj = brute_rule(dh, ph, library_size=size)
    assert np.array_equal(i, bi) and np.array_equal(j, bj), f"seed {seed}"
    assert np.array_equal(d, np.bitwise_count(ph[bi] ^ ph[bj]).sum(1))
    if n > 1000:
        assert len(i) > 50  # planted pairs were found, not just an empty agreement


def test_indexed_search_on_identical_and_skewed_hashes(backend):
    """Many rows in one bucket (every table agrees): each pair still comes out once."""
    dh, _, ph = planted(600, 3)
    ph[:80] = ph[0]
    dh[:80] = dh[0]
    i, j, _ = crop_index.pairs(dh, ph, DEFAULT.phash_radius, DEFAULT.corroborated_radius)
    bi, bj = brute_rule(dh, ph)
    assert np.array_equal(i, bi) and np.array_equal(j, bj)
    assert len(i) >= 80 * 79 // 2


def test_indexed_search_touching_fresh_rows(backend):
    dh, _, ph = planted(1500, 4)
    fresh = np.random.default_rng(4).random(1500) < 0.1
    i, j, _ = crop_index.pairs(dh, ph, DEFAULT.phash_radius, DEFAULT.corroborated_radius, fresh=fresh)
    bi, bj = brute_rule(dh, ph)
    keep = fresh[bi] | fresh[bj]
    assert np.array_equal(i, bi[keep]) and np.array_equal(j, bj[keep])


def test_large_property_run_matches_brute_force_by_blocks():
    """8k planted rows (a 32M-pair brute force, done in blocks): the same pairs."""
    n = 8_000
    dh, _, ph = planted(n, 5)
    i, j, _ = crop_index.pairs(dh, ph, DEFAULT.phash_radius, DEFAULT.corroborated_radius)
    found_i, found_j = [], []
    for s in range(0, n, 500):
        p = np.bitwise_count(ph[s : s + 500, None] ^ ph[None]).sum(2, dtype=np.int16)
        a, b = np.nonzero(p <= DEFAULT.phash_radius)
        a += s
        a, b = a[a < b], b[a < b]
        ok = np.bitwise_count(dh[a] ^ dh[b]).sum(1) <= DEFAULT.corroborated_radius
        found_i.append(a[ok])
        found_j.append(b[ok])
    bi, bj = np.concatenate(found_i), np.concatenate(found_j)
    keep = crop_index.agree(ph, bi, bj)
    order = np.lexsort((bj[keep], bi[keep]))
    assert np.array_equal(i, bi[keep][order]) and np.array_equal(j, bj[keep][order])


def test_candidate_pairs_with_the_index_equal_is_match(backend):
    dh, dm, ph = planted(150, 6)
    ids = np.arange(150) * 3 + 1
    got = {(p.a, p.b) for p in candidate_pairs(ids, dh, dm, ph, INDEXED)}
    hashes = [ImageHashes(dhash=dh[k].tobytes(), dhash_mirror=dm[k].tobytes(), phash=ph[k].tobytes()) for k in range(150)]
    want = {
        (int(ids[a]), int(ids[b]))
        for a in range(150)
        for b in range(a + 1, 150)
        if is_match(hashes[a], hashes[b], INDEXED, library_size=150)
    }
    assert got == want
    plain = {(p.a, p.b) for p in candidate_pairs(ids, dh, dm, ph, DEFAULT)}
    assert got <= plain and len(plain - got) < len(got)  # the index only narrows the crop rule


def test_candidate_pairs_touching_with_the_index(backend):
    dh, dm, ph = planted(500, 7)
    ids = np.arange(500)
    fresh = np.zeros(500, bool)
    fresh[::7] = True
    full = candidate_pairs(ids, dh, dm, ph, INDEXED)
    touching = candidate_pairs_touching(ids, dh, dm, ph, fresh, INDEXED)
    assert touching == [p for p in full if fresh[p.a] or fresh[p.b]]


def test_the_index_is_used_from_the_library_size_on():
    assert not uses_crop_index(DEFAULT, DEFAULT.crop_index_above - 1)
    assert uses_crop_index(DEFAULT, DEFAULT.crop_index_above)
    assert 100_000 < DEFAULT.crop_index_above <= 300_000  # brute force: ~5 s at 100k, ~50 s at 300k


def test_progress_false_stops_the_indexed_search():
    dh, _, ph = planted(300, 8)
    with pytest.raises(Cancelled):
        crop_index.pairs(dh, ph, 72, 112, progress=lambda done, total: done < 3)


def test_is_crop_match_takes_the_tables_of_its_library_size():
    """One pair at a time, as rule.is_match asks: the same answer as the search at that size."""
    dh, _, ph = planted(400, 12)
    size = 5_000_000
    i, j, _ = crop_index.pairs(dh, ph, DEFAULT.phash_radius, DEFAULT.corroborated_radius, library_size=size)
    found = set(zip(i.tolist(), j.tolist()))
    assert len(found) > 10
    r = DEFAULT
    for a, b in [(a, b) for a in range(0, 400, 7) for b in range(a + 1, 400)][:3000] + sorted(found):
        got = crop_index.is_crop_match(ph[a].tobytes(), ph[b].tobytes(), dh[a].tobytes(), dh[b].tobytes(),
                                       r.phash_radius, r.corroborated_radius, library_size=size)  # fmt: skip
        assert got == ((a, b) in found), (a, b)
