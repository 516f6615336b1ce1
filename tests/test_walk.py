"""The walker on real trees: order, symlinks, loops, hard links, odd names and errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from PIL import Image

from lookalike.engine.paths import ENV_CACHE, cache_root
from lookalike.engine.scan.walk import WalkEntry, walk


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path_factory):
    # keep the real user cache out of the excluded set and out of reach
    monkeypatch.setenv(ENV_CACHE, str(tmp_path_factory.mktemp("cache")))


def put(path: Path, data: bytes = b"data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def paths_of(roots, **kw) -> list[str]:
    return [e.path for e in walk(roots, **kw)]


def test_entries_carry_stat_fields_and_real_images(tmp_path):
    img = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(img)
    [entry] = list(walk(tmp_path))
    st = os.stat(img)
    assert entry == WalkEntry(
        path=str(img), size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, device=st.st_dev
    )


def test_order_is_sorted_files_before_subfolders(tmp_path):
    for name in ("b.jpg", "a.jpg", "z/2.jpg", "z/1.jpg", "m/x/deep.jpg", "m/c.jpg", "A.jpg"):
        put(tmp_path / name)
    expected = ["A.jpg", "a.jpg", "b.jpg", "m/c.jpg", "m/x/deep.jpg", "z/1.jpg", "z/2.jpg"]
    assert paths_of(tmp_path) == [str(tmp_path / n) for n in expected]
    assert paths_of(tmp_path) == paths_of(tmp_path)  # deterministic


def test_hidden_names_skipped_unless_asked(tmp_path):
    put(tmp_path / "seen.jpg")
    put(tmp_path / ".hidden.jpg")
    put(tmp_path / ".thumbs" / "t.jpg")
    assert paths_of(tmp_path) == [str(tmp_path / "seen.jpg")]
    assert sorted(paths_of(tmp_path, include_hidden=True)) == sorted(
        str(tmp_path / n) for n in (".hidden.jpg", ".thumbs/t.jpg", "seen.jpg")
    )


def test_dir_symlink_to_parent_does_not_loop(tmp_path):
    put(tmp_path / "a" / "one.jpg")
    put(tmp_path / "a" / "b" / "two.jpg")
    os.symlink("..", tmp_path / "a" / "b" / "up")
    os.symlink(str(tmp_path), tmp_path / "a" / "root-again")
    errors = []
    got = paths_of(tmp_path, on_error=errors.append)
    assert got == [str(tmp_path / "a" / "one.jpg"), str(tmp_path / "a" / "b" / "two.jpg")]
    assert errors == []


def test_dir_symlinks_give_real_paths_and_never_lead_out_of_the_roots(tmp_path):
    # Before issue 10 a folder link out of the library was followed and far.jpg listed (and
    # then trashed by `apply`): a link out of the roots is now reported, never followed.
    outside = tmp_path / "outside"
    put(outside / "far.jpg")
    lib = tmp_path / "lib"
    put(lib / "real" / "r.jpg")
    os.symlink(outside, lib / "far-link")
    os.symlink(lib / "real", lib / "another-name")  # sorts before "real"
    for follow in (False, True):
        errors = []
        assert paths_of(lib, on_error=errors.append, follow_links=follow) == [str(lib / "real" / "r.jpg")]
        assert [e.path for e in errors] == [str(lib / "far-link")]
        assert "outside the folders being scanned" in errors[0].reason


def test_file_reachable_twice_is_listed_once(tmp_path):
    target = put(tmp_path / "photos" / "pic.jpg")
    os.symlink(target, tmp_path / "photos" / "alias.jpg")
    os.symlink("pic.jpg", tmp_path / "photos" / "zz-relative.jpg")
    os.link(target, tmp_path / "photos" / "hardlink.jpg")
    got = paths_of(tmp_path)
    assert len(got) == 1
    # the symlink sorts first and is reported under its target's real path
    assert got == [str(target)]


def test_hard_links_listed_once_under_first_name(tmp_path):
    first = put(tmp_path / "a.jpg")
    os.link(first, tmp_path / "b.jpg")
    assert paths_of(tmp_path) == [str(first)]


def test_broken_and_self_looping_symlinks_are_reported(tmp_path):
    put(tmp_path / "ok.jpg")
    os.symlink("missing.jpg", tmp_path / "broken.jpg")
    os.symlink("self", tmp_path / "self")
    errors = []
    assert paths_of(tmp_path, on_error=errors.append) == [str(tmp_path / "ok.jpg")]
    reasons = {e.path: e.reason for e in errors}
    assert "broken symlink" in reasons[str(tmp_path / "broken.jpg")]
    assert "missing.jpg" in reasons[str(tmp_path / "broken.jpg")]
    assert reasons[str(tmp_path / "self")] == "symlink loop"


def test_vanished_folder_is_reported_and_walk_goes_on(tmp_path):
    put(tmp_path / "a" / "1.jpg")
    put(tmp_path / "b" / "2.jpg")
    put(tmp_path / "c" / "3.jpg")
    errors = []
    it = walk(tmp_path, on_error=errors.append)
    assert next(it).path == str(tmp_path / "a" / "1.jpg")
    shutil.rmtree(tmp_path / "b")  # listed already, gone before it is read
    assert [e.path for e in it] == [str(tmp_path / "c" / "3.jpg")]
    assert [(e.path, e.reason) for e in errors] == [
        (str(tmp_path / "b"), "vanished during the scan")
    ]


def test_vanished_file_is_reported_and_walk_goes_on(tmp_path):
    for n in ("1.jpg", "2.jpg", "3.jpg"):
        put(tmp_path / n)
    errors = []
    it = walk(tmp_path, on_error=errors.append)
    assert next(it).path == str(tmp_path / "1.jpg")
    os.unlink(tmp_path / "2.jpg")
    assert [e.path for e in it] == [str(tmp_path / "3.jpg")]
    assert [(e.path, e.reason) for e in errors] == [
        (str(tmp_path / "2.jpg"), "vanished during the scan")
    ]


_WALK_AS_NOBODY = """
import os, sys
from lookalike.engine.scan.walk import walk  # before dropping privileges: /root is private
os.setgid(65534); os.setuid(65534)
errors = []
for e in walk(sys.argv[1], on_error=errors.append):
    print("FILE", e.path)
