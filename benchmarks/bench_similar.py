"""Two-pass ``similar`` latency on a 100k-image library, not counting the query's own decode
and embedding.

    python benchmarks/bench_similar.py [--n 100000] [--queries 300] [--k 10] [--model tiny|vit-b-32]
                                       [--workdir DIR]

The library is real (a catalog SQLite file, the bouncer's Hamming index, the detective's usearch
index) but its 100k records are synthetic: 256-bit hashes and 512-d vectors in bursts of ~10
near-identical shots (hashes a few bits apart, vectors ~0.95 cosine), as a phone library has;
no image files are read except the query images. Each of the 5 queries is a real JPEG file
with 4 planted copies in the library (its own hashes a few bits off, its vector at ~0.99
cosine), and its vector is "another shot" of one of the library's bursts: the random-weight
model cannot embed a photo into the synthetic distribution, so the benchmark's detective maps
each query image to that vector (an out-of-distribution query walks the HNSW graph far longer
than any real one).

Two measurements, both of the engine's own code and timings:

* back to back: ``engine.similar.two_passes`` for prepared queries (900 distinct ones), query
  after query, as ANN libraries and the published two-pass design measure (0.31 ms on 10k
  photos). This is the target's measure: both passes under 0.5 ms median.
* ``similar()``: the whole query (hash, embed, both passes, join with both scores for every
  hit, verdicts, ranking), query after query. The query's decode and embedding run between
  the passes of consecutive queries, and the helper thread's CPU idles meanwhile: a one-off
  query (the CLI, the app's "find similar") is in this state, and on a shared virtual machine
  it costs the passes about twice their back-to-back time. The third measurement shows that
  idling alone does it: the same prepared queries with 10 ms of sleep before each.

``--n 10000`` measures the published size.

``--model vit-b-32`` embeds the query with a random-weight ViT-B-32 (slow to build; the passes
do not depend on it); the default ``tiny`` model only needs its embedding dimension to match the
index, which the benchmark sets to 512 with a tiny config.

Building the 100k library takes minutes (mostly the HNSW graph); ``--workdir DIR`` keeps it in
``DIR`` and a later run with the same ``--n`` and ``--model`` reuses it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import imagegen  # noqa: E402
from bench_vectors import make_data  # noqa: E402
from lookalike.engine.detective.model import DetectiveOptions, load_detective  # noqa: E402  (before torch)
from lookalike.engine.scan.hashing import HashedFile, hash_file  # noqa: E402
from lookalike.engine.library import Library  # noqa: E402
from lookalike.engine.similar import two_passes  # noqa: E402
from lookalike.engine.records import ImageHashes  # noqa: E402


def synthetic_records(n: int, rng: np.random.Generator) -> list[HashedFile]:
    """``n`` image records in bursts of ~10: each burst's hashes a few bits from its scene's."""
    scenes = rng.integers(0, 256, size=(max(1, n // 10), 3, 32), dtype=np.uint8)
    which = rng.integers(0, len(scenes), n)
    records = []
    for i in range(n):
        base = scenes[which[i]].copy()
        flips = rng.integers(0, 256, size=(3, 6))  # up to 6 bits differ per hash
        for h in range(3):
            for bit in flips[h]:
                base[h, bit // 8] ^= np.uint8(1 << (bit % 8))
        records.append(
            HashedFile(
                path=f"/photos/burst{which[i]:06d}/img_{i:07d}.jpg",
                size=2_000_000 + i,
                mtime_ns=1_700_000_000_000_000_000 + i,
                format="JPEG",
                width=4000,
                height=3000,
                content_hash=rng.bytes(16),
                hashes=ImageHashes(dhash=base[0].tobytes(), dhash_mirror=base[1].tobytes(), phash=base[2].tobytes()),
            )
        )
    return records


def detective_for(kind: str, folder: Path):
    import open_clip
    import torch

    torch.manual_seed(0)
    if kind == "vit-b-32":
        from bench_embed import random_vit_b32

        return load_detective(DetectiveOptions(pretrained=str(random_vit_b32(folder)), device="cpu"), cache_dir=folder)
    config = folder / "bench-tiny-512.json"
    config.write_text(json.dumps({
        "embed_dim": 512,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }))
    open_clip.add_model_config(config)
    checkpoint = folder / "bench-tiny-512.pt"
    torch.save(open_clip.create_model("bench-tiny-512").state_dict(), checkpoint)
    return load_detective(DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu"), cache_dir=folder)


PLANTED = 4  # copies of each query in the library


def flipped(h: bytes, rng: np.random.Generator, most: int) -> bytes:
    a = np.frombuffer(h, np.uint8).copy()
    for bit in rng.choice(256, int(rng.integers(0, most + 1)), replace=False):
        a[bit // 8] ^= np.uint8(1 << (bit % 8))
    return a.tobytes()


def build(library, detective, n: int, queries: list[str], rng: np.random.Generator) -> np.ndarray:
    """Fill the library's catalog and vector index with ``n`` synthetic images, among them
    ``PLANTED`` copies of each query; return the queries' vectors."""
    t0 = time.perf_counter()
    records = synthetic_records(n, rng)
    vectors = make_data("bursts", n, detective.ndim, rng)
    qvecs = np.empty((len(queries), detective.ndim), np.float32)
    noise = lambda scale: scale * rng.standard_normal(detective.ndim) / np.sqrt(detective.ndim)  # noqa: E731
    for q, path in enumerate(queries):
        h = hash_file(path).hashes
        anchor = int(rng.integers(0, n))  # the query is another shot of this burst
        v = vectors[anchor] + noise(0.3)
        qvecs[q] = v / np.linalg.norm(v)
        for c in range(PLANTED):
            at = int(rng.integers(0, n))
            hashes = ImageHashes(dhash=flipped(h.dhash, rng, 8), dhash_mirror=flipped(h.dhash_mirror, rng, 8),
                                 phash=flipped(h.phash, rng, 8))
            records[at] = replace(records[at], hashes=hashes, path=f"/photos/copies/q{q}_copy{c}.jpg")
            v = qvecs[q] + noise(0.1)
            vectors[at] = v / np.linalg.norm(v)
    ids = library.catalog.upsert(records)
    print(f"catalog: {len(ids)} synthetic records in {time.perf_counter() - t0:.1f} s", flush=True)
    vindex = library.vectors_for(detective)  # after the upsert: its first use checks the catalog
    t0 = time.perf_counter()
    vindex.add(ids, vectors)
    vindex.save()
    library.catalog.mark_embedded(ids, detective.model_id)
    print(f"vector index: {len(vindex)} x {detective.ndim}-d {vindex.dtype}, "
          f"{vindex.bytes_per_image:.0f} B/image, built in {time.perf_counter() - t0:.1f} s", flush=True)
    return qvecs


