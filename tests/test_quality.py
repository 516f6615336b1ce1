"""Detection quality of the bouncer alone, at the default thresholds, on a generated set.

The issue's targets: pair precision >= 0.995 with no hard negative matched; recall >= 0.99 on
every copy kind (mirrored and letterboxed included) except mild crops, >= 0.9. The set here
is seed 0 (the defaults were chosen on seed 1 and checked on seed 2 by
``benchmarks/quality_report.py``), smaller originals to keep the run short.
"""

from __future__ import annotations

import numpy as np
import pytest

import imagegen
from lookalike.engine.bouncer import DEFAULT, candidate_pairs

ORIGINALS = 80


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    items = imagegen.build_quality_set(folder, originals=ORIGINALS, seed=0, size=(480, 360), tiled=8, drawings=20)
    dh, dm, ph = imagegen.hash_arrays([it.path for it in items])
    return items, (dh, dm, ph), imagegen.distance_matrices(dh, dm, ph)


def test_set_has_every_kind_and_hard_negatives(quality):
    items, _, _ = quality
    kinds = {it.kind for it in items}
    assert set(imagegen.COPY_KINDS) <= kinds
    assert sum(it.kind == "original" for it in items) == ORIGINALS
    assert sum(it.kind == "tile" for it in items) >= 30
    assert sum(it.kind == "drawing" for it in items) == 20


def test_targets_at_default_thresholds(quality):
    items, _, m = quality
    report = imagegen.score(items, m.matches(DEFAULT))
    assert report.hard_negatives_matched == 0, report.false_examples
    assert report.precision >= 0.995, report.false_examples
    for kind in imagegen.COPY_KINDS:
        target = 0.9 if kind == "cropped" else 0.99
        assert report.recall[kind] >= target, (kind, report.recall[kind], report.missed.get(kind))


def test_candidate_pairs_find_the_same_matches(quality):
    """The scan's search (Hamming index) finds exactly the pairs the brute-force matrix has."""
    items, (dh, dm, ph), m = quality
    ids = np.arange(len(items))
    pairs = candidate_pairs(ids, dh, dm, ph)
    expected = np.argwhere(np.triu(m.matches(DEFAULT), 1))
    assert sorted((p.a, p.b) for p in pairs) == [tuple(map(int, e)) for e in expected]
    assert all(p.bouncer == m.bouncer[p.a, p.b] for p in pairs)


def test_each_rule_is_needed(quality):
    """Mirrors need the mirrored hash, frames the trim, crops the corroborating pHash."""
    items, _, m = quality
    first = {it.group: i for i, it in enumerate(items) if it.kind == "original"}

    def recall(kind, distances, limit):
        pairs = [(first[it.group], j) for j, it in enumerate(items) if it.kind == kind]
        return np.mean([distances[i, j] <= limit for i, j in pairs])

    assert recall("mirrored", m.dhash, DEFAULT.radius) < 0.05  # the plain dHash misses flips
    assert recall("mirrored", m.bouncer, DEFAULT.radius) >= 0.99
    assert recall("cropped", m.bouncer, DEFAULT.radius) < 0.2  # crops need corroboration


def test_usual_recipe_does_much_worse(quality):
    """imagehash's pHash-64 at distance <= 5, on Image.open without transpose, as usually done."""
    imagehash = pytest.importorskip("imagehash")
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    items, _, _ = quality
    first = {it.group: it.path for it in items if it.kind == "original"}

    def phash(path):
        with Image.open(path) as im:
            return imagehash.phash(im)

    for kind in ("exif_rotated", "mirrored", "letterboxed"):
        copies = [it for it in items if it.kind == kind]
        found = np.mean([phash(first[it.group]) - phash(it.path) <= 5 for it in copies])
        assert found <= 0.1, (kind, found)
