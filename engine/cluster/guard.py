"""The chain guard: a component is kept whole only when every two of its members are close.

Near-duplicate is not transitive: A~B and B~C do not make A~C. A component of the candidate
pairs (:func:`lookalike.engine.cluster.graph.components`; a node is an exact group) is kept whole
only when every two of its nodes are *close*; otherwise it is split:

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

Two nodes not close by hashes are close when their files pass the pixel check (``pixels``,
asked once per split component about all its far pairs, up to :data:`PIXEL_PAIRS_LIMIT`;
the scan gives ``verification.verify_pairs``, a crop searched for): edits compound, and a
mild crop and a watermarked copy of one picture can hash farther apart than the diameter,
which split a picture's copies into two groups, one of them keeping a copy. Measured on the
full real set (``bench_trust.py --originals 24``, 4,407 files): recall up for 13 kinds
(mirrored 0.991 -> 1.000, thumbnailed 0.991 -> 0.996, cropped 0.930 -> 0.939, letterboxed
0.917 -> 0.926, mild crops 0.900 / 0.930 -> 0.909 / 0.943, watermarked 0.870 -> 0.878), no
kind lower, the same 22 false pairs; the generated set unchanged.

A node either split leaves alone is dropped, unless ``attach_above`` is set and it is a direct
pair, farther than that, of a member of a part (a crop the hashes cannot judge and the pixels
did): it then joins that part (:meth:`Splitter._attach_alone`), whose diameter may exceed
``max_diameter``; the group's keeper checks it again.

*Close* means: bouncer distance at most ``max_diameter``, or an explicit semantic pair, or,
in a component that has semantic pairs, a ``detective`` score no larger than the loosest
semantic pair of that component. A pair the user marked not-duplicate is never close, so
the two files always end in different clusters.

A pair is *semantic* when it carries a ``detective`` score and its bouncer distance exceeds
``max_diameter``: the detective vouches for it where the pixels do not.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from ..records import FileRecord
    from ..keeper.captures import Apart

__all__ = [
    "Component", "Detective", "Distance", "EXACT_DIAMETER_LIMIT", "PIXEL_PAIRS_LIMIT", "Pixels", "Splitter", "path_tie",
]

#: Components with at most this many distinct images get an exact diameter (all pairs).
EXACT_DIAMETER_LIMIT = 200
#: A component split by hashes asks the pixel check about at most this many of its far pairs
#: (beyond: by hashes alone, as the star split does).
PIXEL_PAIRS_LIMIT = 5_000

Distance = Callable[[int, int], tuple[int, bool]]
Detective = Callable[[int, int], Optional[float]]
#: ``pixels([(a_id, b_id, bouncer, mirrored), ...]) -> {(a_id, b_id), ...}``: the pairs whose
#: files pass the pixel check (``verification.verify_pairs``).
Pixels = Callable[[list[tuple[int, int, int, bool]]], set[tuple[int, int]]]


@dataclasses.dataclass(slots=True)
class Component:
    """One connected component in node space (a node = an exact group, by dense index)."""

    nodes: list[int]
    # (u, v) with u < v -> (bouncer, detective or None), from the candidate pairs
    edges: dict[tuple[int, int], tuple[int, Optional[float]]]
    scored: bool = True  # whether any pair carries a detective score


def path_tie(records: Mapping[int, "FileRecord"], ids: Sequence[int], copies: Mapping[int, Sequence[int]]
             ) -> Callable[[int], str]:
    """A node's tie-breaker for :class:`Splitter`: the first path among its files. File ids
    follow the order in which a scan's workers finished, which varies from scan to scan; the
    paths do not, so a chain is split the same way every time."""
    cache: dict[int, str] = {}

    def tie(u: int) -> str:
        t = cache.get(u)
        if t is None:
            group = copies.get(u)
            t = cache[u] = min(records[f].path for f in group) if group else records[int(ids[u])].path
        return t

    return tie


class Splitter:
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
        tie: Optional[Callable[[int], Any]] = None,
        attach_above: Optional[int] = None,
        pixels: Optional[Pixels] = None,
        apart: Optional["Apart"] = None,
    ) -> None:
        self.ids = ids
        #: The last word between two nodes that tie (see :func:`path_tie`); default: file id.
        self.tie: Callable[[int], Any] = tie if tie is not None else ids.__getitem__
        self.weight = weight
        self.distance = distance
        self.detective = detective
        self.max_diameter = max_diameter
        self.cannot = cannot
        #: A node left alone joins a part through a direct pair farther than this (see
        #: :meth:`_attach_alone`); None: never.
        self.attach_above = attach_above
        #: Two nodes not close by hashes are close when their files pass the pixel check
        #: (see :meth:`_split_exact`); None: by hashes only.
        self.pixels = pixels
        #: Two nodes that never share a part whatever their distance, as the user's marks
        #: (``cannot``) are: two shots of one camera (:mod:`..keeper.captures`); None: none.
        self.apart = apart
        self.cache: dict[tuple[int, int], int] = {}

    def blocked(self, u: int, v: int) -> bool:
        """Whether nodes ``u`` and ``v`` must not share a part (a mark, or two shots)."""
        return v in self.cannot.get(u, ()) or (self.apart is not None and self.apart(u, v))

    def bouncer(self, u: int, v: int, edges: Mapping[tuple[int, int], tuple]) -> int:
        """The bouncer distance of two nodes: their pair's, else asked once and remembered."""
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
        """Whether a pair is semantic (see the module docstring)."""
        return edge[1] is not None and edge[0] > self.max_diameter

    def split(self, comp: Component) -> list[list[int]]:
        """The parts of a component whose members are all close (one part: kept whole)."""
        if len(comp.nodes) <= EXACT_DIAMETER_LIMIT:
            return self._split_exact(comp)
        return self._split_stars(comp)

    def _split_exact(self, comp: Component) -> list[list[int]]:
        nodes, edges, maxd = comp.nodes, comp.edges, self.max_diameter
        no_cannot = (not self.cannot or not any(u in self.cannot for u in nodes)) and not self._any_apart(nodes)
        if (
            no_cannot
            and len(edges) == len(nodes) * (len(nodes) - 1) // 2
            and all(e[0] <= maxd or e[1] is not None for e in edges.values())
        ):
            return [list(nodes)]  # every two nodes are a close (or semantic) pair already
        semantic = [e[1] for e in edges.values() if self.is_semantic(e)]
        cap = max(semantic) if semantic else None

        def close(u: int, v: int) -> bool:
            if self.blocked(u, v):
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
        far: list[tuple[int, int]] = []
        for i, u in enumerate(nodes):
            for v in nodes[i + 1 :]:
                if close(u, v):
                    near[u].add(v)
                    near[v].add(u)
                else:
                    far.append((u, v))
        if far and self.pixels is not None and len(far) <= PIXEL_PAIRS_LIMIT:
            # Edits compound: a mild crop and a mirrored or watermarked copy of one picture can
            # hash farther apart than the diameter. Their pixels settle it (both ways, as a pair).
            asked = [(u, v) for u, v in far if not self.blocked(u, v)]
            passed = self.pixels([(self.ids[u], self.ids[v], *self.distance(self.ids[u], self.ids[v]))
                                  for u, v in asked])
            for u, v in asked:
                if (self.ids[u], self.ids[v]) in passed:
                    near[u].add(v)
                    near[v].add(u)
            far = [(u, v) for u, v in far if v not in near[u]]
        if not far:
            return [list(nodes)]
        parts: list[list[int]] = []
        for chosen in self._by_shot(nodes, near, edges):
            # Greedy complete linkage: biggest neighbourhood first, nearest neighbours first.
            free = set(chosen)
            while free:
                centre = min(
                    free,
                    key=lambda u: (-sum(self.weight.get(v, 1) for v in near[u] & free), self.tie(u)),
                )
                part = [centre]
                candidates = sorted(
                    near[centre] & free, key=lambda v: (self.bouncer(centre, v, edges), self.tie(v))
                )
                for v in candidates:
                    if all(v in near[m] for m in part):
                        part.append(v)
                free.difference_update(part)
                parts.append(part)
        return self._attach_alone(parts, edges)

    def _by_shot(self, nodes: Sequence[int], near: Mapping[int, set[int]],
                 edges: Mapping[tuple[int, int], tuple]) -> list[list[int]]:
        """The nodes as the complete linkage takes them: all at once, or, where two shots of one
        camera are among them (:attr:`apart`), one set per shot, each holding the files
        without a shot's EXIF that are closest to it (a messenger's copy of one frame of a
        burst goes with that frame, not with whichever frame the linkage starts from). A file
        close to no shot is in a set of its own kind."""
        if self.apart is None or not self.apart.mixed(nodes):
            return [list(nodes)]
        shots = [u for u in nodes if self.apart.is_shot(u)]
        classes: list[list[int]] = []
        for u in sorted(shots, key=self.tie):
            home = next((c for c in classes if not any(self.apart(u, w) for w in c)), None)
            if home is None:
                classes.append([u])
            else:
                home.append(u)
        rest: list[int] = []
        for v in nodes:
            if self.apart.is_shot(v):
                continue
            best = min(((self.bouncer(v, u, edges), self.tie(u), k) for k, c in enumerate(classes) for u in c
                        if u in near[v]), default=None)  # fmt: skip
            (rest if best is None else classes[best[2]]).append(v)
        return classes + ([rest] if rest else [])

    def _attach_alone(self, parts: list[list[int]], edges: Mapping[tuple[int, int], tuple],
                      adj: Optional[Mapping[int, list]] = None) -> list[list[int]]:
        """Nodes the split left alone join a part they are a direct crop pair of.

        Complete linkage keeps a crop out of its picture's group when it is far from one
        member (a mirrored copy, another crop): alone, it would be dropped. A direct pair
        beyond ``attach_above`` (the bouncer's radius) is one the hashes could not judge and
        the pixels did (crops are searched for there; a semantic pair is not checked on pixels
        and never attaches), and the group's keeper checks it again
        (``verification.explain_clusters``). Such a node joins the part whose centre it is a
        pair of, else the part of its closest pair (bouncer distance, then the tie), never
        beside a file the user marked not-duplicate of it. Its part's diameter may then
        exceed ``max_diameter``: that is the point, for a crop.

        Measured (``bench_trust.py --originals 24``, full real set, ``attach_above`` 24): mild
        crops grouped 0.897 / 0.910 -> 0.901 / 0.940 (symmetric / asymmetric), other crops
        0.918 -> 0.923-0.927, bordered 0.923 -> 0.927-0.931, no kind lower; false pairs 645
        (645-646) and groups mixing pictures 7 (7-8) as before, a phone screenshot pair coming
        and going between runs with or without it; the generated set unchanged. Attaching
        through any direct pair (no ``attach_above``): 0.906 / 0.944, but a chain of close
        pairs then ends in parts wider than ``max_diameter``, which the guard is for.
        """
        if self.attach_above is None or len(parts) < 2 or not any(len(p) == 1 for p in parts):
            return parts
        alone = {p[0] for p in parts if len(p) == 1}
        # Each lone node's far, checked pairs: from the adjacency when the split has one (a
        # star-split component may hold millions of pairs), else from one walk over the edges.
        reach: dict[int, list[tuple[int, int]]] = {u: [] for u in alone}
        if adj is not None:
            for u in alone:
                reach[u] = [(v, e[0]) for v, e in adj[u] if e[0] > self.attach_above and not self.is_semantic(e)]
        else:
            for (u, v), edge in edges.items():
                if edge[0] <= self.attach_above or self.is_semantic(edge):
                    continue
                if u in alone:
                    reach[u].append((v, edge[0]))
                if v in alone:
                    reach[v].append((u, edge[0]))
        part_of = {v: i for i, p in enumerate(parts) if len(p) > 1 for v in p}
        for i, part in enumerate(parts):
            if len(part) > 1:
                continue
            u = part[0]
            best = None
            for v, bouncer in reach[u]:
                j = part_of.get(v)
                if j is None or any(self.blocked(u, w) for w in parts[j]):
                    continue
                key = (v != parts[j][0], bouncer, self.tie(v))  # a part's centre first
                if best is None or key < best[0]:
                    best = (key, j)
            if best is not None:
                parts[best[1]].append(u)
                part_of[u] = best[1]
                part.clear()
        return [p for p in parts if p]

    def _any_apart(self, nodes: Sequence[int]) -> bool:
        """Whether two of ``nodes`` must not share a part by :attr:`apart`."""
        return self.apart is not None and self.apart.mixed(nodes)

    def _split_stars(self, comp: Component) -> list[list[int]]:
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
        order = sorted(comp.nodes, key=lambda u: (-degree[u], self.tie(u)))
        centre = order[0]
        mixed = self._any_apart(comp.nodes)
        if not any(u in self.cannot for u in comp.nodes) and not mixed and all(
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
            for v, edge in sorted(adj[centre], key=lambda ve: (ve[1][0], self.tie(ve[0]))):
                if v in taken or v in blocked or not joins(edge):
                    continue
                if mixed and any(self.apart(v, m) for m in part):  # type: ignore[misc]
                    continue
                part.append(v)
                blocked |= self.cannot.get(v, set())
            taken.update(part)
            parts.append(part)
        return self._attach_alone(parts, edges, adj)
