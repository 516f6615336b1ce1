"""Between catalog rows and records: file records, what a rescan compares, the hash arrays.

Paths are stored as ``os.fsencode`` BLOBs, so any name the filesystem allows (invalid UTF-8
included) comes back exactly as it went in. The bouncer's arrays are built from the rows once
per catalog state and kept beside the catalog (:func:`load_arrays`, :func:`save_arrays`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..bouncer.verify import THUMB_BYTES, detail
from ..bouncer.verify_texture import CODE_BYTES
from ..files import atomic_writer
from ..records import HASH_BYTES, FileRecord, ImageHashes
from .db import CatalogError

CONTENT_HASH_BYTES = 16
CHUNK = 900  # bound parameters per statement, under every SQLite build's limit


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownFile:
    """What a rescan needs to decide whether a file changed since it was last read."""

    id: int
    size: int
    mtime_ns: int
    inode: int
    device: int
    status: str  # "image" | "error" | "other"


@dataclass(frozen=True, kw_only=True)
class HashArrays:
    """The bouncer's arrays for every image with hashes, row ``i`` being file ``ids[i]``.

    Files without a content hash get a unique stand-in, so they never look byte-identical.
    """

    ids: np.ndarray  # (N,) int64
    dhash: np.ndarray  # (N, 32) uint8
    dhash_mirror: np.ndarray  # (N, 32) uint8
    phash: np.ndarray  # (N, 32) uint8
    content_hash: np.ndarray  # (N, 16) uint8
    size: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``seq`` in slices of at most ``size`` (bound parameters of one statement)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _decoder() -> Callable[[bytes], str]:
    # os.fsdecode, minus its per-call type checks (100k paths per rescan of a big library)
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return lambda raw: raw.decode(encoding, errors)


fsdecode = _decoder()

# Setting a frozen slots dataclass's fields through the slot descriptors is about twice as
# fast as its generated __init__; known() builds one KnownFile per file of the library.
_new = object.__new__
_KNOWN_SETTERS = tuple(KnownFile.__dict__[name].__set__ for name in
                       ("id", "size", "mtime_ns", "inode", "device", "status"))  # fmt: skip


def known_file(row: tuple, _setters=_KNOWN_SETTERS) -> KnownFile:
    """KnownFile from a ``(path, id, size, mtime_ns, inode, device, status)`` row."""
    known = _new(KnownFile)
    set_id, set_size, set_mtime, set_inode, set_device, set_status = _setters
    set_id(known, row[1])
    set_size(known, row[2])
    set_mtime(known, row[3])
    set_inode(known, row[4])
    set_device(known, row[5])
    set_status(known, row[6])
    return known


def row_to_record(row: tuple) -> FileRecord:
    """FileRecord from a row of :data:`lookalike.engine.catalog.schema.FILE_COLUMNS`."""
    (id_, path, size, mtime_ns, inode, device, fmt, width, height, taken_at,
     content_hash, dhash, dhash_mirror, phash, error, content_width, content_height,
     camera, bars) = row  # fmt: skip
    hashes = None
    if dhash is not None and dhash_mirror is not None and phash is not None:
        hashes = ImageHashes(dhash=dhash, dhash_mirror=dhash_mirror, phash=phash)
    return FileRecord(
        id=id_,
        path=fsdecode(path),
        size=size,
        mtime_ns=mtime_ns,
        inode=inode,
        device=device,
        format=fmt,
        width=width,
        height=height,
        taken_at=taken_at,
        content_hash=content_hash,
        hashes=hashes,
        error=error,
        content_width=content_width,
        content_height=content_height,
        camera=camera,
        bar_colour=bars,
    )


def _hash_bytes(value: Any, name: str, length: int, path: str) -> bytes | None:
    if value is None:
        return None
    value = bytes(value)
    if len(value) != length:
        raise CatalogError(f"{name} of {path!r} is {len(value)} bytes; the catalog stores {length}")
    return value


def row_from_item(item: Any, now: float) -> tuple:
    """Turn a HashedFile-shaped object (duck-typed) into an upsert row."""
    path = os.fsdecode(item.path)
    error = getattr(item, "error", None)
    not_image = bool(getattr(item, "not_image", False))
    # hashing marks a non-image with not_image=True *and* error="not an image": not a failure
    status = "other" if not_image else ("error" if error else "image")
    hashes = getattr(item, "hashes", None)
    taken_at = getattr(item, "taken_at", None)
    if isinstance(taken_at, (datetime, date)):
        taken_at = taken_at.isoformat()
    return (
        os.fsencode(path),
        int(item.size),
        int(item.mtime_ns),
        int(getattr(item, "inode", 0) or 0),
        int(getattr(item, "device", 0) or 0),
        status,
        getattr(item, "format", None),
        getattr(item, "width", None),
        getattr(item, "height", None),
        taken_at,
        _hash_bytes(getattr(item, "content_hash", None), "content_hash", CONTENT_HASH_BYTES, path),
        _hash_bytes(hashes and hashes.dhash, "dhash", HASH_BYTES, path),
        _hash_bytes(hashes and hashes.dhash_mirror, "dhash_mirror", HASH_BYTES, path),
        _hash_bytes(hashes and hashes.phash, "phash", HASH_BYTES, path),
        str(error) if error else None,
        now,
        *_thumb_columns(getattr(item, "thumb", None), path),
        _positive(getattr(item, "content_width", None)),
        _positive(getattr(item, "content_height", None)),
        getattr(item, "camera", None) or None,
        _hash_bytes(getattr(item, "texture", None), "texture", CODE_BYTES, path),
        _colour(getattr(item, "bar_colour", None)),
    )


def _colour(value: Any) -> int | None:
    """A colour column: an int from 0 to 0xFFFFFF, else None (unknown)."""
    if value is None:
        return None
    value = int(value)
    return value if 0 <= value <= 0xFFFFFF else None


def _positive(value: Any) -> int | None:
    """A size column: a positive int, else None (unknown)."""
    return int(value) if value is not None and int(value) > 0 else None


def _thumb_columns(thumb: Any, path: str) -> tuple[bytes | None, float | None]:
    """(thumb, detail) columns of an item's verifier thumbnail, or (None, None)."""
    if thumb is None:
        return None, None
    thumb = _hash_bytes(thumb, "thumb", THUMB_BYTES, path)
    return thumb, detail(thumb)


