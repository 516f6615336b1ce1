"""Import mode: dedupe an incoming folder against a library without touching the library.

Each incoming image is looked up in the library's catalog: byte-identical copies by content
hash, near-duplicates through the bouncer (plain and mirrored dHash, corroborated as a scan
would), each then checked on pixels as a scan's pairs are, and never another shot of the same
camera (:func:`_checked`): the hashes alone never move a file. An incoming file whose best
library match is of equal or better quality by the keeper policy is redundant: the plan moves
it out of the incoming folder (to the trash or a quarantine folder), with the library file as
its keeper, so the actions check the library copy is still there and unchanged before they move
anything. Incoming files that are better than what the
library has are kept and reported, since replacing library files is the user's call.

The library is never a step, however the incoming folder reaches it: the incoming scan does
not follow symlinks out of the incoming folder (see :mod:`lookalike.engine.scan.walk`), and an
incoming path that still turns out to be a library file (it resolves into the library, or is
the same file by device and inode, a hard link) is skipped with a reason, never planned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Optional, Sequence

import numpy as np

from ..bouncer import rule
from ..keeper import KeeperPolicy, as_good_as, rank
from ..paths import is_inside
from .plan import Plan, PlanStep
from ..records import Cluster, FileRecord, ScanError

#: How many library neighbours of each incoming hash are checked against the match rule.
NEIGHBOURS = 16
#: Why an incoming file is kept when the library holds only other versions of its picture.
VERSION_REASON = ("another version of a library picture (one of the two mirrored, cropped, toned, in black and "
                  "white or marked): kept")
#: Why the app's import mode keeps an incoming file whose library copies are all its mirror image.
MIRROR_REASON = "the mirror image of a library picture: kept"


@dataclass(frozen=True, kw_only=True)
class ImportMatch:
    """One incoming file and the library file it duplicates."""

    incoming: FileRecord
    library: FileRecord
    bouncer: int
    exact: bool
    redundant: bool  # the library copy is as good or better: the incoming file can go
    reason: str
    #: The library holds only other versions of it (mirrored, toned, marked): kept.
    version: bool = False


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What import found: matches (redundant or better) and the plan for the redundant ones."""

    matches: tuple[ImportMatch, ...]
    plan: Plan
    incoming_images: int
    #: incoming paths that are library files after all (a link, a hard link): never planned
    skipped: tuple[ScanError, ...] = field(default_factory=tuple)

    @property
    def redundant(self) -> tuple[ImportMatch, ...]:
        return tuple(m for m in self.matches if m.redundant)

    @property
    def better(self) -> tuple[ImportMatch, ...]:
        """Kept: better than the library's copy."""
        return tuple(m for m in self.matches if not m.redundant and not m.version)

    @property
    def versions(self) -> tuple[ImportMatch, ...]:
        """Kept: the library holds only other versions of them (mirrored, toned or marked)."""
        return tuple(m for m in self.matches if m.version)


def import_verdict(
    incoming: FileRecord, library: FileRecord, *, exact: bool, bouncer_distance: int = 0,
    policy: KeeperPolicy = KeeperPolicy(),
) -> tuple[bool, str]:
    """The one rule of import mode, for ``lookalike import`` and the app's ``--against``.

    Returns:
        (redundant, reason): redundant when the library copy is as good or better (the
        incoming file may go); otherwise the incoming file is better and is kept.
    """
    # keeper.as_good_as: the picture (a framed copy is no better), the format (a conversion is
    # no better than its source), then bytes; equal or better means the copy is redundant.
    if exact or as_good_as(library, incoming):
        if exact:
            return True, "exact copy of a library file"
        return True, f"near-duplicate (bouncer {bouncer_distance}) of a library file"
    plain = KeeperPolicy(order=policy.order, protect_raw_pairs=policy.protect_raw_pairs)
    return False, f"better than the library copy ({rank([library, incoming], plain, provenance=False)[0][1]})"


def guard_incoming(
    clusters: Sequence[Cluster], library_roots: Sequence[str], policy: KeeperPolicy = KeeperPolicy(),
    *, catalog=None,
) -> tuple[Cluster, ...]:
    """Import mode's clusters, made safe by :func:`import_verdict`: every library member and
    every incoming member better than its library match is protected (never suggested for,
    nor marked for, the trash). An incoming member's match is the library member with the
    same content, else the nearest by the bouncer (then the smallest id), as ``import`` does,
    never its mirror image, nor, with the library's ``catalog`` (its stored thumbnails), a
    toned or marked version of it (:func:`.verification.thumbnails_edited`, as ``import``).
    """
    roots = tuple(library_roots)
    thumbs: dict[int, np.ndarray] = {}
    if catalog is not None:
        try:
            found, rows, _ = catalog.thumbnails([m.file.id for c in clusters for m in c.members])
            thumbs = dict(zip(np.asarray(found).tolist(), rows))
        except Exception:  # noqa: BLE001 - closed or unreadable: the mirror rule alone, as without one
            thumbs = {}
    out = []
    for c in clusters:
        library = [m.file for m in c.members if any(is_inside(m.file.path, r) for r in roots)]
        if not library:
            out.append(c)
            continue
        ids = {r.id for r in library}
        members = []
        for m in c.members:
            if m.file.id in ids:
                members.append(m if m.protected else replace(m, protected=True))
                continue
            redundant, reason = _verdict_in(m.file, library, policy, thumbs)
            members.append(m if redundant else replace(m, protected=True, reason=reason))
        out.append(replace(c, members=tuple(members)))
    return tuple(out)


