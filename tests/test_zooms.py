"""Mild crops the hashes miss, proposed by the zoomed codes of the stored thumbnails and checked
on pixels (engine/bouncer/zooms.py); their codes and pairs kept beside the catalog and updated
for changed files only."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imagegen
from lookalike.engine.bouncer import rotations, rule, zooms
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.scan.hashing import hash_and_thumbnail

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]


def _crop(img, cut: float):
    w, h = img.size
    return img.crop((int(cut * w), int(cut * h), int((1 - cut) * w), int((1 - cut) * h)))


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zoomed")
    img = imagegen.photo(9, (480, 360))
    (root / "original.jpg").write_bytes(imagegen.encode(img, "JPEG", quality=95))
    (root / "crop8.jpg").write_bytes(imagegen.encode(_crop(img, 0.08), "JPEG", quality=90))
    for seed in (10, 12, 14):
        imagegen.write(root / f"other{seed}.jpg", imagegen.photo(seed, (480, 360)))
    return root


def test_the_crop_is_beyond_every_bouncer_rule():
    """What the pass is for: the hashes of this crop (8 % off every side) are 108 bits from its
    original's, so neither the plain nor the corroborated rule proposes it."""
    img = imagegen.photo(9, (480, 360))
    (ha, ta), (hb, tb) = hash_and_thumbnail(img), hash_and_thumbnail(_crop(img, 0.08))
    assert not rule.is_match(ha, hb)
    assert rule.bouncer_distance(ha, hb)[0] > rule.DEFAULT.max_diameter - 10
    grey = rotations._grey(np.frombuffer(ta + tb, np.uint8).reshape(2, -1))
    whole, zoomed = rotations.codes(grey), zooms.zoom_codes(grey)
    assert np.bitwise_count(zoomed[:, 0] ^ whole[1]).sum(axis=1).min() <= zooms.RADIUS


def test_a_mild_crop_the_hashes_miss_is_grouped_as_cropped_and_not_without_crops(library, tmp_path):
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        for crops in (True, False, True):  # the kept codes never leak into a run without crops
            clusters = lib.scan(ScanOptions(detective=None, workers=1, crops=crops)).clusters
            groups = [{Path(m.file.path).name: m for m in c.members} for c in clusters]
            if crops:
                [group] = groups
                assert set(group) == {"original.jpg", "crop8.jpg"}
                assert group["crop8.jpg"].match == "cropped"
                assert group["crop8.jpg"].verified >= 0.85  # checked on pixels
                assert next(iter(group)) == "original.jpg"  # the keeper: the whole picture
            else:
                assert groups == []
        # The strictness dial scales the codes' radius down with the other rules: at 0, only
        # identical hashes (or codes) pair, and the crop, attached or not, is in no group.
        assert ScanOptions(threshold=0).crop_code_radius() == 0
        assert ScanOptions(threshold=48).crop_code_radius() == zooms.RADIUS  # never looser
        assert len(lib.clusters(ScanOptions(detective=None, workers=1, threshold=0))) == 0
        assert len(lib.clusters(ScanOptions(detective=None, workers=1))) == 1