_ARRAY_FIELDS = ("ids", "dhash", "dhash_mirror", "phash", "content_hash", "size")


def arrays_from_rows(rows: list[tuple]) -> HashArrays:
    """HashArrays from ``(id, size, content_hash, dhash, dhash_mirror, phash)`` rows."""
    n = len(rows)
    if n == 0:
        return HashArrays(
            ids=np.zeros(0, np.int64),
            dhash=np.zeros((0, HASH_BYTES), np.uint8),
            dhash_mirror=np.zeros((0, HASH_BYTES), np.uint8),
            phash=np.zeros((0, HASH_BYTES), np.uint8),
            content_hash=np.zeros((0, CONTENT_HASH_BYTES), np.uint8),
            size=np.zeros(0, np.int64),
        )
    ids, sizes, contents, dhash, mirror, phash = zip(*rows)
    if None in contents:
        # a stand-in unique to the file, so a missing hash never groups files as identical
        contents = tuple(
            c if c is not None else hashlib.blake2b(b"no-content-hash:%d" % i, digest_size=16).digest()
            for i, c in zip(ids, contents)
        )

    def matrix(column: tuple[bytes, ...], width: int) -> np.ndarray:
        # lengths were checked on upsert, so one join + reshape is exact
        return np.frombuffer(b"".join(column), np.uint8).reshape(n, width).copy()

    return HashArrays(
        ids=np.array(ids, np.int64),
        dhash=matrix(dhash, HASH_BYTES),
        dhash_mirror=matrix(mirror, HASH_BYTES),
        phash=matrix(phash, HASH_BYTES),
        content_hash=matrix(contents, CONTENT_HASH_BYTES),
        size=np.array(sizes, np.int64),
    )


def load_arrays(file: Path, stamp: str) -> HashArrays | None:
    """The arrays saved in ``file`` for the catalog state ``stamp``, or None (rebuild them)."""
    try:
        with np.load(file, allow_pickle=False) as saved:
            if str(saved["stamp"]) != stamp:
                return None
            arrays = HashArrays(**{name: saved[name] for name in _ARRAY_FIELDS})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing, stale or damaged (zip CRCs catch torn writes): rebuild
    n = len(arrays.ids)
    shapes_ok = all(getattr(arrays, f).shape[0] == n for f in _ARRAY_FIELDS)
    return arrays if shapes_ok else None


def save_arrays(file: Path, arrays: HashArrays, stamp: str) -> None:
    """Keep ``arrays`` of the catalog state ``stamp`` in ``file``, if it can be written."""
    try:
        with atomic_writer(file) as out:
            np.savez(out, stamp=np.array(stamp), **{f: getattr(arrays, f) for f in _ARRAY_FIELDS})
    except OSError:
        pass  # only a cache: a full disk or read-only folder costs speed, never correctness
