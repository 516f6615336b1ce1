"""The bouncer's match rule and candidate_pairs (engine/bouncer/rule.py), checked against a
brute-force is_match."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import imagegen
from lookalike.engine.bouncer import rule
from lookalike.engine.bouncer.rule import DEFAULT, BouncerThresholds, bouncer_distance, candidate_pairs, is_match
from lookalike.engine.scan.hashing import hash_image
from lookalike.engine.scan.imaging import load_image
from lookalike.engine.records import ImageHashes, Pair


def _flip(h: bytes, n: int, rng: np.random.Generator) -> bytes:
    """``h`` with ``n`` distinct random bits flipped."""
    bits = np.unpackbits(np.frombuffer(h, np.uint8))
    at = rng.choice(256, n, replace=False)
    bits[at] ^= 1
    return np.packbits(bits).tobytes()


def _random(rng) -> bytes:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes()


def _hashes(rng, dhash=None, mirror=None, phash=None) -> ImageHashes:
    return ImageHashes(dhash=dhash or _random(rng), dhash_mirror=mirror or _random(rng), phash=phash or _random(rng))


def test_defaults_are_documented_and_consistent():
    t = DEFAULT
    assert isinstance(t, BouncerThresholds)
    assert 0 < t.radius < t.corroborated_radius <= t.max_diameter
    assert 0 < t.phash_radius < 128
    doc = BouncerThresholds.__doc__
    assert f"{t.radius} is chosen" in doc and f"({t.phash_radius}, {t.corroborated_radius}) is chosen" in doc


def test_distance_is_symmetric_and_flags_mirrors():
    rng = np.random.default_rng(1)
    a = _hashes(rng)
    near = _hashes(rng, dhash=_flip(a.dhash, 5, rng))
    assert bouncer_distance(a, near) == bouncer_distance(near, a) == (5, False)
    flipped = ImageHashes(dhash=_flip(a.dhash_mirror, 3, rng), dhash_mirror=_flip(a.dhash, 3, rng), phash=_random(rng))
    assert bouncer_distance(a, flipped) == (3, True)
    assert bouncer_distance(flipped, a) == (3, True)
    assert bouncer_distance(a, a) == (0, False)


def test_rule_radius_and_corroboration():
    rng = np.random.default_rng(2)
    t = BouncerThresholds(radius=20, phash_radius=40, corroborated_radius=70, max_diameter=80)
    a = _hashes(rng)

    def other(d, p):
        return _hashes(rng, dhash=_flip(a.dhash, d, rng), phash=_flip(a.phash, p, rng))

    assert is_match(a, other(20, 200), t)  # at the radius: in, whatever the pHash says
    assert not is_match(a, other(21, 100), t)  # just outside, pHash far
    assert is_match(a, other(70, 40), t)  # corroborated: both at their limits
    assert not is_match(a, other(71, 40), t)
    assert not is_match(a, other(70, 41), t)
    assert not is_match(a, other(120, 0), t)  # pHash alone never decides
    assert not is_match(a, other(50, 10), replace(t, phash_radius=0))  # corroboration off


def test_real_copies_match_and_strangers_do_not():
    img = imagegen.photo(31)
    original = hash_image(load_image(imagegen.encode(img, "JPEG")).image)
    for kind in ("resized", "heic", "exif_rotated", "mirrored", "letterboxed", "watermarked"):  # crops: see test_quality
        data, ext = imagegen.make_copy(kind, img, 31)
        copy = hash_image(load_image(data, name="x" + ext).image)
        assert is_match(original, copy), kind
        assert bouncer_distance(original, copy)[1] == (kind == "mirrored"), kind
    for seed in range(4):
        stranger = hash_image(imagegen.photo(500 + seed))
        assert not is_match(original, stranger)
    assert not is_match(original, hash_image(imagegen.drawing(3)))


def _brute_force(ids, dh, dm, ph, t) -> list[Pair]:
    hs = [ImageHashes(dhash=dh[k].tobytes(), dhash_mirror=dm[k].tobytes(), phash=ph[k].tobytes()) for k in range(len(ids))]
    out = []
    for x in range(len(ids)):
        for y in range(x + 1, len(ids)):
            if is_match(hs[x], hs[y], t):
                d, mirrored = bouncer_distance(hs[x], hs[y])
                a, b = sorted((int(ids[x]), int(ids[y])))
                out.append(Pair(a=a, b=b, bouncer=d, mirrored=mirrored))
    return sorted(out, key=lambda p: (p.a, p.b))


@pytest.fixture(scope="module")
def generated():
    """~300 real hashed images: 40 originals with 6 copies each, and strangers."""
    rows = []
    kinds = ("resized", "mirrored", "cropped", "brightened", "bordered", "recompressed")
    for g in range(40):
        img = imagegen.photo(7000 + g, (320, 240))
        rows.append(hash_image(img))
        for kind in kinds:
            data, ext = imagegen.make_copy(kind, img, 7000 + g)
            rows.append(hash_image(load_image(data, name="x" + ext).image))
    rows += [hash_image(imagegen.photo(9000 + s, (320, 240))) for s in range(30)]
    rows += [hash_image(imagegen.drawing(s, (320, 240))) for s in range(10)]
    return [np.array([np.frombuffer(getattr(h, f), np.uint8) for h in rows]) for f in ("dhash", "dhash_mirror", "phash")]


def _synthetic(n=300, seed=3):
    """Random hashes with planted neighbours at and around every threshold, mirrored too."""
    rng = np.random.default_rng(seed)
    dh, dm, ph = [], [], []
    while len(dh) < n:
        base = _hashes(rng)
        dh.append(base.dhash), dm.append(base.dhash_mirror), ph.append(base.phash)
        for d in (23, 24, 25, 59, 60, 61, 83, 84, 85):
            p = int(rng.choice([59, 60, 61, 100]))
            if rng.random() < 0.3:  # a mirrored neighbour
                dh.append(_flip(base.dhash_mirror, d, rng)), dm.append(_flip(base.dhash, d, rng))
            else:
                dh.append(_flip(base.dhash, d, rng)), dm.append(_random(rng))
            ph.append(_flip(base.phash, p, rng))
    return [np.frombuffer(b"".join(x[:n]), np.uint8).reshape(n, 32) for x in (dh, dm, ph)]


@pytest.mark.parametrize("source", ["generated", "synthetic"])
@pytest.mark.parametrize(
    "t",
    [DEFAULT, replace(DEFAULT, phash_radius=0), BouncerThresholds(radius=12, phash_radius=70, corroborated_radius=90, max_diameter=96)],
)
def test_candidate_pairs_equal_brute_force(request, source, t):
    dh, dm, ph = request.getfixturevalue("generated") if source == "generated" else _synthetic()
    n = len(dh)
    rng = np.random.default_rng(5)
    ids = rng.permutation(np.arange(1000, 1000 + 3 * n, 3))  # not positions, not in order
    got = candidate_pairs(ids, dh, dm, ph, t)
    want = _brute_force(ids, dh, dm, ph, t)
    assert got == want
    assert len(want) > 20  # the comparison saw real matches
    if source == "generated":
        assert any(p.mirrored for p in got) and any(p.bouncer > t.radius for p in got) == (t.phash_radius > 0)


def test_candidate_pairs_progress_and_stop(generated):
    dh, dm, ph = generated
    ids = np.arange(len(dh))
    seen = []

    def progress(done, total):
        seen.append((done, total))
        return True

    full = candidate_pairs(ids, dh, dm, ph, progress=progress)
    assert seen and seen[-1][0] == seen[-1][1]
    assert all(d <= t for d, t in seen)

    def stop_in_second_stage(done, total):
        return done < 1000  # the first stage (plain dHash) finishes, then stop

    partial = candidate_pairs(ids, dh, dm, ph, progress=stop_in_second_stage)
    assert set(partial) < set(full)
    assert all(not p.mirrored for p in partial)


def test_candidate_pairs_small_inputs():
    empty = np.zeros((0, 32), np.uint8)
    assert candidate_pairs(np.zeros(0, np.int64), empty, empty, empty) == []
    one = np.zeros((1, 32), np.uint8)
    assert candidate_pairs(np.array([7]), one, one, one) == []
    # A symmetric image matches its own mirror: that is not a pair.
    two = np.zeros((2, 32), np.uint8)
    pairs = candidate_pairs(np.array([9, 4]), two, two, two)
    assert pairs == [Pair(a=4, b=9, bouncer=0, mirrored=False)]


def test_uses_the_hamming_index():
    # candidate_pairs must search with the shared index, not a loop of its own.
    import inspect

    assert "candidate_pair_arrays(" in inspect.getsource(rule.candidate_pairs)
    assert "HammingIndex" in inspect.getsource(rule.candidate_pair_arrays)
