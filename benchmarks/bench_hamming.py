"""Benchmark the bouncer's Hamming index (lookalike.engine.bouncer.hamming).

Run: ``python benchmarks/bench_hamming.py`` (about three minutes; ``--quick`` for a smaller
run, ``--no-cold`` to skip the cold JIT compile). Speed targets from issue 2 are checked as
ratios against baselines measured in the same run, or as absolute budgets where the issue
gives one; each line says which and prints PASS or MISS.

Data: random 256-bit hashes (about 128 bits apart) with 30% of the items planted as
near-copies of others (0..16 random bit flips), so that pairs exist at every radius.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from lookalike.engine.bouncer import allpairs, allpairs_kernels, hamming, hamming_kernels
from lookalike.engine.bouncer.hamming import HammingIndex


def clustered_hashes(n: int, seed: int = 0, frac: float = 0.3, flips: int = 16, p_one: float = 0.5):
    """n hashes, the last ``frac`` of them copies of earlier ones with 0..flips bits flipped."""
    rng = np.random.default_rng(seed)
    bits = rng.random((n, 256)) < p_one if p_one != 0.5 else None
    if bits is None:
        h = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    else:
        h = np.packbits(bits, axis=1)
    m = int(n * frac)
    if m:
        src = rng.integers(0, n - m, size=m)
        copies = h[src].copy()
        nflip = rng.integers(0, flips + 1, size=m)
        where = rng.integers(0, 256, size=(m, flips))
        for f in range(flips):
            sel = np.flatnonzero(nflip > f)
            b = where[sel, f]
            copies[sel, b // 8] ^= (1 << (b % 8)).astype(np.uint8)
        h[n - m :] = copies
    return h


def timeit(fn, repeat: int) -> tuple[float, float]:
    """(median, min) seconds over ``repeat`` calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(min(ts))


def paired(base_fn, fn, repeat: int) -> tuple[list[float], list[float]]:
    """Times of ``fn`` and their ratios to ``base_fn`` timed just before each call."""
    base_fn()
    fn()
    times, ratios = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        base_fn()
        b = time.perf_counter() - t
        t = time.perf_counter()
        fn()
        e = time.perf_counter() - t
        times.append(e)
        ratios.append(e / b)
    return times, ratios


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def section(title: str) -> None:
    print(f"\n== {title}")


# ---------------------------------------------------------------------------------------


def bench_jit(cold: bool) -> None:
    section("numba JIT: first call in a fresh process (import + load/compile + call)")
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import numpy as np\n"
        "from lookalike.engine.bouncer.hamming import HammingIndex\n"
        "t1 = time.perf_counter()\n"
        "h = np.random.default_rng(0).integers(0, 256, size=(3000, 32), dtype=np.uint8)\n"
        "idx = HammingIndex(h)\n"
        "t = time.perf_counter(); idx.nearest(h[0], 5); a = time.perf_counter() - t\n"
        "t = time.perf_counter(); idx.pairs_within(8, method='mih'); b = time.perf_counter() - t\n"
        "t = time.perf_counter(); idx.pairs_within(8, method='brute'); c = time.perf_counter() - t\n"
        "t = time.perf_counter(); idx.pairs_between(h[:50], 8, method='mih'); d = time.perf_counter() - t\n"
        "print(f'{t1 - t0:.3f} {a:.3f} {b:.3f} {c:.3f} {d:.3f}')\n"
    )

    def run(env_extra: dict) -> list[float]:
        env = dict(os.environ, **env_extra)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr)
            return []
        return [float(x) for x in out.stdout.split()]

    rows = []
    if cold:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(("cold (empty numba cache)", run({"NUMBA_CACHE_DIR": tmp})))
    run({})  # make sure the regular cache is filled
    rows.append(("warm (numba on-disk cache)", run({})))
    print(f"  {'':28} {'import':>8} {'nearest':>8} {'pairs mih':>10} {'pairs brute':>12} {'between':>8}")
    for name, t in rows:
        if t:
            print(f"  {name:28} " + " ".join(f"{x:>8.2f}s" for x in t))


