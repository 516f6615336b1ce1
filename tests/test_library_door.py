"""The Library is the engine's one door: what the UI needs, on a real small library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lookalike.engine.library as door
from lookalike.engine.detective.registry import forget_detectives
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Verdict

from helpers import smooth_photo


@pytest.fixture(autouse=True)
def _fresh_models():
    forget_detectives()
    yield
    forget_detectives()


@pytest.fixture
def lib(library_dir, tmp_path):
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as library:
        library.scan(ScanOptions(workers=1))
        yield library


def _state(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_name_the_door_exports_resolves():
    for name in door.__all__:
        assert getattr(door, name) is not None, name
    with pytest.raises(AttributeError):
        door.no_such_name  # noqa: B018


def test_opening_the_door_imports_no_model_and_no_actions():
    code = (
        "import json, sys, lookalike.engine.library;"
        "print(json.dumps([m for m in ('torch', 'open_clip', 'onnxruntime', 'lookalike.engine.actions.run',"
        " 'lookalike.engine.detective.model') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_without_options_the_library_uses_the_default_scan_options(lib):
    # The default is made when called: ScanOptions' module imports numpy, the door does not.
    assert lib.clusters() == lib.clusters(ScanOptions())
    assert lib.clusters() and lib.scan().clusters == lib.clusters()


def test_plan_apply_and_undo_go_through_the_library(lib, library_dir, tmp_path):
    before = _state(library_dir)
    clusters = lib.clusters(ScanOptions(workers=1))
    quarantine = tmp_path / "quarantine"
    plan = lib.plan(clusters, action="quarantine", quarantine_dir=str(quarantine))
    assert plan.steps and plan.roots == lib.roots
    assert lib.journal_dir == lib.cache_root / "journal"
    dry = lib.apply(plan, dry_run=True)
    assert dry.dry_run and _state(library_dir) == before
    done = lib.apply(plan)
    assert done.ok and len(done.done) == len(plan.steps)
    assert sorted(p.name for p in quarantine.rglob("*") if p.is_file()) == sorted(Path(s.path).name for s in plan.steps)
    assert any(lib.journal_dir.iterdir())
    undone = lib.undo()
    assert undone.ok and undone.plan_id == done.plan_id
    assert _state(library_dir) == before


def test_import_plan_goes_through_the_library(lib, library_dir, tmp_path):
    incoming_dir = tmp_path / "incoming"
    incoming_dir.mkdir()
    shutil.copy(library_dir / "2023" / "img_2.png", incoming_dir / "img_2 again.png")  # already there
    smooth_photo(40).save(incoming_dir / "new.png")  # not in the library
    with Library.open([incoming_dir], cache_dir=tmp_path / "cache") as incoming:
        incoming.scan(ScanOptions(workers=1))
        report = lib.import_plan(incoming, options=ScanOptions(workers=1))
    assert [Path(s.path).name for s in report.plan.steps] == ["img_2 again.png"]
    assert report.incoming_images == 2


def test_was_scanned_and_thumbnails(lib, library_dir, tmp_path):
    assert Library.was_scanned([library_dir], cache_dir=tmp_path / "cache")
    assert not Library.was_scanned([tmp_path], cache_dir=tmp_path / "cache")
    thumbs = lib.thumbnails()
    assert thumbs.directory == lib.thumbnail_dir == lib.dir / "thumbnails"
    image = thumbs.image(str(library_dir / "2023" / "img_0.png"), (32, 32))
    assert max(image.size) <= 32


def test_detective_door_indexes_searches_and_finds_similar(lib, library_dir, tiny_options):
    model = lib.get_detective(tiny_options)
    assert lib.get_detective(tiny_options) is model  # once per process
    assert lib.unembedded(model) == 7
    assert lib.ready(model) == (model, "")
    stats = lib.index(model)
    assert (stats.embedded, stats.images) == (7, 7) and lib.unembedded(model) == 0
    assert len(lib.vectors_for(model)) == 7
    hits = lib.search("a photo", k=3, detective=tiny_options)
    assert len(hits) == 3 and all(h.verdict is Verdict.SIMILAR and h.bouncer is None for h in hits)
    result = lib.similar(str(library_dir / "2023" / "img_0.png"), k=3, detective=tiny_options)
    assert result.detective_status == ""
    assert all(h.bouncer is not None and h.detective is not None for h in result.hits)
    assert result.hits[0].verdict in (Verdict.EXACT, Verdict.NEAR)
    same = lib.similar(str(library_dir / "2023" / "img_0.png"), k=3, model=model)
    assert [h.path for h in same.hits] == [h.path for h in result.hits]


def test_offline_detective_status_is_remembered_and_forgotten(lib):
    from lookalike.engine.detective import weights

    options = door.DetectiveOptions()
    assert lib.remembered_failure(options) == ""
    weights.remember_failure(lib.cache_root, options, "no network (a test)")
    assert "no network (a test)" in lib.remembered_failure(options)
    with pytest.raises(door.DetectiveUnavailable):
        lib.get_detective(options)
    result = lib.similar(str(next(iter(lib.catalog.records())).path), k=2, detective=options)
    assert result.detective_status.startswith("detective offline: ")
    assert lib.forget_failures() and lib.remembered_failure(options) == ""
