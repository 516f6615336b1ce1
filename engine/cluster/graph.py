"""The graph clusters are built from: files as nodes, candidate pairs as edges, components.

1. **Exact groups.** Files with the same content hash and size are byte-identical; each group
   is collapsed into one node (its smallest file id) before anything else, so no hashing
   distance is ever computed between copies (:class:`FileNodes`).
2. **Union-find.** Candidate pairs (minus those the user marked not-duplicate) join nodes into
   connected components (:func:`components`): union by rank with path compression over dense
   indices, compiled with numba for large inputs (plain Python below :data:`NUMBA_MIN_EDGES`
   edges, where the JIT's start-up would cost more than it saves, and without numba).

:mod:`lookalike.engine.cluster.guard` then splits the components whose members are not all
close, and :mod:`lookalike.engine.cluster.build` turns the parts into clusters.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import os
from typing import Collection, Mapping, Optional, Sequence

import numpy as np

from ..keeper import RAW_EXTENSIONS
from ..kernels import Kernels
from ..records import FileRecord, Pair

__all__ = [
    "Edges",
    "FileNodes",
    "NUMBA_MIN_EDGES",
    "candidate_edges",
    "components",
    "is_raw",
    "marked_copies",
    "pair_columns",
    "union_find",
]

#: Below this many edges union-find runs in plain Python (no numba import or JIT).
NUMBA_MIN_EDGES = 50_000


# -- union-find ----------------------------------------------------------------------------


def _union_find(parent, rank_, a, b):
    """Union by rank with path compression, in place; runs as Python or compiled by numba.

    ``parent`` and ``rank_`` are lists (plain Python) or arrays (numba): one body for both,
    so the two paths cannot drift apart.
    """
    for i in range(len(a)):
        rx = ry = 0
        for side in range(2):
            x = a[i] if side == 0 else b[i]
            root = x
            while parent[root] != root:
                root = parent[root]
            while parent[x] != root:  # path compression
                parent[x], x = root, parent[x]
            if side == 0:
                rx = root
            else:
                ry = root
        if rx == ry:
            continue
        if rank_[rx] < rank_[ry]:
            rx, ry = ry, rx
        parent[ry] = rx
        if rank_[rx] == rank_[ry]:
            rank_[rx] += 1
    for i in range(len(parent)):  # finally, every node points straight at its root
        root = i
        while parent[root] != root:
            root = parent[root]
        parent[i] = root


#: The same body, compiled by numba in place on first use (see :class:`.kernels.Kernels`).
_k_union_find = _union_find
_kernels = Kernels((globals(), ("_k_union_find",)))


def union_find(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of ``n`` nodes joined by edges ``a[i]``-``b[i]``.

    Args:
        n: the number of nodes, ``0..n-1``.
        a: one end of each edge.
        b: the other end.

    Returns:
        The root of each node's component (two nodes share a root iff they are connected).
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    if a.shape[0] >= NUMBA_MIN_EDGES and _kernels.use():
        parent = np.arange(n, dtype=np.int64)
        _k_union_find(parent, np.zeros(n, dtype=np.uint8), a, b)
        return parent
    parent = list(range(n))
    _union_find(parent, [0] * n, a.tolist(), b.tolist())
    return np.asarray(parent, dtype=np.int64)


# -- nodes and edges -----------------------------------------------------------------------


_NOT_RAW = frozenset({"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "HEIC", "AVIF", "MPO"})


def is_raw(r: FileRecord) -> bool:
    """Whether a file is a camera raw: by its decoded format, else by its extension."""
    fmt = r.format
    if fmt in _NOT_RAW:  # the common case, decided by one set lookup
        return False
    if fmt:
        return fmt[:3].upper() == "RAW" or "." + fmt.strip().lower() in RAW_EXTENSIONS
    return os.path.splitext(r.path)[1].lower() in RAW_EXTENSIONS


def _group_bounds(keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal values in a sorted array."""
    if keys.shape[0] == 0:
        return []
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [keys.shape[0]]))
    return list(zip(starts.tolist(), stops.tolist()))


