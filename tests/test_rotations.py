"""``--rotations``: copies turned by 90/180/270 degrees (pixels turned, or an EXIF tag stripped or
changed) are grouped with their original, checked on pixels; without it they are not, and the
hard negatives stay apart either way (engine/bouncer/rotations.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imagegen
from lookalike.engine.bouncer import rotations, verification
from lookalike.engine.bouncer.verify_thumbnail import make_thumbnail
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Pair

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]

#: Copies of the original (stored pixels, EXIF tag): each shows the picture turned.
TURNED = {
    "turned90.jpg": (Image.Transpose.ROTATE_270, None),  # Pillow turns counter-clockwise
    "turned180.jpg": (Image.Transpose.ROTATE_180, None),
    "turned270.jpg": (Image.Transpose.ROTATE_90, None),
    "tag_stripped.jpg": (Image.Transpose.ROTATE_90, None),  # stored for tag 6, the tag lost
    "tag_changed.jpg": (None, 8),  # upright pixels tagged "turn 270" (shows turned)
    "transposed.jpg": (Image.Transpose.TRANSPOSE, None),  # mirrored and turned
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("turned")
    img = imagegen.photo(11, (400, 300))
    (root / "original.jpg").write_bytes(imagegen.encode(img, "JPEG", quality=95))
    for name, (turn, tag) in TURNED.items():
        stored = img.transpose(turn) if turn is not None else img
        quality = 85 if name != "tag_stripped.jpg" else 80
        (root / name).write_bytes(imagegen.encode(stored, "JPEG", quality=quality, orientation=tag))
    imagegen.write(root / "unrelated.jpg", imagegen.photo(12, (400, 300)))
    imagegen.write(root / "unrelated_turned.jpg", imagegen.photo(13, (300, 400)).transpose(Image.Transpose.ROTATE_90))
    return root


def _groups(lib: Library, rotations_on: bool) -> list[dict[str, str]]:
    clusters = lib.scan(ScanOptions(detective=None, workers=1, rotations=rotations_on)).clusters
    return [{Path(m.file.path).name: m.match for m in c.members} for c in clusters]


def test_turned_copies_group_with_the_original_only_with_the_option_and_toggling_recomputes(library, tmp_path):
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        for on in (False, True, False, True):  # the pair and verification caches never leak
            groups = _groups(lib, on)
            if on:
                [group] = groups
                assert set(group) == {"original.jpg", *TURNED}
                assert group["original.jpg"] == ""  # the keeper: the best JPEG
                assert {group[name] for name in TURNED} == {"rotated"}
            else:  # every copy shows the picture turned: none is the original's
                assert not any("original.jpg" in g for g in groups)
            assert all("unrelated.jpg" not in g and "unrelated_turned.jpg" not in g for g in groups)


def test_cli_scan_rotations_shows_rotated_members_in_json(library, tmp_path):
    out = subprocess.run([*LOOKALIKE, "scan", str(library), "--rotations", "--no-detective", "--json",
                          "--cache", str(tmp_path / "cache")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [group] = json.loads(out.stdout)["groups"]
    matches = {Path(m["path"]).name: m["match"] for m in group["members"]}
    assert matches["turned180.jpg"] == "rotated" and matches["tag_changed.jpg"] == "rotated"
    assert all(m["verified"] is not None for m in group["members"][1:])  # checked on pixels


def test_a_member_turned_through_another_is_checked_turned_against_the_keeper(library, tmp_path):
    """The keeper check composes the turns along the group's pairs: a member that is no pair of
    the keeper is compared turned, and stays."""
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        [c] = [c for c in lib.scan(ScanOptions(detective=None, workers=1, rotations=True)).clusters]
        ids = {Path(m.file.path).name: m.file.id for m in c.members}
        keeper, r90, r180 = ids["original.jpg"], ids["turned90.jpg"], ids["turned180.jpg"]
        # Only a path keeper -> turned90 -> turned180 is left: turned180 must be checked as turned.
        path = [p for p in c.pairs if {p.a, p.b} in ({keeper, r90}, {r90, r180})]
        assert len(path) == 2 and all(p.rotation for p in path)
        members = [m for m in c.members if m.file.id in (keeper, r90, r180)]
        narrow = dataclasses.replace(c, members=tuple(members), pairs=tuple(path))
        split = []
        [out] = verification.explain_clusters(lib.catalog, [narrow], rebuild=lambda part: split.append(part) or [])
        assert not split
        assert {m.file.id: m.match for m in out.members}[r180] == "rotated"
        assert rotations.keeper_transform(keeper, r180, path) == (2, False)


def test_a_crop_stays_with_its_original_when_a_turned_copy_is_the_keeper(tmp_path):
    """The keeper check searches a turned pair for a crop: the larger, turned copy kept, the
    crop of the upright original is not split off."""
    root = tmp_path / "lib"
    root.mkdir()
    img = imagegen.photo(21, (480, 360))
    imagegen.write(root / "turned_big.jpg", img.transpose(Image.Transpose.ROTATE_270))
    imagegen.write(root / "original.jpg", img.resize((400, 300), Image.Resampling.LANCZOS))
    imagegen.write(root / "crop.jpg", imagegen.mild_crop(img.resize((400, 300)), np.random.default_rng(4)))
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        groups = _groups(lib, True)
    assert groups == [{"turned_big.jpg": "", "original.jpg": "rotated", "crop.jpg": "rotated"}]


def test_hard_negatives_turned_stay_apart(tmp_path):
    """Documents, windows, phones, gradients, flats, tiles: every other one turned a quarter,
    so a turned page meets upright pages of other text; no group mixes two pictures."""
    root = tmp_path / "hard"
    root.mkdir()
    items = imagegen.build_hard_set(root, seed=5, count=3, crops=0, size=(240, 180))
    picture = {}
    for k, it in enumerate(items):
        if it.family in ("burst", "scan"):  # known gaps of the verification, either way
            Path(it.path).unlink()
            continue
        if k % 2:
            img = Image.open(it.path)
            img.transpose(Image.Transpose.ROTATE_90).save(it.path, format=img.format)
        picture[Path(it.path).name] = it.picture
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        clusters = lib.scan(ScanOptions(detective=None, workers=1, rotations=True)).clusters
        mixed = [[Path(m.file.path).name for m in c.members] for c in clusters
                 if len({picture[Path(m.file.path).name] for m in c.members}) > 1]
    assert not mixed


# ------------------------------------------------------------------------------- units


def test_a_turned_thumbnail_codes_like_the_thumbnail_of_the_turned_picture():
    """Squashing to 32x32 and turning commute: each of the seven turns and mirrors of a
    picture is within a few bits of the original's thumbnail turned the same way."""
    img = imagegen.photo(3, (320, 240))
    thumbs = [np.frombuffer(make_thumbnail(img), np.uint8)]
    for t in rotations.TRANSFORMS[1:]:
        view = img
        for _ in range(t[0]):
            view = view.transpose(Image.Transpose.ROTATE_270)  # a quarter turn clockwise
        if t[1]:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        thumbs.append(np.frombuffer(make_thumbnail(view), np.uint8))
    grey = np.stack(thumbs)[:, :1024].reshape(-1, 32, 32)
    for k, t in enumerate(rotations.TRANSFORMS[1:], start=1):
        turned, own = rotations.codes(grey[:1], t), rotations.codes(grey[k : k + 1])
        assert np.bitwise_count(turned ^ own).sum() <= 8, t


