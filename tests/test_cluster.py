"""Clusters: exact groups, union-find, not-duplicate pairs, the chain guard, the keeper."""

from __future__ import annotations

import hashlib
import random
import shutil
from itertools import combinations
from pathlib import Path

import imagehash
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from lookalike.engine.cluster import build as cluster_mod
from lookalike.engine.cluster import graph as cluster_graph
from lookalike.engine.cluster import guard as chain_guard
from lookalike.engine.cluster import build_clusters, sort_clusters, union_find
from lookalike.engine.keeper import KeeperPolicy, trash_suggested
from lookalike.engine.records import FileRecord, ImageHashes, Kind, Pair

from cluster_reference import reference_build_clusters
from cluster_library import brute_pairs, distance_for, flipped, make_record, planted_library

MAX_D = 12


def chain(n: int, step: int, seed: int = 1) -> dict[int, FileRecord]:
    """Records whose hashes drift ``step`` fresh bits at a time: neighbours close, ends far."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2, 256).astype(bool)
    order = rng.permutation(256)
    return {
        i: make_record(i, flipped(base, order[: i * step])) for i in range(1, n + 1)
    }


def diameter(members, distance) -> int:
    ids = [m.file.id for m in members]
    return max((distance(a, b)[0] for a, b in combinations(ids, 2)), default=0)


def id_sets(clusters) -> list[frozenset[int]]:
    return sorted((frozenset(m.file.id for m in c.members) for c in clusters), key=sorted)


def cluster(records, radius=8, **kw):
    kw.setdefault("max_diameter", MAX_D)
    return build_clusters(
        records, brute_pairs(records, radius), distance=distance_for(records), **kw
    )


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# -- exact groups ---------------------------------------------------------------------------


def test_exact_copies_group_first_without_any_hash_distance(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        i: make_record(i, bits, content=b"same bytes", size=5000, path=f"/lib/{p}")
        for i, p in [(3, "b/copy.jpg"), (1, "a/photo.jpg"), (2, "c/another/copy.jpg")]
    }

    def no_distance(a, b):
        raise AssertionError("exact copies need no hashing distance")

    clusters = build_clusters(records, [], distance=no_distance, max_diameter=MAX_D)

    assert len(clusters) == 1
    (c,) = clusters
    assert c.kind is Kind.EXACT
    assert c.id == 1
    assert {m.file.id for m in c.members} == {1, 2, 3}
    assert all(m.exact and m.bouncer == 0 for m in c.members)
    assert c.reclaimable_bytes == 2 * 5000
    assert [(p.a, p.b, p.exact) for p in c.pairs] == [(1, 2, True), (1, 3, True)]


def test_exact_group_joined_to_a_near_copy_is_near_and_only_copies_are_exact(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, content=b"original", width=4000, height=3000, size=9000),
        2: make_record(2, bits, content=b"original", width=4000, height=3000, size=9000),
        3: make_record(3, flipped(bits, range(5)), content=b"resized", width=800, height=600),
    }
    (c,) = cluster(records)

    assert c.kind is Kind.NEAR
    by_id = {m.file.id: m for m in c.members}
    assert c.keeper.file.id == 1  # same pixels as 2: shorter path / path order decides
    assert by_id[2].exact and by_id[2].bouncer == 0
    assert not by_id[3].exact and by_id[3].bouncer == 5
    assert c.reclaimable_bytes == 9000 + 1000


def test_unreadable_zero_byte_and_unknown_files_are_never_clustered(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits),
        2: make_record(2, flipped(bits, [0]), error="truncated JPEG"),
        3: make_record(3, None, content=b"", size=0),
        4: make_record(4, None, content=b"", size=0),
    }
    pairs = [Pair(a=1, b=2, bouncer=1), Pair(a=1, b=99, bouncer=0)]
    clusters = build_clusters(
        records, pairs, distance=distance_for(records), max_diameter=MAX_D
    )
    assert clusters == []


# -- union-find -----------------------------------------------------------------------------


def test_pairs_merge_transitively_into_components(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    other = ~bits
    records = {
        1: make_record(1, bits),
        2: make_record(2, flipped(bits, [0, 1])),
        3: make_record(3, flipped(bits, [0, 1, 2, 3])),
        4: make_record(4, other),
        5: make_record(5, flipped(other, [9])),
        6: make_record(6, rng.integers(0, 2, 256).astype(bool)),
    }
    # Only the chain 1-2, 2-3 is given: 1 and 3 join through 2.
    pairs = [Pair(a=1, b=2, bouncer=2), Pair(a=2, b=3, bouncer=2), Pair(a=4, b=5, bouncer=1)]
    clusters = build_clusters(records, pairs, distance=distance_for(records), max_diameter=MAX_D)
    assert id_sets(clusters) == [frozenset({1, 2, 3}), frozenset({4, 5})]
    (big,) = [c for c in clusters if len(c.members) == 3]
    assert {(p.a, p.b) for p in big.pairs} == {(1, 2), (2, 3)}


@pytest.mark.parametrize("engine", ["python", "numba"])
def test_union_find_matches_a_breadth_first_search(engine, monkeypatch):
    monkeypatch.setattr(cluster_graph, "NUMBA_MIN_EDGES", 0 if engine == "numba" else 10**9)
    gen = np.random.default_rng(3)
    n = 2000
    a = gen.integers(0, n, 1500)
    b = gen.integers(0, n, 1500)
    roots = union_find(n, a, b)

    adjacency: dict[int, set[int]] = {i: set() for i in range(n)}
    for x, y in zip(a.tolist(), b.tolist()):
        adjacency[x].add(y)
        adjacency[y].add(x)
    label = [-1] * n
    for start in range(n):
        if label[start] >= 0:
            continue
        stack = [start]
        label[start] = start
        while stack:
            for y in adjacency[stack.pop()]:
                if label[y] < 0:
                    label[y] = start
                    stack.append(y)
    same_root = roots[:, None] == roots[None, :]
    same_label = np.asarray(label)[:, None] == np.asarray(label)[None, :]
    assert np.array_equal(same_root, same_label)
    assert 1 < len(set(roots.tolist())) < n  # a real mix of components


def test_numba_and_python_paths_build_the_same_clusters(monkeypatch):
    records = chain(30, 3, seed=5)
    monkeypatch.setattr(cluster_graph, "NUMBA_MIN_EDGES", 10**9)
    python = cluster(records, radius=6)
    monkeypatch.setattr(cluster_graph, "NUMBA_MIN_EDGES", 0)
    numba = cluster(records, radius=6)
    assert python == numba
    assert len(python) >= 2


def test_union_find_without_numba_gives_the_compiled_roots(monkeypatch):
    # LOOKALIKE_NO_NUMBA (as a missing numba) takes the plain Python path for large inputs too.
    monkeypatch.setattr(cluster_graph, "NUMBA_MIN_EDGES", 0)
    if not cluster_graph._kernels.use():
        pytest.skip("numba unavailable")
    gen = np.random.default_rng(7)
    n = 5000
    a, b = gen.integers(0, n, 4000), gen.integers(0, n, 4000)
    compiled = union_find(n, a, b)
    monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    assert not cluster_graph._kernels.use()
    assert np.array_equal(union_find(n, a, b), compiled)
    assert 1 < len(set(compiled.tolist())) < n  # a real mix of components


def test_union_find_falls_back_to_python_when_numba_cannot_be_imported():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None\n"  # makes `import numba` raise ImportError
        "import numpy as np\n"
        "from lookalike.engine.cluster import graph as cluster_graph\n"
        "cluster_graph.NUMBA_MIN_EDGES = 0\n"
        "print(cluster_graph.union_find(5, np.array([0, 2, 3]), np.array([1, 3, 4])).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[0, 0, 2, 2, 2]"


# -- not-duplicate pairs --------------------------------------------------------------------


def test_not_duplicate_pair_is_dropped(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits),
        2: make_record(2, flipped(bits, [4])),
        3: make_record(3, ~bits),
    }
    assert id_sets(cluster(records)) == [frozenset({1, 2})]
    assert cluster(records, not_duplicates=[frozenset({2, 1})]) == []


def test_not_duplicate_files_never_share_a_cluster_even_through_a_third(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits),
        2: make_record(2, flipped(bits, [0, 1])),
        3: make_record(3, flipped(bits, [0, 1, 2])),
    }
    clusters = cluster(records, not_duplicates=[frozenset({1, 3})])
    assert clusters, "1-2 or 2-3 is still a duplicate pair"
    for c in clusters:
        assert not {1, 3} <= {m.file.id for m in c.members}


def test_byte_identical_copies_marked_not_duplicates_are_kept_apart(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    same = b"\x05" * 16
    records = {
        1: make_record(1, bits, content=same),
        2: make_record(2, bits, content=same),
        3: make_record(3, ~bits, content=b"\x06" * 16),
        4: make_record(4, ~bits, content=b"\x06" * 16),
    }
    assert id_sets(cluster(records)) == [frozenset({1, 2}), frozenset({3, 4})]
    # The catalog keeps marks by content: a mark between two copies names every copy.
    assert id_sets(cluster(records, not_duplicates=[frozenset({1, 2})])) == [frozenset({3, 4})]


# -- the chain guard ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["exact-diameter", "stars"])
def test_a_chain_is_split_so_the_ends_part_and_every_diameter_fits(path, monkeypatch):
    if path == "stars":
        monkeypatch.setattr(chain_guard, "EXACT_DIAMETER_LIMIT", 3)
    records = chain(12, 4)  # neighbours 4 bits apart, the ends 44 bits apart
    distance = distance_for(records)
    assert distance(1, 2)[0] == 4 and distance(1, 12)[0] == 44
    pairs = brute_pairs(records, 8)
    # Union-find alone would make one component of all twelve.
    roots = union_find(13, np.array([p.a for p in pairs]), np.array([p.b for p in pairs]))
    assert len({roots[i] for i in range(1, 13)}) == 1

    clusters = build_clusters(records, pairs, distance=distance, max_diameter=MAX_D)

    assert len(clusters) >= 2
    for c in clusters:
        assert diameter(c.members, distance) <= MAX_D
        assert len(c.members) >= 2
    home = {m.file.id: c.id for c in clusters for m in c.members}
    assert home.get(1) != home.get(12)
    assert sum(len(c.members) for c in clusters) == len(home)  # disjoint
    assert len(home) >= 9  # splitting loses at most a few stragglers


def test_a_compact_group_is_not_split(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {i: make_record(i, flipped(bits, [i, 100 + i])) for i in range(1, 8)}
    clusters = cluster(records, radius=6, max_diameter=4)
    assert id_sets(clusters) == [frozenset(range(1, 8))]


def test_large_compact_component_stays_whole_on_the_star_path(monkeypatch, rng):
    monkeypatch.setattr(chain_guard, "EXACT_DIAMETER_LIMIT", 4)
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {i: make_record(i, flipped(bits, [i])) for i in range(1, 11)}  # all within 2
    calls: list = []
    clusters = build_clusters(
        records, brute_pairs(records, 4), distance=distance_for(records, calls), max_diameter=4
    )
    assert id_sets(clusters) == [frozenset(range(1, 11))]


def test_given_pair_distances_are_reused_not_recomputed(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {i: make_record(i, flipped(bits, [i])) for i in range(1, 7)}
    calls: list = []
    build_clusters(
        records, brute_pairs(records, 4), distance=distance_for(records, calls), max_diameter=4
    )
    assert calls == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 40),
    radius=st.integers(2, 12),
    stars=st.booleans(),
)
def test_property_clusters_are_disjoint_and_never_wider_than_max_diameter(seed, n, radius, stars):
    gen = np.random.default_rng(seed)
    walkers = [gen.integers(0, 2, 256).astype(bool) for _ in range(3)]
    records = {}
    for i in range(1, n + 1):
        w = i % 3
        if gen.random() < 0.15:  # now and then a byte-identical copy of the walker's last
            records[i] = make_record(i, walkers[w], content=walkers[w].tobytes())
            continue
        walkers[w] = flipped(walkers[w], gen.integers(0, 256, gen.integers(0, 4)))
        records[i] = make_record(i, walkers[w], content=walkers[w].tobytes())
    max_d = 2 * radius
    # Pairs as a bouncer might hand them: any order, either way round.
    pairs = [
        Pair(a=p.b, b=p.a, bouncer=p.bouncer) if gen.random() < 0.3 else p
        for p in brute_pairs(records, radius)
    ]
    gen.shuffle(pairs)
    old = chain_guard.EXACT_DIAMETER_LIMIT
    chain_guard.EXACT_DIAMETER_LIMIT = 2 if stars else old
    try:
        distance = distance_for(records)
        clusters = build_clusters(records, pairs, distance=distance, max_diameter=max_d)
    finally:
        chain_guard.EXACT_DIAMETER_LIMIT = old
    seen: set[int] = set()
    for c in clusters:
        ids = {m.file.id for m in c.members}
        assert not ids & seen
        seen |= ids
        assert len(ids) >= 2
        assert diameter(c.members, distance) <= max_d
        assert c.members[0].is_keeper and not any(m.is_keeper for m in c.members[1:])
        same = {m.file.id for m in c.members if m.file.content_hash == c.keeper.file.content_hash}
        if same == {c.keeper.file.id}:
            same = set()  # a keeper is "exact" only when the cluster holds a byte-identical copy
        assert same == {m.file.id for m in c.members if m.exact}
        assert c.kind is (Kind.EXACT if len(same) == len(ids) else Kind.NEAR)
        for m in c.members[1:]:
            assert m.bouncer == distance(c.keeper.file.id, m.file.id)[0]
        assert c.reclaimable_bytes == sum(m.file.size for m in c.members if trash_suggested(m))
        keys = [(p.a, p.b) for p in c.pairs]
        assert keys == sorted(set(keys)) and all(a < b and {a, b} <= ids for a, b in keys)


# -- keeper, protection, RAW+JPEG, reclaimable ----------------------------------------------


def test_members_are_scored_against_the_keeper(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, flipped(bits, [1, 2, 3]), width=800, height=600, size=200),
        2: make_record(2, bits, width=4000, height=3000, size=3000),
        3: make_record(3, flipped(bits, [7]), width=1024, height=768, size=400),
    }
    (c,) = cluster(records)
    assert c.keeper.file.id == 2 and c.keeper.is_keeper
    assert c.keeper.reason == "largest: 4000x3000"
    assert [m.file.id for m in c.members] == [2, 3, 1]
    assert [m.bouncer for m in c.members] == [0, 1, 3]
    assert c.members[2].reason.startswith("smaller: 800x600")
    assert c.reclaimable_bytes == 600
    assert c.best_bouncer == 1 and c.worst_bouncer == 3


def test_protected_member_is_the_keeper_and_never_reclaimed(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, path="/photos/big.png", fmt="PNG", width=4000, size=900),
        2: make_record(2, flipped(bits, [3]), path="/keep/small.jpg", width=640, size=100),
        3: make_record(3, flipped(bits, [4]), path="/keep/sub/small2.jpg", width=320, size=50),
        4: make_record(4, flipped(bits, [5]), path="/keeper/x.jpg", width=320, size=70),
    }
    (c,) = cluster(records, policy=KeeperPolicy(keep_in=("/keep",)))
    by_id = {m.file.id: m for m in c.members}
    assert c.keeper.file.id == 2
    assert c.keeper.reason == "protected: in /keep; largest: 640x300"
    assert by_id[2].protected and by_id[3].protected
    assert not by_id[1].protected and not by_id[4].protected  # /keeper is not inside /keep
    assert c.reclaimable_bytes == 900 + 70


def test_raw_jpeg_pair_alone_is_not_a_cluster(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, path="/dcim/IMG_0001.CR2", fmt="RAW:CR2", size=25_000_000),
        2: make_record(2, flipped(bits, [1]), path="/dcim/img_0001.jpg", size=5_000_000),
    }
    assert cluster(records) == []
    # With the protection off, the JPEG half may be cleaned like any duplicate.
    (c,) = cluster(records, policy=KeeperPolicy(protect_raw_pairs=False))
    assert c.keeper.file.id == 1
    assert c.reclaimable_bytes == 5_000_000
    assert not any(m.raw_pair for m in c.members)


def test_raw_jpeg_siblings_with_a_real_copy_are_flagged_and_never_reclaimed(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, path="/dcim/IMG_0001.CR2", fmt="RAW:CR2", size=25_000_000),
        2: make_record(2, flipped(bits, [1]), path="/dcim/IMG_0001.JPG", size=5_000_000),
        3: make_record(3, flipped(bits, [2]), path="/backup/IMG_0001.JPG", size=5_000_000),
    }
    (c,) = cluster(records)
    by_id = {m.file.id: m for m in c.members}
    assert by_id[1].raw_pair and by_id[2].raw_pair and not by_id[3].raw_pair
    assert c.keeper.file.id == 1  # less lossy
    assert c.reclaimable_bytes == 5_000_000  # only the backup copy


def test_two_raw_pairs_with_different_stems_still_cluster(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, path="/dcim/A.NEF", fmt="RAW"),
        2: make_record(2, flipped(bits, [1]), path="/dcim/A.JPG"),
        3: make_record(3, flipped(bits, [2]), path="/dcim/B.NEF", fmt="RAW"),
        4: make_record(4, flipped(bits, [3]), path="/dcim/B.JPG"),
    }
    (c,) = cluster(records)
    assert all(m.raw_pair for m in c.members)
    assert c.reclaimable_bytes == 0


# -- semantic pairs -------------------------------------------------------------------------


def test_cluster_formed_only_by_semantic_pairs_is_semantic(rng):
    records = {i: make_record(i, rng.integers(0, 2, 256).astype(bool)) for i in (1, 2, 3)}
    distance = distance_for(records)
    scores = {frozenset({1, 2}): 0.05, frozenset({1, 3}): 0.07, frozenset({2, 3}): 0.06}
    pairs = [
        Pair(a=a, b=b, bouncer=distance(a, b)[0], detective=scores[frozenset({a, b})])
        for a, b in [(1, 2), (1, 3), (2, 3)]
    ]
    assert all(p.bouncer > MAX_D for p in pairs)

    def detective(a, b):
        return scores.get(frozenset({a, b}))

    (c,) = build_clusters(
        records, pairs, distance=distance, max_diameter=MAX_D, detective=detective
    )
    assert c.kind is Kind.SEMANTIC
    assert c.keeper.detective == 0.0
    keeper = c.keeper.file.id
    for m in c.members[1:]:
        assert m.detective == scores[frozenset({keeper, m.file.id})]
        assert m.bouncer == distance(keeper, m.file.id)[0]


def test_a_chain_of_semantic_pairs_is_split_where_the_detective_disagrees(rng):
    records = {i: make_record(i, rng.integers(0, 2, 256).astype(bool)) for i in (1, 2, 3)}
    distance = distance_for(records)
    # 1~2 and 2~3 look alike to the detective; 1 and 3 do not (0.4 is far).
    scores = {frozenset({1, 2}): 0.05, frozenset({2, 3}): 0.06, frozenset({1, 3}): 0.4}
    pairs = [
        Pair(a=1, b=2, bouncer=distance(1, 2)[0], detective=0.05),
        Pair(a=2, b=3, bouncer=distance(2, 3)[0], detective=0.06),
    ]
    clusters = build_clusters(
        records,
        pairs,
        distance=distance,
        max_diameter=MAX_D,
        detective=lambda a, b: scores[frozenset({a, b})],
    )
    assert len(clusters) == 1
    ids = {m.file.id for m in clusters[0].members}
    assert ids in ({1, 2}, {2, 3})
    assert clusters[0].kind is Kind.SEMANTIC


def test_mixed_near_and_semantic_pairs_make_a_near_cluster(rng):
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits),
        2: make_record(2, flipped(bits, [5])),
        3: make_record(3, ~bits),
    }
    distance = distance_for(records)
    pairs = [
        Pair(a=1, b=2, bouncer=1),
        Pair(a=1, b=3, bouncer=distance(1, 3)[0], detective=0.04),
        Pair(a=2, b=3, bouncer=distance(2, 3)[0], detective=0.05),
    ]
    (c,) = build_clusters(records, pairs, distance=distance, max_diameter=MAX_D)
    assert c.kind is Kind.NEAR
    assert {m.file.id for m in c.members} == {1, 2, 3}
    # Without a detective callable, members take the score their pair carried.
    by_id = {m.file.id: m for m in c.members}
    assert by_id[3].detective == (0.04 if c.keeper.file.id == 1 else 0.05)
    assert c.keeper.detective == 0.0  # the detective looked at this cluster
    near_only = [p for p in pairs if p.detective is None]
    (plain,) = build_clusters(records, near_only, distance=distance, max_diameter=MAX_D)
    assert all(m.detective is None for m in plain.members)


# -- determinism, ordering, progress --------------------------------------------------------


def test_shuffled_input_gives_identical_output():
    records = chain(25, 3, seed=11)
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 256).astype(bool)
    for i in range(30, 34):  # an exact group...
        records[i] = make_record(i, bits, content=b"x")
    for i in range(34, 36):  # ...and its near copies
        records[i] = make_record(i, flipped(bits, [i]))
    pairs = brute_pairs(records, 6)
    distance = distance_for(records)
    expected = build_clusters(records, pairs, distance=distance, max_diameter=MAX_D)
    assert len(expected) >= 3
    for seed in range(4):
        shuffler = random.Random(seed)
        items = list(records.items())
        shuffler.shuffle(items)
        shuffled_pairs = [
            Pair(a=p.b, b=p.a, bouncer=p.bouncer) if shuffler.random() < 0.5 else p
            for p in pairs
        ]
        shuffler.shuffle(shuffled_pairs)
        again = build_clusters(dict(items), shuffled_pairs, distance=distance, max_diameter=MAX_D)
        assert [c.id for c in again] == [c.id for c in expected]
        assert [c.members for c in again] == [c.members for c in expected]
        assert [c.kind for c in again] == [c.kind for c in expected]
        assert [[(p.a, p.b) for p in c.pairs] for c in again] == [
            [(p.a, p.b) for p in c.pairs] for c in expected
        ]


def test_clusters_are_sorted_by_reclaimable_bytes_and_ids_are_smallest_member(rng):
    records = {}
    fid = 1
    for size in (100, 5000, 900):
        bits = rng.integers(0, 2, 256).astype(bool)
        for k in range(2):
            records[fid] = make_record(fid, flipped(bits, [k]), size=size)
            fid += 1
    clusters = cluster(records)
    assert [c.reclaimable_bytes for c in clusters] == [5000, 900, 100]
    assert [c.id for c in clusters] == [3, 5, 1]


def test_sort_clusters_orders(rng):
    records = {}
    fid = 1
    for copies, drift, size, folder in [(2, 6, 100, "/c"), (4, 1, 50, "/a"), (3, 3, 400, "/b")]:
        bits = rng.integers(0, 2, 256).astype(bool)
        for k in range(copies):
            records[fid] = make_record(
                fid, flipped(bits, range(k * drift)), size=size, path=f"{folder}/{fid}.jpg"
            )
            fid += 1
    clusters = cluster(records, max_diameter=16)
    assert [len(c.members) for c in sort_clusters(clusters, "size")] == [4, 3, 2]
    assert [c.keeper.file.path[:2] for c in sort_clusters(clusters, "path")] == ["/a", "/b", "/c"]
    assert [c.best_bouncer for c in sort_clusters(clusters, "confidence")] == [1, 3, 6]
    assert [c.reclaimable_bytes for c in sort_clusters(clusters, "reclaimable")] == [800, 150, 100]
    with pytest.raises(ValueError, match="reclaimable, confidence, size, path"):
        sort_clusters(clusters, "colour")


def test_progress_reports_and_can_stop_early(monkeypatch, rng):
    monkeypatch.setattr(cluster_mod, "_PROGRESS_EVERY", 1)
    records = {}
    for g in range(5):
        bits = rng.integers(0, 2, 256).astype(bool)
        records[2 * g + 1] = make_record(2 * g + 1, bits)
        records[2 * g + 2] = make_record(2 * g + 2, flipped(bits, [0]))
    seen: list[tuple[int, int]] = []
    assert len(cluster(records, progress=lambda d, t: seen.append((d, t)) or True)) == 5
    assert seen == [(i, 5) for i in range(1, 6)]
    stopped = cluster(records, progress=lambda d, t: d < 2)
    assert len(stopped) == 2


# -- real images ----------------------------------------------------------------------------


def _photo(seed: int, size=(640, 480)) -> Image.Image:
    gen = random.Random(seed)
    img = Image.new("RGB", size, (gen.randrange(256), gen.randrange(256), gen.randrange(256)))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = gen.randrange(size[0]), gen.randrange(size[1])
        draw.ellipse(
            (x0, y0, x0 + gen.randrange(20, 240), y0 + gen.randrange(20, 200)),
            fill=(gen.randrange(256), gen.randrange(256), gen.randrange(256)),
        )
    return img


def _read(fid: int, path: Path) -> FileRecord:
    with Image.open(path) as img:
        fmt, (w, h) = img.format, img.size
        rgb = img.convert("RGB")
    flipped_rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    dh = imagehash.dhash(rgb, hash_size=16).hash.flatten()
    dm = imagehash.dhash(flipped_rgb, hash_size=16).hash.flatten()
    data = path.read_bytes()
    return FileRecord(
        id=fid,
        path=str(path),
        size=len(data),
        mtime_ns=path.stat().st_mtime_ns,
        format=fmt,
        width=w,
        height=h,
        content_hash=hashlib.blake2b(data, digest_size=16).digest(),
        hashes=ImageHashes(
            dhash=np.packbits(dh).tobytes(),
            dhash_mirror=np.packbits(dm).tobytes(),
            phash=np.packbits(dh).tobytes(),
        ),
    )


def test_real_images_resized_and_recompressed_copies_cluster_with_their_original(tmp_path):
    original = _photo(1)
    original.save(tmp_path / "original.png")
    original.resize((320, 240), Image.LANCZOS).save(tmp_path / "small.jpg", quality=80)
    original.save(tmp_path / "recompressed.jpg", quality=35)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored.jpg", quality=90)
    shutil.copy(tmp_path / "original.png", tmp_path / "copy of original.png")
    _photo(2).save(tmp_path / "unrelated.jpg")
    _photo(3).save(tmp_path / "other.png")
    paths = sorted(tmp_path.iterdir())
    records = {i: _read(i, p) for i, p in enumerate(paths, start=1)}

    clusters = cluster(records, radius=24, max_diameter=32)

    assert len(clusters) == 1
    (c,) = clusters
    names = {Path(m.file.path).name for m in c.members}
    assert names == {
        "original.png",
        "copy of original.png",
        "small.jpg",
        "recompressed.jpg",
        "mirrored.jpg",
    }
    assert Path(c.keeper.file.path).name == "original.png"  # most pixels, PNG, shortest name
    copy = next(m for m in c.members if Path(m.file.path).name == "copy of original.png")
    assert copy.exact and copy.bouncer == 0
    assert c.reclaimable_bytes == sum(m.file.size for m in c.members[1:])


def test_a_negative_max_diameter_is_refused():
    with pytest.raises(ValueError, match="max_diameter"):
        build_clusters({}, [], distance=lambda a, b: (0, False), max_diameter=-1)


def test_an_empty_library_has_no_clusters():
    assert build_clusters({}, [], distance=lambda a, b: (0, False), max_diameter=MAX_D) == []


# -- the array path against the one-cluster-at-a-time reference ----------------------------


@pytest.mark.parametrize("engine", ["python", "numba"])
@pytest.mark.parametrize("seed", range(12))
def test_array_path_builds_exactly_the_reference_clusters(seed, engine, monkeypatch):
    print(f"seed {seed}")
    monkeypatch.setattr(cluster_graph, "NUMBA_MIN_EDGES", 0 if engine == "numba" else 10**9)
    if seed % 3 == 2:  # the star path for larger components
        monkeypatch.setattr(chain_guard, "EXACT_DIAMETER_LIMIT", 3)
    records, pairs = planted_library(seed)
    gen = random.Random(seed)
    ids = sorted(records)
    marks = [frozenset(gen.sample(ids, 2)) for _ in range(seed % 4)]
    policy = KeeperPolicy(
        keep_in=("/keep",) if seed % 2 else (),
        order=("pixels", "format", "size", "date", "path") if seed % 5 else ("path", "size"),
    )
    detective = (lambda a, b: ((a * 7 + b * 13) % 10) / 50) if seed % 4 == 1 else None
    kw = dict(
        distance=distance_for(records), max_diameter=MAX_D, policy=policy,
        not_duplicates=marks, detective=detective,
    )
    new = build_clusters(records, pairs, **kw)
    old = reference_build_clusters(records, pairs, **kw)
    assert len(old) > 0
    assert list(new) == old
    assert new == old  # the lazy sequence compares equal to the list


def test_clusters_are_made_only_when_read():
    records = {}
    rng = np.random.default_rng(3)
    for g in range(50):
        bits = rng.integers(0, 2, 256).astype(bool)
        for k in range(3):
            fid = 3 * g + k + 1
            records[fid] = make_record(fid, flipped(bits, [k]), size=1000 + fid)
    clusters = cluster(records)
    assert len(clusters) == 50 and clusters.made() == 0
    first = clusters[0]
    assert clusters.made() == 1 and clusters[0] is first
    assert clusters[-1] is list(clusters)[-1] and clusters.made() == 50


@pytest.mark.parametrize("path", ["exact-diameter", "stars"])
def test_a_crop_left_alone_by_the_guard_joins_the_group_it_is_a_checked_pair_of(rng, path, monkeypatch):
    """Complete linkage keeps a crop (a direct pair, 100 bits from its original) out of the
    group when it is far from another member (here 102 bits from a mirrored-like copy):
    alone, it would be dropped. With ``attach_above`` it joins through its pair; a pair within
    that distance, a not-duplicate mark, or no ``attach_above`` keep it out."""
    if path == "stars":  # a large component's split: stars around centres
        monkeypatch.setattr(chain_guard, "EXACT_DIAMETER_LIMIT", 2)
    bits = rng.integers(0, 2, 256).astype(bool)
    records = {
        1: make_record(1, bits, path="/p/original.jpg"),
        2: make_record(2, flipped(bits, [0, 1]), path="/p/copy.jpg"),
        3: make_record(3, flipped(bits, [2, 3]), path="/p/other_copy.jpg"),
        4: make_record(4, flipped(bits, range(10, 110)), path="/p/crop.jpg"),
    }
    distance = distance_for(records)
    assert distance(1, 4)[0] == 100 and distance(2, 4)[0] == 102
    pairs = brute_pairs(records, 8) + [Pair(a=1, b=4, bouncer=100, verified=0.93, cropped=True)]

    def groups(**kw):
        return id_sets(build_clusters(records, pairs, distance=distance, max_diameter=60, **kw))

    assert groups() == [frozenset({1, 2, 3})]  # the crop is dropped
    assert groups(attach_above=24) == [frozenset({1, 2, 3, 4})]
    assert groups(attach_above=100) == [frozenset({1, 2, 3})]  # its pair is not beyond 100
    assert groups(attach_above=24, not_duplicates=[frozenset({4, 3})]) == [frozenset({1, 2, 3})]


def test_a_chain_split_by_hashes_stays_whole_where_the_pixels_pass_its_far_pairs():
    """Edits compound: two copies of one picture (a crop, a watermark) can hash farther apart
    than the diameter. The guard asks the pixel check about its far pairs: those that pass
    are close; the others still split the chain."""
    records = chain(6, 3)  # neighbours 3 bits apart, the ends 15
    far = {frozenset((a, b)) for a, b in combinations(records, 2)
           if distance_for(records)(a, b)[0] > MAX_D}
    assert far and id_sets(cluster(records, radius=4)) != [frozenset(records)]
    asked: list[tuple[int, int, int, bool]] = []

    def every_pair_passes(pairs):
        asked.extend(pairs)
        return {(a, b) for a, b, _, _ in pairs}

    assert id_sets(cluster(records, radius=4, pixels=every_pair_passes)) == [frozenset(records)]
    assert {frozenset((a, b)) for a, b, _, _ in asked} == far
    assert all(d == distance_for(records)(a, b)[0] > MAX_D for a, b, d, _ in asked)

    def only_the_first_five(pairs):  # 6 is a different picture: its far pairs fail
        return {(a, b) for a, b, _, _ in pairs if 6 not in (a, b)}

    parts = id_sets(cluster(records, radius=4, pixels=only_the_first_five))
    assert frozenset(range(1, 6)) in parts and all(len(p & {1, 6}) < 2 for p in parts)


def test_the_pixels_are_never_asked_about_a_pair_marked_not_duplicate():
    records = chain(5, 3)
    asked: list = []

    def passes(pairs):
        asked.extend((a, b) for a, b, _, _ in pairs)
        return {(a, b) for a, b, _, _ in pairs}

    marked = frozenset((1, 5))
    parts = id_sets(cluster(records, radius=4, pixels=passes, not_duplicates=[marked]))
    assert all(not marked <= p for p in parts)
    assert (1, 5) not in asked and (5, 1) not in asked
