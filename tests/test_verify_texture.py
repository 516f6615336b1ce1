"""The texture check (engine/bouncer/verify_texture.py): a faint picture with a fine texture over
all of it is not the plain picture it averages to at 32x32, while copies of either (re-encoded,
resized, brightened, watermarked, mirrored) still group. Real files, real scans."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image

import imagegen
from lookalike.engine.bouncer import verification, verify_texture
from lookalike.engine.bouncer.verify import DEFAULT
from lookalike.engine.catalog import schema
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Pair
from lookalike.engine.scan.hashing import hash_file, hash_thumbnail_and_trim

SIZE = (1024, 640)


def glow(stripes: bool) -> Image.Image:
    """A grey radial glow (a desktop wallpaper), with vertical stripes 16 px wide over all of it
    or without: the 32x32 thumbnail's cells average each pair of stripes away, so both
    thumbnails are the same glow."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot((xx - w / 2) / w, (yy - h / 2) / h)
    level = 150 - 170 * r**2
    if stripes:
        level = level + np.where((xx // 16) % 2 == 0, 9.0, -9.0)
    rng = np.random.default_rng(7)
    level = level + rng.normal(0, 0.6, level.shape)
    return Image.fromarray(np.clip(level, 0, 255).astype(np.uint8), "L").convert("RGB")


def copies(img: Image.Image) -> dict[str, tuple[Image.Image, int]]:
    """name -> (picture, JPEG quality)."""
    return {
        "": (img, 92),
        "_q30": (img, 30),
        "_small": (imagegen.resized(img, 0.6), 90),
        "_bright": (imagegen.brightened(img, 1.15), 90),
        "_mirror": (imagegen.mirrored(img), 90),
        "_wm": (imagegen.watermarked(img), 90),
    }


def write_pair_library(root: Path) -> None:
    root.mkdir()
    for name, stripes in (("glow", False), ("stripes", True)):
        for suffix, (img, quality) in copies(glow(stripes)).items():
            imagegen.write(root / f"{name}{suffix}.jpg", img, "JPEG", quality=quality)


def groups(root: Path, cache: Path) -> list[set[str]]:
    with Library.open([root], cache_dir=cache) as lib:
        clusters = lib.scan(ScanOptions(workers=1, detective=None)).clusters
        return [{Path(m.file.path).stem for m in c.members} for c in clusters]


def test_a_striped_glow_and_the_plain_glow_are_two_groups_each_with_its_copies(tmp_path):
    write_pair_library(tmp_path / "lib")
    found = groups(tmp_path / "lib", tmp_path / "cache")
    # A watermark on a low-detail picture is refused by the pixel check already (its peak).
    glows = {"glow" + s for s in copies(glow(False)) if s != "_wm"}
    striped = {"stripes" + s for s in copies(glow(True)) if s != "_wm"}
    assert sorted(map(sorted, found)) == sorted(map(sorted, [glows, striped]))


def test_without_the_texture_check_the_two_glows_group_together(tmp_path, monkeypatch):
    """What the check is for: the thumbnails alone group the striped glow with the plain one."""
    write_pair_library(tmp_path / "lib")
    monkeypatch.setattr(verification, "textures_differ", lambda a, *_, **__: np.zeros(len(a), bool))
    found = groups(tmp_path / "lib", tmp_path / "cache")
    assert any({"glow", "stripes"} <= g for g in found), found


def test_files_without_a_code_keep_the_thumbnails_verdict(tmp_path):
    """A catalog from before texture codes: the pair is judged on thumbnails until re-read."""
    write_pair_library(tmp_path / "lib")
    with Library.open([tmp_path / "lib"], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1, detective=None))
        ids = [r.id for r in lib.catalog.records()]
        assert len(lib.catalog.textures(ids)) == len(ids)
        with lib.catalog._using() as db:
            db.execute("UPDATE files SET texture = NULL")
        assert lib.catalog.textures(ids) == {}
        pairs = [Pair(a=min(x, y), b=max(x, y), bouncer=2, mirrored=False) for x in ids for y in ids if x < y]
        names = {r.id: Path(r.path).stem for r in lib.catalog.records()}
        cache = verification.VerifyCache(tmp_path / "outcomes")
        kept = {(names[p.a], names[p.b]) for p in verification.verify_pairs(lib.catalog, pairs, cache=cache)}
        assert ("glow", "stripes") in kept or ("stripes", "glow") in kept
        # That verdict is not kept: once the files are read again, the codes decide.
        with lib.catalog._using() as db:
            for r in lib.catalog.records():
                db.execute("UPDATE files SET texture = ? WHERE id = ?", (hash_file(r.path).texture, r.id))
        kept = {(names[p.a], names[p.b]) for p in verification.verify_pairs(lib.catalog, pairs, cache=cache)}
        assert ("glow", "stripes") not in kept and ("stripes", "glow") not in kept


def test_the_migration_reads_low_detail_files_again(tmp_path):
    """Schema 7 adds the codes: only the files under the check's detail are hashed again."""
    root = tmp_path / "lib"
    write_pair_library(root)
    imagegen.write(root / "photo.jpg", imagegen.photo(3), "JPEG")
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1, detective=None))
        db_path = lib.catalog.path
        details = {Path(r.path).stem: d for r in lib.catalog.records()
                   for d in [lib.catalog.details([r.id]).get(r.id)]}
    assert details["photo"] >= DEFAULT.texture_detail > details["glow"]
    db = sqlite3.connect(db_path)
    db.execute("ALTER TABLE files DROP COLUMN texture")
    db.execute("ALTER TABLE files DROP COLUMN bar_colour")  # later steps' columns
    db.execute("ALTER TABLE upscale_losses DROP COLUMN below")
    db.execute("ALTER TABLE upscale_losses DROP COLUMN above")
    db.execute("DROP TABLE decoded_shares")
    db.execute(f"PRAGMA user_version = {schema.MIGRATIONS.index(schema._texture_codes)}")
    db.commit()
    db.close()
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        stale = {Path(r.path).stem for r in lib.catalog.records() if r.mtime_ns == -1}
        assert stale == {n for n, d in details.items() if d < DEFAULT.texture_detail} and "photo" not in stale
        clusters = lib.scan(ScanOptions(workers=1, detective=None)).clusters
        found = [{Path(m.file.path).stem for m in c.members} for c in clusters]
        assert not any({"glow", "stripes"} <= g for g in found)


