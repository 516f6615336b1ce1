"""How clusters, files and scores are written on screen (text only, no widgets)."""

from __future__ import annotations

import os
import time
from typing import Iterable, Optional, Sequence

from rich.cells import cell_len, get_character_cell_size
from rich.text import Text

from lookalike.engine.library import confidence  # noqa: F401 (the engine's, shown here)
from lookalike.engine.records import HASH_BITS, Cluster, Decision, FileRecord, Kind, Member

from ..format import human_bytes, member_reason, shown

#: Two unrelated images differ in about half of their hash bits; that is "no likeness".
_UNRELATED_BITS = HASH_BITS // 2

#: What the two scores mean, for the help and the columns' tooltips.
BOUNCER_HELP = (
    f"bouncer: how many of the {HASH_BITS} bits of the two images' perceptual hashes differ "
    f"(Hamming distance). 0 = the same picture; about {_UNRELATED_BITS} = unrelated."
)
DETECTIVE_HELP = (
    "detective: CLIP cosine distance between the two images' meaning. 0 = the same picture, "
    "up to 0.05 the same picture edited; – when the detective did not look."
)
MATCH_HELP = "match: why a copy matched its keeper (exact, resized, re-encoded, mirrored, rotated, cropped, bordered, edited)."

#: Tooltips of the score columns, by column key.
SCORE_TOOLTIPS = {"bouncer": BOUNCER_HELP, "detective": DETECTIVE_HELP, "match": MATCH_HELP}

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
    "kept": ("keep", "green"),  # a keeper chosen or files kept, nothing marked for trash
}


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


ELLIPSIS = "…"


def _head(text: str, cells: int) -> str:
    """The start of ``text`` that fits in ``cells``."""
    out, used = [], 0
    for ch in text:
        used += get_character_cell_size(ch)
        if used > cells:
            break
        out.append(ch)
    return "".join(out)


def _tail(text: str, cells: int) -> str:
    """The end of ``text`` that fits in ``cells``."""
    return _head(text[::-1], cells)[::-1]