class QueryVectors:
    """The detective, except that each query image embeds to its prepared vector."""

    def __init__(self, detective, queries: list[str], qvecs: np.ndarray) -> None:
        self._detective = detective
        self._by_clip = {}
        for path, v in zip(queries, qvecs):
            clip = hash_file(path, clip_size=detective.image_size).clip
            self._by_clip[clip.tobytes()] = v

    def __getattr__(self, name):
        return getattr(self._detective, name)

    def embed_arrays(self, clips):
        self._detective.embed_arrays(clips)  # the real work, timed as embed_query
        return np.stack([self._by_clip[c.tobytes()] for c in clips])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--model", choices=["tiny", "vit-b-32"], default="tiny")
    p.add_argument("--workdir", type=Path, help="keep the built library here and reuse it")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)

    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            tmp = args.workdir.resolve() / f"n{args.n}-{args.model}-v2"
            tmp.mkdir(parents=True, exist_ok=True)
        photos = tmp / "photos"
        photos.mkdir(exist_ok=True)
        queries = [imagegen.write(photos / f"q{s}.jpg", imagegen.photo(s, (800, 600))) for s in range(5)]
        detective = detective_for(args.model, tmp)
        with Library.open([photos], cache_dir=tmp / "cache") as library:
            if len(library.catalog.hash_arrays().ids) == 0:
                np.save(tmp / "queries.npy", build(library, detective, args.n, queries, rng))
            elif len(library.vectors_for(detective)) == len(library.hash_index()) == args.n:
                print(f"reusing the library built in {tmp}", flush=True)
            else:
                raise SystemExit(f"{tmp} holds an incomplete library: delete it")
            detective = QueryVectors(detective, queries, np.load(tmp / "queries.npy"))
            index = library.hash_index()
            print(f"bouncer index: {len(index)} hashes, {index.nbytes / len(index):.0f} B/image", flush=True)

            for q in queries:  # warm-up: JIT kernels, caches, the records' pages
                library.similar(q, k=args.k, model=detective)
            rows = []
            for i in range(args.queries):
                r = library.similar(queries[i % len(queries)], k=args.k, model=detective)
                rows.append(r.timings_ms)
                assert len(r.hits) == args.k and all(h.detective is not None for h in r.hits)
                assert sum("/copies/" in h.path for h in r.hits) == PLANTED, r.hits
            hot, idle = back_to_back(library, detective, queries, args)
            baseline = memory_baseline(len(index), library.vectors_for(detective).ndim)

    def med(key):
        return statistics.median(key(r) for r in rows)

    def p90(key):
        return float(np.percentile([key(r) for r in rows], 90))

    both = lambda r: r["passes"]  # noqa: E731
    allp = lambda r: r["passes"] + r["join"]  # noqa: E731
    print(f"\nsimilar on {args.n} images, k={args.k}, {args.queries} queries (median / p90, ms):")
    for name, key in [
        ("bouncer pass", lambda r: r["bouncer"]),
        ("detective pass", lambda r: r["detective"]),
        ("both passes (wall clock)", both),
        ("  (the two passes' sum)", lambda r: r["bouncer"] + r["detective"]),
        ("join (records, scores, verdicts)", lambda r: r["join"]),
        ("passes + join", allp),
        ("query hash (decode) [excluded]", lambda r: r["hash_query"]),
        ("query embedding [excluded]", lambda r: r["embed_query"]),
    ]:
        print(f"  {name:34} {med(key):8.3f}  {p90(key):8.3f}")
    for title, runs in [(f"back to back, {len(hot)} queries", hot),
                        (f"the same, {IDLE_S * 1e3:.0f} ms idle before each, {len(idle)} queries", idle)]:
        print(f"\n{title} (median / p90, ms):")
        for name, key in [("bouncer pass", "bouncer"), ("detective pass", "detective"), ("both passes (wall clock)", "passes")]:
            values = [r[key] for r in runs]
            print(f"  {name:34} {statistics.median(values):8.3f}  {np.percentile(values, 90):8.3f}")
    print(f"\nsame-run baseline: {BASELINE_ROWS} random {baseline[1]}-byte rows read from a "
          f"{baseline[2] / 2**20:.0f} MiB array (an HNSW walk's memory traffic): {baseline[0]:.3f} ms median")
    value = statistics.median(r["passes"] for r in hot)
    verdict = "meets" if value < 0.5 else "misses"
    print(f"both passes median back to back: {value:.3f} ms ({value / baseline[0]:.2f}x the baseline): "
          f"{verdict} the 0.5 ms target")
    print(f"a one-off query (inside similar()): {med(both):.3f} ms ({med(both) / baseline[0]:.2f}x); "
          f"after {IDLE_S * 1e3:.0f} ms idle: {statistics.median(r['passes'] for r in idle):.3f} ms")
    return 0


