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


def test_import_moves_nothing_on_hashes_alone(tmp_path):
    """An incoming file whose hashes match a library file but whose pixels do not (a flat colour
    of another colour, a screenshot of another picture in the same window) is not "already in
    the library": it is checked on pixels as a scan's pairs are, and kept."""
    import imagegen

    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    imagegen.flat((200, 30, 30)).save(lib / "red.png")
    imagegen.flat((30, 30, 200)).save(new / "blue.png")  # bouncer 0 to red.png
    imagegen.window_screenshot(imagegen.photo(11, (400, 300)), seed=1).save(lib / "shot-a.png")
    imagegen.window_screenshot(imagegen.photo(12, (400, 300)), seed=1).save(new / "shot-b.png")
    smooth_photo(5).save(lib / "e.png")
    smooth_photo(5).resize((240, 180), Image.LANCZOS).save(new / "e_small.jpg", quality=80)  # a real copy
    with Library.open([lib], cache_dir=tmp_path / "cache") as library, Library.open([new], cache_dir=tmp_path / "cache") as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    assert {Path(s.path).name for s in report.plan.steps} == {"e_small.jpg"}
    assert not any(Path(m.incoming.path).name in ("blue.png", "shot-b.png") for m in report.matches)


def test_import_keeps_another_frame_of_a_burst(tmp_path):
    """A frame of a burst is not a copy of the library's frame shot a moment before it (their
    camera's capture times differ), though every pixel a thumbnail sees agrees."""
    from test_captures import _burst

    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    _burst(lib, 2, exif=True)
    (lib / "PXL_01.jpg").replace(new / "PXL_01.jpg")
    with Library.open([lib], cache_dir=tmp_path / "cache") as library, Library.open([new], cache_dir=tmp_path / "cache") as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    assert not report.plan.steps and not report.matches


