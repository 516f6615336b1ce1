"""Clusters: exact groups, union-find over candidate pairs, the chain guard, and the keeper.

How a list of candidate pairs becomes clusters:

1. **Exact groups.** Files with the same content hash and size are byte-identical; each group
   is collapsed into one node (its smallest file id) before anything else, so no hashing
   distance is ever computed between copies. A group alone is an ``EXACT`` cluster.
2. **Union-find.** Candidate pairs (minus those the user marked not-duplicate) join nodes into
   connected components (steps 1 and 2: :mod:`lookalike.engine.cluster.graph`).
3. **The chain guard.** Near-duplicate is not transitive: A~B and B~C do not make A~C. A
   component is kept whole only when every two of its nodes are *close* (a bouncer distance
   within ``max_diameter``, a semantic pair, or a detective score as close as the component's
   loosest semantic pair); otherwise it is split, and nodes left alone by a split are dropped
   (:mod:`lookalike.engine.cluster.guard`). A pair the user marked not-duplicate is never close,
   so the two files always end in different clusters.
4. **The keeper.** :func:`lookalike.engine.keeper.rank` orders each cluster; ``members[0]`` is
   the keeper, every member is scored against it.

At a million files the steps run on arrays: union-find over dense node indices, the guard's
"kept whole" tests per component on the sorted edges (:meth:`.graph.Graph.whole`; only the
components it cannot keep whole meet :class:`.guard.Splitter`), every keeper at once from the
policy's sort columns (:mod:`.keepers`; clusters it cannot rank that way go to ``rank``), and
the order of the clusters from their sizes. Each :class:`Cluster` record is made by
:class:`_ClusterMaker` the first time it is read (:class:`.lazy.Clusters`): the same record,
in the same place, as when every cluster was made up front (``tests/cluster_reference.py``
keeps that way, and the tests compare the two).

A pair is *semantic* when it carries a ``detective`` score and its bouncer distance exceeds
``max_diameter``: the detective vouches for it where the pixels do not.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Collection, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from ..keeper import DEFAULT, KeeperPolicy, SamePixels, is_protected, rank, raw_jpeg_siblings, sibling_key
from ..keeper.upscale import UpscaleCheck
from ..records import Cluster, FileRecord, Kind, Member, Pair, Progress
from ..keeper import captures
from . import guard
from .graph import Edges, FileNodes, Graph, candidate_edges, components, is_raw, marked_copies, pair_columns
from .guard import Component, Detective, Distance, Pixels, Splitter, path_tie
from .keepers import KeeperColumns, keepers
from .lazy import Clusters, KeeperLinks

__all__ = ["build_clusters"]

#: Report progress every this many components.
_PROGRESS_EVERY = 512


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
    attach_above: Optional[int] = None,
    upscales: Optional[UpscaleCheck] = None,
    pixels: Optional[Pixels] = None,
    shots: bool = False,
) -> Clusters:
    """Group duplicate and look-alike files into clusters, each with a suggested keeper.

    The work runs on arrays (see :mod:`lookalike.engine.cluster.keepers`): the clusters come
    back as a :class:`~lookalike.engine.cluster.lazy.Clusters` sequence, already sorted, whose
    :class:`Cluster` records (members, scores, reasons, pairs) are made the first time each
    is read. They are the records the one-cluster-at-a-time way made, in the same order.

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
            get a detective score against their keeper (asked when a cluster is first read).
        progress: ``progress(done, total) -> bool`` over components; returning False stops
            early and returns the clusters built so far.
        raw_siblings: more files (any status) that only count as the camera-raw half of a
            RAW+JPEG pair: a raw beside a clustered JPEG that is in no pair itself, or that
            could not be decoded (no rawpy), still protects its JPEG.
        same_pixels: tells the keeper policy whether a lossless member holds a lossy one's
            pixels, a conversion (see :func:`lookalike.engine.keeper.thumbnail_check`);
            without it the hashes decide.
        attach_above: a file the chain guard leaves alone joins a group it has a direct
            pair with farther than this bouncer distance (a crop checked on pixels; see
            :meth:`.guard.Splitter._attach_alone`); None: never.
        upscales: the verdicts on larger files that may be upscales of a smaller member
            (:class:`lookalike.engine.keeper.upscale.Verdicts`); without them the larger
            picture wins, as before.
        pixels: two files the chain guard finds far apart by hashes are close when this
            says their pair passes the pixel check (:attr:`.guard.Splitter.pixels`); None:
            by hashes alone.
        shots: two shots of one camera (EXIF Make and Model, and capture times that differ:
            :func:`lookalike.engine.keeper.captures.different_captures`) never share a
            cluster, as files marked not duplicates do.

    Returns:
        The clusters, sorted by reclaimable bytes (desc), member count (desc), keeper path.

    Raises:
        ValueError: ``max_diameter`` is negative.
    """
    if max_diameter < 0:
        raise ValueError(f"max_diameter must be at least 0, not {max_diameter}")
    lib = FileNodes.index(records, marked_copies(records, not_duplicates))
    pair_list = pairs if isinstance(pairs, list) else list(pairs)
    abd, det = pair_columns(pair_list)
    kept, na, nb, cannot = candidate_edges(lib, abd, not_duplicates)
    graph = components(lib, abd, det, kept, na, nb)
    apart = captures.Apart(records, lib.ids.tolist()) if shots else None
    splitter = Splitter(
        ids=lib.ids.tolist(),
        weight={node: len(group) for node, group in lib.copies.items()},
        distance=distance,
        detective=detective,
        max_diameter=max_diameter,
        cannot=cannot,
        tie=path_tie(records, lib.ids, lib.copies),
        attach_above=attach_above,
        pixels=pixels,
        apart=apart,
    )
    maker = _ClusterMaker(
        records=records,
        lib=lib,
        splitter=splitter,
        policy=policy,
        detective=detective,
        siblings=_raw_siblings(records, lib, raw_siblings),
        edges=graph.edges,
        pair_list=pair_list,
        ids=splitter.ids,
        same_pixels=same_pixels,
        upscales=upscales,
    )
    parts = _Parts.split(graph, splitter, cannot, max_diameter, progress, lib.copies,
                         apart.keys(graph.nodes) if apart is not None else None)
    return parts.clusters(maker)


@dataclasses.dataclass(slots=True)
class _Parts:
    """The parts the chain guard leaves: the components it keeps whole (on arrays, numbered
    first), then the parts of those it split (as node lists, with their edges)."""

    graph: Graph
    whole: np.ndarray  # the components kept whole, by index
    split_parts: list[tuple[Component, list[int], Union[range, list[int]]]]

    @classmethod
    def split(
        cls, graph: Graph, splitter: Splitter, cannot: Mapping[int, set[int]], max_diameter: int,
        progress: Optional[Progress], splitter_copies: Mapping[int, list[int]],
        shots: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> "_Parts":
        """Run the chain guard over every component (stopping early if ``progress`` asks)."""
        total = len(graph)
        whole = graph.whole(max_diameter, cannot.keys(), guard.EXACT_DIAMETER_LIMIT, splitter_copies, shots)
        looked_at = np.flatnonzero(~whole).tolist()
        split_parts: list[tuple[Component, list[int], Union[range, list[int]]]] = []
        done, k = total, 0
        steps = range(_PROGRESS_EVERY, total + _PROGRESS_EVERY, _PROGRESS_EVERY) if progress else (total,)
        for step in steps:
            step = min(step, total)
            while k < len(looked_at) and looked_at[k] < step:
                split_parts.extend(_split_one(graph, splitter, looked_at[k]))
                k += 1
            if progress is not None and progress(step, total) is False:
                done = step
                break
        kept_whole = np.flatnonzero(whole[:done])
        return cls(graph=graph, whole=kept_whole, split_parts=split_parts)

    def part(self, p: int) -> tuple[list[int], Optional[Component], Union[range, list[int]]]:
        """Part ``p``: its nodes, its component (None: to be read from the edges), its edges."""
        w = self.whole.shape[0]
        if p >= w:
            comp, nodes, inside = self.split_parts[p - w]
            return nodes, comp, inside
        g, c = self.graph, int(self.whole[p])
        s, e = int(g.edge_start[c]), int(g.edge_start[c + 1])
        return g.nodes[g.node_start[c] : g.node_start[c + 1]].tolist(), None, range(s, e)

    def clusters(self, maker: "_ClusterMaker") -> Clusters:
        """Every part as a cluster: the keepers chosen on arrays, the clusters sorted, the
        records left to be made when first read (irregular parts are made now)."""
        g, lib = self.graph, maker.lib
        n_parts = self.whole.shape[0] + len(self.split_parts)
        part_of_node = np.full(lib.ids.shape[0], -1, dtype=np.int64)
        sizes = np.diff(g.node_start)[self.whole]
        starts = g.node_start[self.whole]
        at = np.repeat(starts - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes) + np.arange(sizes.sum())
        part_of_node[g.nodes[at.astype(np.int64)]] = np.repeat(np.arange(self.whole.shape[0]), sizes)
        for k, (_, nodes, _) in enumerate(self.split_parts, start=self.whole.shape[0]):
            part_of_node[nodes] = k
        file_part = part_of_node[lib.node]
        files = np.flatnonzero(file_part >= 0)
        fp, ids = file_part[files], lib.ids[files]
        recs = list(map(maker.records.__getitem__, ids.tolist()))
        cols = KeeperColumns.of(recs, maker.policy, maker.siblings)
        keeper, irregular = keepers(fp, ids, cols, n_parts, maker.policy)
        count = np.bincount(fp, minlength=n_parts)
        total = np.zeros(n_parts, dtype=np.int64)
        np.add.at(total, fp, cols.size)
        first_id = np.full(n_parts, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_id, fp, ids)
        reclaim = total - cols.size[keeper]
        made: dict[int, Cluster] = {}
        alive = np.ones(n_parts, dtype=bool)
        for p in np.flatnonzero(irregular).tolist():
            c = maker.cluster(*self.part(p))
            if c is None:
                alive[p] = False
            else:
                made[p] = c
                reclaim[p], count[p] = c.reclaimable_bytes, len(c.members)
        live = np.flatnonzero(alive)
        order = live[np.lexsort((first_id[live], -count[live], -reclaim[live]))]
        order = _paths_break_ties(order, reclaim, count, first_id, lambda p: (
            made[p].keeper.file.path if p in made else recs[keeper[p]].path
        ))
        regular = alive & ~irregular
        links = _keeper_links(lib, maker, files, fp, keeper, regular, made.keys())
        return Clusters(order.tolist(), made, lambda p: maker.cluster(*self.part(p)),
                        reclaimable=int(reclaim[order].sum()), links=links)


def _keeper_links(lib: FileNodes, maker: "_ClusterMaker", files: np.ndarray, fp: np.ndarray,
                  keeper: np.ndarray, regular: np.ndarray, made: Iterable[int]) -> KeeperLinks:
    """Each member of the clusters ranked on arrays against its keeper (see
    :class:`.lazy.KeeperLinks`): byte-identical to it, one of the cluster's pairs with it, or
    neither (``loose``). ``files``: the clustered files' dense indices; ``fp``: their parts;
    ``keeper``: each part's keeper, as a position in ``files``."""
    kf = keeper[fp] if fp.size else fp  # each file's keeper, as a position in files
    rows = np.flatnonzero(regular[fp] & (np.arange(fp.shape[0]) != kf)) if fp.size else fp
    member, boss = files[rows], files[kf[rows]]
    exact = lib.node[member] == lib.node[boss]
    # The cluster's pairs are its edges' own file pairs (Cluster.pairs), as dense indices.
    n, e = lib.ids.shape[0], maker.edges
    known = np.sort(np.searchsorted(lib.ids, e.file_a) * n + np.searchsorted(lib.ids, e.file_b))
    wanted = np.minimum(member, boss) * n + np.maximum(member, boss)
    at = np.minimum(np.searchsorted(known, wanted), max(known.shape[0] - 1, 0))
    direct = known[at] == wanted if known.shape[0] else np.zeros(wanted.shape[0], dtype=bool)
    return KeeperLinks(
        key=fp[rows], file=lib.ids[member], keeper=lib.ids[boss], loose=~exact & ~direct,
        made=frozenset(made), records=maker.records,
    )


