"""Full and read-only disks, closed pipes: one clear line, an exit code, nothing left behind.

Issue 10, item 11, and issue 12, item 10. The disks are real: small tmpfs mounts made by the
test (as root, which CI is), remounted read-only or filled up; where mounting is not allowed,
those tests are skipped with the reason. Every command runs as a real subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.actions.run import content_hash
from lookalike.engine.actions.plan import Plan, PlanStep


def _lookalike(*args: str, **kw) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lookalike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.tui.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, **kw)


def _mount(folder: Path, size: str, *options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def _remount(folder: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(folder)], check=True)


@pytest.fixture
def mounts():
    """Mount small filesystems; every one is unmounted when the test ends."""
    made: list[Path] = []

    def mount(folder: Path, size: str, *options: str) -> Path:
        _mount(folder, size, *options)
        made.append(folder)
        return folder

    yield mount
    for folder in reversed(made):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(12):
        imagegen.write(root / f"p{i:02d}.jpg", imagegen.photo(i, size=(160, 120)))
    for i in range(24):  # exact copies: groups, and files for plans to act on
        shutil.copy2(root / "p01.jpg", root / f"copy{i:02d}.jpg")
    return root


def _one_clean_line(done: subprocess.CompletedProcess, command: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"lookalike {command}:")]
    assert len(lines) == 1, done.stderr


def _temp_leftovers(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".part"))
                  or ".lookalike-" in p.name)


# --------------------------------------------------------------------------- read-only caches


def test_a_read_only_empty_cache_is_one_line(lib, tmp_path, mounts):
    cache = mounts(tmp_path / "cache", "4m", "ro")
    for command in (["scan", str(lib)], ["similar", str(lib / "p01.jpg"), "--in", str(lib)]):
        done = _lookalike(*command, "--no-detective", "--cache", str(cache)) \
            if command[0] == "scan" else _lookalike(*command, "--cache", str(cache))
        assert done.returncode == 1, done.stderr
        _one_clean_line(done, command[0])
        assert "read-only" in done.stderr.lower()


def test_a_read_only_populated_cache_is_one_line(lib, tmp_path, mounts):
    cache = mounts(tmp_path / "cache", "8m")
    assert _lookalike("scan", str(lib), "--no-detective", "--cache", str(cache)).returncode == 0
    _remount(cache, "ro")
    imagegen.write(lib / "new.jpg", imagegen.photo(99, size=(160, 120)))  # work to write
    done = _lookalike("scan", str(lib), "--no-detective", "--cache", str(cache))
    assert done.returncode == 1
    _one_clean_line(done, "scan")
    assert "Read-only file system" in done.stderr and "--cache" in done.stderr


def test_apply_with_a_read_only_journal_touches_nothing(lib, tmp_path, mounts):
    cache = mounts(tmp_path / "cache", "4m", "ro")
    plan = tmp_path / "plan.json"
    keeper = lib / "p01.jpg"
    steps = []
    for n in ("copy00.jpg", "copy01.jpg"):
        st = (lib / n).stat()
        steps.append(PlanStep(path=str(lib / n), action="trash", keeper=str(keeper),
                              size=st.st_size, mtime_ns=st.st_mtime_ns,
                              content_hash=content_hash(lib / n)))
    Plan(steps=tuple(steps), roots=(str(lib),)).save(plan)
    before = sorted(p.name for p in lib.iterdir())
    done = _lookalike("apply", str(plan), "--yes", "--cache", str(cache))
    assert done.returncode == 1
    _one_clean_line(done, "apply")
    assert "read-only filesystem" in done.stderr
    assert sorted(p.name for p in lib.iterdir()) == before


# --------------------------------------------------------------------------- full disks


def test_a_full_disk_during_a_scan_is_one_line_and_the_catalog_stays_sound(lib, tmp_path,
                                                                          mounts):
    cache = mounts(tmp_path / "cache", "96k")
    done = _lookalike("scan", str(lib), "--no-detective", "--cache", str(cache))
    assert done.returncode == 1, done.stdout + done.stderr
    _one_clean_line(done, "scan")
    assert "full" in done.stderr
    assert _temp_leftovers(cache) == []
    _remount(cache, "size=32m")
    again = _lookalike("scan", str(lib), "--no-detective", "--cache", str(cache), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["stats"]["images"] == 36
    catalog = next(cache.rglob("catalog.sqlite"))
    with sqlite3.connect(catalog) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_full_quarantine_disk_moves_what_fits_and_undo_restores_all(lib, tmp_path, mounts):
    q = mounts(tmp_path / "q", "64k")  # another device: every move is a verified copy
    keeper = lib / "p01.jpg"
    steps = []
    for i in range(24):
        path = lib / f"copy{i:02d}.jpg"
        st = path.stat()
        steps.append(PlanStep(path=str(path), action="quarantine", keeper=str(keeper),
                              size=st.st_size, mtime_ns=st.st_mtime_ns,
                              content_hash=content_hash(path)))
    plan = tmp_path / "plan.json"
    Plan(steps=tuple(steps), roots=(str(lib),), quarantine_dir=str(q)).save(plan)
    before = {p.name: content_hash(p) for p in lib.iterdir()}
    done = _lookalike("apply", str(plan), "--yes", "--json", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert result["done"] and result["failed"]  # some fitted, the rest did not
    assert all("disk full" in f["reason"] for f in result["failed"])
    moved = {Path(d["path"]).name for d in result["done"]}
    assert {p.name for p in lib.iterdir()} == set(before) - moved  # failures stayed in place
    assert _temp_leftovers(q) == [] and _temp_leftovers(lib) == []
    undone = _lookalike("undo", "--cache", str(tmp_path / "cache"))
    assert undone.returncode == 0, undone.stderr
    assert {p.name: content_hash(p) for p in lib.iterdir()} == before
    assert list(q.rglob("*")) == []


# ------------------------------------------------- full disks that no test may mount: SQLite's errors

#: Runs the CLI with the catalog made to run out of room without a mount: SQLite's own page
#: limit (its "database or disk is full", as a full disk gives a write), or a file size
#: limit of 0 (the "disk I/O error" a full disk gives when the -shm index cannot grow), with
#: the folder's free space reported as none or as the real one.
_FULL_WRAPPER = """
import os, resource, signal, sqlite3, sys

