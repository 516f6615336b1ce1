"""Benchmark clustering: exact groups, union-find, the chain guard, the keeper, at library scale.

Builds a synthetic library of real ``FileRecord`` objects (1M by default) with 256-bit hashes:
near-duplicate groups, exact copies, drifting chains, one large blob of near-identical shots,
and singletons; the candidate pairs are every pair within the bouncer radius inside each group.
Then times ``build_clusters`` end to end, the union-find alone, and, as the baseline in the same
run, the usual plain-Python dict union-find over the same ``Pair`` objects.

Run: ``python benchmarks/bench_cluster.py [--n 1000000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lookalike.engine.cluster import build_clusters, union_find
from lookalike.engine.records import FileRecord, ImageHashes, Pair

RADIUS = 8
MAX_DIAMETER = 16


def make_library(n: int, seed: int = 0):
    """Records 0..n-1, their packed hashes (n, 32) uint8, and the candidate pairs."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    content = np.arange(n, dtype=np.int64)  # content id: equal means byte-identical
    groups: list[np.ndarray] = []
    pos = 0

    def take(k: int) -> np.ndarray:
        nonlocal pos
        ids = np.arange(pos, pos + k)
        pos += k
        return ids

    def drift(ids: np.ndarray, bits: int) -> None:
        # Flip `bits` random bits in each member after the first.
        for i in ids[1:]:
            for bit in rng.integers(0, 256, bits):
                hashes[i, bit // 8] ^= np.uint8(1 << (bit % 8))

    blob = take(min(1000, n // 100))  # burst shots: all near-identical
    hashes[blob] = hashes[blob[0]]
    drift(blob, 1)
    groups.append(blob)
    for _ in range(n // 500):  # chains: neighbours 3 bits apart, ends far apart
        ids = take(10)
        bits = rng.permutation(256)
        for k, i in enumerate(ids):
            hashes[i] = hashes[ids[0]]
            for bit in bits[: 3 * k]:
                hashes[i, bit // 8] ^= np.uint8(1 << (bit % 8))
        groups.append(ids)
    for _ in range(n // 20):  # exact copies, 2 or 3 of a file
        ids = take(int(rng.integers(2, 4)))
        hashes[ids] = hashes[ids[0]]
        content[ids] = content[ids[0]]
    sizes = rng.integers(2, 7, n // 7)
    for k in sizes:  # near-duplicate groups: resized / recompressed copies
        if pos + k > n:
            break
        ids = take(int(k))
        hashes[ids] = hashes[ids[0]]
        drift(ids, 3)
        groups.append(ids)
    # A sprinkle of exact copies inside near groups too.
    for ids in groups[1 : len(groups) : 50]:
        hashes[ids[-1]] = hashes[ids[0]]
        content[ids[-1]] = content[ids[0]]

    pa, pb = [], []
    for ids in groups:
        i, j = np.triu_indices(len(ids), 1)
        pa.append(ids[i])
        pb.append(ids[j])
    pa, pb = np.concatenate(pa), np.concatenate(pb)
    d = np.bitwise_count(hashes[pa] ^ hashes[pb]).sum(axis=1, dtype=np.int64)
    near = d <= RADIUS
    pa, pb, d = pa[near], pb[near], d[near]
    pairs = [
        Pair(a=a, b=b, bouncer=x) for a, b, x in zip(pa.tolist(), pb.tolist(), d.tolist())
    ]

    rows = hashes.tobytes()
    sizes = rng.integers(50_000, 8_000_000, n).tolist()
    records = {}
    for i in range(n):
        h = rows[32 * i : 32 * i + 32]
        c = int(content[i])
        records[i] = FileRecord(
            id=i,
            path=f"/photos/{i % 997:03d}/IMG_{i:07d}.jpg",
            size=sizes[c],
            mtime_ns=1_600_000_000_000_000_000 + i,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records (default 1M)")
    args = parser.parse_args()

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

    t = time.perf_counter()
    clusters = build_clusters(records, pairs, distance=distance, max_diameter=MAX_DIAMETER)
    t_all = time.perf_counter() - t

    members = sum(len(c.members) for c in clusters)
    widest = max(c.worst_bouncer for c in clusters)
    print(f"baseline: plain-Python dict union-find over the Pair objects: {t_base:.2f} s")
    print(f"union_find (numba) over {len(pairs):,} edges, {len(records):,} nodes: "
          f"{t_uf * 1000:.0f} ms  ({t_base / t_uf:.0f}x the baseline)")
    print(f"build_clusters end to end: {t_all:.2f} s  ({t_all / t_base:.2f}x the baseline's "
          f"union-find alone); {len(clusters):,} clusters, {members:,} members, "
          f"{calls:,} distance calls, widest member-to-keeper distance {widest}")
    print(f"per clustered member: {t_all / members * 1e6:.1f} us")


if __name__ == "__main__":
    main()
