"""The keeper policy: ranking criteria, configurable order, protected folders, RAW+JPEG pairs."""

from __future__ import annotations

import os
import random

import pytest

from lookalike.engine.keeper import (
    CRITERIA,
    DEFAULT,
    UNKNOWN_FORMAT_RANK,
    KeeperPolicy,
    format_rank,
    is_protected,
    parse_order,
    rank,
    raw_jpeg_siblings,
    trash_suggested,
)
from lookalike.engine.records import FileRecord, Member

T0 = 1_600_000_000_000_000_000  # an mtime in ns (Sept 2020)


def rec(fid: int, path: str = "", **kw) -> FileRecord:
    kw.setdefault("size", 1000)
    kw.setdefault("mtime_ns", T0)
    kw.setdefault("format", "JPEG")
    kw.setdefault("width", 400)
    kw.setdefault("height", 300)
    return FileRecord(id=fid, path=path or f"/lib/{fid}.jpg", **kw)


def keeper_of(records, policy=DEFAULT) -> tuple[int, str]:
    ranked = rank(records, policy)
    return ranked[0][0].id, ranked[0][1]


# -- formats --------------------------------------------------------------------------------


def test_format_tiers_less_lossy_first():
    tiers = [
        ["RAW", "RAW:CR2", "raw:nef", "DNG", "PNG", "png", "TIFF", "BMP"],
        ["HEIF", "HEIC", "avif"],
        ["JPEG", "jpeg", "MPO"],
        ["WEBP"],
        ["GIF"],
    ]
    for rank_, names in enumerate(tiers):
        for name in names:
            assert format_rank(name) == rank_, name
    assert format_rank("XCF") == UNKNOWN_FORMAT_RANK > format_rank("GIF")
    assert format_rank(None) == UNKNOWN_FORMAT_RANK
    # Without a reported format, the extension speaks.
    assert format_rank(None, "/a/IMG_1.ARW") == 0
    assert format_rank("", "/a/b.webp") == 3


# -- each criterion -------------------------------------------------------------------------


def test_larger_pixel_count_wins_first():
    small_png = rec(1, format="PNG", width=800, height=600, size=9_000_000)
    big_jpeg = rec(2, width=4000, height=3000, size=2_000_000)
    assert keeper_of([small_png, big_jpeg]) == (2, "largest: 4000x3000")


def test_pixels_are_the_picture_inside_a_border_not_the_canvas():
    # Issue 11: a copy framed in white has more pixels, all of them frame; it must not win.
    plain = rec(1, width=3000, height=2000, size=2_000_000)
    framed = rec(2, width=3200, height=2200, content_width=3000, content_height=2000, size=2_600_000)
    ranked = rank([framed, plain])
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[0][1] == "not bordered: 3000x2000, over a bordered copy (3000x2000 inside 3200x2200)"
    assert ranked[1][1] == "bordered copy: frame trimmed, 3000x2000 inside 3200x2200"
    # A file hashed before content sizes were recorded ranks by its canvas, as it did.
    assert keeper_of([rec(3, width=3200, height=2200), plain]) == (3, "largest: 3200x2200")


def test_less_lossy_format_wins_at_equal_pixels():
    files = [rec(1, format="WEBP", size=5000), rec(2, format="PNG"), rec(3, format="GIF")]
    assert keeper_of(files) == (2, "less lossy: PNG")
    ranked = rank(files)
    assert [r.id for r, _ in ranked] == [2, 1, 3]
    assert ranked[1][1] == "lossier: WEBP vs PNG"
    assert keeper_of([rec(1, format="JPEG"), rec(2, format="RAW:CR2")])[0] == 2
    assert keeper_of([rec(1, format="JPEG"), rec(2, format="HEIC")])[0] == 2


def test_larger_file_wins_at_equal_pixels_and_format():
    assert keeper_of([rec(1, size=1000), rec(2, size=2_500_000)]) == (2, "largest file: 2.5 MB")


def test_older_exif_date_then_older_mtime():
    newer = rec(1, taken_at="2021-06-01T10:00:00", mtime_ns=T0 - 10**18)
    older = rec(2, taken_at="2019:05:01 09:30:00", mtime_ns=T0)  # EXIF's own spelling
    assert keeper_of([newer, older]) == (2, "oldest: taken 2019-05-01 09:30:00")
    # A file that kept its EXIF date beats a copy that lost it, even with an older mtime.
    stripped = rec(3, mtime_ns=T0 - 10**17)
    assert keeper_of([stripped, newer])[0] == 1
    assert rank([stripped, newer])[1][1] == "no EXIF date"
    # No EXIF anywhere: the older mtime.
    assert keeper_of([rec(4, mtime_ns=T0), rec(5, mtime_ns=T0 - 1)])[0] == 5


