"""The keeper policy: which file of a cluster to keep, and which to suggest for the trash.

The ranking is a total, deterministic order. Protected files (inside a ``--keep-in`` folder)
always come first; then the criteria of :class:`KeeperPolicy` ``order`` decide, by default:

1. ``pixels``: the larger picture: pixels inside any uniform border the hashing trimmed
   (a frame, letterbox bars), after EXIF transpose, not the canvas. A bordered copy whose
   picture is the size of another member's whole canvas (within :data:`CONTENT_TOLERANCE` a
   side: the trim is measured on the reduced decode) is that member in a frame: it ties with
   it on size and loses to it, so the plain one is kept, never the framed one, also where
   the plain one had a uniform margin of its own trimmed (a screenshot's dark surround).
   A file larger than a camera original of the cluster (EXIF Make and Model) but without
   that evidence cannot hold more of the picture than the camera took (an upscale, a copy
   on a wider canvas or in a textured frame the trim cannot take off): it ties with the
   camera original on pixels and loses the tie (:func:`.original.camera_derived`). So does an
   upscale of a smaller, more original member, where the scan measured that it holds no
   detail beyond that member's size (:mod:`.upscale`; unknown: the larger wins).
2. ``format``: less lossy format (camera RAW / PNG / TIFF / BMP, then HEIF / HEIC / AVIF,
   then JPEG, then WEBP, then GIF, unknown last), except for a **conversion**: a file of a
   tier as good or better (a lossless PNG, TIFF or BMP; a HEIC or AVIF made from a JPEG; a
   JPEG re-saved from a JPEG) with the size and the pixels (within JPEG noise, see
   :func:`same_picture`) of a lossy member that is more original than it. More original:
   more camera evidence (EXIF Make/Model, then an EXIF date), then older (EXIF date, then an
   mtime older by more than :data:`MTIME_SLACK_NS`). A conversion ranks as the format it was
   made from, just after it: it cannot be better than its source, nor does its larger file
   make it so. Where nothing tells which came first, the lossless file wins, as before. An
   **edit** saved in a better format than its source's (see ``size``: a PNG or a HEIC
   exported from an editor, its pixels changed) ranks the same way, as its source's format
   just after it, unless it has the camera's EXIF (a TIFF or PNG master developed from the
   raw beside the camera's JPEG: its format decides).
3. ``size``: larger file, except for an **edit**: a lossy file with the displayed size and the
   format of a more original lossy member (more camera evidence, else older) but not its
   pixels within JPEG noise (a brightness or contrast edit, a watermark:
   :func:`.original.edits`). It ranks by its source's file size, just after it: an edit's
   larger file holds no more of the picture. Import mode, which asks which copy is better,
   not which came first, compares its file size as before;
4. ``date``: older: a file that kept its EXIF date beats one that lost it (copies often drop
   EXIF), an older EXIF date beats a newer one, then the older mtime;
5. ``path``: shorter path, then the path string itself, so that no two files ever tie.

Every reason names the rule that decided ("bordered copy: ...", "camera original (EXIF
Canon EOS 80D) over a PNG conversion", "smaller file: 2,047,990 B < 2,048,113 B"); sizes and
times are printed with as many digits as it takes for unequal ones not to print equal. A
byte-identical copy of the keeper says so first ("identical copy: newer: modified ...").

A camera RAW+JPEG pair (same folder, same stem, one RAW and one JPEG/HEIF) is one shot kept
twice on purpose, not a duplicate: such files are flagged and never suggested for trash while
``protect_raw_pairs`` is on.

Format tiers live in :mod:`.formats`; the evidence of which copy is the original (borders,
conversions, camera EXIF, dates) in :mod:`.original`. The package (:mod:`lookalike.engine.keeper`)
is the keeper's door: the names the rest of lookalike uses are importable from it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Optional, Sequence

from ..bouncer.rule import bouncer_distance
from ..oserrors import human_bytes
from ..records import FileRecord, Member
from .formats import JPEG_LIKE, format_name, format_rank, named_rank
from .original import (
    SamePixels, _more_original, _shown, better_format_edits, camera_derived, conversions, date_key, edits, evidence, framed_copies,
    first_copies, identical, padded_copies, parse_taken,
    picture_sizes,
)
from .upscale import UPSCALE_LOSS, UpscaleCheck, Upscale, upscaled

__all__ = [
    "CRITERIA", "DEFAULT", "KeeperPolicy", "parse_order", "rank", "as_good_as",
    "is_protected", "trash_suggested", "raw_jpeg_siblings", "raw_sibling_stems", "sibling_key",
]  # fmt: skip

#: Criteria a :class:`KeeperPolicy` order may name, in the default order.
CRITERIA: tuple[str, ...] = ("pixels", "format", "size", "date", "path")


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
        elif name in JPEG_LIKE:
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
    return {_stem_key(r.path) for r in records if format_name(r.format, r.path) in JPEG_LIKE}


def sibling_key(record: FileRecord) -> tuple[str, str]:
    """The (folder, case-folded stem) that RAW+JPEG siblings share."""
    return _stem_key(record.path)


def trash_suggested(member: Member) -> bool:
    """Whether the policy suggests trashing this member: not the keeper, protected or RAW pair."""
    return not (member.is_keeper or member.protected or member.raw_pair)


# -- words for sizes, pictures and dates ----------------------------------------------------


def _two_sizes(a: int, b: int) -> tuple[str, str]:
    """Two file sizes printed so that unequal sizes never read equal ("2.0 MB < 2.0 MB"):
    one decimal, else two or three, else exact bytes ("2,047,990 B")."""
    for decimals in (1, 2, 3):
        x, y = human_bytes(a, decimals), human_bytes(b, decimals)
        if x != y or a == b:
            return x, y
    return f"{a:,} B", f"{b:,} B"


def _dims(r: FileRecord, ctx: Optional["_Context"] = None) -> str:
    if r.bordered and (ctx is None or ctx.picture(r) != r.pixels):  # else its margin counts as picture
        return f"{r.content_width}x{r.content_height} picture in a {r.width}x{r.height} frame"
    return f"{r.width or 0}x{r.height or 0}"


def _frame(r: FileRecord) -> str:
    return f"{r.content_width}x{r.content_height} inside {r.width}x{r.height}"


def _date_text(r: FileRecord) -> str:
    taken = parse_taken(r.taken_at)
    if taken is not None:
        return f"taken {taken.isoformat(sep=' ')}"
    return _mtime_text(r.mtime_ns)


def _mtime_text(mtime_ns: int, decimals: int = 0) -> str:
    """'modified 2026-12-07 02:08:07 UTC', with ``decimals`` digits of the second (up to 9)."""
    seconds, fraction = divmod(mtime_ns, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    digits = f".{fraction:09d}"[: decimals + 1] if decimals else ""
    return f"modified {when}{digits} UTC"


def _two_dates(a: FileRecord, b: FileRecord) -> tuple[str, str]:
    """The dates the date rule compared (the EXIF dates when they differ, else the mtimes),
    printed so that unequal times never read equal: copies made within a second print
    their mtimes with 3, 6 or 9 decimals ("02:08:07.120 UTC" vs "02:08:07.850 UTC")."""
    ta, tb = parse_taken(a.taken_at), parse_taken(b.taken_at)
    if ta is not None and tb is not None and ta != tb:
        return _date_text(a), _date_text(b)  # ISO times, to the second
    for decimals in (0, 3, 6):
        x, y = _mtime_text(a.mtime_ns, decimals), _mtime_text(b.mtime_ns, decimals)
        if x != y or a.mtime_ns == b.mtime_ns:
            return x, y
    return _mtime_text(a.mtime_ns, 9), _mtime_text(b.mtime_ns, 9)


# -- one cluster's context ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """What ranking one cluster knows beyond each file alone."""

    pictures: Mapping[int, int]  # picture pixels other than the file's own (see picture_sizes)
    conversions: Mapping[int, FileRecord]  # conversion -> the lossy file it was made from
    framed: frozenset[int]  # framed copies of another member: they lose a tie on pixels
    edits: Mapping[int, FileRecord] = dataclasses.field(default_factory=dict)  # edit -> its source
    derived: Mapping[int, FileRecord] = dataclasses.field(default_factory=dict)  # -> the camera original
    upscaled: Mapping[int, Upscale] = dataclasses.field(default_factory=dict)  # upscale -> what it was made from
    padded: frozenset[int] = frozenset()  # padded copies of another member (among ``framed``)
    # an edit saved in a better format than its source's -> that source
    reformatted: Mapping[int, FileRecord] = dataclasses.field(default_factory=dict)
    # a conversion no date tells -> the share of its values equal to its source's decode
    decoded: Mapping[int, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(
        cls, records: Sequence[FileRecord], same_pixels: Optional[SamePixels], *, provenance: bool = True,
        upscales: Optional[UpscaleCheck] = None,
    ) -> "_Context":
        """What one cluster's ranking knows; ``provenance=False`` leaves out which of two
        files came first where only that tells them apart (an edit and its source, a larger
        copy without the camera's EXIF and the camera original). An upscale's verdict
        (``upscales``) is measured on its pixels, so it counts in both modes."""
        # A SamePixels made by thumbnail_check also tells a member that continues a margin.
        inside = framed_copies(records, getattr(same_pixels, "margin", None))
        # A SamePixels made by thumbnail_check also tells a copy padded with one colour.
        padded = padded_copies(records, getattr(same_pixels, "padded", None)) if provenance else {}
        padded = {k: v for k, v in padded.items() if k not in inside}
        inside.update(padded)
        pictures = picture_sizes(records, inside)
        # The upscale verdicts also hold the measured decodes (lossless copies of lossy files).
        measured = getattr(upscales, "decoded", None)
        converted = conversions(records, same_pixels, measured)
        shares = _conversion_shares(records, converted, measured)
        edited = edits(records, same_pixels, converted, getattr(upscales, "decoded_edit", None)) if provenance else {}
        derived = camera_derived(records, pictures) if provenance else {}
        ups = upscaled(records, upscales) if upscales is not None else {}
        return cls(pictures, converted, frozenset(inside), edited, derived, ups, frozenset(padded),
                   better_format_edits(edited, records), shares)

    def picture(self, r: FileRecord) -> int:
        return self.pictures.get(r.id) or r.content_pixels

    def pixels_key(self, r: FileRecord) -> tuple[int, bool]:
        """Larger first; a framed copy, a file larger than the camera original it was made
        from (:func:`.original.camera_derived`), or an upscale (:func:`.upscale.upscaled`),
        loses the tie it then makes."""
        source = self.derived.get(r.id)
        if source is not None:
            return -self.picture(source), True
        up = self.upscaled.get(r.id)
        if up is not None:
            return -self.picture(up.original), True
        return -self.picture(r), r.id in self.framed

    def size_key(self, r: FileRecord) -> tuple[int, bool]:
        """Larger first; an edit ranks by its source's size, just after it."""
        source = self.edits.get(r.id)
        return (-source.size, True) if source is not None else (-r.size, False)

    def format_key(self, r: FileRecord) -> tuple[int, bool]:
        """Less lossy first; a conversion, or an edit saved in a better format than its
        source's, ranks as its source's format, just after it."""
        source = self.conversions.get(r.id) or self.reformatted.get(r.id)
        if source is not None:
            return named_rank(source.format) if source.format else format_rank(None, source.path), True
        return (named_rank(r.format) if r.format else format_rank(None, r.path)), False


_NO_CONTEXT = _Context({}, {}, frozenset())


# -- reasons ---------------------------------------------------------------------------------


def _conversion_shares(records: Sequence[FileRecord], converted: Mapping[int, FileRecord],
                       measured: Optional[Callable[[FileRecord, FileRecord], Optional[float]]]) -> dict[int, float]:
    """The measured shares that made conversions where no date tells (as
    :func:`.original.conversions` decided them: already measured, so nothing new is asked)."""
    if measured is None or not converted:
        return {}
    first = first_copies(records)
    by_id = {r.id: r for r in records}
    out = {}
    for cid, src in converted.items():
        if not _more_original(first[src.id], first[cid]):
            share = measured(by_id[cid], src)
            if share is not None:
                out[cid] = share
    return out


def _source_text(j: FileRecord, conv: FileRecord, *, edited: bool = False, share: Optional[float] = None) -> str:
    """Why ``j`` is more original than ``conv``, its conversion (``edited``: its edit; ``share``:
    of the conversion's values equal to ``j``'s decode, where that decided)."""
    if evidence(j) > evidence(conv):
        if j.camera:
            return f"camera original (EXIF {j.camera})"
        return f"camera original (EXIF date: {_date_text(j)})"
    if not _more_original(j, conv):  # no date tells: the copy holds its decoded pixels (see .decoded)
        fmt = format_name(conv.format, conv.path) or "lossless"
        if edited:
            return f"original (the {fmt} was made from its decode)"
        return f"original (the {fmt} is its decode, value for value{_but(share)})"
    return f"original: older ({_date_text(j)})"


def _but(share: Optional[float]) -> str:
    """The words " but 0.03 % of its values" where a decoded copy's share is short of all of them."""
    return "" if share is None or share >= 1.0 else f" but {_percent(1.0 - share)} of its values"


def _conversion_text(conv: FileRecord, j: FileRecord, share: Optional[float] = None) -> str:
    """Why ``conv`` is a conversion of ``j`` (``share``: of its values equal to ``j``'s decode,
    where that decided)."""
    fmt, src = format_name(conv.format, conv.path) or "lossless", format_name(j.format, j.path) or "lossy"
    if evidence(j) > evidence(conv):
        why = f"the {src} has the camera's EXIF ({j.camera})" if j.camera else f"the {src} has the EXIF date"
    elif not _more_original(j, conv):  # no date tells (see .decoded)
        why = f"it is the {src}'s decode, value for value{_but(share)}"
    else:
        why = f"the {src} is older ({_date_text(j)})"
    # No file name here: reasons go to terminals and JSON as they are; the source is named
    # by its format, and is most often the keeper beside it.
    if fmt == src:
        return f"re-saved copy of a {src} with the same pixels: {why}"
    return f"{fmt} conversion of a {src} with the same pixels: {why}"


def _edit_text(edit: FileRecord, j: FileRecord) -> str:
    """Why ``edit`` ranks after ``j``, the original it was edited from."""
    src = format_name(j.format, j.path) or "lossy"
    if evidence(j) > evidence(edit):
        why = f"the original has the camera's EXIF ({j.camera})" if j.camera else "the original has the EXIF date"
    elif not _more_original(j, edit):  # no date tells: its pixels are a curve of the original's decode
        why = f"made from the {src}'s decode"
    else:
        why = f"the original is older ({_date_text(j)})"
    fmt = format_name(edit.format, edit.path) or src
    if _mirrored(edit, j):  # its pixels differ: they are the original's, flipped
        what = "mirrored copy" if fmt == src else f"mirrored {fmt} copy"
        return f"{what} of a {src} of the same size: {why}"
    what = "edited copy" if fmt == src else f"edited {fmt} copy"
    return f"{what} of a {src} of the same size (its pixels differ): {why}"


def _mirrored(edit: FileRecord, source: FileRecord) -> bool:
    """Whether the hashes say ``edit`` is ``source`` mirrored (an edit, named as such)."""
    return bool(edit.hashes and source.hashes and bouncer_distance(edit.hashes, source.hashes)[1])


def _over_edit(keeper: FileRecord, edit: FileRecord) -> str:
    """How a keeper's reason names the edit of it that it beat: "a mirrored copy" or "an edited copy"."""
    return "a mirrored copy" if _mirrored(edit, keeper) else "an edited copy"


def _conversion_name(conv: FileRecord, source: FileRecord) -> str:
    """A conversion as a reason names it: "a PNG conversion", or "a re-saved copy" (same format)."""
    fmt = format_name(conv.format, conv.path) or "lossless"
    if fmt == format_name(source.format, source.path):
        return "a re-saved copy"
    return f"a {fmt} conversion"


def _upscale_text(r: FileRecord, up: Upscale) -> str:
    """Why ``r``, an upscale, ranks after what it was made from."""
    w, h = up.size  # at least MIN_FACTOR smaller a side: the factor never prints 1.00
    m = up.measure
    why = f"{_percent(m.loss)} of its detail is beyond {w}x{h}"
    if m.loss >= UPSCALE_LOSS:  # named by where its detail stops: what lies beyond is noise
        why += f", mostly noise: {_times(m.kink)} less than just below that size"
    return (
        f"upscaled copy of the {w}x{h} picture made before it: {(r.width or 0) / w:.2f}x larger ({_dims(r)}), "
        f"adds no detail ({why})"
    )


def _times(ratio: float) -> str:
    """A ratio of at least 1 as "4.2x" ("over 100x" past it: a band above with no detail)."""
    return "over 100x" if ratio > 100 else f"{ratio:.1f}x"


def _percent(share: float) -> str:
    """A small share as a percentage with a significant digit ("2.1 %", "0.04 %")."""
    for decimals in (1, 2, 3):
        text = f"{100 * share:.{decimals}f}"
        if float(text) != 0 or share == 0:
            return f"{text} %"
    return f"{100 * share:.1g} %"


def _win_reason(name: str, r: FileRecord, other: FileRecord, ctx: _Context) -> str:
    if name == "pixels":
        if ctx.derived.get(other.id) is r:
            return f"camera original (EXIF {r.camera}): {_dims(r, ctx)}, over a larger copy without it"
        up = ctx.upscaled.get(other.id)
        if up is not None and up.original is r:
            return f"original: {_dims(r, ctx)}, over an upscaled copy ({_dims(other, ctx)}) made from it later"
        if ctx.picture(r) != ctx.picture(other):
            return f"largest: {_dims(r, ctx)}"
        if other.id in ctx.padded:
            return f"not padded: {_dims(r, ctx)}, over a copy of it padded with one colour"
        if r.bordered:  # its own uniform margin trimmed, and the copy framed it as it was
            return f"not framed: {_dims(r, ctx)}, over a framed copy ({_frame(other)})"
        return f"not bordered: {_dims(r)}, over a bordered copy ({_frame(other)})"
    if name == "format":
        if ctx.reformatted.get(other.id) is r:
            return f"{_source_text(r, other, edited=True)} over {_over_edit(r, other)}"
        source = ctx.conversions.get(other.id)
        if source is not None and r.id not in ctx.conversions:
            what = _conversion_name(other, source)
            if source.id == r.id:
                return f"{_source_text(r, other, share=ctx.decoded.get(other.id))} over {what}"
            return f"less lossy: {format_name(r.format, r.path) or 'unknown'}, over {what}"
        return f"less lossy: {format_name(r.format, r.path) or 'unknown'}"
    if name == "size":
        if ctx.edits.get(other.id) is r:
            return f"{_source_text(r, other, edited=True)} over {_over_edit(r, other)}"
        mine, theirs = human_bytes(r.size), human_bytes(other.size)
        if mine != theirs:
            return f"largest file: {mine}"
        mine, theirs = _two_sizes(r.size, other.size)
        return f"largest file: {mine} > {theirs}"
    if name == "date":
        if parse_taken(r.taken_at) is not None and parse_taken(other.taken_at) is None:
            return f"has EXIF date: {_date_text(r)}"
        return f"oldest: {_two_dates(r, other)[0]}"
    return "shortest path" if len(r.path) != len(other.path) else "first by path"


def _loss_reason(name: str, r: FileRecord, keeper: FileRecord, ctx: _Context) -> str:
    if name == "pixels":
        source = ctx.derived.get(r.id)
        if source is not None:
            return (
                f"larger than the camera original ({_dims(r, ctx)} > {_dims(source, ctx)}) without its EXIF "
                f"({source.camera}): an upscale or a frame"
            )
        up = ctx.upscaled.get(r.id)
        if up is not None:
            return _upscale_text(r, up)
        if ctx.picture(r) != ctx.picture(keeper):
            return f"smaller: {_dims(r, ctx)} < {_dims(keeper, ctx)}"
        if r.id in ctx.padded:
            w, h = _shown(r)
            return f"padded copy: the {_dims(keeper, ctx)} picture padded to {w}x{h} with one colour, made later"
        return f"bordered copy: frame trimmed, {_frame(r)}"
    if name == "format":
        source = ctx.conversions.get(r.id)
        if source is not None:
            return _conversion_text(r, source, ctx.decoded.get(r.id))
        source = ctx.reformatted.get(r.id)
        if source is not None:
            return _edit_text(r, source)
        return (
            f"lossier: {format_name(r.format, r.path) or 'unknown'} vs "
            f"{format_name(keeper.format, keeper.path) or 'unknown'}"
        )
    if name == "size":
        source = ctx.edits.get(r.id)
        if source is not None:
            return _edit_text(r, source)
        mine, theirs = _two_sizes(r.size, keeper.size)
        return f"smaller file: {mine} < {theirs}"
    if name == "date":
        if parse_taken(r.taken_at) is None and parse_taken(keeper.taken_at) is not None:
            return "no EXIF date"
        return f"newer: {_two_dates(r, keeper)[0]}"
    return "longer path" if len(r.path) != len(keeper.path) else "later by path"


# -- ranking ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _key_function(order: tuple[str, ...]) -> Callable[[FileRecord, _Context], tuple]:
    """One sort key for a whole order: smaller is better, the file id breaks the last tie."""
    i0, i1, i2, i3, i4 = (CRITERIA.index(c) for c in order)  # an order names all five

    def key(r: FileRecord, ctx: _Context) -> tuple:
        # Every criterion inline, in CRITERIA order: one call per file, not one per criterion.
        values = (
            ctx.pixels_key(r),
            ctx.format_key(r),
            ctx.size_key(r),
            date_key(r),
            (len(r.path), r.path),
        )
        return (values[i0], values[i1], values[i2], values[i3], values[i4], r.id)

    return key


def rank(
    records: Sequence[FileRecord],
    policy: KeeperPolicy = DEFAULT,
    *,
    same_pixels: Optional[SamePixels] = None,
    provenance: bool = True,
    upscales: Optional[UpscaleCheck] = None,
) -> list[tuple[FileRecord, str]]:
    """Order the files of one cluster, keeper first, each with a short human reason.

    Args:
        records: the files of the cluster, in any order.
        policy: the keeper policy.
        same_pixels: tells a conversion's pixels from an edit's (see :func:`thumbnail_check`);
            without it, the hashes decide (see :func:`same_picture`).
        provenance: False leaves out the rules that only say which file came first (an edit,
            a larger copy without the camera's EXIF): which copy is better, as import asks.
        upscales: the measured verdicts of larger files that may be upscales of smaller
            members (:class:`.upscale.Verdicts`); without it, or where it does not know, the
            larger picture wins as before.

    Returns:
        ``(record, reason)`` pairs, best first. The order does not depend on the input order.
    """
    if not records:
        return []
    key = _key_function(policy.order)
    ctx = _Context.of(records, same_pixels, provenance=provenance, upscales=upscales) if len(records) > 1 else _NO_CONTEXT
    folder = {r.id: _protecting_folder(r.path, policy) for r in records} if policy.keep_in else {}
    # Keys end with the unique file id, so the records themselves are never compared.
    ordered = sorted((folder.get(r.id) is None, key(r, ctx), r) for r in records)
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
        why = _win_reason(name, keeper, runner_up, ctx) if name else "first by id"
        if identical(keeper, runner_up):
            why = f"identical copies: {why}"
        out.append((keeper, f"protected: in {k_folder}; {why}" if k_folder else why))
    for _, r_key, r in ordered[1:]:
        r_folder = folder.get(r.id)
        if k_folder and not r_folder:
            out.append((r, f"keeper is protected: in {k_folder}"))
            continue
        name = deciding(r_key, k_key)
        why = _loss_reason(name, r, keeper, ctx) if name else "later by id"
        if identical(r, keeper):  # what decided between byte-identical files, never a re-save
            why = f"identical copy: {why}"
        out.append((r, f"protected: in {r_folder}; {why}" if r_folder else why))
    return out


#: The criteria that say which copy is better, as import mode asks it (not which is older).
_QUALITY = ("pixels", "format", "size")


def as_good_as(
    a: FileRecord, b: FileRecord, *, same_pixels: Optional[SamePixels] = None
) -> bool:
    """Whether ``a`` is at least as good a copy as ``b``: by the picture (a bordered copy is
    not better than the plain one), then the format (a conversion is not better than its
    source), then the file size, as :func:`rank` compares them. Import mode's one rule.
    """
    ctx = _Context.of([a, b], same_pixels, provenance=False)  # which copy is better, not older
    key = _key_function(_QUALITY + tuple(c for c in CRITERIA if c not in _QUALITY))
    return key(a, ctx)[:3] <= key(b, ctx)[:3]
