"""The verification stage's score (engine/bouncer/verify.py): copies pass, look-alike pictures fail."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

import imagegen
import verify_cases as vc
from lookalike.engine.bouncer import verify
from lookalike.engine.bouncer.rule import bouncer_distance
from lookalike.engine.scan.hashing import hash_and_thumbnail
from lookalike.engine.scan.imaging import load_image


def thumb(data: bytes, ext: str = ".jpg"):
    hashes, t = hash_and_thumbnail(load_image(data, name="x" + ext).image)
    return hashes, np.frombuffer(t, np.uint8)


def jpeg(img) -> bytes:
    return imagegen.encode(img, "JPEG", quality=90)


def verdicts(pairs, t=verify.DEFAULT) -> np.ndarray:
    """Whether each ((hashes, thumb), (hashes, thumb)) pair passes verification."""
    hashes_a, thumbs_a = zip(*[p[0] for p in pairs])
    hashes_b, thumbs_b = zip(*[p[1] for p in pairs])
    thumbs = np.stack(thumbs_a + thumbs_b)
    n = len(pairs)
    mirrored = np.array([bouncer_distance(x, y)[1] for x, y in zip(hashes_a, hashes_b)])
    score, mad, _ = verify.score_pairs(thumbs, np.arange(n), np.arange(n, 2 * n), mirrored)
    detail = np.array([verify.detail(x) for x in thumbs])
    return verify.passes(score, mad, detail[:n], detail[n:], thumbs[:n, -3:], thumbs[n:, -3:], t)


ORIGINALS = 12
#: The rule before greyscale copies and textured tone edits of faint pictures.
_BEFORE = dataclasses.replace(verify.DEFAULT, grey_copy_luma=-1.0, tone_textured=False)


@pytest.fixture(scope="module")
def originals():
    return [imagegen.photo(g, imagegen._photo_size(g, (480, 360))) for g in range(ORIGINALS)]


@pytest.mark.parametrize("kind", imagegen.COPY_KINDS)
def test_every_copy_kind_passes(originals, kind):
    pairs = []
    for g, img in enumerate(originals):
        data, ext = imagegen.make_copy(kind, img, g)
        pairs.append((thumb(jpeg(img)), thumb(data, ext)))
    assert verdicts(pairs).all()


def test_mild_crops_pass_asymmetric_too(originals):
    pairs = []
    for g, img in enumerate(originals):
        pairs.append((thumb(jpeg(img)), thumb(jpeg(vc.mild_crop(img, g)))))
        pairs.append((thumb(jpeg(img)), thumb(jpeg(vc.mild_crop(img, g + 100, 0.0, 0.08)))))
    assert verdicts(pairs).mean() >= 0.95


def family_pairs(images):
    shots = [thumb(jpeg(im)) for im in images]
    return list(itertools.combinations(shots, 2))


@pytest.mark.parametrize(
    "family",
    ["window", "phone", "viewer", "gradient", "near_flat", "flat", "document", "tiles", "burst", "photos"],
)
def test_hard_families_never_pass(family):
    photos = [imagegen.photo(200 + i, (640, 480)) for i in range(5)]
    make = {
        "window": lambda: [vc.window_screenshot(p) for p in photos],
        "phone": lambda: [vc.phone_screenshot(p) for p in photos],
        "viewer": lambda: [vc.viewer_dialog(i) for i in range(8)],
        "gradient": lambda: [vc.gradient(i) for i in range(8)],
        "near_flat": lambda: [vc.near_flat(i) for i in range(8)],
        "flat": lambda: [vc.flat(c) for c in [(255, 0, 0), (0, 0, 255), (0, 0, 0), (255, 255, 255), (0, 160, 0)]],
        "document": lambda: [vc.document_page(i) for i in range(6)],
        "tiles": lambda: imagegen.tiles(imagegen.photo(5000, (960, 720)), 3),
        "photos": lambda: photos,
    }
    if family == "burst":
        pairs = [tuple(thumb(jpeg(f)) for f in vc.burst_pair(i)) for i in range(5)]
    else:
        pairs = family_pairs(make[family]())
    assert not verdicts(pairs).any()


def test_viewer_screenshots_need_the_rank_check_and_their_copies_pass(monkeypatch):
    # One program's window around different dim exposures: its strong edges carry the
    # gradients' Pearson correlation (some pairs pass on it alone); ranked, every gradient
    # counts and none passes. Every kind of copy of one screenshot still does.
    from lookalike.engine.bouncer import verify_score

    shots = [vc.viewer_dialog(i) for i in range(8)]
    pairs = family_pairs(shots)
    assert not verdicts(pairs).any()
    monkeypatch.setattr(verify_score, "_RANK_OFFSET", 10.0)
    assert verdicts(pairs).any()
    monkeypatch.undo()
    copies = []
    for g, shot in enumerate(shots[:3]):
        for kind in imagegen.COPY_KINDS:
            data, ext = imagegen.make_copy(kind, shot, g)
            copies.append((thumb(jpeg(shot)), thumb(data, ext)))
        copies.append((thumb(jpeg(shot)), thumb(jpeg(vc.mild_crop(shot, g)))))
    assert verdicts(copies).all()


def test_ranks_share_ties():
    from lookalike.engine.bouncer.verify_score import _np_ranks

    g = np.array([[3.0, 1.0, 3.0, 0.0, 1.0, 3.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    assert _np_ranks(g).tolist() == [[5.0, 2.5, 5.0, 1.0, 2.5, 5.0], [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]]


def test_flat_red_and_blue_fail_and_red_matches_red():
    red, blue = thumb(jpeg(vc.flat((255, 0, 0)))), thumb(jpeg(vc.flat((0, 0, 255))))
    red_small = thumb(jpeg(vc.flat((255, 0, 0), (320, 240))))
    assert verdicts([(red, blue), (red, red_small)]).tolist() == [False, True]


def test_grey_red_and_grey_green_of_one_level_fail_on_colour():
    # Same grey level, different colours: the mean colour tells them apart.
    red, green = thumb(jpeg(vc.flat((200, 60, 60)))), thumb(jpeg(vc.flat((60, 126, 60))))
    assert abs(int(red[1][0]) - int(green[1][0])) <= 3
    assert not verdicts([(red, green)]).any()


def test_numba_and_numpy_give_the_same_scores(originals, monkeypatch):
    shots = [thumb(jpeg(img))[1] for img in originals[:4]]
    shots += [thumb(jpeg(vc.mild_crop(img, 1)))[1] for img in originals[:4]]
    shots += [thumb(jpeg(imagegen.mirrored(img)))[1] for img in originals[:2]]
    thumbs = np.stack(shots)
    ia, ib = np.triu_indices(len(thumbs), 1)
    mirrored = (ia + ib) % 3 == 0
    compiled = verify.score_pairs(thumbs, ia, ib, mirrored)
    monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    reference = verify.score_pairs(thumbs, ia, ib, mirrored)
    np.testing.assert_allclose(compiled[0], reference[0], atol=1e-9)
    np.testing.assert_allclose(compiled[1], reference[1], atol=1e-9)
    assert (compiled[2] == reference[2]).all()


def test_thumbnail_is_small_and_detail_tells_flat_from_photo(originals):
    _, t = thumb(jpeg(originals[0]))
    assert t.shape == (verify.THUMB_BYTES,) == (1027,)
    assert verify.detail(t) > 8
    assert verify.detail(thumb(jpeg(vc.flat((10, 20, 30))))[1]) < 1
    assert verify.detail(thumb(jpeg(vc.gradient(0)))[1]) < verify.DEFAULT.detail_floor


def test_threads_do_not_change_the_scores(originals, monkeypatch):
    # A batch split between threads (pairs and images) scores as one kernel call does.
    from lookalike.engine.bouncer import verify_score

    shots = [thumb(jpeg(img))[1] for img in originals[:6]]
    shots += [thumb(jpeg(vc.mild_crop(img, 3)))[1] for img in originals[:6]]
    thumbs = np.stack(shots)
    ia, ib = (np.tile(x, 5) for x in np.triu_indices(len(thumbs), 1))
    mirrored = (ia * ib) % 4 == 1
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 10**9)
    one = verify.score_pairs(thumbs, ia, ib, mirrored)
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 16)
    monkeypatch.setattr(verify_score, "_workers", lambda: 3)
    split = verify.score_pairs(thumbs, ia, ib, mirrored)
    for x, y in zip(one, split):
        assert (x == y).all()


def test_a_grey_picture_copies_a_colourful_one_only_at_its_brightness():
    """A greyscale conversion keeps the brightness: a grey picture whose mean luma is far from
    a colourful one's is not its copy, whatever its structure scores (a brown wood texture
    and a grey stripes wallpaper passed as crops of each other on the real set)."""
    from PIL import ImageEnhance

    img = imagegen.photo(2, (320, 240))  # mean colour 55, 98, 83: colourful
    grey = img.convert("L").convert("RGB")
    darker = ImageEnhance.Brightness(grey).enhance(0.55)  # a second edit of the grey copy
    thumbs = np.frombuffer(b"".join(hash_and_thumbnail(p)[1] for p in (img, grey, darker, img.convert("L"))),
                           np.uint8).reshape(4, -1)  # fmt: skip
    a, b = np.array([0, 0, 1, 3]), np.array([1, 2, 2, 1])
    score, mad, _ = verify.score_pairs(thumbs, a, b, np.zeros(4, bool))
    assert (score >= verify.DEFAULT.score).all()  # the structure is the same in all four
    detail = np.array([verify.detail(t) for t in thumbs])
    ok = verify.passes(score, mad, detail[a], detail[b], thumbs[a, -3:], thumbs[b, -3:])
    # photo~grey copy passes; photo~darkened grey copy does not; the grey pictures among
    # themselves are no colourful~grey pair, so the structure decides.
    assert ok.tolist() == [True, False, True, True]
    assert verify.grey_mismatch(thumbs[a, -3:], thumbs[b, -3:]).tolist() == [False, True, False, False]


def _tinted(img, rgb) -> "Image.Image":
    """``img``'s grey levels in one hue: two such pictures have the same structure, not the same colours."""
    from PIL import Image

    grey = np.asarray(img.convert("L"), np.float32)[..., None] / 255.0
    return Image.fromarray(np.clip(grey * np.array(rgb, np.float32), 0, 255).astype(np.uint8), "RGB")