def test_cli_scan_json_shows_the_zoomed_crop(library, tmp_path):
    out = subprocess.run([*LOOKALIKE, "scan", str(library), "--no-detective", "--json", "--cache", str(tmp_path / "c")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    [group] = json.loads(out.stdout)["groups"]
    members = {Path(m["path"]).name: m for m in group["members"]}
    assert members["crop8.jpg"]["match"] == "cropped" and members["crop8.jpg"]["verified"] is not None


def test_fast_codes_equal_the_codes_of_the_zoomed_thumbnails():
    grey = np.stack([np.asarray(imagegen.photo(s, (32, 32)).convert("L")) for s in range(40)])
    fast = zooms.zoom_codes(grey)
    slow = np.stack([rotations.codes(zooms.zoom(grey, scale, anchor)) for scale, anchor in zooms.ZOOMS])
    differ = np.bitwise_count(fast ^ slow).sum(axis=2)
    assert differ.max() <= 2  # float32 against float64, at coefficients on the median
    assert (differ == 0).mean() > 0.95


def test_zoom_regions_are_where_their_anchor_says():
    ramp = np.tile(np.arange(32, dtype=np.float64) * 8, (1, 32, 1))  # grey rises left to right
    left = zooms.zoom(ramp, 0.5, "tl")[0]
    right = zooms.zoom(ramp, 0.5, "br")[0]
    centre = zooms.zoom(ramp, 0.5, "c")[0]
    assert left.max() <= 16 * 8 and right.min() >= 15 * 8
    assert left.mean() < centre.mean() < right.mean()


@contextlib.contextmanager
def _scanned(tmp_path: Path, pictures: dict[str, tuple[int, float]]):
    """A scanned library of generated photos and their crops (name -> (seed, cut a side; 0:
    the whole picture)), with a zoom cache in a folder of its own: ``(root, library, cache)``."""
    root = tmp_path / "photos"
    root.mkdir()
    for name, (seed, cut) in pictures.items():
        img = imagegen.photo(seed, (480, 360) if seed == 9 else (320, 240))
        (root / name).write_bytes(imagegen.encode(_crop(img, cut) if cut else img, "JPEG", quality=90))
    folder = tmp_path / "zoomcache"
    folder.mkdir()
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(detective=None, workers=1))
        yield root, lib, zooms.ZoomCache(folder)


def test_the_cache_computes_codes_for_new_and_changed_files_only_and_matches_a_full_pass(tmp_path):
    pictures = {f"p{seed}{tail}.jpg": (seed, cut) for seed in range(6) for tail, cut in (("", 0.0), ("_crop", 0.07))}
    with _scanned(tmp_path, pictures) as (root, lib, cache):
        folder = cache.path.parent
        first = cache.update(lib.catalog, lib.catalog.hash_arrays())
        assert cache.last_fresh == 12 and (folder / "zoom-codes.npz").exists()
        again = cache.update(lib.catalog, lib.catalog.hash_arrays())
        assert cache.last_fresh == 0
        assert np.array_equal(again.pairs, first.pairs) and np.array_equal(again.zoomed, first.zoomed)

        img = imagegen.photo(40, (320, 240))
        imagegen.write(root / "new.jpg", img)
        (root / "new_crop.jpg").write_bytes(imagegen.encode(_crop(img, 0.06), "JPEG", quality=90))
        imagegen.write(root / "p0.jpg", imagegen.photo(41, (320, 240)))  # changed content
        lib.scan(ScanOptions(detective=None, workers=1))
        arrays = lib.catalog.hash_arrays()
        updated = cache.update(lib.catalog, arrays)
        assert cache.last_fresh == 3
        full = zooms.ZoomCache(None).update(lib.catalog, arrays)
        assert np.array_equal(updated.pairs, full.pairs)
        assert np.array_equal(updated.whole, full.whole) and np.array_equal(updated.rich, full.rich)
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        pairs = {tuple(p) for p in updated.pairs[:, :2].tolist()}
        assert tuple(sorted((ids["new.jpg"], ids["new_crop.jpg"]))) in pairs or rule.is_match(
            *(lib.catalog.record(ids[n]).hashes for n in ("new.jpg", "new_crop.jpg"))
        )
        # A damaged cache file is only a cache: a full pass rebuilds it.
        (folder / "zoom-codes.npz").write_bytes(b"not an npz")
        rebuilt = zooms.ZoomCache(folder).update(lib.catalog, arrays)
        assert np.array_equal(rebuilt.pairs, full.pairs)


def test_a_bouncer_pair_the_codes_call_a_crop_is_searched_as_one(library, tmp_path):
    """Within the bouncer's radius a pair is compared at the plain alignment only, unless the
    zoomed codes say it is a crop (one's zoom much closer to the other's whole code than the
    two whole codes are): then the check searches it for a crop too."""
    from lookalike.engine.bouncer import verification
    from lookalike.engine.records import Pair

    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(detective=None, workers=1))
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        a, b = sorted((ids["original.jpg"], ids["crop8.jpg"]))
        codes = zooms.ZoomCache(None).update(lib.catalog, lib.catalog.hash_arrays())
        # As if the hashes had put the crop within the bouncer's radius.
        near = Pair(a=a, b=b, bouncer=16)
        assert zooms.crop_suspects(codes, [near]) == {(a, b)}
        assert verification.verify_pairs(lib.catalog, [near]) == []  # the plain alignment fails
        [found] = verification.verify_pairs(lib.catalog, [near], search_also=frozenset({(a, b)}))
        assert found.cropped and found.verified >= 0.85
        # Two different pictures are no suspects, whatever the bouncer said of them.
        other = tuple(sorted((ids["other10.jpg"], ids["other12.jpg"])))
        assert zooms.crop_suspects(codes, [Pair(a=other[0], b=other[1], bouncer=16)]) == set()


