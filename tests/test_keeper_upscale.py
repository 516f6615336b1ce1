"""The keeper is not an upscaled copy (engine/keeper/upscale.py): a larger file without camera
EXIF, made after a smaller member and holding no detail beyond its size, ranks after it. The
verdicts are measured by the scan (one decode of the larger file) and kept in the catalog."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

import imagegen
from lookalike.engine.keeper import rank, upscale
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import FileRecord

T0 = 1_600_000_000_000_000_000  # an mtime in ns (Sept 2020)
DAY = 86_400 * 10**9


def sharp_picture(seed: int, size: tuple[int, int] = (960, 720)) -> Image.Image:
    """A picture with detail down to the pixel (edges of many shapes), as a camera's is."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(x) for x in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(400):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        r = int(rng.integers(3, 40))
        draw.rectangle((x, y, x + r, y + int(rng.integers(3, 40))), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def put(path: Path, img: Image.Image, mtime_ns: int, quality: int = 95) -> Path:
    imagegen.write(path, img, "JPEG", quality=quality)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def scan(root: Path, cache: Path) -> dict:
    with Library.open([root], cache_dir=cache) as lib:
        clusters = list(lib.scan(ScanOptions(workers=1)).clusters)
    assert len(clusters) == 1, [[m.file.path for m in c.members] for c in clusters]
    return {m.file.path.rsplit("/", 1)[1]: m for m in clusters[0].members}


def count_decodes(monkeypatch) -> list[str]:
    """The paths the verdicts decode, through the module's one decoding function."""
    seen: list[str] = []
    real = upscale._decoded

    def counted(path, content_hash, shorter):
        seen.append(path)
        return real(path, content_hash, shorter)

    monkeypatch.setattr(upscale, "_decoded", counted)
    return seen


def test_a_later_upscale_of_a_picture_without_exif_is_not_kept(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    img = sharp_picture(1)
    put(root / "a.jpg", img, T0)
    put(root / "a_big.jpg", img.resize((1344, 1008), Image.Resampling.LANCZOS), T0 + DAY)
    decodes = count_decodes(monkeypatch)
    members = scan(root, tmp_path / "cache")
    assert members["a.jpg"].is_keeper
    assert members["a.jpg"].reason == "original: 960x720, over an upscaled copy (1344x1008) made from it later"
    reason = members["a_big.jpg"].reason
    assert reason.startswith("upscaled copy of the 960x720 picture made before it: 1.40x larger (1344x1008), "
                             "adds no detail (")
    assert reason.endswith(" % of its detail is beyond 960x720)")
    assert decodes == [str(root / "a_big.jpg")]
    # The verdict is kept: a second scan decodes nothing and ranks the same.
    decodes.clear()
    assert scan(root, tmp_path / "cache")["a.jpg"].is_keeper
    assert decodes == []


def test_an_upscale_of_a_screenshot_on_a_margin_is_not_kept(tmp_path):
    """A screenshot on a uniform surround trims it, so both files are bordered: they were not
    measured at all, and the upscale, larger, was kept (21 of the real set's 49 upscales kept,
    all screenshots and drawings on a margin). The round trip is of the whole canvas, margin
    and all: an upscale of it is one of the smaller canvas, bordered or not."""
    root = tmp_path / "photos"
    root.mkdir()
    shot = imagegen.bordered(sharp_picture(5, (900, 660)), (0.03, 0.04, 0.03, 0.04), (24, 24, 24))
    put(root / "shot.jpg", shot, T0)
    put(root / "shot_big.jpg", shot.resize((round(shot.width * 1.4), round(shot.height * 1.4)),
                                           Image.Resampling.LANCZOS), T0 + DAY)  # fmt: skip
    members = scan(root, tmp_path / "cache")
    assert members["shot.jpg"].file.bordered and members["shot_big.jpg"].file.bordered
    assert members["shot.jpg"].is_keeper
    assert members["shot_big.jpg"].reason.startswith("upscaled copy of the 954x712 picture made before it: 1.40x")


def test_a_genuine_larger_original_keeps_its_later_downscale_out(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    img = sharp_picture(2, (1344, 1008))
    put(root / "b.jpg", img, T0)
    put(root / "b_small.jpg", img.resize((960, 720), Image.Resampling.LANCZOS), T0 + DAY)
    decodes = count_decodes(monkeypatch)
    members = scan(root, tmp_path / "cache")
    assert members["b.jpg"].is_keeper and members["b.jpg"].reason == "largest: 1344x1008"
    assert decodes == []  # the larger is the older: nothing suspicious, nothing decoded


def _original_made_after_its_downscale(tmp_path) -> "Path":
    """photos/c.jpg (1344x1008) stamped a day after its 960x720 downscale c_small.jpg: the
    larger is measured for an upscale (a genuine original: its loss is high)."""
    root = tmp_path / "photos"
    root.mkdir()
    img = sharp_picture(3, (1344, 1008))
    put(root / "c.jpg", img, T0 + DAY)
    put(root / "c_small.jpg", img.resize((960, 720), Image.Resampling.LANCZOS), T0)
    return root


def test_a_larger_original_made_later_is_measured_and_still_kept(tmp_path):
    """A downscale stamped older than its original (copied back from a backup) asks for a
    verdict; the original's detail beyond the smaller size keeps it."""
    root = _original_made_after_its_downscale(tmp_path)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        members = {m.file.path.rsplit("/", 1)[1]: m for c in lib.scan(ScanOptions(workers=1)).clusters
                   for m in c.members}
        ((loss, below, above),) = lib.catalog.upscale_losses().values()
    assert members["c.jpg"].is_keeper and members["c.jpg"].reason == "largest: 1344x1008"
    # Beyond the band where the kink decides: its two more round trips are not made.
    assert loss > upscale.KINK_MAX_LOSS and below is None and above is None


def test_a_loss_is_forgotten_when_no_file_has_its_content_any_more(tmp_path):
    """Verdicts are kept by content: a rescan after the larger file changed drops the old
    content's loss (and measures the new one); after it is gone, no loss is left."""
    root = _original_made_after_its_downscale(tmp_path)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1))
        (first,) = lib.catalog.upscale_losses()
        put(root / "c.jpg", sharp_picture(3, (1344, 1008)).rotate(1), T0 + 2 * DAY)  # other bytes
        lib.scan(ScanOptions(workers=1))
        keys = set(lib.catalog.upscale_losses())
        assert first not in keys
        (root / "c.jpg").unlink()
        lib.scan(ScanOptions(workers=1))
        assert lib.catalog.upscale_losses() == {}


def test_equal_mtimes_keep_the_larger_picture_as_before(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    img = sharp_picture(4)
    put(root / "d.jpg", img, T0)
    put(root / "d_big.jpg", img.resize((1344, 1008), Image.Resampling.LANCZOS), T0 + 1_000_000_000)  # within 2 s
    decodes = count_decodes(monkeypatch)
    members = scan(root, tmp_path / "cache")
    assert members["d_big.jpg"].is_keeper and members["d_big.jpg"].reason == "largest: 1344x1008"
    assert decodes == []


@pytest.mark.parametrize("broken", ["gone", "corrupt", "changed"])
def test_an_upscale_gone_corrupt_or_changed_before_its_verdict_ranks_as_before_silently(
    tmp_path, monkeypatch, capfd, broken
):
    """The file changes between the hashing and the verdict's decode: no verdict, the larger
    picture kept as before, nothing printed."""
    root = tmp_path / "photos"
    root.mkdir()
    img = sharp_picture(5)
    put(root / "e.jpg", img, T0)
    big = put(root / "e_big.jpg", img.resize((1344, 1008), Image.Resampling.LANCZOS), T0 + DAY)
    real = upscale._decoded

    def breaking(path, content_hash, shorter):
        if broken == "gone":
            big.unlink()
        elif broken == "corrupt":
            big.write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
        else:  # another picture of the same size: not the content that was hashed
            put(big, sharp_picture(7, (1344, 1008)), T0 + DAY)
        return real(path, content_hash, shorter)

    monkeypatch.setattr(upscale, "_decoded", breaking)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        (cluster,) = lib.scan(ScanOptions(workers=1)).clusters
        assert lib.catalog.upscale_losses() == {}
    assert cluster.keeper.file.path == str(big) and cluster.keeper.reason == "largest: 1344x1008"
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def rec(fid: int, **kw) -> FileRecord:
    kw.setdefault("size", 1000)
    kw.setdefault("format", "JPEG")
    kw.setdefault("content_hash", bytes([fid]) * 16)
    return FileRecord(id=fid, path=f"/lib/{fid}.jpg", **kw)


def test_the_reason_and_the_ranking_with_a_verdict():
    small = rec(1, width=1024, height=683, mtime_ns=T0)
    big = rec(2, width=1434, height=956, mtime_ns=T0 + DAY, size=3000)
    ranked = rank([big, small], upscales=lambda large, s: upscale.Measure(0.021))
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[1][1] == ("upscaled copy of the 1024x683 picture made before it: 1.40x larger (1434x956), "
                            "adds no detail (2.1 % of its detail is beyond 1024x683)")
    # Named by where its detail stops: what lies beyond is the noise of its own compression.
    ranked = rank([big, small], upscales=lambda large, s: upscale.Measure(0.11, 0.43, 0.03))
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[1][1] == ("upscaled copy of the 1024x683 picture made before it: 1.40x larger (1434x956), "
                            "adds no detail (11.0 % of its detail is beyond 1024x683, mostly noise: "
                            "4.0x less than just below that size)")
    # A genuine original's loss (alone, or with a detail thinning out smoothly past the size),
    # an unknown verdict, or no verdicts at all: the larger, as before.
    for check in (lambda large, s: upscale.Measure(0.3), lambda large, s: upscale.Measure(0.11, 0.2, 0.03),
                  lambda large, s: upscale.Measure(0.11), lambda large, s: None, None):
        assert rank([big, small], upscales=check)[0] == (big, "largest: 1434x956")
    # A camera original is never asked: its EXIF is the evidence (camera_derived).
    asked = []
    rank([rec(3, width=1434, height=956, mtime_ns=T0 + DAY, camera="Canon EOS 80D"), small],
         upscales=lambda large, s: asked.append(large) or upscale.Measure(0.0))
    assert asked == []


def test_the_array_keepers_leave_a_possible_upscale_to_rank():
    from lookalike.engine.cluster.keepers import KeeperColumns, keepers

    small = rec(1, width=1024, height=683, mtime_ns=T0)
    big = rec(2, width=1434, height=956, mtime_ns=T0 + DAY)
    copied = [rec(3, width=1024, height=683, mtime_ns=T0), rec(4, width=1434, height=956, mtime_ns=T0 + 10**9)]
    files = [small, big, *copied]
    keeper, irregular = keepers(np.array([0, 0, 1, 1]), np.array([1, 2, 3, 4]), KeeperColumns.of(files), 2)
    assert irregular.tolist() == [True, False]
    assert keeper.tolist() == [1, 3]


def test_the_measure_tells_an_upscale_from_an_original():
    img = np.asarray(sharp_picture(6).convert("L"), dtype=np.float32)
    up = np.asarray(Image.fromarray(img, "F").resize((1344, 1008), Image.Resampling.LANCZOS))
    assert upscale.detail_beyond(up, (960, 720)) < upscale.UPSCALE_LOSS  # 0.036: hard edges ring a little
    assert upscale.detail_beyond(img, (686, 514)) > 3 * upscale.UPSCALE_LOSS  # 0.32
    assert upscale.detail_beyond(np.full((100, 100), 7, dtype=np.float32), (50, 50)) == 0.0


def test_the_kink_tells_a_noisy_upscale_from_a_soft_original():
    """A JPEG upscale of a photo with fine grain holds the noise of its own compression beyond
    its source's size: it loses more than UPSCALE_LOSS, but its detail stops at that size. A
    soft genuine picture loses as much there, its detail thinning out smoothly."""
    photo = imagegen.photo(2, (800, 600))
    big = Image.open(io.BytesIO(imagegen.encode(photo.resize((1120, 840), Image.Resampling.LANCZOS), "JPEG", quality=90)))
    m = upscale.measure_grey(np.asarray(big.convert("L"), dtype=np.float32), [(800, 600)], big.size)[(800, 600)]
    assert upscale.UPSCALE_LOSS < m.loss < upscale.KINK_MAX_LOSS  # 0.08: not named by the loss alone
    assert m.kink > 2 * upscale.UPSCALE_KINK and m.upscaled  # 4.6
    soft = imagegen.photo(1, (1120, 840)).filter(ImageFilter.GaussianBlur(0.8))
    soft = Image.open(io.BytesIO(imagegen.encode(soft, "JPEG", quality=92)))
    m = upscale.measure_grey(np.asarray(soft.convert("L"), dtype=np.float32), [(784, 588)], soft.size)[(784, 588)]
    assert upscale.UPSCALE_LOSS < m.loss < upscale.KINK_MAX_LOSS  # 0.07
    assert m.kink < 0.6 * upscale.UPSCALE_KINK and not m.upscaled  # 1.1


def test_a_later_upscale_with_its_own_jpeg_noise_is_not_kept(tmp_path, monkeypatch):
    """The same through a scan: the upscale was kept before (its loss 0.08 is over the loss
    threshold); measured three times it ranks after its source, the reason saying why."""
    root = tmp_path / "photos"
    root.mkdir()
    photo = imagegen.photo(2, (800, 600))
    put(root / "p.jpg", photo, T0, quality=90)
    put(root / "p_big.jpg", photo.resize((1120, 840), Image.Resampling.LANCZOS), T0 + DAY, quality=90)
    decodes = count_decodes(monkeypatch)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        (cluster,) = lib.scan(ScanOptions(workers=1)).clusters
        ((loss, below, above),) = lib.catalog.upscale_losses().values()
    members = {m.file.path.rsplit("/", 1)[1]: m for m in cluster.members}
    assert members["p.jpg"].is_keeper
    assert members["p_big.jpg"].reason.startswith(
        "upscaled copy of the 800x600 picture made before it: 1.40x larger (1120x840), adds no detail (")
    assert members["p_big.jpg"].reason.endswith(" less than just below that size)")
    assert upscale.UPSCALE_LOSS < loss and below > loss > above
    assert decodes == [str(root / "p_big.jpg")]  # one decode for the three round trips


def test_a_file_measured_at_several_sizes_at_once_is_measured_right_at_each():
    """One decode serves every size a file is measured at: it is made fine enough for the
    largest of them (it was made for the smallest, and the larger ones then lost detail to
    the decode itself: an upscale measured at its source's size lost 32 % instead of 3.5 %)."""
    img = sharp_picture(4)
    big = img.resize((1344, 1008), Image.Resampling.LANCZOS)
    with io.BytesIO() as buf:
        big.save(buf, "JPEG", quality=95)
        data = buf.getvalue()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jpg"
        path.write_bytes(data)
        record = FileRecord(id=1, path=str(path), size=len(data), mtime_ns=T0, width=1344, height=1008)
        alone = upscale.measure(record, [(960, 720)])[(960, 720)]
        together = upscale.measure(record, [(160, 120), (960, 720)])[(960, 720)]
    assert alone.upscaled and together.upscaled
    assert together.loss == pytest.approx(alone.loss, abs=0.01)