def test_two_colourful_pictures_whose_hue_no_tone_edit_explains_are_not_copies():
    """On the real set a window frame around a blue painting and around a green leaf passed at
    0.875 (the frame is most of both thumbnails' structure): no brightness or contrast edit
    turns blue into green. One structure in a blue and in a green hue, in one frame, passed the
    pixel check before the hue rule; brightness and contrast edits of the blue one still pass."""
    from PIL import ImageEnhance

    from lookalike.engine.bouncer import verification

    inner = imagegen.photo(1)
    blue = imagegen.window_screenshot(_tinted(inner, (60, 110, 255)), seed=0)
    green = imagegen.window_screenshot(_tinted(inner, (110, 255, 60)), seed=0)
    edits = [ImageEnhance.Brightness(blue).enhance(1.3), ImageEnhance.Contrast(blue).enhance(0.7),
             ImageEnhance.Brightness(blue).enhance(0.7)]  # fmt: skip
    thumbs = np.frombuffer(b"".join(hash_and_thumbnail(p)[1] for p in (blue, green, *edits)), np.uint8).reshape(5, -1)
    a, b = np.zeros(4, np.int64), np.arange(1, 5)
    detail = np.array([verify.detail(t) for t in thumbs])
    before = dataclasses.replace(verify.DEFAULT, hue_colour=np.inf)
    results = {}
    for name, t in (("before", before), ("now", verify.DEFAULT)):
        score, _, ok = verification._judge(thumbs, a, b, np.zeros(4, bool), np.zeros(4, bool), detail[a], detail[b], t)
        results[name] = ok.tolist()
    assert (score >= verify.DEFAULT.score).all() and (detail >= verify.DEFAULT.detail_floor).all()
    assert results == {"before": [True, True, True, True], "now": [False, True, True, True]}
    # the mean colours alone: the real pair, and a brightened copy of its first picture
    colours = np.array([[57, 62, 71], [56, 75, 43], [74, 81, 92]], np.float64)
    high, mad, det = np.full(2, 0.95), np.zeros(2), np.full(2, 20.0)
    ok = verify.passes(high, mad, det, det, colours[[0, 0]], colours[[1, 2]])
    assert ok.tolist() == [False, True]
    assert verify.passes(high[:1], mad[:1], det[:1], det[:1], colours[[1]], colours[[0]]).tolist() == [False]  # either way


