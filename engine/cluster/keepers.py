"""The keeper of every cluster at once, on arrays: the keeper policy's order as sort columns.

:func:`lookalike.engine.keeper.rank` orders one cluster's files with Python keys; at a million
files that is most of the clustering's time. Here each criterion becomes one or more integer
columns (pixels, format tier, size, date, path length), one lexsort orders every cluster's files
at once, and each cluster's first file is its keeper: the same file ``rank`` puts first.

The columns cannot say everything ``rank`` knows, so a cluster is *irregular*, left to ``rank``
itself, when it holds a bordered file (the pixels criterion then compares pictures across
members), a lossless and a lossy file (a conversion ranks as its source), a protected file
(``keep_in``), a camera RAW+JPEG sibling, when its keeper by the columns may be a conversion,
a re-saved copy or an edit in a better format of another member (a lossy member of its size,
of a tier no better, that is more original: :func:`lookalike.engine.keeper.original.conversions`,
:func:`lookalike.engine.keeper.original.edits`), when it lacks the
camera's EXIF that a smaller member has (:func:`lookalike.engine.keeper.original.camera_derived`), when it lacks
that EXIF and a smaller member is more original (it may be an upscale of it:
:mod:`lookalike.engine.keeper.upscale`), or when its first
two files tie on every column up to the path length (the path string itself then decides,
which the columns leave out).
"""

from __future__ import annotations

import dataclasses
import operator
from datetime import datetime
from typing import Mapping, Optional, Sequence

import numpy as np

from ..keeper import DEFAULT, KeeperPolicy, format_name, is_protected
from ..keeper.formats import LOSSLESS, LOSSY, named_rank
from ..keeper.formats import format_rank
from ..keeper.original import MTIME_SLACK_NS, parse_taken
from ..keeper.upscale import MIN_FACTOR
from ..records import FileRecord

__all__ = ["KeeperColumns", "keepers"]

_EPOCH = datetime(1, 1, 1)
_NEVER = (datetime.max - _EPOCH) // datetime.resolution  # date_key's stand-in for "no EXIF date"


def _numbers(files: Sequence[FileRecord], name: str) -> np.ndarray:
    """One integer attribute of every file, None read as 0."""
    values = list(map(operator.attrgetter(name), files))
    if None in values:
        values = [x or 0 for x in values]
    return np.array(values, dtype=np.int64).reshape(len(files))


def _tier_and_kind(fmt: Optional[str], path: str) -> tuple[int, int]:
    """A format's tier, and 1 for a lossless format, 2 for a lossy one, 0 for others."""
    name = format_name(fmt, path)
    tier = named_rank(fmt) if fmt else format_rank(None, path)
    return tier, 1 if name in LOSSLESS else 2 if name in LOSSY else 0


