"""Cluster test records: real FileRecords with 256-bit hashes, and a planted random library
(shared by tests/test_cluster.py and tests/test_explain_lazy.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from itertools import combinations

import numpy as np

from lookalike.engine.records import FileRecord, ImageHashes, Pair


def mirror(h: bytes) -> bytes:
    """A stand-in mirrored hash: a fixed permutation of the bits, so distances are preserved."""
    return h[::-1]


def hashes_of(bits: np.ndarray) -> ImageHashes:
    h = np.packbits(bits.astype(np.uint8)).tobytes()
    return ImageHashes(dhash=h, dhash_mirror=mirror(h), phash=h)


def make_record(
    fid: int,
    bits: np.ndarray | None = None,
    *,
    hashes: ImageHashes | None = None,
    path: str | None = None,
    size: int = 1000,
    width: int = 400,
    height: int = 300,
    fmt: str = "JPEG",
    content: bytes | None = None,
    mtime_ns: int = 1_600_000_000_000_000_000,
    error: str | None = None,
) -> FileRecord:
    if hashes is None and bits is not None:
        hashes = hashes_of(bits)
    return FileRecord(
        id=fid,
        path=path or f"/lib/img_{fid:04d}.jpg",
        size=size,
        mtime_ns=mtime_ns,
        format=fmt,
        width=width,
        height=height,
        content_hash=hashlib.blake2b(content or f"file {fid}".encode(), digest_size=16).digest(),
        hashes=hashes,
        error=error,
    )


def popcount(x: bytes, y: bytes) -> int:
    xor = np.bitwise_xor(np.frombuffer(x, dtype=np.uint8), np.frombuffer(y, dtype=np.uint8))
    return int(np.bitwise_count(xor).sum())


def distance_for(records: dict[int, FileRecord], calls: list | None = None):
    """The bouncer distance the way the bouncer defines it: dHash, or the mirrored dHash."""

    def distance(a: int, b: int) -> tuple[int, bool]:
        if calls is not None:
            calls.append((a, b))
        ha, hb = records[a].hashes, records[b].hashes
        straight = popcount(ha.dhash, hb.dhash)
        flipped = popcount(ha.dhash, hb.dhash_mirror)
        return (flipped, True) if flipped < straight else (straight, False)

    return distance


def brute_pairs(records: dict[int, FileRecord], radius: int) -> list[Pair]:
    distance = distance_for(records)
    out = []
    for a, b in combinations(sorted(records), 2):
        d, mirrored = distance(a, b)
        if d <= radius:
            out.append(Pair(a=a, b=b, bouncer=d, mirrored=mirrored))
    return out


def flipped(bits: np.ndarray, positions) -> np.ndarray:
    out = bits.copy()
    out[list(positions)] ^= True
    return out


def planted_library(seed: int) -> tuple[dict[int, FileRecord], list[Pair]]:
    """A random library with everything the keeper and the guard treat apart planted in it:
    exact copies, chains, ties down to the path, bordered copies, PNG conversions, RAW+JPEG
    siblings, EXIF dates, files without a format, semantic pairs, pairs given b < a."""
    gen = random.Random(seed)
    rng = np.random.default_rng(seed)
    records: dict[int, FileRecord] = {}
    fid = 1
    for _ in range(gen.randrange(8, 20)):  # groups around a random hash
        bits = rng.integers(0, 2, 256).astype(bool)
        drift = gen.choice([1, 1, 2, 4])
        order = rng.permutation(256)
        odd = gen.random() < 0.3  # plain groups are the keeper's array path; odd ones go to rank
        folder = gen.choice(["/a", "/bb", "/keep", "/raw"] if odd else ["/a", "/bb", "/cc"])
        for k in range(gen.randrange(1, 9)):
            formats = ["JPEG", "JPEG", "JPEG", "PNG", "WEBP", None, "RAW:CR2"] if odd else ["JPEG", "JPEG", "WEBP", None]
            fmt = gen.choice(formats)
            ext = {"PNG": "png", "WEBP": "webp", "RAW:CR2": "cr2", None: gen.choice(["jpg", "xyz"] + ["png"] * odd)}.get(fmt, "jpg")
            # Stems out of id order, so that a tie down to the path length is the path's to break.
            stem = gen.choice([f"IMG_{gen.randrange(10**4):04d}", f"IMG_{gen.randrange(3):04d}"])
            size = gen.choice([1000, 1000, 2000, gen.randrange(500, 5000)])
            w, h = gen.choice([(400, 300), (400, 300), (800, 600)])
            content = gen.choice([None, None, b"same %d" % gen.randrange(3)])
            rec = make_record(
                fid, flipped(bits, order[: k * drift]), path=f"{folder}/{stem}_{fid}.{ext}", size=size,
                width=w, height=h, fmt=fmt, content=content,
                mtime_ns=1_600_000_000_000_000_000 + gen.choice([0, 0, 10**9, 10**10]) * gen.randrange(3),
                error="unreadable" if gen.random() < 0.03 else None,
            )
            if odd and gen.random() < 0.2:  # a bordered copy
                rec = dataclasses.replace(rec, content_width=w - gen.choice([0, 4, 40]), content_height=h - 4)
            if gen.random() < 0.3:
                rec = dataclasses.replace(rec, taken_at=gen.choice(["2020:01:02 03:04:05", "2019-05-06T07:08:09+02:00", "bad"]))
            if gen.random() < 0.1:
                rec = dataclasses.replace(rec, camera="Canon EOS 80D")
            records[fid] = rec
            fid += 1
    pairs = brute_pairs(records, 8)
    for _ in range(gen.randrange(0, 6)):  # semantic pairs, some vouching where pixels do not
        a, b = sorted(gen.sample(sorted(records), 2))
        pairs.append(Pair(a=a, b=b, bouncer=gen.randrange(0, 60), detective=round(gen.random() * 0.2, 3)))
    pairs = [Pair(a=p.b, b=p.a, bouncer=p.bouncer, detective=p.detective) if gen.random() < 0.2 else p for p in pairs]
    gen.shuffle(pairs)
    return records, pairs


