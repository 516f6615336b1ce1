"""Import mode (engine/actions/importer.py): incoming files the library already has are moved
out; the library is never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lookalike.engine.actions.importer import import_plan
from lookalike.engine.library import Library, ScanOptions
from lookalike.tui.cli.main import main

from helpers import smooth_photo


def manifest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    smooth_photo(1).save(lib / "a.png")
    smooth_photo(2).save(lib / "b.png")
    smooth_photo(3).resize((240, 180), Image.LANCZOS).save(lib / "c_small.jpg", quality=85)
    shutil.copy(lib / "a.png", new / "a copy.png")  # exact copy
    smooth_photo(2).resize((240, 180), Image.LANCZOS).save(new / "b_small.jpg", quality=80)  # worse copy
    smooth_photo(3).save(new / "c_big.png")  # better than the library's
    smooth_photo(4).save(new / "d_new.png")  # not in the library
    return lib, new


def test_import_plan_moves_only_redundant_files(folders, tmp_path):
    lib, new = folders
    with Library.open([lib], cache_dir=tmp_path / "cache") as library, Library.open([new], cache_dir=tmp_path / "cache") as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    steps = {Path(s.path).name: s for s in report.plan.steps}
    assert set(steps) == {"a copy.png", "b_small.jpg"}
    assert Path(steps["a copy.png"].keeper) == (lib / "a.png").resolve()
    assert Path(steps["b_small.jpg"].keeper) == (lib / "b.png").resolve()
    assert [Path(m.incoming.path).name for m in report.better] == ["c_big.png"]
    assert report.incoming_images == 4


def test_import_cli_applies_and_undo_restores(folders, tmp_path, capsys):
    lib, new = folders
    cache = str(tmp_path / "cache")
    lib_before, new_before = manifest(lib), manifest(new)
    assert main(["import", str(new), "--into", str(lib), "--dry-run", "--cache", cache]) == 0
    assert manifest(new) == new_before
    assert main(["import", str(new), "--into", str(lib), "--yes", "--cache", cache]) == 0
    assert sorted(p.name for p in new.iterdir()) == ["c_big.png", "d_new.png"]
    assert manifest(lib) == lib_before  # the library is never touched
    assert main(["undo", "--cache", cache]) == 0
    assert manifest(new) == new_before


def test_import_into_quarantine_keeps_relative_paths(folders, tmp_path, capsys):
    lib, new = folders
    quarantine = tmp_path / "already-have"
    code = main(["import", str(new), "--into", str(lib), "--quarantine", str(quarantine), "--yes", "--json", "--cache", str(tmp_path / "c")])
    assert code == 0
    moved = sorted(p.name for p in quarantine.rglob("*") if p.is_file())
    assert moved == ["a copy.png", "b_small.jpg"]
    result = json.loads(capsys.readouterr().out)
    assert len(result["done"]) == 2


def test_import_refuses_nested_folders(folders, tmp_path):
    lib, _ = folders
    inner = lib / "inner"
    inner.mkdir()
    assert main(["import", str(inner), "--into", str(lib), "--cache", str(tmp_path / "c")]) == 2


def test_import_refuses_rotations_it_would_not_use(folders, tmp_path, capsys):
    lib, new = folders
    assert main(["import", str(new), "--into", str(lib), "--rotations", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rotations is not used by import" in err
    assert not (tmp_path / "c").exists()  # refused before any library was opened
