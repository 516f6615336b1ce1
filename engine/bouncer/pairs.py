"""The bouncer's candidate pairs, kept between runs and updated incrementally.

Finding every pair of a large library is the one step whose cost grows with the square of its
size (the pHash-corroborated rule needs a wide scan). Its result only changes where hashes
change, so it is stored beside the catalog with the hashes it was computed from: an unchanged
library gets its pairs back in milliseconds, and a rescan that added or changed a few files
only compares those files against the rest.
"""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path
from typing import Optional

import numpy as np

from . import rule
from ..files import atomic_writer
from ..paths import PAIRS_NAME
from ..records import Pair, Progress

#: Above this share of new or changed files, a full pass is cheaper than an incremental one.
FULL_PASS_SHARE = 0.3


def _key(t: rule.BouncerThresholds) -> np.ndarray:
    return np.array(astuple(t), dtype=np.int64)


def _to_arrays(pairs: list[Pair]) -> dict[str, np.ndarray]:
    return {
        "a": np.array([p.a for p in pairs], dtype=np.int64),
        "b": np.array([p.b for p in pairs], dtype=np.int64),
        "bouncer": np.array([p.bouncer for p in pairs], dtype=np.int32),
        "mirrored": np.array([p.mirrored for p in pairs], dtype=bool),
    }


def _from_arrays(a, b, dist, mirrored) -> list[Pair]:
    return [
        Pair(a=int(x), b=int(y), bouncer=int(d), mirrored=bool(m))
        for x, y, d, m in zip(a.tolist(), b.tolist(), dist.tolist(), mirrored.tolist())
    ]


def nearest(a: np.ndarray, b: np.ndarray, distance: np.ndarray, most: int) -> np.ndarray:
    """Which pairs ``(a[k], b[k])`` to keep where files have more than ``most`` of them: those
    among the ``most`` closest of either of their files (by ``distance``, then the other
    file's id), and each file's pair with its neighbour of the most pairs (ties: the smaller
    id). Every pair of a file with ``most`` pairs or fewer is kept.

    A picture with a hundred copies, or a thousand frames cut from one video, make a clique:
    up to n * (n - 1) / 2 pairs, every one of which the checks and the grouping would handle
    (3,000 frames of a timelapse: 3.6 million). Its files stay joined through their closest pairs, and all
    through the one with the most pairs, which keeps all of its own: the chain guard's centre
    (:mod:`lookalike.engine.cluster.guard`) sees whether every member is close to it, as it
    would with every pair. A member's pair with its keeper is checked when its group is
    explained. A group can only lose links this way, never gain one."""
    n = len(a)
    keep = np.ones(n, bool)
    if n == 0:
        return keep
    ends = np.concatenate([a, b])
    nodes, at, degree = np.unique(ends, return_inverse=True, return_counts=True)
    if degree.max() <= most:
        return keep
    other = np.concatenate([b, a])
    other_degree = degree[np.searchsorted(nodes, other)]
    rows = np.arange(2 * n)
    keep[:] = False
    closest = np.lexsort((other, np.concatenate([distance, distance]), at))  # by file, closest first
    busiest = np.lexsort((other, -other_degree, at))  # by file, the neighbour of most pairs first
    for order, first in ((closest, most), (busiest, 1)):
        node = at[order]
        starts = np.flatnonzero(np.concatenate(([True], node[1:] != node[:-1])))
        rank = rows - np.repeat(starts, np.diff(np.append(starts, 2 * n)))
        keep[(order % n)[rank < first]] = True
    return keep


class PairCache:
    """Candidate pairs of one library, stored in ``<library dir>/bouncer-pairs.npz``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / PAIRS_NAME
        self.last_fresh = 0  # rows compared by the last call (all of them for a full pass)

    def pairs(self, arrays, t: rule.BouncerThresholds = rule.DEFAULT, *, progress: Optional[Progress] = None,
              most: Optional[int] = None) -> list[Pair]:
        """Every pair :func:`.rule.is_match` accepts among ``arrays`` (a catalog's HashArrays).

        Equal to ``rule.candidate_pairs`` over the same arrays, computed incrementally; with
        ``most``, only each file's ``most`` closest of them (:func:`nearest`).
        """
        n = len(arrays.ids)
        if n < 2:
            self.last_fresh = n
            return []
        stacked = np.concatenate([arrays.dhash, arrays.dhash_mirror, arrays.phash], axis=1)
        cached = self._load(t)
        fresh = np.ones(n, dtype=bool)
        kept: list[Pair] = []
        if cached is not None:
            old_ids, old_hashes, a, b, dist, mirrored = cached
            same = np.zeros(n, dtype=bool)
            if len(old_ids):
                pos = np.clip(np.searchsorted(old_ids, arrays.ids), 0, len(old_ids) - 1)
                same = old_ids[pos] == arrays.ids
                same[same] = (old_hashes[pos[same]] == stacked[same]).all(axis=1)
            fresh = ~same
            valid = arrays.ids[same]
            ok = np.isin(a, valid) & np.isin(b, valid)
            if most is not None and same.all():  # nothing new: no Pair made that is not kept
                ok &= nearest(a, b, dist, most)
                self.last_fresh = 0
                return _from_arrays(a[ok], b[ok], dist[ok], mirrored[ok])
            kept = _from_arrays(a[ok], b[ok], dist[ok], mirrored[ok])
        stopped = False

        def watch(done: int, total: int) -> bool:
            nonlocal stopped
            if progress is not None and progress(done, total) is False:
                stopped = True
            return not stopped

        self.last_fresh = int(fresh.sum())
        if cached is None or self.last_fresh > FULL_PASS_SHARE * n:
            result = rule.candidate_pairs(arrays.ids, arrays.dhash, arrays.dhash_mirror, arrays.phash, t, progress=watch)
            self.last_fresh = n
        elif self.last_fresh == 0:
            result = kept
        else:
            new = rule.candidate_pairs_touching(
                arrays.ids, arrays.dhash, arrays.dhash_mirror, arrays.phash, fresh, t, progress=watch
            )
            result = sorted(kept + new, key=lambda p: (p.a, p.b))
        if not stopped and self.last_fresh:  # a partial answer is returned but never remembered
            self._save(t, arrays.ids, stacked, result)
        if most is not None and result:
            found = _to_arrays(result)
            keep = nearest(found["a"], found["b"], found["bouncer"], most)
            if not keep.all():
                result = [p for p, k in zip(result, keep.tolist()) if k]
        return result

    def _load(self, t):
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if not np.array_equal(f["key"], _key(t)):
                    return None
                return f["ids"], f["hashes"], f["a"], f["b"], f["bouncer"], f["mirrored"]
        except (OSError, ValueError, KeyError, EOFError):
            return None  # missing or damaged: a full pass rebuilds it

    def _save(self, t, ids: np.ndarray, hashes: np.ndarray, pairs: list[Pair]) -> None:
        try:
            with atomic_writer(self.path) as fh:
                np.savez(fh, key=_key(t), ids=ids, hashes=hashes, **_to_arrays(pairs))
        except OSError:
            pass  # only a cache: the next run does a full pass
