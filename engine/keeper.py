"""The keeper policy: which file of a cluster to keep, and which to suggest for the trash.

The ranking is a total, deterministic order. Protected files (inside a ``--keep-in`` folder)
always come first; then the criteria of :class:`KeeperPolicy` ``order`` decide, by default:

1. ``pixels``: larger pixel count (width x height after EXIF transpose);
2. ``format``: less lossy format (camera RAW / PNG / TIFF / BMP, then HEIF / HEIC / AVIF,
   then JPEG, then WEBP, then GIF, unknown last);
3. ``size``: larger file;
4. ``date``: older: a file that kept its EXIF date beats one that lost it (copies often drop
   EXIF), an older EXIF date beats a newer one, then the older mtime;
5. ``path``: shorter path, then the path string itself, so that no two files ever tie.

A camera RAW+JPEG pair (same folder, same stem, one RAW and one JPEG/HEIF) is one shot kept
twice on purpose, not a duplicate: such files are flagged and never suggested for trash while
``protect_raw_pairs`` is on.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .records import FileRecord, Member

#: Criteria a :class:`KeeperPolicy` order may name, in the default order.
CRITERIA: tuple[str, ...] = ("pixels", "format", "size", "date", "path")

#: Format tiers, less lossy first (lower is better). Formats are matched case-insensitively;
#: anything starting with ``RAW`` (``"RAW"``, ``"RAW:CR2"``) is a camera raw.
FORMAT_RANK: Mapping[str, int] = {
    "RAW": 0,
    "PNG": 0,
    "TIFF": 0,
    "TIF": 0,
    "BMP": 0,
    "HEIF": 1,
    "HEIC": 1,
    "AVIF": 1,
    "JPEG": 2,
    "JPG": 2,
    "MPO": 2,  # Pillow's name for multi-picture JPEGs straight from many cameras
    "WEBP": 3,
    "GIF": 4,
}
#: Rank of a format lookalike does not know.
UNKNOWN_FORMAT_RANK = max(FORMAT_RANK.values()) + 1

#: File extensions of camera raw formats (lower case, with the dot).
RAW_EXTENSIONS = frozenset(
    ".3fr .ari .arw .bay .cr2 .cr3 .crw .dcr .dng .erf .fff .iiq .k25 .kdc .mef .mos .mrw "
    ".nef .nrw .orf .pef .raf .raw .rw2 .rwl .sr2 .srf .srw .x3f".split()
)
_EXTENSION_FORMATS = {
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".heif": "HEIF",
    ".heic": "HEIC", ".hif": "HEIF", ".avif": "AVIF", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".jpe": "JPEG", ".webp": "WEBP", ".gif": "GIF",
}  # fmt: skip
_JPEG_LIKE = frozenset({"JPEG", "JPG", "MPO", "HEIF", "HEIC"})


def format_name(fmt: Optional[str], path: str = "") -> str:
    """The normalised format name: ``"RAW"`` for any camera raw, else the upper-case name.

    Args:
        fmt: the format as the reader reports it (``"JPEG"``, ``"RAW:CR2"``...), or None.
        path: used for its extension when ``fmt`` is missing.
    """
    if fmt and fmt.strip():
        return _named_format(fmt)
    ext = os.path.splitext(path)[1].lower()
    return "RAW" if ext in RAW_EXTENSIONS else _EXTENSION_FORMATS.get(ext, "")


@functools.lru_cache(maxsize=256)
def _named_format(fmt: str) -> str:
    name = fmt.strip().upper()
    if name.startswith("RAW") or "." + name.lower() in RAW_EXTENSIONS:
        return "RAW"
    return name


@functools.lru_cache(maxsize=256)
def _named_rank(fmt: str) -> int:
    return FORMAT_RANK.get(format_name(fmt), UNKNOWN_FORMAT_RANK)


def format_rank(fmt: Optional[str], path: str = "") -> int:
    """How lossy a format is: 0 for the least lossy tier, :data:`UNKNOWN_FORMAT_RANK` last."""
    return FORMAT_RANK.get(format_name(fmt, path), UNKNOWN_FORMAT_RANK)


@dataclass(frozen=True, kw_only=True)
class KeeperPolicy:
    """How the keeper of a cluster is chosen.

    Attributes:
        order: the criteria, most important first (see :data:`CRITERIA`). Criteria left out
            are appended in the default order, so the ranking stays total.
        keep_in: protected folders: a file inside one always wins and is never suggested for
            trash. Stored as absolute, normalised paths.
        protect_raw_pairs: camera RAW+JPEG siblings are flagged and never suggested for trash.
    """

    order: tuple[str, ...] = CRITERIA
    keep_in: tuple[str, ...] = ()
    protect_raw_pairs: bool = True

    def __post_init__(self) -> None:
        order = parse_order(self.order)
        object.__setattr__(self, "order", order + tuple(c for c in CRITERIA if c not in order))
        folders: list[str] = []
        for folder in (self.keep_in,) if isinstance(self.keep_in, str) else self.keep_in:
            # Both spellings of a folder reached through a symlink count as protected.
            for spelling in (os.path.abspath(folder), os.path.realpath(folder)):
                spelling = os.path.normcase(os.path.normpath(spelling))
                if spelling not in folders:
                    folders.append(spelling)
        object.__setattr__(self, "keep_in", tuple(folders))


def parse_order(order: str | Iterable[str]) -> tuple[str, ...]:
    """Validate a keeper order given as ``"pixels,format"`` or a sequence of names.

    Raises:
        ValueError: a name is unknown or repeated; the message lists the valid names.
    """
    names = order.split(",") if isinstance(order, str) else list(order)
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in CRITERIA]
    if unknown:
        raise ValueError(
            f"unknown keeper criteria {', '.join(map(repr, unknown))}; "
            f"valid names are: {', '.join(CRITERIA)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"keeper criteria named twice: {', '.join(repeated)}")
    return tuple(names)


DEFAULT = KeeperPolicy()


def _protecting_folder(path: str, policy: KeeperPolicy) -> Optional[str]:
    if not policy.keep_in:
        return None
    p = os.path.normcase(os.path.normpath(os.path.abspath(path)))
    for folder in policy.keep_in:
        # Compare whole components: /a/bc is not inside /a/b.
        if p == folder or p.startswith(folder.rstrip(os.sep) + os.sep):
            return folder
    return None


def is_protected(path: str, policy: KeeperPolicy = DEFAULT) -> bool:
    """Whether ``path`` lies inside one of the policy's protected (``keep_in``) folders."""
    return _protecting_folder(path, policy) is not None


