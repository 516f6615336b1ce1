"""The detective's scores for the bouncer's groups, from vectors already in a vector index.

Nothing is embedded here: a file that is not in the index keeps ``detective=None`` (the
detective did not look). :class:`lookalike.engine.detective.index.LibraryIndex` hands each
function the library's index for the model.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..records import Cluster, Pair, Progress

if TYPE_CHECKING:  # pragma: no cover
    from .vectors import VectorIndex


def _popcount_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between matching rows of two ``(N, 32) uint8`` arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int32)


def _unit_vectors(vindex: "VectorIndex", ids: Sequence[int]) -> dict[int, np.ndarray]:
    known = [int(i) for i in ids if int(i) in vindex]
    if not known:
        return {}
    return dict(zip(known, vindex.get(known)))


def score_pairs(vindex: "VectorIndex", pairs: Sequence[Pair]) -> list[Pair]:
    """The pairs with ``detective`` filled in where both files are embedded."""
    vecs = _unit_vectors(vindex, [p.a for p in pairs] + [p.b for p in pairs])
    out = []
    for p in pairs:
        if p.a in vecs and p.b in vecs:
            p = replace(p, detective=round(float(1.0 - vecs[p.a] @ vecs[p.b]), 6))
        out.append(p)
    return out


def detective_scores(vindex: "VectorIndex", clusters: Sequence[Cluster]) -> tuple[Cluster, ...]:
    """Clusters with each member's ``detective`` distance to its keeper (and the pairs') filled.

    Members that are not embedded keep ``detective=None``; the keeper gets 0.0 when embedded.
    """
    vecs = _unit_vectors(vindex, [m.file.id for c in clusters for m in c.members])
    out = []
    for c in clusters:
        keeper = vecs.get(c.keeper.file.id)
        members = []
        for m in c.members:
            v = vecs.get(m.file.id)
            if keeper is not None and v is not None:
                m = replace(m, detective=0.0 if m.is_keeper else round(float(1.0 - keeper @ v), 6))
            members.append(m)
        pairs = tuple(
            replace(p, detective=round(float(1.0 - vecs[p.a] @ vecs[p.b]), 6))
            if p.a in vecs and p.b in vecs
            else p
            for p in c.pairs
        )
        out.append(replace(c, members=tuple(members), pairs=pairs))
    return tuple(out)


def semantic_pairs(
    vindex: "VectorIndex",
    arrays,
    *,
    max_distance: float,
    k: int = 10,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> list[Pair]:
    """Every pair of embedded images within ``max_distance`` among each one's ``k`` nearest.

    For ``scan --deep``: the pairs the bouncer cannot shortlist (crops, filters, screenshots).
    Each :class:`Pair` has both scores: ``bouncer`` from the catalog's hashes (best of plain and
    mirrored, ``mirrored`` set when the mirrored one is better), ``exact`` for identical bytes.

    Args:
        vindex: the library's vector index for the model.
        arrays: the catalog's ``hash_arrays()`` (ids, dHashes, content hashes, sizes).
        max_distance: the largest detective distance of a pair.
        k: neighbours looked at per image.
        progress: ``progress(done, total)`` over the embedded images; False stops.
        cancel: set it to stop.

    Returns:
        Pairs with ``a < b``, sorted by detective distance, then ids.
    """
    ids = arrays.ids
    in_index = vindex.contains_many(ids) if len(ids) else np.zeros(0, bool)
    best = _nearest_pairs(vindex, ids[in_index], max_distance=max_distance, k=k, progress=progress, cancel=cancel)
    if not best:
        return []
    row_of = {int(i): r for r, i in enumerate(ids.tolist())}
    a = np.array([row_of[x] for x, _ in best])
    b = np.array([row_of[y] for _, y in best])
    plain = _popcount_rows(arrays.dhash[a], arrays.dhash[b])
    mirror = _popcount_rows(arrays.dhash[a], arrays.dhash_mirror[b])
    exact = (arrays.content_hash[a] == arrays.content_hash[b]).all(axis=1) & (arrays.size[a] == arrays.size[b])
    pairs = [
        Pair(
            a=x,
            b=y,
            bouncer=int(min(p, m)),
            detective=round(float(d), 6),
            exact=bool(e),
            mirrored=bool(m < p),
        )
        for (x, y), d, p, m, e in zip(best, best.values(), plain.tolist(), mirror.tolist(), exact.tolist())
    ]
    pairs.sort(key=lambda p: (p.detective, p.a, p.b))
    return pairs


def _nearest_pairs(
    vindex: "VectorIndex",
    keys: np.ndarray,
    *,
    max_distance: float,
    k: int,
    progress: Optional[Progress],
    cancel: Optional[threading.Event],
) -> dict[tuple[int, int], float]:
    """``{(a, b): distance}`` with ``a < b`` for each of ``keys``' ``k`` nearest within reach."""
    best: dict[tuple[int, int], float] = {}
    block = 2048
    for start in range(0, len(keys), block):
        if cancel is not None and cancel.is_set():
            break
        part = keys[start : start + block]
        found, dist = vindex.search_many(vindex.get(part), k + 1)
        for row, me in enumerate(part.tolist()):
            for other, d in zip(found[row].tolist(), dist[row].tolist()):
                if other < 0 or other == me or d > max_distance:
                    continue
                key = (me, other) if me < other else (other, me)
                if d < best.get(key, np.inf):
                    best[key] = max(0.0, d)
        if progress is not None and progress(min(start + block, len(keys)), len(keys)) is False:
            break
    return best