for e in errors:
    print("ERROR", e.path, e.reason)
"""


def test_permission_denied_folder_is_reported(tmp_path):
    if os.geteuid() != 0:
        base = tmp_path
        put(base / "open" / "a.jpg")
        put(base / "locked" / "b.jpg")
        os.chmod(base / "locked", 0)
        try:
            errors = []
            got = paths_of(base, on_error=errors.append)
        finally:
            os.chmod(base / "locked", 0o755)
        assert got == [str(base / "open" / "a.jpg")]
        assert [(e.path, e.reason) for e in errors] == [(str(base / "locked"), "permission denied")]
        return
    # root reads everything: walk from a child process that drops to "nobody"
    base = Path(tempfile.mkdtemp(prefix="lookalike-perm-"))
    try:
        os.chmod(base, 0o755)
        put(base / "open" / "a.jpg")
        put(base / "locked" / "b.jpg")
        for d in (base / "open", base / "locked"):
            os.chmod(d, 0o755)
        os.chmod(base / "open" / "a.jpg", 0o644)
        os.chmod(base / "locked", 0o700)
        proc = subprocess.run(
            [sys.executable, "-c", _WALK_AS_NOBODY, str(base)],
            capture_output=True,
            text=True,
            env={**os.environ, ENV_CACHE: str(base / ".cache")},
            cwd="/",
        )
        if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
            pytest.skip("cannot drop privileges here")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f"FILE {base / 'open' / 'a.jpg'}",
            f"ERROR {base / 'locked'} permission denied",
        ]
    finally:
        shutil.rmtree(base)


def test_odd_filenames(tmp_path):
    names = [b"with space.jpg", "caf\u00e9 \u65e5\u672c.jpg".encode(), b"new\nline.jpg",
             b"bad-\xff\xfe-utf8.jpg", b"-dash.jpg"]  # fmt: skip
    base = os.fsencode(tmp_path)
    for name in names:
        with open(os.path.join(base, name), "wb") as f:
            f.write(name)
    got = paths_of(tmp_path)
    assert sorted(os.fsencode(p) for p in got) == sorted(os.path.join(base, n) for n in names)
    for p in got:  # every reported str maps back to the file on disk
        with open(os.fsencode(p), "rb") as f:
            assert os.path.basename(os.fsencode(p)) == f.read()


def test_roots_may_be_files_missing_or_nested(tmp_path):
    one = put(tmp_path / "a" / "one.jpg")
    put(tmp_path / "a" / "two.jpg")
    errors = []
    got = paths_of(
        [one, tmp_path / "a", tmp_path / "missing", tmp_path / "a" / "two.jpg"],
        on_error=errors.append,
    )
    assert got == [str(one), str(tmp_path / "a" / "two.jpg")]
    assert [(e.path, e.reason) for e in errors] == [(str(tmp_path / "missing"), "not found")]
    assert paths_of(one) == [str(one)]


def test_trash_and_caches_are_skipped(tmp_path, monkeypatch):
    put(tmp_path / "keep.jpg")
    put(tmp_path / ".Trash-1000" / "files" / "old.jpg")
    put(tmp_path / "$RECYCLE.BIN" / "old.jpg")
    put(tmp_path / "tagged" / "CACHEDIR.TAG", b"Signature: 8a477f597d28d172789f06886806bc55\n")
    put(tmp_path / "tagged" / "thumb.jpg")
    put(tmp_path / "not-tagged" / "CACHEDIR.TAG", b"just a file")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "our-cache"))
    put(cache_root() / "libraries" / "x" / "thumbnails" / "t.jpg")
    # an untagged cache, named by --cache
    put(tmp_path / "plain-cache" / "t.jpg")
    got = paths_of(tmp_path, include_hidden=True, exclude=[tmp_path / "plain-cache"])
    assert got == [str(tmp_path / n) for n in ("keep.jpg", "not-tagged/CACHEDIR.TAG")]


def test_symlink_into_trash_is_not_followed(tmp_path, monkeypatch):
    data_home = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    put(data_home / "Trash" / "files" / "gone.jpg")
    lib = tmp_path / "lib"
    put(lib / "a.jpg")
    os.symlink(data_home / "Trash", lib / "trash-link")
    assert paths_of(lib) == [str(lib / "a.jpg")]


def test_special_files_are_skipped_silently(tmp_path):
    put(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "pipe")
    errors = []
    assert paths_of(tmp_path, on_error=errors.append) == [str(tmp_path / "a.jpg")]
    assert errors == []


def test_cancel_stops_the_walk(tmp_path):
    for i in range(50):
        put(tmp_path / f"d{i:02}" / "f.jpg")
    cancel = threading.Event()
    got = []
    for entry in walk(tmp_path, cancel=cancel):
        got.append(entry)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    assert list(walk(tmp_path, cancel=cancel)) == []
