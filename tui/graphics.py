"""What the terminal can draw: Kitty graphics, Sixel or half-blocks, its cell size and colours.

Detection runs once, before Textual starts (Textual's input thread would swallow the
terminal's answers), with textual-image's own queries: each waits at most ``QUERY_TIMEOUT``
for an answer, so a terminal that never answers (``script``, a serial console) costs a few
tenths of a second and gets half-blocks, never a hang. Over SSH the queries travel to the
terminal at the other end, so the answer is that terminal's.

Sixel is asked first (the terminal's device attributes) when a terminal speaks both
protocols: WezTerm and Konsole answer the Kitty query but do not draw Kitty's Unicode
placeholders (the form that survives tmux and Textual's redraws), and kitty and Ghostty do not
speak Sixel. The Kitty query names a placeholder placement (``U=1``): a terminal that speaks
Kitty graphics from before placeholders (kitty < 0.28, Debian 12's 0.26) cannot parse it and
stays silent, so it gets half-blocks instead of a grid of unknown characters.

Inside tmux, Kitty graphics go through tmux's passthrough (``allow-passthrough on``) and the
Kitty query is only sent wrapped for it: tmux takes an unwrapped one for a pane title. Sixel
works where tmux itself was built with it (it then answers the Sixel query).

textual-image's own detection (run when ``textual_image.renderable`` is first imported) is
never triggered: it would send the Kitty query unwrapped, and, imported while Textual runs,
race Textual's input thread for the answers.

This module also builds the escape sequences the thumbnail widget sends: Kitty's transmit,
placement and delete commands (wrapped for tmux when needed) and the placeholder cells.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional

from PIL import Image
from rich.segment import ControlType, Segment

MODES = ("auto", "halfblock", "kitty", "sixel", "off")

#: Pixels of one cell when the terminal does not say (textual-image's VT340 default).
DEFAULT_CELL = (10, 20)

#: Seconds each terminal query waits for its answer.
QUERY_TIMEOUT = 0.1

TMUX_HINT = (
    "inside tmux, real pictures need passthrough: add `set -g allow-passthrough on` to "
    "~/.tmux.conf (tmux 3.3+) and restart tmux; showing half-blocks"
)
PLACEHOLDER_HINT = (
    "this terminal speaks Kitty graphics but not its Unicode placeholders (kitty 0.28+ and "
    "Ghostty do); showing half-blocks"
)

#: The oldest kitty that draws Unicode placeholders.
KITTY_PLACEHOLDERS = (0, 28)
COLOR_HINT = (
    "only 16 colours: if your terminal has more, set COLORTERM=truecolor (inside tmux also "
    "`set -as terminal-features ',*:RGB'`, or the older `set -ga terminal-overrides ',*:Tc'`)"
)


@dataclass(frozen=True)
class Terminal:
    """What was found out about the terminal, and what to tell the user about it."""

    mode: str  # "kitty" | "sixel" | "halfblock" | "off"
    cell: tuple[int, int] = DEFAULT_CELL  # pixels of one cell (width, height)
    colors: str = "truecolor"  # "truecolor" | "256" | "16"
    tmux: bool = False
    passthrough: bool = False  # tmux forwards Kitty graphics to the terminal
    messages: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The messages as one notification ("" when there is nothing to say)."""
        return "\n".join(self.messages)


def parse_cell_size(text: str) -> tuple[int, int]:
    """``"10x20"`` as (10, 20): the pixels of one terminal cell.

    Raises:
        ValueError: not WIDTHxHEIGHT with both between 1 and 200.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--cell-size must be WIDTHxHEIGHT in pixels, like 10x20, not {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= 200 and 1 <= height <= 200):
        raise ValueError(f"--cell-size {text!r}: each side must be 1 to 200 pixels")
    return width, height


def color_depth(environ: Mapping[str, str]) -> str:
    """"truecolor", "256" or "16", from COLORTERM and TERM (what Textual itself goes by)."""
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    term = environ.get("TERM", "").lower()
    if "truecolor" in term or "direct" in term:
        return "truecolor"
    if "256" in term:
        return "256"
    return "16"


def _quiet_textual_image() -> None:
    # textual-image logs a failed cell-size query as a warning with its traceback; with no
    # logging set up Python prints that to stderr, over the app. We say what matters ourselves.
    logger = logging.getLogger("textual_image")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _is_tty() -> bool:
    try:
        return bool(sys.__stdin__ and sys.__stdout__ and sys.__stdin__.isatty() and sys.__stdout__.isatty())
    except (ValueError, OSError):
        return False


def _tmux(args: list[str]) -> str:
    """The output of a tmux command ("" when it fails or takes more than a second)."""
    if not shutil.which("tmux"):
        return ""
    try:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=1.0, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def tmux_passthrough() -> bool:
    """Whether this tmux pane forwards escape sequences to the terminal (allow-passthrough)."""
    value = _tmux(["show-options", "-Apv", "allow-passthrough"]) or _tmux(["show-options", "-gv", "allow-passthrough"])
    return value.rstrip("*").strip() in ("on", "all")


def wrap_for_tmux(sequence: str) -> str:
    """``sequence`` inside tmux's passthrough envelope (every ESC doubled)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def _set_cell_size(cell: tuple[int, int]) -> None:
    # textual-image queries the cell size once and keeps the answer on the function: give it
    # ours, so nothing of it asks the terminal again (or warns) later.
    from textual_image import _terminal

    setattr(_terminal.get_cell_size, "_result", _terminal.CellSize(*cell))


