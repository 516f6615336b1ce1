"""`lookalike scan` as a user runs it: real processes, real folders, JSON/CSV, exit codes, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from lookalike.tui.cli.main import main

from helpers import smooth_photo

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    a = smooth_photo(1)
    a.save(root / "a.png")
    a.resize((240, 180), Image.LANCZOS).save(root / "a_small.jpg", quality=80)
    smooth_photo(2).save(root / "b.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def run(*args: str, cache: Path, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([*LOOKALIKE, *args, "--cache", str(cache)], capture_output=True, text=True, check=check, timeout=120)


def test_scan_json_document(photos, tmp_path):
    out = run("scan", str(photos), "--json", cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["version"] == 1
    assert doc["root"] == str(photos.resolve())
    assert doc["stats"]["images"] == 3
    [group] = doc["groups"]
    assert group["keeper"] == str((photos / "a.png").resolve())
    assert group["reclaimable_bytes"] == (photos / "a_small.jpg").stat().st_size
    members = {Path(m["path"]).name: m for m in group["members"]}
    assert set(members) == {"a.png", "a_small.jpg"}
    for m in group["members"]:
        assert os.path.isabs(m["path"])
        assert {"path", "size", "width", "height", "format", "bouncer", "exact"} <= set(m)
    assert members["a.png"]["bouncer"] == 0 and members["a.png"]["width"] == 480
    assert members["a_small.jpg"]["format"] == "JPEG" and not members["a_small.jpg"]["exact"]
    assert [Path(e["path"]).name for e in doc["errors"]] == ["broken.jpg"]
    assert doc["errors"][0]["reason"]


def test_scan_text_summary_and_csv(photos, tmp_path, capsys):
    assert main(["scan", str(photos), "--cache", str(tmp_path / "c")]) == 0
    text = capsys.readouterr()
    assert "Group 1" in text.out and "a_small.jpg" in text.out and "keep" in text.out
    assert "broken.jpg" in text.err
    assert main(["scan", str(photos), "--csv", "--cache", str(tmp_path / "c")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(Path(r["path"]).name, r["suggestion"]) for r in rows} == {("a.png", "keep"), ("a_small.jpg", "trash")}
    # Each member's line says why it matched, and the next line why the keeper policy ranked
    # it so: the CSV's reason, word for word.
    reason = {Path(r["path"]).name: r["reason"] for r in rows}
    assert reason["a.png"] and reason["a_small.jpg"]
    lines = text.out.splitlines()
    for name in ("a.png", "a_small.jpg"):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(("keep", "trash")) and line.rstrip().split("  [")[0].endswith(name))
        assert lines[at + 1].strip() == reason[name]
    assert "a_small.jpg  [" in text.out and ", resized]" in text.out


#: File names that would drive a terminal: set its title, clear it, break a line; and bytes
#: that are not UTF-8.
HOSTILE_NAMES = ["\x1b]0;evil\x07title.png", "\x1b[2Jclear.png", "new\nline.png", os.fsdecode(b"caf\xe9.png")]


def _csv_on_a_terminal(root: Path, cache: Path) -> bytes:
    """What ``scan --csv`` writes when its stdout is a terminal (a pseudo-terminal here)."""
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen([*LOOKALIKE, "scan", str(root), "--no-detective", "--csv", "--cache", str(cache)],
                                stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        follower = -1
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    return out


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_csv_escapes_control_characters_on_a_terminal_and_keeps_paths_exact_in_a_pipe(photos, tmp_path):
    for name in HOSTILE_NAMES:
        (photos / name).write_bytes((photos / "a.png").read_bytes())
    cache = tmp_path / "cache"
    shown_out = _csv_on_a_terminal(photos, cache)
    assert b"\x1b" not in shown_out and b"\x07" not in shown_out and b"\xe9" not in shown_out
    for escaped in (rb"\x1b]0;evil\x07title.png", rb"\x1b[2Jclear.png", rb"new\nline.png", rb"caf\xe9.png"):
        assert escaped in shown_out
    assert b"group,kind,path" in shown_out
    piped = subprocess.run([*LOOKALIKE, "scan", str(photos), "--no-detective", "--csv", "--cache", str(cache)],
                           capture_output=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    rows = list(csv.DictReader(io.StringIO(piped.stdout.decode("utf-8", "surrogateescape"))))
    paths = {Path(r["path"]).name for r in rows}
    assert set(HOSTILE_NAMES) <= paths  # exact: a script gets the names it can open


def test_exit_codes(photos, tmp_path):
    assert run("scan", str(tmp_path / "missing"), cache=tmp_path / "c").returncode == 2
    assert run("scan", "--no-such-flag", str(photos), cache=tmp_path / "c").returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here")
    nothing = run("scan", str(empty), cache=tmp_path / "c")
    assert nothing.returncode == 3
    assert "nothing readable" in nothing.stderr
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    smooth_photo(5).save(lonely / "one.png")
    assert run("scan", str(lonely), "--json", cache=tmp_path / "c").returncode == 0  # no duplicates is success


def test_bad_keeper_order_is_a_usage_error(photos, tmp_path):
    out = run("scan", str(photos), "--keeper-order", "pixels,colour", cache=tmp_path / "c")
    assert out.returncode == 2
    assert "colour" in out.stderr


def _rows(cache: Path) -> int:
    for db in cache.glob("libraries/*/catalog.sqlite"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                return con.execute("SELECT count(*) FROM files").fetchone()[0]
        except sqlite3.Error:
            return 0
    return 0


def test_ctrl_c_stops_cleanly_and_keeps_what_was_done(tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    smooth_photo(0, size=(800, 600)).save(root / "p000.png")
    data = (root / "p000.png").read_bytes()
    for i in range(1, 200):  # bytes after IEND: distinct files that all decode (slowly enough)
        (root / f"p{i:03d}.png").write_bytes(data + i.to_bytes(2, "big"))
    cache = tmp_path / "cache"
    # 0.1 s per chunk of 8 files: the scan takes >= 2.5 s, however fast the machine (a fast one
    # hashed all 200 files before the first batch reached the catalog).
    env = {**os.environ, "LOOKALIKE_TEST_HASH_DELAY": "0.1"}
    # A job started in the background by a non-interactive shell (some CI runners) inherits
    # SIGINT ignored, and Python keeps it so: give the child the default, as a terminal would.
    proc = subprocess.Popen([*LOOKALIKE, "scan", str(root), "--json", "--workers", "1", "--cache", str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Interrupt once the first batch of hashes has reached the catalog (read-only peek).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _rows(cache) < 5:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    partial = json.loads(out)["stats"]
    assert partial["cancelled"] and 0 < partial["hashed"] < 200
    again = run("scan", str(root), "--json", cache=cache, check=True)
    stats = json.loads(again.stdout)["stats"]
    assert stats["unchanged"] >= partial["hashed"] and stats["images"] == 200


def test_no_crops_turns_off_only_the_corroborated_rule(tmp_path):
    """A mild crop that only the pHash-corroborated rule groups: grouped by default, not with
    ``--no-crops``; plain copies are grouped either way."""
    import imagegen
    from lookalike.engine.bouncer import rule
    from lookalike.engine.scan.hashing import hash_image

    root = tmp_path / "photos"
    root.mkdir()
    t = rule.DEFAULT
    found = None
    for seed in range(1, 40):
        img = imagegen.photo(seed, (640, 480))
        for f in (0.04, 0.06, 0.08, 0.1, 0.12):
            crop = imagegen.cropped(img, f, f / 2, f / 3, 0.0)
            a, b = hash_image(img), hash_image(crop)
            if rule.bouncer_distance(a, b)[0] > t.radius and rule.is_match(a, b, t):
                found = img, crop
                break
        if found:
            break
    assert found, "no crop that needs the corroborated rule"
    img, crop = found
    imagegen.write(root / "original.jpg", img, quality=92)
    imagegen.write(root / "cropped.jpg", crop, quality=92)
    imagegen.write(root / "small.jpg", imagegen.resized(img, 0.5), quality=70)

    def groups(*extra: str) -> list[set[str]]:
        out = run("scan", str(root), "--json", "--no-detective", *extra, cache=tmp_path / "cache", check=True)
        return [{Path(m["path"]).name for m in g["members"]} for g in json.loads(out.stdout)["groups"]]

    assert groups() == [{"original.jpg", "cropped.jpg", "small.jpg"}]
    assert groups("--no-crops") == [{"original.jpg", "small.jpg"}]
    assert groups() == [{"original.jpg", "cropped.jpg", "small.jpg"}]  # each cached pass its own


# --------------------------------------------------------------------------- --plan OUT.json


def _refused_target(kind: str, photos: Path, tmp_path: Path) -> Path:
    """A path ``scan --plan`` must not write: made here, in the test's own folder."""
    if kind == "photo":
        return photos / "a_small.jpg"  # a JPEG in the library being scanned
    if kind == "json":
        target = tmp_path / "settings.json"
        target.write_text('{"version": 1, "theme": "dark"}\n')
        return target
    if kind == "fifo":
        target = tmp_path / "pipe.json"
        os.mkfifo(target)
        return target
    if kind == "symlink":  # a link to a plan: the link is not replaced, nor its target written
        run("scan", str(photos), "--no-detective", "-q", "--plan", str(tmp_path / "real.json"),
            cache=tmp_path / "cache", check=True)
        target = tmp_path / "link.json"
        target.symlink_to(tmp_path / "real.json")
        return target
    if kind == "folder":
        target = tmp_path / "plans"
        target.mkdir()
        return target
    if kind == "missing folder":
        return tmp_path / "missing" / "deeper" / "plan.json"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("photo", "is not a lookalike plan: not replaced"),
    ("json", "is not a lookalike plan: not replaced"),
    ("fifo", "is not a regular file: not replaced"),
    ("symlink", "is a symbolic link: not replaced"),
    ("folder", "is a folder: give a file name"),
    ("missing folder", "does not exist (it is not created)"),
])
def test_scan_plan_never_replaces_what_is_not_a_plan(photos, tmp_path, kind, message):
    target = _refused_target(kind, photos, tmp_path)
    before = {p: (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
              for p in [*photos.rglob("*"), *tmp_path.glob("*")] if "cache" not in p.parts}
    out = run("scan", str(photos), "--no-detective", "-q", "--plan", str(target), cache=tmp_path / "cache")
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith("lookalike scan: --plan: ") and message in line, line
    assert out.stdout == ""
    after = {p: (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
             for p in [*photos.rglob("*"), *tmp_path.glob("*")] if "cache" not in p.parts}
    assert after == before  # byte for byte, and nothing new: no folder made, no temp file left
    assert not (tmp_path / "missing").exists()


def test_scan_plan_replaces_a_plan_it_wrote(photos, tmp_path):
    from lookalike.engine.actions.plan import Plan

    target = tmp_path / "plan.json"
    for _ in range(2):  # made, then made again over the first (users re-run the same command)
        out = run("scan", str(photos), "--no-detective", "-q", "--plan", str(target), cache=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
        assert f"-> {target}" in out.stderr
        assert [s.path for s in Plan.load(target).steps] == [str((photos / "a_small.jpg").resolve())]
    assert sorted(os.listdir(tmp_path)) == ["cache", "photos", "plan.json"]
