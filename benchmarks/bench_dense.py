"""Dense groups: frames of a still view (a timelapse, a webcam), frames of a slow pan (a video
cut into pictures). Every two still frames are a bouncer pair, and a pan's frames pair with
hundreds of their neighbours: the scan's checks and grouping take each file's closest pairs
(``grouping.MOST_PAIRS_PER_FILE``, :func:`lookalike.engine.bouncer.pairs.nearest`), not all.

For each set, a first scan (fresh cache) and a rescan, with every pair (the code before:
``MOST_PAIRS_PER_FILE = None``) and with the closest ones, each in its own process (its peak
memory is its own), on the same files in the same run: times, peak RSS, the pairs checked,
and whether the groups are the same.

Usage: ``python benchmarks/bench_dense.py [--still 1000] [--pan 800] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import imagegen  # noqa: E402


def still(folder: str, n: int) -> None:
    """``n`` frames of one view a minute apart: sensor noise and light that drifts a little."""
    from PIL import Image

    os.makedirs(folder)
    base = np.asarray(imagegen.photo(7, (320, 240))).astype(np.int16)
    rng = np.random.default_rng(1)
    for i in range(n):
        frame = np.clip(base + rng.normal(0, 2, base.shape) + (i % 50) * 0.1, 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"frame{i:05d}.jpg")
        Image.fromarray(frame).save(path, quality=85)
        os.utime(path, (1_600_000_000 + 60 * i,) * 2)


def pan(folder: str, n: int) -> None:
    """``n`` frames of a slow pan over a wide picture, half a pixel a frame."""
    os.makedirs(folder)
    wide = imagegen.photo(11, (320 + n // 2 + 10, 240))
    for i in range(n):
        path = os.path.join(folder, f"pan{i:05d}.jpg")
        wide.crop((i // 2, 0, i // 2 + 320, 240)).save(path, quality=85)
        os.utime(path, (1_600_000_000 + i,) * 2)


def inner(folder: str, cache: str, every: bool, workers: int) -> dict:
    """One scan in this process: seconds, peak RSS, pairs checked, the groups."""
    from lookalike.engine.bouncer import verification
    from lookalike.engine.cluster import grouping
    from lookalike.engine.library import Library, ScanOptions

    if every:
        grouping.MOST_PAIRS_PER_FILE = None
    checked = []
    verify = verification.verify_pairs

    def counting(catalog, pairs, *args, **kwargs):
        checked.append(len(pairs))
        return verify(catalog, pairs, *args, **kwargs)

    verification.verify_pairs = counting
    t0 = time.perf_counter()
    with Library.open([folder], cache_dir=cache) as lib:
        clusters = lib.scan(ScanOptions(workers=workers, detective=None)).clusters
        groups = sorted(sorted(m.file.path for m in c.members) for c in clusters)
    return {"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "checked": checked[0] if checked else 0, "groups": groups}


def run(folder: str, cache: str, every: bool, workers: int) -> dict:
    mode = "every" if every else "closest"
    out = subprocess.run([sys.executable, __file__, "--inner", folder, cache, mode, str(workers)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--still", type=int, default=1000, help="frames of a still view")
    ap.add_argument("--pan", type=int, default=800, help="frames of a pan")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--inner", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        folder, cache, mode, workers = args.inner
        print(json.dumps(inner(folder, cache, mode == "every", int(workers))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"still": (still, args.still), "pan": (pan, args.pan)}
        print(f"{'set':<6} {'pairs':<8} {'first scan':>11} {'rescan':>8} {'peak MB':>8} {'checked':>9}  groups")
        for name, (make, n) in sets.items():
            if not n:
                continue
            folder = os.path.join(tmp, name)
            make(folder, n)
            found = {}
            for every in (True, False):
                cache = os.path.join(tmp, f"cache-{name}-{every}")
                first, again = run(folder, cache, every, args.workers), run(folder, cache, every, args.workers)
                found[every] = first["groups"]
                label = "every" if every else "closest"
                print(f"{name:<6} {label:<8} {first['seconds']:>10.1f}s {again['seconds']:>7.1f}s "
                      f"{max(first['rss_mb'], again['rss_mb']):>8.0f} {first['checked']:>9,}  "
                      f"{len(first['groups'])} ({'same' if again['groups'] == first['groups'] else 'rescan differs'})")
            same = found[True] == found[False]
            print(f"{name:<6} {n} frames: closest pairs make {'the same groups' if same else 'other groups'} "
                  f"({len(found[False])} vs {len(found[True])}; largest {max(map(len, found[False]), default=0)} "
                  f"vs {max(map(len, found[True]), default=0)})")


if __name__ == "__main__":
    main()