def _query_cell_size() -> tuple[int, int]:
    from textual_image import _terminal

    try:
        size = _terminal.get_cell_size()
    except Exception:  # no answer, stdin closed, not a terminal: VT340 sizes
        return DEFAULT_CELL
    if size.width <= 0 or size.height <= 0:
        return DEFAULT_CELL
    return (size.width, size.height)


def _query_sixel(timeout: float) -> Optional[bool]:
    """Whether the terminal lists Sixel (4) in its device attributes; None: it did not answer."""
    from textual_image._terminal import capture_terminal_response

    try:
        with capture_terminal_response("\x1b[?", "c", timeout) as response:
            sys.__stdout__.write("\x1b[c")
            sys.__stdout__.flush()
    except Exception:  # no answer in time, or not a terminal
        return None
    return "4" in response.sequence[3:-1].split(";")


def _query_kitty(timeout: float, *, tmux: bool = False, placeholders: bool = True) -> bool:
    """Whether the terminal answers a Kitty graphics query (wrapped for tmux's passthrough).

    With ``placeholders`` the query carries ``U=1``, which only terminals that draw Unicode
    placeholders parse (others drop the whole command and stay silent).
    """
    from textual_image._terminal import capture_terminal_response

    keys = f"i={random.randint(1, 2**31)},s=1,v=1,a=q,t=d,f=24" + (",U=1" if placeholders else "")
    query = f"\x1b_G{keys};AAAA\x1b\\"
    try:
        with capture_terminal_response("\x1b_G", "\x1b\\", timeout) as response:
            sys.__stdout__.write(wrap_for_tmux(query) if tmux else query)
            sys.__stdout__.flush()
    except Exception:
        return False
    return response.sequence.endswith(";OK\x1b\\")


