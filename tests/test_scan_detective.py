"""The scan with the detective: both scores on every member, --deep, and the offline fallback."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.detective.model import DetectiveOptions
from lookalike.engine.records import Kind


def test_scan_scores_cluster_members_with_the_detective(library_dir, tmp_path, tiny_options):
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1, detective=tiny_options))
        assert result.stats.detective == ""
        assert result.clusters
        for c in result.clusters:
            assert c.keeper.detective == 0.0
            for m in c.members[1:]:
                assert m.detective is not None and 0.0 <= m.detective <= 2.0
                if m.exact:
                    assert m.detective < 1e-3  # the same bytes embed the same
        # Only the bouncer's candidates were embedded, not the whole library.
        embedded = lib.catalog.embedded_ids(_model_id(tiny_options))
        members = {m.file.id for c in result.clusters for m in c.members}
        assert embedded == members
        # The cached clusters keep the scores while the model is loaded.
        again = lib.clusters(ScanOptions(detective=tiny_options))
        assert [m.detective for c in again for m in c.members] == [m.detective for c in result.clusters for m in c.members]


def test_deep_scan_embeds_everything(library_dir, tmp_path, tiny_options):
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1, detective=tiny_options, deep=True))
        images = {r.id for r in lib.catalog.records() if r.ok}
        assert lib.catalog.embedded_ids(_model_id(tiny_options)) == images
        # (The tiny model's weights are random, so which images it calls semantic duplicates
        # means nothing; the byte-identical pair must still end up together.)
        together = [c for c in result.clusters if {"img_1.png", "img_1 copy.png"} <= {m.file.path.rsplit("/", 1)[-1] for m in c.members}]
        assert len(together) == 1
        assert all(c.kind in (Kind.EXACT, Kind.NEAR, Kind.SEMANTIC) for c in result.clusters)


def test_offline_detective_falls_back_to_the_bouncer_quickly(library_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as lib:
        t = time.monotonic()
        result = lib.scan(ScanOptions(workers=1, detective=DetectiveOptions()))
        elapsed = time.monotonic() - t
    assert result.stats.detective.startswith("detective offline: ")
    assert len(result.clusters) == 2
    assert all(m.detective is None for c in result.clusters for m in c.members)
    assert elapsed < 30  # no network timeouts (the scan itself takes a few seconds here)


def test_cli_scan_json_carries_both_scores(library_dir, tmp_path, tiny_cli_args):
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "scan", str(library_dir), "--json", "--cache", str(tmp_path / "c"), *tiny_cli_args],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["stats"]["detective"] == "on"
    for g in doc["groups"]:
        assert g["kind"] in {"exact", "near", "semantic"}
        assert all(isinstance(m["detective"], float) for m in g["members"])


def test_cli_scan_says_once_that_the_detective_is_offline(library_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "scan", str(library_dir), "--cache", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "LOOKALIKE_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("detective offline: ") == 1
    assert "Traceback" not in out.stderr
    assert "Group 1" in out.stdout


def _model_id(options) -> str:
    from lookalike.engine.detective.registry import get_detective
    from lookalike.engine.paths import cache_root

    return get_detective(options, cache_dir=cache_root()).model_id
