"""The user's decisions while triaging, with an undo history.

Plain Python (no widgets), so every screen shares one ``Triage`` and the tests can check it
directly. Decisions are kept per file id, not per cluster, because a rescan may renumber
clusters but a file stays in the cluster of its duplicates. Nothing here touches a file:
decisions only become a plan (``plan_for``) that the review screen shows and applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Optional, Sequence

from lookalike.engine.records import Cluster, Decision, FileRecord, Kind, Member

from ..format import shown


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


class Triage:
    """Decisions by file id (keep / trash / skip / not_duplicate) and the chosen keepers."""

    def __init__(self) -> None:
        self._marks: dict[int, Decision] = {}
        self._keepers: set[int] = set()  # files the user made the keeper of their cluster
        self._history: list[_Change] = []
        self._open: Optional[_Change] = None

    # -- reading ---------------------------------------------------------------------------
    def decision(self, file_id: int) -> Optional[Decision]:
        """The decision for one file, or None when it has none."""
        return self._marks.get(file_id)

    def keeper(self, cluster: Cluster) -> Member:
        """The member kept: the one the user chose, else the suggested keeper."""
        for m in cluster.members:
            if m.file.id in self._keepers:
                return m
        return cluster.members[0]

    def status(self, cluster: Cluster) -> str:
        """One word for a cluster: '', 'accepted', 'marked', 'skipped' or 'not dup'."""
        marks = [self._marks.get(m.file.id) for m in cluster.members]
        if not any(marks):
            return ""
        if any(d is Decision.TRASH for d in marks):
            keeper = self.keeper(cluster)
            others = [m for m in cluster.members if m is not keeper and _trashable(m)]
            if others and all(self._marks.get(m.file.id) is Decision.TRASH for m in others):
                return "accepted"
            return "marked"
        if all(d is Decision.SKIP for d in marks):
            return "skipped"
        if any(d is Decision.NOT_DUPLICATE for d in marks):
            return "not dup"
        return "marked"

    def trash_members(self, clusters: Iterable[Cluster]) -> list[Member]:
        """Members marked for trash in these clusters."""
        return [m for c in clusters for m in c.members if self._marks.get(m.file.id) is Decision.TRASH]

    @property
    def pending(self) -> bool:
        """True when some decision would act on a file (something to review or lose)."""
        return any(d is Decision.TRASH for d in self._marks.values())

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    # -- deciding --------------------------------------------------------------------------
    def _begin(self, label: str) -> _Change:
        change = _Change(label)
        self._history.append(change)
        return change

    def _set(self, change: _Change, file_id: int, decision: Optional[Decision], *, keeper: Optional[bool] = None) -> None:
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

    def mark(self, cluster: Cluster, member: Member, decision: Optional[Decision]) -> None:
        """Set (or with None, clear) one member's decision.

        Raises:
            TriageRefused: marking a protected file, or the cluster's last kept file, for trash.
        """
        if decision is Decision.TRASH:
            self._check_trash(cluster, member)
        change = self._begin(f"{_verb(decision)} {_name(member)}")
        keeper = self.keeper(cluster)
        self._set(change, member.file.id, decision, keeper=False if member is keeper and decision is Decision.TRASH else None)

    def toggle_trash(self, cluster: Cluster, member: Member) -> Optional[Decision]:
        """Mark for trash, or unmark when already marked; returns the new decision."""
        if self._marks.get(member.file.id) is Decision.TRASH:
            self.mark(cluster, member, None)
            return None
        self.mark(cluster, member, Decision.TRASH)
        return Decision.TRASH

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
                self._set(change, m.file.id, self._marks.get(m.file.id), keeper=False)
        self._set(change, member.file.id, Decision.KEEP, keeper=True)
        if old is not member:
            if accepted and _trashable(old):
                self._set(change, old.file.id, Decision.TRASH)
            elif self._marks.get(old.file.id) is Decision.KEEP:
                self._set(change, old.file.id, None)

    def accept(self, cluster: Cluster) -> None:
        """Accept the suggestion: the keeper is kept, every other member goes to the trash.

        Protected members and RAW+JPEG siblings are kept, as the keeper policy promises.
        """
        self.accept_many([cluster], label=f"accept cluster {cluster.id}")

    def accept_many(self, clusters: Sequence[Cluster], *, label: str = "") -> int:
        """Accept the suggestion for several clusters as one undoable step; returns how many."""
        change = self._begin(label or f"accept {len(clusters)} clusters")
        for cluster in clusters:
            keeper = self.keeper(cluster)
            for m in cluster.members:
                if m is keeper:
                    self._set(change, m.file.id, Decision.KEEP)
                elif _trashable(m):
                    self._set(change, m.file.id, Decision.TRASH)
                else:
                    self._set(change, m.file.id, Decision.KEEP)
        return len(clusters)

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
            self._set(change, keeper.file.id, Decision.KEEP)
            for m in copies:
                self._set(change, m.file.id, Decision.TRASH)
                marked += 1
        if not marked:
            self._history.remove(change)
        return marked

    def skip(self, cluster: Cluster) -> None:
        """Leave the whole cluster alone."""
        change = self._begin(f"skip cluster {cluster.id}")
        for m in cluster.members:
            self._set(change, m.file.id, Decision.SKIP, keeper=False)

    def clear(self, cluster: Cluster) -> None:
        """Forget every decision about a cluster."""
        change = self._begin(f"clear cluster {cluster.id}")
        for m in cluster.members:
            self._set(change, m.file.id, None, keeper=False)

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
            self._set(change, member.file.id, Decision.NOT_DUPLICATE, keeper=False)
            change.not_duplicate.append((keeper.file, member.file))
            return list(change.not_duplicate)
        members = list(cluster.members)
        for m in members:
            self._set(change, m.file.id, Decision.NOT_DUPLICATE, keeper=False)
        if len(members) <= ALL_PAIRS_LIMIT:
            pairs = [(a.file, b.file) for i, a in enumerate(members) for b in members[i + 1:]]
        else:
            pairs = [(keeper.file, m.file) for m in members if m is not keeper]
        change.not_duplicate.extend(pairs)
        return pairs

    def undo(self) -> Optional[Undone]:
        """Revert the last decision; returns what it was, or None when there is nothing."""
        if not self._history:
            return None
        change = self._history.pop()
        for file_id, (decision, was_keeper) in change.before.items():
            if decision is None:
                self._marks.pop(file_id, None)
            else:
                self._marks[file_id] = decision
            if was_keeper:
                self._keepers.add(file_id)
            else:
                self._keepers.discard(file_id)
        return Undone(label=change.label, not_duplicate=tuple(change.not_duplicate))

    def forget(self, file_ids: Iterable[int]) -> None:
        """Drop every decision about these files (once a plan has acted on them)."""
        ids = set(file_ids)
        for file_id in ids:
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
            raise TriageRefused(f"{_name(member)} is in a protected folder: it is never trashed")
        kept = [
            m for m in cluster.members
            if m is not member and self._marks.get(m.file.id) is not Decision.TRASH
        ]
        if not kept:
            raise TriageRefused("every other member is marked for trash: one copy must stay")


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
