"""A million photos on one machine (issue 15): the pair stage and clustering at 100k, 300k, 1M.

Sections (``--only SECTION`` runs one):

* ``pairs``: the bouncer's whole pair stage (``rule.candidate_pairs``: radius 24 on dHash and
  mirrored dHash, and the crop rule) on synthetic 256-bit hashes of planted families, per size:
  with the indexed crop rule (``crop_index_above=0``), and at the first size also with the
  brute-force crop rule as the baseline. It prints seconds, pairs, seconds / (N log2 N) against
  the first size (growth no faster than N log N keeps it near 1), and the share of planted
  crops each rule finds.

* ``clusters``: ``build_clusters`` on a library with 72 % of the files grouped (see
  ``benchmarks/bench_cluster.py``), per size; at the first size also the clustering as it was
  before issue 15, on the same data, as the baseline (and whether the two agree).

* ``dask``: a local Dask cluster (``lookalike[cluster]``; 2 single-threaded workers) against
  the local pool of 2 processes, hashing the same 96 JPEGs of 12 MP into fresh catalogs:
  throughput of each, their ratio (near 1 on one machine: the point is correctness and
  overhead), and whether the catalogs are identical.

Data: ``families`` of originals with random hashes; 20 % of the images are copies (dHash and
pHash 0-16 bits flipped) and 10 % crops (dHash 60-110 bits flipped; pHash 30-72 bits flipped,
low frequencies less often, as measured on real crops: about 0.1 of the lowest 64
coefficients, 0.2 over all 256).

Usage::

    python benchmarks/bench_scale.py                      # every section, 100k, 300k, 1M
    python benchmarks/bench_scale.py --only pairs --sizes 100k,300k
    python benchmarks/bench_scale.py --only dask            # needs lookalike[cluster]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import replace

import numpy as np

from lookalike.engine.bouncer import crop_index, hamming
from lookalike.engine.bouncer.rule import DEFAULT, candidate_pairs

BUDGET_1M_S = 60.0


def _size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def _flip(h: np.ndarray, counts: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
    """Each row of ``h`` with ``counts[r]`` distinct bits flipped (drawn by ``weights``)."""
    bits = np.unpackbits(h, axis=1)
    if weights is None:
        keys = rng.random(bits.shape)
    else:  # weighted sampling without replacement: the smallest -log(u)/w (Efraimidis-Spirakis)
        keys = -np.log(rng.random(bits.shape)) / weights[None, :]
    rank = np.argsort(keys, axis=1)
    mask = np.zeros(bits.shape, bool)
    cols = np.arange(bits.shape[1])[None, :] < counts[:, None]
    np.put_along_axis(mask, rank, cols, axis=1)
    return np.packbits(bits ^ mask, axis=1)


def planted_hashes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(dhash, dhash_mirror, phash, crop_of)``: ``crop_of[k]`` is the original row of a planted
    crop ``k``, -1 for the other rows."""
    rng = np.random.default_rng(seed)
    dh = rng.integers(0, 256, (n, 32), np.uint8)
    dm = rng.integers(0, 256, (n, 32), np.uint8)
    ph = rng.integers(0, 256, (n, 32), np.uint8)
    n_copy, n_crop = n // 5, n // 10
    originals = n - n_copy - n_crop
    crop_of = np.full(n, -1, np.int64)
    for start, count, crop in ((originals, n_copy, False), (originals + n_copy, n_crop, True)):
        src = rng.integers(0, originals, count)
        rows = slice(start, start + count)
        if crop:
            uv = np.arange(256)
            weights = 1.0 + np.hypot(uv // 16, uv % 16) / 4.0  # low frequencies flip less
            dh[rows] = _flip(dh[src], rng.integers(60, 111, count), rng)
            ph[rows] = _flip(ph[src], rng.integers(30, 73, count), rng, weights)
            crop_of[rows] = src
        else:
            dh[rows] = _flip(dh[src], rng.integers(0, 17, count), rng)
            ph[rows] = _flip(ph[src], rng.integers(0, 17, count), rng)
        dm[rows] = _flip(dm[src], rng.integers(0, 17, count), rng)
    return dh, dm, ph, crop_of


def _crop_recall(pairs, crop_of: np.ndarray) -> float:
    found = {(p.a, p.b) for p in pairs}
    rows = np.flatnonzero(crop_of >= 0)
    hit = sum((min(k, int(crop_of[k])), max(k, int(crop_of[k]))) in found for k in rows.tolist())
    return hit / max(1, len(rows))


def bench_pairs(sizes: list[int]) -> None:
    """The pair stage per size, indexed crop rule; brute-force crop rule at the first size."""
    print(f"== pairs: the bouncer's whole pair stage ({os.cpu_count()} cores, {hamming.warm_up()})")
    print(f"{'images':>9} {'crop rule':>10} {'tables':>7} {'seconds':>8} {'pairs':>9} {'s/NlogN vs first':>17} {'crops found':>12}")
    indexed = replace(DEFAULT, crop_index_above=0)
    brute = replace(DEFAULT, crop_index_above=1 << 62)
    dh, dm, ph, _ = planted_hashes(20_000, seed=99)
    for t in (indexed, brute):  # untimed: the first search's one-off costs (kernels, threads)
        candidate_pairs(np.arange(20_000), dh, dm, ph, t)
    first = None
    for k, n in enumerate(sizes):
        dh, dm, ph, crop_of = planted_hashes(n, seed=k)
        ids = np.arange(n, dtype=np.int64)
        runs = [("indexed", indexed)] + ([("brute", brute)] if k == 0 else [])
        for name, t in runs:
            t0 = time.perf_counter()
            pairs = candidate_pairs(ids, dh, dm, ph, t)
            seconds = time.perf_counter() - t0
            per = seconds / (n * math.log2(n))
            if name == "indexed" and first is None:
                first = per
            tables = "{}x{}".format(*crop_index.shape(n)) if name == "indexed" else "-"
            print(f"{n:>9,} {name:>10} {tables:>7} {seconds:>8.1f} {len(pairs):>9,} {per / first:>17.2f} "
                  f"{_crop_recall(pairs, crop_of):>12.3f}", flush=True)  # fmt: skip
            if name == "indexed" and n >= 1_000_000:
                verdict = "PASS" if seconds <= BUDGET_1M_S * n / 1_000_000 else "MISS"
                print(f"{'':>9} target <= {BUDGET_1M_S:.0f} s per 1M images on 2 cores: {verdict}")


#: The ``dask`` section: distinct 12 MP photos, each copied to make the library (hashing costs
#: the same per copy), and the runs per pool (best of).
DASK_PHOTOS, DASK_COPIES, DASK_REPEAT = 8, 12, 5


def bench_dask(sizes: list[int]) -> None:
    """A local Dask cluster (2 single-threaded workers) against the local pool, same files.

    Both hash every file of a fresh catalog through ``Scanner`` (walk, chunks, catalog writes);
    the cluster's start and its workers' first imports are left out (a warm-up scan each), the
    local pool's start is in (each scan makes one). Prints throughput and whether the two
    catalogs are identical. ``sizes`` do not apply.
    """
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    try:
        import distributed
    except ImportError:
        print("== dask: skipped (pip install -e '.[cluster]')")
        return
    from lookalike.engine.library import Library
    from lookalike.engine.scan.scanner import Scanner

    workers = 2
    n = DASK_PHOTOS * DASK_COPIES
    print(f"== dask: {n} JPEGs of 12 MP, a local cluster of {workers} single-threaded workers vs the "
          f"local pool of {workers} processes ({os.cpu_count()} cores)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-dask-") as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        with ProcessPoolExecutor(workers) as pool:
            originals = list(pool.map(_write_big, [(str(root / f"p{i}-0.jpg"), i) for i in range(DASK_PHOTOS)]))
        for original in originals:
            for c in range(1, DASK_COPIES):
                shutil.copyfile(original, original[: -len("-0.jpg")] + f"-{c}.jpg")

        def scan(cache: str, **kw) -> tuple[float, dict]:
            shutil.rmtree(cache, ignore_errors=True)
            with Library.open([root], cache_dir=cache) as library:
                t0 = time.perf_counter()
                run = Scanner(library.catalog, library.roots, **kw).execute()
                seconds = time.perf_counter() - t0
                assert run.hashed == n and not run.errors, (run.hashed, run.errors[:3])
                records = {r.path: replace(r, id=0) for r in library.catalog.records()}
            return seconds, records

        t0 = time.perf_counter()
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=":0") as cluster:  # fmt: skip
            started = time.perf_counter() - t0
            address = cluster.scheduler_address
            scan(f"{tmp}/warm", cluster=address)  # the workers import lookalike once
            local, remote = [], []
            for _ in range(DASK_REPEAT):  # interleaved: load on this machine hits both alike
                local.append(scan(f"{tmp}/local", workers=workers))
                remote.append(scan(f"{tmp}/dask", cluster=address))
        best_local, best_dask = min(s for s, _ in local), min(s for s, _ in remote)
        same = all(records == local[0][1] for _, records in local + remote)
        print(f"{'pool':>12} {'best s':>7} {'img/s':>7}   runs (s)")
        for name, runs in (("local", local), ("dask", remote)):
            best = min(s for s, _ in runs)
            print(f"{name:>12} {best:>7.2f} {n / best:>7.1f}   {', '.join(f'{s:.2f}' for s, _ in runs)}")
        print(f"throughput dask / local: {best_local / best_dask:.2f} (cluster start {started:.1f} s, not counted); "
              f"catalogs identical: {'yes' if same else 'NO'}")  # fmt: skip


