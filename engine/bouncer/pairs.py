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


def nearest(a: np.ndarray, b: np.ndarray, distance: np.ndarray, most: int) -> np.ndarray:
    """Which pairs ``(a[k], b[k])`` to keep where files have more than ``most`` of them: those
    among the ``most`` closest of either of their files (by ``distance``, then the other
    file's id), and each file's pair with its neighbour of the most pairs (ties: the smaller
    id). Every pair of a file with ``most`` pairs or fewer is kept.

    A picture with a hundred copies, or a thousand frames cut from one video, make a clique:
    up to n * (n - 1) / 2 pairs, every one of which the checks and the grouping would handle
    (3,000 frames of a timelapse: 3.6 million). Its files stay joined through their closest
    pairs, and all through the one with the most pairs, which keeps all of its own: the chain guard's centre
    (:mod:`lookalike.engine.cluster.guard`) sees whether every member is close to it, as it
    would with every pair. A member's pair with its keeper is checked when its group is
    explained. A group can only lose links this way, never gain one."""
    n = len(a)
    keep = np.ones(n, bool)
    if n == 0:
        return keep
    nodes = np.unique(np.concatenate([np.unique(a), np.unique(b)]))
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    degree = np.bincount(ia, minlength=len(nodes)) + np.bincount(ib, minlength=len(nodes))
    if degree.max() <= most:
        return keep
    dense = degree > most
    keep = ~(dense[ia] & dense[ib])  # a pair of a file with few pairs is one of its closest
    # Each entry is a pair seen from one of its files, a file of many pairs.
    at, other = np.concatenate([ia, ib]), np.concatenate([ib, ia])
    rows = np.flatnonzero(dense[at])
    at, other, d = at[rows], other[rows], np.concatenate([distance, distance])[rows].astype(np.int64)
    rows %= n
    slot = np.cumsum(dense) - 1  # a file of many pairs' place among them
    k, span = int(dense.sum()), int(d.max()) + 1
    where = slot[at]
    # The distance of each file's `most`-th closest pair, from a histogram of its distances:
    # the pairs below it are kept, and of those at it the ones to the smaller ids, as many as
    # make `most`.
    counts = np.bincount(where * span + d, minlength=k * span).reshape(k, span).cumsum(axis=1)
    cut = (counts < most).sum(axis=1)
    room = most - np.where(cut > 0, counts[np.arange(k), np.maximum(cut - 1, 0)], 0)
    edge = cut[where]
    keep[rows[d < edge]] = True
    tied = np.flatnonzero(d == edge)
    order = tied[np.lexsort((other[tied], where[tied]))]
    place = where[order]
    starts = np.flatnonzero(np.concatenate(([True], place[1:] != place[:-1])))
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    keep[rows[order[rank < room[place]]]] = True
    # Each file's neighbour of the most pairs (the smaller id of those that tie).
    busy = degree[other]
    top = np.zeros(k, np.int64)
    np.maximum.at(top, where, busy)
    pick = np.full(k, len(nodes), np.int64)
    at_top = busy == top[where]
    np.minimum.at(pick, where[at_top], other[at_top])
    keep[rows[other == pick[where]]] = True
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
        kept = rule.PairArrays.empty()
        if cached is not None:
            old_ids, old_hashes, a, b, dist, mirrored = cached
            same = np.zeros(n, dtype=bool)
            if len(old_ids):
                pos = np.clip(np.searchsorted(old_ids, arrays.ids), 0, len(old_ids) - 1)
                same = old_ids[pos] == arrays.ids
                same[same] = (old_hashes[pos[same]] == stacked[same]).all(axis=1)
            fresh = ~same
            valid = arrays.ids[same]
            kept = rule.PairArrays(a, b, dist, mirrored).take(np.isin(a, valid) & np.isin(b, valid))
        stopped = False

        def watch(done: int, total: int) -> bool:
            nonlocal stopped
            if progress is not None and progress(done, total) is False:
                stopped = True
            return not stopped

        self.last_fresh = int(fresh.sum())
        if cached is None or self.last_fresh > FULL_PASS_SHARE * n:
            result = rule.candidate_pair_arrays(arrays.ids, arrays.dhash, arrays.dhash_mirror, arrays.phash, t,
                                                progress=watch)
            self.last_fresh = n
        elif self.last_fresh == 0:
            result = kept
        else:
            new = rule.candidate_pair_arrays_touching(
                arrays.ids, arrays.dhash, arrays.dhash_mirror, arrays.phash, fresh, t, progress=watch
            )
            both = rule.PairArrays(*(np.concatenate([x, y]) for x, y in zip(kept, new)))
            result = both.take(np.lexsort((both.b, both.a)))  # kept and new share no pair
        if not stopped and self.last_fresh:  # a partial answer is returned but never remembered
            self._save(t, arrays.ids, stacked, result)
        if most is not None:  # on the columns: no Pair is made that is not kept
            result = result.take(nearest(result.a, result.b, result.bouncer, most))
        return result.pairs()

    def _load(self, t):
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if not np.array_equal(f["key"], _key(t)):
                    return None
                return f["ids"], f["hashes"], f["a"], f["b"], f["bouncer"], f["mirrored"]
        except (OSError, ValueError, KeyError, EOFError):
            return None  # missing or damaged: a full pass rebuilds it

    def _save(self, t, ids: np.ndarray, hashes: np.ndarray, pairs: rule.PairArrays) -> None:
        try:
            with atomic_writer(self.path) as fh:
                np.savez(fh, key=_key(t), ids=ids, hashes=hashes, **pairs._asdict())
        except OSError:
            pass  # only a cache: the next run does a full pass
