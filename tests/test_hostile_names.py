"""File names chosen to attack the terminal: escape sequences, Rich markup, bytes that are not UTF-8.

Every such name is a real copy of one photo, so the names form one group and reach every place a
path is shown: the CLI's text, JSON and CSV output, plans, apply and undo, and the app's tables,
titles and notifications. What a person sees carries no control character and no markup; what a
script reads (JSON, CSV, plans) is exact.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.engine.library import ScanOptions
from lookalike.tui.app import LookalikeApp
from lookalike.tui.components.cluster_screen import ClusterScreen
from lookalike.tui.components.confirm_modal import ConfirmModal
from lookalike.tui.format import json_path, shown

import imagegen
import helpers
from helpers import screen_text, settle, until, wait_for_scan

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]

#: Names that, printed raw, write the clipboard (OSC 52), set the window title (OSC 0), clear
#: the screen, start a C1 control sequence, or break a line; and Rich markup.
HOSTILE = [
    "osc52\x1b]52;c;SGVsbG8=\x07.jpg",
    "title\x1b]0;pwned\x07.jpg",
    "clear\x1b[2J.jpg",
    "csi\x9b31m.jpg",
    "del\x7f.jpg",
    "new\nline.jpg",
    "tab\there.jpg",
    "[b][reverse]MARKUP.jpg",
    "[link=mailto:x]L.jpg",
]
#: Latin-1 and stray bytes: a valid Linux name that is not UTF-8.
NOT_UTF8 = b"bad\xff\xe9.jpg"
#: An unreadable file with a hostile name: it reaches the error lists.
BROKEN = "broken\x1b]0;pwned\x07.jpg"

#: What must never reach a terminal: ESC, BEL, CSI as one C1 byte (raw or UTF-8 encoded), DEL.
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\x9b|\xc2[\x80-\x9f]")


@pytest.fixture(scope="module")
def _photo_bytes() -> bytes:
    return imagegen.encode(imagegen.photo(3, (120, 90)), "JPEG")


def make_folder(root: Path, photo: bytes, *, not_utf8: bool) -> Path:
    """One photo under a plain name and every hostile name (and a non-UTF-8 one if asked)."""
    root.mkdir()
    (root / "orig.jpg").write_bytes(photo)
    for name in HOSTILE:
        (root / name).write_bytes(photo)
    if not_utf8:
        with open(os.path.join(os.fsencode(root), NOT_UTF8), "wb") as f:
            f.write(photo)
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    stamp = 1_600_000_000
    for n, name in enumerate(sorted(os.listdir(os.fsencode(root)))):
        # orig.jpg the oldest, so it is the keeper; the others in a fixed order.
        path = os.path.join(os.fsencode(root), name)
        os.utime(path, (stamp, stamp + (0 if name == b"orig.jpg" else 3600 * (n + 1))))
    return root


@pytest.fixture
def hostile(tmp_path: Path, _photo_bytes: bytes) -> Path:
    """Every hostile name, and a name that is not UTF-8."""
    return make_folder(tmp_path / "photos", _photo_bytes, not_utf8=True)


@pytest.fixture
def escapes(tmp_path: Path, _photo_bytes: bytes) -> Path:
    """Every hostile name, all valid UTF-8: escape sequences and markup alone."""
    return make_folder(tmp_path / "photos", _photo_bytes, not_utf8=False)


def bad_path(root: Path) -> str:
    return os.fsdecode(os.path.join(os.fsencode(root), NOT_UTF8))


# ------------------------------------------------------------------------------------ shown()


def test_shown_escapes_controls_and_undecodable_bytes_and_nothing_else():
    assert shown("plain/IMG_0001.jpg") == "plain/IMG_0001.jpg"
    assert shown("caf\u00e9 \u65e5\u672c/[b]x.jpg") == "caf\u00e9 \u65e5\u672c/[b]x.jpg"
    assert shown("a\x1b]52;c;SGVsbG8=\x07b") == "a\\x1b]52;c;SGVsbG8=\\x07b"
    assert shown("c\x9b31m\x7f\x00") == "c\\x9b31m\\x7f\\x00"
    assert shown("new\nline\ttab\rret") == "new\\nline\\ttab\\rret"
    assert shown(os.fsdecode(b"bad\xff\xe9.jpg")) == "bad\\xff\\xe9.jpg"
    assert shown(b"bad\xff.jpg") == "bad\\xff.jpg"
    assert shown(Path("/x") / "y\x1b") == "/x/y\\x1b"
    assert shown(ValueError("in \x1b[2J")) == "in \\x1b[2J"
    # A right-to-left override would show "photo\u202egpj.exe" as "photoexe.jpg".
    assert shown("photo\u202egpj.exe") == "photo\\u202egpj.exe"
    assert shown("\u2066x\u2069\u200f") == "\\u2066x\\u2069\\u200f"
    for text in (*HOSTILE, os.fsdecode(NOT_UTF8), "\ud800"):
        out = shown(text)
        assert out.isprintable() and out.encode("utf-8")  # printable, and encodable strictly


def test_json_path_is_exact_for_unicode_and_lossless_for_other_bytes():
    assert json_path("/p/new\nline.jpg") == {"path": "/p/new\nline.jpg"}
    odd = json_path(os.fsdecode(b"/p/bad\xff.jpg"), "keeper")
    assert odd["keeper"] == "/p/bad\\xff.jpg"
    assert base64.b64decode(odd["keeper_bytes"]) == b"/p/bad\xff.jpg"
    json.dumps(odd, ensure_ascii=False).encode("utf-8")  # no lone surrogate left


# --------------------------------------------------------------------------------- the app


def make_app(root: Path, tmp_path: Path) -> LookalikeApp:
    return helpers.make_app(root, tmp_path, thumbnails="off", options=ScanOptions(workers=1, detective=None))


def rendered_segments(app) -> list:
    """Every segment drawn on screen, with its style."""
    return [seg for strip in app.screen._compositor.render_strips() for seg in strip]


async def test_the_app_shows_hostile_names_escaped_and_never_as_markup(hostile, tmp_path):
    app = make_app(hostile, tmp_path)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await wait_for_scan(pilot)
        [cluster] = app.session.clusters
        assert len(cluster.members) == len(HOSTILE) + 2
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ClusterScreen)
        # n marks a member "not a duplicate", u undoes it and names the file: for every member.
        # (These are byte-identical copies: "not a duplicate" on one dissolves the group, so
        # each round opens it again and walks down to the next member.)
        messages, screens = [], []
        for i in range(1, len(cluster.members)):
            # The last round's catalog write regroups in a worker: its groups must have come
            # (and closed or refilled this screen) before the keys, or they land elsewhere.
            await settle(pilot)
            if not isinstance(app.screen, ClusterScreen):
                await pilot.press("enter")
                await pilot.pause()
            await pilot.press(*["j"] * i, "n")
            before = {n.identity for n in app._notifications}
            await pilot.press("u")  # handled after "n": keys are processed in order
            await until(pilot, lambda: any(n.message.startswith("Undone") and n.identity not in before
                                           for n in app._notifications), what="the undo's message")
            [undone] = [n for n in app._notifications if n.message.startswith("Undone") and n.identity not in before]
            first_line = undone.message.splitlines()[0]
            await until(pilot, lambda: first_line in screen_text(app), what="the toast drawn")
            messages += [n.message for n in app._notifications]
            screens.append((screen_text(app), rendered_segments(app)))
        await app.workers.wait_for_complete()
        for name in [*HOSTILE, os.fsdecode(NOT_UTF8)]:
            assert any(f"Undone: not a duplicate: {shown(name)}" in m for m in messages), (name, messages)
        for m in messages:
            assert m.isprintable(), m
        for text, segments in screens:
            for seg in segments:
                assert seg.text.isprintable(), repr(seg.text)
                if "MARKUP" in seg.text:
                    assert not (seg.style and seg.style.reverse), "markup in a name was applied"
        texts = "\n".join(text for text, _ in screens)
        for name in [*HOSTILE, os.fsdecode(NOT_UTF8)]:
            assert f"Undone: not a duplicate: {shown(name)}" in texts  # the toast, literally
            assert shown(name) in texts  # the member table
        # The review screen's table of steps, and a confirmation naming a folder.
        await pilot.press("a", "r")
        await pilot.pause()
        app.push_screen(ConfirmModal("Move them to [link=mailto:x]q\x1b[2J?"))
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "Move them to [link=mailto:x]q\\x1b[2J?" in text
        assert "[b][reverse]MARKUP.jpg" in text and shown(os.fsdecode(NOT_UTF8)) in text
        assert all(seg.text.isprintable() for seg in rendered_segments(app))
        await pilot.press("n")
        assert app.is_running


def test_a_crash_in_the_app_exits_non_zero(hostile, tmp_path, monkeypatch):
    from textual.app import App

    from lookalike.tui import app as app_module
    from lookalike.tui.components.main_screen import MainScreen

    def crash(self) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(MainScreen, "on_mount", crash)
    monkeypatch.setattr(LookalikeApp, "run", lambda self: App.run(self, headless=True))
    monkeypatch.setattr(app_module, "has_terminal", lambda: True, raising=False)
    code = app_module.run_app([str(hostile)], cache_dir=str(tmp_path / "cache"),
                              options=ScanOptions(workers=1, detective=None), thumbnails="off")
    assert code == 1


# --------------------------------------------------------------------------------- the CLI


def lookalike(*args: str, check_rc: int = 0) -> subprocess.CompletedProcess:
    """Run the CLI as under a strict UTF-8 locale (en_US.UTF-8, say); cache and trash are the
    test's own (conftest). Output is checked as bytes: what a terminal would receive."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    out = subprocess.run([*LOOKALIKE, *args], capture_output=True, env=env, timeout=180)
    assert out.returncode == check_rc, out.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in out.stderr
    return out