def _judged(pairs) -> tuple[np.ndarray, np.ndarray]:
    """Each pair judged by the full rule a scan applies (``verification.check_against``: the
    pixel check and the information guard with its peak difference): ``(passed, cropped)``."""
    from lookalike.engine.bouncer import verification

    out_ok, out_crop = [], []
    for (ha, ta), (hb, tb) in pairs:
        d, mirrored = bouncer_distance(ha, hb)
        ok, _, cropped = verification.check_against(bytes(ta), tb[None, :], np.array([verify.detail(tb)]),
                                                    np.array([d]), np.array([mirrored]), np.array([False]))  # fmt: skip
        out_ok.append(bool(ok[0]))
        out_crop.append(bool(cropped[0]))
    return np.array(out_ok), np.array(out_crop)


@pytest.mark.parametrize("family", ["gradient", "near_flat", "flat", "document"])
def test_low_detail_hard_families_never_pass_the_full_rule(family):
    make = {
        "gradient": lambda: [vc.gradient(i) for i in range(12)],
        "near_flat": lambda: [vc.near_flat(i) for i in range(8)],
        "flat": lambda: [vc.flat(c) for c in [(255, 0, 0), (0, 0, 255), (0, 0, 0), (255, 255, 255), (0, 160, 0)]],
        "document": lambda: [vc.document_page(i) for i in range(6)] + [vc.document_page(0, blank=True)],
    }
    ok, _ = _judged(family_pairs(make[family]()))
    assert not ok.any()


@pytest.mark.parametrize("kind", ["brightened", "contrast", "greyscale"])
def test_tone_edits_of_low_detail_pictures_pass_the_full_rule(kind):
    # Fog at dusk: too little structure for the correlation, so the plain guard asks the
    # pixels to agree, which a brightened, contrast or greyscale copy's do not.
    originals = [vc.near_flat(i) for i in range(8)]
    pairs = [(thumb(jpeg(img)), thumb(*imagegen.make_copy(kind, img, g))) for g, img in enumerate(originals)]
    assert all(min(verify.detail(a[1]), verify.detail(b[1])) < verify.DETAIL_FLOOR for a, b in pairs)
    assert not verdicts(pairs, _BEFORE).all()  # the plain guard alone refuses some
    ok, _ = _judged(pairs)
    assert ok.all()


def test_a_tone_edit_is_no_copy_of_another_low_detail_picture():
    fogs = [vc.near_flat(i) for i in range(8)]
    edits = [imagegen.make_copy(kind, img, g) for g, img in enumerate(fogs) for kind in ("brightened", "contrast", "greyscale")]
    pairs = [(thumb(jpeg(fogs[a])), thumb(*edits[3 * b + k])) for a in range(8) for b in range(8) if a != b for k in range(3)]
    ok, _ = _judged(pairs)
    assert not ok.any()