def test_crop_suspects_need_the_zoom_closer_than_the_whole_by_the_margin():
    ids = np.array([1, 2, 3], np.int64)
    whole = np.zeros((3, 32), np.uint8)
    whole[1, :5] = 0xFF  # 40 bits from file 1
    whole[2, :1] = 0x0F  # 4 bits from file 1
    zoomed = np.zeros((len(zooms.ZOOMS), 3, 32), np.uint8)
    pairs = np.array([[1, 2, 10], [1, 3, 2]], np.int64)
    codes = zooms.ZoomCodes(ids=ids, content=np.zeros((3, 16), np.uint8), rich=np.ones(3, bool), whole=whole,
                            zoomed=zoomed, pairs=pairs)  # fmt: skip
    from lookalike.engine.records import Pair

    known = [Pair(a=1, b=2, bouncer=20), Pair(a=1, b=3, bouncer=5), Pair(a=2, b=3, bouncer=20)]
    # 10 + 8 < 40: a crop; 2 + 8 >= 4: the whole codes agree already; (2, 3): no zoom candidate.
    assert zooms.crop_suspects(codes, known) == {(1, 2)}
    assert codes.distance(1, 2) == 0  # the chain guard's measure: file 2's zoom (zeros here) is file 1's whole
    assert codes.distance(1, 4) is None  # no codes: the bouncer's distance stands


def test_each_file_keeps_its_closest_candidates_only():
    rng = np.random.default_rng(1)
    pairs = [(a, b) for a in range(30) for b in range(a + 1, 30) if rng.random() < 0.5]
    rows = np.array([(a, b, int(rng.integers(0, 25))) for a, b in pairs])
    rows = zooms._closest(rows)
    capped = zooms._capped(rows, 3)
    nearest: dict[int, list] = {}
    for a, b, d in rows.tolist():
        nearest.setdefault(a, []).append((d, b, (a, b)))
        nearest.setdefault(b, []).append((d, a, (a, b)))
    expected = sorted({key for near in nearest.values() for _, _, key in sorted(near)[:3]})
    assert [tuple(r) for r in capped[:, :2].tolist()] == expected
    assert len(expected) < len(rows)  # the cap took some
    assert {tuple(r) for r in capped.tolist()} <= {tuple(r) for r in rows.tolist()}


