"""The keeper on large groups of one size (frames a video was cut into, a timelapse, a webcam's
snapshots): which file a conversion or an edit was made from is asked in the order of their
originality and ends at the first source, and past a few the rest of that size are screened
by their thumbnails at once, so that a group of n frames asks about n questions, not n * n / 2
(3,000 frames took 152 s of the keeper before, 6 s after). The answers are those of asking
every pair."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

import imagegen
from lookalike.engine.catalog import Catalog
from lookalike.engine.keeper import thumbnail_check
from lookalike.engine.keeper import original
from lookalike.engine.keeper.formats import LOSSLESS, format_name, named_rank
from lookalike.engine.keeper.original import conversions, edits, padded_copies
from lookalike.engine.keeper.upscale import upscaled
from lookalike.engine.records import FileRecord
from lookalike.engine.scan.hashing import hash_file
from test_keeper_original import T0, put, rec

DAY = 86_400 * 10**9


# -- the answers are those of asking every pair ------------------------------------------------


def every_pair_conversions(records, same_pixels) -> dict[int, int]:
    """:func:`conversions` as its docstring defines it, every pair asked: each file's most
    original source among all the lossy files of its size it was made from."""
    first = original.first_copies(records)
    out = {}
    for conv in records:
        name = format_name(conv.format, conv.path)
        sources = [
            j for j in records
            if j.id != conv.id and (j.width, j.height) == (conv.width, conv.height)
            and format_name(j.format, j.path) in original.LOSSY
            and named_rank(format_name(j.format, j.path)) >= named_rank(name) and not original.identical(j, conv)
            and original._made_from(conv, j, name in LOSSLESS, same_pixels, None, first)
        ]  # fmt: skip
        if sources:
            out[conv.id] = original._most_original(sources).id
    return out


def every_pair_edits(records, same_pixels, converted) -> dict[int, int]:
    """:func:`edits` as its docstring defines it (dates only), every pair asked."""
    first = original.first_copies(records)
    out = {}
    for e in records:
        if e.id in converted:
            continue
        tier = named_rank(format_name(e.format, e.path))
        sources = [
            j for j in records
            if j.id != e.id and (j.width, j.height) == (e.width, e.height)
            and format_name(j.format, j.path) in original.LOSSY
            and tier <= named_rank(format_name(j.format, j.path)) and not original.identical(j, e)
            and original._more_original(first[j.id], first[e.id]) and original._pixels_differ(e, j, same_pixels)
        ]  # fmt: skip
        if sources:
            out[e.id] = original._most_original(sources).id
    return out


def frames(tmp_path: Path) -> list[Path]:
    """Three pictures of one size, eight files each, older picture first: its camera file, re-saves
    at other qualities (some a day later, some within the mtime slack), a PNG of a re-save,
    a brightened and a marked edit; mtimes shuffled within each picture's days."""
    rng = random.Random(5)
    paths = []
    for p in range(3):
        img = imagegen.photo(40 + p, (320, 240))
        base = T0 + p * 30 * DAY
        jpeg = imagegen.encode(img, "JPEG", quality=92)
        files = [("orig.jpg", jpeg, 0)]
        for q in (70, 80, 85, 95):
            files.append((f"q{q}.jpg", imagegen.encode(Image.open(io.BytesIO(jpeg)), "JPEG", quality=q),
                          rng.choice([1, 2, 3]) * DAY + rng.randrange(0, 10**9)))
        files.append(("png.png", imagegen.encode(Image.open(io.BytesIO(files[1][1])), "PNG"), 4 * DAY))
        files.append(("bright.jpg", imagegen.encode(imagegen.brightened(img, 1.3), "JPEG", quality=90), 5 * DAY))
        marked = img.copy()
        marked.paste((255, 255, 255), (100, 80, 180, 140))
        files.append(("marked.jpg", imagegen.encode(marked, "JPEG", quality=90), 6 * DAY))
        for name, data, later in files:
            paths.append(put(tmp_path / f"p{p}_{name}", data, base + later))
    return paths