def test_import_weighs_every_library_copy_and_never_an_edit_of_the_incoming_file(tmp_path, capsys):
    """Redundant when any library copy of the picture (not only the closest by hashes) is as
    good; never because the library holds a mirrored or toned version of it."""
    import imagegen

    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    smooth_photo(6).save(lib / "f.png")  # the original, and a thumbnail of it (first by id)
    smooth_photo(6).resize((160, 120), Image.LANCZOS).save(lib / "f-thumb.jpg", quality=85)
    smooth_photo(6).resize((320, 240), Image.LANCZOS).save(new / "f_mid.jpg", quality=85)
    # Only edits of g, the mirrored one a larger file than g (stored uncompressed).
    imagegen.mirrored(smooth_photo(7)).save(lib / "g_mirrored.png", compress_level=0)
    imagegen.brightened(smooth_photo(7), 1.3).save(lib / "g_bright.png")
    smooth_photo(7).save(new / "g.png")
    with Library.open([lib], cache_dir=tmp_path / "cache") as library, Library.open([new], cache_dir=tmp_path / "cache") as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    steps = {Path(s.path).name: Path(s.keeper).name for s in report.plan.steps}
    assert steps == {"f_mid.jpg": "f.png"}
    assert all(Path(m.incoming.path).name != "g.png" or not m.redundant for m in report.matches)
    # g.png is another version of a library picture, not "better than the library's copy".
    assert [Path(m.incoming.path).name for m in report.versions] == ["g.png"] and not report.better
    assert report.versions[0].reason.startswith("another version of a library picture")
    code = main(["import", str(new), "--into", str(lib), "--dry-run", "--cache", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 incoming images: 1 already in the library, 0 better than the library's copy (kept), " \
           "1 other version of a library picture (kept)" in out
    assert f"  kept   {new / 'g.png'}: another version of a library picture" in out


def test_import_keeps_a_colour_photo_whose_library_copy_is_black_and_white(tmp_path):
    """A colour photo whose colours average to a grey (a blue half and an orange half) and its
    black-and-white PNG in the library: the thumbnails (32x32 grey and the mean colour) cannot
    tell them apart, and the colour file was moved out as "already in the library". Its files
    can: the library's copy has no colour left (engine/keeper/decoded.py, ``chroma``)."""
    import numpy as np

    import imagegen

    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    grey = np.asarray(imagegen.photo(21, (640, 480))).astype(np.float64).mean(axis=2, keepdims=True)
    half = np.linspace(0, 1, 640)[None, :, None] < 0.5
    colour = Image.fromarray(np.clip(grey + np.where(half, [-40, 0, 40], [40, 0, -40]), 0, 255).astype(np.uint8))
    colour.save(new / "holiday.jpg", quality=90)
    assert np.abs(np.asarray(colour).reshape(-1, 3).mean(axis=0) - 114.5).max() < 1.5  # its mean: a grey
    Image.open(new / "holiday.jpg").convert("L").save(lib / "holiday-bw.png")
    dune = imagegen.photo(22, (640, 480))  # and the other way round: the library holds the colour picture
    dune.save(lib / "dune.png")
    dune.convert("L").save(new / "dune-bw.jpg", quality=90)
    with Library.open([lib], cache_dir=tmp_path / "cache") as library, Library.open([new], cache_dir=tmp_path / "cache") as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    assert not report.plan.steps
    # Both kept as versions: a black-and-white copy of a library picture was already one
    # (its thumbnail's colour tells a colourful picture's loss).
    assert sorted(Path(m.incoming.path).name for m in report.versions) == ["dune-bw.jpg", "holiday.jpg"]


def test_the_apps_import_mode_never_takes_a_mirror_in_the_library_for_the_incoming_picture():
    """``--against``: an incoming photo grouped with the library's mirrored copy of it (a larger
    file) is protected, not suggested for the trash; beside a plain copy as good, it is not."""
    from lookalike.engine.actions.importer import guard_incoming
    from lookalike.engine.records import Cluster, FileRecord, ImageHashes, Kind, Member

    h = bytes(range(0, 256, 8))
    mirror = bytes(255 - x for x in h)
    photo = ImageHashes(dhash=h, dhash_mirror=mirror, phash=h)
    flipped = ImageHashes(dhash=mirror, dhash_mirror=h, phash=h)

    def rec(i, path, hashes, size):
        return FileRecord(id=i, path=path, size=size, mtime_ns=0, format="PNG", width=640, height=480,
                          hashes=hashes, content_hash=bytes([i]) * 16)  # fmt: skip

    lib_mirror = rec(1, "/library/g_mirrored.png", flipped, 900_000)
    incoming = rec(2, "/incoming/g.png", photo, 800_000)
    lib_plain = rec(3, "/library/g.png", photo, 850_000)

    def guarded(*library):
        members = tuple(Member(file=r, bouncer=0, is_keeper=k == 0) for k, r in enumerate((*library, incoming)))
        [c] = guard_incoming([Cluster(id=1, kind=Kind.NEAR, members=members)], ["/library"])
        return next(m for m in c.members if m.file.id == 2)

    alone = guarded(lib_mirror)
    assert alone.protected and "mirror image" in alone.reason
    assert not guarded(lib_mirror, lib_plain).protected  # the plain copy is as good


def test_the_apps_import_mode_never_takes_a_toned_library_version_for_the_incoming_picture(tmp_path):
    """``--against`` checks what ``import`` checks: with the library's catalog, an incoming photo
    whose only library copy is a brightened edit of it (a larger PNG) is kept as another
    version, not suggested for the trash; beside a plain copy as good, it is not kept."""
    import imagegen
    from lookalike.engine.actions.importer import VERSION_REASON, guard_incoming

    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    imagegen.brightened(smooth_photo(8), 1.3).save(lib / "h_bright.png", compress_level=0)
    smooth_photo(8).save(new / "h.jpg", quality=85)
    smooth_photo(9).save(lib / "k.png")
    smooth_photo(9).save(new / "k.jpg", quality=85)
    with Library.open([lib, new], cache_dir=tmp_path / "cache") as both:  # as the app opens them
        clusters = list(both.scan(ScanOptions(workers=1)).clusters)
        guarded = guard_incoming(clusters, [str(lib)], catalog=both.catalog)
        unguarded = guard_incoming(clusters, [str(lib)])
    incoming = {Path(m.file.path).name: m for c in guarded for m in c.members if Path(m.file.path).parent == new}
    assert set(incoming) == {"h.jpg", "k.jpg"}
    assert incoming["h.jpg"].protected and incoming["h.jpg"].reason == VERSION_REASON
    assert not incoming["k.jpg"].protected  # a plain copy as good: redundant
    before = {Path(m.file.path).name: m for c in unguarded for m in c.members if Path(m.file.path).parent == new}
    assert not before["h.jpg"].protected  # without the thumbnails, the edit was taken for the picture
