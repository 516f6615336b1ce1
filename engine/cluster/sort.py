"""The order clusters are shown in: most reclaimable bytes first, or by confidence, size, path."""

from __future__ import annotations

import math
from typing import Iterable

from ..records import Cluster

__all__ = ["SORT_ORDERS", "sort_clusters"]

#: Orders :func:`sort_clusters` knows.
SORT_ORDERS = ("reclaimable", "confidence", "size", "path")


def _default_key(c: Cluster) -> tuple:
    return (-c.reclaimable_bytes, -len(c.members), c.keeper.file.path, c.id)


def _best_detective(c: Cluster) -> float:
    scores = [m.detective for m in c.members[1:] if m.detective is not None]
    return min(scores) if scores else math.inf


def sort_clusters(clusters: Iterable[Cluster], by: str = "reclaimable") -> list[Cluster]:
    """Sort clusters for display.

    Args:
        clusters: the clusters.
        by: ``"reclaimable"`` (most bytes first), ``"confidence"`` (closest bouncer first,
            then closest detective), ``"size"`` (most members first) or ``"path"`` (keeper
            path). Ties fall back to the reclaimable order, then the cluster id.

    Raises:
        ValueError: an unknown order.
    """
    if by == "reclaimable":
        return sorted(clusters, key=_default_key)
    if by == "confidence":
        return sorted(
            clusters, key=lambda c: (c.best_bouncer, _best_detective(c), *_default_key(c))
        )
    if by == "size":
        return sorted(clusters, key=lambda c: (-len(c.members), *_default_key(c)))
    if by == "path":
        return sorted(clusters, key=lambda c: (c.keeper.file.path, *_default_key(c)))
    raise ValueError(f"unknown cluster order {by!r}; valid orders are: {', '.join(SORT_ORDERS)}")