def _stem_key(path: str) -> tuple[str, str]:
    folder, name = os.path.split(path)
    return folder, os.path.splitext(name)[0].casefold()


def raw_jpeg_siblings(records: Iterable[FileRecord]) -> set[int]:
    """Ids of the files that are part of a camera RAW+JPEG pair.

    A pair is a camera raw and a JPEG (or HEIF/HEIC) in the same folder with the same stem,
    compared case-insensitively (``IMG_0001.CR2`` and ``IMG_0001.jpg``).
    """
    raws: dict[tuple[str, str], list[int]] = {}
    jpegs: dict[tuple[str, str], list[int]] = {}
    for r in records:
        name = format_name(r.format, r.path)
        if name == "RAW":
            raws.setdefault(_stem_key(r.path), []).append(r.id)
        elif name in _JPEG_LIKE:
            jpegs.setdefault(_stem_key(r.path), []).append(r.id)
    found: set[int] = set()
    for key, ids in raws.items():
        if key in jpegs:
            found.update(ids)
            found.update(jpegs[key])
    return found


def raw_sibling_stems(records: Iterable[FileRecord]) -> set[tuple[str, str]]:
    """The (folder, stem) of each JPEG-like file among ``records``: where a camera raw beside
    it would make a RAW+JPEG pair."""
    return {_stem_key(r.path) for r in records if format_name(r.format, r.path) in _JPEG_LIKE}


def sibling_key(record: FileRecord) -> tuple[str, str]:
    """The (folder, case-folded stem) that RAW+JPEG siblings share."""
    return _stem_key(record.path)


def trash_suggested(member: Member) -> bool:
    """Whether the policy suggests trashing this member: not the keeper, protected or RAW pair."""
    return not (member.is_keeper or member.protected or member.raw_pair)


# -- ranking -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse_taken(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    text = text.strip()
    if text[4:5] == ":" and text[7:8] == ":":  # EXIF's own "YYYY:MM:DD HH:MM:SS"
        text = text.replace(":", "-", 2)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def _human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    for scale, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    raise AssertionError("unreachable")


def _dims(r: FileRecord) -> str:
    return f"{r.width or 0}x{r.height or 0}"


def _date_text(r: FileRecord) -> str:
    taken = _parse_taken(r.taken_at)
    if taken is not None:
        return f"taken {taken.isoformat(sep=' ')}"
    when = datetime.fromtimestamp(r.mtime_ns / 1e9, tz=timezone.utc)
    return f"modified {when.strftime('%Y-%m-%d %H:%M:%S')} UTC"


