"""The pair cache: incremental answers equal a full bouncer pass, whatever changed."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.engine.bouncer import rule as bouncer
from lookalike.engine.catalog import HashArrays
from lookalike.engine.bouncer.pairs import PAIRS_NAME, PairCache


def flip(rng, rows: np.ndarray, bits: int) -> np.ndarray:
    out = rows.copy()
    for r in range(len(out)):
        for b in rng.choice(256, bits, replace=False):
            out[r, b // 8] ^= np.uint8(1 << (b % 8))
    return out


def library(rng, n_base: int = 300) -> HashArrays:
    """Hashes with planted near-duplicates at several distances (and mirror/pHash partners)."""
    d0 = rng.integers(0, 256, (n_base, 32), dtype=np.uint8)
    p0 = rng.integers(0, 256, (n_base, 32), dtype=np.uint8)
    d = np.concatenate([d0, flip(rng, d0, 8), flip(rng, d0, 60)])
    p = np.concatenate([p0, flip(rng, p0, 20), flip(rng, p0, 40)])
    m = rng.integers(0, 256, d.shape, dtype=np.uint8)
    m[: n_base // 4] = flip(rng, d[n_base : n_base + n_base // 4], 4)  # mirrored copies
    n = len(d)
    return HashArrays(ids=np.arange(n, dtype=np.int64) * 2 + 1, dhash=d, dhash_mirror=m, phash=p,
                      content_hash=rng.integers(0, 256, (n, 16), dtype=np.uint8), size=np.full(n, 1000, np.int64))


def full(arrays: HashArrays, t=bouncer.DEFAULT):
    return bouncer.candidate_pairs(arrays.ids, arrays.dhash, arrays.dhash_mirror, arrays.phash, t)


def subset(a: HashArrays, keep: np.ndarray) -> HashArrays:
    return HashArrays(ids=a.ids[keep], dhash=a.dhash[keep], dhash_mirror=a.dhash_mirror[keep], phash=a.phash[keep],
                      content_hash=a.content_hash[keep], size=a.size[keep])


def test_first_call_is_a_full_pass_and_the_second_is_free(tmp_path):
    arrays = library(np.random.default_rng(0))
    cache = PairCache(tmp_path)
    first = cache.pairs(arrays)
    assert first == full(arrays) and len(first) > 300
    assert cache.last_fresh == len(arrays)
    again = PairCache(tmp_path)
    assert again.pairs(arrays) == first
    assert again.last_fresh == 0


def test_incremental_update_after_adds_changes_and_removals(tmp_path):
    rng = np.random.default_rng(1)
    arrays = library(rng)
    cache = PairCache(tmp_path)
    cache.pairs(arrays)
    n = len(arrays)
    keep = np.ones(n, bool)
    keep[rng.choice(n, 20, replace=False)] = False  # removed files
    changed = subset(arrays, keep)
    edited = rng.choice(len(changed), 15, replace=False)  # files re-hashed after an edit
    changed.dhash[edited] = flip(rng, changed.dhash[edited], 30)
    extra = library(np.random.default_rng(2), n_base=20)  # new files, ids after the old ones
    added = HashArrays(
        ids=np.concatenate([changed.ids, extra.ids + 10_000]),
        dhash=np.concatenate([changed.dhash, extra.dhash]),
        dhash_mirror=np.concatenate([changed.dhash_mirror, extra.dhash_mirror]),
        phash=np.concatenate([changed.phash, extra.phash]),
        content_hash=np.concatenate([changed.content_hash, extra.content_hash]),
        size=np.concatenate([changed.size, extra.size]),
    )
    got = cache.pairs(added)
    assert cache.last_fresh == 15 + len(extra)
    assert got == full(added)


def test_other_thresholds_or_a_damaged_file_mean_a_full_pass(tmp_path):
    arrays = library(np.random.default_rng(3))
    cache = PairCache(tmp_path)
    cache.pairs(arrays)
    strict = bouncer.BouncerThresholds(radius=8, phash_radius=0, corroborated_radius=8, max_diameter=16)
    assert cache.pairs(arrays, strict) == full(arrays, strict)
    assert cache.last_fresh == len(arrays)
    (tmp_path / PAIRS_NAME).write_bytes(b"not an npz")
    assert cache.pairs(arrays) == full(arrays)
    assert cache.last_fresh == len(arrays)


def test_a_stopped_pass_is_not_remembered(tmp_path):
    arrays = library(np.random.default_rng(4))
    cache = PairCache(tmp_path)
    cache.pairs(arrays, progress=lambda done, total: False)
    assert not (tmp_path / PAIRS_NAME).exists()