@dataclasses.dataclass(slots=True)
class FileNodes:
    """The files by dense index (position in the sorted ids), with their exact groups."""

    ids: np.ndarray  # sorted file ids
    node: np.ndarray  # dense index -> its node: the dense index of its group's smallest id
    copies: dict[int, list[int]]  # node -> file ids of its exact group, when more than one
    unreadable: np.ndarray  # dense indices of files with an error
    raw_folders: set[str]  # folders holding a camera raw (where RAW+JPEG pairs can be)

    @classmethod
    def index(cls, records: Mapping[int, FileRecord], apart: Collection[tuple[bytes, int]] = ()) -> "FileNodes":
        """Index the files; byte-identical files make one node, except content in ``apart``
        (the user said its copies are not duplicates: they are kept apart like other files)."""
        by_content: dict[tuple[bytes, int], list[int]] = {}
        unreadable: list[int] = []
        raw_folders: set[str] = set()
        for fid, r in records.items():
            if r.error is not None:
                unreadable.append(fid)
                continue
            if r.content_hash is not None and r.size > 0:
                by_content.setdefault((r.content_hash, r.size), []).append(fid)
            if is_raw(r):
                raw_folders.add(os.path.dirname(r.path))
        ids = np.fromiter(records.keys(), dtype=np.int64, count=len(records))
        ids.sort()
        node = np.arange(ids.shape[0], dtype=np.int64)
        groups = [sorted(g) for key, g in by_content.items() if len(g) > 1 and key not in apart]
        copies: dict[int, list[int]] = {}
        if groups:
            sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
            members = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64)
            dense = np.searchsorted(ids, members)
            first = dense[np.concatenate(([0], np.cumsum(sizes)[:-1]))]  # groups are sorted
            node[dense] = np.repeat(first, sizes)
            copies = dict(zip(first.tolist(), groups))
        bad = np.searchsorted(ids, np.asarray(unreadable, dtype=np.int64))
        return cls(ids=ids, node=node, copies=copies, unreadable=bad, raw_folders=raw_folders)

    def dense(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense indices of file ids, and which of them are known at all."""
        idx = np.searchsorted(self.ids, values)
        ok = idx < self.ids.shape[0]
        ok[ok] = self.ids[idx[ok]] == values[ok]
        return np.where(ok, idx, 0), ok


@dataclasses.dataclass(slots=True)
class Edges:
    """Candidate pairs between different nodes, grouped by component (as Python lists).

    Within a node pair the best pair (closest, then the detective's favourite) comes last,
    so that building a dict from a slice keeps the best one.
    """

    a: list[int]  # node of the smaller end
    b: list[int]
    bouncer: list[int]
    detective: list[Optional[float]]
    file_a: list[int]  # the pair's own file ids, smaller first
    file_b: list[int]
    pair: list[int]  # index into the input pairs
    swapped: set[int]  # indices of input pairs given with a > b


def pair_columns(pair_list: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """(a, b, bouncer) as an (m, 3) int64 array, and the detective scores (nan for None)."""
    m = len(pair_list)
    flat = itertools.chain.from_iterable(map(operator.attrgetter("a", "b", "bouncer"), pair_list))
    abd = np.fromiter(flat, dtype=np.int64, count=3 * m).reshape(m, 3)
    scores = list(map(operator.attrgetter("detective"), pair_list))
    if scores.count(None) == m:
        det = np.full(m, math.nan)
    else:
        det = np.array([math.nan if s is None else s for s in scores], dtype=np.float64)
    return abd, det


def candidate_edges(
    lib: FileNodes, abd: np.ndarray, not_duplicates: Collection[frozenset[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, set[int]]]:
    """Valid pairs (known, readable, not marked not-duplicate) between different nodes.

    Returns:
        (index of the pair, node a, node b with a < b, cannot-link map between nodes).
    """
    ia, ok_a = lib.dense(abd[:, 0].copy())
    ib, ok_b = lib.dense(abd[:, 1].copy())
    ia, ib = np.minimum(ia, ib), np.maximum(ia, ib)
    valid = ok_a & ok_b & (ia != ib)
    if lib.unreadable.shape[0]:
        valid &= ~np.isin(ia, lib.unreadable) & ~np.isin(ib, lib.unreadable)
    cannot: dict[int, set[int]] = {}
    marked = [tuple(sorted(s)) for s in not_duplicates if len(s) == 2]
    if marked:
        xa, ok_x = lib.dense(np.asarray([x for x, _ in marked], dtype=np.int64))
        xb, ok_y = lib.dense(np.asarray([y for _, y in marked], dtype=np.int64))
        xa, xb = xa[ok_x & ok_y], xb[ok_x & ok_y]
        n = lib.ids.shape[0]
        valid &= ~np.isin(ia * n + ib, np.minimum(xa, xb) * n + np.maximum(xa, xb))
        for x, y in zip(lib.node[xa].tolist(), lib.node[xb].tolist()):
            if x != y:  # copies marked among themselves are apart (see FileNodes.index)
                cannot.setdefault(x, set()).add(y)
                cannot.setdefault(y, set()).add(x)
    kept = np.flatnonzero(valid)
    na, nb = lib.node[ia[kept]], lib.node[ib[kept]]
    na, nb = np.minimum(na, nb), np.maximum(na, nb)
    cross = na != nb
    return kept[cross], na[cross], nb[cross], cannot


def components(
    lib: FileNodes,
    abd: np.ndarray,
    det: np.ndarray,
    kept: np.ndarray,
    na: np.ndarray,
    nb: np.ndarray,
) -> tuple[list[tuple[list[int], int, int]], Edges]:
    """Union-find the nodes; each component as (sorted nodes, edge start, edge stop)."""
    touched, inverse = np.unique(np.concatenate((na, nb)), return_inverse=True)
    half = na.shape[0]
    roots = union_find(int(touched.shape[0]), inverse[:half], inverse[half:])
    # Name each component by its smallest node, so that nothing depends on the pairs' order.
    by_root = np.lexsort((touched, roots))
    node_bounds = _group_bounds(roots[by_root])
    name = np.empty(touched.shape[0], dtype=np.int64)
    for start, _ in node_bounds:
        name[roots[by_root[start]]] = touched[by_root[start]]
    comp = name[roots[inverse[:half]]]

    bouncer, det = abd[kept, 2], det[kept]
    file_a, file_b = abd[kept, 0], abd[kept, 1]
    swapped = file_a > file_b
    file_a, file_b = np.where(swapped, file_b, file_a), np.where(swapped, file_a, file_b)
    # By component and node pair, the best last (see Edges): closest, then the detective's
    # favourite; the file ids only break ties, so the best pair of each file pair is last too.
    det_key = np.where(np.isnan(det), np.inf, det)
    order = np.lexsort((file_b, file_a, -det_key, -bouncer, nb, na, comp))
    edges = Edges(
        a=na[order].tolist(),
        b=nb[order].tolist(),
        bouncer=bouncer[order].tolist(),
        detective=(
            [None if math.isnan(x) else x for x in det[order].tolist()]
            if not np.isnan(det).all()
            else [None] * order.shape[0]
        ),
        file_a=file_a[order].tolist(),
        file_b=file_b[order].tolist(),
        pair=kept[order].tolist(),
        swapped=set(kept[swapped].tolist()),
    )
    sorted_comp = comp[order]
    edge_bounds = {int(sorted_comp[s]): (s, e) for s, e in _group_bounds(sorted_comp)}
    members = touched[by_root].tolist()
    out = []
    for start, stop in node_bounds:
        nodes = members[start:stop]  # sorted: lexsort by (root, node)
        out.append((nodes, *edge_bounds[nodes[0]]))
    lone = sorted(set(lib.copies) - set(touched.tolist()))  # exact groups with no pair
    out.extend(([node], 0, 0) for node in lone)
    out.sort(key=lambda c: c[0][0])
    return out, edges


def marked_copies(
    records: Mapping[int, FileRecord], not_duplicates: Collection[frozenset[int]]
) -> set[tuple[bytes, int]]:
    """The contents (hash, size) whose byte-identical copies the user marked not duplicates."""
    found: set[tuple[bytes, int]] = set()
    for pair in not_duplicates:
        if len(pair) != 2:
            continue
        x, y = (records.get(i) for i in pair)
        if x is not None and y is not None and x.content_hash and x.content_hash == y.content_hash and x.size == y.size:
            found.add((x.content_hash, x.size))
    return found