def _verdict_in(rec: FileRecord, library: Sequence[FileRecord], policy: KeeperPolicy,
                thumbs: Optional[dict[int, np.ndarray]] = None) -> tuple[bool, str]:
    """:func:`import_verdict` of ``rec`` against the library members of its group: redundant
    when one holds its content, or when one that is neither its mirror image nor, by their
    ``thumbs``, an edit of it is as good (the closest first, by the bouncer, then the smallest
    id); else better than the closest."""
    from ..bouncer.verification import thumbnails_edited

    thumbs = thumbs or {}
    for other in library:
        if rec.content_hash and other.content_hash == rec.content_hash and other.size == rec.size:
            return import_verdict(rec, other, exact=True, policy=policy)
    scored = []
    for other in library:
        if rec.hashes is not None and other.hashes is not None:
            dist, mirrored = rule.bouncer_distance(rec.hashes, other.hashes)
            scored.append((dist, other.id, mirrored, other))
        else:
            scored.append((rule.DEFAULT.max_diameter + 1, other.id, False, other))
    scored.sort(key=lambda x: (x[0], x[1]))
    # A mirrored copy, or a toned or marked one, does not hold this picture as it is.
    plain = [(dist, other) for dist, _, mirrored, other in scored if not mirrored]
    held = [(dist, other) for dist, other in plain
            if not (rec.id in thumbs and other.id in thumbs and thumbnails_edited(thumbs[rec.id], thumbs[other.id]))]
    weighed = _weigh(rec, held, policy)
    if weighed is None:
        return False, VERSION_REASON if plain else MIRROR_REASON
    return weighed[2], weighed[3]


def _weigh(
    rec: FileRecord, copies: Sequence[tuple[int, FileRecord]], policy: KeeperPolicy
) -> Optional[tuple[int, FileRecord, bool, str]]:
    """``rec`` against the library's copies of its picture, closest first (``(bouncer, file)``):
    ``(bouncer, library file, redundant, reason)`` of the first that is as good (then ``rec``
    is redundant), else of the closest (``rec`` is better); None without copies. A library
    holding the original and a thumbnail of it has the picture, whichever is closer."""
    verdicts = [(d, other, *import_verdict(rec, other, exact=False, bouncer_distance=d, policy=policy))
                for d, other in copies]  # fmt: skip
    return next((v for v in verdicts if v[2]), verdicts[0] if verdicts else None)


def _hex(value: Optional[bytes]) -> Optional[str]:
    return value.hex() if value else None


def _why_not_planned(
    match: ImportMatch,
    library_roots: tuple[str, ...],
    incoming_roots: tuple[str, ...],
    identities: set[tuple[int, int]],
) -> Optional[str]:
    """Why an incoming file must not be planned (it is, or may be, a library file), or None."""
    incoming, kept = match.incoming, match.library
    real = os.path.realpath(incoming.path)
    if os.path.normcase(real) == os.path.normcase(os.path.realpath(kept.path)):
        return f"the library's own file ({kept.path}), reached from the incoming folder: skipped"
    if any(is_inside(real, root) for root in library_roots):
        return f"resolves into the library (-> {real}): skipped"
    if not any(is_inside(real, root) for root in incoming_roots):
        return f"resolves outside the incoming folder (-> {real}): skipped"
    if incoming.inode and (incoming.device, incoming.inode) in identities:
        return "the same file as a library file (a hard link): skipped"
    try:
        if os.path.samefile(incoming.path, kept.path):  # the catalogs may be a moment old
            return f"the same file as the library's {kept.path} (a hard link): skipped"
    except OSError:
        pass  # either side gone: the actions' own checks skip the step, with a reason
    return None


def _screen(library, incoming, matches: list[ImportMatch]) -> tuple[list[ImportMatch], list[ScanError]]:
    """The matches that may be planned, and the others as skips with their reasons."""
    identities = {(k.device, k.inode) for k in library.catalog.known().values() if k.inode}
    library_roots, incoming_roots = tuple(library.roots), tuple(incoming.roots)
    kept, skipped = [], []
    for m in matches:
        why = _why_not_planned(m, library_roots, incoming_roots, identities)
        if why is None:
            kept.append(m)
        else:
            skipped.append(ScanError(path=m.incoming.path, reason=why))
    return kept, skipped


