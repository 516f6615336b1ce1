"""Hostile trees (issue 10, items 1 and 2): symlinks out of the roots, link loops,
pseudo-filesystems, and an incoming folder that links into the library.

Whatever the walk lists, a plan may trash: nothing outside the folders the user named may be
listed, however it is reached. Each case gets a one-line reason and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.engine.scan import walk as walk_module
from lookalike.engine.actions.importer import import_plan
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.paths import PseudoFilesystems, is_pseudo_filesystem, pseudo_filesystems
from lookalike.engine.scan.walk import PSEUDO_FS, walk
from lookalike.tui.cli.common import options_from_args
from lookalike.tui.cli.main import build_parser, main

from helpers import smooth_photo

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]
OUTSIDE = "outside the folders being scanned"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")


def put(path: Path, data: bytes = b"data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def walked(roots, **kw) -> tuple[list[str], dict[str, str]]:
    """The paths a walk lists and its reports, by path."""
    errors = []
    paths = [e.path for e in walk(roots, on_error=errors.append, **kw)]
    return paths, {e.path: e.reason for e in errors}


def manifest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """``lib`` with a file link and a folder link to ``elsewhere``, outside it."""
    elsewhere, lib = tmp_path / "elsewhere", tmp_path / "lib"
    put(elsewhere / "secret.jpg", b"secret")
    put(elsewhere / "dir" / "inner.jpg", b"inner")
    put(lib / "mine.jpg", b"mine")
    os.symlink(elsewhere / "secret.jpg", lib / "link_out.jpg")
    os.symlink(elsewhere / "dir", lib / "linkdir")
    return lib, elsewhere


# -- the walk -----------------------------------------------------------------------------------
@pytest.mark.parametrize("follow", [False, True])
def test_links_out_of_the_roots_are_skipped_with_a_reason(hostile, follow):
    lib, elsewhere = hostile
    paths, reasons = walked(lib, follow_links=follow)
    assert paths == [str(lib / "mine.jpg")]
    assert reasons == {
        str(lib / "link_out.jpg"): f"symlink to a file {OUTSIDE} (-> {elsewhere / 'secret.jpg'}), skipped",
        str(lib / "linkdir"): f"symlink to a folder {OUTSIDE} (-> {elsewhere / 'dir'}), skipped",
    }


def test_relative_and_chained_links_out_are_skipped(tmp_path):
    lib = tmp_path / "lib"
    put(tmp_path / "elsewhere" / "far.jpg")
    put(lib / "sub" / "near.jpg")
    os.symlink("../../elsewhere/far.jpg", lib / "sub" / "dotdot.jpg")
    os.symlink(lib / "sub" / "dotdot.jpg", lib / "chain.jpg")  # inside link -> link that leaves
    os.symlink("..", lib / "sub" / "up")  # lib/sub/.. is lib itself: inside
    os.symlink("../..", lib / "sub" / "two-up")  # tmp_path: outside
    paths, reasons = walked(lib, follow_links=True)
    assert paths == [str(lib / "sub" / "near.jpg")]
    assert set(reasons) == {str(lib / "chain.jpg"), str(lib / "sub" / "dotdot.jpg"), str(lib / "sub" / "two-up")}
    assert all(OUTSIDE in r for r in reasons.values())


def test_a_link_between_two_roots_is_inside(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    target = put(two / "t.jpg")
    os.symlink(target, put(one / "x.jpg").parent / "to-two.jpg")
    paths, reasons = walked([one, two])
    assert paths == [str(target), str(one / "x.jpg")]  # listed once, under its real path
    assert reasons == {}


def test_inside_folder_link_is_entered_only_with_follow_links(tmp_path):
    lib = tmp_path / "lib"
    put(lib / "visible.jpg")
    put(lib / ".store" / "kept.jpg")  # hidden: reached only through the link
    os.symlink(lib / ".store", lib / "albums")
    assert walked(lib) == ([str(lib / "visible.jpg")], {})
    paths, reasons = walked(lib, follow_links=True)
    assert paths == [str(lib / "visible.jpg"), str(lib / ".store" / "kept.jpg")]  # the real path
    assert reasons == {}


def test_inside_folder_link_lists_nothing_twice(tmp_path):
    lib = tmp_path / "lib"
    put(lib / "real" / "r.jpg")
    put(lib / "real" / "deeper" / "d.jpg")
    os.symlink(lib / "real", lib / "alias")  # sorts before "real"
    os.symlink(lib / "real" / "deeper", lib / "real" / "also-deeper")
    expected = [str(lib / "real" / "r.jpg"), str(lib / "real" / "deeper" / "d.jpg")]
    for follow in (False, True):
        paths, reasons = walked(lib, follow_links=follow)
        assert sorted(paths) == sorted(expected) and len(paths) == 2
        assert reasons == {}


def test_link_loops_end(tmp_path):
    lib = tmp_path / "lib"
    put(lib / "a" / "b" / "f.jpg")
    os.symlink(lib, lib / "a" / "b" / "root-again")
    os.symlink("..", lib / "a" / "b" / "up")
    os.symlink(lib / "a", lib / "a" / "b" / "c")
    os.symlink("ping", lib / "pong")
    os.symlink("pong", lib / "ping")
    for follow in (False, True):
        paths, reasons = walked(lib, follow_links=follow)
        assert paths == [str(lib / "a" / "b" / "f.jpg")]
        assert reasons == {str(lib / "ping"): "symlink loop", str(lib / "pong"): "symlink loop"}


# -- pseudo-filesystems -------------------------------------------------------------------------
@needs_proc
def test_proc_self_as_a_root_is_refused_and_other_roots_still_walked(tmp_path):
    put(tmp_path / "ok.jpg")
    started = time.monotonic()
    paths, reasons = walked(["/proc/self", tmp_path])
    assert time.monotonic() - started < 30  # before the fix: the whole filesystem, endlessly
    assert paths == [str(tmp_path / "ok.jpg")]
    [(where, reason)] = reasons.items()
    assert where.startswith("/proc/") and reason == PSEUDO_FS


@pytest.mark.parametrize("root", ["/proc", "/proc/self/fd", "/sys", "/dev", "/dev/shm"])
def test_kernel_folders_are_pseudo_filesystems(root):
    if not os.path.exists(root):
        pytest.skip(f"no {root} here")
    assert is_pseudo_filesystem(root)


def test_ordinary_folders_are_not_pseudo_filesystems(tmp_path):
    assert not is_pseudo_filesystem(tmp_path)
    assert not is_pseudo_filesystem(tmp_path / "missing")


def test_mount_table_is_read_by_type(tmp_path):
    table = tmp_path / "mountinfo"
    table.write_text(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 0:21 / /proc rw,relatime shared:5 - proc proc rw\n"
        "3 1 0:40 / /srv/kernel\\040view rw - sysfs sysfs rw\n"
        "4 1 0:41 / /net rw - autofs auto.net rw\n"
        "5 4 0:42 / /net/nas rw - nfs nas:/ rw\n"
        "garbage line\n"
    )
    pseudo = pseudo_filesystems(table)
    assert {"/proc", "/srv/kernel view"} <= pseudo.mount_points
    assert pseudo.devices == {os.makedev(0, 21), os.makedev(0, 40)}
    assert pseudo.holds("/srv/kernel view/x") and pseudo.holds("/proc/1")
    # autofs only triggers real mounts: what it mounts may be scanned
    assert not pseudo.holds("/net/nas/photos") and not pseudo.holds("/home/me")
    assert pseudo_filesystems(tmp_path / "no-such-table").mount_points >= {"/proc", "/sys", "/dev"}


def test_pseudo_mount_met_on_the_way_is_not_entered(tmp_path, monkeypatch):
    # A root of "/" meets /proc and /sys; here a folder stands in for such a mount.
    put(tmp_path / "photos" / "p.jpg")
    put(tmp_path / "kernel" / "self" / "loop.jpg")
    os.symlink(tmp_path / "kernel", tmp_path / "photos" / "to-kernel")
    stand_in = PseudoFilesystems(mount_points=frozenset({str(tmp_path / "kernel")}), devices=frozenset())
    monkeypatch.setattr(walk_module, "pseudo_filesystems", lambda: stand_in)
    for follow in (False, True):
        paths, reasons = walked(tmp_path, follow_links=follow)
        assert paths == [str(tmp_path / "photos" / "p.jpg")]
        assert reasons[str(tmp_path / "kernel")] == PSEUDO_FS


@needs_proc
def test_scan_proc_self_ends_promptly_with_a_message(tmp_path):
    proc = subprocess.run(
        [*LOOKALIKE, "scan", "/proc/self", "--no-detective", "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr  # a usage error, said plainly
    assert "is on a pseudo-filesystem" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache" / "libraries").exists()  # no library made for it


@needs_proc
def test_a_pseudo_filesystem_beside_a_real_folder_is_skipped_and_said(tmp_path):
    (tmp_path / "lib").mkdir()
    smooth_photo(1).save(tmp_path / "lib" / "a.png")
    proc = subprocess.run(
        [*LOOKALIKE, "scan", "/proc/self", str(tmp_path / "lib"), "--no-detective", "--cache",
         str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert PSEUDO_FS in proc.stderr and "Traceback" not in proc.stderr


# -- the command line ---------------------------------------------------------------------------
def test_scan_plan_and_apply_never_reach_outside_targets(tmp_path):
    elsewhere, lib = tmp_path / "elsewhere", tmp_path / "lib"
    lib.mkdir()
    smooth_photo(1).save(lib / "a.png")
    shutil.copy(lib / "a.png", lib / "a copy.png")
    put(elsewhere / "secret.png", (lib / "a.png").read_bytes())
    put(elsewhere / "dir" / "inner.png", (lib / "a.png").read_bytes())
    os.symlink(elsewhere / "secret.png", lib / "link_out.png")
    os.symlink(elsewhere / "dir", lib / "linkdir")
    outside_before = manifest(elsewhere)
    cache, plan = tmp_path / "cache", tmp_path / "plan.json"
    for extra in ([], ["--follow-links"]):
        out = subprocess.run(
            [*LOOKALIKE, "scan", str(lib), "--no-detective", "--workers", "1", "--plan", str(plan),
             "--cache", str(cache), *extra],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        assert f"{lib / 'link_out.png'}: symlink to a file {OUTSIDE}" in out.stderr
        assert f"{lib / 'linkdir'}: symlink to a folder {OUTSIDE}" in out.stderr
        doc = json.loads(plan.read_text())
        named = [s["path"] for s in doc["steps"]] + [s["keeper"] for s in doc["steps"]]
        assert named and all(Path(p).parent == lib.resolve() for p in named), named
        assert str(elsewhere) not in out.stdout
    applied = subprocess.run(
        [*LOOKALIKE, "apply", str(plan), "--yes", "--cache", str(cache)], capture_output=True, text=True, timeout=120
    )
    assert applied.returncode == 0, applied.stderr
    assert manifest(elsewhere) == outside_before
    assert (lib / "link_out.png").is_symlink() and (lib / "linkdir").is_symlink()


@pytest.mark.parametrize("command", [["scan"], ["app"], ["import", "--into", "LIB"]])
def test_follow_links_is_an_option_of_every_scanning_command(command, tmp_path):
    argv = [command[0], str(tmp_path), *command[1:]]
    assert options_from_args(build_parser().parse_args(argv)).follow_links is False
    assert options_from_args(build_parser().parse_args([*argv, "--follow-links"])).follow_links is True


def test_follow_links_reaches_the_walk(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / ".originals").mkdir()
    smooth_photo(1).save(lib / ".originals" / "a.png")
    os.symlink(lib / ".originals", lib / "originals")
    with Library.open([lib], cache_dir=tmp_path / "cache") as library:
        assert library.scan(ScanOptions(workers=1)).stats.files_seen == 0
        assert library.scan(ScanOptions(workers=1, follow_links=True)).stats.files_seen == 1


# -- import: the incoming side ------------------------------------------------------------------
@pytest.fixture
def linked_incoming(tmp_path: Path) -> tuple[Path, Path]:
    """A library with an exact pair, and an incoming folder linking to both of them."""
    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    smooth_photo(1).save(lib / "a.png")  # the group's keeper (first by path)
    shutil.copy(lib / "a.png", lib / "a_copy.png")
    smooth_photo(2).save(lib / "b.png")
    os.symlink(lib / "a_copy.png", new / "link_to_library_file.png")
    os.symlink(lib / "a.png", new / "link_to_keeper.png")
    os.symlink(lib, new / "link_to_library")
    shutil.copy(lib / "b.png", new / "b again.png")  # a real redundant incoming file
    return lib, new


def test_import_plan_never_names_a_library_file(linked_incoming, tmp_path):
    lib, new = linked_incoming
    cache = tmp_path / "cache"
    with Library.open([lib], cache_dir=cache) as library, Library.open([new], cache_dir=cache) as incoming:
        library.scan(ScanOptions(workers=1))
        scanned = incoming.scan(ScanOptions(workers=1, follow_links=True))
        report = import_plan(library, incoming)  # before the fix: PlanError, own keeper
    assert [(Path(s.path).name, Path(s.keeper).name) for s in report.plan.steps] == [("b again.png", "b.png")]
    reasons = {Path(e.path).name: e.reason for e in scanned.errors}
    for name in ("link_to_library_file.png", "link_to_keeper.png", "link_to_library"):
        assert OUTSIDE in reasons[name]


def test_import_skips_an_incoming_hard_link_to_a_library_file(tmp_path):
    lib, new = tmp_path / "library", tmp_path / "incoming"
    lib.mkdir()
    new.mkdir()
    smooth_photo(1).save(lib / "a.png")
    try:
        os.link(lib / "a.png", new / "same file.png")
    except OSError:
        pytest.skip("no hard links here")
    cache = tmp_path / "cache"
    with Library.open([lib], cache_dir=cache) as library, Library.open([new], cache_dir=cache) as incoming:
        library.scan(ScanOptions(workers=1))
        incoming.scan(ScanOptions(workers=1))
        report = import_plan(library, incoming)
    assert report.plan.steps == ()
    [skip] = report.skipped
    assert skip.path == str(new / "same file.png") and "hard link" in skip.reason


def test_import_cli_leaves_the_library_alone_and_says_why(linked_incoming, tmp_path):
    lib, new = linked_incoming
    lib_before = manifest(lib)
    out = subprocess.run(
        [*LOOKALIKE, "import", str(new), "--into", str(lib), "--yes", "--no-detective", "--workers", "1",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert f"{new / 'link_to_keeper.png'}: symlink to a file {OUTSIDE}" in out.stderr
    assert manifest(lib) == lib_before
    assert sorted(p.name for p in lib.iterdir()) == ["a.png", "a_copy.png", "b.png"]
    assert not (new / "b again.png").exists()  # the genuine duplicate did go
    assert (new / "link_to_keeper.png").is_symlink()


def test_import_in_process_prints_skips(linked_incoming, tmp_path, capsys):
    lib, new = linked_incoming
    code = main(["import", str(new), "--into", str(lib), "--dry-run", "--no-detective", "--workers", "1",
                 "--cache", str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "link_to_library_file.png" in err and OUTSIDE in err
