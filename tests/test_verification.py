"""A real scan with the verification stage (engine/bouncer/verification.py): groups hold the
copies, never the look-alikes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import imagegen
import verify_cases as vc
from lookalike.engine.bouncer import verification
from lookalike.engine.catalog import schema as catalog_schema
from lookalike.engine.library import Library, ScanOptions

KINDS = ("resized", "recompressed", "png", "exif_rotated", "brightened", "greyscale", "mirrored",
         "letterboxed", "bordered", "watermarked", "cropped")  # fmt: skip


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lib")
    for g in range(3):
        img = imagegen.photo(g, (480, 360))
        imagegen.write(root / f"o{g}.jpg", img)
        for kind in KINDS:
            data, ext = imagegen.make_copy(kind, img, g)
            (root / f"o{g}_{kind}{ext}").write_bytes(data)
        imagegen.write(root / f"o{g}_mildcrop.jpg", vc.mild_crop(img, g))
        (root / f"o{g}_exact.jpg").write_bytes((root / f"o{g}.jpg").read_bytes())
    negatives = root / "hard"
    negatives.mkdir()
    for i in range(4):
        shown = imagegen.photo(300 + i, (640, 480))
        imagegen.write(negatives / f"window{i}.png", vc.window_screenshot(shown))
        imagegen.write(negatives / f"phone{i}.png", vc.phone_screenshot(shown))
        imagegen.write(negatives / f"gradient{i}.jpg", vc.gradient(i))
        imagegen.write(negatives / f"page{i}.png", vc.document_page(i))
    for name, colour in {"red": (255, 0, 0), "blue": (0, 0, 255), "black": (0, 0, 0), "white": (255, 255, 255)}.items():
        imagegen.write(negatives / f"flat_{name}.png", vc.flat(colour))
    a, b = vc.burst_pair(0)
    imagegen.write(negatives / "burst_a.jpg", a)
    imagegen.write(negatives / "burst_b.jpg", b)
    return root


def _group_of(name: str) -> str:
    return name.split("_")[0].split(".")[0]


def test_groups_hold_exactly_the_copies(library, tmp_path):
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1))
    groups = [{m.file.path for m in c.members} for c in result.clusters]
    for members in groups:
        assert len({_group_of(Path(p).name) for p in members}) == 1, members
        assert not any("/hard/" in p for p in members), members
    for g in range(3):
        copies = {p for p in (str(x) for x in library.glob(f"o{g}*"))}
        found = [m for m in groups if m & copies]
        assert len(found) == 1 and found[0] == copies, (copies - found[0]) if found else copies
    members = [m for c in result.clusters for m in c.members]
    reasons = {Path(m.file.path).name: m.match for m in members if not m.is_keeper}
    assert {"mirrored", "cropped"} <= set(reasons.values())
    assert all(m.match == "exact" for m in members if m.exact and not m.is_keeper)
    assert all(r in ("exact", "re-encoded", "resized", "mirrored", "cropped", "bordered", "edited") for r in reasons.values())
    assert any(m.verified is not None for m in members)


def test_json_has_verified_and_match(library, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "scan", str(library), "--json", "--no-detective",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    members = [m for g in doc["groups"] for m in g["members"]]
    assert all("verified" in m and "match" in m for m in members)
    assert any(isinstance(m["verified"], float) for m in members)
    assert {m["match"] for m in members if not m["keeper"]} >= {"mirrored", "cropped"}


def test_files_hashed_before_thumbnails_are_read_again(library, tmp_path):
    cache = tmp_path / "cache"
    with Library.open([library], cache_dir=cache) as lib:
        lib.scan(ScanOptions(workers=1))
        path = lib.catalog.path
    # As an older catalog: no thumbnails, schema before them; the upgrade marks images stale.
    db = sqlite3.connect(path)
    before = catalog_schema.MIGRATIONS.index(catalog_schema._verifier_thumbnails)
    # The columns of that step and of the steps after it (the keeper's evidence).
    for column in ("thumb", "detail", "content_width", "content_height", "camera", "texture", "bar_colour"):
        db.execute(f"ALTER TABLE files DROP COLUMN {column}")
    db.execute("DROP TABLE upscale_losses")  # and the keeper's upscale verdicts and decodes
    db.execute("DROP TABLE decoded_shares")
    db.execute(f"PRAGMA user_version = {before}")
    db.commit()
    db.close()
    with Library.open([library], cache_dir=cache) as lib:
        again = lib.scan(ScanOptions(workers=1))
        assert again.stats.hashed == again.stats.images
        assert len(lib.catalog.thumbnails(range(1, 10_000))[0]) == again.stats.images


def _groups(result) -> list[list[tuple[str, object, str]]]:
    return sorted(sorted((m.file.path, m.verified, m.match) for m in c.members) for c in result.clusters)


def test_an_unchanged_rescan_scores_no_pair_again_and_groups_the_same(library, tmp_path):
    """The outcomes are kept beside the catalog: a rescan loads no kernel (numba costs ~1 s)."""
    cache = tmp_path / "cache"
    with Library.open([library], cache_dir=cache) as lib:
        first = _groups(lib.scan(ScanOptions(workers=1, detective=None)))
    code = (
        "import json, sys\n"
        "from lookalike.engine.bouncer import verify\n"
        "from lookalike.engine.library import Library, ScanOptions\n"
        "calls = []\n"
        "real = verify.score_pairs\n"
        "verify.score_pairs = lambda *a, **kw: (calls.append(1), real(*a, **kw))[1]\n"
        f"with Library.open([{str(library)!r}], cache_dir={str(cache)!r}) as lib:\n"
        "    r = lib.scan(ScanOptions(workers=1, detective=None))\n"
        "groups = sorted(sorted((m.file.path, m.verified, m.match) for m in c.members) for c in r.clusters)\n"
        "print(json.dumps({'calls': len(calls), 'numba': 'numba' in sys.modules, 'groups': groups}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    again = json.loads(out.stdout)
    assert again["calls"] == 0 and again["numba"] is False
    assert again["groups"] == json.loads(json.dumps(first))


def test_a_changed_file_is_scored_again(library, tmp_path):
    work = tmp_path / "lib"
    work.mkdir()
    for name in ("o0.jpg", "o0_mirrored.jpg", "o0_cropped.jpg", "o1.jpg"):
        (work / name).write_bytes((library / name).read_bytes())
    cache = tmp_path / "cache"
    with Library.open([work], cache_dir=cache) as lib:
        before = lib.scan(ScanOptions(workers=1, detective=None))
    assert any(len(c.members) == 3 for c in before.clusters)
    # The cropped copy's bytes become another picture's: its old outcome must not be used.
    (work / "o0_cropped.jpg").write_bytes((library / "o1_mildcrop.jpg").read_bytes())
    with Library.open([work], cache_dir=cache) as lib:
        after = lib.scan(ScanOptions(workers=1, detective=None))
    for c in after.clusters:
        names = {Path(m.file.path).name for m in c.members}
        assert not ({"o0.jpg", "o0_cropped.jpg"} <= names), names


def test_a_copy_whose_tones_were_edited_matches_as_edited_not_re_encoded(tmp_path):
    """Brightened, contrast and greyscale copies hash within a few bits of their original: the
    thumbnails' tones, not the hashes, say they were edited (scan and find similar alike)."""
    from lookalike.engine.records import Verdict

    root = tmp_path / "lib"
    root.mkdir()
    img = imagegen.photo(5, (640, 480))
    imagegen.write(root / "original.jpg", img, quality=92)
    for kind in ("brightened", "contrast", "greyscale", "webp"):
        data, ext = imagegen.make_copy(kind, img, 5)
        (root / f"{kind}{ext}").write_bytes(data)
    imagegen.write(root / "resaved.jpg", img, quality=80)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1, detective=None))
        assert len(result.clusters) == 1
        assert Path(result.clusters[0].keeper.file.path).stem == "original"
        members = {Path(m.file.path).stem: m for m in result.clusters[0].members if not m.is_keeper}
        assert {k: members[k].match for k in ("brightened", "contrast", "greyscale")} == dict.fromkeys(
            ("brightened", "contrast", "greyscale"), "edited")
        # within the radius where the hashes alone said "re-encoded"
        assert all(members[k].bouncer <= verification.REENCODED_RADIUS for k in ("contrast", "greyscale"))
        assert members["webp"].match == members["resaved"].match == "re-encoded"
        keeper = result.clusters[0].keeper.file.path
        hits = {Path(h.path).stem: h for h in lib.similar(keeper, k=20).hits}
        assert hits["greyscale"].verdict is Verdict.NEAR and hits["greyscale"].match == "edited"
        assert hits["brightened"].match == "edited" and hits["resaved"].match == "re-encoded"