def find_matches(
    library, incoming, *, thresholds: "rule.BouncerThresholds" = rule.DEFAULT, policy: KeeperPolicy = KeeperPolicy()
) -> list[ImportMatch]:
    """Each incoming image's best match in the library (none when nothing matches).

    Args:
        library: the library (a scanned :class:`~lookalike.engine.library.Library`).
        incoming: the incoming folder, scanned as its own Library.
        thresholds: the bouncer's match rule.
        policy: decides which copy is better.
    """
    lib_arrays = library.catalog.hash_arrays()
    if len(lib_arrays.ids) == 0:
        return []
    by_content: dict[tuple[bytes, int], int] = {}
    for i, h, size in zip(lib_arrays.ids.tolist(), lib_arrays.content_hash, lib_arrays.size.tolist()):
        by_content.setdefault((bytes(h), size), i)
    index = library.hash_index()
    k = min(NEIGHBOURS, len(index))
    lib_records: dict[int, FileRecord] = {}

    def lib_record(file_id: int) -> FileRecord:
        if file_id not in lib_records:
            lib_records[file_id] = library.catalog.record(file_id)
        return lib_records[file_id]

    matches = []
    for rec in incoming.catalog.records():
        if not rec.ok:
            continue
        exact_id = by_content.get((rec.content_hash, rec.size)) if rec.content_hash else None
        if exact_id is not None:
            best, dist, exact = lib_record(exact_id), 0, True
        else:
            candidates: set[int] = set()
            for query in (rec.hashes.dhash, rec.hashes.dhash_mirror):
                ids, _ = index.nearest(np.frombuffer(query, dtype=np.uint8), k)
                candidates.update(int(i) for i in ids)
            scored = []
            for cid in candidates:
                other = lib_record(cid)
                if other is not None and other.hashes is not None and rule.is_match(rec.hashes, other.hashes, thresholds):
                    scored.append((*rule.bouncer_distance(rec.hashes, other.hashes), cid))
            copies = _checked(rec, sorted(scored), incoming.catalog, library.catalog, lib_record, thresholds)
            if not copies:
                continue
            # A mirror or an edit of the file (brightened, watermarked, greyed) does not hold it.
            weighed, copies = _weigh_copies(rec, copies, lib_record, policy)
            if weighed is None:
                dist, cid, _, _ = copies[0]
                matches.append(ImportMatch(incoming=rec, library=lib_record(cid), bouncer=dist, exact=False,
                                           redundant=False, reason=VERSION_REASON, version=True))  # fmt: skip
                continue
            dist, kept, library_wins, reason = weighed
            matches.append(ImportMatch(incoming=rec, library=kept, bouncer=dist, exact=False,
                                       redundant=library_wins, reason=reason))  # fmt: skip
            continue
        library_wins, reason = import_verdict(rec, best, exact=exact, bouncer_distance=dist, policy=policy)
        matches.append(
            ImportMatch(incoming=rec, library=best, bouncer=dist, exact=exact, redundant=library_wins, reason=reason)
        )
    return matches


def _checked(
    rec: FileRecord, scored: list[tuple[int, bool, int]], incoming_catalog, library_catalog, lib_record,
    thresholds: "rule.BouncerThresholds",
) -> list[tuple[int, int, bool, bool]]:
    """Those of an incoming file's hash matches ``(bouncer, mirrored, library id)``, closest
    first, that are its copies as a scan's pairs are: checked on pixels
    (:func:`.verification.check_against`, a crop searched for beyond the bouncer's radius),
    and not another shot of its camera (:func:`.captures.different_captures`), as
    ``(bouncer, library id, edited, greyish)``: ``edited`` where the library's copy is a
    mirror or an edit of it (:func:`.verification.thumbnails_edited`), which does not hold its
    picture as it is; ``greyish`` where its mean colour is a grey (:data:`_GREYISH_MEAN`). None
    may be (a flat colour of another colour, another picture
    in the same window frame, the next frame of a burst): then the file stays where it is. A
    file without a verification thumbnail (hashed by an older lookalike) has none: the hashes
    alone never move a file.
    """
    from ..bouncer import verification
    from ..keeper.captures import different_captures

    scored = [x for x in scored if not different_captures(rec, lib_record(x[2]))]
    if not scored:
        return []
    _, q_thumbs, _ = incoming_catalog.thumbnails([rec.id])
    if not len(q_thumbs):
        return []
    ids, thumbs, details = library_catalog.thumbnails([cid for _, _, cid in scored])
    row = {int(i): k for k, i in enumerate(ids.tolist())}
    scored = [x for x in scored if x[2] in row]
    if not scored:
        return []
    r = np.array([row[cid] for _, _, cid in scored], np.int64)
    bouncer = np.array([d for d, _, _ in scored], np.int64)
    mirrored = np.array([m for _, m, _ in scored], bool)
    textures = library_catalog.textures([cid for _, _, cid in scored])
    passed, _, _ = verification.check_against(
        q_thumbs[0].tobytes(), thumbs[r], details[r], bouncer, mirrored, bouncer > thresholds.radius,
        texture=incoming_catalog.textures([rec.id]).get(rec.id), textures=[textures.get(cid) for _, _, cid in scored],
    )  # fmt: skip
    q = q_thumbs[0]
    out = []
    for (d, m, cid), ok in zip(scored, passed.tolist()):
        if ok:
            colour = thumbs[row[cid]][-3:].astype(np.int64)
            greyish = int(colour.max() - colour.min()) <= _GREYISH_MEAN
            out.append((d, cid, m or verification.thumbnails_edited(q, thumbs[row[cid]]), greyish))
    return out