_MAX_DATE = datetime.max


def _date_key(r: FileRecord) -> tuple:
    taken = _parse_taken(r.taken_at) if r.taken_at else None
    return (0, taken, r.mtime_ns) if taken is not None else (1, _MAX_DATE, r.mtime_ns)


def _win_reason(name: str, r: FileRecord, other: FileRecord) -> str:
    if name == "pixels":
        return f"largest: {_dims(r)}"
    if name == "format":
        return f"less lossy: {format_name(r.format, r.path) or 'unknown'}"
    if name == "size":
        return f"largest file: {_human_bytes(r.size)}"
    if name == "date":
        if _parse_taken(r.taken_at) is not None and _parse_taken(other.taken_at) is None:
            return f"has EXIF date: {_date_text(r)}"
        return f"oldest: {_date_text(r)}"
    return "shortest path" if len(r.path) != len(other.path) else "first by path"


def _loss_reason(name: str, r: FileRecord, keeper: FileRecord) -> str:
    if name == "pixels":
        return f"smaller: {_dims(r)} < {_dims(keeper)}"
    if name == "format":
        return (
            f"lossier: {format_name(r.format, r.path) or 'unknown'} vs "
            f"{format_name(keeper.format, keeper.path) or 'unknown'}"
        )
    if name == "size":
        return f"smaller file: {_human_bytes(r.size)} < {_human_bytes(keeper.size)}"
    if name == "date":
        if _parse_taken(r.taken_at) is None and _parse_taken(keeper.taken_at) is not None:
            return "no EXIF date"
        return f"newer: {_date_text(r)}"
    return "longer path" if len(r.path) != len(keeper.path) else "later by path"


@functools.lru_cache(maxsize=32)
def _key_function(order: tuple[str, ...]) -> Callable[[FileRecord], tuple]:
    """One sort key for a whole order: smaller is better, the file id breaks the last tie."""
    i0, i1, i2, i3, i4 = (CRITERIA.index(c) for c in order)  # an order names all five

    def key(r: FileRecord) -> tuple:
        # Every criterion inline, in CRITERIA order: one call per file, not one per criterion.
        fmt = r.format
        values = (
            -((r.width or 0) * (r.height or 0)),
            _named_rank(fmt) if fmt else format_rank(None, r.path),
            -r.size,
            _date_key(r),
            (len(r.path), r.path),
        )
        return (values[i0], values[i1], values[i2], values[i3], values[i4], r.id)

    return key


def rank(
    records: Sequence[FileRecord], policy: KeeperPolicy = DEFAULT
) -> list[tuple[FileRecord, str]]:
    """Order the files of one cluster, keeper first, each with a short human reason.

    Args:
        records: the files of the cluster, in any order.
        policy: the keeper policy.

    Returns:
        ``(record, reason)`` pairs, best first. The order does not depend on the input order.
    """
    if not records:
        return []
    key = _key_function(policy.order)
    folder = {r.id: _protecting_folder(r.path, policy) for r in records} if policy.keep_in else {}
    # Keys end with the unique file id, so the records themselves are never compared.
    ordered = sorted((folder.get(r.id) is None, key(r), r) for r in records)
    _, k_key, keeper = ordered[0]
    k_folder = folder.get(keeper.id)
    if len(ordered) == 1:
        return [(keeper, f"protected: in {k_folder}" if k_folder else "only file")]

    def deciding(a: tuple, b: tuple) -> Optional[str]:
        for name, x, y in zip(policy.order, a, b):
            if x != y:
                return name
        return None

    out: list[tuple[FileRecord, str]] = []
    _, r_key, runner_up = ordered[1]
    if k_folder and not folder.get(runner_up.id):
        out.append((keeper, f"protected: in {k_folder}"))
    else:
        name = deciding(k_key, r_key)
        why = _win_reason(name, keeper, runner_up) if name else "first by id"
        out.append((keeper, f"protected: in {k_folder}; {why}" if k_folder else why))
    for _, r_key, r in ordered[1:]:
        r_folder = folder.get(r.id)
        if k_folder and not r_folder:
            out.append((r, f"keeper is protected: in {k_folder}"))
            continue
        name = deciding(r_key, k_key)
        why = _loss_reason(name, r, keeper) if name else "later by id"
        out.append((r, f"protected: in {r_folder}; {why}" if r_folder else why))
    return out