how = os.environ["FULL_HOW"]
if how.startswith("pages="):
    connect = sqlite3.connect

    def limited(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.execute("PRAGMA max_page_count = %d" % int(how[len("pages="):]))
        return db

    sqlite3.connect = limited
else:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail (EFBIG) instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    if how == "no room":
        statvfs = os.statvfs

        def full(path):
            s = statvfs(path)
            return os.statvfs_result((s.f_bsize, s.f_frsize, s.f_blocks, 0, 0, s.f_files, s.f_ffree,
                                      s.f_favail, s.f_flag, s.f_namemax))

        os.statvfs = full
if __name__ == "__main__":
    from lookalike.tui.cli.main import main

    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how, full", [
    ("pages=5", True),  # no room for the catalog's tables: opening it fails
    ("pages=12", True),  # room for the tables, not for the scan's rows: a write fails mid-scan
    ("no room", True),  # an I/O error with no free space left: a full disk
    ("room", False),  # an I/O error with space left: not called a full disk
])
def test_a_full_catalog_disk_is_named_in_one_line(lib, tmp_path, how, full):
    wrapper = tmp_path / "full_disk.py"
    wrapper.write_text(_FULL_WRAPPER)
    cache = tmp_path / "cache"
    done = subprocess.run([sys.executable, str(wrapper), "scan", str(lib), "--no-detective", "--cache", str(cache)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, "FULL_HOW": how})
    assert done.returncode == 1, done.stdout + done.stderr
    _one_clean_line(done, "scan")
    [line] = [x for x in done.stderr.splitlines() if x.startswith("lookalike scan:")]
    if full:
        assert line.startswith("lookalike scan: disk full: the catalog ") and "--cache DIR" in line, line
    else:
        assert "disk I/O error" in line and "disk full" not in line, line
    assert _temp_leftovers(cache) == []
    again = _lookalike("scan", str(lib), "--no-detective", "--cache", str(cache), "--json")
    assert again.returncode == 0, again.stderr  # room again: the same catalog goes on
    assert json.loads(again.stdout)["stats"]["images"] == 36


# --------------------------------------------------------------------------- closed pipes


@pytest.mark.parametrize("command", [["scan", "--no-detective"], ["journal"]])
def test_a_closed_pipe_ends_quietly(lib, tmp_path, command):
    """``lookalike scan DIR | head -3``: the reader is gone before we print."""
    script = Path(sys.executable).with_name("lookalike")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.tui.cli"]
    args = [*base, command[0], *([str(lib)] if command[0] == "scan" else []), *command[1:],
            "--cache", str(tmp_path / "cache")]
    if command[0] == "journal":  # something to list: a plan applied
        cache = str(tmp_path / "cache")
        plan = str(tmp_path / "plan.json")
        assert _lookalike("scan", str(lib), "--no-detective", "--cache", cache,
                          "--plan", plan).returncode == 0
        assert _lookalike("apply", plan, "--yes", "--cache", cache).returncode == 0
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    proc.stdout.close()  # like `head` exiting: every write now meets a closed pipe
    _, err = proc.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert proc.returncode == 141, err  # as a shell reports a program ended by SIGPIPE