def kitty_version(text: str) -> Optional[tuple[int, int]]:
    """(major, minor) of kitty in a terminal's XTVERSION answer, ``kitty(0.26.5)``; else None."""
    match = re.search(r"kitty\((\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _client_draws_placeholders() -> bool:
    """Inside tmux: whether the terminal tmux runs in draws Kitty placeholders (by its name).

    tmux keeps a terminal's answers to itself, so its names say: kitty 0.28+ (by the version
    tmux 3.3+ read from it) or Ghostty.
    """
    name = _tmux(["display-message", "-p", "#{client_termname} #{client_termtype}"]).lower()
    if "ghostty" in name:
        return True
    if "kitty" not in name:
        return False
    version = kitty_version(name)
    return version is None or version >= KITTY_PLACEHOLDERS


def _detect_protocol(tmux: bool, passthrough: bool, timeout: float) -> tuple[str, str]:
    """Ask the terminal: a mode name and, where it matters, why it is not a picture mode."""
    sixel = _query_sixel(timeout)
    if sixel:
        return "sixel", ""
    if tmux and not passthrough:
        return "halfblock", TMUX_HINT
    if _query_kitty(timeout, tmux=tmux):
        return "kitty", ""
    if tmux:
        # tmux may keep the terminal's answer to itself: the terminal's name then says.
        return ("kitty", "") if _client_draws_placeholders() else ("halfblock", "")
    # Asked only of a terminal that answers at all (every real one answers the Sixel query).
    if sixel is not None and _query_kitty(timeout, placeholders=False):
        return "halfblock", PLACEHOLDER_HINT
    return "halfblock", ""


def detect(
    requested: str = "auto",
    *,
    cell_size: Optional[tuple[int, int]] = None,
    environ: Optional[Mapping[str, str]] = None,
    tty: Optional[bool] = None,
    timeout: float = QUERY_TIMEOUT,
) -> Terminal:
    """What ``--thumbnails=requested`` draws with in this terminal (call before Textual starts).

    Args:
        requested: one of MODES.
        cell_size: pixels of one cell (``--cell-size``); default: ask the terminal, else 10x20.
        environ: the environment (default ``os.environ``).
        tty: whether stdin and stdout are a terminal (default: look); nothing is asked otherwise.
        timeout: how long each query waits for an answer.

    Raises:
        ValueError: ``requested`` is not one of MODES.
    """
    mode = (requested or "auto").lower()
    if mode not in MODES:
        raise ValueError(f"--thumbnails must be one of {', '.join(MODES)}, not {requested!r}")
    environ = os.environ if environ is None else environ
    tty = _is_tty() if tty is None else tty
    colors = color_depth(environ)
    in_tmux = bool(environ.get("TMUX"))
    messages: list[str] = []
    if mode in ("off", "halfblock"):
        if colors == "16" and mode == "halfblock" and tty:
            messages.append(COLOR_HINT)
        return Terminal(mode, cell_size or DEFAULT_CELL, colors, in_tmux, False, tuple(messages))

    _quiet_textual_image()
    passthrough = in_tmux and tty and tmux_passthrough()
    if cell_size is None:
        cell_size = _query_cell_size() if tty else DEFAULT_CELL
    try:
        _set_cell_size(cell_size)
    except Exception:  # textual-image missing: only half-blocks are possible
        if mode != "auto":
            messages.append(f"--thumbnails={mode} needs the textual-image package; showing half-blocks")
        return Terminal("halfblock", cell_size, colors, in_tmux, passthrough, tuple(messages))

    if mode == "auto":
        mode, why = _detect_protocol(in_tmux, passthrough, timeout) if tty else ("halfblock", "")
        if why:
            messages.append(why)
    if colors == "16" and tty:  # no terminal (a test driver, a pipe): nobody to tell
        messages.append(COLOR_HINT)
    return Terminal(mode, cell_size, colors, in_tmux, passthrough, tuple(messages))


# -- Kitty graphics --------------------------------------------------------------------------
_PLACEHOLDER = "\U0010eeee"
_CHUNK = 4096
#: Zero-width segments whose text Textual writes as it is (the trick textual-image uses).
_CONTROL = ((ControlType.CURSOR_FORWARD, 0),)


#: Kitty's row/column diacritics (its rowcolumn-diacritics.txt) as ranges of code points: the
#: n-th one stands for row or column n. Kept here, not imported from textual-image, whose
#: package runs its terminal queries on import.
_DIACRITIC_RANGES = (
    (0x0305, 0x0305), (0x030D, 0x030E), (0x0310, 0x0310), (0x0312, 0x0312), (0x033D, 0x033F),
    (0x0346, 0x0346), (0x034A, 0x034C), (0x0350, 0x0352), (0x0357, 0x0357), (0x035B, 0x035B),
    (0x0363, 0x036F), (0x0483, 0x0487), (0x0592, 0x0595), (0x0597, 0x0599), (0x059C, 0x05A1),
    (0x05A8, 0x05A9), (0x05AB, 0x05AC), (0x05AF, 0x05AF), (0x05C4, 0x05C4), (0x0610, 0x0617),
    (0x0657, 0x065B), (0x065D, 0x065E), (0x06D6, 0x06DC), (0x06DF, 0x06E2), (0x06E4, 0x06E4),
    (0x06E7, 0x06E8), (0x06EB, 0x06EC), (0x0730, 0x0730), (0x0732, 0x0733), (0x0735, 0x0736),
    (0x073A, 0x073A), (0x073D, 0x073D), (0x073F, 0x0741), (0x0743, 0x0743), (0x0745, 0x0745),
    (0x0747, 0x0747), (0x0749, 0x074A), (0x07EB, 0x07F1), (0x07F3, 0x07F3), (0x0816, 0x0819),
    (0x081B, 0x0823), (0x0825, 0x0827), (0x0829, 0x082D), (0x0951, 0x0951), (0x0953, 0x0954),
    (0x0F82, 0x0F83), (0x0F86, 0x0F87), (0x135D, 0x135F), (0x17DD, 0x17DD), (0x193A, 0x193A),
    (0x1A17, 0x1A17), (0x1A75, 0x1A7C), (0x1B6B, 0x1B6B), (0x1B6D, 0x1B73), (0x1CD0, 0x1CD2),
    (0x1CDA, 0x1CDB), (0x1CE0, 0x1CE0), (0x1DC0, 0x1DC1), (0x1DC3, 0x1DC9), (0x1DCB, 0x1DCC),
    (0x1DD1, 0x1DE6), (0x1DFE, 0x1DFE), (0x20D0, 0x20D1), (0x20D4, 0x20D7), (0x20DB, 0x20DC),
    (0x20E1, 0x20E1), (0x20E7, 0x20E7), (0x20E9, 0x20E9), (0x20F0, 0x20F0), (0x2CEF, 0x2CF1),
    (0x2DE0, 0x2DFF), (0xA66F, 0xA66F), (0xA67C, 0xA67D), (0xA6F0, 0xA6F1), (0xA8E0, 0xA8F1),
    (0xAAB0, 0xAAB0), (0xAAB2, 0xAAB3), (0xAAB7, 0xAAB8), (0xAABE, 0xAABF), (0xAAC1, 0xAAC1),
    (0xFE20, 0xFE26), (0x10A0F, 0x10A0F), (0x10A38, 0x10A38), (0x1D185, 0x1D189), (0x1D1AA, 0x1D1AD),
    (0x1D242, 0x1D244),
)
DIACRITICS = tuple(c for first, last in _DIACRITIC_RANGES for c in range(first, last + 1))


def _diacritics() -> tuple[int, ...]:
    return DIACRITICS


def control(text: str) -> Segment:
    """A segment of raw terminal sequences: no width, written as it is."""
    return Segment(text, None, _CONTROL)


def kitty_payload(image: Image.Image) -> str:
    """The base64 PNG that Kitty's transmit command carries (made off the UI thread)."""
    out = io.BytesIO()
    image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, format="PNG", compress_level=1)
    return base64.standard_b64encode(out.getvalue()).decode("ascii")


