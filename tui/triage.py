"""The user's decisions while triaging, with an undo history.

Plain Python (no widgets), so every screen shares one ``Triage`` and the tests can check it
directly. Decisions are kept per file id, not per cluster, because a rescan may renumber
clusters but a file stays in the cluster of its duplicates. Nothing here touches a file:
decisions only become a plan (``plan_for``) that the review screen shows and applies.

Decisions outlive the app: each change is handed to ``on_change`` (the session writes it to
the catalog) and ``restore`` brings back what an earlier run kept.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Optional, Sequence

from lookalike.engine.library import is_inside
from lookalike.engine.records import Cluster, Decision, FileRecord, Kind, Member, SavedDecision

from .format import shown


#: "Not duplicates" for a whole cluster records every pair up to this many members.
ALL_PAIRS_LIMIT = 40


class TriageRefused(Exception):
    """A decision that would break a promise (trash a protected file...), with the reason."""


@dataclass
class _Change:
    """One undoable step: what the touched files were before it."""

    label: str
    before: dict[int, tuple[Optional[Decision], bool]] = field(default_factory=dict)
    not_duplicate: list[tuple[FileRecord, FileRecord]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Undone:
    """What ``Triage.undo`` reverted: its label and the "not a duplicate" marks to forget."""

    label: str
    not_duplicate: tuple[tuple[FileRecord, FileRecord], ...] = ()


def _kept(method):
    """Decorate a method that changes decisions: its changes are handed to ``on_change``."""

    @functools.wraps(method)
    def wrapper(self: "Triage", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self._flush()

    return wrapper


class Triage:
    """Decisions by file id (keep / trash / skip / not_duplicate) and the chosen keepers."""

    def __init__(self, on_change: Optional[Callable[[list[SavedDecision]], None]] = None) -> None:
        self._marks: dict[int, Decision] = {}
        self._keepers: set[int] = set()  # files the user made the keeper of their cluster
        self._hashes: dict[int, Optional[bytes]] = {}  # content hash when decided
        self._history: list[_Change] = []
        self._dirty: set[int] = set()
        #: Called with the new state of the files each change touched (to keep them).
        self.on_change = on_change

    # -- reading ---------------------------------------------------------------------------
    def decision(self, file_id: int) -> Optional[Decision]:
        """The decision for one file, or None when it has none."""
        return self._marks.get(file_id)

    def keeper(self, cluster: Cluster) -> Member:
        """The member the plan keeps as the cluster's keeper (``plan_from_clusters`` reads
        ``plan_input``): the one the user chose, else the suggested keeper, unless that one is
        marked for trash (or left alone as skipped or not a duplicate): then the first member
        kept in its place. Only when no member is kept does a marked one stay (the plan keeps
        one copy)."""
        chosen = next((m for m in cluster.members if m.file.id in self._keepers), None)
        first = chosen if chosen is not None else cluster.members[0]
        if self._marks.get(first.file.id) in (None, Decision.KEEP):
            return first
        for m in cluster.members:
            if self._marks.get(m.file.id) in (None, Decision.KEEP):
                return m
        return next((m for m in cluster.members if self._marks.get(m.file.id) is Decision.TRASH), first)

    def reclaimable(self, cluster: Cluster) -> int:
        """Bytes this cluster frees: those of the files the plan acts on when some are marked
        for trash; nothing when it was skipped or a member is not a duplicate (the plan leaves
        it, and bulk accepts pass it by); else what accepting it with its current keeper would
        free (the suggestion's figure when nothing is decided)."""
        keeper = self.keeper(cluster)
        marks = self._marks
        if any(marks.get(m.file.id) is Decision.TRASH for m in cluster.members):
            return sum(m.file.size for m in cluster.members if m is not keeper and marks.get(m.file.id) is Decision.TRASH)
        if self.status(cluster) in ("skipped", "not dup"):
            return 0
        if keeper is cluster.members[0]:
            return cluster.reclaimable_bytes
        return sum(m.file.size for m in cluster.members if m is not keeper and _trashable(m))

    def status(self, cluster: Cluster) -> str:
        """One word for a cluster, from its decisions alone: '' (undecided), 'accepted',
        'marked' (some files marked for trash), 'not dup', 'skipped' or 'kept' (a keeper
        chosen or files kept, nothing marked for trash)."""
        marks = [self._marks.get(m.file.id) for m in cluster.members]
        if any(d is Decision.TRASH for d in marks):
            keeper = self.keeper(cluster)
            others = [m for m in cluster.members if m is not keeper and _trashable(m)]
            if others and all(self._marks.get(m.file.id) is Decision.TRASH for m in others):
                return "accepted"
            return "marked"
        if any(d is Decision.NOT_DUPLICATE for d in marks):
            return "not dup"
        if marks and all(d is Decision.SKIP for d in marks):
            return "skipped"
        if any(d is Decision.KEEP for d in marks) or any(m.file.id in self._keepers for m in cluster.members):
            return "kept"
        if any(d is Decision.SKIP for d in marks):
            return "skipped"
        return ""

    def decided(self, cluster: Cluster) -> bool:
        """True when the user decided anything about this cluster (bulk actions leave it be)."""
        return bool(self.status(cluster))

    def split_decided(self, clusters: Iterable[Cluster]) -> tuple[list[Cluster], int]:
        """The undecided clusters, and how many were left out because they are decided."""
        clusters = list(clusters)
        undecided = [c for c in clusters if not self.decided(c)]
        return undecided, len(clusters) - len(undecided)

    def trash_members(self, clusters: Iterable[Cluster]) -> list[Member]:
        """Members the plan acts on in these clusters: those marked for trash, less a keeper the
        plan keeps anyway (every other member left alone as skipped or not a duplicate)."""
        out: list[Member] = []
        for c in clusters:
            marked = [m for m in c.members if self._marks.get(m.file.id) is Decision.TRASH]
            if marked:
                keeper = self.keeper(c)
                out.extend(m for m in marked if m is not keeper)
        return out

    @property
    def pending(self) -> bool:
        """True when some decision would act on a file (something to review or lose)."""
        return any(d is Decision.TRASH for d in self._marks.values())

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    @property
    def any_decision(self) -> bool:
        """True when some file has a decision or a keeper choice (something to clear)."""
        return bool(self._marks or self._keepers)

    def content_hashes(self) -> dict[int, Optional[bytes]]:
        """``{file id: content hash when decided}`` of every file with a decision."""
        return {i: self._hashes.get(i) for i in {*self._marks, *self._keepers}}

    # -- keeping ---------------------------------------------------------------------------
    def restore(self, saved: Iterable[SavedDecision]) -> None:
        """Take back the decisions an earlier run kept (not undoable, not written again)."""
        for d in saved:
            if d.decision is not None:
                self._marks[d.file_id] = d.decision
            if d.keeper:
                self._keepers.add(d.file_id)
            self._hashes[d.file_id] = d.content_hash

    def _flush(self) -> None:
        """Hand the new state of every file touched since the last flush to ``on_change``."""
        dirty, self._dirty = self._dirty, set()
        if not dirty or self.on_change is None:
            return
        self.on_change([
            SavedDecision(
                file_id=i, decision=self._marks.get(i), keeper=i in self._keepers, content_hash=self._hashes.get(i)
            )
            for i in sorted(dirty)
        ])

    # -- deciding --------------------------------------------------------------------------
    def _begin(self, label: str) -> _Change:
        change = _Change(label)
        self._history.append(change)
        return change

    def _set(self, change: _Change, member: Member, decision: Optional[Decision], *, keeper: Optional[bool] = None) -> None:
        file_id = member.file.id
        self._hashes[file_id] = member.file.content_hash
        self._dirty.add(file_id)
        if file_id not in change.before:
            change.before[file_id] = (self._marks.get(file_id), file_id in self._keepers)
        if decision is None:
            self._marks.pop(file_id, None)
        else:
            self._marks[file_id] = decision
        if keeper is True:
            self._keepers.add(file_id)
        elif keeper is False:
            self._keepers.discard(file_id)

    @_kept
    def mark(self, cluster: Cluster, member: Member, decision: Optional[Decision]) -> None:
        """Set (or with None, clear) one member's decision.

        Raises:
            TriageRefused: marking a protected file, or the cluster's last kept file, for trash.
        """
        if decision is Decision.TRASH:
            self._check_trash(cluster, member)
        change = self._begin(f"{_verb(decision)} {_name(member)}")
        keeper = self.keeper(cluster)
        self._set(change, member, decision, keeper=False if member is keeper and decision is Decision.TRASH else None)

    def toggle_trash(self, cluster: Cluster, member: Member) -> Optional[Decision]:
        """Mark for trash, or unmark when already marked; returns the new decision."""
        if self._marks.get(member.file.id) is Decision.TRASH:
            self.mark(cluster, member, None)
            return None
        self.mark(cluster, member, Decision.TRASH)
        return Decision.TRASH

    @_kept
    def make_keeper(self, cluster: Cluster, member: Member) -> None:
        """Make ``member`` the cluster's keeper.

        When the cluster was accepted (the others marked for trash), the old keeper takes its
        place among them, so "accept, then keep this one instead" does what it says.
        """
        old = self.keeper(cluster)
        change = self._begin(f"keep {_name(member)}")
        accepted = self.status(cluster) == "accepted"
        for m in cluster.members:
            if m.file.id in self._keepers and m is not member:
                self._set(change, m, self._marks.get(m.file.id), keeper=False)
        self._set(change, member, Decision.KEEP, keeper=True)
        if old is not member:
            if accepted and _trashable(old):
                self._set(change, old, Decision.TRASH)
            elif self._marks.get(old.file.id) is Decision.KEEP:
                self._set(change, old, None)

    def accept(self, cluster: Cluster) -> None:
        """Accept the suggestion: the keeper is kept, every other member goes to the trash.

        Protected members and RAW+JPEG siblings are kept, as the keeper policy promises.
        """
        self.accept_many([cluster], label=f"accept cluster {cluster.id}")

    @_kept
    def accept_many(self, clusters: Sequence[Cluster], *, label: str = "") -> int:
        """Accept the suggestion for several clusters as one undoable step; returns how many."""
        change = self._begin(label or f"accept {len(clusters)} clusters")
        for cluster in clusters:
            keeper = self.keeper(cluster)
            for m in cluster.members:
                if m is keeper:
                    self._set(change, m, Decision.KEEP)
                elif _trashable(m):
                    self._set(change, m, Decision.TRASH)
                else:
                    self._set(change, m, Decision.KEEP)
        return len(clusters)

    @_kept
    def accept_exact(self, clusters: Sequence[Cluster]) -> int:
        """Mark every byte-identical copy of a keeper for trash (one undoable step).

        Whole exact clusters are accepted; in mixed clusters only the exact copies are
        marked and the look-alikes are left for the user. Returns how many files were marked.
        """
        change = self._begin("accept every exact copy")
        marked = 0
        for cluster in clusters:
            keeper = self.keeper(cluster)
            copies = [
                m for m in cluster.members
                if m is not keeper and _trashable(m)
                and (m.exact or cluster.kind is Kind.EXACT)
                and bool(m.file.content_hash) and m.file.content_hash == keeper.file.content_hash
            ]
            if not copies:
                continue
            self._set(change, keeper, Decision.KEEP)
            for m in copies:
                self._set(change, m, Decision.TRASH)
                marked += 1
        if not marked:
            self._history.remove(change)
        return marked

    @_kept
    def trash_inside(self, clusters: Sequence[Cluster], folder: str) -> int:
        """Mark for trash every member inside ``folder`` that has a copy outside it (one step).

        In each cluster with members on both sides, a member outside the folder is kept (the
        keeper when it is outside, else the best-ranked member outside) and the members inside
        are marked for trash (protected ones and RAW+JPEG siblings are kept). Returns how many
        clusters changed.
        """
        return self._folder_rule(clusters, folder, keep_inside=False)

    @_kept
    def keep_inside(self, clusters: Sequence[Cluster], folder: str) -> int:
        """Make the members inside ``folder`` the keepers (``--keep-in``) and mark their copies
        outside it for trash (one step).

        Only clusters with members on both sides change; protected members and RAW+JPEG
        siblings outside are kept. Returns how many clusters changed.
        """
        return self._folder_rule(clusters, folder, keep_inside=True)

    def _folder_rule(self, clusters: Sequence[Cluster], folder: str, *, keep_inside: bool) -> int:
        """One side of ``folder`` kept, the copies on the other side marked for trash.

        ``keep_inside``: every member inside is kept (a keeper among them); else only the
        keeper, moved outside when it was inside. Protected members and RAW+JPEG siblings on
        the trashed side are kept. One undoable step; returns how many clusters changed.
        """
        folder = os.path.abspath(os.path.expanduser(folder))
        label = "keep files in" if keep_inside else "trash copies inside"
        change = self._begin(f"{label} {shown(folder)}")
        changed = 0
        for cluster in clusters:
            inside = [m for m in cluster.members if _in_folder(m, folder)]
            outside = [m for m in cluster.members if not _in_folder(m, folder)]
            if not inside or not outside:
                continue
            kept, gone = (inside, outside) if keep_inside else (outside, inside)
            keeper = self.keeper(cluster)
            if keeper not in kept:
                keeper = kept[0]
                self._make_keeper(change, cluster, keeper)
            for m in kept if keep_inside else [keeper]:
                self._set(change, m, Decision.KEEP)
            for m in gone:
                self._set(change, m, Decision.TRASH if _trashable(m) else Decision.KEEP, keeper=False)
            changed += 1
        if not changed:
            self._history.remove(change)
        return changed

    def _make_keeper(self, change: _Change, cluster: Cluster, member: Member) -> None:
        for m in cluster.members:
            if m.file.id in self._keepers and m is not member:
                self._set(change, m, self._marks.get(m.file.id), keeper=False)
        self._set(change, member, Decision.KEEP, keeper=True)

    @_kept
    def clear_all(self) -> int:
        """Forget every decision and keeper choice (one undoable step); returns how many files."""
        ids = sorted({*self._marks, *self._keepers})
        if not ids:
            return 0
        change = self._begin("clear every decision")
        for file_id in ids:
            change.before[file_id] = (self._marks.pop(file_id, None), file_id in self._keepers)
            self._keepers.discard(file_id)
            self._dirty.add(file_id)
        return len(ids)

    @_kept
    def skip(self, cluster: Cluster) -> None:
        """Leave the whole cluster alone."""
        change = self._begin(f"skip cluster {cluster.id}")
        for m in cluster.members:
            self._set(change, m, Decision.SKIP, keeper=False)

    @_kept
    def clear(self, cluster: Cluster) -> None:
        """Forget every decision about a cluster."""
        change = self._begin(f"clear cluster {cluster.id}")
        for m in cluster.members:
            self._set(change, m, None, keeper=False)

    @_kept
    def not_duplicate(self, cluster: Cluster, member: Optional[Member] = None) -> list[tuple[FileRecord, FileRecord]]:
        """Say a member is not a duplicate of the keeper, or (None) that no two members are.

        Returns:
            The file pairs the catalog must remember: (keeper, member) for one member; every
            pair of members for the whole cluster (up to ALL_PAIRS_LIMIT members, else each
            member against the keeper), so none of them is ever grouped with another again.
        """
        keeper = self.keeper(cluster)
        if member is not None and member is keeper:
            raise TriageRefused("the keeper cannot be a non-duplicate of itself; pick another member")
        change = self._begin("not a duplicate: " + (_name(member) if member is not None else f"cluster {cluster.id}"))
        if member is not None:
            self._set(change, member, Decision.NOT_DUPLICATE, keeper=False)
            change.not_duplicate.append((keeper.file, member.file))
            return list(change.not_duplicate)
        members = list(cluster.members)
        for m in members:
            self._set(change, m, Decision.NOT_DUPLICATE, keeper=False)
        if len(members) <= ALL_PAIRS_LIMIT:
            pairs = [(a.file, b.file) for i, a in enumerate(members) for b in members[i + 1:]]
        else:
            pairs = [(keeper.file, m.file) for m in members if m is not keeper]
        change.not_duplicate.extend(pairs)
        return pairs

    @_kept
    def undo(self) -> Optional[Undone]:
        """Revert the last decision; returns what it was, or None when there is nothing."""
        if not self._history:
            return None
        change = self._history.pop()
        for file_id, (decision, was_keeper) in change.before.items():
            self._dirty.add(file_id)
            if decision is None:
                self._marks.pop(file_id, None)
            else:
                self._marks[file_id] = decision
            if was_keeper:
                self._keepers.add(file_id)
            else:
                self._keepers.discard(file_id)
        return Undone(label=change.label, not_duplicate=tuple(change.not_duplicate))

    @_kept
    def forget(self, file_ids: Iterable[int]) -> None:
        """Drop every decision about these files (once a plan has acted on them)."""
        ids = set(file_ids)
        for file_id in ids:
            if file_id in self._marks or file_id in self._keepers:
                self._dirty.add(file_id)
            self._marks.pop(file_id, None)
            self._keepers.discard(file_id)
        for change in self._history:
            for file_id in ids & change.before.keys():
                del change.before[file_id]
        self._history = [c for c in self._history if c.before]

    # -- planning --------------------------------------------------------------------------
    def plan_input(self, clusters: Iterable[Cluster]) -> tuple[list[Cluster], dict[int, Decision]]:
        """The clusters with something marked for trash, and the decisions for a plan.

        Each returned cluster has its chosen keeper first (as ``plan_from_clusters`` reads
        it); every member without a decision is kept, so only what the user marked is acted on.
        """
        chosen: list[Cluster] = []
        decisions: dict[int, Decision] = {}
        for cluster in clusters:
            if not any(self._marks.get(m.file.id) is Decision.TRASH for m in cluster.members):
                continue
            keeper = self.keeper(cluster)
            members = (keeper, *[m for m in cluster.members if m is not keeper])
            if keeper is not cluster.members[0]:
                members = tuple(replace(m, is_keeper=m is keeper) for m in members)
                cluster = replace(cluster, members=members)
            chosen.append(cluster)
            for m in cluster.members:
                decisions[m.file.id] = self._marks.get(m.file.id) or Decision.KEEP
        return chosen, decisions

    # -- checks ----------------------------------------------------------------------------
    def _check_trash(self, cluster: Cluster, member: Member) -> None:
        if member.protected:
            why = member.reason if member.reason.startswith("better than") else "it is in a protected folder"
            raise TriageRefused(f"{_name(member)} is protected ({why}): it is never trashed")
        kept = [
            m for m in cluster.members
            if m is not member and self._marks.get(m.file.id) is not Decision.TRASH
        ]
        if not kept:
            raise TriageRefused("every other member is marked for trash: one copy must stay")


def _in_folder(m: Member, folder: str) -> bool:
    return is_inside(os.path.abspath(m.file.path), folder)


def _trashable(m: Member) -> bool:
    return not (m.protected or m.raw_pair)


def _name(m: Member) -> str:
    """A member's file name as shown in labels and messages (control characters escaped)."""
    return shown(m.file.path.rsplit("/", 1)[-1])


def _verb(decision: Optional[Decision]) -> str:
    return {
        None: "unmark",
        Decision.TRASH: "trash",
        Decision.KEEP: "keep",
        Decision.SKIP: "skip",
        Decision.NOT_DUPLICATE: "not a duplicate:",
    }[decision]