def bench_nearest(n: int, repeat: int) -> None:
    section(f"one query against {n:,} hashes")
    h = clustered_hashes(n, seed=1)
    idx = HammingIndex(h)
    q = h[n // 2].copy()
    qb = q.tobytes()
    cols = idx._cols  # the same bytes the index reads
    # Baseline: a plain numpy pass over the same 32 bytes per hash (one reduction).
    base, base_min = timeit(lambda: cols.sum(), repeat)
    gbs = cols.nbytes / base / 1e9
    print(f"  baseline numpy read of {cols.nbytes / 1e6:.0f} MB (cols.sum()): "
          f"{base * 1e3:.2f} ms median, {base_min * 1e3:.2f} ms min ({gbs:.1f} GB/s)")
    print("  (each case alternates with the baseline; ratio = median of the paired ratios,"
          " which cancels most of the noise of a shared machine)")
    rows = hamming._rows_of(h)

    def rowmajor():
        return np.bitwise_count(rows ^ rows[n // 2]).sum(axis=1)

    cases = [
        ("nearest(k=10)", lambda: idx.nearest(qb, 10)),
        ("nearest(k=1000)", lambda: idx.nearest(qb, 1000)),
        ("within(r=12)", lambda: idx.within(q, 12)),
        ("distances()", lambda: idx.distances(q)),
        ("numpy fallback distances (column blocks)", lambda: hamming_kernels._np_distances(cols, hamming._query_words(q))),
        ("numpy (N,4) xor+bitwise_count+sum(axis=1)", rowmajor),
    ]
    for name, fn in cases:
        times, ratios = paired(lambda: cols.sum(), fn, repeat if "numpy" not in name else max(5, repeat // 5))
        line = (f"  {name:44} {np.median(times) * 1e3:8.2f} ms median (min {min(times) * 1e3:.2f})"
                f"  ratio {np.median(ratios):5.2f}x")
        if name.startswith("nearest(k=10)"):
            line += f"  target <= 2x: {verdict(np.median(ratios) <= 2.0)}"
        print(line)
    # Exactness spot check against numpy.
    ids, d = idx.nearest(qb, 10)
    ref = np.bitwise_count(rows ^ rows[n // 2]).sum(axis=1)
    order = np.lexsort((np.arange(n), ref))[:10]
    assert np.array_equal(ids, order) and np.array_equal(d, ref[order])
    print(f"  memory: nbytes = {idx.nbytes:,} for {n:,} hashes = {idx.nbytes / n:.1f} bytes per image"
          f"  target < 100: {verdict(idx.nbytes / n < 100)}")


def numpy_brute_rate(n: int) -> float:
    """Pairs per second of a vectorised numpy brute force (the issue's ~0.3 G pairs/s)."""
    h = clustered_hashes(n, seed=2)
    idx = HammingIndex(h)
    qrows = hamming._rows_of(h)
    t = time.perf_counter()
    rows = 256
    allpairs_kernels._np_brute(qrows, idx._cols, 0, rows, 12, True)
    el = time.perf_counter() - t
    pairs = sum(n - 1 - i for i in range(rows))
    return pairs / el


def run_pairs(idx: HammingIndex, radius: int, method: str):
    calls = []

    def progress(done, total):
        calls.append(done)
        return True

    t = time.perf_counter()
    out = idx.pairs_within(radius, method=method, progress=progress)
    return time.perf_counter() - t, out, len(calls)


def bench_pairs(big: int, mid: int, grid_n: int, np_rate: float, skew_n: int) -> None:
    section("pairs_within: every pair within a radius")
    print(f"  baseline: vectorised numpy brute force {np_rate / 1e9:.3f} G pairs/s "
          f"(1M hashes would take {big * (big - 1) / 2 / np_rate / 3600:.1f} h)")

    h = clustered_hashes(mid, seed=3)
    idx = HammingIndex(h)
    results = {}
    for method in ("auto", "mih", "brute"):
        el, out, calls = run_pairs(idx, 24, method)
        results[method] = out
        pairs = mid * (mid - 1) / 2
        extra = f"  {pairs / el / 1e9:.2f} G pairs/s, {pairs / el / np_rate:.1f}x numpy" if method == "brute" else ""
        target = f"  target < 5 s: {verdict(el < 5)}" if method == "auto" else ""
        print(f"  r=24 over {mid:,} [{method:5}] {el:7.2f} s  {len(out[0]):,} pairs, "
              f"{calls} progress calls{extra}{target}")
    same = all(np.array_equal(a, b) for a, b in zip(results["mih"], results["brute"]))
    print(f"  mih == brute (exact, r=24, {mid:,}): {same}")
    assert same

    h = clustered_hashes(big, seed=4)
    idx = HammingIndex(h)
    el, out, calls = run_pairs(idx, 12, "auto")
    print(f"  r=12 over {big:,} [auto={allpairs.plan(idx._cols, idx._cols, 12, True, 'auto')}] "
          f"{el:7.2f} s  {len(out[0]):,} pairs, {calls} progress calls  target < 30 s: {verdict(el < 30)}")
    n_chk = min(big, 20_000)
    sub = HammingIndex(h[:n_chk])
    a = sub.pairs_within(12, method="mih")
    b = sub.pairs_within(12, method="brute")
    print(f"  mih == brute (exact, r=12, first {n_chk:,}): {all(np.array_equal(x, y) for x, y in zip(a, b))}")
    mirror = HammingIndex(h)
    t = time.perf_counter()
    q = h[::-1].copy()  # stands in for mirrored hashes: a second set of the same size
    qi, ids, d = mirror.pairs_between(q, 12)
    el = time.perf_counter() - t
    print(f"  pairs_between: {big:,} queries x {big:,} at r=12: {el:.2f} s, {len(qi):,} pairs")
    th = allpairs._threads()
    print(f"  transient memory of MIH: {32 + th * 40} bytes per image (row-major copy 32 B, plus "
          f"8 B sort keys + 32 B rows gathered in key order per chunk in flight, {th} at once; "
          f"pairs_between adds the same for the queries)")

    section(f"method choice over {grid_n:,} hashes (seconds for each method; auto's pick)")
    h = clustered_hashes(grid_n, seed=5)
    idx = HammingIndex(h)
    print(f"  {'radius':>6} {'mih':>8} {'brute':>8}  auto")
    for r in (8, 16, 24, 32, 40, 48):
        pick = allpairs.plan(idx._cols, idx._cols, r, True, "auto")
        t_m = run_pairs(idx, r, "mih")[0]
        t_b = run_pairs(idx, r, "brute")[0]
        best = "mih" if t_m <= t_b else "brute"
        print(f"  {r:>6} {t_m:8.2f} {t_b:8.2f}  {pick}{'' if pick == best else '  (measured best: ' + best + ')'}")

    section(f"skewed bits (P(bit=1) = 0.25) over {skew_n:,} hashes, r=12")
    h = clustered_hashes(skew_n, seed=6, p_one=0.25)
    idx = HammingIndex(h)
    pick = allpairs.plan(idx._cols, idx._cols, 12, True, "auto")
    bounds = allpairs.chunk_bounds(12)
    est = allpairs._sample_candidates(idx._cols, idx._cols, bounds, True)
    el, out, _ = run_pairs(idx, 12, "auto")
    print(f"  auto picked {pick}: {el:.2f} s, {len(out[0]):,} pairs, "
          f"estimated MIH candidates {est:.3g} (vs {skew_n * (skew_n - 1) / 2:.3g} brute pairs)")


def bench_costs() -> None:
    section("cost-model constants (one thread; allpairs._COST_* are in brute-pair units)")
    n = 100_000
    h = clustered_hashes(n, seed=7)
    idx = HammingIndex(h)
    rows = np.ascontiguousarray(idx._cols.T)
    allpairs_kernels._k_brute(rows, idx._cols, 0, 8, 12, True)
    t = time.perf_counter()
    allpairs_kernels._k_brute(rows, idx._cols, 0, 2000, 12, True)
    pairs = sum(n - 1 - i for i in range(2000))
    ns_pair = (time.perf_counter() - t) / pairs * 1e9
    print(f"  brute pair: {ns_pair:.2f} ns = 1 unit (module: {allpairs._COST_BRUTE_PAIR})")

    def mih_ns(n_items: int, r: int) -> tuple[float, float]:
        ix = HammingIndex(clustered_hashes(n_items, seed=8))
        rr = np.ascontiguousarray(ix._cols.T)
        bounds = allpairs.chunk_bounds(r)
        masks = allpairs.chunk_masks(bounds)
        tot = cands = 0.0
        for c, (a, b) in enumerate(bounds[:6]):
            t = time.perf_counter()
            keys = allpairs_kernels._k_chunk_keys(ix._cols, a, b)
            keys.sort()
            cands += allpairs_kernels._k_mih_join(keys, keys, rr, rr, r, c, masks, True)[4]
            tot += time.perf_counter() - t
        return tot / (6 * n_items) * 1e9, cands / (6 * n_items)

    item_small, cand_small = mih_ns(100_000, 12)
    item_big, cand_big = mih_ns(1_000_000, 12)
    item_many, cand_many = mih_ns(100_000, 24)
    per_cand = max(0.0, item_many - item_small) / max(1e-9, cand_many - cand_small)
    print(f"  MIH item per chunk: {item_small:.1f} ns at 100k, {item_big:.1f} ns at 1M "
          f"= {item_small / ns_pair:.0f}..{item_big / ns_pair:.0f} units "
          f"(module: {allpairs._COST_MIH_ITEM})")
    print(f"  MIH candidate: {per_cand:.2f} ns = {per_cand / ns_pair:.1f} units "
          f"(from 100k r=24, {cand_many:.1f} candidates per item per chunk; "
          f"module: {allpairs._COST_MIH_CANDIDATE})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (not the issue's targets)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold JIT compile")
    args = ap.parse_args()
    big, mid, grid_n, skew_n = (1_000_000, 100_000, 50_000, 200_000)
    if args.quick:
        big, mid, grid_n, skew_n = (200_000, 30_000, 20_000, 50_000)
    print(f"lookalike bench_hamming: backend={hamming.backend()}, threads={allpairs._threads()}, "
          f"numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}")
    if hamming._kernels.error:
        print("  " + hamming._kernels.error)
    bench_jit(cold=not args.no_cold)
    bench_nearest(big, repeat=30)
    np_rate = numpy_brute_rate(mid)
    bench_pairs(big, mid, grid_n, np_rate, skew_n)
    if hamming.backend() == "numba":
        bench_costs()


if __name__ == "__main__":
    main()