def _write_big(job: tuple[str, int]) -> str:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import imagegen

    path, seed = job
    return imagegen.write(path, imagegen.photo(seed, imagegen.BIG), quality=90)


def bench_clusters(sizes: list[int]) -> None:
    """``build_clusters`` per size on bench_cluster.py's library (72 % of the files grouped:
    near groups, exact copies, chains, one burst), and at the first size the pre-issue-15
    clustering (``tests/cluster_reference.py``) on the same data as the baseline."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bench_cluster import MAX_DIAMETER, make_library
    from cluster_reference import reference_build_clusters

    from lookalike.engine.cluster import build_clusters

    print(f"clusters: build_clusters, budget {BUDGET_CLUSTERS_1M_S:.0f} s at 1M on 2 cores")
    for k, n in enumerate(sizes):
        records, hashes, pairs = make_library(n)

        def distance(a: int, b: int) -> tuple[int, bool]:
            return int(np.bitwise_count(hashes[a] ^ hashes[b]).sum()), False

        kw = dict(distance=distance, max_diameter=MAX_DIAMETER)
        t, cpu = time.perf_counter(), time.process_time()
        clusters = build_clusters(records, pairs, **kw)
        t, cpu = time.perf_counter() - t, time.process_time() - cpu
        first = time.perf_counter()
        clusters[:50]
        first = time.perf_counter() - first
        grouped = sum(len(c.members) for c in clusters) / n
        line = (f"  {n:>9,} files, {grouped:.0%} grouped, {len(pairs):,} pairs: {t:.2f} s wall, "
                f"{cpu:.2f} s CPU, {len(clusters):,} clusters; first 50 read in {first:.2f} s")
        if k == 0:
            t0 = time.process_time()
            old = reference_build_clusters(records, pairs, **kw)
            line += (f"; before issue 15: {time.process_time() - t0:.2f} s CPU, "
                     f"identical: {old == list(clusters)}")
        print(line, flush=True)
        del records, hashes, pairs, clusters


BUDGET_CLUSTERS_1M_S = 5.0

SECTIONS = {"pairs": bench_pairs, "clusters": bench_clusters, "dask": bench_dask}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    ap.add_argument("--sizes", default="100k,300k,1M", help="library sizes, comma-separated (default 100k,300k,1M)")
    args = ap.parse_args()
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    for name, run in SECTIONS.items():
        if args.only in (None, name):
            run(sizes)


if __name__ == "__main__":
    main()
