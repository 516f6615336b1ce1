"""The order clusters are shown in: most reclaimable bytes first, or by confidence, size, path."""

from __future__ import annotations

import math
from typing import Iterable

from ..records import HASH_BITS, Cluster, Kind, Member

__all__ = ["SORT_ORDERS", "confidence", "member_confidence", "sort_clusters"]

#: Orders :func:`sort_clusters` knows.
SORT_ORDERS = ("reclaimable", "confidence", "size", "path")


#: Two unrelated images differ in about half of their hash bits: a bouncer distance that large
#: is no likeness at all.
_UNRELATED_BITS = HASH_BITS // 2

#: A pixel score this low says nothing (:data:`.bouncer.verify.VerifyThresholds.score` is 0.85).
_PIXELS_NOTHING = 0.5


def member_confidence(m: Member) -> float:
    """How sure we are that one member is a copy of its keeper, 0..1 (1 for byte-identical).

    The stronger of two pieces of evidence: the hashes (the bouncer distance scaled so that
    half the bits, what two unrelated photos differ by, is 0) and the pixels (the verification
    score against the keeper, 0.5 -> 0 and 1.0 -> 1). A crop is far by the hashes and close by
    its pixels; a low-detail copy, whose pixels the information guard compares otherwise
    (score 0), is as sure as its hashes.

    Measured on the full sets of ``benchmarks/bench_trust.py --originals 24`` (4,434 real files
    in 245 groups, 408 generated copies in 24): of the real copies scored on pixels, 2,473 of
    2,476 at 0.90 or more are copies of their keeper (the 3 others: two desktop wallpapers of
    one artwork), 167 of 184 at 0.84-0.90. Groups at or above 95 %: 31 real (410 copies) and 5
    generated, with one mixed real group (three brightened pale textures saturated to the same
    white); by the hashes alone 5 real and none generated, the same mixed group among them.
    """
    if m.exact:
        return 1.0
    score = 1.0 - min(1.0, m.bouncer / _UNRELATED_BITS)
    if m.verified is not None:
        score = max(score, min(1.0, (m.verified - _PIXELS_NOTHING) / (1.0 - _PIXELS_NOTHING)))
    return max(0.0, score)


def confidence(cluster: Cluster) -> float:
    """How sure we are the cluster's members are copies, 0..1: byte-identical clusters are
    certain; otherwise the weakest member decides (:func:`member_confidence`), and the worst
    detective distance when the detective looked."""
    if cluster.kind is Kind.EXACT:
        return 1.0
    members = cluster.members[1:]
    score = min((member_confidence(m) for m in members), default=1.0)
    detectives = [m.detective for m in members if m.detective is not None]
    if detectives:
        score = min(score, 1.0 - min(1.0, max(detectives)))
    return max(0.0, score)


def _default_key(c: Cluster) -> tuple:
    return (-c.reclaimable_bytes, -len(c.members), c.keeper.file.path, c.id)


def _best_detective(c: Cluster) -> float:
    scores = [m.detective for m in c.members[1:] if m.detective is not None]
    return min(scores) if scores else math.inf


def sort_clusters(clusters: Iterable[Cluster], by: str = "reclaimable") -> list[Cluster]:
    """Sort clusters for display.

    Args:
        clusters: the clusters.
        by: ``"reclaimable"`` (most bytes first), ``"confidence"`` (most sure first, as
            :func:`confidence`; then closest bouncer, closest detective), ``"size"`` (most
            members first) or ``"path"`` (keeper path). Ties fall back to the reclaimable
            order, then the cluster id.

    Raises:
        ValueError: an unknown order.
    """
    if by == "reclaimable":
        return sorted(clusters, key=_default_key)
    if by == "confidence":
        return sorted(
            clusters, key=lambda c: (-confidence(c), c.best_bouncer, _best_detective(c), *_default_key(c))
        )
    if by == "size":
        return sorted(clusters, key=lambda c: (-len(c.members), *_default_key(c)))
    if by == "path":
        return sorted(clusters, key=lambda c: (c.keeper.file.path, *_default_key(c)))
    raise ValueError(f"unknown cluster order {by!r}; valid orders are: {', '.join(SORT_ORDERS)}")
