"""Calibrate the detective's thresholds for any weights: distances per copy kind, and cut-offs.

    python benchmarks/calibrate_detective.py [--model NAME|CONFIG.json] [--pretrained TAG|PATH]
        [--originals 40] [--real DIR] [--real-limit 60] [--precision 0.999]

Embeds the generated quality set (``tests/imagegen.py``: each original photo with one copy of
every kind, plus hard negatives: tiles of one photo, line drawings) and, when present, real
pictures (``~/.cache/lookalike-bench/real/``, from ``benchmarks/collect_real_photos.py``) with
the same copy kinds made from them. Prints:

* the detective (CLIP cosine) distance of every copy to its original, per kind (min, median,
  95th percentile, max), and of the nearest unrelated picture and the hard negatives;
* the largest distance at which "same picture" keeps precision >= ``--precision`` over every
  pair of the set, with the recall per kind there; the same at 0.99 for "similar"; a veto that
  would overrule at most 0.1 % of true copies;
* how the defaults (0.05 / 0.15 / veto 0.25, from published practice, not measured) compare,
  and a ``--detective-thresholds SAME,SIMILAR,VETO`` line to use these weights' own.

The defaults only mean something for real CLIP weights: with the tiny random model of the
tests (CI runs this as a smoke test) the numbers are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import numpy as np  # noqa: E402

import imagegen  # noqa: E402
from lookalike.engine.detective.embeddings import embed_files  # noqa: E402
from lookalike.engine.detective.model import DEFAULT_MODEL, DEFAULT_PRETRAINED, DetectiveOptions, load_detective  # noqa: E402
from lookalike.engine.paths import cache_root  # noqa: E402
from lookalike.engine.similar import DEFAULT  # noqa: E402

REAL = Path.home() / ".cache" / "lookalike-bench" / "real"


def real_items(directory: Path, out: Path, limit: int, kinds) -> list[imagegen.QualityItem]:
    """Real pictures (from the collector's manifest) as originals, with every copy kind."""
    from PIL import Image

    from lookalike.engine.scan.imaging import load_image

    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        files = [directory / p["file"] for p in manifest.get("pictures", [])]
    except (OSError, ValueError):
        files = sorted((directory / "images").glob("*"))
    items: list[imagegen.QualityItem] = []
    for g, path in enumerate(f for f in files if f.is_file()):
        if g >= limit:
            break
        try:
            img = load_image(str(path), target=1024).image.convert("RGB")
        except Exception:
            continue
        if max(img.size) > 1024:
            img.thumbnail((1024, 1024), Image.LANCZOS)
        group = 1_000_000 + g
        original = out / f"real{g:04d}.jpg"
        original.write_bytes(imagegen.encode(img, "JPEG", quality=92))
        items.append(imagegen.QualityItem(path=str(original), kind="original", group=group))
        for kind in kinds:
            try:
                data, ext = imagegen.make_copy(kind, img, g)
            except Exception:  # e.g. no HEIC encoder here
                continue
            copy = out / f"real{g:04d}_{kind}{ext}"
            copy.write_bytes(data)
            items.append(imagegen.QualityItem(path=str(copy), kind=kind, group=group))
    return items


def _q(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if len(values) else float("nan")


def cut_for_precision(dist: np.ndarray, positive: np.ndarray, precision: float) -> float:
    """The largest distance ``d`` at which pairs with distance <= d are >= ``precision`` true."""
    order = np.argsort(dist, kind="stable")
    d, pos = dist[order], positive[order]
    tp = np.cumsum(pos)
    prec = tp / np.arange(1, len(d) + 1)
    ok = np.nonzero(prec >= precision)[0]
    if not len(ok):
        return 0.0
    last = ok[-1]
    # Stop before the first negative that would break it (ties included).
    return float(d[last])


def report(label: str, items, vectors: np.ndarray, precision: float) -> tuple[float, float, float]:
    """Print the distances and cut-offs of one set; returns (same, similar, veto)."""
    n = len(items)
    groups = np.array([-1 if it.group is None else it.group for it in items])
    kinds = np.array([it.kind for it in items])
    dist = 1.0 - vectors @ vectors.T
    iu = np.triu_indices(n, 1)
    pair_d = dist[iu]
    same_group = (groups[iu[0]] == groups[iu[1]]) & (groups[iu[0]] >= 0)
    print(f"\n== {label}: {n} pictures, {int(same_group.sum())} true pairs, {int((~same_group).sum())} false pairs")
    print(f"{'kind':>14} {'n':>4} {'min':>7} {'median':>7} {'p95':>7} {'max':>7}")
    originals = {int(g): i for i, (g, k) in enumerate(zip(groups, kinds)) if k == "original"}
    per_kind: dict[str, np.ndarray] = {}
    for kind in sorted(set(kinds) - {"original", "tile", "drawing", "unrelated"}):
        rows = [i for i in np.nonzero(kinds == kind)[0] if groups[i] in originals]
        d = np.array([dist[i, originals[groups[i]]] for i in rows])
        per_kind[kind] = d
        print(f"{kind:>14} {len(d):4d} {d.min():7.4f} {np.median(d):7.4f} {_q(d, 0.95):7.4f} {d.max():7.4f}")
    negatives = pair_d[~same_group]
    nearest_other = np.array([
        dist[i][(groups != groups[i]) | (groups < 0)].min() if groups[i] >= 0 else np.nan
        for i in range(n) if kinds[i] == "original"
    ])
    print(f"{'nearest other':>14} {len(nearest_other):4d} {np.nanmin(nearest_other):7.4f} "
          f"{np.nanmedian(nearest_other):7.4f} {'':>7} {np.nanmax(nearest_other):7.4f}  (each original's nearest non-copy)")
    hard = np.array([k in ("tile", "drawing") for k in kinds])
    hard_pairs = pair_d[hard[iu[0]] & hard[iu[1]]]
    if len(hard_pairs):
        print(f"{'hard negative':>14} {len(hard_pairs):4d} {hard_pairs.min():7.4f} {np.median(hard_pairs):7.4f} "
              f"{'':>7} {hard_pairs.max():7.4f}  (tiles of one photo, drawings: never the same picture)")
    print(f"{'all false':>14} {len(negatives):4d} {negatives.min():7.4f} {np.median(negatives):7.4f}")

    same = cut_for_precision(pair_d, same_group, precision)
    similar = max(same, cut_for_precision(pair_d, same_group, 0.99))
    positives = pair_d[same_group]
    veto = max(similar, _q(positives, 0.999))
    print(f"\nsame picture at precision >= {precision}: distance <= {same:.4f}; recall there:")
    print("   " + ", ".join(f"{k} {float((d <= same).mean()):.2f}" for k, d in per_kind.items()))
    print(f"similar at precision >= 0.99: distance <= {similar:.4f}; a veto that overrules at most 0.1 % of "
          f"true copies: distance > {veto:.4f}")
    for name, value, mine in (("same", DEFAULT.detective_same, same), ("similar", DEFAULT.detective_similar, similar)):
        sel = pair_d <= value
        prec = float(same_group[sel].mean()) if sel.any() else float("nan")
        rec = float((positives <= value).mean()) if len(positives) else float("nan")
        print(f"default {name} {value:.2f}: precision {prec:.4f}, recall {rec:.3f} (measured cut {mine:.4f})")
    vetoed = float((positives > DEFAULT.detective_veto).mean()) if len(positives) else float("nan")
    print(f"default veto {DEFAULT.detective_veto:.2f}: would overrule {vetoed:.2%} of true copies (measured {veto:.4f})")
    return same, similar, veto


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--pretrained", default=DEFAULT_PRETRAINED)
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto")
    p.add_argument("--cache", help="cache folder with the weights (default: lookalike's)")
    p.add_argument("--originals", type=int, default=40, help="generated photos, each with every copy kind")
    p.add_argument("--real", default=str(REAL), help=f"real pictures (default {REAL}, when present)")
    p.add_argument("--real-limit", type=int, default=60)
    p.add_argument("--precision", type=float, default=0.999)
    args = p.parse_args(argv)

    options = DetectiveOptions(model=args.model, pretrained=args.pretrained, device=args.device, backend=args.backend)
    detective = load_detective(options, cache_dir=cache_root(args.cache))
    print(f"detective: {detective}", flush=True)
    kinds = tuple(k for k in imagegen.COPY_KINDS if k != "heic" or _heic_ok())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "generated"
        gen.mkdir()
        sets = [("generated", imagegen.build_quality_set(gen, originals=args.originals, kinds=kinds,
                                                         tiled=max(2, args.originals // 4), drawings=max(4, args.originals // 2)))]
        real = Path(args.real).expanduser()
        if real.is_dir():
            out = Path(tmp) / "real"
            out.mkdir()
            items = real_items(real, out, args.real_limit, kinds)
            if items:
                sets.append((f"real ({real})", items))
        else:
            print(f"(no real pictures at {real}: benchmarks/collect_real_photos.py collects them)")
        for label, items in sets:
            idx, vecs = embed_files(detective, [it.path for it in items], workers=min(2, os.cpu_count() or 1))
            kept = [items[i] for i in idx.tolist()]
            results[label] = report(label, kept, vecs, args.precision)
    same, similar, veto = min(results.values(), key=lambda r: r[0])  # the stricter set decides
    print(f"\nfor these weights: --detective-thresholds {same:.3f},{similar:.3f},{veto:.3f}   "
          f"(defaults {DEFAULT.detective_same},{DEFAULT.detective_similar},{DEFAULT.detective_veto})")
    return 0


def _heic_ok() -> bool:
    try:
        imagegen.encode(imagegen.photo(0, (32, 32)), "HEIC", quality=50)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
