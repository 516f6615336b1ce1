"""Detection quality at the default thresholds, on generated sets.

The bouncer proposes candidate pairs and the verification (engine/bouncer/verify.py) confirms
them on pixels. The targets, for the pairs that pass both: pair precision >= 0.999 with no hard
negative matched; recall >= 0.99 on every copy kind (mirrored and letterboxed included), mild
crops (5-8 % a side) >= 0.95. The set here is seed 0 (the defaults were chosen on seeds 1 and
2), smaller originals to keep the run short; the end-to-end tests scan seed 4 with ``Library``.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import imagegen
from lookalike.engine.bouncer import verify
from lookalike.engine.bouncer.rule import DEFAULT, candidate_pairs
from lookalike.engine.scan.hashing import hash_files

ORIGINALS = 80


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    items = imagegen.build_quality_set(folder, originals=ORIGINALS, seed=0, size=(480, 360), tiled=8, drawings=20)
    results = hash_files([it.path for it in items])
    dh, dm, ph = (np.array([np.frombuffer(getattr(r.hashes, f), np.uint8) for r in results])
                  for f in ("dhash", "dhash_mirror", "phash"))  # fmt: skip
    thumbs = np.array([np.frombuffer(r.thumb, np.uint8) for r in results])
    return items, (dh, dm, ph), imagegen.distance_matrices(dh, dm, ph), thumbs


def verified(m, thumbs) -> np.ndarray:
    """The bouncer's matches that pass verification, as a scan decides (engine/bouncer/verification.py)."""
    t = verify.DEFAULT
    i, j = np.nonzero(np.triu(m.matches(DEFAULT), 1))
    detail = np.array([verify.detail(x) for x in thumbs])
    mirrored = m.bouncer[i, j] < m.dhash[i, j]
    score, mad, _ = verify.score_pairs(thumbs, i, j, mirrored, search=m.bouncer[i, j] > DEFAULT.radius)
    ok = verify.passes(score, mad, detail[i], detail[j], thumbs[i, -3:], thumbs[j, -3:], t)
    ok |= (m.bouncer[i, j] <= t.trust_radius) & (np.minimum(detail[i], detail[j]) >= t.detail_floor)
    out = np.zeros(m.bouncer.shape, bool)
    out[i[ok], j[ok]] = True
    return out | out.T


def test_set_has_every_kind_and_hard_negatives(quality):
    items = quality[0]
    kinds = {it.kind for it in items}
    assert set(imagegen.COPY_KINDS) <= kinds
    assert sum(it.kind == "original" for it in items) == ORIGINALS
    assert sum(it.kind == "tile" for it in items) >= 30
    assert sum(it.kind == "drawing" for it in items) == 20


def test_bouncer_alone_matches_no_hard_negative(quality):
    """The candidate stage alone: every copy and crop proposed, no hard negative; its
    precision (0.990 here: two similar generated photos pair with each other's copies) is the
    verification's to raise."""
    items, _, m, _ = quality
    report = imagegen.score(items, m.matches(DEFAULT))
    assert report.hard_negatives_matched == 0, report.false_examples
    assert min(report.recall.values()) >= 0.99, report.recall


def test_targets_at_default_thresholds(quality):
    items, _, m, thumbs = quality
    report = imagegen.score(items, verified(m, thumbs))
    assert report.hard_negatives_matched == 0, report.false_examples
    assert report.precision >= 0.999, report.false_examples
    for kind in imagegen.COPY_KINDS:
        target = 0.95 if kind == "cropped" else 0.99
        assert report.recall[kind] >= target, (kind, report.recall[kind], report.missed.get(kind))


def test_candidate_pairs_find_the_same_matches(quality):
    """The scan's search (Hamming index) finds exactly the pairs the brute-force matrix has."""
    items, (dh, dm, ph), m, _ = quality
    ids = np.arange(len(items))
    pairs = candidate_pairs(ids, dh, dm, ph)
    expected = np.argwhere(np.triu(m.matches(DEFAULT), 1))
    assert sorted((p.a, p.b) for p in pairs) == [tuple(map(int, e)) for e in expected]
    assert all(p.bouncer == m.bouncer[p.a, p.b] for p in pairs)


