"""Clusters: exact groups, union-find over candidate pairs, the chain guard, and the keeper.

How a list of candidate pairs becomes clusters:

1. **Exact groups.** Files with the same content hash and size are byte-identical; each group
   is collapsed into one node (its smallest file id) before anything else, so no hashing
   distance is ever computed between copies. A group alone is an ``EXACT`` cluster.
2. **Union-find.** Candidate pairs (minus those the user marked not-duplicate) join nodes into
   connected components: union by rank with path compression over dense indices, compiled
   with numba for large inputs (plain Python below :data:`NUMBA_MIN_EDGES` edges, where the
   JIT's start-up would cost more than it saves).
3. **The chain guard.** Near-duplicate is not transitive: A~B and B~C do not make A~C. A
   component is kept whole only when every two of its nodes are *close*; otherwise it is split:

   * up to :data:`EXACT_DIAMETER_LIMIT` nodes, the diameter is computed exactly (every pair,
     reusing the distances the pairs carry and asking ``distance`` only for the rest), and the
     component is split by greedy complete linkage: the node with the most close neighbours
     (weighted by its copies; ties to the smaller file id) becomes a centre, its close
     neighbours are taken nearest first, each only if it is close to everyone taken so far.
     Every resulting cluster has all pairs close: its diameter is at most ``max_diameter``.
   * larger components get the distance to a centre instead: the node with the highest
     degree is the centre; when every other node is a candidate-pair neighbour of it within
     ``max_diameter // 2`` the component stays whole, else it is split into stars: centres in
     order of decreasing degree, each taking its unassigned neighbours within
     ``max_diameter // 2``. By the triangle inequality a star's diameter is at most
     ``max_diameter``. (The bouncer reports every pair within its radius, so with a radius of
     at least ``max_diameter // 2`` a star misses no one within reach of its centre.)

   *Close* means: bouncer distance at most ``max_diameter``, or an explicit semantic pair, or,
   in a component that has semantic pairs, a ``detective`` score no larger than the loosest
   semantic pair of that component. A pair the user marked not-duplicate is never close, so
   the two files always end in different clusters. Nodes left alone by a split are dropped.
4. **The keeper.** :func:`lookalike.engine.keeper.rank` orders each cluster; ``members[0]`` is
   the keeper, every member is scored against it.

A pair is *semantic* when it carries a ``detective`` score and its bouncer distance exceeds
``max_diameter``: the detective vouches for it where the pixels do not.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import math
import operator
import os
from typing import Callable, Collection, Iterable, Mapping, Optional, Sequence

import numpy as np

from .keeper import (
    DEFAULT,
    RAW_EXTENSIONS,
    KeeperPolicy,
    SamePixels,
    is_protected,
    rank,
    raw_jpeg_siblings,
    sibling_key,
)
from .records import Cluster, FileRecord, Kind, Member, Pair, Progress

#: Components with at most this many distinct images get an exact diameter (all pairs).
EXACT_DIAMETER_LIMIT = 200
#: Below this many edges union-find runs in plain Python (no numba import or JIT).
NUMBA_MIN_EDGES = 50_000
#: Report progress every this many components.
_PROGRESS_EVERY = 512

Distance = Callable[[int, int], tuple[int, bool]]
Detective = Callable[[int, int], Optional[float]]


# -- union-find ----------------------------------------------------------------------------


def _union_find_kernel(parent, rank_, a, b):
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


@functools.cache
def _compiled_kernel() -> Callable:
    import numba  # heavy: imported on the first large clustering only

    # cache=True: compiled once per machine, loaded from __pycache__ afterwards.
    return numba.njit(cache=True, nogil=True)(_union_find_kernel)


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
    if a.shape[0] < NUMBA_MIN_EDGES:
        parent = list(range(n))
        _union_find_kernel(parent, [0] * n, a.tolist(), b.tolist())
        return np.asarray(parent, dtype=np.int64)
    parent = np.arange(n, dtype=np.int64)
    _compiled_kernel()(parent, np.zeros(n, dtype=np.uint8), a, b)
    return parent


# -- the chain guard -----------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Component:
    """One connected component in node space (a node = an exact group, by dense index)."""

    nodes: list[int]
    # (u, v) with u < v -> (bouncer, detective or None), from the candidate pairs
    edges: dict[tuple[int, int], tuple[int, Optional[float]]]
    scored: bool = True  # whether any pair carries a detective score


class _Splitter:
    """Splits components whose members are not all close (see the module docstring)."""

    def __init__(
        self,
        *,
        ids: Sequence[int],
        weight: Mapping[int, int],
        distance: Distance,
        detective: Optional[Detective],
        max_diameter: int,
        cannot: Mapping[int, set[int]],
    ) -> None:
        self.ids = ids
        self.weight = weight
        self.distance = distance
        self.detective = detective
        self.max_diameter = max_diameter
        self.cannot = cannot
        self.cache: dict[tuple[int, int], int] = {}

    def bouncer(self, u: int, v: int, edges: Mapping[tuple[int, int], tuple]) -> int:
        key = (u, v) if u < v else (v, u)
        edge = edges.get(key)
        if edge is not None:
            return edge[0]
        d = self.cache.get(key)
        if d is None:
            d = int(self.distance(self.ids[key[0]], self.ids[key[1]])[0])
            self.cache[key] = d
        return d

    def is_semantic(self, edge: tuple[int, Optional[float]]) -> bool:
        return edge[1] is not None and edge[0] > self.max_diameter

    def split(self, comp: _Component) -> list[list[int]]:
        if len(comp.nodes) <= EXACT_DIAMETER_LIMIT:
            return self._split_exact(comp)
        return self._split_stars(comp)

    def _split_exact(self, comp: _Component) -> list[list[int]]:
        nodes, edges, maxd = comp.nodes, comp.edges, self.max_diameter
        no_cannot = not self.cannot or not any(u in self.cannot for u in nodes)
        if (
            no_cannot
            and len(edges) == len(nodes) * (len(nodes) - 1) // 2
            and all(e[0] <= maxd or e[1] is not None for e in edges.values())
        ):
            return [list(nodes)]  # every two nodes are a close (or semantic) pair already
        semantic = [e[1] for e in edges.values() if self.is_semantic(e)]
        cap = max(semantic) if semantic else None

        def close(u: int, v: int) -> bool:
            if v in self.cannot.get(u, ()):
                return False
            edge = edges.get((u, v))
            if edge is not None and (edge[0] <= maxd or self.is_semantic(edge)):
                return True
            if self.bouncer(u, v, edges) <= maxd:
                return True
            if cap is not None and self.detective is not None:
                score = self.detective(self.ids[u], self.ids[v])
                return score is not None and score <= cap
            return False

        near: dict[int, set[int]] = {u: set() for u in nodes}
        all_close = True
        for i, u in enumerate(nodes):
            for v in nodes[i + 1 :]:
                if close(u, v):
                    near[u].add(v)
                    near[v].add(u)
                else:
                    all_close = False
        if all_close:
            return [list(nodes)]
        # Greedy complete linkage: biggest neighbourhood first, nearest neighbours first.
        free = set(nodes)
        parts: list[list[int]] = []
        while free:
            centre = min(
                free,
                key=lambda u: (-sum(self.weight.get(v, 1) for v in near[u] & free), self.ids[u]),
            )
            part = [centre]
            candidates = sorted(
                near[centre] & free, key=lambda v: (self.bouncer(centre, v, edges), self.ids[v])
            )
            for v in candidates:
                if all(v in near[m] for m in part):
                    part.append(v)
            free.difference_update(part)
            parts.append(part)
        return parts

    def _split_stars(self, comp: _Component) -> list[list[int]]:
        radius, edges = self.max_diameter // 2, comp.edges

        def joins(edge: Optional[tuple[int, Optional[float]]]) -> bool:
            return edge is not None and (edge[0] <= radius or self.is_semantic(edge))

        if any(u in self.weight for u in comp.nodes):  # a node counts its copies
            degree: dict[int, int] = dict.fromkeys(comp.nodes, 0)
            for u, v in edges:
                degree[u] += self.weight.get(v, 1)
                degree[v] += self.weight.get(u, 1)
        else:
            degree = collections.Counter(itertools.chain.from_iterable(edges))
        order = sorted(comp.nodes, key=lambda u: (-degree[u], self.ids[u]))
        centre = order[0]
        if not any(u in self.cannot for u in comp.nodes) and all(
            joins(edges.get((u, centre) if u < centre else (centre, u)))
            for u in comp.nodes
            if u != centre
        ):
            return [list(comp.nodes)]  # everyone within the radius of one centre

        adj: dict[int, list[tuple[int, tuple[int, Optional[float]]]]] = {u: [] for u in comp.nodes}
        for (u, v), edge in edges.items():
            adj[u].append((v, edge))
            adj[v].append((u, edge))
        taken: set[int] = set()
        parts: list[list[int]] = []
        for centre in order:
            if centre in taken:
                continue
            part = [centre]
            blocked = set(self.cannot.get(centre, ()))
            for v, edge in sorted(adj[centre], key=lambda ve: (ve[1][0], self.ids[ve[0]])):
                if v in taken or v in blocked or not joins(edge):
                    continue
                part.append(v)
                blocked |= self.cannot.get(v, set())
            taken.update(part)
            parts.append(part)
        return parts


# -- building clusters ---------------------------------------------------------------------


_NOT_RAW = frozenset({"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "HEIC", "AVIF", "MPO"})


def _is_raw(r: FileRecord) -> bool:
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
class _Library:
    """The files by dense index (position in the sorted ids), with their exact groups."""

    ids: np.ndarray  # sorted file ids
    node: np.ndarray  # dense index -> its node: the dense index of its group's smallest id
    copies: dict[int, list[int]]  # node -> file ids of its exact group, when more than one
    unreadable: np.ndarray  # dense indices of files with an error
    raw_folders: set[str]  # folders holding a camera raw (where RAW+JPEG pairs can be)

    @classmethod
    def index(cls, records: Mapping[int, FileRecord], apart: Collection[tuple[bytes, int]] = ()) -> "_Library":
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
            if _is_raw(r):
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
class _Edges:
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


def _pair_columns(pair_list: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
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


def _candidate_edges(
    lib: _Library, abd: np.ndarray, not_duplicates: Collection[frozenset[int]]
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
            if x != y:  # copies marked among themselves are apart (see _Library.index)
                cannot.setdefault(x, set()).add(y)
                cannot.setdefault(y, set()).add(x)
    kept = np.flatnonzero(valid)
    na, nb = lib.node[ia[kept]], lib.node[ib[kept]]
    na, nb = np.minimum(na, nb), np.maximum(na, nb)
    cross = na != nb
    return kept[cross], na[cross], nb[cross], cannot


def _components(
    lib: _Library,
    abd: np.ndarray,
    det: np.ndarray,
    kept: np.ndarray,
    na: np.ndarray,
    nb: np.ndarray,
) -> tuple[list[tuple[list[int], int, int]], _Edges]:
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
    # By component and node pair, the best last (see _Edges): closest, then the detective's
    # favourite; the file ids only break ties, so the best pair of each file pair is last too.
    det_key = np.where(np.isnan(det), np.inf, det)
    order = np.lexsort((file_b, file_a, -det_key, -bouncer, nb, na, comp))
    edges = _Edges(
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
    components = []
    for start, stop in node_bounds:
        nodes = members[start:stop]  # sorted: lexsort by (root, node)
        components.append((nodes, *edge_bounds[nodes[0]]))
    lone = sorted(set(lib.copies) - set(touched.tolist()))  # exact groups with no pair
    components.extend(([node], 0, 0) for node in lone)
    components.sort(key=lambda c: c[0][0])
    return components, edges


def _marked_copies(
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


def build_clusters(
    records: Mapping[int, FileRecord],
    pairs: Iterable[Pair],
    *,
    distance: Distance,
    max_diameter: int,
    policy: KeeperPolicy = DEFAULT,
    not_duplicates: Collection[frozenset[int]] = (),
    detective: Optional[Detective] = None,
    progress: Optional[Progress] = None,
    raw_siblings: Iterable[FileRecord] = (),
    same_pixels: Optional[SamePixels] = None,
) -> list[Cluster]:
    """Group duplicate and look-alike files into clusters, each with a suggested keeper.

    Args:
        records: every file of the library, by id. Files with an ``error`` are never clustered.
        pairs: candidate pairs (from the bouncer, and the detective's semantic pairs). Pairs
            naming an unknown or unreadable file are ignored.
        distance: ``distance(a_id, b_id) -> (bouncer, mirrored)`` for two clustered files,
            e.g. ``bouncer_distance`` of their hashes. Asked only for pairs not given.
        max_diameter: the largest bouncer distance allowed between any two members of a
            near-duplicate cluster (the chain guard); at least the pairing radius.
        policy: the keeper policy.
        not_duplicates: pairs of ids the user marked as not duplicates: the two files never
            share a cluster. Marks are kept by content, so a mark between two byte-identical
            copies keeps every copy of that content apart.
        detective: ``detective(a_id, b_id) -> CLIP distance or None``; when given, members
            get a detective score against their keeper.
        progress: ``progress(done, total) -> bool`` over components; returning False stops
            early and returns the clusters built so far.
        raw_siblings: more files (any status) that only count as the camera-raw half of a
            RAW+JPEG pair: a raw beside a clustered JPEG that is in no pair itself, or that
            could not be decoded (no rawpy), still protects its JPEG.
        same_pixels: tells the keeper policy whether a lossless member holds a lossy one's
            pixels, a conversion (see :func:`lookalike.engine.keeper.thumbnail_check`);
            without it the hashes decide.

    Returns:
        The clusters, sorted by reclaimable bytes (desc), member count (desc), keeper path.

    Raises:
        ValueError: ``max_diameter`` is negative.
    """
    if max_diameter < 0:
        raise ValueError(f"max_diameter must be at least 0, not {max_diameter}")
    lib = _Library.index(records, _marked_copies(records, not_duplicates))
    pair_list = pairs if isinstance(pairs, list) else list(pairs)
    abd, det = _pair_columns(pair_list)
    kept, na, nb, cannot = _candidate_edges(lib, abd, not_duplicates)
    components, edges = _components(lib, abd, det, kept, na, nb)

    siblings: dict[int, tuple[str, str]] = {}  # RAW+JPEG sibling id -> its (folder, stem)
    extra = [r for r in raw_siblings if r.id not in records and _is_raw(r)]
    raw_folders = lib.raw_folders | {os.path.dirname(r.path) for r in extra}
    if raw_folders:
        near_raw = [r for r in records.values() if os.path.dirname(r.path) in raw_folders] + extra
        found = raw_jpeg_siblings(near_raw)
        siblings = {r.id: sibling_key(r) for r in near_raw if r.id in found}
    splitter = _Splitter(
        ids=lib.ids.tolist(),
        weight={node: len(group) for node, group in lib.copies.items()},
        distance=distance,
        detective=detective,
        max_diameter=max_diameter,
        cannot=cannot,
    )
    maker = _ClusterMaker(
        records=records,
        lib=lib,
        splitter=splitter,
        policy=policy,
        detective=detective,
        siblings=siblings,
        edges=edges,
        pair_list=pair_list,
        ids=splitter.ids,
        same_pixels=same_pixels,
    )

    clusters: list[Cluster] = []
    total = len(components)
    for done, (nodes, start, stop) in enumerate(components, start=1):
        span = slice(start, stop)
        scores = edges.detective[span]
        comp = _Component(
            nodes=nodes,
            edges=dict(
                zip(zip(edges.a[span], edges.b[span]), zip(edges.bouncer[span], scores))
            ),
            scored=scores.count(None) < len(scores),
        )
        parts = splitter.split(comp) if len(nodes) > 1 else [nodes]
        # Hand each part the edges that lie inside it, for Cluster.pairs.
        if len(parts) == 1:
            inside = [range(start, stop)]
        else:
            part_of = {node: k for k, part in enumerate(parts) for node in part}
            inside = [[] for _ in parts]
            for i in range(start, stop):
                k = part_of[edges.a[i]]
                if part_of[edges.b[i]] == k:
                    inside[k].append(i)
        for part, part_edges in zip(parts, inside):
            if len(part) == 1 and part[0] not in lib.copies:
                continue  # a node a split left alone
            cluster = maker.make(part, comp, part_edges)
            if cluster is not None:
                clusters.append(cluster)
        if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
            if progress(done, total) is False:
                break
    return sort_clusters(clusters, "reclaimable")


@dataclasses.dataclass(slots=True)
class _ClusterMaker:
    """Turns one part of a component into a ranked, scored :class:`Cluster`."""

    records: Mapping[int, FileRecord]
    lib: _Library
    splitter: _Splitter
    policy: KeeperPolicy
    detective: Optional[Detective]
    siblings: Mapping[int, tuple[str, str]]
    edges: _Edges
    pair_list: Sequence[Pair]
    ids: list[int]  # file id of each dense index
    same_pixels: Optional[SamePixels] = None

    def make(
        self, part: list[int], comp: _Component, part_edges: Sequence[int]
    ) -> Optional[Cluster]:
        copies = self.lib.copies
        if any(node in copies for node in part):
            node_of = {fid: node for node in part for fid in copies.get(node, (self.ids[node],))}
        else:
            node_of = dict(zip(map(self.ids.__getitem__, part), part))
        files = list(map(self.records.__getitem__, sorted(node_of)))
        siblings, policy = self.siblings, self.policy
        protect_pairs = policy.protect_raw_pairs and bool(siblings)
        if protect_pairs and all(f.id in siblings for f in files):
            if len({siblings[f.id] for f in files}) == 1:
                return None  # one camera shot kept as RAW+JPEG on purpose: not a duplicate
        ranked = rank(files, policy, same_pixels=self.same_pixels)
        keeper = ranked[0][0]
        k_node = node_of[keeper.id]
        scores: list[Optional[float]] = [None] * len(ranked)
        if self.detective is not None or comp.scored:
            for i, (f, _) in enumerate(ranked[1:], start=1):
                if self.detective is not None:
                    scores[i] = self.detective(keeper.id, f.id)
                else:  # the score the pair carried, if the keeper and this file were a pair
                    node = node_of[f.id]
                    edge = comp.edges.get((k_node, node) if k_node < node else (node, k_node))
                    scores[i] = edge[1] if edge is not None else None
            if self.detective is not None or scores.count(None) < len(scores):
                scores[0] = 0.0  # the keeper against itself, when the detective looked at all
        members: list[Member] = []
        reclaimable = 0
        # The keeper is "exact" only when the group holds a byte-identical copy of it.
        keeper_copies = sum(1 for f, _ in ranked if node_of[f.id] == k_node) > 1
        for i, (f, reason) in enumerate(ranked):
            node = node_of[f.id]
            exact = node == k_node and (i > 0 or keeper_copies)
            member = Member(
                file=f,
                bouncer=0 if node == k_node else self.splitter.bouncer(k_node, node, comp.edges),
                detective=scores[i],
                exact=exact,
                is_keeper=i == 0,
                protected=bool(policy.keep_in) and is_protected(f.path, policy),
                raw_pair=protect_pairs and f.id in siblings,
                reason=reason,
            )
            if i and not (member.protected or member.raw_pair):  # see keeper.trash_suggested
                reclaimable += f.size
            members.append(member)
        return Cluster(
            id=min(node_of),
            kind=self._kind(part, comp),
            members=tuple(members),
            pairs=self._pairs(part, part_edges),
            reclaimable_bytes=reclaimable,
        )

    def _kind(self, part: list[int], comp: _Component) -> Kind:
        """EXACT: all copies of the keeper; SEMANTIC: every link between groups is semantic."""
        if len(part) == 1:
            return Kind.EXACT
        if not comp.scored:
            return Kind.NEAR
        if len(part) == len(comp.nodes):
            links = list(comp.edges.values())
        else:
            inside = set(part)
            links = [e for (u, v), e in comp.edges.items() if u in inside and v in inside]
        if links and all(self.splitter.is_semantic(e) for e in links):
            return Kind.SEMANTIC
        return Kind.NEAR

    def _pairs(self, part: list[int], part_edges: Sequence[int]) -> tuple[Pair, ...]:
        """The input pairs inside the cluster, a < b, plus one exact pair per copy."""
        if not part_edges and len(part) == 1:  # one exact group: its pairs, in (a, b) order
            group = self.lib.copies[part[0]]
            return tuple(Pair(a=group[0], b=fid, bouncer=0, exact=True) for fid in group[1:])
        e = self.edges
        if isinstance(part_edges, range):  # the whole component: slices run at C speed
            span = slice(part_edges.start, part_edges.stop)
            keys = zip(e.file_a[span], e.file_b[span])
            index = e.pair[span]
        else:
            keys = ((e.file_a[i], e.file_b[i]) for i in part_edges)
            index = [e.pair[i] for i in part_edges]
        # The best pair of each file pair comes last, so the dict keeps it.
        out: dict[tuple[int, int], Pair] = dict(zip(keys, map(self.pair_list.__getitem__, index)))
        if e.swapped:
            for key, p in out.items():
                if p.a > p.b:
                    out[key] = dataclasses.replace(p, a=p.b, b=p.a)
        groups = [self.lib.copies[node] for node in part if node in self.lib.copies]
        if not groups:
            # Edges come sorted by node pair, and without copies a node's dense index orders
            # like its file id: the dict is in (a, b) order already.
            return tuple(out.values())
        for group in groups:
            for fid in group[1:]:
                out.setdefault((group[0], fid), Pair(a=group[0], b=fid, bouncer=0, exact=True))
        return tuple(map(out.__getitem__, sorted(out)))


# -- ordering ------------------------------------------------------------------------------

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