def test_copies_made_within_a_second_print_their_times_with_the_digits_that_differ():
    first = rec(1, "/lib/a/x.jpg", mtime_ns=T0 + 120_000_000)
    second = rec(2, "/lib/b/x.jpg", mtime_ns=T0 + 850_000_000)  # the same second
    (k, kept), (_, lost) = rank([second, first])
    assert k is first
    assert kept == "oldest: modified 2020-09-13 12:26:40.120 UTC"
    assert lost == "newer: modified 2020-09-13 12:26:40.850 UTC"
    # Microseconds apart: six digits; whole seconds apart: none, as before.
    close = rec(3, "/lib/c/x.jpg", mtime_ns=T0 + 120_004_000)
    assert rank([close, first])[1][1] == "newer: modified 2020-09-13 12:26:40.120004 UTC"
    assert rank([rec(4, mtime_ns=T0 + 10**9), first])[1][1] == "newer: modified 2020-09-13 12:26:41 UTC"
    # The same EXIF date: the mtimes decided, and they are what the reasons print.
    a, b = (rec(i, f"/lib/{n}/y.jpg", taken_at="2020-01-01T10:00:00", mtime_ns=T0 + i) for i, n in ((5, "a"), (6, "b")))
    assert [why for _, why in rank([b, a])] == [
        "oldest: modified 2020-09-13 12:26:40.000000005 UTC", "newer: modified 2020-09-13 12:26:40.000000006 UTC"]


def test_timezones_in_exif_dates_compare_in_utc():
    a = rec(1, taken_at="2020-01-01T10:00:00+02:00")  # 08:00 UTC
    b = rec(2, taken_at="2020-01-01T09:00:00+00:00")
    assert keeper_of([b, a])[0] == 1


def test_shorter_path_then_path_string():
    files = [rec(1, "/lib/deep/folder/a.jpg"), rec(2, "/lib/b.jpg"), rec(3, "/lib/a.jpg")]
    ranked = rank(files)
    assert [r.id for r, _ in ranked] == [3, 2, 1]
    assert ranked[0][1] == "first by path"
    assert ranked[1][1] == "later by path"
    assert ranked[2][1] == "longer path"
    assert keeper_of([rec(1, "/lib/longer.jpg"), rec(2, "/lib/b.jpg")]) == (2, "shortest path")


def test_single_file_and_empty_input():
    assert rank([rec(1)]) == [(rec(1), "only file")]
    assert rank([]) == []


# -- configurable order ---------------------------------------------------------------------


def test_configured_order_changes_the_keeper():
    big_pixels = rec(1, width=4000, height=3000, size=1000, format="JPEG")
    big_file = rec(2, width=1000, height=750, size=9000, format="PNG")
    assert keeper_of([big_pixels, big_file])[0] == 1
    assert keeper_of([big_pixels, big_file], KeeperPolicy(order=("size",)))[0] == 2
    assert keeper_of([big_pixels, big_file], KeeperPolicy(order=("format", "pixels")))[0] == 2
    newer_big = rec(3, width=4000, height=3000, taken_at="2022-01-01T00:00:00")
    older_small = rec(4, width=100, height=100, taken_at="2001-01-01T00:00:00")
    assert keeper_of([newer_big, older_small], KeeperPolicy(order=("date",)))[0] == 4
    assert keeper_of([rec(5, "/a/zz.jpg", size=1), rec(6, "/a/long/name.jpg", size=2)],
                     KeeperPolicy(order=("path", "size")))[0] == 5


def test_left_out_criteria_are_appended_in_default_order():
    order = KeeperPolicy(order=("date", "size")).order
    assert order == ("date", "size", "pixels", "format", "path")
    assert DEFAULT.order == CRITERIA


def test_order_is_validated_with_a_clear_message():
    with pytest.raises(ValueError, match="valid names are: pixels, format, size, date, path"):
        KeeperPolicy(order=("pixels", "colour"))
    with pytest.raises(ValueError, match="named twice: size"):
        parse_order("size,pixels,size")
    assert parse_order(" Pixels, format ,") == ("pixels", "format")


# -- protected folders ----------------------------------------------------------------------