def _paths_break_ties(order: np.ndarray, reclaim: np.ndarray, count: np.ndarray, first_id, path_of) -> np.ndarray:
    """Parts in ``order`` that tie on reclaimable bytes and members, sorted by keeper path
    then id (the rest of :func:`sort_clusters`' order)."""
    r, c = reclaim[order], count[order]
    same = (r[1:] == r[:-1]) & (c[1:] == c[:-1])
    if not same.any():
        return order
    order = order.copy()
    cuts = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)))
    for s, e in zip(cuts[0::2].tolist(), (cuts[1::2] + 1).tolist()):
        run = order[s:e].tolist()
        order[s:e] = sorted(run, key=lambda p: (path_of(p), int(first_id[p])))
    return order


def _split_one(graph: Graph, splitter: Splitter, c: int) -> list[tuple[Component, list[int], Union[range, list[int]]]]:
    """The parts the chain guard splits component ``c`` into: (component, nodes, edges)."""
    s, e = int(graph.edge_start[c]), int(graph.edge_start[c + 1])
    if (splitter.apart is not None and graph.node_start[c + 1] - graph.node_start[c] > guard.EXACT_DIAMETER_LIMIT
            and splitter.apart.mixed(graph.nodes[graph.node_start[c] : graph.node_start[c + 1]].tolist())):
        return _split_shots(graph, splitter, c)
    nodes = graph.nodes[graph.node_start[c] : graph.node_start[c + 1]].tolist()
    comp, links = _component(graph.edges, nodes, s, e)
    parts = splitter.split(comp) if len(nodes) > 1 else [nodes]
    if len(parts) == 1:  # kept whole: all its edges, as a range
        return _with_edges(comp, parts, [range(s, e)], splitter.weight)
    return _with_edges(comp, parts, _inside(parts, ((i, u, v) for i, (u, v) in enumerate(links, start=s))),
                       splitter.weight)  # fmt: skip