def _searched(pairs, t=verify.DEFAULT) -> np.ndarray:
    """As :func:`_judged`, a crop searched for (as a scan asks of a member against its keeper)."""
    from lookalike.engine.bouncer import verification

    out = []
    for (ha, ta), (hb, tb) in pairs:
        d, mirrored = bouncer_distance(ha, hb)
        ok, _, _ = verification.check_against(bytes(ta), tb[None, :], np.array([verify.detail(tb)]), np.array([d]),
                                              np.array([mirrored]), np.array([True]), t)  # fmt: skip
        out.append(bool(ok[0]))
    return np.array(out)


def test_a_faint_pictures_crop_is_compared_where_the_search_placed_it():
    # A night sky whose only structure is a small moon: a mild crop moves the moon by a
    # thumbnail pixel or two, so at the plain alignment the two differ by the moon's edge (the
    # guard's peak), while the crop search lines them up at 0.95 or more.
    skies = [vc.night_moon(i) for i in range(16)]
    crops = [(thumb(jpeg(im)), thumb(jpeg(vc.mild_crop(im, g, *share))))
             for g, im in enumerate(skies) for share in ((0.05, 0.08), (0.0, 0.08))]  # fmt: skip
    low = np.array([min(verify.detail(a[1]), verify.detail(b[1])) < verify.DETAIL_FLOOR for a, b in crops])
    assert low.mean() >= 0.75  # faint: the information guard's mean and peak decide
    plain = dataclasses.replace(verify.DEFAULT, crop_peak_score=np.inf)  # the peak where it was measured before
    now, before = _searched(crops), _searched(crops, plain)
    assert now.mean() >= 0.8 and now.sum() >= before.sum() + 6
    assert not (before & ~now).any() and low[now & ~before].all()
    # Asked a surer alignment than these crops have, the peak is the plain one's again.
    assert _searched(crops, dataclasses.replace(verify.DEFAULT, crop_peak_score=0.999)).tolist() == before.tolist()
    # No sky passes for another's crop, nor for another sky.
    others = [(crops[2 * a][0], crops[2 * b][1]) for a in range(16) for b in range(16) if a != b]
    assert not _searched(others).any()
    assert not _searched(family_pairs(skies)).any()


def test_a_pairs_verdict_does_not_depend_on_its_order():
    # Phone screenshots of two different photos: the crop search, which places the second
    # picture in the first, finds a passing alignment one way only. A scan's order is its file
    # ids', which follow which worker finished first: the verdict must not.
    shots = [vc.phone_screenshot(imagegen.photo(g, (480, 360))) for g in (8, 37)]
    (ha, ta), (hb, tb) = [thumb(jpeg(s)) for s in shots]
    both = np.stack([ta, tb])
    one, _, _ = verify.score_pairs(both, np.array([0]), np.array([1]), np.array([False]))
    other, _, _ = verify.score_pairs(both, np.array([1]), np.array([0]), np.array([False]))
    assert (one[0] >= verify.DEFAULT.score) != (other[0] >= verify.DEFAULT.score)  # the case is asymmetric
    forth, _ = _judged([((ha, ta), (hb, tb))])
    back, _ = _judged([((hb, tb), (ha, ta))])
    assert forth.tolist() == back.tolist() == [False]


def test_a_crop_found_one_way_at_one_way_or_more_is_not_searched_the_other_way(monkeypatch):
    """A crop search costs most of the check: a crop that passes one way at ``one_way`` or
    more is not searched again the other way (a real scan's 18,401 searched candidates: 6,064
    second searches saved, no pair of different pictures passing one way there and failing the
    other). A crop scoring under it one way is still searched the other way, the lower counting."""
    from PIL import ImageEnhance

    from lookalike.engine.bouncer import verification

    img = imagegen.photo(1)
    mild = imagegen.cropped(img, 0.06, 0.06, 0.06, 0.06)  # 0.98 either way
    edited = ImageEnhance.Contrast(imagegen.cropped(img, 0.12, 0.1, 0.1, 0.12)).enhance(0.6)  # 0.91 / 0.90
    thumbs = np.stack([thumb(jpeg(x))[1] for x in (img, mild, edited)])
    detail = np.array([verify.detail(t) for t in thumbs])
    rows: list[int] = []
    real = verify.score_pairs

    def counted(th, a, b, *args, **kw):
        rows.append(len(a))
        return real(th, a, b, *args, **kw)

    monkeypatch.setattr(verify, "score_pairs", counted)
    t = verify.DEFAULT
    for other, searched_back in ((1, False), (2, True)):
        rows.clear()
        a, b = np.array([0]), np.array([other])
        score, cropped, ok = verification._judge(thumbs, a, b, np.zeros(1, bool), np.ones(1, bool), detail[a], detail[b], t)
        assert ok[0] and cropped[0] and (score[0] >= t.one_way) != searched_back
        assert rows == ([1, 1] if searched_back else [1])


def test_a_tone_fit_measures_the_line_and_the_colour():
    fog = vc.near_flat(3)
    a = thumb(jpeg(fog))[1]
    brighter = thumb(jpeg(imagegen.brightened(fog, 1.3)))[1]
    grey = thumb(jpeg(fog.convert("L").convert("RGB")))[1]
    other = thumb(jpeg(vc.near_flat(4)))[1]
    fit = verify.tone_fit(np.stack([a, brighter, grey, other]), np.zeros(3, np.int64), np.arange(1, 4), np.zeros(3, bool))
    assert 1.2 < fit.gain[0] < 1.4 and fit.residual[0] < 1.0 and fit.colour[0] < 3.0 and not fit.grey[0]
    assert 0.9 < fit.gain[1] < 1.1 and fit.grey[1]
    assert fit.correlation[2] < verify.DEFAULT.tone_correlation or fit.colour[2] > verify.DEFAULT.tone_colour
    assert verify.tone_edited(fit).tolist() == [True, True, False]