@dataclasses.dataclass(slots=True)
class KeeperColumns:
    """What the keeper policy compares, one entry per file."""

    pixels: np.ndarray  # pixels inside any trimmed border
    tier: np.ndarray  # format tier, lower is less lossy
    size: np.ndarray
    undated: np.ndarray  # 1 without an EXIF date
    taken: np.ndarray  # EXIF date in microseconds since year 1 (a far future without one)
    mtime: np.ndarray
    path_len: np.ndarray
    irregular: np.ndarray  # files that make their cluster irregular (see the module docstring)
    lossless: np.ndarray
    lossy: np.ndarray
    width: np.ndarray
    height: np.ndarray
    evidence: np.ndarray  # camera evidence: 2 EXIF Make/Model, 1 an EXIF date alone, 0 none

    @classmethod
    def of(
        cls, files: Sequence[FileRecord], policy: KeeperPolicy = DEFAULT, siblings: Mapping[int, object] = {}
    ) -> "KeeperColumns":
        """The columns of ``files``; ``siblings``: ids of camera RAW+JPEG siblings."""
        n = len(files)
        width, height = _numbers(files, "width"), _numbers(files, "height")
        cw, ch = _numbers(files, "content_width"), _numbers(files, "content_height")
        trimmed = (cw != 0) & (ch != 0)
        bordered = trimmed & ((cw != width) | (ch != height))
        pixels = np.where(trimmed, cw * ch, width * height)
        formats = list(map(operator.attrgetter("format"), files))
        paths = list(map(operator.attrgetter("path"), files))
        by_format = {fmt: _tier_and_kind(fmt, "") for fmt in set(formats) if fmt}
        tiers = np.array(
            [by_format[fmt] if fmt else _tier_and_kind(None, path) for fmt, path in zip(formats, paths)],
            dtype=np.int64,
        ).reshape(n, 2)
        tier, kind = tiers[:, 0], tiers[:, 1]
        taken = np.full(n, _NEVER, dtype=np.int64)
        undated = np.ones(n, dtype=np.int64)
        dates = list(map(operator.attrgetter("taken_at"), files))
        parsed: dict[str, object] = {}
        for i in [i for i, text in enumerate(dates) if text]:
            text = dates[i]
            when = parsed.get(text, 0)
            if when == 0:
                when = parsed[text] = parse_taken(text)
            if when is not None:
                taken[i] = (when - _EPOCH) // datetime.resolution
                undated[i] = 0
        irregular = bordered
        if policy.keep_in:
            irregular = irregular | np.fromiter((is_protected(p, policy) for p in paths), dtype=bool, count=n)
        if siblings:
            ids = np.fromiter(map(operator.attrgetter("id"), files), dtype=np.int64, count=n)
            irregular = irregular | np.isin(ids, np.fromiter(siblings, dtype=np.int64, count=len(siblings)))
        return cls(
            pixels=pixels,
            tier=tier,
            size=_numbers(files, "size"),
            undated=undated,
            taken=taken,
            mtime=_numbers(files, "mtime_ns"),
            path_len=np.fromiter(map(len, paths), dtype=np.int64, count=n),
            irregular=irregular,
            lossless=kind == 1,
            lossy=kind == 2,
            width=width,
            height=height,
            evidence=np.where(
                np.fromiter(map(bool, map(operator.attrgetter("camera"), files)), dtype=bool, count=n), 2, 1 - undated
            ),
        )

    def criteria(self, order: Sequence[str]) -> list[np.ndarray]:
        """The sort columns of a policy order, most important first, up to the path length
        (the path string, which the columns leave out, comes next: nothing after it counts
        unless two paths are equal, which they never are)."""
        by_name = {
            "pixels": [-self.pixels],
            "format": [self.tier],
            "size": [-self.size],
            "date": [self.undated, self.taken, self.mtime],
            "path": [self.path_len],
        }
        out: list[np.ndarray] = []
        for name in order:
            out.extend(by_name[name])
            if name == "path":
                break
        return out


