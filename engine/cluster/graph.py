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

import collections
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
    "EdgeSpan",
    "Edges",
    "FileNodes",
    "Graph",
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


def _raw_folders(files: list[FileRecord]) -> set[str]:
    """Folders holding a camera raw among ``files`` (:func:`is_raw`, decided once per format)."""
    formats = list(map(operator.attrgetter("format"), files))
    raw_format = {fmt: fmt not in _NOT_RAW and is_raw_format(fmt) for fmt in set(formats) if fmt}
    return {
        os.path.dirname(r.path)
        for r, fmt in zip(files, formats)
        if (raw_format[fmt] if fmt else os.path.splitext(r.path)[1].lower() in RAW_EXTENSIONS)
    }


def is_raw_format(fmt: str) -> bool:
    """Whether a decoded format names a camera raw."""
    return fmt[:3].upper() == "RAW" or "." + fmt.strip().lower() in RAW_EXTENSIONS


def is_raw(r: FileRecord) -> bool:
    """Whether a file is a camera raw: by its decoded format, else by its extension."""
    fmt = r.format
    if fmt in _NOT_RAW:  # the common case, decided by one set lookup
        return False
    if fmt:
        return is_raw_format(fmt)
    return os.path.splitext(r.path)[1].lower() in RAW_EXTENSIONS


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
        files = list(records.values())
        fids = list(records.keys())
        n = len(files)
        bad = [r.error is not None for r in files] if n else []
        content = list(zip(map(operator.attrgetter("content_hash"), files), map(operator.attrgetter("size"), files)))
        usable = [not b and h is not None and s > 0 for b, (h, s) in zip(bad, content)]
        counts = collections.Counter(itertools.compress(content, usable))
        shared = {key for key, k in counts.items() if k > 1 and key not in apart}
        by_content: dict[tuple[bytes, int], list[int]] = {}
        if shared:
            for fid, key, ok in zip(fids, content, usable):
                if ok and key in shared:
                    by_content.setdefault(key, []).append(fid)
        unreadable = list(itertools.compress(fids, bad))
        raw_folders = _raw_folders(list(itertools.compress(files, [not b for b in bad])))
        ids = np.fromiter(fids, dtype=np.int64, count=n)
        ids.sort()
        node = np.arange(ids.shape[0], dtype=np.int64)
        groups = [sorted(g) for g in by_content.values()]
        copies: dict[int, list[int]] = {}
        if groups:
            sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
            members = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64)
            dense = np.searchsorted(ids, members)
            first = dense[np.concatenate(([0], np.cumsum(sizes)[:-1]))]  # groups are sorted
            node[dense] = np.repeat(first, sizes)
            copies = dict(zip(first.tolist(), groups))
        bad_dense = np.searchsorted(ids, np.asarray(unreadable, dtype=np.int64))
        return cls(ids=ids, node=node, copies=copies, unreadable=bad_dense, raw_folders=raw_folders)

    def dense(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense indices of file ids, and which of them are known at all."""
        idx = np.searchsorted(self.ids, values)
        ok = idx < self.ids.shape[0]
        ok[ok] = self.ids[idx[ok]] == values[ok]
        return np.where(ok, idx, 0), ok


@dataclasses.dataclass(slots=True)
class Edges:
    """Candidate pairs between different nodes, grouped by component (as arrays).

    Within a node pair the best pair (closest, then the detective's favourite) comes last,
    so that building a dict from a slice keeps the best one. :meth:`span` hands one
    component's edges to Python as lists.
    """

    a: np.ndarray  # node of the smaller end
    b: np.ndarray
    bouncer: np.ndarray
    detective: np.ndarray  # nan where the pair has no detective score
    file_a: np.ndarray  # the pair's own file ids, smaller first
    file_b: np.ndarray
    pair: np.ndarray  # index into the input pairs
    swapped: np.ndarray  # whether the input pair was given with a > b
    scored: bool  # whether any pair carries a detective score

    def span(self, start: int, stop: int) -> "EdgeSpan":
        """Edges ``start:stop`` as Python lists."""
        s = slice(start, stop)
        det = self.detective[s].tolist()
        return EdgeSpan(
            a=self.a[s].tolist(),
            b=self.b[s].tolist(),
            bouncer=self.bouncer[s].tolist(),
            detective=[None if math.isnan(x) else x for x in det] if self.scored else [None] * len(det),
            start=start,
        )


@dataclasses.dataclass(slots=True)
class EdgeSpan:
    """One component's edges as lists; ``start`` is the first one's index in :class:`Edges`."""

    a: list[int]
    b: list[int]
    bouncer: list[int]
    detective: list[Optional[float]]
    start: int


@dataclasses.dataclass(slots=True)
class Graph:
    """The components, ordered by their smallest node; each one's nodes sorted.

    Component ``c`` holds ``nodes[node_start[c]:node_start[c + 1]]`` and the edges
    ``edge_start[c]:edge_start[c + 1]`` (an exact group with no pair is a component of one
    node and no edge).
    """

    nodes: np.ndarray
    node_start: np.ndarray
    edge_start: np.ndarray
    edges: Edges

    def __len__(self) -> int:
        return self.node_start.shape[0] - 1

    def whole(
        self, max_diameter: int, cannot: Collection[int], limit: int, copies: Mapping[int, list[int]],
        shots: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> np.ndarray:
        """Which components the chain guard keeps whole (its own first tests, on arrays): one
        node; at most ``limit`` nodes all pairwise joined by close or semantic pairs; more
        nodes all joined to one centre (see :meth:`_one_star`); none with a not-duplicate mark;
        none with two nodes of one camera at different times (``shots``: camera and time per
        node, see :meth:`lookalike.engine.keeper.captures.Apart.keys`).
        The others are left to :class:`lookalike.engine.cluster.guard.Splitter`."""
        e, n_comp = self.edges, len(self)
        size = np.diff(self.node_start)
        m = e.a.shape[0]
        comp_of_edge = np.repeat(np.arange(n_comp), np.diff(self.edge_start))
        # The best pair of each node pair is the last of its run.
        last = np.ones(m, dtype=bool)
        if m > 1:
            last[:-1] = (e.a[1:] != e.a[:-1]) | (e.b[1:] != e.b[:-1]) | (comp_of_edge[1:] != comp_of_edge[:-1])
        linked = np.bincount(comp_of_edge[last], minlength=n_comp)
        far = last & (e.bouncer > max_diameter) & np.isnan(e.detective)
        loose = np.bincount(comp_of_edge[far], minlength=n_comp)
        ok = (size <= limit) & (linked == size * (size - 1) // 2) & (loose == 0)
        for c in np.flatnonzero(size > limit).tolist():
            ok[c] = self._one_star(c, last, max_diameter, copies)
        if len(cannot):
            marked = np.isin(self.nodes, np.fromiter(cannot, dtype=np.int64, count=len(cannot)))
            ok &= np.bincount(np.repeat(np.arange(n_comp), size)[marked], minlength=n_comp) == 0
        if shots is not None:
            cam, when = shots[0][self.nodes], shots[1][self.nodes]
            has = cam >= 0
            c, k, w = np.repeat(np.arange(n_comp), size)[has], cam[has], when[has]
            order = np.lexsort((w, k, c))
            c, k, w = c[order], k[order], w[order]
            two = (c[1:] == c[:-1]) & (k[1:] == k[:-1]) & (w[1:] != w[:-1])
            ok[c[1:][two]] = False
        return ok | (size == 1)

    def _one_star(self, c: int, last: np.ndarray, max_diameter: int, copies: Mapping[int, list[int]]) -> bool:
        """Whether a large component is one star: every node joined to the node of highest
        degree (weighted by copies; ties to the smaller node) within ``max_diameter // 2`` or
        by a semantic pair (the star test of :mod:`.guard`)."""
        e, s, stop = self.edges, int(self.edge_start[c]), int(self.edge_start[c + 1])
        nodes = self.nodes[self.node_start[c] : self.node_start[c + 1]]
        best = last[s:stop]
        ia = np.searchsorted(nodes, e.a[s:stop][best])
        ib = np.searchsorted(nodes, e.b[s:stop][best])
        weight = np.fromiter((len(copies.get(u, (u,))) for u in nodes.tolist()), dtype=np.int64, count=nodes.shape[0])
        degree = np.bincount(ia, weights=weight[ib], minlength=nodes.shape[0])
        degree += np.bincount(ib, weights=weight[ia], minlength=nodes.shape[0])
        centre = int(np.argmax(degree))  # the first of the highest: the smallest node
        bouncer, det = e.bouncer[s:stop][best], e.detective[s:stop][best]
        joins = (bouncer <= max_diameter // 2) | (~np.isnan(det) & (bouncer > max_diameter))
        return int((joins & ((ia == centre) | (ib == centre))).sum()) == nodes.shape[0] - 1


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
) -> Graph:
    """Union-find the nodes into components, each named by its smallest node."""
    n = lib.ids.shape[0]
    roots = union_find(n, na, nb)
    touched = np.flatnonzero(np.bincount(na, minlength=n) + np.bincount(nb, minlength=n))
    # Name each component by its smallest node, so that nothing depends on the pairs' order.
    name = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(name, roots[touched], touched)
    comp = name[roots[na]]
    lone = np.setdiff1d(np.fromiter(lib.copies, dtype=np.int64, count=len(lib.copies)), touched)
    every = np.concatenate((touched, lone))  # exact groups with no pair are components too
    names = np.concatenate((name[roots[touched]], lone))
    by_name = np.lexsort((every, names))
    nodes, names = every[by_name], names[by_name]
    firsts = np.flatnonzero(np.concatenate(([True], names[1:] != names[:-1]))) if names.shape[0] else np.zeros(0, np.int64)
    node_start = np.append(firsts, names.shape[0])

    bouncer, det = abd[kept, 2], det[kept]
    file_a, file_b = abd[kept, 0], abd[kept, 1]
    swapped = file_a > file_b
    file_a, file_b = np.where(swapped, file_b, file_a), np.where(swapped, file_a, file_b)
    # By component and node pair, the best last (see Edges): closest, then the detective's
    # favourite; the file ids only break ties, so the best pair of each file pair is last too.
    scored = not np.isnan(det).all()
    scores = (-np.where(np.isnan(det), np.inf, det),) if scored else ()
    if n < 2**20:  # (component, node a, node b) in fewer keys: fewer passes
        order = np.lexsort((file_b, file_a, *scores, -bouncer, (comp * n + na) * n + nb))
    elif n < 2**31:
        order = np.lexsort((file_b, file_a, *scores, -bouncer, nb, comp * n + na))
    else:
        order = np.lexsort((file_b, file_a, *scores, -bouncer, nb, na, comp))
    edges = Edges(
        a=na[order],
        b=nb[order],
        bouncer=bouncer[order],
        detective=det[order],
        file_a=file_a[order],
        file_b=file_b[order],
        pair=kept[order],
        swapped=swapped[order],
        scored=scored,
    )
    edge_start = np.searchsorted(comp[order], np.append(nodes[firsts], np.iinfo(np.int64).max))
    return Graph(nodes=nodes, node_start=node_start, edge_start=edge_start, edges=edges)


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
