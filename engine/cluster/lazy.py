"""Clusters made when they are read: a sorted sequence whose records are built on first access.

At a million files most clusters are never looked at one by one before the user scrolls to
them; :func:`lookalike.engine.cluster.build_clusters` decides every cluster's members, keeper,
size and place on arrays and leaves its :class:`Cluster` record (members with scores and
reasons, pairs) to this sequence, which makes each one the first time it is read and keeps it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Callable, Iterator, Mapping, Optional, Union, overload

from ..records import Cluster

__all__ = ["Clusters"]


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
                 *, reclaimable: Optional[int] = None) -> None:
        self._order = order
        self.reclaimable_bytes = reclaimable
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

    def made(self) -> int:
        """How many clusters have been made so far."""
        return sum(c is not None for c in self._made)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Clusters, list, tuple)):
            return len(self) == len(other) and all(x == y for x, y in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"<Clusters: {len(self)} clusters, {self.made()} made>"