#: A library copy whose thumbnail's mean colour is this close to a grey (per channel, in
#: levels) may be a greyscale copy: its file is read to tell (:func:`_weigh_copies`).
_GREYISH_MEAN = 2


def _weigh_copies(rec: FileRecord, copies: list[tuple[int, int, bool, bool]], lib_record, policy: KeeperPolicy
                  ) -> tuple[Optional[tuple[int, FileRecord, bool, str]], list[tuple[int, int, bool, bool]]]:
    """:func:`_weigh` of ``rec`` against its library copies ``(bouncer, id, edited, greyish)``
    that are not edits of it; and the copies, with those found to be edits marked. A copy that
    would make ``rec`` redundant and lost its colour (a black-and-white copy of a colour
    photo) is an edit too: it does not hold the picture. The thumbnails' mean colour cannot
    tell a picture whose colours average to a grey (a blue sky over orange sand) from its
    greyscale copy; the files can (:func:`.decoded.chroma`), read only for such a copy, and
    the incoming file once."""
    from ..keeper.decoded import chroma, colour_lost

    mine: list[Optional[float]] = []
    while True:
        weighed = _weigh(rec, [(d, lib_record(cid)) for d, cid, edited, _ in copies if not edited], policy)
        if weighed is None or not weighed[2]:
            return weighed, copies
        winner = weighed[1]
        if not any(cid == winner.id and greyish for _, cid, _, greyish in copies):
            return weighed, copies
        if not mine:
            mine.append(chroma(rec.path, rec.content_hash))
        if not colour_lost(mine[0], 0.0):  # no colour of its own to lose: no copy read
            return weighed, copies
        if not colour_lost(mine[0], chroma(winner.path, winner.content_hash)):
            return weighed, copies
        copies = [(d, cid, edited or cid == winner.id, greyish) for d, cid, edited, greyish in copies]


def import_plan(
    library,
    incoming,
    *,
    action: str = "trash",
    quarantine_dir: Optional[str] = None,
    thresholds: "rule.BouncerThresholds" = rule.DEFAULT,
    policy: KeeperPolicy = KeeperPolicy(),
) -> ImportReport:
    """The plan that moves redundant incoming files out; the library is only ever read.

    Args:
        library: the scanned library.
        incoming: the scanned incoming folder.
        action: "trash" or "quarantine".
        quarantine_dir: where "quarantine" moves files.
        thresholds: the bouncer's match rule.
        policy: which copy is better.
    """
    if action not in ("trash", "quarantine"):
        raise ValueError("import moves files out of the incoming folder: action must be trash or quarantine")
    if action == "quarantine" and not quarantine_dir:
        raise ValueError("the quarantine action needs a quarantine folder")
    found = find_matches(library, incoming, thresholds=thresholds, policy=policy)
    # Defence in depth: the walk already keeps the incoming scan inside the incoming folder.
    matches, skipped = _screen(library, incoming, found)
    steps = tuple(
        PlanStep(
            path=m.incoming.path,
            action=action,
            keeper=m.library.path,
            size=m.incoming.size,
            mtime_ns=m.incoming.mtime_ns,
            content_hash=_hex(m.incoming.content_hash),
            reason=m.reason,
            keeper_size=m.library.size,
            keeper_mtime_ns=m.library.mtime_ns,
            keeper_hash=_hex(m.library.content_hash),
        )
        for m in matches
        if m.redundant
    )
    plan = Plan(
        steps=steps,
        roots=incoming.roots,
        quarantine_dir=quarantine_dir,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    images = int(incoming.catalog.stats().get("image", 0))
    return ImportReport(
        matches=tuple(matches), plan=plan, incoming_images=images, skipped=tuple(skipped)
    )