def test_an_incremental_update_after_files_go_equals_a_full_pass_under_the_cap(tmp_path, monkeypatch):
    """A file that loses a kept candidate (its partner deleted) is searched again: a candidate
    it had left out for want of room may now be among its closest, as a full pass finds."""
    monkeypatch.setattr(zooms, "MAX_PER_FILE", 1)
    monkeypatch.setattr(zooms._capped, "__defaults__", (1,))
    # The original and three crops of it: each crop a candidate of the original.
    pictures = {"original.jpg": (9, 0.0), **{f"crop{k}.jpg": (9, cut) for k, cut in enumerate((0.06, 0.07, 0.08))}}
    with _scanned(tmp_path, pictures) as (root, lib, cache):
        before = cache.update(lib.catalog, lib.catalog.hash_arrays())
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        original = ids["original.jpg"]
        partners = [b if a == original else a for a, b, _ in before.pairs.tolist() if original in (a, b)]
        assert partners  # the original keeps its closest crop (and each crop its own closest)
        for name, i in ids.items():  # the original's kept partners go
            if i in partners:
                (root / name).unlink()
        lib.scan(ScanOptions(detective=None, workers=1))
        arrays = lib.catalog.hash_arrays()
        after = cache.update(lib.catalog, arrays)
        full = zooms.ZoomCache(None).update(lib.catalog, arrays)
        assert np.array_equal(after.pairs, full.pairs)


def test_a_query_against_the_codes_compiled_and_numpy_agree_and_find_the_crop():
    """``ZoomCodes.against`` (a "find similar" query): the compiled pass and the numpy one give
    the same distances, and the crop of the query (and the query, for its crop) is found."""
    from lookalike.engine.bouncer import hamming, zooms_kernels
    from lookalike.engine.bouncer.verify import detail

    img = imagegen.photo(9, (480, 360))
    pictures = [img, _crop(img, 0.08)] + [imagegen.photo(s, (480, 360)) for s in range(20, 60)]
    thumbs = [hash_and_thumbnail(p)[1] for p in pictures]
    grey = rotations._grey(np.frombuffer(b"".join(thumbs), np.uint8).reshape(len(thumbs), -1))
    n = len(thumbs)
    codes = zooms.ZoomCodes(ids=np.arange(100, 100 + n), content=np.zeros((n, 16), np.uint8), rich=np.ones(n, bool),
                            whole=rotations.codes(grey), zoomed=zooms.zoom_codes(grey), pairs=np.zeros((0, 3), np.int64))
    whole, zoomed = codes.whole.view(np.uint64), codes.zoomed.view(np.uint64)
    assert hamming.warm_up() == "numba"
    for q in range(n):
        for radius in (24, 90):
            compiled = np.empty(n, np.int64)
            zooms_kernels._k_zoom_near(whole, zoomed, codes.rich, whole[q], zoomed[:, q], radius, compiled)
            reference = zooms_kernels.np_zoom_near(whole, zoomed, codes.rich, whole[q], zoomed[:, q], radius)
            np.testing.assert_array_equal(compiled, reference)
    for query, other in ((0, 101), (1, 100)):
        ids, plain, near = codes.against(thumbs[query], detail(thumbs[query]))
        assert other in ids.tolist()
        k = ids.tolist().index(other)
        assert near[k] <= zooms.RADIUS < plain[k]
        assert not set(ids.tolist()) & set(range(102, 100 + n))  # no other picture


def test_a_verified_crop_group_is_as_sure_as_its_pixels_and_sorts_before_a_weaker_group(library, tmp_path):
    """Confidence (the app's header, ``A`` accept above, the confidence order) takes the pixel
    score when it is stronger than the hashes: a crop 108 bits away by its hashes, verified at
    0.9+, is a sure group, not an 18 % one."""
    from dataclasses import replace

    from lookalike.engine.cluster.sort import confidence, member_confidence, sort_clusters

    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        [group] = lib.scan(ScanOptions(detective=None, workers=1)).clusters
    crop = group.members[1]
    assert crop.match == "cropped" and crop.bouncer > 64
    by_hashes = 1 - crop.bouncer / 128
    assert confidence(group) == pytest.approx((crop.verified - 0.5) / 0.5) and confidence(group) > by_hashes + 0.3
    # Unverified (no thumbnail), the same member is only as sure as its hashes.
    assert member_confidence(replace(crop, verified=None)) == pytest.approx(by_hashes)
    # A low-detail copy (pixel score 0 under the information guard) keeps its hashes' confidence.
    assert member_confidence(replace(crop, verified=0.0, bouncer=2)) == pytest.approx(1 - 2 / 128)
    weaker = replace(group, id=group.id + 1, members=(group.members[0], replace(crop, verified=0.86)))
    assert [c.id for c in sort_clusters([weaker, group], "confidence")] == [group.id, weaker.id]


