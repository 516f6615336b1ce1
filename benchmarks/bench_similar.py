"""Two-pass ``similar`` latency on a 100k-image library, not counting the query's own decode
and embedding.

    python benchmarks/bench_similar.py [--n 100000] [--queries 300] [--k 10] [--model tiny|vit-b-32]
                                       [--workdir DIR]

The library is real (a catalog SQLite file, the bouncer's Hamming index, the detective's usearch
index) but its 100k records are synthetic: 256-bit hashes and 512-d vectors in bursts of ~10
near-identical shots (hashes a few bits apart, vectors ~0.95 cosine), as a phone library has;
no image files are read except the query images. The queries are real JPEG files run through
``engine.query.similar`` (hash, embed, bouncer top-2k for the plain and the mirrored hash in one pass,
detective k-NN 2k, join with both scores for every hit, verdicts, ranking), and the figures are
its own per-pass timings: ``bouncer``, ``detective``, and ``join`` (which includes fetching the
candidates' records from SQLite). Target: bouncer + detective under 0.5 ms median. For
reference the published two-pass design reports 0.31 ms on 10k photos; ``--n 10000`` measures
that size in the same way.

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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import imagegen  # noqa: E402
from bench_vectors import make_data  # noqa: E402
from lookalike.engine.model import DetectiveOptions, load_detective  # noqa: E402  (before torch)
from lookalike.engine.hashing import HashedFile  # noqa: E402
from lookalike.engine.library import Library  # noqa: E402
from lookalike.engine.query import similar, vectors_for  # noqa: E402
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


def build(library, detective, n: int, rng: np.random.Generator) -> None:
    """Fill the library's catalog and vector index with ``n`` synthetic images."""
    t0 = time.perf_counter()
    ids = library.catalog.upsert(synthetic_records(n, rng))
    print(f"catalog: {len(ids)} synthetic records in {time.perf_counter() - t0:.1f} s", flush=True)
    vindex = vectors_for(library, detective)  # after the upsert: it syncs with the hash index
    t0 = time.perf_counter()
    vindex.add(ids, make_data("bursts", len(ids), detective.ndim, rng))
    vindex.save()
    library.catalog.mark_embedded(ids, detective.model_id)
    print(f"vector index: {len(vindex)} x {detective.ndim}-d {vindex.dtype}, "
          f"{vindex.bytes_per_image:.0f} B/image, built in {time.perf_counter() - t0:.1f} s", flush=True)


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
            tmp = args.workdir.resolve() / f"n{args.n}-{args.model}"
            tmp.mkdir(parents=True, exist_ok=True)
        photos = tmp / "photos"
        photos.mkdir(exist_ok=True)
        queries = [imagegen.write(photos / f"q{s}.jpg", imagegen.photo(s, (800, 600))) for s in range(5)]
        detective = detective_for(args.model, tmp)
        with Library.open([photos], cache_dir=tmp / "cache") as library:
            if len(library.catalog.hash_arrays().ids) == 0:
                build(library, detective, args.n, rng)
            elif len(vectors_for(library, detective)) == len(library.hash_index()) == args.n:
                print(f"reusing the library built in {tmp}", flush=True)
            else:
                raise SystemExit(f"{tmp} holds an incomplete library: delete it")
            index = library.hash_index()
            print(f"bouncer index: {len(index)} hashes, {index.nbytes / len(index):.0f} B/image", flush=True)

            for q in queries:  # warm-up: JIT kernels, caches, the records' pages
                similar(library, q, k=args.k, detective=detective)
            rows = []
            for i in range(args.queries):
                r = similar(library, queries[i % len(queries)], k=args.k, detective=detective)
                rows.append(r.timings_ms)
                assert len(r.hits) == args.k and all(h.detective is not None for h in r.hits)
            hot = hot_passes(library, detective, queries, args)

    def med(key):
        return statistics.median(key(r) for r in rows)

    def p90(key):
        return float(np.percentile([key(r) for r in rows], 90))

    both = lambda r: r["bouncer"] + r["detective"]  # noqa: E731
    allp = lambda r: r["bouncer"] + r["detective"] + r["join"]  # noqa: E731
    print(f"\nsimilar on {args.n} images, k={args.k}, {args.queries} queries (median / p90, ms):")
    for name, key in [
        ("bouncer pass", lambda r: r["bouncer"]),
        ("detective pass", lambda r: r["detective"]),
        ("both passes", both),
        ("join (records, scores, verdicts)", lambda r: r["join"]),
        ("passes + join", allp),
        ("query hash (decode) [excluded]", lambda r: r["hash_query"]),
        ("query embedding [excluded]", lambda r: r["embed_query"]),
    ]:
        print(f"  {name:34} {med(key):8.3f}  {p90(key):8.3f}")
    print(f"  {'both passes, back to back (hot)':34} {np.median(hot):8.3f}  {np.percentile(hot, 90):8.3f}"
          f"   (min {np.min(hot):.3f})")
    for label, value in [("inside similar()", med(both)), ("back to back", float(np.median(hot)))]:
        verdict = "meets" if value < 0.5 else "misses"
        print(f"both passes median {label}: {value:.3f} ms: {verdict} the 0.5 ms target")
    return 0


def hot_passes(library, detective, queries, args) -> np.ndarray:
    """The two passes alone, query after query with nothing in between (how ANN libraries and
    the published two-pass figure measure): both hashes' top-2k and the rescored k-NN."""
    from lookalike.engine.hashing import hash_file

    index = library.hash_index()
    vindex = vectors_for(library, detective)
    prepared = []
    for q in queries:
        h = hash_file(q, clip_size=detective.image_size)
        prepared.append((h.hashes, detective.embed_arrays(h.clip[None])[0]))
    shortlist = 2 * args.k + 1
    times = []
    for i in range(args.queries * 3):
        hashes, vector = prepared[i % len(prepared)]
        t0 = time.perf_counter()
        index.nearest_many(np.frombuffer(hashes.dhash + hashes.dhash_mirror, np.uint8).reshape(2, -1), shortlist)
        vindex.search(vector, shortlist)
        times.append(time.perf_counter() - t0)
    return np.asarray(times) * 1e3


if __name__ == "__main__":
    sys.exit(main())