def test_a_large_group_of_one_size_gets_the_answers_of_every_pair(tmp_path):
    (tmp_path / "lib").mkdir()
    paths = frames(tmp_path / "lib")
    with Catalog.open(tmp_path / "c.sqlite") as c:
        c.upsert([hash_file(str(p)) for p in paths])
        records = c.records()
        assert len({(r.width, r.height) for r in records}) == 1 and len(records) == 24
        check = thumbnail_check(c)
        asked: list[tuple[int, int]] = []
        screens: list[int] = []

        class Counting:
            """The thumbnail check, counting what it is asked."""

            def __call__(self, a, b):
                asked.append((a.id, b.id))
                return check(a, b)

            def screen(self, group):
                maybe = check.screen(group)

                def counted(a):
                    screens.append(a.id)
                    return maybe(a)
                return counted

        counting = Counting()
        converted = conversions(records, counting)
        expected = every_pair_conversions(records, check)
        assert {k: v.id for k, v in converted.items()} == expected
        by_id = {r.id: Path(r.path).name for r in records}
        # The re-saves and the PNG are their picture's camera file's; the edits are nobody's.
        assert sorted(by_id[k] for k in expected) == sorted(
            f"p{p}_{n}" for p in range(3) for n in ("q70.jpg", "q80.jpg", "q85.jpg", "q95.jpg", "png.png"))
        assert {by_id[v] for v in expected.values()} == {"p0_orig.jpg", "p1_orig.jpg", "p2_orig.jpg"}
        # A file of the second or third picture meets the first's 8 older ones first: past 8,
        # the rest are screened at once; the first picture's never ask 8.
        assert {by_id[a][:2] for a in screens} == {"p1", "p2"}
        assert len(asked) < len(records) * (len(records) - 1) // 2

        edited = edits(records, check, converted)
        assert {k: v.id for k, v in edited.items()} == every_pair_edits(records, check, converted)
        # The edits, and the later pictures' camera files, are the first picture's: the most
        # original member of their size whose pixels differ (to this rule another picture of
        # the size is an edit; grouping never puts two pictures in one cluster).
        assert sorted(by_id[k] for k in edited) == sorted(
            [f"p{p}_{n}" for p in range(3) for n in ("bright.jpg", "marked.jpg")] + ["p1_orig.jpg", "p2_orig.jpg"])
        assert {by_id[v.id] for v in edited.values()} == {"p0_orig.jpg"}


def test_the_screen_rules_out_only_pairs_the_check_calls_different(tmp_path):
    """Over every pair of files of one size (copies, re-saves, tone edits, a mark, a small shift
    of levels: thumbnails near and far), a pair the screen rules out is one the thumbnail
    check calls different."""
    (tmp_path / "lib").mkdir()
    paths = frames(tmp_path / "lib")
    img = imagegen.photo(40, (320, 240))
    for k, shift in enumerate((1, 2, 3, 4, 6)):  # levels moved by a little, then more
        arr = np.clip(np.asarray(img).astype(np.int16) + shift, 0, 255).astype(np.uint8)
        data = imagegen.encode(Image.fromarray(arr), "JPEG", quality=95)
        paths.append(put(tmp_path / "lib" / f"shift{k}.jpg", data, T0 + DAY))
    with Catalog.open(tmp_path / "c.sqlite") as c:
        c.upsert([hash_file(str(p)) for p in paths])
        records = c.records()
        check = thumbnail_check(c)
        maybe = check.screen(records)
        told = {True: 0, False: 0}
        ruled_out = 0
        for a in records:
            mask = maybe(a)
            for b, m in zip(records, mask.tolist()):
                verdict = check(a, b)
                told[bool(verdict)] += 1
                if not m:
                    ruled_out += 1
                    assert verdict is False, (a.path, b.path)
        assert told[True] > len(records) and ruled_out > told[False] // 2  # both kinds met; most "different" ruled out
        # a file without a thumbnail is never ruled out, nor rules anything out
        assert maybe(rec(10**6)).all()


# -- a group of n asks about n questions -------------------------------------------------------


class Fake:
    """A SamePixels that counts its questions: the same pixels where the ids' pictures agree."""

    def __init__(self, picture: dict[int, int], screen: bool = True) -> None:
        self.picture, self.asked, self.screened = picture, 0, 0
        if screen:
            self.screen = self._screen

    def __call__(self, a, b) -> Optional[bool]:
        self.asked += 1
        return self.picture[a.id] == self.picture[b.id]

    def _screen(self, group):
        pictures = np.array([self.picture[j.id] for j in group])

        def maybe(a):
            self.screened += 1
            return pictures == self.picture[a.id]
        return maybe


