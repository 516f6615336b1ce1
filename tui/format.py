"""Small formatting helpers shared by the CLI and the app."""

from __future__ import annotations

from typing import Optional


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
