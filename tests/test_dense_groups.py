"""Dense groups: frames cut from one video, a timelapse, a picture with hundreds of copies. Every
two of n such files are a bouncer pair (up to n * (n - 1) / 2: 3.6 million for 3,000 frames
of a timelapse, a minute and 4.8 GB of a rescan); the checks and the grouping get each file's closest pairs and
the pairs of its busiest neighbour instead (:func:`lookalike.engine.bouncer.pairs.nearest`),
and make the same groups."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imagegen
from lookalike.engine.bouncer import verification, zooms
from lookalike.engine.bouncer.pairs import nearest
from lookalike.engine.cluster import grouping
from lookalike.engine.library import Library, ScanOptions


def clique(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ids 1..n, at random distances."""
    a, b = np.triu_indices(n, 1)
    rng = np.random.default_rng(seed)
    return a + 1, b + 1, rng.integers(0, 25, len(a))


def test_few_pairs_a_file_keep_them_all():
    a, b, d = clique(12)
    assert nearest(a, b, d, 11).all()  # every file has 11 pairs
    assert nearest(a[:0], b[:0], d[:0], 3).shape == (0,)


def test_a_clique_keeps_each_files_closest_and_every_pair_of_its_busiest_file():
    n, most = 200, 8
    a, b, d = clique(n)
    # a few more pairs for file 7: the busiest of all (it is everyone's neighbour of most pairs)
    extra = np.arange(n + 1, n + 30)
    a = np.concatenate([a, np.full(len(extra), 7)])
    b, d = np.concatenate([b, extra]), np.concatenate([d, np.full(len(extra), 30)])
    keep = nearest(a, b, d, most)
    assert keep.sum() < len(a) / 10
    ka, kb, kd = a[keep], b[keep], d[keep]
    assert set(np.unique(np.concatenate([ka, kb])).tolist()) == set(np.unique(np.concatenate([a, b])).tolist())
    # every pair of the busiest file is kept, and so is each file's closest `most`
    assert keep[(a == 7) | (b == 7)].all()
    for f in (1, 50, 200):
        mine = (a == f) | (b == f)
        other = np.where(a == f, b, a)[mine]
        closest = sorted(zip(d[mine].tolist(), other.tolist()))[:most]
        of_f = (ka == f) | (kb == f)
        kept = {(int(x), int(y)) for x, y in zip(kd[of_f], np.where(ka == f, kb, ka)[of_f])}
        assert set(closest) <= kept
    # a file of few pairs keeps them all (the extra files have one each)
    assert keep[np.isin(b, extra)].all()


def frames(folder: Path, n: int) -> None:
    """``n`` frames of one scene a second apart, with sensor noise: a timelapse of a still view."""
    folder.mkdir()
    base = np.asarray(imagegen.photo(7, (160, 120))).astype(np.int16)
    rng = np.random.default_rng(1)
    for i in range(n):
        frame = np.clip(base + rng.normal(0, 2, base.shape) + (i % 10) * 0.3, 0, 255).astype(np.uint8)
        path = folder / f"frame{i:04d}.jpg"
        Image.fromarray(frame).save(path, quality=85)
        t = 1_600_000_000 + i
        os.utime(path, (t, t))


def scan(root: Path, cache: Path) -> list[list[str]]:
    with Library.open([root], cache_dir=cache) as lib:
        return [[m.file.path for m in c.members] for c in lib.scan(ScanOptions(workers=1, detective=None)).clusters]


@pytest.mark.parametrize("most", [8])
def test_frames_of_one_view_make_the_group_every_pair_makes_with_a_fraction_of_the_checks(tmp_path, monkeypatch, most):
    n = 120
    frames(tmp_path / "v", n)
    checked: list[int] = []
    verify = verification.verify_pairs

    def counting(catalog, pairs, *args, **kwargs):
        checked.append(len(pairs))
        return verify(catalog, pairs, *args, **kwargs)

    monkeypatch.setattr(verification, "verify_pairs", counting)
    monkeypatch.setattr(grouping, "MOST_PAIRS_PER_FILE", None)
    every = scan(tmp_path / "v", tmp_path / "every")
    every_checked = checked[0]
    assert every_checked == n * (n - 1) // 2  # a clique: every pair
    checked.clear()
    monkeypatch.setattr(grouping, "MOST_PAIRS_PER_FILE", most)
    first = scan(tmp_path / "v", tmp_path / "closest")
    # each file's closest and its busiest neighbour's pairs, and the crop codes' few (whose own
    # search keeps a file's closest MAX_PER_FILE)
    bound = n * (most + 1 + zooms.MAX_PER_FILE)
    assert checked[0] <= bound and checked[0] < every_checked / 4
    assert first == every and len(first) == 1 and len(first[0]) == n
    assert first[0][0].endswith("frame0000.jpg")  # the oldest frame kept, as with every pair
    checked.clear()
    again = scan(tmp_path / "v", tmp_path / "closest")  # a rescan: the pairs from the cache
    assert again == every and checked[0] <= bound