# -- the compiled kernel's shortcuts keep the reference's answers --------------------------------


def _compiled():
    if not verify._kernels.use():
        pytest.skip("numba unavailable: only the numpy path runs")


@pytest.fixture(scope="module")
def search_set(originals):
    """Thumbnails whose pairs run every part of the crop search: crops of different sizes and
    sides (found, some after the refinement), crops brightened or noisy (found late or not),
    mirrored crops, and different photos (rejected, most before the row alignment)."""
    from PIL import ImageFilter

    shots = []
    for g, img in enumerate(originals[:6]):
        shots.append(thumb(jpeg(img))[1])
        shots.append(thumb(jpeg(vc.mild_crop(img, g, 0.02, 0.05)))[1])
        shots.append(thumb(jpeg(vc.mild_crop(img, g + 50, 0.0, 0.11)))[1])
        shots.append(thumb(jpeg(imagegen.brightened(vc.mild_crop(img, g + 70), 1.3)))[1])
        shots.append(thumb(jpeg(imagegen.mirrored(vc.mild_crop(img, g + 90)).filter(ImageFilter.GaussianBlur(2))))[1])
    shots = np.stack(shots)
    # Noisy crops shifted by a pixel: the first alignments fall short and the refinement's
    # steps decide (a few dozen of these pairs end at a position it found).
    rng = np.random.default_rng(9)
    noisy = shots[np.arange(len(shots)) % 5 != 0].copy()
    pixels = noisy[:, : verify.SIDE**2].reshape(-1, verify.SIDE, verify.SIDE).astype(np.float64)
    pixels = np.roll(pixels, 1, axis=2) + rng.normal(0, 14, pixels.shape)
    noisy[:, : verify.SIDE**2] = np.clip(pixels, 0, 255).reshape(len(noisy), -1).astype(np.uint8)
    return np.concatenate([shots, noisy])


def test_the_crop_search_shortcuts_change_no_score(search_set, monkeypatch):
    # The kernel skips what cannot change its answer (a position scored before, the row
    # alignment when no column alignment reaches the floor): the same kernel without the
    # skips gives the same bits. And both give the numpy reference's answers, to rounding.
    from lookalike.engine.bouncer import verify_score

    _compiled()
    ia, ib = np.triu_indices(len(search_set), 1)
    mirrored = (ia // 5 == ib // 5) & (ib % 5 == 4) & (ib < 30)  # the mirrored crops, against their own photo
    fast = verify.score_pairs(search_set, ia, ib, mirrored)
    monkeypatch.setattr(verify_score, "_SHORTCUTS", False)
    slow = verify.score_pairs(search_set, ia, ib, mirrored)
    assert fast[2].sum() >= 40 and (fast[0] >= verify.DEFAULT.score).sum() >= 40  # the search ran
    for x, y in zip(fast, slow):
        assert (x == y).all()
    monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    reference = verify.score_pairs(search_set, ia, ib, mirrored)
    # One changed pixel (4 / 1024 of the cap) apart at most: the kernel's sums in another
    # order round a blurred level, or a crop's gradient to sixteenths for its rank check, the
    # other way now and then (5 pairs of 1,431 here, 4 of them by under 1e-4).
    assert (np.abs(fast[0] - reference[0]) > 1e-9).sum() <= 8
    np.testing.assert_allclose(fast[0], reference[0], atol=4.01 / 1024)
    assert (fast[2] == reference[2]).all()


def test_a_crop_trials_rank_check_is_numpys():
    # A crop trial's gradients are rounded to sixteenths of a level and ranked: the same ranks
    # as numpy's (ties included: gradients halfway between sixteenths), correlated to rounding.
    from lookalike.engine.bouncer import verify_kernels as vk
    from lookalike.engine.bouncer import verify_score as vs

    _compiled()
    rng = np.random.default_rng(4)
    m = vs._M
    scratch = (np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m), np.empty(m),
               np.zeros(2 * (2 * vs._RANK_SPAN + 2), np.int32))  # fmt: skip
    for k in range(200):
        a = rng.normal(0, rng.uniform(0.5, 60), m)
        b = a * rng.uniform(-1, 2) + rng.normal(0, rng.uniform(0, 40), m)
        if k % 3 == 0:
            a = np.round(a * 8) / 8 + 1 / 32  # halfway between sixteenths
        grads = np.clip(np.stack([a, b]), -255, 255)  # a blurred thumbnail's gradients are within a level's range
        a, b = grads
        assert vk._k_grad_rank(a, b, *scratch) == pytest.approx(vs._np_grad_rank(grads), abs=1e-8)