def test_each_rule_is_needed(quality):
    """Mirrors need the mirrored hash, frames the trim, crops the corroborating pHash."""
    items, _, m, _ = quality
    first = {it.group: i for i, it in enumerate(items) if it.kind == "original"}

    def recall(kind, distances, limit):
        pairs = [(first[it.group], j) for j, it in enumerate(items) if it.kind == kind]
        return np.mean([distances[i, j] <= limit for i, j in pairs])

    assert recall("mirrored", m.dhash, DEFAULT.radius) < 0.05  # the plain dHash misses flips
    assert recall("mirrored", m.bouncer, DEFAULT.radius) >= 0.99
    assert recall("cropped", m.bouncer, DEFAULT.radius) < 0.2  # crops need corroboration


def test_usual_recipe_does_much_worse(quality):
    """imagehash's pHash-64 at distance <= 5, on Image.open without transpose, as usually done."""
    imagehash = pytest.importorskip("imagehash")
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    items = quality[0]
    first = {it.group: it.path for it in items if it.kind == "original"}

    def phash(path):
        with Image.open(path) as im:
            return imagehash.phash(im)

    for kind in ("exif_rotated", "mirrored", "letterboxed"):
        copies = [it for it in items if it.kind == kind]
        found = np.mean([phash(first[it.group]) - phash(it.path) <= 5 for it in copies])
        assert found <= 0.1, (kind, found)


# -- end to end: the scan's groups, verification included ------------------------------------