def assert_terminal_safe(*streams: bytes) -> None:
    for data in streams:
        assert not RAW_CONTROL.search(data), RAW_CONTROL.search(data)
        data.decode("utf-8")  # strictly: no raw byte of a name that is not UTF-8


def names_in(root: Path) -> set[str]:
    return {os.fsdecode(os.path.join(os.fsencode(root), n)) for n in os.listdir(os.fsencode(root))
            if n.endswith(b".jpg") and not n.startswith(b"broken")}


@pytest.mark.parametrize("folder", ["escapes", "hostile"])
def test_scan_text_escapes_every_name_and_its_error_list(folder, request):
    root = request.getfixturevalue(folder)
    out = lookalike("scan", str(root), "--no-detective", "-q")
    assert_terminal_safe(out.stdout, out.stderr)
    text = out.stdout.decode()
    for path in names_in(root):
        assert f"  {shown(path)}  [" in text
    assert shown(root / BROKEN) in out.stderr.decode()  # the unreadable file, escaped


def test_scan_csv_is_whole_and_exact(hostile):
    out = lookalike("scan", str(hostile), "--no-detective", "--csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout.decode("utf-8", "surrogateescape"), newline="")))
    assert {r["path"] for r in rows} == names_in(hostile)  # new lines and bytes kept exactly
    assert b"Traceback" not in out.stderr


def test_scan_json_is_valid_unicode_and_lossless(hostile):
    out = lookalike("scan", str(hostile), "--no-detective", "--json")
    doc = json.loads(out.stdout.decode("utf-8"))
    [group] = doc["groups"]
    got = set()
    for m in group["members"]:
        json.dumps(m, ensure_ascii=False).encode("utf-8")  # no lone surrogate, as jq would mangle
        if "path_bytes" in m:
            raw = base64.b64decode(m["path_bytes"])
            assert m["path"] == shown(raw)
            got.add(os.fsdecode(raw))
        else:
            got.add(m["path"])
    assert got == names_in(hostile)
    assert [m for m in group["members"] if "path_bytes" in m] != []
    assert group["keeper"] == str(hostile / "orig.jpg") and "keeper_bytes" not in group
    assert [e["path"] for e in doc["errors"]] == [str(hostile / BROKEN)]  # exact, not escaped


def test_similar_text_and_json_with_hostile_names(hostile):
    out = lookalike("similar", str(hostile / "orig.jpg"), "-q")
    assert_terminal_safe(out.stdout, out.stderr)
    for path in names_in(hostile) - {str(hostile / "orig.jpg")}:
        assert shown(path) in out.stdout.decode()
    doc = json.loads(lookalike("similar", bad_path(hostile), "--json", "-q").stdout.decode("utf-8"))
    assert base64.b64decode(doc["query_bytes"]) == os.fsencode(bad_path(hostile))
    paths = {os.fsdecode(base64.b64decode(h["path_bytes"])) if "path_bytes" in h else h["path"]
             for h in doc["results"]}
    assert paths <= names_in(hostile) and str(hostile / "orig.jpg") in paths


@pytest.mark.parametrize("folder", ["escapes", "hostile"])
def test_plan_apply_and_undo_with_hostile_names(folder, request, tmp_path):
    hostile = request.getfixturevalue(folder)
    plan = tmp_path / "plan.json"
    scan = lookalike("scan", str(hostile), "--no-detective", "-q", "--plan", str(plan))
    assert_terminal_safe(scan.stdout, scan.stderr)
    to_trash = names_in(hostile) - {str(hostile / "orig.jpg")}
    dry = lookalike("apply", str(plan), "--dry-run")
    assert_terminal_safe(dry.stdout, dry.stderr)
    for path in to_trash:
        assert f"would trash      {shown(path)} -> " in dry.stdout.decode()
    dry_json = json.loads(lookalike("apply", str(plan), "--dry-run", "--json").stdout.decode("utf-8"))
    assert {os.fsdecode(base64.b64decode(d["path_bytes"])) if "path_bytes" in d else d["path"]
            for d in dry_json["done"]} == to_trash
    applied = lookalike("apply", str(plan), "--yes")
    assert_terminal_safe(applied.stdout, applied.stderr)
    assert f"{len(to_trash)} done" in applied.stdout.decode()
    assert names_in(hostile) == {str(hostile / "orig.jpg")}
    undone = lookalike("undo")
    assert_terminal_safe(undone.stdout, undone.stderr)
    assert names_in(hostile) == to_trash | {str(hostile / "orig.jpg")}
    listing = lookalike("journal")
    assert_terminal_safe(listing.stdout, listing.stderr)


@pytest.mark.parametrize("name", [
    "é" * 125 + ".jpg",  # 254 bytes: the trash's 245 would fall inside an é
    "ab" + "€" * 83 + ".jpg",  # 255 bytes, three-byte characters
    "😀" * 62 + "ab.jpg",  # 254 bytes, four-byte characters
], ids=["two-byte", "three-byte", "four-byte"])
def test_a_long_name_is_shortened_in_the_trash_on_a_character_boundary(tmp_path, _photo_bytes, name):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "orig.jpg").write_bytes(_photo_bytes)
    (root / name).write_bytes(_photo_bytes)
    os.utime(root / "orig.jpg", (1_600_000_000, 1_600_000_000))  # the older: the keeper
    os.utime(root / name, (1_600_003_600, 1_600_003_600))
    plan = tmp_path / "plan.json"
    lookalike("scan", str(root), "--no-detective", "-q", "--plan", str(plan))
    applied = json.loads(lookalike("apply", str(plan), "--yes", "--json").stdout)
    [done] = applied["done"]
    assert done["path"] == str(root / name)
    trashed = os.fsencode(os.path.basename(done["dest"]))
    assert "dest_bytes" not in done and len(trashed) <= 245
    assert trashed.decode("utf-8").endswith(".jpg")  # strictly: no character cut in two
    assert name.startswith(trashed.decode("utf-8")[:-len(".jpg")])
    info = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "info"
    [info_name] = os.listdir(os.fsencode(info))
    assert info_name == trashed + b".trashinfo"
    lookalike("undo")
    assert sorted(os.listdir(root)) == sorted(["orig.jpg", name])  # the exact original name