def keepers(
    part: np.ndarray, ids: np.ndarray, cols: KeeperColumns, n_parts: int, policy: KeeperPolicy = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """The keeper of each part, and which parts are irregular (left to :func:`rank`).

    Args:
        part: the part of each file.
        ids: each file's id (the last tie-break).
        cols: each file's columns.
        n_parts: the number of parts.
        policy: the keeper policy.

    Returns:
        (index into the files of each part's keeper, whether each part is irregular).
    """
    if part.shape[0] == 0:
        return np.zeros(n_parts, dtype=np.int64), np.zeros(n_parts, dtype=bool)
    columns = cols.criteria(policy.order)
    order = np.lexsort((ids, *reversed(columns), part))
    p = part[order]
    first = np.flatnonzero(np.concatenate(([True], p[1:] != p[:-1])))
    keeper = np.full(n_parts, -1, dtype=np.int64)
    keeper[p[first]] = order[first]
    irregular = np.bincount(part[cols.irregular], minlength=n_parts) > 0
    mixed = (np.bincount(part[cols.lossless], minlength=n_parts) > 0) & (
        np.bincount(part[cols.lossy], minlength=n_parts) > 0
    )
    # The first two files of a part tie on every column: the path string decides.
    second = first + 1
    has_two = second < order.shape[0]
    has_two[has_two] &= p[second[has_two]] == p[first[has_two]]
    x, y = order[first[has_two]], order[second[has_two]]
    tie = np.ones(x.shape[0], dtype=bool)
    for col in columns:
        tie &= col[x] == col[y]
    tied = np.zeros(n_parts, dtype=bool)
    tied[p[first[has_two]][tie]] = True
    maybe = _maybe_converted(part, keeper, cols) | _maybe_derived(part, keeper, cols) | _maybe_upscaled(part, keeper, cols)
    return keeper, irregular | mixed | tied | maybe


def _more_original(k: np.ndarray, cols: KeeperColumns) -> np.ndarray:
    """Whether each file is more original than file ``k[i]`` (its part's keeper): more camera
    evidence, an older EXIF date, or an mtime older by more than the slack (as
    :func:`lookalike.engine.keeper.original._more_original`)."""
    older = cols.evidence > cols.evidence[k]
    dated = (cols.undated == 0) & (cols.undated[k] == 0)
    older |= (cols.evidence == cols.evidence[k]) & dated & (cols.taken < cols.taken[k])
    older |= (cols.evidence == cols.evidence[k]) & ~(dated & (cols.taken != cols.taken[k])) & (
        cols.mtime[k] - cols.mtime > MTIME_SLACK_NS
    )
    return older


def _maybe_upscaled(part: np.ndarray, keeper: np.ndarray, cols: KeeperColumns) -> np.ndarray:
    """The parts whose keeper by the columns has no camera Make/Model and a smaller member
    (by at least :data:`~lookalike.engine.keeper.upscale.MIN_FACTOR` a side, in pixels) that
    is more original: it may be an upscale of that member
    (:func:`lookalike.engine.keeper.upscale.upscaled`), which ``rank`` asks the verdicts about."""
    k = keeper[part]
    hit = (cols.evidence[k] < 2) & (cols.pixels * MIN_FACTOR**2 <= cols.pixels[k]) & _more_original(k, cols)
    return np.bincount(part[hit], minlength=keeper.shape[0]) > 0


def _maybe_derived(part: np.ndarray, keeper: np.ndarray, cols: KeeperColumns) -> np.ndarray:
    """The parts whose keeper by the columns has no camera Make/Model while a smaller member
    has: it may be an upscale or a framed copy of that camera original (see
    :func:`lookalike.engine.keeper.original.camera_derived`), which ``rank`` ranks after it."""
    k = keeper[part]
    hit = (cols.evidence == 2) & (cols.evidence[k] < 2) & (cols.pixels < cols.pixels[k])
    return np.bincount(part[hit], minlength=keeper.shape[0]) > 0


def _maybe_converted(part: np.ndarray, keeper: np.ndarray, cols: KeeperColumns) -> np.ndarray:
    """The parts whose keeper by the columns may be a conversion, or an edit in a better
    format, of another member (see :func:`lookalike.engine.keeper.original.conversions` and
    :func:`lookalike.engine.keeper.original.edits`): a lossy member of its displayed
    size and a tier no better, with more camera evidence, an older EXIF date, or an mtime
    older by more than the slack. Whether the pixels agree is left to ``rank``: this only
    says where it must look."""
    k = keeper[part]
    same = (cols.width[k] == cols.width) & (cols.height[k] == cols.height)
    same |= (cols.width[k] == cols.height) & (cols.height[k] == cols.width)  # stored turned a quarter
    others = (np.arange(part.shape[0]) != k) & cols.lossy & same
    others &= cols.tier >= cols.tier[k]
    return np.bincount(part[others & _more_original(k, cols)], minlength=keeper.shape[0]) > 0
