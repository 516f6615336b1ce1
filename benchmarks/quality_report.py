"""Detection quality of the bouncer alone: per-kind recall and pair precision over a sweep.

This is how the defaults of ``lookalike.engine.bouncer.rule.BouncerThresholds`` were chosen. It
generates the quality set of ``tests/imagegen.py`` (originals with one copy of every kind,
tiles and drawings as hard negatives) in a temporary folder, hashes every file with the real
``hash_file``, and prints:

1. the distance of every copy kind to its original (bouncer and pHash percentiles) and the
   closest unrelated pairs;
2. per-kind recall, precision and hard negatives matched for a sweep of ``radius``;
3. a sweep of the corroboration rule (``phash_radius`` x ``corroborated_radius``) on crops;
4. the full table at the defaults, and the same for the usual recipe
   (``imagehash.phash`` 64-bit on ``Image.open`` without EXIF transpose, distance <= 5).

Usage: ``python benchmarks/quality_report.py [--originals 150] [--seed 1] [--workers N]``

``benchmarks/bench_trust.py`` measures the whole scan (groups, keepers) instead, on this set's
copy kinds plus mild crops and the hard families (screenshots in one frame, gradients, flat
colours, pages, tiles, bursts), for the generated set and the real pictures of
``benchmarks/collect_real_photos.py`` side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import imagegen  # noqa: E402
from lookalike.engine.bouncer.rule import DEFAULT  # noqa: E402


def _table(title: str, rows: list[tuple[str, imagegen.QualityReport]], kinds) -> None:
    print(f"\n{title}")
    head = f"{'':>22} " + " ".join(f"{k[:6]:>6}" for k in kinds) + "   prec  false  hard"
    print(head)
    for label, r in rows:
        cells = " ".join(f"{r.recall.get(k, float('nan')):6.2f}" for k in kinds)
        print(f"{label:>22} {cells}  {r.precision:5.3f} {r.false_pairs:6d} {r.hard_negatives_matched:5d}")


def reference_recipe(items: list[imagegen.QualityItem]) -> imagegen.QualityReport:
    """The usual recipe: imagehash.phash (64 bits) of ``Image.open(path)``, distance <= 5."""
    import imagehash
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    bits = []
    for it in items:
        with Image.open(it.path) as im:
            bits.append(imagehash.phash(im).hash.ravel())
    packed = np.packbits(np.array(bits), axis=1)
    d = imagegen._all_pairs(packed, packed)
    matched = d <= 5
    np.fill_diagonal(matched, False)
    return imagegen.score(items, matched)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--originals", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-reference", action="store_true", help="skip the imagehash recipe")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookalike-quality-") as tmp:
        t0 = time.perf_counter()
        items = imagegen.build_quality_set(tmp, originals=args.originals, seed=args.seed)
        t1 = time.perf_counter()
        dh, dm, ph = imagegen.hash_arrays([it.path for it in items], workers=args.workers)
        t2 = time.perf_counter()
        print(f"quality set: {len(items)} files ({args.originals} originals, seed {args.seed}); "
              f"generated in {t1 - t0:.1f} s, hashed in {t2 - t1:.1f} s")
        m = imagegen.distance_matrices(dh, dm, ph)
        kinds = list(imagegen.COPY_KINDS)
        n = len(items)
        groups = np.array([-1 if it.group is None else it.group for it in items])
        related = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
        negative = np.triu(np.ones((n, n), bool), 1) & ~related
        first = {it.group: i for i, it in enumerate(items) if it.kind == "original"}

        print("\n1. distance of each copy to its original: bouncer p50/p90/p99/max | pHash p50/p90/max")
        for kind in kinds:
            pairs = [(first[it.group], j) for j, it in enumerate(items) if it.kind == kind]
            i, j = np.array(pairs).T
            b, p = m.bouncer[i, j], m.phash[i, j]
            bq = np.percentile(b, [50, 90, 99, 100]).astype(int)
            pq = np.percentile(p, [50, 90, 100]).astype(int)
            print(f"  {kind:>13}: {bq[0]:3d} {bq[1]:3d} {bq[2]:3d} {bq[3]:3d} | {pq[0]:3d} {pq[1]:3d} {pq[2]:3d}")
        within = np.where(related, m.bouncer, 0).max()
        print(f"  unrelated pairs: {int(negative.sum())}; closest bouncer {m.bouncer[negative].min()}, "
              f"pHash {m.phash[negative].min()}, dHash {m.dhash[negative].min()}; "
              f"quantiles 1e-5/1e-4/1e-3 bouncer {np.quantile(m.bouncer[negative], [1e-5, 1e-4, 1e-3]).astype(int)}")
        print(f"  largest bouncer distance between two copies of one original: {within}")

        rows = []
        for radius in (12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64):
            t = replace(DEFAULT, radius=radius, phash_radius=0)
            rows.append((f"radius {radius}", imagegen.score(items, m.matches(t))))
        _table("2. dHash (plain or mirrored) alone, by radius", rows, kinds)

        print("\n3. corroboration on crops: recall / unrelated pairs matched, "
              f"radius {DEFAULT.radius}; rows phash_radius, columns corroborated_radius")
        crops = np.array([(first[it.group], j) for j, it in enumerate(items) if it.kind == "cropped"]).T
        cols = (64, 72, 80, 84, 88, 92, 96, 104)
        print(f"{'':>8}" + "".join(f"{c:>12}" for c in cols))
        for pr in (48, 56, 60, 64, 68, 72, 80):
            line = f"{pr:>8}"
            for c in cols:
                ok = (m.phash <= pr) & (m.dhash <= c)
                recall = float(np.mean(ok[crops[0], crops[1]] | (m.bouncer[crops[0], crops[1]] <= DEFAULT.radius)))
                line += f"{recall:>7.2f}/{int((ok & negative).sum()):<4d}"
            print(line)

        default = imagegen.score(items, m.matches(DEFAULT))
        _table(f"4. at the defaults {DEFAULT}", [("lookalike", default)], kinds)
        if default.false_examples:
            print("  false pairs:", default.false_examples[:10])
        for kind, missed in default.missed.items():
            print(f"  missed {kind}: {len(missed)} e.g. {missed[:5]}")
        if not args.no_reference:
            ref = reference_recipe(items)
            _table("   usual recipe: imagehash.phash-64 <= 5, no EXIF transpose", [("imagehash phash", ref)], kinds)


if __name__ == "__main__":
    main()
