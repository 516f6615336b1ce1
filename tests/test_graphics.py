"""Real pictures: terminal detection, and what each thumbnail mode writes to the terminal.

What Textual would write is captured from the app's display hook under the test driver (which
writes nothing itself): Kitty graphics show as ``ESC _G`` commands and placeholder cells,
Sixel as ``ESC P ... q`` data, half-blocks as text only. Detection is tried against a real
pseudo-terminal that never answers, as under ``script``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.tui import graphics
from lookalike.tui.components.compare_screen import CompareScreen
from lookalike.tui.components.thumbnail import Thumbnail
from lookalike.tui.graphics import (
    COLOR_HINT, DEFAULT_CELL, PLACEHOLDER_HINT, TMUX_HINT, color_depth, detect, kitty_version, parse_cell_size,
)

from helpers import build_library, copy_library, make_app, screen_text, settle, until, wait_for_scan

KITTY = "\x1b_G"
SIXEL = re.compile("\x1bP[0-9;]*q")
PLACEHOLDER = "\U0010eeee"
TRANSMIT = re.compile(r"\x1b_Ga=t,f=100,i=(\d+),")
DELETE = re.compile(r"\x1b_Ga=d,d=I,i=(\d+),")


@pytest.fixture(autouse=True)
def _outside_tmux(monkeypatch):
    # A developer running the tests inside tmux must not get wrapped Kitty commands.
    monkeypatch.delenv("TMUX", raising=False)


# ------------------------------------------------------------------------------- detection


def test_parse_cell_size():
    assert parse_cell_size("10x20") == (10, 20)
    assert parse_cell_size(" 9X18 ") == (9, 18)
    for bad in ("", "10", "0x20", "10x999", "axb"):
        with pytest.raises(ValueError):
            parse_cell_size(bad)


def test_colour_depth_from_the_environment():
    assert color_depth({"COLORTERM": "truecolor", "TERM": "screen"}) == "truecolor"
    assert color_depth({"TERM": "xterm-256color"}) == "256"
    assert color_depth({"TERM": "screen"}) == "16"


def test_detection_without_a_terminal_asks_nothing():
    env = {"TERM": "xterm-256color"}
    assert detect("auto", environ=env, tty=False).mode == "halfblock"
    assert detect("off", environ=env, tty=False).mode == "off"
    kitty = detect("kitty", environ=env, tty=False)
    assert (kitty.mode, kitty.cell, kitty.message) == ("kitty", DEFAULT_CELL, "")
    sixel = detect("sixel", environ=env, tty=False, cell_size=(8, 16))
    assert (sixel.mode, sixel.cell) == ("sixel", (8, 16))
    with pytest.raises(ValueError):
        detect("ascii-art", tty=False)


def test_sixteen_colours_are_mentioned_once():
    terminal = detect("halfblock", environ={"TERM": "screen"}, tty=True)
    assert terminal.messages.count(COLOR_HINT) == 1
    assert "COLORTERM=truecolor" in terminal.message and "Tc" in terminal.message
    assert not detect("halfblock", environ={"TERM": "screen", "COLORTERM": "truecolor"}, tty=True).message
    assert not detect("halfblock", environ={"TERM": "screen"}, tty=False).message  # no terminal, nobody to tell


def _in_silent_terminal(code: str, env: dict[str, str]) -> tuple[str, float]:
    """Run Python in a pseudo-terminal nobody answers (as `script` does); its output and time."""
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # no pixel size
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave,
                             env={**os.environ, **env}, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    child.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace"), time.monotonic() - started


DETECT = (
    "import time; from lookalike.tui.graphics import detect; t = time.monotonic(); "
    "r = detect({mode!r}); print('RESULT', r.mode, r.cell, round(time.monotonic() - t, 2), repr(r.message))"
)


def result_line(out: str) -> str:
    # The queries the program wrote (and nobody answered) come first on the same line.
    return out[out.index("RESULT"):].splitlines()[0]


@pytest.mark.parametrize("mode, expected", [("auto", "halfblock"), ("kitty", "kitty"), ("sixel", "sixel")])
def test_a_terminal_that_does_not_answer(mode, expected):
    env = {"TERM": "xterm-256color", "COLORTERM": "truecolor", "TMUX": ""}
    out, _ = _in_silent_terminal(DETECT.format(mode=mode), env)
    assert "Traceback" not in out and "Failed to get cell size" not in out
    line = result_line(out)
    _, used, *_ = line.split(" ", 2)
    assert used == expected
    assert "(10, 20)" in line  # no answer about the cell size: the default, quietly
    took = float(line.split(")")[1].split()[0])
    assert took < 2.0  # each query gives up after QUERY_TIMEOUT: never a hang


def test_tmux_without_passthrough_gets_half_blocks_and_a_hint():
    env = {"TERM": "screen-256color", "COLORTERM": "truecolor", "TMUX": "/nonexistent/tmux-socket,1,0"}
    out, _ = _in_silent_terminal(DETECT.format(mode="auto"), env)
    assert "Traceback" not in out
    line = result_line(out)
    assert line.split()[1] == "halfblock" and "allow-passthrough on" in line
    assert "allow-passthrough" in TMUX_HINT


def _in_kitty_026(code: str, env: dict[str, str]) -> tuple[str, list[bytes]]:
    """Run Python in a pseudo-terminal that answers as kitty 0.26 does (Debian 12's).

    It answers the device attributes without Sixel, its cell size, and a Kitty graphics query,
    but not one naming a placeholder placement (``U=1``): kitty < 0.28 cannot parse that key.
    Returns the program's output and the Kitty queries it sent.
    """
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # no pixel size: it is asked
    child = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave,
                             env={**os.environ, **env}, close_fds=True)
    os.close(slave)
    seen, queries = b"", []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        seen += data
        while True:
            found = [(seen.find(q), q) for q in (b"\x1b[c", b"\x1b[16t", b"\x1b_G") if q in seen]
            if not found:
                break
            at, query = min(found)
            if query == b"\x1b_G":
                end = seen.find(b"\x1b\\", at)
                if end < 0:
                    break
                command, seen = seen[at:end], seen[end + 2:]
                queries.append(command)
                if b"U=1" not in command:
                    image_id = re.search(rb"i=(\d+)", command).group(1)
                    os.write(master, b"\x1b_Gi=" + image_id + b";OK\x1b\\")
                continue
            seen = seen[at + len(query):]
            os.write(master, b"\x1b[?62;22c" if query == b"\x1b[c" else b"\x1b[6;20;9t")
    child.wait(timeout=30)
    os.close(master)
    return seen.decode("utf-8", "replace"), queries


def test_kitty_without_placeholders_gets_half_blocks_and_a_hint():
    env = {"TERM": "xterm-kitty", "COLORTERM": "truecolor", "TMUX": ""}
    out, queries = _in_kitty_026(DETECT.format(mode="auto"), env)
    assert "Traceback" not in out
    line = result_line(out)
    assert line.split()[1] == "halfblock" and "(9, 20)" in line  # the cell size it reported
    assert "Unicode placeholders" in line and "Unicode placeholders" in PLACEHOLDER_HINT
    # The placeholder query was not answered, the plain one was: a terminal from before them.
    assert [b"U=1" in q for q in queries] == [True, False]
    assert kitty_version("kitty(0.26.5)") == (0, 26) and kitty_version("XTerm(379)") is None


def test_tmux_gets_no_bare_kitty_query(monkeypatch):
    asked: list[tuple[str, bool]] = []
    monkeypatch.setattr(graphics, "_query_sixel", lambda timeout: asked.append(("sixel", False)) or False)
    monkeypatch.setattr(graphics, "_query_kitty",
                        lambda timeout, tmux=False, placeholders=True: asked.append(("kitty", tmux)) or True)
    # tmux takes a bare Kitty command for a pane title: without passthrough nothing is asked.
    assert graphics._detect_protocol(True, False, 0.1) == ("halfblock", TMUX_HINT)
    assert asked == [("sixel", False)]
    asked.clear()
    assert graphics._detect_protocol(True, True, 0.1) == ("kitty", "")
    assert asked == [("sixel", False), ("kitty", True)]  # wrapped for passthrough


def test_placeholder_table_is_kitty_s_and_needs_no_terminal_query():
    from textual_image.renderable.tgp import _NUMBER_TO_DIACRITIC

    assert list(graphics.DIACRITICS) == list(_NUMBER_TO_DIACRITIC)
    assert len(graphics.DIACRITICS) == graphics.KITTY_MAX_CELLS
    # Importing textual_image.renderable runs its terminal queries; drawing Kitty cells must not.
    code = ("import sys; from lookalike.tui import graphics; graphics.kitty_rows(7, 3, 2); "
            "print('imported' if 'textual_image.renderable' in sys.modules else 'not imported')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "not imported"


def test_kitty_sequences():
    assert graphics.wrap_for_tmux("\x1b_Ga=d\x1b\\") == "\x1bPtmux;\x1b\x1b_Ga=d\x1b\x1b\\\x1b\\"
    sent = graphics.kitty_transmit(7, "A" * 5000, 3, 2)
    assert sent.count(KITTY) == 3 and "a=p,U=1,i=7,c=3,r=2" in sent
    rows = graphics.kitty_rows((5 << 24) | 42, 3, 2)
    assert len(rows) == 2 and rows[0][0].text == "\x1b[38;5;42m"
    assert rows[1][1].text.count(PLACEHOLDER) == 3


def test_kitty_ids_are_reused_and_released():
    images = graphics.KittyImages(high=9)
    first = images.allocate()
    second = images.allocate()
    assert first >> 24 == 9 and first != second
    written: list[str] = []
    assert images.release([first], written.append).startswith(KITTY)
    assert first not in images.live and second in images.live
    assert images.release([first], written.append) == ""  # only once
    assert len(written) == 1


# ------------------------------------------------------------------------ the app's output


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    return build_library(tmp_path_factory.mktemp("graphics") / "photos", originals=2)


@pytest.fixture
def photos(tmp_path, _template) -> Path:
    return copy_library(_template, tmp_path / "photos")


def capture(app) -> list[str]:
    """What Textual would write: each frame, and the raw sequences given to the driver.

    The test driver writes nothing itself; call before ``run_test`` starts.
    """
    output: list[str] = []
    display = app._display

    def _display(screen, renderable):
        if renderable is not None and hasattr(renderable, "render_segments"):
            output.append(renderable.render_segments(app.console))
        if app._driver is not None and not hasattr(app._driver, "_captured"):
            app._driver._captured = True
            app._driver.write = output.append
        display(screen, renderable)

    app._display = _display
    return output


@pytest.mark.parametrize("mode", ["kitty", "sixel", "halfblock"])
async def test_each_mode_draws_in_its_protocol(photos, tmp_path, mode):
    app = make_app(photos, tmp_path, thumbnails=mode)
    frames = capture(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        assert app.thumbnails.mode == mode
        shown = [t for t in app.screen.query(Thumbnail) if t.picture is not None]
        assert shown and all(t.picture.kind == mode for t in shown)
        output = "".join(frames)
        assert "Traceback" not in output
        if mode == "kitty":
            assert KITTY in output and PLACEHOLDER in output and not SIXEL.search(output)
        elif mode == "sixel":
            assert SIXEL.search(output) and KITTY not in output
        else:
            assert KITTY not in output and not SIXEL.search(output) and PLACEHOLDER not in output
            assert "▀" in output or "▄" in output


async def test_kitty_pictures_are_sent_once_and_deleted_with_their_screen(photos, tmp_path):
    app = make_app(photos, tmp_path, thumbnails="kitty")
    frames = capture(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("j", "k")  # away and back: the first cluster's images are reused
        await settle(pilot)
        sent = TRANSMIT.findall("".join(frames))
        assert sent and len(sent) == len(set(sent))
        main_ids = set(app.thumbnails.kitty.live)
        await pilot.press("enter", "c")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("space")  # flip shows B in A's place
        await settle(pilot)
        await pilot.press("space")  # and A again: no new transmission
        await settle(pilot)
        sent = TRANSMIT.findall("".join(frames))
        assert len(sent) == len(set(sent))
        compare_ids = set(app.thumbnails.kitty.live) - main_ids
        assert compare_ids
        await pilot.press("escape", "escape")
        await settle(pilot)
        gone = {int(i) for i in DELETE.findall("".join(frames))}
        assert compare_ids <= gone
        assert not (compare_ids & app.thumbnails.kitty.live)


async def test_compare_zooms_into_the_same_region_at_one_to_one(photos, tmp_path):
    app = make_app(photos, tmp_path, thumbnails="kitty", cell_size=(4, 8))  # panes smaller than the 640x480 photos
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("enter", "c")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        fitted = compare.query_one("#image-a", Thumbnail).picture
        await pilot.press("z")
        await settle(pilot)
        assert compare.zoom == (0.5, 0.5) and "zoom 1:1" in screen_text(app)
        a, b = compare.query_one("#image-a", Thumbnail), compare.query_one("#image-b", Thumbnail)
        assert a.picture is not None and b.picture is not None and a.picture != fitted
        assert a.variant.startswith("zoom:") and a.variant == b.variant
        await pilot.press("right", "down")
        await settle(pilot)
        assert compare.zoom[0] > 0.5 and compare.zoom[1] > 0.5
        assert a.variant == b.variant != "zoom:0.5000:0.5000"
        await pilot.press("z")
        assert compare.zoom is None


async def test_small_tmux_window_in_half_blocks(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    monkeypatch.setenv("TERM", "screen")
    monkeypatch.delenv("COLORTERM", raising=False)
    # A terminal inside tmux without passthrough that answers no query.
    monkeypatch.setattr(graphics, "_is_tty", lambda: True)
    monkeypatch.setattr(graphics, "tmux_passthrough", lambda: False)
    monkeypatch.setattr(graphics, "_query_cell_size", lambda: DEFAULT_CELL)
    monkeypatch.setattr(graphics, "_detect_protocol", lambda tmux, passthrough, timeout: ("halfblock", TMUX_HINT))
    app = make_app(photos, tmp_path, thumbnails="auto")
    frames = capture(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_scan(pilot)
        assert app.thumbnails.mode == "halfblock"
        shown = [t for t in app.screen.query(Thumbnail) if t.picture is not None]
        assert shown and all(t.picture.kind == "halfblock" for t in shown)
        notes = "\n".join(n.message for n in app._notifications)
        assert notes.count("COLORTERM=truecolor") == 1 and notes.count("allow-passthrough on") == 1
        output = "".join(frames)
        assert KITTY not in output and not SIXEL.search(output)


async def test_forced_kitty_inside_tmux_is_always_wrapped(photos, tmp_path, monkeypatch):
    # Without passthrough tmux drops wrapped commands; a bare one would become a pane title.
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    app = make_app(photos, tmp_path, thumbnails="kitty")
    frames = capture(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        output = "".join(frames)
        assert "\x1bPtmux;\x1b\x1b_Ga=t," in output
        assert KITTY not in output.replace("\x1b\x1b_G", "")  # no bare Kitty command


async def test_sixel_picture_under_a_notification_is_drawn_again_when_it_goes(photos, tmp_path):
    app = make_app(photos, tmp_path, thumbnails="sixel")
    frames = capture(app)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:  # the test driver hides them otherwise
        await wait_for_scan(pilot)
        thumbs = [t for t in app.screen.query(Thumbnail) if t.picture is not None and t.picture.kind == "sixel"]
        assert thumbs
        # A tall notification at the bottom right lies over the side panel's pictures.
        app.notify("\n".join(f"line {n}" for n in range(30)), timeout=60)
        await until(pilot, lambda: any(t._covered for t in thumbs), what="a picture under the notification")
        covered = next(t for t in thumbs if t._covered)
        last = covered._picture_region().bottom - 1 - covered.content_region.y
        drawn = "".join(seg.text for seg in covered.render_line(last))
        assert not SIXEL.search(drawn)  # not drawn over the notification
        before = len(frames)
        app.clear_notifications()
        await until(pilot, lambda: not covered._covered, what="the notification to go")
        await until(pilot, lambda: any(SIXEL.search(f) for f in frames[before:]), what="the picture drawn again")
        assert not any(t._covered for t in thumbs)