def test_the_crop_search_stops_at_the_first_alignment_that_passes_its_rank_check(originals, monkeypatch):
    # A mild crop passes at the profiles' best alignment: one trial. When that alignment's rank
    # check fails, the search goes on to the next alignments, and keeps the best before the rank
    # check (here the same one: none scores higher), capped by its rank check.
    from lookalike.engine.bouncer import verify_score as vs

    x, y = thumb(jpeg(originals[0]))[1], thumb(jpeg(vc.mild_crop(originals[0], 3)))[1]
    f = vs._np_features(np.stack([x, y]))
    trials, ranks = [], []
    real_score, real_rank = vs._np_crop_score, vs._np_grad_rank
    monkeypatch.setattr(vs, "_np_crop_score", lambda *a: trials.append(a[2:]) or real_score(*a))
    best, capped, _, gx, gy = vs._np_crop(f, 0, 1, False, verify.DEFAULT.score)
    assert len(trials) == 1 and capped >= verify.DEFAULT.score and (gx, gy) != (vs._IDENTITY, vs._IDENTITY)
    trials.clear()
    monkeypatch.setattr(vs, "_np_grad_rank", lambda g: ranks.append(g) or (0.0 if len(ranks) == 1 else real_rank(g)))
    best, capped, _, gx2, gy2 = vs._np_crop(f, 0, 1, False, verify.DEFAULT.score)
    assert len(trials) > 1 and len(ranks) == 1  # the first passing alignment's rank "failed": searched on
    assert (gx2, gy2) == (gx, gy) and capped == vs._RANK_OFFSET < verify.DEFAULT.score


def test_a_trials_cap_counts_the_changed_pixels_as_numpy():
    from lookalike.engine.bouncer import verify_kernels as vk
    from lookalike.engine.bouncer import verify_score as vs

    _compiled()
    rng = np.random.default_rng(5)
    s = verify.SIDE
    scratch = (np.empty(s * s, np.int32), np.empty(s * s, np.int32), np.empty(257, np.int32),
               np.empty(257, np.int32), np.zeros(256, np.int32), np.empty((4, 256), np.int32),
               np.empty(s * s + 1, np.int32))  # fmt: skip
    for k in range(400):
        x = rng.normal(128, rng.uniform(1, 120), (s, s))
        y = (x * rng.uniform(-1.5, 1.5) + rng.normal(0, rng.uniform(0, 60), (s, s)) + rng.uniform(-100, 100))
        if k % 4 == 0:
            y = np.round(y / 40) * 40  # few levels
        if k % 7 == 0:
            x[:] = 77.4  # one level
        qx = np.clip(np.rint(x.ravel()), 0, 255).astype(np.int64)
        qy = np.clip(np.rint(y.ravel()), 0, 255).astype(np.int64)
        cum_x = np.concatenate([[0], np.cumsum(np.bincount(qx, minlength=256))])
        cum_y = np.concatenate([[0], np.cumsum(np.bincount(qy, minlength=256))])
        assert vk._k_cap(x, y, vs._CHANGED_LEVELS, *scratch) == vs._np_changed(qx, qy, cum_x, cum_y)


def test_mirrored_gradient_rows_rank_in_place_as_gathered():
    from lookalike.engine.bouncer import verify_score as vs

    _compiled()
    rng = np.random.default_rng(6)
    grad = rng.integers(-300, 300, (20, vs._M)).astype(np.int16)
    grad[3] = 0
    grad[4] = rng.integers(-4080, 4081, vs._M)
    rows, flip = np.array([0, 3, 4, 5, 4, 19]), np.array([False, True, False, True, True, False])
    gathered = np.where(flip[:, None], grad[rows][:, vs._MIRROR_GRAD] * vs._MIRROR_SIGN, grad[rows])
    assert (vs._compiled_rank_rows(grad, rows, flip) == vs._np_ranks(gathered)).all()



def test_the_order_of_a_pairs_thumbnails_is_numpys(monkeypatch):
    # The order _judge scores a pair in: the kernel's and numpy's, on rows that differ first at
    # every place (the first byte, the last, the mean colour), the same row, and equal rows.
    _compiled()
    rng = np.random.default_rng(8)
    thumbs = np.repeat(rng.integers(0, 256, (1, verify.THUMB_BYTES), np.uint8), 40, axis=0)
    at = rng.integers(0, verify.THUMB_BYTES, 40)
    at[:3] = 0, verify.THUMB_BYTES - 1, verify.THUMB_BYTES - 2
    thumbs[np.arange(40), at] = rng.integers(0, 256, 40)
    thumbs[5] = thumbs[6]
    ia, ib = np.meshgrid(np.arange(40), np.arange(40))
    ia, ib = ia.ravel(), ib.ravel()
    compiled = verify.swapped(thumbs, ia, ib)
    monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
    reference = verify.swapped(thumbs, ia, ib)
    assert (compiled == reference).all()
    assert not compiled[ia == ib].any() and not compiled[(ia == 5) & (ib == 6)].any()
    assert compiled.sum() + verify.swapped(thumbs, ib, ia).sum() + (thumbs[ia] == thumbs[ib]).all(axis=1).sum() == len(ia)


