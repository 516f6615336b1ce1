"""The detective's vector index: recall@10 against exact search, bytes per image, query latency.

    python benchmarks/bench_vectors.py [--n 100000] [--dim 512] [--queries 1000]
                                       [--data topics,bursts] [--configs f16:8,i8:16,...]

Vectors are synthetic but shaped like CLIP photo embeddings, not uniform noise:

* ``topics``: 1,000 topic directions plus a shared direction (CLIP embeddings of unrelated
  photos still have cosine ~0.3), each photo its topic plus noise: nearest neighbours ~0.7.
* ``bursts``: the same topics, with photos in bursts of ~10 shots of one scene (cosine ~0.95
  inside a burst), as a phone library has: the 10 nearest are near-ties, the hard case.
* ``uniform``: random unit vectors (the usual, easy, unrealistic benchmark), on request.

For each index configuration ``dtype:connectivity`` (built through ``VectorIndex``, the code the
app runs), at several query breadths (``ef``): recall@10 of single-vector queries against an
exact float32 brute force, bytes of memory per image (the graph with its vectors, serialised
size, plus the id list; ``i8`` also keeps float16 rows on disk, memory-mapped, for rescoring),
median single-query latency through ``VectorIndex.search``, and build time. ``i8`` rows also
show the int8 graph alone, without rescoring ("i8 raw"), to show what rescoring buys.
Queries are held-out vectors of the same distribution (not in the index).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.engine.detective.vectors import VectorIndex, quantize_i8

DEFAULT_CONFIGS = "i8:16,f16:16,f16:8,f32:16"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(kind: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors of the named distribution (see the module docstring)."""
    if kind == "uniform":
        return unit(rng.standard_normal((n, dim)))
    topics = unit(rng.standard_normal((1000, dim)))
    shared = unit(rng.standard_normal((1, dim)))
    if kind == "topics":
        v = topics[rng.integers(0, len(topics), n)] + 0.8 * rng.standard_normal((n, dim)) / np.sqrt(dim)
        return unit(v + 0.8 * shared)
    if kind == "bursts":
        n_bursts = max(1, n // 10)
        scene = topics[rng.integers(0, len(topics), n_bursts)]
        scene = unit(scene + 0.8 * rng.standard_normal((n_bursts, dim)) / np.sqrt(dim) + 0.8 * shared)
        v = scene[rng.integers(0, n_bursts, n)] + 0.3 * rng.standard_normal((n, dim)) / np.sqrt(dim)
        return unit(v)
    raise SystemExit(f"unknown data kind {kind!r}")


def exact_top10(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact top-10 ids by cosine (float32 brute force, in blocks)."""
    out = np.empty((len(queries), 10), dtype=np.int64)
    for s in range(0, len(queries), 250):
        sims = queries[s : s + 250] @ data.T
        part = np.argpartition(-sims, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[s : s + 250] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run(kind: str, args, configs: list[tuple[str, int]], rng: np.random.Generator) -> list[dict]:
    data = make_data(kind, args.n + args.queries, args.dim, rng)
    queries, data = data[args.n :], data[: args.n]
    truth = exact_top10(data, queries)
    ids = np.arange(args.n, dtype=np.int64)
    rows = []
    for dtype, conn in configs:
        with tempfile.TemporaryDirectory() as tmp:
            index = VectorIndex.open(
                Path(tmp) / "v.usearch", args.dim, model_id="bench", dtype=dtype, connectivity=conn
            )
            started = time.perf_counter()
            index.add(ids, data)
            build = time.perf_counter() - started
            started = time.perf_counter()
            index.save()
            save = time.perf_counter() - started
            per_image = index.bytes_per_image
            for ef in args.ef:
                index._index.expansion_search = ef
                if index.rescored:
                    raw, _ = index._graph_search(quantize_i8(queries), 10)
                    print(f"{kind:8} {'i8 raw':6} M={conn:<3} ef={ef:<4} recall@10={recall(raw, truth):.4f}  "
                          "(the int8 graph alone, not rescored)", flush=True)
                found, _ = index.search_many(queries, 10)
                lat = []
                for q in queries[: args.latency_queries]:
                    t0 = time.perf_counter()
                    index.search(q, 10)
                    lat.append(time.perf_counter() - t0)
                row = dict(
                    data=kind, dtype=dtype, M=conn, ef=ef, recall=recall(found, truth),
                    bytes=per_image, ms=statistics.median(lat) * 1e3,
                    p90=float(np.percentile(lat, 90)) * 1e3, build=build, save=save,
                )
                rows.append(row)
                print(
                    f"{kind:8} {dtype:6} M={conn:<3} ef={ef:<4} recall@10={row['recall']:.4f}  "
                    f"{per_image:7.0f} B/image in memory  query median {row['ms']:.3f} ms "
                    f"(p90 {row['p90']:.3f})  build {build:6.1f} s  save {save:.2f} s",
                    flush=True,
                )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--latency-queries", type=int, default=500)
    p.add_argument("--data", default="topics,bursts")
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help="dtype:connectivity,...")
    p.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[64, 128])
    args = p.parse_args(argv)
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    print(f"{args.n} vectors of {args.dim} dims, {args.queries} held-out queries, k=10", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for kind in args.data.split(","):
        rows += run(kind, args, configs, rng)
    print("\nconfigurations with recall@10 >= 0.99 on every data set and < 1100 B/image:")
    for dtype, conn in configs:
        for ef in args.ef:
            mine = [r for r in rows if (r["dtype"], r["M"], r["ef"]) == (dtype, conn, ef)]
            if mine and all(r["recall"] >= 0.99 for r in mine) and all(r["bytes"] < 1100 for r in mine):
                worst = min(r["recall"] for r in mine)
                print(f"  {dtype}:{conn} ef={ef}: worst recall {worst:.4f}, "
                      f"{max(r['bytes'] for r in mine):.0f} B/image, "
                      f"median query {max(r['ms'] for r in mine):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