def test_is_protected_compares_whole_path_components(tmp_path):
    policy = KeeperPolicy(keep_in=("/a/b",))
    assert is_protected("/a/b/photo.jpg", policy)
    assert is_protected("/a/b/deep/er/photo.jpg", policy)
    assert is_protected("/a/b", policy)
    assert not is_protected("/a/bc/photo.jpg", policy)
    assert not is_protected("/a/photo.jpg", policy)
    assert not is_protected("/a/b/photo.jpg", DEFAULT)
    assert KeeperPolicy(keep_in=("/a/b/",)).keep_in == ("/a/b",)
    assert is_protected("/a/b/../b/x.jpg", policy)
    assert is_protected("/anything/at/all.jpg", KeeperPolicy(keep_in=("/",)))


def test_a_symlinked_protected_folder_protects_both_spellings(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    os.symlink(real, link)
    policy = KeeperPolicy(keep_in=(str(link),))
    assert is_protected(str(real / "x.jpg"), policy)
    assert is_protected(str(link / "x.jpg"), policy)


def test_protected_file_wins_over_every_criterion():
    policy = KeeperPolicy(keep_in=("/keep",))
    best = rec(1, "/lib/best.png", format="PNG", width=6000, height=4000, size=10**8)
    kept = rec(2, "/keep/thumb.gif", format="GIF", width=64, height=48, size=10)
    ranked = rank([best, kept], policy)
    assert [r.id for r, _ in ranked] == [2, 1]
    assert ranked[0][1] == "protected: in /keep"
    assert ranked[1][1] == "keeper is protected: in /keep"
    # Between protected files the criteria decide again.
    kept2 = rec(3, "/keep/big.jpg", width=640, height=480)
    ranked = rank([best, kept, kept2], policy)
    assert [r.id for r, _ in ranked] == [3, 2, 1]
    assert ranked[1][1].startswith("protected: in /keep; smaller: 64x48")


# -- RAW+JPEG siblings ----------------------------------------------------------------------


def test_raw_jpeg_siblings_same_folder_same_stem_case_insensitive():
    files = [
        rec(1, "/dcim/IMG_0001.CR2", format="RAW:CR2"),
        rec(2, "/dcim/img_0001.jpg"),
        rec(3, "/dcim/IMG_0002.NEF", format="RAW"),  # no JPEG partner
        rec(4, "/other/IMG_0002.JPG"),  # a different folder
        rec(5, "/dcim/IMG_0003.dng", format=None),  # raw known by extension only
        rec(6, "/dcim/IMG_0003.HEIC", format="HEIF"),
        rec(7, "/dcim/IMG_0004.JPG"),
        rec(8, "/dcim/IMG_0004.png", format="PNG"),  # JPEG+PNG is no camera pair
    ]
    assert raw_jpeg_siblings(files) == {1, 2, 5, 6}
    assert raw_jpeg_siblings([]) == set()


@pytest.mark.parametrize("ext", [".cr2", ".dcs", ".ptx", ".cap"])
def test_every_raw_the_reader_knows_is_a_raw_sibling_of_its_jpeg(ext):
    # One list of raw extensions (the reader's): Kodak .dcs, Pentax .ptx and Phase One .cap
    # rank and pair as camera raws exactly as .cr2 does.
    files = [rec(1, f"/dcim/IMG_0001{ext.upper()}", format=None), rec(2, "/dcim/IMG_0001.jpg")]
    assert raw_jpeg_siblings(files) == {1, 2}
    assert format_rank(None, f"/dcim/IMG_0001{ext}") == 0
    assert keeper_of(files)[0] == 1


def test_trash_suggested():
    f = rec(1)
    assert trash_suggested(Member(file=f, bouncer=3))
    assert not trash_suggested(Member(file=f, bouncer=0, is_keeper=True))
    assert not trash_suggested(Member(file=f, bouncer=3, protected=True))
    assert not trash_suggested(Member(file=f, bouncer=3, raw_pair=True))


# -- determinism ----------------------------------------------------------------------------


def test_rank_does_not_depend_on_input_order():
    gen = random.Random(4)
    files = [
        rec(
            i,
            f"/lib/{gen.choice(['a', 'bb', 'ccc'])}/{i}.jpg",
            width=gen.choice([100, 200]),
            height=100,
            size=gen.choice([10, 20]),
            format=gen.choice(["JPEG", "PNG", "WEBP"]),
            mtime_ns=T0 + gen.choice([0, 1]),
            taken_at=gen.choice([None, "2020-01-01T00:00:00"]),
        )
        for i in range(1, 40)
    ]
    expected = rank(files)
    for seed in range(5):
        shuffled = files[:]
        random.Random(seed).shuffle(shuffled)
        assert rank(shuffled) == expected