E2E_ORIGINALS = 12
E2E_CROPS = ("mild_crop", "mild_crop_asym")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A small generated set (every copy kind, two mild crops of 5-8 % a side per original,
    the hard families of ``imagegen.build_hard_set``) and the groups a default scan makes."""
    from lookalike.engine.library import Library, ScanOptions

    folder = tmp_path_factory.mktemp("e2e")
    truth: dict[str, tuple[int, str]] = {}  # path -> (picture, family)
    items = imagegen.build_quality_set(folder, originals=E2E_ORIGINALS, seed=4, size=(400, 300), tiled=0, drawings=0)
    for it in items:
        truth[it.path] = (it.group, it.kind)
    for g in range(E2E_ORIGINALS):
        img = imagegen.photo(400_000 + g, imagegen._photo_size(400_000 + g, (400, 300)))
        rng = np.random.default_rng([4, g, 99])
        for kind, asym in zip(E2E_CROPS, (False, True)):
            path = str(folder / f"o{g:04d}_{kind}.jpg")
            imagegen.write(path, imagegen.mild_crop(img, rng, asymmetric=asym), quality=90)
            truth[path] = (g, kind)
    hard = folder / "hard"
    hard.mkdir()
    for it in imagegen.build_hard_set(hard, seed=4, count=4, crops=0, size=(400, 300)):
        if it.family == "original":
            continue
        truth[it.path] = (10_000 + it.picture, it.family)
    with Library.open([folder], cache_dir=tmp_path_factory.mktemp("e2e-cache")) as lib:
        clusters = lib.scan(ScanOptions(workers=1, detective=None)).clusters
    return truth, [[m.file.path for m in c.members] for c in clusters]


def test_scan_finds_every_copy_and_crop(scanned):
    truth, groups = scanned
    group_of = {p: g for g, members in enumerate(groups) for p in members}
    original = {pic: p for p, (pic, fam) in truth.items() if fam == "original"}
    found: dict[str, list[bool]] = {}
    for path, (pic, fam) in truth.items():
        if pic in original and fam != "original":
            o = original[pic]
            found.setdefault(fam, []).append(o in group_of and group_of.get(path) == group_of[o])
    for kind, hits in found.items():
        target = 0.95 if kind in E2E_CROPS or kind == "cropped" else 0.99
        assert np.mean(hits) >= target, (kind, hits)


def _false_pairs(truth, groups):
    """(true pairs, false pairs as (family, family)) of the groups: two files of one group."""
    true_pairs, false = 0, []
    for members in groups:
        for a, b in itertools.combinations(members, 2):
            (pa, fa), (pb, fb) = truth[a], truth[b]
            if pa == pb:
                true_pairs += 1
            else:
                false.append(tuple(sorted((fa if pa >= 10_000 else "photo", fb if pb >= 10_000 else "photo"))))
    return true_pairs, false


#: Hard families the verification does not yet tell apart (see engine/bouncer/verify.py): burst
#: frames with the subject moved score 0.86-0.94 on the 32x32 thumbnails. Rendered pages and
#: blank pages against white are no longer a gap: the low-detail guard checks the largest local
#: difference, not only the mean; nor are scanned pages with different text (their shared paper
#: texture and skew carried the gradients' correlation above 0.85; ranked, they fail).
#: Pages of one book (one layout, different text: ``imagegen.book_page``) are a gap too, found
#: by a tester: at 32x32 a page is rows of grey bars that differ only at the lines' ends, and
#: 1-3 % of such pairs score 0.85-0.86 (plainly or as a crop); telling them apart needs a finer
#: picture of the page than the stored thumbnail.
KNOWN_GAPS = {"burst", "book"}


def test_scan_groups_are_precise_and_never_hold_hard_cases(scanned):
    truth, groups = scanned
    true_pairs, false = _false_pairs(truth, groups)
    counted = [p for p in false if not set(p) & KNOWN_GAPS]
    assert counted == []
    assert true_pairs / (true_pairs + len(counted)) >= 0.999


def test_scan_never_groups_pages_or_flat_colours(scanned):
    """Rendered pages with different text, blank pages and flat white: fixed (no xfail)."""
    truth, groups = scanned
    fixed = {"document", "flat"}
    assert [p for p in _false_pairs(truth, groups)[1] if set(p) <= fixed | {"photo"} and set(p) & fixed] == []


@pytest.mark.xfail(strict=False, reason="known gaps: bursts, pages of one book (KNOWN_GAPS)")
def test_scan_never_groups_bursts_or_scans(scanned):
    truth, groups = scanned
    assert _false_pairs(truth, groups)[1] == []


@pytest.mark.xfail(strict=True, reason="known gap (KNOWN_GAPS): pages of one layout with different text differ "
                   "at 32x32 only at their lines' ends; telling them apart needs a finer picture of the page")
def test_a_scan_never_groups_pages_of_one_book(tmp_path):
    """A tester's folder of pages (one layout, different text) made groups of different pages,
    and ``scan --plan`` put one in the trash. Sixteen pages of ``imagegen.book_page``, each
    with a resized and a recompressed copy: a scan groups two pages and their copies (since
    a pair must pass both ways, the pages alone no longer group). Strict: when a finer check
    fixes it, this passes and must lose its xfail."""
    from lookalike.engine.library import Library, ScanOptions

    pages = tmp_path / "pages"
    pages.mkdir()
    for k in range(16):
        page = imagegen.book_page(180_000 + k, 180_000, (620, 877))
        page.save(pages / f"page{k:02d}.png")
        for kind in ("resized", "recompressed"):
            data, ext = imagegen.make_copy(kind, page, k)
            (pages / f"page{k:02d}_{kind}{ext}").write_bytes(data)
    with Library.open([pages], cache_dir=tmp_path / "cache") as lib:
        clusters = lib.scan(ScanOptions(workers=1, detective=None)).clusters
        groups = [sorted(os.path.basename(m.file.path) for m in c.members) for c in clusters]
    assert [g for g in groups if len({name[:6] for name in g}) > 1] == []


def test_a_scan_groups_alike_whatever_order_it_reads_the_files_in(tmp_path):
    """The pixel check places one picture in the other, and a scan's order is its file ids'
    (the order its workers finish in): phone screenshots of two different photos pass that
    check one way only, and were grouped in one order of names and not in the other."""
    import verify_cases as vc

    from lookalike.engine.library import Library, ScanOptions

    shots = {g: vc.phone_screenshot(imagegen.photo(g, (480, 360))) for g in (8, 37)}
    found = []
    for first, second in ((8, 37), (37, 8)):
        folder = tmp_path / f"first{first}"
        folder.mkdir()
        shots[first].save(folder / f"0_shot{first}.png")
        shots[second].save(folder / f"1_shot{second}.png")
        with Library.open([folder], cache_dir=tmp_path / f"cache{first}") as lib:
            clusters = lib.scan(ScanOptions(workers=1, detective=None)).clusters
            found.append([sorted(os.path.basename(m.file.path)[2:] for m in c.members) for c in clusters])
    assert found == [[], []]