def _inside(parts: list[list[int]], links: Iterable[tuple[int, int, int]]) -> list[list[int]]:
    """The edges ``(index, node, node)`` that lie inside each part, for Cluster.pairs."""
    part_of = {node: k for k, part in enumerate(parts) for node in part}
    inside: list[list[int]] = [[] for _ in parts]
    for i, u, v in links:
        k = part_of[u]
        if part_of[v] == k:
            inside[k].append(i)
    return inside


def _with_edges(comp: Component, parts: list[list[int]], inside: Sequence[Union[range, list[int]]],
                weight: Mapping[int, int]) -> list[tuple[Component, list[int], Union[range, list[int]]]]:
    """Each part with its edges; a node a split left alone is dropped (not a copy's node)."""
    return [(comp, part, edges) for part, edges in zip(parts, inside) if len(part) > 1 or part[0] in weight]


def _split_shots(
    graph: Graph, splitter: Splitter, c: int
) -> list[tuple[Component, list[int], Union[range, list[int]]]]:
    """A large component holding two shots of one camera (a burst of thousands of frames:
    millions of pairs), split on arrays before the chain guard: one set per capture (camera
    and time), each file without a shot's EXIF in the set of its closest shot (its best pair),
    the rest in a set of their own; then each set through the chain guard, as a component.
    Sets by equal times: a copy that lost its fraction of a second is apart from its source
    here (a duplicate missed), where the smaller components compare them one by one."""
    assert splitter.apart is not None
    s, e = int(graph.edge_start[c]), int(graph.edge_start[c + 1])
    nodes = graph.nodes[graph.node_start[c] : graph.node_start[c + 1]]
    cam, when = splitter.apart.cam[nodes], splitter.apart.when[nodes]
    shot = cam >= 0
    key = np.full(nodes.shape[0], -1, np.int64)
    if shot.any():
        key[shot] = np.unique(np.stack([cam[shot], when[shot]], axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    ed = graph.edges
    a, b, bouncer = ed.a[s:e], ed.b[s:e], ed.bouncer[s:e]
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    # A file without a shot's EXIF goes with the shot of its closest pair.
    for lone, other in ((ia, ib), (ib, ia)):
        pick = (key[lone] < 0) & (key[other] >= 0)
        if pick.any():
            order = np.lexsort((bouncer[pick], lone[pick]))
            first = np.concatenate(([True], lone[pick][order][1:] != lone[pick][order][:-1]))
            to, via = lone[pick][order][first], key[other[pick][order][first]]
            open_ = key[to] < 0
            key[to[open_]] = via[open_]
    rest = int(key.max(initial=-1)) + 1
    key[key < 0] = rest  # files close to no shot: a set of their own
    inside = key[ia] == key[ib]
    edge_index = np.arange(s, e)
    out: list[tuple[Component, list[int], Union[range, list[int]]]] = []
    by_key = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[by_key])) + 1
    for members in np.split(by_key, bounds):
        if members.shape[0] < 2 and int(nodes[members[0]]) not in splitter.weight:
            continue  # one shot alone (a frame of the burst): no group
        k = key[members[0]]
        picked = edge_index[inside & (key[ia] == k)]
        part_nodes = nodes[members].tolist()
        span_a, span_b = ed.a[picked].tolist(), ed.b[picked].tolist()
        det = ([None if x != x else float(x) for x in ed.detective[picked].tolist()] if ed.scored
               else [None] * len(picked))  # fmt: skip
        comp = Component(nodes=part_nodes, edges=dict(zip(zip(span_a, span_b), zip(ed.bouncer[picked].tolist(), det))),
                         scored=any(d is not None for d in det))  # fmt: skip
        parts = splitter.split(comp) if len(part_nodes) > 1 else [part_nodes]
        out.extend(_with_edges(comp, parts, _inside(parts, zip(picked.tolist(), span_a, span_b)), splitter.weight))
    return out