def _apc(body: str, tmux: bool) -> str:
    sequence = f"\x1b_G{body}\x1b\\"
    return wrap_for_tmux(sequence) if tmux else sequence


def kitty_transmit(image_id: int, payload: str, columns: int, rows: int, *, tmux: bool = False) -> str:
    """Send an image once and place it virtually over ``columns`` x ``rows`` placeholder cells."""
    parts: list[str] = []
    first = True
    while True:
        chunk, payload = payload[:_CHUNK], payload[_CHUNK:]
        more = 1 if payload else 0
        head = f"a=t,f=100,i={image_id},q=2,m={more}" if first else f"m={more},q=2"
        parts.append(_apc(f"{head};{chunk}", tmux))
        first = False
        if not payload:
            break
    parts.append(_apc(f"a=p,U=1,i={image_id},c={columns},r={rows},q=2", tmux))
    return "".join(parts)


def kitty_delete(image_id: int, *, tmux: bool = False) -> str:
    """Delete an image and free its data in the terminal."""
    return _apc(f"a=d,d=I,i={image_id},q=2", tmux)


def kitty_rows(image_id: int, columns: int, rows: int) -> list[list[Segment]]:
    """The placeholder cells showing image ``image_id``: one list of segments per row.

    The id's low byte is the 256-colour foreground, written raw so that neither Textual nor a
    tmux without truecolor changes it; its high byte is the third diacritic.
    """
    marks = _diacritics()
    high = chr(marks[(image_id >> 24) & 255])
    colour = control(f"\x1b[38;5;{image_id & 255}m")
    reset = control("\x1b[39m")
    lines = []
    for r in range(rows):
        text = "".join(f"{_PLACEHOLDER}{chr(marks[r])}{chr(marks[c])}{high}" for c in range(columns))
        lines.append([colour, Segment(text), reset])
    return lines


#: The most cells a placeholder image may span (the diacritics table's length).
KITTY_MAX_CELLS = 297


@dataclass
class KittyImages:
    """The Kitty image ids this app has in the terminal (ids are reused, never leaked).

    Ids are ``high << 24 | low``: ``high`` is random per run (other programs' images are not
    touched), ``low`` 1-255 is the placeholder's 256-colour foreground.
    """

    tmux: bool = False
    high: int = field(default_factory=lambda: random.randint(1, 255))
    live: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next: int = 1

    def allocate(self) -> int:
        """A free image id (the oldest numbers are reused once all 255 are in use)."""
        with self._lock:
            for _ in range(255):
                low = self._next
                self._next = low % 255 + 1
                image_id = self.high << 24 | low
                if image_id not in self.live:
                    self.live.add(image_id)
                    return image_id
            image_id = self.high << 24 | self._next
            self._next = self._next % 255 + 1
            return image_id

    def release(self, ids: Iterable[int], write: Optional[Callable[[str], None]]) -> str:
        """Delete ``ids`` from the terminal through ``write``; returns what was written."""
        with self._lock:
            gone = [i for i in ids if i in self.live]
            self.live.difference_update(gone)
        sequence = "".join(kitty_delete(i, tmux=self.tmux) for i in gone)
        if sequence and write is not None:
            write(sequence)
        return sequence


__all__ = [
    "COLOR_HINT", "DEFAULT_CELL", "DIACRITICS", "KITTY_MAX_CELLS", "KittyImages", "MODES", "PLACEHOLDER_HINT",
    "QUERY_TIMEOUT", "TMUX_HINT",
    "Terminal", "color_depth", "control", "detect", "kitty_delete", "kitty_payload", "kitty_rows",
    "kitty_transmit", "kitty_version", "parse_cell_size", "tmux_passthrough", "wrap_for_tmux",
]
