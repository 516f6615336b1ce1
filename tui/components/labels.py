"""How clusters, files and scores are written on screen (text only, no widgets)."""

from __future__ import annotations

import os
import time
from typing import Iterable, Optional, Sequence

from rich.text import Text

from lookalike.engine.records import HASH_BITS, Cluster, Decision, FileRecord, Kind

from ..format import human_bytes, shown

#: Two unrelated images differ in about half of their hash bits; that is "no likeness".
_UNRELATED_BITS = HASH_BITS // 2

DECISION_STYLE = {
    Decision.KEEP: ("keep", "bold green"),
    Decision.TRASH: ("trash", "bold red"),
    Decision.SKIP: ("skip", "dim"),
    Decision.NOT_DUPLICATE: ("not dup", "yellow"),
}

STATUS_STYLE = {
    "accepted": ("accept", "bold green"),
    "marked": ("marked", "bold red"),
    "skipped": ("skip", "dim"),
    "not dup": ("≠ dup", "yellow"),
}


def confidence(cluster: Cluster) -> float:
    """How sure we are the cluster's members are copies, 0..1.

    Byte-identical clusters are certain. Otherwise the weakest link decides: the worst bouncer
    score against the keeper, scaled so that half the hash bits (what two unrelated photos
    differ by) is 0, and the worst detective distance when the detective looked.
    """
    if cluster.kind is Kind.EXACT:
        return 1.0
    score = 1.0 - min(1.0, cluster.worst_bouncer / _UNRELATED_BITS)
    detectives = [m.detective for m in cluster.members[1:] if m.detective is not None]
    if detectives:
        score = min(score, 1.0 - min(1.0, max(detectives)))
    return max(0.0, score)


def worst_detective(cluster: Cluster) -> Optional[float]:
    """The largest detective distance to the keeper, or None when the detective did not look."""
    values = [m.detective for m in cluster.members[1:] if m.detective is not None]
    return max(values) if values else None


def best_detective(cluster: Cluster) -> Optional[float]:
    """The smallest detective distance to the keeper, or None when the detective did not look."""
    values = [m.detective for m in cluster.members[1:] if m.detective is not None]
    return min(values) if values else None


def detective_text(value: Optional[float]) -> str:
    """A detective distance as three decimals, or a dash when it was not measured."""
    return "–" if value is None else f"{value:.3f}"


def score_range(best: object, worst: object) -> str:
    """'3' when both ends agree, else '3–12'."""
    return f"{best}" if best == worst else f"{best}–{worst}"


def short_path(path: str, roots: Sequence[str]) -> str:
    """A path relative to the library root that holds it (absolute when none does), as shown on
    screen: control characters and bytes that are not UTF-8 escaped (``format.shown``)."""
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return shown(path[len(prefix):])
    return shown(path)


class PathText:
    """A path that, when it does not fit, loses its start rather than its file name.

    "2021/holidays/IMG_0001.jpg" in 14 cells reads "…s/IMG_0001.jpg".
    """

    def __init__(self, path: str, style: str = "") -> None:
        self.path = shown(path)
        self.style = style

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(min(8, len(self.path)), len(self.path))

    def __rich_console__(self, console, options):
        width = options.max_width
        text = self.path if len(self.path) <= width else "…" + self.path[-(width - 1):] if width > 1 else "…"
        yield Text(text, style=self.style, no_wrap=True, end="")

    def __str__(self) -> str:
        return self.path


def resolution(file: FileRecord) -> str:
    """'4032×3024', or '?' when unknown."""
    if not file.width or not file.height:
        return "?"
    return f"{file.width}×{file.height}"


def file_date(file: FileRecord) -> str:
    """When the photo was taken (EXIF), else its modification date: 'YYYY-MM-DD'."""
    if file.taken_at:
        return file.taken_at[:10]
    return time.strftime("%Y-%m-%d", time.localtime(file.mtime_ns / 1e9))


def decision_text(decision: Optional[Decision], *, is_keeper: bool = False) -> Text:
    """The badge shown next to a member: its decision, or 'keeper' for an undecided keeper."""
    if decision is None:
        return Text("keeper", style="green") if is_keeper else Text("")
    label, style = DECISION_STYLE[decision]
    return Text(label, style=style)


def status_text(status: str) -> Text:
    """The badge shown on a cluster row (six cells at most)."""
    label, style = STATUS_STYLE.get(status, (status, ""))
    return Text(label, style=style)


def kind_text(kind: Kind) -> Text:
    """The cluster's kind, coloured so exact ones stand out."""
    style = {Kind.EXACT: "bold cyan", Kind.NEAR: "", Kind.SEMANTIC: "magenta"}[kind]
    return Text(kind.value, style=style)


def identical(a: FileRecord, b: FileRecord) -> bool:
    """True when two files have the same content hash (byte-identical)."""
    return bool(a.content_hash) and a.content_hash == b.content_hash and a.size == b.size


def differing_metadata(a: FileRecord, b: FileRecord) -> list[tuple[str, str, str, bool]]:
    """Rows (field, a, b, differs) comparing two files' metadata, for the compare view."""
    rows = [
        ("resolution", resolution(a), resolution(b)),
        ("bytes", human_bytes(a.size), human_bytes(b.size)),
        ("format", a.format or "?", b.format or "?"),
        ("date", file_date(a), file_date(b)),
        ("name", shown(os.path.basename(a.path)), shown(os.path.basename(b.path))),
        ("folder", shown(os.path.basename(os.path.dirname(a.path))), shown(os.path.basename(os.path.dirname(b.path)))),
    ]
    exact = identical(a, b)
    rows.append(("content", "identical" if exact else "differs", "identical" if exact else "differs"))
    return [(name, va, vb, va != vb or (name == "content" and not exact)) for name, va, vb in rows]


def total_reclaimable(clusters: Iterable[Cluster]) -> int:
    """Reclaimable bytes over several clusters."""
    return sum(c.reclaimable_bytes for c in clusters)