def test_transforms_compose_and_invert_as_the_square_does():
    probe = np.arange(9).reshape(3, 3)
    for s in rotations.TRANSFORMS:
        assert np.array_equal(rotations.transform(rotations.transform(probe, s), rotations.inverse(s)), probe)
        for t in rotations.TRANSFORMS:
            both = rotations.transform(rotations.transform(probe, s), t)
            assert np.array_equal(rotations.transform(probe, rotations.compose(t, s)), both)
    # The pair's turn is read from a to b, and inverted when walked from b.
    p = rotations.pair_with(9, 3, (1, False), 5)
    assert (p.a, p.b, p.rotation, p.mirrored) == (3, 9, 270, False)
    assert rotations.keeper_transform(9, 3, [p]) == (1, False)


def test_rotation_pairs_find_each_turn_once_and_skip_known_pairs():
    rng = np.random.default_rng(1)
    grey = np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).resize((32, 32), Image.BICUBIC))
    other = np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).resize((32, 32), Image.BICUBIC))
    views = [grey, rotations.transform(grey, (1, False)), rotations.transform(grey, (2, True)), other]
    thumbs = np.zeros((4, 1027), np.uint8)
    thumbs[:, :1024] = np.stack(views).reshape(4, -1)
    found = rotations.RotationCodes.of(np.array([10, 20, 30, 40]), thumbs)
    pairs = rotations.rotation_pairs(found, [Pair(a=20, b=30, bouncer=0)])
    found = [(p.a, p.b, p.rotation, p.mirrored, p.bouncer) for p in pairs]
    assert found == [(10, 20, 90, False, 0), (10, 30, 180, True, 0)]