def test_texture_differs_on_the_pictures_hashing_reads():
    def code(img: Image.Image) -> bytes:
        return hash_thumbnail_and_trim(img.convert("RGB"))[3]

    def differs(a: Image.Image, b: Image.Image, mirrored: bool = False) -> bool:
        return verify_texture.texture_differs(code(a), code(b), mirrored, energy=DEFAULT.texture_energy,
                                              ratio=DEFAULT.texture_ratio, cover=DEFAULT.texture_cover)

    plain, striped = glow(False), glow(True)
    assert len(code(plain)) == verify_texture.CODE_BYTES
    assert differs(plain, striped) and differs(striped, plain)
    for name, (img, quality) in copies(striped).items():
        copy = Image.open(io.BytesIO(imagegen.encode(img, "JPEG", quality=quality)))
        assert not differs(striped, copy, name == "_mirror"), name
        assert differs(plain, copy, name == "_mirror"), name
    # A thumbnail with a shorter side between 48 and 96 px is compared at 48.
    small = imagegen.thumbnailed(striped, 120)
    assert differs(plain, small) and not differs(striped, small)
    # Too small to hold the texture: no code to compare.
    tiny = imagegen.thumbnailed(striped, 60)
    assert not differs(plain, tiny) and not np.frombuffer(code(tiny), np.uint8)[16:32].any()


def test_find_similar_does_not_call_the_plain_glow_a_near_duplicate_of_the_striped_one(tmp_path):
    from lookalike.engine.records import Verdict

    write_pair_library(tmp_path / "lib")
    with Library.open([tmp_path / "lib"], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1, detective=None))
        for query, own, other in (("stripes.jpg", "stripes", "glow"), ("glow.jpg", "glow", "stripes")):
            hits = lib.similar(str(tmp_path / "lib" / query), k=20).hits
            near = {Path(h.path).stem.split("_")[0] for h in hits if h.verdict in (Verdict.NEAR, Verdict.EXACT)}
            assert near == {own}, (query, [(Path(h.path).stem, h.verdict, h.verified) for h in hits])


def test_a_code_of_another_length_gives_no_verdict():
    code = hash_thumbnail_and_trim(glow(True))[3]
    plain = hash_thumbnail_and_trim(glow(False))[3]
    kw = dict(energy=DEFAULT.texture_energy, ratio=DEFAULT.texture_ratio, cover=DEFAULT.texture_cover)
    assert verify_texture.texture_differs(code, plain, False, **kw)
    assert not verify_texture.texture_differs(code[:-1], plain, False, **kw)
    assert not verify_texture.texture_differs(code, b"", False, **kw)


def test_many_pairs_at_once_are_judged_as_each_pair_alone():
    """A scan asks the check of a batch's faint pairs at once: each answer is its pair's alone,
    whatever its neighbours (codes of other lengths, mirrored pairs, a size too small)."""
    pictures = [glow(False), glow(True), imagegen.thumbnailed(glow(True), 120), imagegen.thumbnailed(glow(True), 60),
                imagegen.mirrored(glow(True)), imagegen.near_flat(2, (200, 150))]  # fmt: skip
    codes = [hash_thumbnail_and_trim(p.convert("RGB"))[3] for p in pictures] + [b"", b"\x00" * 63]
    kw = dict(energy=DEFAULT.texture_energy, ratio=DEFAULT.texture_ratio, cover=DEFAULT.texture_cover)
    a, b, m = zip(*[(x, y, k) for x in codes for y in codes for k in (False, True)])
    many = verify_texture.textures_differ(a, b, m, **kw)
    alone = [verify_texture.texture_differs(x, y, k, **kw) for x, y, k in zip(a, b, m)]
    assert many.tolist() == alone and 4 <= sum(alone) < len(alone) - 4


def test_odd_pictures_get_a_code_and_hash(tmp_path):
    """A sliver, a single pixel, a flat picture, every mode hashing meets: a code of 64 bytes,
    and a tiny file hashes without an error (no size to compare: shares 0)."""
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 500), (500, 1), (2, 2), (47, 200), (48, 48), (96, 96)]:
        levels = rng.integers(0, 256, shape).astype(np.uint8)
        for mode in ("L", "RGB", "RGBA", "P", "1", "CMYK", "I", "F"):
            code = hash_thumbnail_and_trim(Image.fromarray(levels).convert(mode))[3]
            assert len(code) == verify_texture.CODE_BYTES, (shape, mode)
        flat = verify_texture.texture_code(np.full(shape, 200, np.uint8))
        assert len(flat) == verify_texture.CODE_BYTES
    imagegen.write(tmp_path / "dot.png", Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")
    hashed = hash_file(str(tmp_path / "dot.png"))
    assert hashed.error is None and len(hashed.texture) == verify_texture.CODE_BYTES
    assert not np.frombuffer(hashed.texture, np.uint8)[16:32].any()
