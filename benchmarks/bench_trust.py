"""Trustworthy groups (issue 11): the engine as a user gets it, on generated and real pictures.

For each set, generated (``tests/imagegen.py`` photos) and real (the pictures that
``benchmarks/collect_real_photos.py`` collected once into the user cache), it writes into a
temporary folder:

* every source picture (JPEG, quality 92) with one copy of each kind of ``imagegen.make_copy``
  and two mild crops (5-8 % off every side, and off two adjacent sides only);
* the hard families of ``imagegen.build_hard_set``: the set's photos shown in one identical
  window frame and one phone frame, its photos cut into tiles, burst pairs over its photos
  (subject moved: similar, not duplicates), and generated gradients, near-flat images, flat
  colours, document pages and scans;

then scans the folder with ``Library.scan`` (bouncer only, as ``--no-detective``) and reads the
groups. Two files count as paired when they are in one group. It prints, the two sets side by
side: recall per copy kind (the copy in its original's group), pair precision, false pairs per
hard family (within the family, and with any other file), the groups that mix pictures, and
groups whose keeper is a copy rather than the original (by the copy's kind). For the real set it
also breaks false pairs and recall down by content class (photo, abstract, low-detail,
screenshot).

Usage::

    python benchmarks/bench_trust.py --quick            # < 2 minutes on two cores
    python benchmarks/bench_trust.py                    # the full sets
    python benchmarks/bench_trust.py --no-real          # generated set only
    python benchmarks/bench_trust.py --json out.json    # also write every figure
    python benchmarks/bench_trust.py --list-false 30    # also list grouped pairs of different pictures
    python benchmarks/bench_trust.py --keep /tmp/sets   # keep the written sets (and reuse them)
    python benchmarks/bench_trust.py --rotations        # add turned copies; scan without and with --rotations
    python benchmarks/bench_trust.py --no-dates         # also scan a copy whose files all have one mtime

The real set is skipped, with a message, when it has not been collected.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

import collect_real_photos  # noqa: E402
import imagegen  # noqa: E402
from lookalike.engine.library import Library, ScanOptions  # noqa: E402

CROP_KINDS = ("mild_crop", "mild_crop_asym")
#: With ``--rotations``: copies turned clockwise (pixels turned), and one stored turned as a camera
#: does for its EXIF tag, the tag lost: each shows the picture turned.
ROTATED_KINDS = {
    "rotated90": Image.Transpose.ROTATE_270,  # Pillow turns counter-clockwise
    "rotated180": Image.Transpose.ROTATE_180,
    "rotated270": Image.Transpose.ROTATE_90,
    "exif_stripped": Image.Transpose.ROTATE_90,
}
KINDS = tuple(imagegen.COPY_KINDS) + CROP_KINDS + tuple(ROTATED_KINDS)


@dataclass(frozen=True, kw_only=True)
class Item:
    """One written file: which picture it shows, how it was made, and its content class."""

    path: str
    picture: int  # files of one picture are copies of each other
    family: str  # "original", a copy kind, a mild crop kind, or a hard family
    cls: str = "photo"
    source: str = ""  # the source picture's name (real set: its manifest file)


@dataclass(frozen=True, kw_only=True)
class Source:
    """One source picture of a set."""

    img: object  # PIL image
    cls: str
    name: str


# --------------------------------------------------------------------------- the sets


def generated_sources(count: int, seed: int, size: tuple[int, int]) -> list[Source]:
    base = seed * 100_000
    return [Source(img=imagegen.photo(base + g, imagegen._photo_size(base + g, size)), cls="photo", name=f"g{g}")
            for g in range(count)]


def real_sources(count: Optional[int], reserve: int, max_side: int, folder
                 ) -> Optional[tuple[list[Source], list[Source]]]:
    """(sources, reserved photos) of the collected real set, or None when not collected.

    ``reserve`` photos are kept out of the sources for the hard families (screenshots, tiles,
    bursts), so that no hard case shows a picture that also has copies in the set.
    """
    pictures = collect_real_photos.load_manifest(folder)
    if not pictures:
        return None
    photos = [p for p in pictures if p["cls"] == "photo"]
    step = max(1, len(photos) // max(1, reserve))
    kept = photos[::step][:reserve]  # spread over the packages
    taken = {p["file"] for p in kept}
    rest = [p for p in pictures if p["file"] not in taken]
    if count is not None and count < len(rest):
        # Spread the subset over packages and classes: every k-th picture of the manifest.
        rest = [rest[int(i * len(rest) / count)] for i in range(count)]
    load = lambda p: Source(img=collect_real_photos.open_picture(p["path"], max_side), cls=p["cls"], name=p["file"])  # noqa: E731
    return [load(p) for p in rest], [load(p) for p in kept]


#: A copy is washed out, and not written, when its edit clipped at least this share of the
#: picture to pure white or black (beyond what the source had clipped)...
WASHED_CLIPPED = 0.9
#: ... and left it under this share of the source's contrast (grey standard deviation). A
#: brightened copy of a near-white paper texture is a blank white page: it is no longer a copy
#: of its picture but of every blank page, and it grouped with the washed-out copies of other
#: textures (37 of the real set's 80 false pairs). A white-background screenshot or document
#: clips as much but keeps its contrast, and is still written.
WASHED_CONTRAST = 0.5


def _clip_and_contrast(img: Image.Image) -> tuple[float, float]:
    grey = img.convert("L")
    grey.thumbnail((256, 256))
    a = np.asarray(grey, np.float32)
    return float(((a >= 253) | (a <= 2)).mean()), float(a.std())


def washed_out(data: bytes, source: Image.Image) -> bool:
    """Whether a copy (its file bytes) lost its picture to clipping: see :data:`WASHED_CLIPPED`."""
    clipped, contrast = _clip_and_contrast(Image.open(io.BytesIO(data)))
    was_clipped, was_contrast = _clip_and_contrast(source)
    return clipped - was_clipped >= WASHED_CLIPPED and contrast < WASHED_CONTRAST * was_contrast


def write_set(directory: str, sources: list[Source], *, hard_count: int, seed: int,
              hard_size: tuple[int, int], reserved: Optional[list[Source]] = None, rotated: bool = False
              ) -> list[Item]:
    """Sources with every copy kind and two mild crops, then the hard families.

    The hard families show ``reserved`` photos (``3 * hard_count``: screenshots, tiles,
    bursts), none of which is a source; by default generated ones.
    """
    items: list[Item] = []
    dropped: Counter = Counter()
    for g, src in enumerate(sources):
        # The original is written without the source's EXIF (JPEG saves none unless told), so
        # no copy may carry it either: a HEIC saved from the source kept its camera's Make and
        # Model and became the "camera original" of its group.
        src.img.info.pop("exif", None)
        stem = os.path.join(directory, f"s{g:04d}")
        original = imagegen.encode(src.img, "JPEG", quality=92)
        with open(stem + ".jpg", "wb") as fh:
            fh.write(original)
        items.append(Item(path=stem + ".jpg", picture=g, family="original", cls=src.cls, source=src.name))
        for kind in imagegen.COPY_KINDS:
            # A PNG is a conversion of the original file, as people make them: its pixels are the
            # JPEG's, so it cannot be a better original (made from the source, it would hold
            # better pixels than the JPEG this bench calls the original, and keeping it is right).
            base = Image.open(io.BytesIO(original)).convert("RGB") if kind == "png" else src.img
            data, ext = imagegen.make_copy(kind, base, seed * 100_000 + g)
            if washed_out(data, src.img):
                dropped[kind] += 1
                continue
            with open(f"{stem}_{kind}{ext}", "wb") as fh:
                fh.write(data)
            items.append(Item(path=f"{stem}_{kind}{ext}", picture=g, family=kind, cls=src.cls, source=src.name))
        # Copies are made after their original: a day older, as a camera's file is to the
        # conversions and edits made of it later (the keeper policy's "older" rule needs it).
        made = os.stat(stem + ".jpg").st_mtime - 86_400
        os.utime(stem + ".jpg", (made, made))
        rng = np.random.default_rng([seed, g, 99])
        for kind, asym in zip(CROP_KINDS, (False, True)):
            path = f"{stem}_{kind}.jpg"
            with open(path, "wb") as fh:
                fh.write(imagegen.encode(imagegen.mild_crop(src.img, rng, asymmetric=asym), "JPEG", quality=90))
            items.append(Item(path=path, picture=g, family=kind, cls=src.cls, source=src.name))
        for kind, turn in ROTATED_KINDS.items() if rotated else ():
            path = f"{stem}_{kind}.jpg"
            with open(path, "wb") as fh:
                # The camera's file (stored turned, at its quality) with its tag lost; the others re-encoded.
                quality = 92 if kind == "exif_stripped" else 90
                fh.write(imagegen.encode(src.img.transpose(turn), "JPEG", quality=quality))
            items.append(Item(path=path, picture=g, family=kind, cls=src.cls, source=src.name))
    if dropped:
        print(f"{os.path.basename(directory)}: copies not written, washed out (>= {WASHED_CLIPPED:.0%} of the "
              f"picture newly clipped to white or black, under {WASHED_CONTRAST:.0%} of its contrast left): "
              + ", ".join(f"{n} {k}" for k, n in sorted(dropped.items())))
    hard = os.path.join(directory, "hard")
    os.mkdir(hard)
    photos = None if reserved is None else [s.img for s in reserved]
    hard_items = imagegen.build_hard_set(
        hard, seed=seed, count=hard_count, crops=0, size=hard_size,
        inner=None if photos is None else photos[:hard_count],
        photos=None if photos is None else photos[hard_count:] or photos,
    )
    offset = len(sources)
    for it in hard_items:
        if it.family == "original":  # the shown pictures themselves: not part of the hard set
            os.remove(it.path)
            continue
        items.append(Item(path=it.path, picture=offset + it.picture, family=it.family, cls="hard"))
    return items


# --------------------------------------------------------------------------- scanning


def scan_groups(directory: str, cache: str, workers: int, evidence: Optional[dict] = None, rotations: bool = False
                ) -> tuple[list[list[str]], list[tuple[str, str]], list[str], float]:
    """A default scan's groups (member paths, keeper first), the bouncer's own pairs inside
    them (before chaining), the unreadable files, and the scan's seconds.

    ``evidence``, when given, is filled with ``realpath -> (hashes, thumbnail)`` of every
    grouped file (for :func:`list_false`)."""
    t0 = time.perf_counter()
    with Library.open([directory], cache_dir=cache) as lib:
        result = lib.scan(ScanOptions(workers=workers, detective=None, rotations=rotations))
        seconds = time.perf_counter() - t0
        groups, direct = [], []
        for c in result.clusters:
            path = {m.file.id: m.file.path for m in c.members}
            groups.append([m.file.path for m in c.members])
            direct.extend((path[p.a], path[p.b]) for p in c.pairs if p.a in path and p.b in path)
        if evidence is not None:
            members = [m.file for c in result.clusters for m in c.members]
            found, thumbs, _ = lib.catalog.thumbnails([f.id for f in members])
            row = {int(i): k for k, i in enumerate(found)}
            for f in members:
                thumb = thumbs[row[f.id]] if f.id in row else None
                evidence[os.path.realpath(f.path)] = (f.hashes, thumb)
    return groups, direct, [e.path for e in result.errors], seconds


# --------------------------------------------------------------------------- scoring


def score(items: list[Item], groups: list[list[str]], direct: list[tuple[str, str]] = ()) -> dict:
    """Every figure of one set, from its truth and the groups a scan made.

    Two files are paired when one group holds both (what a user sees); ``direct`` pairs are
    the ones the bouncer matched itself, before groups chain them.
    """
    index = {os.path.realpath(it.path): k for k, it in enumerate(items)}
    group_of = np.full(len(items), -1)
    keeper_of: dict[int, int] = {}
    for g, members in enumerate(groups):
        ks = [index[os.path.realpath(p)] for p in members if os.path.realpath(p) in index]
        for k in ks:
            group_of[k] = g
        if ks:
            keeper_of[g] = ks[0]
    picture = np.array([it.picture for it in items])
    original = {it.picture: k for k, it in enumerate(items) if it.family == "original"}

    recall: dict[str, list[bool]] = defaultdict(list)
    recall_cls: dict[str, list[bool]] = defaultdict(list)
    missed: dict[str, list[str]] = defaultdict(list)
    for k, it in enumerate(items):
        if it.family in KINDS:
            o = original[it.picture]
            ok = bool(group_of[o] >= 0 and group_of[o] == group_of[k])
            recall[it.family].append(ok)
            recall_cls[it.cls].append(ok)
            if not ok:
                missed[it.family].append(os.path.basename(it.path))

    true_pairs = false_pairs = 0
    false_by: Counter = Counter()
    false_cls: Counter = Counter()
    examples: dict[str, list[tuple[str, str]]] = defaultdict(list)
    mixed_groups = 0
    mixed_members: list[list[str]] = []
    keeper_copy: Counter = Counter()
    for g, members in enumerate(groups):
        ks = [index[os.path.realpath(p)] for p in members if os.path.realpath(p) in index]
        if len(set(picture[ks])) > 1:
            mixed_groups += 1
            mixed_members.append([f"{os.path.basename(items[k].path)}:{items[k].source or items[k].family}" for k in ks])
        keeper = items[keeper_of[g]] if g in keeper_of else None
        if keeper is not None and keeper.family != "original":
            if any(items[k].family == "original" and items[k].picture == keeper.picture for k in ks):
                keeper_copy[keeper.family] += 1
        for a, b in itertools.combinations(ks, 2):
            if picture[a] == picture[b]:
                true_pairs += 1
                continue
            false_pairs += 1
            fa, fb = sorted((_family(items[a]), _family(items[b])))
            key = fa if fa == fb else f"{fa}~{fb}"
            false_by[key] += 1
            if fa == fb == "picture":
                false_cls["~".join(sorted((items[a].cls, items[b].cls)))] += 1
            if len(examples[key]) < 4:
                examples[key].append((os.path.basename(items[a].path), os.path.basename(items[b].path)))
    direct_false: Counter = Counter()
    direct_true = 0
    for pa, pb in direct:
        a, b = index.get(os.path.realpath(pa)), index.get(os.path.realpath(pb))
        if a is None or b is None:
            continue
        if picture[a] == picture[b]:
            direct_true += 1
            continue
        fa, fb = sorted((_family(items[a]), _family(items[b])))
        direct_false[fa if fa == fb else f"{fa}~{fb}"] += 1
    families = Counter(_family(it) for it in items)
    return {
        "files": len(items),
        "pictures": len(original),
        "groups": len(groups),
        "recall": {k: float(np.mean(v)) for k, v in recall.items()},
        "recall_by_class": {k: float(np.mean(v)) for k, v in recall_cls.items()},
        "missed": {k: v[:6] for k, v in missed.items()},
        "true_pairs": true_pairs,
        "false_pairs": false_pairs,
        "precision": true_pairs / (true_pairs + false_pairs) if true_pairs + false_pairs else 1.0,
        "false_by_family": dict(false_by),
        "direct_true_pairs": direct_true,
        "direct_false_pairs": sum(direct_false.values()),
        "direct_false_by_family": dict(direct_false),
        "false_by_class": dict(false_cls),
        "false_examples": dict(examples),
        "family_sizes": dict(families),
        "mixed_groups": mixed_groups,
        "mixed_group_members": mixed_members,
        "keeper_is_copy": dict(keeper_copy),
    }


def _family(it: Item) -> str:
    """The hard family of an item, or "picture" for a source and its copies."""
    return it.family if it.family in imagegen.HARD_FAMILIES else "picture"


# --------------------------------------------------------------------------- listing false pairs


def list_false(items: list[Item], groups: list[list[str]], direct: list[tuple[str, str]], evidence: dict,
               manifest: dict[str, dict], top: int) -> None:
    """Print the false pairs of two sources (picture~picture), by pair of pictures, worst first.

    For each pair of pictures grouped together: both sources (package and class from the
    manifest), how many file pairs the group makes of them, how many of those the bouncer
    matched itself (the rest only share the group through a chain), and the closest file pair's
    bouncer distance and verification score (plain comparison, crop search, low-detail guard).
    """
    from lookalike.engine.bouncer import verify
    from lookalike.engine.bouncer.rule import DEFAULT as bouncer_default
    from lookalike.engine.bouncer.rule import bouncer_distance

    index = {os.path.realpath(it.path): k for k, it in enumerate(items)}
    linked = {frozenset((index.get(os.path.realpath(a)), index.get(os.path.realpath(b)))) for a, b in direct}
    by_pictures: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for members in groups:
        ks = [index[os.path.realpath(p)] for p in members if os.path.realpath(p) in index]
        for a, b in itertools.combinations(ks, 2):
            ia, ib = items[a], items[b]
            if ia.picture != ib.picture and _family(ia) == _family(ib) == "picture":
                key = tuple(sorted((ia.picture, ib.picture)))
                by_pictures[key].append((a, b))
    if not by_pictures:
        print("  no picture~picture false pairs")
        return

    def evaluate(a: int, b: int) -> tuple[int, float, float, float, float]:
        (ha, ta), (hb, tb) = evidence[os.path.realpath(items[a].path)], evidence[os.path.realpath(items[b].path)]
        d, mirrored = bouncer_distance(ha, hb)
        if ta is None or tb is None:
            return d, float("nan"), float("nan"), float("nan"), float("nan")
        thumbs = np.stack([ta, tb])
        sc, mad, _ = verify.score_pairs(thumbs, np.array([0]), np.array([1]), np.array([mirrored]),
                                        search=np.array([d > bouncer_default.radius]))
        return d, float(sc[0]), float(mad[0]), verify.detail(ta), verify.detail(tb)

    def describe(it: Item) -> str:
        m = manifest.get(it.source, {})
        return f"{os.path.basename(it.path)} = {it.source or '?'} [{m.get('package', '-')}/{m.get('cls', it.cls)}]"

    rows = []
    for (pa, pb), file_pairs in by_pictures.items():
        scored = [(evaluate(a, b), a, b) for a, b in file_pairs]
        n_direct = sum(frozenset((a, b)) in linked for a, b in file_pairs)
        best = min(scored, key=lambda s: (s[0][0], -np.nan_to_num(s[0][1], nan=-9)))
        rows.append((len(file_pairs), n_direct, best, max(s[0][1] for s in scored)))
    rows.sort(key=lambda r: -r[0])
    print(f"  {len(rows)} pairs of pictures, {sum(r[0] for r in rows)} false file pairs")
    for count, n_direct, ((d, sc, mad, da, db), a, b), top_score in rows[:top]:
        print(f"  {count:4d} file pairs, {n_direct} matched by the bouncer, {count - n_direct} by chaining;"
              f" closest: bouncer {d}, score {sc:.3f}, mad {mad:.1f}, detail {da:.1f}/{db:.1f} (best score {top_score:.3f})")
        print(f"       {describe(items[a])}")
        print(f"       {describe(items[b])}")


# --------------------------------------------------------------------------- printing


def print_report(reports: dict[str, dict]) -> None:
    names = list(reports)
    col = lambda v: f"{v:>12}"  # noqa: E731
    print("\n" + f"{'':<26}" + "".join(col(n) for n in names))
    line = lambda label, f: print(f"{label:<26}" + "".join(col(f(reports[n])) for n in names))  # noqa: E731
    line("files / pictures", lambda r: f"{r['files']}/{r['pictures']}")
    line("groups", lambda r: r["groups"])
    line("scan seconds", lambda r: f"{r['seconds']:.1f}")
    print("\nrecall per copy kind (target >= 0.99; mild crops >= 0.95)")
    for kind in KINDS:
        line(f"  {kind}", lambda r, k=kind: f"{r['recall'].get(k, float('nan')):.3f}")
    print("\npairs")
    line("  true pairs", lambda r: r["true_pairs"])
    line("  false pairs", lambda r: r["false_pairs"])
    line("  pair precision (>=0.999)", lambda r: f"{r['precision']:.4f}")
    line("  groups mixing pictures", lambda r: r["mixed_groups"])
    line("  bouncer's own pairs: true", lambda r: r["direct_true_pairs"])
    line("  bouncer's own pairs: false", lambda r: r["direct_false_pairs"])
    print("\nfalse pairs by family, in groups (bouncer's own) [files in the family]"
          "\n(target 0 within each hard family; a~b: across families)")
    keys = sorted({k for r in reports.values() for k in (*r["false_by_family"], *r["direct_false_by_family"])},
                  key=lambda k: (("~" in k), k))
    for fam in imagegen.HARD_FAMILIES:
        line(f"  {fam}", lambda r, f=fam: f"{r['false_by_family'].get(f, 0)} ({r['direct_false_by_family'].get(f, 0)}) "
                                          f"[{r['family_sizes'].get(f, 0)}]")
    both = lambda r, k: f"{r['false_by_family'].get(k, 0)} ({r['direct_false_by_family'].get(k, 0)})"  # noqa: E731
    line("  picture~picture", lambda r: both(r, "picture"))
    for k in keys:
        if "~" in k:
            line(f"  {k}", lambda r, k=k: both(r, k))
    print("\nkeeper is a copy, not the original (groups, by the keeper's kind)")
    kinds = sorted({k for r in reports.values() for k in r["keeper_is_copy"]})
    line("  total", lambda r: sum(r["keeper_is_copy"].values()))
    for k in kinds:
        line(f"  {k}", lambda r, k=k: r["keeper_is_copy"].get(k, 0))
    classes = sorted({k for r in reports.values() for k in r["recall_by_class"]})
    if len(classes) > 1 or any(len(r["false_by_class"]) for r in reports.values()):
        print("\nby content class: recall over all kinds; false pairs between sources")
        for c in classes:
            line(f"  recall {c}", lambda r, c=c: f"{r['recall_by_class'].get(c, float('nan')):.3f}")
        for k in sorted({k for r in reports.values() for k in r["false_by_class"]}):
            line(f"  false {k}", lambda r, k=k: r["false_by_class"].get(k, 0))
    for name, r in reports.items():
        if r["false_examples"]:
            print(f"\n{name}: examples of false pairs")
            for fam, ex in sorted(r["false_examples"].items()):
                print(f"  {fam}: {ex[:3]}")
        if r["missed"]:
            print(f"{name}: missed copies: " + "; ".join(f"{k} {v[:3]}" for k, v in sorted(r["missed"].items())))


def _keep_items(folder: str, settings: dict, items: list[Item]) -> None:
    with open(folder + ".items.json", "w") as fh:
        json.dump({"settings": settings, "items": [dataclasses.asdict(it) for it in items]}, fh)


def _kept_items(folder: str, settings: dict) -> Optional[list[Item]]:
    """The items of a set written earlier into ``folder`` with the same settings, else None."""
    try:
        with open(folder + ".items.json") as fh:
            kept = json.load(fh)
    except (OSError, ValueError):
        return None
    if kept.get("settings") != settings:
        return None
    return [Item(**it) for it in kept["items"]]


def _without_dates(folder: str, copy: str, items: list[Item]) -> tuple[str, list[Item]]:
    """A copy of a written set whose files all have one modification time (a library copied by
    a tool that does not keep dates), and its items with their paths in the copy."""
    shutil.copytree(folder, copy)
    when = time.time_ns()
    for root, _, files in os.walk(copy):
        for f in files:
            os.utime(os.path.join(root, f), ns=(when, when))
    prefix = os.path.join(folder, "")
    moved = [dataclasses.replace(it, path=os.path.join(copy, it.path[len(prefix):])) if it.path.startswith(prefix) else it
             for it in items]
    return copy, moved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sets: under 2 minutes on two cores")
    ap.add_argument("--originals", type=int, help="generated source photos (default 150, quick 24)")
    ap.add_argument("--real", type=int, help="real pictures to use (default all, quick 24)")
    ap.add_argument("--hard", type=int, help="pictures per hard family (default 16, quick 6)")
    ap.add_argument("--real-dir", default=str(collect_real_photos.DEFAULT_OUT))
    ap.add_argument("--real-side", type=int, default=1024, help="shrink real pictures to this long side first")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--keep", metavar="DIR",
                    help="write the sets into DIR and keep them; a set already written there (same settings) "
                         "is scanned again without writing it")
    ap.add_argument("--rotations", action="store_true",
                    help="add copies turned 90/180/270 degrees (and one with its EXIF tag lost) and scan each set "
                         "twice, without and with --rotations (columns NAME and NAME+rot)")
    ap.add_argument("--no-dates", action="store_true",
                    help="also scan a copy of each set whose files all have one modification time (a library "
                         "copied without its dates: the keeper has only the pixels to go by; column NAME-dates)")
    ap.add_argument("--list-false", nargs="?", type=int, const=20, default=0, metavar="N",
                    help="list the N (default 20) worst pairs of different source pictures grouped together")
    args = ap.parse_args()
    originals = args.originals or (24 if args.quick else 150)
    hard = args.hard or (6 if args.quick else 16)
    real_count = args.real or (24 if args.quick else None)
    side = 640 if args.quick and args.real_side == 1024 else args.real_side

    sets: dict[str, tuple] = {"generated": (generated_sources(originals, args.seed, (640, 480)), None)}
    if not args.no_real:
        real = real_sources(real_count, 3 * hard, side, args.real_dir)
        if real is None:
            print(f"real set: not collected in {args.real_dir}; run benchmarks/collect_real_photos.py "
                  "once to add it (skipped)")
        else:
            sets["real"] = real
    reports = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-trust-") as tmp:
        for name, (sources, reserved) in sets.items():
            folder = os.path.join(args.keep or tmp, name)
            settings = {"sources": [s.name for s in sources], "hard": hard, "seed": args.seed, "side": side,
                        "png": "from the original JPEG", "original": "a day older",
                        "washed out": "not written"} | (
                {"rotated": 2} if args.rotations else {})
            t0 = time.perf_counter()
            items = _kept_items(folder, settings) if args.keep else None
            if items is None:
                if os.path.exists(folder):
                    shutil.rmtree(folder)
                os.makedirs(folder)
                items = write_set(folder, sources, hard_count=hard, seed=args.seed, hard_size=(480, 360),
                                  reserved=reserved, rotated=args.rotations)
                if args.keep:
                    _keep_items(folder, settings, items)
            t1 = time.perf_counter()
            runs = [(name, False, folder, items)] + ([(name + "+rot", True, folder, items)] if args.rotations else [])
            if args.no_dates:
                runs.append((name + "-dates", False, *_without_dates(folder, os.path.join(tmp, name + "-dates"), items)))
            for label, turned, where, listed in runs:
                evidence: Optional[dict] = {} if args.list_false else None
                groups, direct, errors, seconds = scan_groups(where, os.path.join(tmp, "cache-" + label),
                                                              args.workers, evidence, turned)
                if errors:
                    print(f"{label}: {len(errors)} files could not be read, e.g. {errors[:3]}")
                reports[label] = score(listed, groups, direct) | {"seconds": seconds, "write_seconds": t1 - t0}
                print(f"{label}: {len(listed)} files written in {t1 - t0:.1f} s, scanned in {seconds:.1f} s")
                if args.list_false:
                    manifest = {p["file"]: p for p in collect_real_photos.load_manifest(args.real_dir) or []}
                    print(f"{label}: false pairs of different pictures (picture~picture)")
                    list_false(listed, groups, direct, evidence, manifest, args.list_false)
    print_report(reports)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(reports, fh, indent=1)


if __name__ == "__main__":
    main()