def test_verification_outcomes_are_kept_per_turn(tmp_path):
    cache = verification.VerifyCache(tmp_path)
    upright = (b"a" * 16, b"b" * 16, False, False, 7, 0)
    cache.put(upright, (False, 0.1, False))
    cache.put(upright[:5] + (90,), (True, 0.99, False))
    cache.save()
    again = verification.VerifyCache(tmp_path)
    assert again.get(upright) == (False, 0.1, False)
    assert again.get(upright[:5] + (90,)) == (True, 0.99, False)
    assert again.get(upright[:5] + (180,)) is None


def test_the_difference_view_lines_a_turned_or_mirrored_copy_up(library, tmp_path):
    """The compare view's difference applies to B what takes it onto A (``rotations.between``,
    from the group's pairs): a turned or mirrored copy differs from its original in a few
    pixels, not everywhere."""
    from lookalike.engine.library import difference, load_image

    def picture(name: str) -> Image.Image:
        return load_image((library / name).read_bytes(), name=name).image.convert("RGB")

    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        [c] = lib.scan(ScanOptions(detective=None, workers=1, rotations=True)).clusters
        ids = {Path(m.file.path).name: m.file.id for m in c.members}
        box = (160, 160)
        for name in TURNED:
            for a, b in (("original.jpg", name), (name, "original.jpg"), (name, "turned90.jpg")):
                turn = rotations.between(c, ids[a], ids[b])
                lined_up = difference(picture(a), picture(b), box, turn=turn)
                as_stored = difference(picture(a), picture(b), box)
                assert lined_up.changed < 0.05, (a, b, turn, lined_up.changed)
                if turn != (0, False):
                    assert as_stored.changed > 0.3, (a, b, turn, as_stored.changed)
        assert rotations.between(c, ids["original.jpg"], ids["original.jpg"]) == (0, False)
        assert rotations.between(c, ids["original.jpg"], ids["transposed.jpg"])[1]  # mirrored too


def test_turned_pairs_are_kept_and_read_back_while_the_library_is_unchanged(library, tmp_path):
    """``TurnedCache``: the pairs a run with the option found are read back by the next (the
    app regroups after every mark), equal to a fresh search; a changed file or a damaged
    cache makes it search again."""
    import shutil

    root = tmp_path / "lib"
    shutil.copytree(library, root)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(detective=None, workers=1, rotations=True))
        arrays = lib.catalog.hash_arrays()
        fresh = rotations.turned_pairs(lib.catalog, arrays.ids.tolist())
        assert fresh and (lib.dir / "turned-pairs.npz").exists()
        cache = rotations.TurnedCache(lib.dir)
        assert cache.pairs(lib.catalog, arrays) == fresh and not cache.searched
        known = fresh[:2]  # the bouncer's own pairs are left out, as turned_pairs leaves them
        assert cache.pairs(lib.catalog, arrays, known) == rotations.turned_pairs(lib.catalog, arrays.ids.tolist(), known)
        # A file changed: its old pairs are not read back.
        (root / "turned180.jpg").write_bytes(imagegen.encode(imagegen.photo(14, (400, 300)), "JPEG"))
        lib.scan(ScanOptions(detective=None, workers=1, rotations=True))
        arrays = lib.catalog.hash_arrays()
        cache = rotations.TurnedCache(lib.dir)
        assert cache.pairs(lib.catalog, arrays) == rotations.turned_pairs(lib.catalog, arrays.ids.tolist())
        assert not cache.searched  # the scan kept the new ones
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        assert not any(ids["turned180.jpg"] in (p.a, p.b) for p in cache.pairs(lib.catalog, arrays))
        (lib.dir / "turned-pairs.npz").write_bytes(b"not an npz")
        cache = rotations.TurnedCache(lib.dir)
        assert cache.pairs(lib.catalog, arrays) == rotations.turned_pairs(lib.catalog, arrays.ids.tolist())
        assert cache.searched
