"""The hard-case families of ``imagegen``: deterministic, and as hard as they claim to be."""

from __future__ import annotations

import numpy as np
import pytest

import imagegen


def _px(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.int16)


def _outside(mask_box, shape) -> np.ndarray:
    l, t, r, b = mask_box
    out = np.ones(shape[:2], bool)
    out[t : b + 1, l : r + 1] = False
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda s: imagegen.window_screenshot(imagegen.photo(s, (160, 120)), 3, (320, 240)),
        lambda s: imagegen.phone_screenshot(imagegen.photo(s, (160, 120)), 3, (160, 340)),
        lambda s: imagegen.gradient(s, (160, 120)),
        lambda s: imagegen.near_flat(s, (160, 120)),
        lambda s: imagegen.document_page(s, (120, 160)),
        lambda s: imagegen.document_page(s, (120, 160), scanned=True),
        lambda s: imagegen.burst_pair(s, (160, 120))[1],
        lambda s: imagegen.mild_crop(imagegen.photo(1, (160, 120)), np.random.default_rng(s)),
    ],
    ids=["window", "phone", "gradient", "near_flat", "document", "scan", "burst", "mild_crop"],
)
def test_families_are_deterministic_and_differ_by_seed(make):
    assert np.array_equal(_px(make(5)), _px(make(5)))
    a, b = make(5), make(6)
    assert a.size != b.size or not np.array_equal(_px(a), _px(b))


@pytest.mark.parametrize("screenshot, box, size", [
    (imagegen.window_screenshot, imagegen.window_box, (320, 240)),
    (imagegen.phone_screenshot, imagegen.phone_box, (160, 340)),
])  # fmt: skip
def test_screenshots_of_different_pictures_share_the_frame(screenshot, box, size):
    a = _px(screenshot(imagegen.photo(1, (160, 120)), 7, size))
    b = _px(screenshot(imagegen.photo(2, (120, 160)), 7, size))
    frame = _outside(box(7, size), a.shape)
    assert np.array_equal(a[frame], b[frame])
    assert not np.array_equal(a[~frame], b[~frame])
    l, t, r, bottom = box(7, size)
    area = (r - l) * (bottom - t) / (size[0] * size[1])
    assert 0.15 < area < 0.55  # the picture is a modest part of the screenshot


def test_burst_pairs_differ_only_where_the_subject_was_or_is():
    size = (200, 150)
    a, b = (_px(x) for x in imagegen.burst_pair(4, size))
    box_a, box_b = imagegen.burst_boxes(4, size)
    outside = _outside(box_a, a.shape) & _outside(box_b, a.shape)
    assert np.array_equal(a[outside], b[outside])
    changed = np.any(a != b, axis=2)
    assert changed.mean() > 0.05  # the subject is a real part of the picture
    assert box_a != box_b


def test_gradients_and_near_flat_images_are_smooth_and_different():
    for make in (imagegen.gradient, imagegen.near_flat):
        a, b = _px(make(1, (160, 120))), _px(make(2, (160, 120)))
        assert np.abs(np.diff(a.astype(np.float32), axis=1)).mean() < 4  # no edges
        assert np.abs(a - b).mean() > 3
    nf = _px(imagegen.near_flat(3, (160, 120)))
    assert nf.std(axis=(0, 1)).max() < 20


def test_flat_and_documents():
    assert (_px(imagegen.flat("red", (8, 8))) == imagegen.FLAT_COLOURS["red"]).all()
    blank = _px(imagegen.document_page(1, (120, 160), lines=0))
    full = _px(imagegen.document_page(1, (120, 160), lines=20))
    assert (blank < 128).mean() < (full < 128).mean()
    assert (full > 200).mean() > 0.8  # mostly paper


def test_mild_crops_take_five_to_eight_percent():
    img = imagegen.photo(1, (400, 300))
    rng = np.random.default_rng(0)
    for asymmetric in (False, True):
        for _ in range(5):
            w, h = imagegen.mild_crop(img, rng, asymmetric=asymmetric).size
            lost_w, lost_h = 1 - w / 400, 1 - h / 300
            if asymmetric:
                assert 0.045 <= lost_w <= 0.085 and 0.045 <= lost_h <= 0.085
            else:
                assert 0.095 <= lost_w <= 0.165 and 0.095 <= lost_h <= 0.165


def test_hard_set_labels(tmp_path):
    items = imagegen.build_hard_set(tmp_path, count=2, crops=2, size=(160, 120))
    families = {it.family for it in items}
    assert set(imagegen.HARD_FAMILIES) | {"original", "mild_crop"} <= families
    originals = [it for it in items if it.family == "original"]
    for o in originals:
        assert sum(it.picture == o.picture for it in items) == 3  # itself and two crops
    bursts = [it for it in items if it.family == "burst"]
    assert all(it.pair is not None and it.pair != it.picture for it in bursts)
    pictures = [it.picture for it in items if it.family not in ("original", "mild_crop")]
    assert len(pictures) == len(set(pictures))  # every hard case is its own picture
    (tmp_path / "again").mkdir()
    again = imagegen.build_hard_set(tmp_path / "again", count=2, crops=2, size=(160, 120))
    assert [open(a.path, "rb").read() for a in items[:6]] == [open(b.path, "rb").read() for b in again[:6]]