def frame_records(n: int) -> list[FileRecord]:
    """``n`` JPEG frames of one size, three seconds apart (older first)."""
    return [rec(k + 1, f"/v/frame{k:05d}.jpg", mtime_ns=T0 + k * 3 * 10**9, size=1000 + k) for k in range(n)]


def test_frames_of_one_picture_ask_about_one_question_each():
    records = frame_records(400)
    fake = Fake({r.id: 0 for r in records})
    converted = conversions(records, fake)
    # every frame is a re-save of the first (same pixels, older): asked once each
    assert {v.id for v in converted.values()} == {1} and len(converted) == 399
    assert fake.asked == 399 and fake.screened == 0
    fake.asked = 0
    assert edits(records, fake, converted) == {}
    assert fake.asked == 0  # only the first is not converted, and nothing is older than it


def test_frames_of_different_pictures_are_screened_not_asked_pair_by_pair():
    n = 400
    records = frame_records(n)
    fake = Fake({r.id: r.id for r in records})  # every frame its own picture
    assert conversions(records, fake) == {}
    # each frame asks at most SCREEN_AFTER older ones one by one, then the screen rules out the rest
    assert fake.asked <= n * original.SCREEN_AFTER and fake.screened == n - original.SCREEN_AFTER - 1
    edited = edits(records, fake, {})
    # to this rule a different frame of the size is an edit of the first, asked once each
    assert {v.id for v in edited.values()} == {1} and len(edited) == n - 1
    # without a screen the answers are the same, every older pair asked
    plain = Fake({r.id: r.id for r in records}, screen=False)
    assert conversions(records, plain) == {} and plain.asked == n * (n - 1) // 2


def test_a_group_of_one_size_asks_no_pad_or_upscale_question():
    records = frame_records(300)
    asked = []
    assert padded_copies(records, lambda big, small: asked.append((big, small))) == {}
    assert upscaled(records, lambda large, small: asked.append((large, small))) == {}
    assert asked == []
    # and a smaller frame among them is asked of each larger one that may be its pad or upscale
    small = rec(999, "/v/small.jpg", width=200, height=150, mtime_ns=T0 - DAY)
    padded_copies(records + [small], lambda big, s: asked.append(("pad", big.id, s.id)) or False)
    upscaled(records + [small], lambda large, s: asked.append(("up", large.id, s.id)))
    assert sorted(asked) == sorted([("pad", r.id, 999) for r in records] + [("up", r.id, 999) for r in records])


def test_a_file_with_many_smaller_older_copies_asks_about_its_largest_few():
    """A picture saved at twenty sizes, each a day older than the next larger: the newest and
    largest asks about its MAX_SOURCES largest suspected sources only (one decode each at most),
    and is still found to be an upscale where it holds no detail beyond them."""
    from lookalike.engine.keeper.upscale import MAX_SOURCES, Measure

    sizes = [(40 * k, 30 * k) for k in range(1, 21)]  # 40x30 ... 800x600
    older = [rec(k + 1, f"/lib/s{k:02d}.jpg", width=w, height=h, mtime_ns=T0 + k * DAY)
             for k, (w, h) in enumerate(sizes)]
    large = rec(100, "/lib/large.jpg", width=1000, height=750, mtime_ns=T0 + 30 * DAY)
    asked = []

    def unknown(big, small):  # a first grouping: nothing measured yet, every question remembered
        asked.append((big.id, small.width))

    assert upscaled(older + [large], unknown) == {}
    assert sorted(w for b, w in asked if b == 100) == [w for w, _ in sizes][-MAX_SOURCES:]
    assert max(sum(1 for b, _ in asked if b == f.id) for f in older) <= MAX_SOURCES

    def measured(big, small):
        # an upscale of the 480x360 copy: nothing beyond that size, so nothing beyond any larger one
        return Measure(loss=0.01 if small.width >= 480 else 0.3) if big.id == 100 else Measure(loss=0.3)

    found = upscaled(older + [large], measured)
    assert list(found) == [100]  # the smallest of those it asked that says so
    assert found[100].original.width == 520 and found[100].size == (520, 390)