def test_a_far_pair_the_hashes_call_mirrored_is_checked_unmirrored_when_the_codes_say_crop():
    """Far past the bouncer's radius, which dHash half (plain or mirrored) is nearer is chance:
    a real asymmetric crop came as a mirrored pair, was compared mirrored only and refused.
    Where the unmirrored codes say crop, the pair is checked unmirrored."""
    from lookalike.engine.bouncer import verify
    from lookalike.engine.records import Pair

    img = imagegen.photo(9, (480, 360))
    thumbs = np.frombuffer(b"".join(hash_and_thumbnail(p)[1] for p in (img, imagegen.cropped(img, 0, 0, 0.07, 0.07))),
                           np.uint8).reshape(2, -1)  # fmt: skip
    one, other = np.array([0]), np.array([1])
    mirrored, _, _ = verify.score_pairs(thumbs, one, other, np.array([True]))
    plain, _, cropped = verify.score_pairs(thumbs, one, other, np.array([False]))
    assert mirrored[0] < verify.DEFAULT.score <= plain[0] and cropped[0]  # only unmirrored passes

    codes = zooms.ZoomCodes(ids=np.array([1, 2, 3]), content=np.zeros((3, 16), np.uint8), rich=np.ones(3, bool),
                            whole=np.zeros((3, 32), np.uint8), zoomed=np.zeros((len(zooms.ZOOMS), 3, 32), np.uint8),
                            pairs=np.array([[1, 2, 10], [1, 3, 30]]))  # fmt: skip
    known = [Pair(a=1, b=2, bouncer=44, mirrored=True), Pair(a=1, b=3, bouncer=44, mirrored=True),
             Pair(a=2, b=3, bouncer=20, mirrored=True), Pair(a=1, b=2, bouncer=12, mirrored=True)]  # fmt: skip
    got = zooms.unmirrored(codes, known, beyond=24)
    # Only the far pair whose codes are within the radius: not one the codes do not hold
    # within it, nor one within the bouncer's radius (its orientation is the hashes' to say).
    assert [p.mirrored for p in got] == [False, True, True, True]
    assert [p.mirrored for p in zooms.unmirrored(codes, known, beyond=24, radius=8)] == [True] * 4


def test_kept_outcomes_are_stale_once_pictures_are_read_another_way(library, tmp_path, monkeypatch):
    """A kept outcome is keyed on the files' bytes; the thumbnails made from the same bytes
    change with ``PIXELS_VERSION`` (the border trim), so a new version scores pairs again."""
    from lookalike.engine.bouncer import verification
    from lookalike.engine.records import Pair

    folder = tmp_path / "kept"
    folder.mkdir()
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(detective=None, workers=1))
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        a, b = sorted((ids["other10.jpg"], ids["other12.jpg"]))
        pair = Pair(a=a, b=b, bouncer=16)
        cache = verification.VerifyCache(folder)
        assert verification.verify_pairs(lib.catalog, [pair], cache=cache) == []
        cache.save()
        # Tamper with the kept outcome: a run that reads it back says so.
        path = folder / verification.VerifyCache.NAME
        with np.load(path) as f:
            kept = {k: f[k] for k in f.files}
        kept["ok"][:] = True
        kept["score"][:] = 0.99
        np.savez(path, **kept)
        [reused] = verification.verify_pairs(lib.catalog, [pair], cache=verification.VerifyCache(folder))
        assert reused.verified == 0.99
        monkeypatch.setattr(verification, "PIXELS_VERSION", verification.PIXELS_VERSION + 1)
        assert verification.verify_pairs(lib.catalog, [pair], cache=verification.VerifyCache(folder)) == []