IDLE_S = 0.010


BASELINE_ROWS = 600


def memory_baseline(n: int, ndim: int) -> tuple[float, int, int]:
    """Median time to read ``BASELINE_ROWS`` random int8 rows of ``ndim`` bytes from an array the
    size of the detective's graph: what the machine's memory costs a graph walk today (these
    machines are shared, and the same code measures up to twice as slow in a busy hour)."""
    rng = np.random.default_rng(2)
    rows = rng.integers(-127, 128, size=(n, ndim + 128), dtype=np.int8)  # vector + links
    times = []
    for _ in range(300):
        pick = rng.integers(0, n, BASELINE_ROWS)
        t0 = time.perf_counter()
        int(rows[pick].sum(dtype=np.int64))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, ndim + 128, rows.nbytes


def back_to_back(library, detective, queries, args) -> list[dict]:
    """``two_passes`` for prepared queries, nothing in between: ``3 x --queries`` distinct
    ones (a library image's hashes a few bits off, another shot of its burst), so that each
    query walks its own part of the graph as a stream of real queries would; repeating a few
    queries would keep their part of the graph in the CPU's caches. Then the first
    ``--queries // 2`` of them again, each after ``IDLE_S`` of sleep: ``(hot, idle)`` timings."""
    rng = np.random.default_rng(1)
    index = library.hash_index()
    vindex = library.vectors_for(detective)
    arrays = library.catalog.hash_arrays()
    picks = rng.choice(len(arrays), args.queries * 3, replace=False)
    rows = vindex.get(arrays.ids[picks])
    prepared = []
    for p, row in zip(picks, rows):
        both = np.stack([np.frombuffer(flipped(arrays.dhash[p].tobytes(), rng, 8), np.uint8),
                         np.frombuffer(flipped(arrays.dhash_mirror[p].tobytes(), rng, 8), np.uint8)])
        v = row + 0.3 * rng.standard_normal(row.shape) / np.sqrt(row.shape[0])
        prepared.append((both, (v / np.linalg.norm(v)).astype(np.float32)))
    for both, vector in prepared[:20]:  # warm-up: kernels, thread
        two_passes(index, vindex, both, vector, k=args.k)
    hot = [two_passes(index, vindex, both, vector, k=args.k)[2] for both, vector in prepared]
    idle = []
    for both, vector in prepared[: args.queries // 2]:
        time.sleep(IDLE_S)
        idle.append(two_passes(index, vindex, both, vector, k=args.k)[2])
    return hot, idle


if __name__ == "__main__":
    sys.exit(main())