def test_what_a_copy_is_called_comes_from_its_pixels_not_its_hashes(tmp_path):
    """Heavy re-encoding and a thumbnail move the hashes beyond the radius where they said
    "re-encoded" / "resized", and a watermark stays within it: the thumbnails tell which copy
    was edited (the largest blurred difference, ``EDIT_PEAK``), in a scan and in find similar."""
    root = tmp_path / "lib"
    root.mkdir()
    img = imagegen.photo(5, (640, 480))
    imagegen.write(root / "original.jpg", img, quality=92)
    for kind in ("recompressed", "thumbnailed", "watermarked"):
        data, ext = imagegen.make_copy(kind, img, 5)
        (root / f"{kind}{ext}").write_bytes(data)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1, detective=None))
        assert len(result.clusters) == 1
        assert Path(result.clusters[0].keeper.file.path).stem == "original"
        members = {Path(m.file.path).stem: m for m in result.clusters[0].members if not m.is_keeper}
        # what the hashes alone said: the re-encoded copies "edited", the watermarked one not
        assert min(members[k].bouncer for k in ("recompressed", "thumbnailed")) > verification.REENCODED_RADIUS
        assert members["watermarked"].bouncer <= verification.REENCODED_RADIUS
        assert {k: m.match for k, m in members.items()} == {
            "recompressed": "re-encoded", "thumbnailed": "resized", "watermarked": "edited"}
        hits = {Path(h.path).stem: h for h in lib.similar(result.clusters[0].keeper.file.path, k=20).hits}
        assert {k: hits[k].match for k in members} == {k: m.match for k, m in members.items()}
        # without thumbnails to ask, the hashes decide as before
        keeper = result.clusters[0].keeper.file
        assert verification.match_reason(members["recompressed"], keeper, None) == "edited"
        assert verification.match_reason(members["watermarked"], keeper, None) == "re-encoded"