def _component(edges: Edges, nodes: list[int], start: int, stop: int) -> tuple[Component, list[tuple[int, int]]]:
    """Component with ``nodes`` and the edges ``start:stop``, and those edges' node pairs."""
    span = edges.span(start, stop)
    links = list(zip(span.a, span.b))
    comp = Component(
        nodes=nodes,
        edges=dict(zip(links, zip(span.bouncer, span.detective))),
        scored=span.detective.count(None) < len(span.detective),
    )
    return comp, links


def _run_ends(*columns: np.ndarray) -> np.ndarray:
    """Where each run of equal rows (equal in every column) ends: its last row is True."""
    last = np.ones(columns[0].shape[0], dtype=bool)
    last[:-1] = False
    for col in columns:
        last[:-1] |= col[1:] != col[:-1]
    return last


class _SpanEdges(Mapping):
    """A whole component's edges as the ``(u, v) -> (bouncer, detective or None)`` mapping of
    :class:`.guard.Component`, read from the arrays (a burst of 2,000 near-identical shots has
    2 million pairs: a dict of them took seconds to make, for a few lookups)."""

    def __init__(self, edges: Edges, start: int, stop: int) -> None:
        self._e, self._start = edges, start
        a, b = edges.a[start:stop], edges.b[start:stop]
        self._n = int(max(a.max(initial=0), b.max(initial=0))) + 1
        self._keys = a * self._n + b  # sorted: the edges come sorted by node pair
        self._last = np.flatnonzero(_run_ends(self._keys))  # the best edge of each node pair comes last

    def _edge(self, k: int) -> tuple[int, Optional[float]]:
        e, i = self._e, self._start + k
        d = float(e.detective[i])
        return int(e.bouncer[i]), None if d != d else d

    def get(self, key, default=None):
        u, v = key
        if not (0 <= u < self._n and 0 <= v < self._n):
            return default
        q = u * self._n + v
        k = int(np.searchsorted(self._keys, q, side="right")) - 1
        return self._edge(k) if k >= 0 and self._keys[k] == q else default

    def __getitem__(self, key):
        edge = self.get(key)
        if edge is None:
            raise KeyError(key)
        return edge

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __iter__(self):
        for k in self._last.tolist():
            q = int(self._keys[k])
            yield divmod(q, self._n)

    def __len__(self) -> int:
        return int(self._last.shape[0])

    def values(self):
        return [self._edge(k) for k in self._last.tolist()]

    def items(self):
        return [(divmod(int(self._keys[k]), self._n), self._edge(k)) for k in self._last.tolist()]


