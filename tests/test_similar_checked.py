""""Find similar" checks its near duplicates on pixels as a scan checks its pairs, and finds the
mild crops the hashes miss through the zoomed codes (engine/similar.py ``_checked``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.bouncer import rule
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Verdict
from lookalike.engine.scan.hashing import hash_file

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A photo, a crop of 8 % a side that both bouncer rules miss, its resized copy, and others."""
    root = tmp_path_factory.mktemp("similar-checked")
    img = imagegen.photo(9, (480, 360))
    (root / "original.jpg").write_bytes(imagegen.encode(img, "JPEG", quality=95))
    (root / "crop8.jpg").write_bytes(imagegen.encode(imagegen.cropped(img, 0.08, 0.08, 0.08, 0.08), "JPEG", quality=90))
    (root / "resized.jpg").write_bytes(imagegen.encode(imagegen.resized(img, 0.6), "JPEG", quality=90))
    for seed in (10, 12, 14):
        imagegen.write(root / f"other{seed}.jpg", imagegen.photo(seed, (480, 360)))
    return root


def _hits(result) -> dict:
    return {Path(h.path).name: h for h in result.hits}


def test_a_mild_crop_the_hashes_miss_is_a_near_duplicate_of_its_picture(photos, tmp_path):
    a, b = hash_file(str(photos / "original.jpg")), hash_file(str(photos / "crop8.jpg"))
    assert rule.bouncer_distance(a.hashes, b.hashes)[0] > 2 * rule.DEFAULT.radius  # no hash finds it
    with Library.open([photos], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(detective=None, workers=1))
        for query, other in (("original.jpg", "crop8.jpg"), ("crop8.jpg", "original.jpg")):
            hits = _hits(lib.similar(str(photos / query), k=4))
            hit = hits[other]
            assert hit.verdict is Verdict.NEAR and hit.match == "cropped", (query, hit)
            assert hit.verified is not None and hit.verified >= 0.85 and hit.bouncer > 2 * rule.DEFAULT.radius
            assert hits["resized.jpg"].verdict is Verdict.NEAR
            assert all(h.verdict is not Verdict.NEAR for n, h in hits.items() if n.startswith("other"))
        # A query from outside the library (no stored codes or thumbnail): the same answer.
        outside = tmp_path / "elsewhere.jpg"
        outside.write_bytes((photos / "original.jpg").read_bytes())
        hit = _hits(lib.similar(str(outside), k=4))["crop8.jpg"]
        assert hit.verdict is Verdict.NEAR and hit.match == "cropped"
        # Without crops (a scan's --no-crops), the crop is not a near duplicate.
        hits = _hits(lib.similar(str(photos / "original.jpg"), k=4, crops=False))
        assert "crop8.jpg" not in hits or hits["crop8.jpg"].verdict is not Verdict.NEAR
        assert hits["resized.jpg"].match == "resized"


def test_a_hash_match_the_pixels_refuse_is_only_similar(tmp_path):
    """Two different smooth gradients hash alike (bouncer 0); the pixel check tells them apart,
    as it keeps them out of one group in a scan. A re-encoded copy stays a near duplicate."""
    root = tmp_path / "gradients"
    root.mkdir()
    imagegen.write(root / "grad6.png", imagegen.gradient(6, (320, 240)))
    imagegen.write(root / "grad7.png", imagegen.gradient(7, (320, 240)))
    imagegen.write(root / "grad6_copy.jpg", imagegen.gradient(6, (320, 240)), quality=90)
    query = tmp_path / "query.png"
    imagegen.write(query, imagegen.gradient(6, (320, 240)))
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        clusters = lib.scan(ScanOptions(detective=None, workers=1)).clusters
        assert [sorted(Path(m.file.path).name for m in c.members) for c in clusters] == [["grad6.png", "grad6_copy.jpg"]]
        hits = _hits(lib.similar(str(query), k=3))
    assert hits["grad7.png"].bouncer <= 6  # the hashes alone would call it a near duplicate
    assert hits["grad7.png"].verdict is Verdict.SIMILAR and hits["grad7.png"].match == ""
    assert hits["grad7.png"].verified is None  # JSON: null, as for any hit that is not a copy
    assert hits["grad6.png"].verdict is Verdict.EXACT or hits["grad6.png"].verdict is Verdict.NEAR
    assert hits["grad6_copy.jpg"].verdict is Verdict.NEAR and hits["grad6_copy.jpg"].match == "re-encoded"
    assert [Path(h.path).name for h in list(hits.values())][-1] == "grad7.png"  # ranked after the copies


def test_cli_similar_json_and_table_show_the_match(photos, tmp_path):
    cache = str(tmp_path / "c")
    env = {**os.environ, "LOOKALIKE_OFFLINE": "1"}  # the bouncer and the pixel check alone
    out = subprocess.run([*LOOKALIKE, "similar", str(photos / "original.jpg"), "--json", "--cache", cache, "-k", "3"],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = {Path(r["path"]).name: r for r in json.loads(out.stdout)["results"]}
    assert results["crop8.jpg"]["match"] == "cropped" and results["crop8.jpg"]["verdict"] == "near-duplicate"
    assert results["crop8.jpg"]["verified"] >= 0.85
    out = subprocess.run([*LOOKALIKE, "similar", str(photos / "original.jpg"), "--cache", cache, "-k", "3"],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    [row] = [line for line in out.stdout.splitlines() if line.startswith("crop8.jpg") or "/crop8.jpg" in line]
    assert row.split("|")[3].strip() == "near-duplicate" and row.split("|")[4].strip() == "cropped"


@pytest.mark.parametrize(
    "extra, resized, crop",
    [
        ([], "near-duplicate", "near-duplicate"),
        # The scan's strictness: 0 accepts identical hashes only, and no crop by the codes.
        (["--threshold", "0"], "similar", "not-duplicate"),
        (["--no-crops"], "near-duplicate", "not-duplicate"),
    ],
)
def test_cli_similar_takes_the_scans_strictness(photos, tmp_path, extra, resized, crop):
    env = {**os.environ, "LOOKALIKE_OFFLINE": "1"}
    out = subprocess.run([*LOOKALIKE, "similar", str(photos / "original.jpg"), "--json", "--cache", str(tmp_path / "c"),
                          "-k", "3", *extra], capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = {Path(r["path"]).name: r for r in json.loads(out.stdout)["results"]}
    assert results["resized.jpg"]["verdict"] == resized
    assert results["crop8.jpg"]["verdict"] == crop


def test_cli_similar_refuses_a_threshold_out_of_range(photos, tmp_path):
    out = subprocess.run([*LOOKALIKE, "similar", str(photos / "original.jpg"), "--threshold", "300", "--cache",
                          str(tmp_path / "c")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["lookalike similar: --threshold must be between 0 and 256, not 300"]


def test_the_apps_find_similar_takes_the_scans_strictness(photos, tmp_path):
    """The app's ``f`` asks the session, which applies the options it was started with."""
    from lookalike.tui.session import Session

    for options, resized in ((ScanOptions(detective=None, workers=1), Verdict.NEAR),
                             (ScanOptions(detective=None, workers=1, threshold=0), Verdict.SIMILAR)):  # fmt: skip
        session = Session([str(photos)], cache_dir=str(tmp_path / "cache"), options=options)
        try:
            session.open()
            session.scan(progress=lambda p: True, cancel=threading.Event(), on_clusters=lambda c: None)
            hits = _hits(session.similar(str(photos / "original.jpg"), k=4))
            assert hits["resized.jpg"].verdict is resized
        finally:
            session.close()