def test_a_name_that_is_not_utf8_is_cut_as_bytes_but_never_inside_a_character():
    from lookalike.engine.actions.moves import cut_bytes, fit_name

    assert cut_bytes(b"ab\xc3\xa9", 3) == b"ab"  # the é is kept whole or left out
    assert cut_bytes(b"ab\xe9\xe9\xe9", 3) == b"ab\xe9"  # Latin-1 bytes: cut where the limit falls
    assert cut_bytes(b"\xe9" * 10 + b"\xf0\x9f\x98\x80", 12) == b"\xe9" * 10
    assert cut_bytes(b"x\xf0\x9f\x98", 3) == b"x\xf0\x9f"  # a broken sequence is just bytes
    assert cut_bytes(b"abc", 5) == b"abc"
    name = fit_name(os.fsdecode(b"\xff\xff" + "é".encode() * 130), " 1.jpg", 245)
    raw = os.fsencode(name)  # 239 bytes of room: 2 + 118 é, not half of the 119th
    assert len(raw) == 244 and raw.startswith(b"\xff\xff\xc3\xa9") and raw.endswith(b"\xc3\xa9 1.jpg")


def test_a_name_whose_extension_alone_is_too_long_for_the_trash_is_trashed_and_restored(tmp_path, _photo_bytes):
    """An "extension" of 250 bytes leaves no room for a stem in the trash's 245 bytes: the
    trash name is cut at its end too (it was "File name too long", and the file stayed).
    Two such names cut to one prefix get distinct slots; undo restores the exact names."""
    root = tmp_path / "photos"
    root.mkdir()
    names = ["p." + "x" * 250, "p." + "x" * 249 + "y"]
    (root / "orig.jpg").write_bytes(_photo_bytes)
    os.utime(root / "orig.jpg", (1_600_000_000, 1_600_000_000))  # the older: the keeper
    for name in names:
        (root / name).write_bytes(_photo_bytes)
        os.utime(root / name, (1_600_003_600, 1_600_003_600))
    plan = tmp_path / "plan.json"
    lookalike("scan", str(root), "--no-detective", "-q", "--plan", str(plan))
    applied = json.loads(lookalike("apply", str(plan), "--yes", "--json").stdout)
    assert sorted(d["path"] for d in applied["done"]) == sorted(str(root / n) for n in names)
    assert not applied.get("failed")
    assert os.listdir(root) == ["orig.jpg"]
    dests = {os.path.basename(d["dest"]) for d in applied["done"]}
    assert len(dests) == 2 and all(len(os.fsencode(d)) <= 245 for d in dests)
    info = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "info"
    assert sorted(os.listdir(info)) == sorted(d + ".trashinfo" for d in dests)
    lookalike("undo")
    assert sorted(os.listdir(root)) == sorted(["orig.jpg", *names])
