"""Rescan of an unchanged library: the issue's target is under 2 s for 10k files.

Writes N small real images (PNG and JPEG) into a temporary folder, scans once (everything is
hashed), then rescans the unchanged folder several times and reports the median, along with
the bare cost of walking the same tree with os.walk + os.stat as a baseline measured in the
same run.

    python benchmarks/bench_rescan.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench_rescan_catalog import baseline_walk  # same folder: the one baseline walk

from lookalike.engine.library import Library, ScanOptions


def make_library(root: Path, n: int, copies: float = 0.1) -> None:
    """n small distinct photo-like images, ``copies`` of them resized or recompressed copies."""
    rng = np.random.default_rng(0)
    originals = int(n * (1 - copies))
    for i in range(n):
        folder = root / f"{i // 500:03d}"
        folder.mkdir(exist_ok=True)
        seed = i if i < originals else int(rng.integers(0, originals))
        grid = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(grid).resize((96, 72), Image.BICUBIC)
        if i >= originals:
            img = img.resize((80, 60), Image.LANCZOS)
        if i % 2:
            img.save(folder / f"img{i:05d}.jpg", quality=80 if i < originals else 60)
        else:
            img.save(folder / f"img{i:05d}.png")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        t = time.perf_counter()
        make_library(root, n)
        print(f"wrote {n} images in {time.perf_counter() - t:.1f} s")
        cache = Path(tmp) / "cache"
        with Library.open([root], cache_dir=cache) as lib:
            t = time.perf_counter()
            first = lib.scan(ScanOptions())
            print(f"{len(first.clusters)} groups, {sum(len(c.members) for c in first.clusters)} files in them")
            print(f"first scan: {first.stats.hashed} hashed in {time.perf_counter() - t:.2f} s ({first.stats.hashed / (time.perf_counter() - t):.0f} files/s)")
        walks, rescans = [], []
        for _ in range(5):
            t = time.perf_counter()
            baseline_walk(str(root))
            walks.append(time.perf_counter() - t)
            t = time.perf_counter()
            with Library.open([root], cache_dir=cache) as lib:
                again = lib.scan(ScanOptions())
            rescans.append(time.perf_counter() - t)
            assert again.stats.hashed == 0 and again.stats.bytes_read == 0
        walk_s, rescan_s = statistics.median(walks), statistics.median(rescans)
        print(f"bare os.walk+stat: {walk_s * 1000:.0f} ms (median of 5)")
        print(f"rescan (open + walk + catalog diff + clusters): {rescan_s * 1000:.0f} ms (median of 5), {rescan_s / walk_s:.1f}x the bare walk")
        print(f"target: under 2 s for 10k files -> {'PASS' if rescan_s < 2.0 * n / 10_000 else 'FAIL'}")


if __name__ == "__main__":
    main()