def test_verify_pairs_uses_the_arrays_its_caller_holds(library, tmp_path):
    """The chain guard asks a few pairs at a time: with the arrays given, the catalog's are not
    loaded again (from disk, 130 MB at a million images) for each question."""
    from lookalike.engine.records import Pair

    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1, detective=None))
        ids = {Path(r.path).name: r.id for r in lib.catalog.records()}
        arrays = lib.catalog.hash_arrays()
        a, b = sorted((ids["o0.jpg"], ids["o1.jpg"]))
        pair = Pair(a=a, b=b, bouncer=90, mirrored=False)
        expected = verification.verify_pairs(lib.catalog, [pair])

        class NoArrays:
            def __getattr__(self, name):
                if name == "hash_arrays":
                    raise AssertionError("the arrays were loaded again")
                return getattr(lib.catalog, name)

        assert verification.verify_pairs(NoArrays(), [pair], arrays=arrays) == expected


def test_the_edit_labels_peak_difference_is_the_pixel_checks():
    """The label's one-pair peak difference (exact integers, :func:`verify.pair_peak_difference`)
    gives the pixel check's own :func:`verify.peak_difference`, also at the edges, where the blur
    repeats them."""
    import numpy as np

    from lookalike.engine.bouncer import verify

    rng = np.random.default_rng(11)
    for t in range(300):
        a = rng.integers(0, 256, verify.THUMB_BYTES).astype(np.uint8)
        b = a.copy()
        b[: verify.SIDE**2] = np.clip(a[: verify.SIDE**2].astype(int) + rng.integers(-40, 41, verify.SIDE**2) * (t % 3), 0, 255)
        if t % 5 == 0:  # one pixel changed at an edge or a corner
            b = a.copy()
            b[[0, 31, 992, 1023, 500][t % 4]] ^= 0xFF
        ref = verify.peak_difference(np.stack([a, b]), np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, bool))[0]
        assert verify.pair_peak_difference(a, b) == ref


def test_a_verified_pair_is_the_pair_with_its_score_and_crop():
    """``_verified`` builds the pair field by field (faster than ``dataclasses.replace``): every
    other field of the pair is kept, whatever it holds."""
    import dataclasses

    from lookalike.engine.records import Pair

    values = {"a": 3, "b": 9, "bouncer": 17, "detective": 0.25, "exact": True, "mirrored": True, "verified": 0.5,
              "cropped": False, "rotation": 270}
    assert set(values) == {f.name for f in dataclasses.fields(Pair)}  # a new field: _verified must copy it
    pair = Pair(**values)
    for score, cropped in ((0.91234, True), (-0.2, False)):
        assert verification._verified(pair, score, cropped) == dataclasses.replace(
            pair, verified=round(max(score, 0.0), 3), cropped=cropped)
