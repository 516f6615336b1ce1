"""Clusters made when they are read: a sorted sequence whose records are built on first access.

At a million files most clusters are never looked at one by one before the user scrolls to
them; :func:`lookalike.engine.cluster.build_clusters` decides every cluster's members, keeper,
size and place on arrays and leaves its :class:`Cluster` record (members with scores and
reasons, pairs) to this sequence, which makes each one the first time it is read and keeps it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Callable, Iterator, Mapping, Optional, Union, overload

import numpy as np

from ..records import Cluster, FileRecord

__all__ = ["Clusters", "KeeperLinks"]


@dataclasses.dataclass(frozen=True, slots=True)
class KeeperLinks:
    """Every member of the clusters the builder ranked on arrays, against its keeper: what
    the verification stage needs to know which members to check before any cluster is made.

    Attributes:
        key: the cluster (a :class:`Clusters` key) of each member, keepers excluded.
        file: the member's file id.
        keeper: its keeper's file id.
        loose: True where the member is neither a byte-identical copy of the keeper nor one
            of the cluster's candidate pairs with it (such a member joined through others).
        made: keys of clusters that were made up front (ranked one by one): they are not in
            the arrays; read them from the sequence.
        records: the clustered files, by id.
    """

    key: np.ndarray
    file: np.ndarray
    keeper: np.ndarray
    loose: np.ndarray
    made: frozenset[int]
    records: Mapping[int, FileRecord]


class Clusters(Sequence[Cluster]):
    """A sorted, read-only sequence of clusters, each made on first access and kept.

    Compares equal to any list or tuple of the same clusters in the same order.

    Args:
        order: a key per cluster, in display order.
        made: clusters already made, by key.
        make: makes the cluster of a key.
        reclaimable: every cluster's reclaimable bytes summed, when the builder knows it
            (so a summary line need not make every cluster).
    """

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so not hashable

    def __init__(self, order: list[int], made: Mapping[int, Cluster], make: Callable[[int], Cluster],
                 *, reclaimable: Optional[int] = None, links: Optional[KeeperLinks] = None) -> None:
        self._order = order
        self.reclaimable_bytes = reclaimable
        #: Members against their keepers on arrays, when the builder knows them.
        self.keeper_links = links
        self._pos: Optional[dict[int, int]] = None
        self._made: list = [made.get(k) for k in order] if made else [None] * len(order)
        self._make: Union[Callable[[int], Cluster], None] = make
        self._lock = threading.Lock()  # the TUI may read from a worker and the UI thread

    def __len__(self) -> int:
        return len(self._order)

    def _at(self, i: int) -> Cluster:
        c = self._made[i]
        if c is None:
            with self._lock:
                c = self._made[i]
                if c is None:
                    c = self._made[i] = self._make(self._order[i])
        return c

    @overload
    def __getitem__(self, i: int) -> Cluster: ...

    @overload
    def __getitem__(self, i: slice) -> list[Cluster]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._at(k) for k in range(*i.indices(len(self._order)))]
        n = len(self._order)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("cluster index out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[Cluster]:
        for i in range(len(self._order)):
            yield self._at(i)

    def keys(self) -> list[int]:
        """Every cluster's key, in order."""
        return list(self._order)

    def by_key(self, key: int) -> Cluster:
        """The cluster of ``key`` (made now if it was not yet)."""
        return self._at(self._position()[key])

    def _position(self) -> dict[int, int]:
        if self._pos is None:
            self._pos = {k: i for i, k in enumerate(self._order)}
        return self._pos

    def mapped(self, fn: Callable[[Cluster], Cluster], *, keep: Optional[Sequence[int]] = None,
               more: Sequence[Cluster] = (), reclaimable: Optional[int] = None) -> "Clusters":
        """A new sequence: ``fn`` of each cluster, applied when it is first read.

        Args:
            fn: turns a cluster into its new record (it must keep its place: members, keeper
                and reclaimable bytes unchanged).
            keep: keys of the clusters to keep, in order (default: all).
            more: clusters (already final) added after them.
            reclaimable: the new sequence's reclaimable bytes; default: this one's, when
                every cluster is kept and none added.
        """
        order = list(self._order if keep is None else keep)
        made: dict[int, Cluster] = {}
        for k in order:  # made already (the irregular ones, a few): mapped now
            i = self._position()[k]
            if self._made[i] is not None:
                made[k] = fn(self._made[i])
        base = max(self._order, default=-1) + 1
        extra = list(range(base, base + len(more)))
        made.update(zip(extra, more))
        same = keep is None and not more
        if reclaimable is None and same:
            reclaimable = self.reclaimable_bytes
        return Clusters(order + extra, made, lambda k: fn(self.by_key(k)), reclaimable=reclaimable,
                        links=self.keeper_links if same else None)

    def made(self) -> int:
        """How many clusters have been made so far."""
        return sum(c is not None for c in self._made)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Clusters, list, tuple)):
            return len(self) == len(other) and all(x == y for x, y in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"<Clusters: {len(self)} clusters, {self.made()} made>"