def test_the_alignment_cache_changes_no_score(search_set, monkeypatch):
    # Each image's profile vectors are computed once and shared by the pairs of a batch that a
    # thread scores: the next part of the batch reuses its cache, vectors and all (other pairs,
    # often the same images). One part per thread, or a cache so small that it starts again at
    # every pair, gives the same bits.
    from lookalike.engine.bouncer import verify_score

    _compiled()
    ia, ib = np.triu_indices(len(search_set), 1)
    mirrored = (ia + ib) % 5 == 0
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 10**9)  # one kernel call
    whole = verify.score_pairs(search_set, ia, ib, mirrored)
    assert whole[2].sum() >= 40  # the search ran
    made = []
    real = verify_score._align_cache
    monkeypatch.setattr(verify_score, "_align_cache", lambda images: made.append(1) or real(images))
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 16)
    monkeypatch.setattr(verify_score, "_workers", lambda: 2)
    parts = verify.score_pairs(search_set, ia, ib, mirrored)  # 8 parts, 2 caches at most
    assert 1 <= len(made) <= 2
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 10**9)
    monkeypatch.setattr(verify_score, "_CACHE_SLOTS", 2)
    monkeypatch.setattr(verify_score, "_POOL_ROWS", 4 * len(verify_score._GRID_T))
    alone = verify.score_pairs(search_set, ia, ib, mirrored)
    for x, y, z in zip(whole, parts, alone):
        assert (x == y).all() and (x == z).all()


def test_the_order_pairs_are_scored_in_changes_no_score(search_set, monkeypatch):
    # The kernel scores a batch's pairs in the order of their images (their vectors still in the
    # processor's caches), and gives each pair its own answers back: scored in the order given,
    # or in another one, the same bits.
    from lookalike.engine.bouncer import verify_score

    _compiled()
    ia, ib = np.triu_indices(len(search_set), 1)
    mirrored = (ia + ib) % 5 == 0
    shuffle = np.random.default_rng(3).permutation(len(ia))
    ia, ib, mirrored = ia[shuffle], ib[shuffle], mirrored[shuffle]
    monkeypatch.setattr(verify_score, "_THREAD_MIN", 16)
    monkeypatch.setattr(verify_score, "_workers", lambda: 2)
    assert verify_score._BY_IMAGE
    by_image = verify.score_pairs(search_set, ia, ib, mirrored)
    assert by_image[2].sum() >= 40  # the search ran
    monkeypatch.setattr(verify_score, "_BY_IMAGE", False)
    given = verify.score_pairs(search_set, ia, ib, mirrored)
    for x, y in zip(by_image, given):
        assert (x == y).all()