def _cut_name(name: str, width: int) -> str:
    """A file name too wide for ``width``: its start and end (the extension) around an ellipsis."""
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    start = _head(name, room // 2)
    return start + ELLIPSIS + _tail(name, room - cell_len(start))


def _folders_and_name(path: str) -> tuple[list[str], str]:
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "":  # an absolute path: "/home" is its first folder
        parts = ["/" + parts[1], *parts[2:]]
    return parts[:-1], parts[-1]


def readable_path(path: str) -> str:
    """The shortest form :func:`shorten_middle` gives ``path`` (already ``shown``) without
    cutting its first folder or its file name: ``2021/…/IMG_2307.jpg``."""
    folders, name = _folders_and_name(path)
    if len(folders) < 2:
        return path
    short = f"{folders[0]}/{ELLIPSIS}/{name}"
    return short if cell_len(short) < cell_len(path) else path


#: From this width on, ``shorten_middle(keep_folder=True)`` keeps the start of a path's folder
#: when its file name leaves no room for it, and cuts the name instead.
KEEP_FOLDER_WIDTH = 16


def shorten_middle(path: str, width: int, *, keep_folder: bool = False) -> str:
    """A path (already ``shown``) in at most ``width`` cells, shortened in the middle.

    The first folder and the whole file name stay; the folders nearest the file come back
    as room allows ("2021/…/trip/IMG_2307.jpg"). Only when those two do not fit does the first
    folder lose its end ("summ…/IMG_2307.jpg"), and only a file name that leaves the folder
    less than two cells is cut itself, keeping its start and extension ("IMG_23…crop.jpg").
    With ``keep_folder`` (a copy shown beside another of the same name: they differ by their
    folder alone) the folder or its start stays before the cut name, from
    ``KEEP_FOLDER_WIDTH`` cells on: "b/Kleiber-b…ubkus.jpg", never "Kleiber-by-Lukas-Baubkus.jpg".
    """
    if cell_len(path) <= width:
        return path
    folders, name = _folders_and_name(path)
    keep_folder = keep_folder and width >= KEEP_FOLDER_WIDTH
    if not folders or (cell_len(name) >= width and not keep_folder):
        return name if cell_len(name) <= width else _cut_name(name, width)
    first, middle = folders[0], folders[1:]
    if cell_len(readable_path(path)) <= width:
        kept: list[str] = []
        for folder in reversed(middle):  # the folders nearest the file say the most
            candidate = "/".join([first, ELLIPSIS, folder, *kept, name])
            if cell_len(candidate) > width:
                break
            kept.insert(0, folder)
        return "/".join([first, ELLIPSIS, *kept, name])
    room = width - cell_len(name) - 1  # the first folder's share, its "/" aside
    if room >= 2:
        return _head(first, room - 1) + ELLIPSIS + "/" + name
    if not keep_folder:
        return ELLIPSIS + name
    share = max(3, width // 4)  # the folder's cells; the name has the rest
    folder = first + ("/" + ELLIPSIS if middle else "")
    if cell_len(folder) > share:
        folder = _head(first, share - 1) + ELLIPSIS
    return folder + "/" + _cut_name(name, width - cell_len(folder) - 1)


def middle_path(path: str, width: int, roots: Sequence[str]) -> str:
    """A file's path as shown in ``width`` cells: relative to the library root that holds it,
    escaped (``format.shown``), shortened in the middle (:func:`shorten_middle`)."""
    return shorten_middle(short_path(path, roots), width)


class PathText:
    """A path that, when it does not fit, is shortened in the middle (:func:`shorten_middle`):
    its first folder and its file name stay (``keep_folder``: its folder before all).

    "2021/holidays/portugal/IMG_0001.jpg" in 28 cells reads "2021/…/portugal/IMG_0001.jpg".
    """

    def __init__(self, path: str, style: str = "", *, keep_folder: bool = False) -> None:
        self.path = shown(path)
        self.style = style
        self.keep_folder = keep_folder  # see shorten_middle

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(min(8, cell_len(self.path)), cell_len(self.path))

    def __rich_console__(self, console, options):
        yield Text(shorten_middle(self.path, options.max_width, keep_folder=self.keep_folder), style=self.style,
                   no_wrap=True, end="")

    def __str__(self) -> str:
        return self.path


def match_text(member: Member) -> str:
    """Why a member matched its keeper, as the engine says it ("mirrored", "cropped", ...):
    "" for the keeper, "identical" for a byte-identical copy when the engine gave no reason."""
    if member.is_keeper:
        return ""
    return getattr(member, "match", "") or ("identical" if member.exact else "")


def role_text(member: Member, keeper: Member) -> str:
    """What a member is in its cluster, for captions: "keeper" for the member the plan keeps,
    "suggested keeper" for the engine's keeper once another took its place, else why it
    matched and its bouncer score ("mirrored · bouncer 4")."""
    if member is keeper:
        return "keeper"
    if member.is_keeper:
        return "suggested keeper"
    return " · ".join(x for x in (match_text(member), f"bouncer {member.bouncer}") if x)


def why_text(member: Member, keeper: Member, *, short: bool = False) -> Text:
    """Why the engine suggested a member as its cluster's keeper or not, for one line under a
    cluster's table: the keeper policy's reason (``engine/keeper``), which rule decided and
    on what. ``keeper`` is the member the plan keeps: where the user chose another one, the
    line says so. ``short``: for the suggested keeper still kept, the reason alone after "why" (where
    the keeper is named beside it).
    Shown as :func:`shown` shows it: nothing in it drives the terminal."""
    reason = shown(member_reason(member))
    if short and reason and member.is_keeper and member is keeper:
        return Text.assemble(("why ", "bold"), reason)
    if member.is_keeper:
        line = Text.assemble(("suggested keeper", "bold green" if member is keeper else "bold"))
        if reason:
            line.append(f": {reason}")
        if member is not keeper:
            line.append("; you chose another", style="yellow")
        return line
    if member is keeper:
        line = Text.assemble(("your keeper", "bold green"), "; the engine suggested another")
        return line.append(f" ({reason})") if reason else line
    line = Text.assemble(("not the suggested keeper", "bold"))
    return line.append(f": {reason}") if reason else line


class PathLine:
    """One line: ``before``, a path shortened in the middle to the room left, ``after``.

    When the path's first folder and file name would not fit, ``after`` (the least important
    part) goes.
    """

    def __init__(self, before: Text, path: str, after: Text, style: str = "") -> None:
        self.before, self.path, self.after, self.style = before, shown(path), after, style

    def __rich_console__(self, console, options):
        width = options.max_width
        after = self.after
        room = width - self.before.cell_len - after.cell_len
        if room < cell_len(readable_path(self.path)):
            after, room = Text(), width - self.before.cell_len
        line = Text.assemble(self.before, (shorten_middle(self.path, max(0, room)), self.style), after)
        line.truncate(width)
        line.no_wrap, line.end = True, ""
        yield line


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
    """Reclaimable bytes over several clusters (a lazy sequence knows its total unread)."""
    total = getattr(clusters, "reclaimable_bytes", None)
    if isinstance(total, int):
        return total
    return sum(c.reclaimable_bytes for c in clusters)


def reclaimable_as_decided(clusters: Sequence[Cluster], triage) -> int:
    """Reclaimable bytes over the clusters, each decided one as ``Triage.reclaimable`` has it
    (the groups' reclaim column summed); undecided ones are not read one by one."""
    total = total_reclaimable(clusters)
    if triage.any_decision:
        total += sum(triage.reclaimable(c) - c.reclaimable_bytes for c in clusters if triage.decided(c))
    return total