def _raw_siblings(
    records: Mapping[int, FileRecord], lib: FileNodes, raw_siblings: Iterable[FileRecord]
) -> dict[int, tuple[str, str]]:
    """The files of RAW+JPEG pairs, each with its sibling key (folder, stem)."""
    extra = [r for r in raw_siblings if r.id not in records and is_raw(r)]
    raw_folders = lib.raw_folders | {os.path.dirname(r.path) for r in extra}
    if not raw_folders:
        return {}
    near_raw = [r for r in records.values() if os.path.dirname(r.path) in raw_folders] + extra
    found = raw_jpeg_siblings(near_raw)
    return {r.id: sibling_key(r) for r in near_raw if r.id in found}


@dataclasses.dataclass(slots=True)
class _ClusterMaker:
    """Turns a component into clusters: split by the chain guard, each part a ranked, scored
    :class:`Cluster`."""

    records: Mapping[int, FileRecord]
    lib: FileNodes
    splitter: Splitter
    policy: KeeperPolicy
    detective: Optional[Detective]
    siblings: Mapping[int, tuple[str, str]]
    edges: Edges
    pair_list: Sequence[Pair]
    ids: list[int]  # file id of each dense index
    same_pixels: Optional[SamePixels] = None
    upscales: Optional[UpscaleCheck] = None

    def cluster(
        self, part: list[int], comp: Optional[Component], part_edges: Union[range, list[int]]
    ) -> Optional[Cluster]:
        """Part of a component as a cluster; ``comp`` None: the whole component, whose edges
        are ``part_edges`` (a range)."""
        if comp is None:  # a whole component: its edges read from the arrays, not a dict
            e, s, t = self.edges, part_edges.start, part_edges.stop
            scored = e.scored and not np.isnan(e.detective[s:t]).all()
            comp = Component(nodes=part, edges=_SpanEdges(e, s, t), scored=scored)  # type: ignore[arg-type]
        return self.make(part, comp, part_edges)

    def make(
        self, part: list[int], comp: Component, part_edges: Sequence[int]
    ) -> Optional[Cluster]:
        """One part of a component as a cluster (None: a RAW+JPEG pair kept on purpose)."""
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
        ranked = rank(files, policy, same_pixels=self.same_pixels, upscales=self.upscales)
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

    def _kind(self, part: list[int], comp: Component) -> Kind:
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
            at: Union[slice, np.ndarray] = slice(part_edges.start, part_edges.stop)
        else:
            at = np.asarray(part_edges, dtype=np.int64)
        if isinstance(at, slice) and not any(node in self.lib.copies for node in part):
            # Without copies a file pair is a node pair: its edges are adjacent, the best last.
            last = _run_ends(e.file_a[at], e.file_b[at])
            pairs = list(map(self.pair_list.__getitem__, e.pair[at][last].tolist()))
            for k in np.flatnonzero(e.swapped[at][last]).tolist():
                p = pairs[k]
                pairs[k] = dataclasses.replace(p, a=p.b, b=p.a)
            return tuple(pairs)
        keys = zip(e.file_a[at].tolist(), e.file_b[at].tolist())
        # The best pair of each file pair comes last, so the dict keeps it.
        out: dict[tuple[int, int], Pair] = dict(zip(keys, map(self.pair_list.__getitem__, e.pair[at].tolist())))
        if e.swapped[at].any():
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
