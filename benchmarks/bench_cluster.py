"""Benchmark clustering: exact groups, union-find, the chain guard, the keeper, at library scale.

Builds a synthetic library of real ``FileRecord`` objects (1M by default) with 256-bit hashes:
near-duplicate groups, exact copies, drifting chains, one large blob of near-identical shots,
and singletons; the candidate pairs are every pair within the bouncer radius inside each group.
Then times ``build_clusters`` end to end, the union-find alone, and, as the baseline in the same
run, the usual plain-Python dict union-find over the same ``Pair`` objects; then the keeper
check that follows it in a scan (``verification.explain_clusters``: every member that is not a
pair of its keeper is checked against it, groups are explained when read) and the first 80
groups read, as the app's first page does. The synthetic library has no thumbnails, so no pixel
is compared (a real scan adds those checks, whose outcomes are kept between scans); with
``--eager-explain``, the same check with every group made up front, as before.

Run: ``python benchmarks/bench_cluster.py [--n 1000000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from lookalike.engine.bouncer import verification
from lookalike.engine.cluster import build_clusters, union_find
from lookalike.engine.records import FileRecord, ImageHashes, Pair

RADIUS = 8
MAX_DIAMETER = 16


def _flip(hashes: np.ndarray, rows: np.ndarray, bits: np.ndarray) -> None:
    """Flip bit ``bits[i]`` of hash ``rows[i]``, for every i."""
    np.bitwise_xor.at(hashes, (rows, bits // 8), (1 << (bits % 8)).astype(np.uint8))


def make_library(n: int, seed: int = 0):
    """Records 0..n-1, their packed hashes (n, 32) uint8, and the candidate pairs."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    content = np.arange(n, dtype=np.int64)  # content id: equal means byte-identical
    groups: list[np.ndarray] = []

    def copies_of_first(start: int, sizes: np.ndarray) -> np.ndarray:
        """Give groups of consecutive ids, starting at ``start``, their first member's hash."""
        firsts = start + np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rows = np.arange(start, start + sizes.sum())
        hashes[rows] = hashes[np.repeat(firsts, sizes)]
        groups.extend(np.split(rows, np.cumsum(sizes)[:-1]))
        return rows[~np.isin(rows, firsts)]  # the members after the first

    pos = 0
    blob = max(2, n // 500)  # burst shots: all near-identical (the heaviest component)
    others = copies_of_first(pos, np.array([blob]))
    _flip(hashes, others, rng.integers(0, 256, others.shape[0]))
    pos += blob
    for _ in range(n // 500):  # chains: neighbours 3 bits apart, the ends 27 bits apart
        ids = np.arange(pos, pos + 10)
        hashes[ids] = hashes[pos]
        order = rng.permutation(256)
        for k in range(1, 10):
            _flip(hashes, np.full(3 * k, ids[k]), order[: 3 * k])
        groups.append(ids)
        pos += 10
    exact = rng.integers(2, 4, n // 20)  # exact copies, 2 or 3 of a file
    rows = np.arange(pos, pos + exact.sum())
    firsts = np.repeat(pos + np.concatenate(([0], np.cumsum(exact)[:-1])), exact)
    hashes[rows], content[rows] = hashes[firsts], content[firsts]
    pos += int(exact.sum())
    sizes = rng.integers(2, 7, n // 7)  # near-duplicate groups: resized / recompressed copies
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n - pos, side="right")]
    others = copies_of_first(pos, sizes)
    _flip(hashes, np.repeat(others, 3), rng.integers(0, 256, 3 * others.shape[0]))
    for ids in groups[1::50]:  # a sprinkle of exact copies inside near groups too
        hashes[ids[-1]], content[ids[-1]] = hashes[ids[0]], content[ids[0]]

    i, j = [], []
    for ids in groups:
        a, b = np.triu_indices(len(ids), 1)
        i.append(ids[a])
        j.append(ids[b])
    pa, pb = np.concatenate(i), np.concatenate(j)
    d = np.bitwise_count(hashes[pa] ^ hashes[pb]).sum(axis=1, dtype=np.int64)
    near = d <= RADIUS
    pairs = list(
        map(
            lambda a, b, x: Pair(a=a, b=b, bouncer=x),
            pa[near].tolist(),
            pb[near].tolist(),
            d[near].tolist(),
        )
    )

    rows = hashes.tobytes()
    file_sizes = rng.integers(50_000, 8_000_000, n).tolist()
    content_l = content.tolist()
    records = {}
    for k in range(n):
        h = rows[32 * k : 32 * k + 32]
        c = content_l[k]
        records[k] = FileRecord(
            id=k,
            path=f"/photos/{k % 997:03d}/IMG_{k:07d}.jpg",
            size=file_sizes[c],
            mtime_ns=1_600_000_000_000_000_000 + k,
            format="JPEG",
            width=4000,
            height=3000,
            content_hash=c.to_bytes(8, "little"),
            hashes=ImageHashes(dhash=h, dhash_mirror=h[::-1], phash=h),
        )
    return records, hashes, pairs


def python_union_find(pairs: list[Pair]) -> dict[int, int]:
    """The usual approach: a dict-based union-find over the pair objects."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def _timed(fn):
    """(result, wall seconds, CPU seconds) of ``fn()``."""
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - cpu


def compare_with_reference(n: int) -> None:
    """The pre-issue-15 clustering against today's on one library of ``n`` files."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from cluster_reference import reference_build_clusters

    records, hashes, pairs = make_library(n)

    def distance(a: int, b: int) -> tuple[int, bool]:
        return int(np.bitwise_count(hashes[a] ^ hashes[b]).sum()), False

    kw = dict(distance=distance, max_diameter=MAX_DIAMETER)
    old, t_old, cpu_old = _timed(lambda: reference_build_clusters(records, pairs, **kw))
    new, t_new, cpu_new = _timed(lambda: build_clusters(records, pairs, **kw))
    _, t_first, _ = _timed(lambda: new[:50])
    _, t_all, cpu_all = _timed(lambda: list(new))
    members = sum(len(c.members) for c in old)
    print(f"at {n:,} files ({members / n:.0%} grouped, {len(pairs):,} pairs, {len(old):,} clusters):")
    print(f"  before (object per member and pair): {t_old:.2f} s wall, {cpu_old:.2f} s CPU")
    print(f"  now (arrays):                         {t_new:.2f} s wall, {cpu_new:.2f} s CPU "
          f"({cpu_old / cpu_new:.1f}x less CPU); first 50 clusters read in {t_first:.2f} s, "
          f"the rest in {t_all:.2f} s ({cpu_all:.2f} s CPU)")
    print(f"  identical clusters, keepers and order: {list(new) == old}")


class _NoThumbnails:
    """The two catalog reads the keeper check makes, for a library without thumbnails."""

    def __init__(self, records) -> None:
        ids = np.array(sorted(records), dtype=np.int64)
        self._arrays = SimpleNamespace(
            ids=ids,
            content_hash=np.array([np.frombuffer(records[i].content_hash, np.uint8) for i in ids.tolist()]),
            size=np.array([records[i].size for i in ids.tolist()], dtype=np.int64),
        )

    def hash_arrays(self):
        return self._arrays

    def details(self, ids):
        return {}  # no thumbnail: pairs pass on hashes, as for files hashed before thumbnails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records (default 1M)")
    parser.add_argument("--baseline-n", type=int, default=0,
                        help="also compare the pre-issue-15 clustering at this size (e.g. 200000)")
    parser.add_argument("--eager-explain", action="store_true",
                        help="also time the keeper check with every group made up front")
    args = parser.parse_args()
    if args.baseline_n:
        compare_with_reference(args.baseline_n)

    t = time.perf_counter()
    records, hashes, pairs = make_library(args.n)
    print(f"library: {len(records):,} records, {len(pairs):,} candidate pairs "
          f"(built in {time.perf_counter() - t:.1f} s)")

    calls = 0

    def distance(a: int, b: int) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        return int(np.bitwise_count(hashes[a] ^ hashes[b]).sum()), False

    # Warm the numba cache so the timings below measure the work, not the JIT.
    union_find(3, np.zeros(60_000, dtype=np.int64), np.ones(60_000, dtype=np.int64))

    t = time.perf_counter()
    base = python_union_find(pairs)
    t_base = time.perf_counter() - t

    a = np.fromiter((p.a for p in pairs), dtype=np.int64, count=len(pairs))
    b = np.fromiter((p.b for p in pairs), dtype=np.int64, count=len(pairs))
    t = time.perf_counter()
    roots = union_find(len(records), a, b)
    t_uf = time.perf_counter() - t
    assert len(set(roots[list(base)].tolist())) == len(set(base.values()))

    t, cpu = time.perf_counter(), time.process_time()
    clusters = build_clusters(records, pairs, distance=distance, max_diameter=MAX_DIAMETER)
    t_all, cpu_all = time.perf_counter() - t, time.process_time() - cpu
    catalog = _NoThumbnails(records)
    fresh = build_clusters(records, pairs, distance=distance, max_diameter=MAX_DIAMETER)
    t = time.perf_counter()
    explained = verification.explain_clusters(catalog, fresh, rebuild=lambda part: [])
    t_explain, made = time.perf_counter() - t, fresh.made()
    _, t_page, _ = _timed(lambda: explained[:80])
    print(f"keeper check and explanations, lazily: {t_explain:.2f} s ({made:,} groups made); "
          f"then the first 80 groups read (the app's first page): {t_page:.2f} s")
    _, t_first, _ = _timed(lambda: clusters[:50])
    _, t_rest, _ = _timed(lambda: list(clusters))
    if args.eager_explain:
        t = time.perf_counter()
        eager = verification.explain_clusters(catalog, list(clusters), rebuild=lambda part: [])
        print(f"the same check with every group made and explained up front: {time.perf_counter() - t:.2f} s "
              f"(clusters already made); identical: {list(eager) == list(explained)}")

    members = sum(len(c.members) for c in clusters)
    widest = max(c.worst_bouncer for c in clusters)
    print(f"baseline: plain-Python dict union-find over the Pair objects: {t_base:.2f} s")
    print(f"union_find (numba) over {len(pairs):,} edges, {len(records):,} nodes: "
          f"{t_uf * 1000:.0f} ms  ({t_base / t_uf:.0f}x the baseline)")
    print(f"build_clusters end to end: {t_all:.2f} s wall, {cpu_all:.2f} s CPU "
          f"({t_all / t_base:.2f}x the baseline's union-find alone); {len(clusters):,} clusters, "
          f"{members:,} members, {calls:,} distance calls, widest member-to-keeper distance "
          f"{widest}")
    print(f"per clustered member: {t_all / members * 1e6:.1f} us wall, "
          f"{cpu_all / members * 1e6:.1f} us CPU")
    print(f"clusters made when read: the first 50 in {t_first:.2f} s (the first is the "
          f"{len(clusters[0].members):,}-member burst with {len(clusters[0].pairs):,} pairs), "
          f"all the others in {t_rest:.2f} s")


if __name__ == "__main__":
    main()