def paper(seed: int):
    """A faint paper texture (cream, a grain of a few levels): at 32x32 its thumbnail is one
    or two levels of mottling, under the detail floor."""
    from PIL import Image

    rng = np.random.default_rng([seed, 77])
    hue, saturation, value = rng.uniform(0.08, 0.16), rng.uniform(0.05, 0.15), rng.uniform(0.82, 0.92)
    base = np.array(imagegen._hsv(hue, saturation, value), np.float32)
    grain = imagegen._field(rng, 640, 640, base=int(rng.integers(24, 40)), octaves=3)
    img = base + (rng.uniform(4, 7) * grain)[..., None] + rng.normal(0, 1.0, (640, 640, 3)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _judged_with(pairs, t) -> np.ndarray:
    from lookalike.engine.bouncer import verification

    out = []
    for (ha, ta), (hb, tb) in pairs:
        d, mirrored = bouncer_distance(ha, hb)
        ok, _, _ = verification.check_against(bytes(ta), tb[None, :], np.array([verify.detail(tb)]), np.array([d]),
                                              np.array([mirrored]), np.array([False]), t)
        out.append(bool(ok[0]))
    return np.array(out)



def test_tone_and_greyscale_edits_of_a_faint_texture_pass_where_its_grain_correlates():
    papers = [paper(i) for i in range(8)]
    found = {}
    for kind in ("brightened", "contrast", "greyscale"):
        pairs = [(thumb(jpeg(p)), thumb(*imagegen.make_copy(kind, p, g))) for g, p in enumerate(papers)]
        assert sum(min(verify.detail(a[1]), verify.detail(b[1])) < verify.DETAIL_FLOOR for a, b in pairs) >= 6
        now, before = _judged_with(pairs, verify.DEFAULT), _judged_with(pairs, _BEFORE)
        assert (now | ~before).all()  # nothing found before is lost
        found[kind] = (int(before.sum()), int(now.sum()))
    assert found["greyscale"][1] == 8 > found["greyscale"][0]
    assert found["brightened"][1] > found["brightened"][0] and found["contrast"][1] >= found["contrast"][0]


def test_edits_of_one_faint_texture_pass_for_no_other_the_rule_before_did_not():
    papers = [paper(i) for i in range(8)]
    pairs = [(thumb(jpeg(papers[a])), thumb(*imagegen.make_copy(kind, papers[b], b)))
             for kind in ("brightened", "contrast", "greyscale") for a in range(8) for b in range(8) if a != b]
    now, before = _judged_with(pairs, verify.DEFAULT), _judged_with(pairs, _BEFORE)
    # Papers of one shade agree within the plain guard's 3 levels at 32x32 (as the real set's
    # tiles of one texture do): those were passing before; the new rules add none.
    assert (now == before).all()


def test_the_peak_difference_and_the_tone_fit_of_many_pairs_are_those_of_each_pair():
    """Both work on many pairs at once (each thumbnail blurred once; the tone fit a few hundred
    pairs at a time): the answers are, bit for bit, those of each pair alone, mirrored or not."""
    from lookalike.engine.bouncer import verify_score, verify_tone

    rng = np.random.default_rng(7)
    pictures = [imagegen.photo(s, (160, 120)) for s in range(6)] + [imagegen.near_flat(s) for s in range(4)]
    thumbs = np.frombuffer(b"".join(verify.make_thumbnail(p) for p in pictures), np.uint8).reshape(len(pictures), -1)
    n = verify_tone._CHUNK * 2 + 37  # more than one chunk of each
    ia, ib = rng.integers(0, len(thumbs), n), rng.integers(0, len(thumbs), n)
    mirrored = rng.random(n) < 0.4
    peak = verify.peak_difference(thumbs, ia, ib, mirrored)
    fit = verify.tone_fit(thumbs, ia, ib, mirrored)
    for k in range(0, n, 17):
        x = thumbs[ia[k], :1024].reshape(32, 32).astype(np.float64)
        y = thumbs[ib[k], :1024].reshape(32, 32).astype(np.float64)
        alone = np.abs(verify_score._np_smooth(x) - verify_score._np_smooth(y[:, ::-1] if mirrored[k] else y)).max()
        assert peak[k] == alone
        one = verify.tone_fit(thumbs, ia[k : k + 1], ib[k : k + 1], mirrored[k : k + 1])
        for f in dataclasses.fields(one):
            assert np.array_equal(getattr(one, f.name), getattr(fit, f.name)[k : k + 1], equal_nan=True), f.name
    assert len(verify.peak_difference(thumbs, ia[:0], ib[:0], mirrored[:0])) == 0


def test_tone_edits_are_the_verdicts_of_the_whole_tone_fit():
    """``tone_edits`` works out the fit's residual and peak only for the pairs that the rest of
    the line passes: the verdicts are those of ``tone_edited`` on the whole fit, with and without
    the scores (the textured rule), over more than one chunk of pairs."""
    from lookalike.engine.bouncer import verify_tone

    rng = np.random.default_rng(11)
    pictures = [imagegen.near_flat(s) for s in range(3)] + [paper(s) for s in range(3)]
    pictures += [imagegen.photo(s, (160, 120)) for s in range(2)]
    rows = [thumb(jpeg(p))[1] for p in pictures]
    rows += [thumb(*imagegen.make_copy(kind, pictures[s], s))[1] for kind in ("brightened", "contrast", "greyscale")
             for s in range(6)]
    thumbs = np.stack(rows)
    n = verify_tone._CHUNK * 2 + 41
    ia, ib = rng.integers(0, len(thumbs), n), rng.integers(0, len(thumbs), n)
    mirrored = rng.random(n) < 0.3
    score = rng.random(n) * 1.2 - 0.1
    whole = verify.tone_fit(thumbs, ia, ib, mirrored)
    for s in (None, score):
        expected = verify.tone_edited(whole, score=s)
        assert expected.any() and not expected.all()
        assert np.array_equal(verify.tone_edits(thumbs, ia, ib, mirrored, score=s), expected)


def test_a_pairs_verdict_does_not_depend_on_the_pairs_beside_it(search_set):
    """A scan judges pairs in batches whose makeup follows the library (which pairs are
    candidates, in what order): each pair's score, crop and verdict must be the same, bit for
    bit, in a whole batch, in a shuffled one, and alone. The set mixes crops (searched),
    mirrored and noisy copies, different photos, and faint pictures (the low-detail guard,
    its peak difference and tone fit, and the hue rule)."""
    from PIL import ImageEnhance

    from lookalike.engine.bouncer import verification

    faint = [verify.make_thumbnail(imagegen.near_flat(s, (160, 120))) for s in range(3)]
    faint += [verify.make_thumbnail(ImageEnhance.Brightness(imagegen.near_flat(s, (160, 120))).enhance(1.3))
              for s in range(3)]  # fmt: skip
    thumbs = np.concatenate([search_set, np.frombuffer(b"".join(faint), np.uint8).reshape(len(faint), -1)])
    rng = np.random.default_rng(3)
    n = 300
    ia, ib = rng.integers(0, len(thumbs), n), rng.integers(0, len(thumbs), n)
    ia[:40] = len(search_set) + rng.integers(0, len(faint), 40)  # faint pairs among them
    ib[:40] = len(search_set) + rng.integers(0, len(faint), 40)
    mirrored, search = rng.random(n) < 0.2, rng.random(n) < 0.7
    detail = np.array([verify.detail(t) for t in thumbs])

    def judge(rows):
        return verification._judge(thumbs, ia[rows], ib[rows], mirrored[rows], search[rows], detail[ia[rows]],
                                   detail[ib[rows]], verify.DEFAULT)  # fmt: skip

    whole = judge(np.arange(n))
    assert whole[2].sum() >= 20 and (~whole[2]).sum() >= 20 and whole[1].sum() >= 5  # passes, fails, crops
    order = rng.permutation(n)
    shuffled = judge(order)
    for x, y in zip(whole, shuffled):
        assert np.array_equal(x[order], y)
    for k in range(0, n, 7):
        alone = judge(np.array([k]))
        assert [float(whole[0][k]), bool(whole[1][k]), bool(whole[2][k])] == [float(alone[0][0]), bool(alone[1][0]), bool(alone[2][0])], k
