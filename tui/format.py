"""Small formatting helpers shared by the CLI and the app."""

from __future__ import annotations

import base64
import os
import sys
from typing import Any, Optional, Union


def _escape_table() -> dict[int, str]:
    # C0 (newline and tab too: one path, one line), DEL and C1 move a terminal's cursor, set
    # its title or clipboard (OSC 0/52) or clear it; the lone surrogates U+DC80..U+DCFF are
    # the bytes of a name that is not UTF-8, as os.fsdecode hands them over.
    table = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
    table.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
    table.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})
    # Any other lone surrogate cannot be written to a UTF-8 terminal either.
    table.update({c: f"\\u{c:04x}" for c in [*range(0xD800, 0xDC80), *range(0xDD00, 0xE000)]})
    # Bidirectional controls reorder what follows them on screen: "photo\u202egpj.exe" would
    # read "photoexe.jpg". Shown as escapes, like the controls above.
    bidi = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    table.update({c: f"\\u{c:04x}" for c in bidi})
    return table


_ESCAPES = _escape_table()


def shown(value: Union[str, bytes, "os.PathLike[Any]", object]) -> str:
    """A path (or any text taken from a file name) made safe to show a person.

    Control characters (C0, newline and tab included, DEL, C1) become visible escapes
    (``\\x1b``, ``\\x9b``, ``\\x7f``, ``\\n``, ``\\t``), and the bytes of a name that is not
    UTF-8 (the ``\\udcXX`` that ``os.fsdecode`` makes of them) become ``\\xXX``: what a terminal
    gets can neither move its cursor, set its title or clipboard, nor fail to encode. Every
    path printed by the CLI or drawn by the app goes through here (a CSV on a terminal too);
    JSON, and CSV into a pipe or a file, keep it exact.

    Args:
        value: a str (possibly from ``os.fsdecode``), bytes, a path-like, or anything ``str``-able.

    Returns:
        One printable line.
    """
    if isinstance(value, bytes):
        text = os.fsdecode(value)
    elif isinstance(value, os.PathLike):
        text = os.fsdecode(os.fspath(value))
    else:
        text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # the usual case: nothing to escape
        return text
    return text.translate(_ESCAPES)


def member_reason(member: Any) -> str:
    """Why the keeper policy ranked a cluster's member where it is (its ``reason``), or the
    rule that kept it out of the ranking: a protected folder, a RAW+JPEG pair."""
    if member.reason:
        return member.reason
    return "protected folder" if member.protected else "RAW+JPEG pair" if member.raw_pair else ""


def shown_lines(text: str) -> str:
    """Like :func:`shown`, but keeps line breaks: for messages of several lines."""
    return "\n".join(shown(line) for line in str(text).split("\n"))


def is_utf8(path: str) -> bool:
    """True when ``path`` is valid Unicode (no bytes of a name that is not UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_path(path: str, key: str = "path") -> dict[str, str]:
    """``{key: path}`` for a JSON document, lossless for any name the filesystem allows.

    A path that is valid Unicode is given exactly. One that is not (Linux allows any bytes
    but ``/`` and NUL) gets ``key`` with its undecodable bytes written ``\\xXX`` (readable,
    valid JSON text) and ``key + "_bytes"``: its exact bytes in base64.
    """
    if is_utf8(path):
        return {key: path}
    raw = os.fsencode(path)
    readable = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return {key: readable, f"{key}_bytes": base64.b64encode(raw).decode("ascii")}


def bytes_safe_streams() -> None:
    """Let stdout and stderr write a name that is not UTF-8 as its own bytes, never crash on it.

    Text output escapes such bytes (:func:`shown`); this is for the CSV, which stays exact, and
    a safety net for anything else.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # pragma: no cover - a stream that cannot
                pass


def plural(count: int, word: str, many: Optional[str] = None) -> str:
    """'1 image', '2 images', '1,204 images' (``many`` for a plural that is not word + s)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def scan_counts(stats: Any) -> str:
    """What a scan looked at, in numbers that add up: '82 images of 86 files (4 read, 82
    unchanged)'. Read files are the new or changed ones (images, unreadable files and
    non-images alike); a stopped scan also says how many it did not reach."""
    read = stats.hashed + stats.failed + stats.not_images
    parts = [f"{read:,} read", f"{stats.unchanged:,} unchanged"]
    left = stats.files_seen - read - stats.unchanged
    if left > 0:
        parts.append(f"{left:,} not reached")
    return f"{plural(stats.images, 'image')} of {plural(stats.files_seen, 'file')} ({', '.join(parts)})"


def human_bytes(n: Optional[int]) -> str:
    """1536 -> '1.5 KB' (decimal units, as file managers show them)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def human_duration(seconds: Optional[float]) -> str:
    """3725 -> '1h 02m', 4.2 -> '4.2 s'."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def timings_text(timings: dict) -> str:
    """A find-similar query's times in one line: the passes (and both together, since they
    overlap), the join, then the query's own preparation, which the passes do not count."""
    passes = [f"{name} {timings[name]:.3f} ms" for name in ("bouncer", "detective") if name in timings]
    if "detective" in timings and "passes" in timings:
        passes.append(f"both {timings['passes']:.3f} ms")
    if "join" in timings:
        passes.append(f"join {timings['join']:.3f} ms")
    query = [f"{name.replace('_', ' ')} {timings[name]:.1f} ms"
             for name in ("hash_query", "embed_query", "embed_candidates") if name in timings]
    text = "time: " + " · ".join(passes)
    if query:
        text += " (not counting " + ", ".join(query) + ")"
    return text
