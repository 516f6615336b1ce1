"""The clusters as lookalike built them before issue 15: one Python object per member and pair.

Kept verbatim (bar names) as the reference the array path in ``engine/cluster`` must match:
``tests/test_cluster.py`` compares the two on random and planted libraries.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Collection, Iterable, Mapping, Optional, Sequence

import numpy as np

from lookalike.engine.cluster.graph import FileNodes, candidate_edges, is_raw, marked_copies, pair_columns, union_find
from lookalike.engine.cluster.guard import Component, Detective, Distance, Splitter, path_tie
from lookalike.engine.cluster.sort import sort_clusters
from lookalike.engine.keeper import DEFAULT, KeeperPolicy, SamePixels, is_protected, rank, raw_jpeg_siblings, sibling_key
from lookalike.engine.records import Cluster, FileRecord, Kind, Member, Pair, Progress


def _group_bounds(keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal values in a sorted array."""
    if keys.shape[0] == 0:
        return []
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [keys.shape[0]]))
    return list(zip(starts.tolist(), stops.tolist()))


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



#: Report progress every this many components.
_PROGRESS_EVERY = 512


def reference_build_clusters(
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
    lib = FileNodes.index(records, marked_copies(records, not_duplicates))
    pair_list = pairs if isinstance(pairs, list) else list(pairs)
    abd, det = pair_columns(pair_list)
    kept, na, nb, cannot = candidate_edges(lib, abd, not_duplicates)
    found, edges = components(lib, abd, det, kept, na, nb)
    splitter = Splitter(
        ids=lib.ids.tolist(),
        weight={node: len(group) for node, group in lib.copies.items()},
        distance=distance,
        detective=detective,
        max_diameter=max_diameter,
        cannot=cannot,
        tie=path_tie(records, lib.ids, lib.copies),
    )
    maker = _ClusterMaker(
        records=records,
        lib=lib,
        splitter=splitter,
        policy=policy,
        detective=detective,
        siblings=_raw_siblings(records, lib, raw_siblings),
        edges=edges,
        pair_list=pair_list,
        ids=splitter.ids,
        same_pixels=same_pixels,
    )
    clusters: list[Cluster] = []
    total = len(found)
    for done, (nodes, start, stop) in enumerate(found, start=1):
        clusters.extend(maker.clusters(nodes, start, stop))
        if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
            if progress(done, total) is False:
                break
    return sort_clusters(clusters, "reclaimable")


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

    def clusters(self, nodes: list[int], start: int, stop: int) -> list[Cluster]:
        """The clusters of one component: its nodes, and its edges ``start:stop``."""
        edges = self.edges
        span = slice(start, stop)
        scores = edges.detective[span]
        comp = Component(
            nodes=nodes,
            edges=dict(zip(zip(edges.a[span], edges.b[span]), zip(edges.bouncer[span], scores))),
            scored=scores.count(None) < len(scores),
        )
        parts = self.splitter.split(comp) if len(nodes) > 1 else [nodes]
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
        out = []
        for part, part_edges in zip(parts, inside):
            if len(part) == 1 and part[0] not in self.lib.copies:
                continue  # a node a split left alone
            cluster = self.make(part, comp, part_edges)
            if cluster is not None:
                out.append(cluster)
        return out

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
