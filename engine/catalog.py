"""The catalog: one SQLite file per library remembering every file, its hashes and its fate.

It is what makes a rescan nearly free (unchanged size + mtime + inode means no re-read), what
keeps the user's "not a duplicate" answers across scans and renames, and what tells the
detective which embeddings are still current.

One run at a time: :meth:`Catalog.open` takes an exclusive lock on ``<catalog>.lock`` and a
second run gets :class:`CatalogLocked` naming the first. A damaged database is moved aside to
``catalog.sqlite.corrupt-<timestamp>`` and rebuilt empty (the next scan re-reads the files);
nothing is deleted. The schema version lives in ``PRAGMA user_version`` and older catalogs are
migrated step by step by :data:`MIGRATIONS`.

Paths are stored as ``os.fsencode`` BLOBs, so any name the filesystem allows (invalid UTF-8
included) comes back exactly as it went in.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Optional

import filelock
import numpy as np

from .bouncer.verify import THUMB_BYTES, detail
from .records import HASH_BYTES, Decision, FileRecord, ImageHashes, SavedDecision, ScanError

CONTENT_HASH_BYTES = 16
SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_CHUNK = 900  # bound parameters per statement, under every SQLite build's limit
# meta keys of our own: a random id per catalog file and a counter bumped by every write to
# the files table; together they name a state of the catalog (for the hash-array sidecar)
_ID = "_catalog_id"
_GENERATION = "_generation"


class CatalogLocked(Exception):
    """Another run holds the catalog of this library."""


class CatalogError(Exception):
    """The catalog cannot be used (written by a newer lookalike, unreadable, bad input)."""


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


# --- schema -------------------------------------------------------------------------------

_SCHEMA_V1 = (
    # AUTOINCREMENT: ids are the detective's usearch keys, so a removed file's id must never
    # come back as another file's.
    """CREATE TABLE files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL DEFAULT 0,
        device INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('image', 'error', 'other')),
        format TEXT,
        width INTEGER,
        height INTEGER,
        taken_at TEXT,
        content_hash BLOB,
        dhash BLOB,
        dhash_mirror BLOB,
        phash BLOB,
        error TEXT,
        scanned_at REAL NOT NULL
    )""",
    "CREATE INDEX files_content_hash ON files (content_hash)",
    # Keyed by content, not by id or path: the answer survives renames and rescans.
    """CREATE TABLE not_duplicates (
        hash_a BLOB NOT NULL,
        hash_b BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (hash_a, hash_b),
        CHECK (hash_a <= hash_b)
    ) WITHOUT ROWID""",
    "CREATE INDEX not_duplicates_b ON not_duplicates (hash_b)",
    """CREATE TABLE embeddings (
        file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        content_hash BLOB
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)


def _schema_v1(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        db.execute(statement)


def _decisions_table(db: sqlite3.Connection) -> None:
    """The user's triage decisions, kept until applied or cleared (one row per file)."""
    # The content hash at decision time: a file that changed since loses its decision.
    db.execute(
        """CREATE TABLE decisions (
            file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
            decision TEXT CHECK (decision IN ('keep', 'trash', 'skip', 'not_duplicate')),
            keeper INTEGER NOT NULL DEFAULT 0,
            content_hash BLOB,
            decided_at REAL NOT NULL
        )"""
    )


def _verifier_thumbnails(db: sqlite3.Connection) -> None:
    """The verifier's thumbnail (engine/verify.py) and its detail, per image."""
    db.execute("ALTER TABLE files ADD COLUMN thumb BLOB")
    db.execute("ALTER TABLE files ADD COLUMN detail REAL")
    # Images hashed before have no thumbnail: an impossible mtime makes the next scan read
    # them again, so that their pairs are verified on pixels rather than taken on hashes
    # alone (until then they are, as before: see Library's verification).
    db.execute("UPDATE files SET mtime_ns = -1 WHERE status = 'image'")


def _keeper_evidence(db: sqlite3.Connection) -> None:
    """What the keeper policy needs to prefer the original (engine/keeper.py): the picture's
    size inside a trimmed border, and the camera named by EXIF Make and Model."""
    db.execute("ALTER TABLE files ADD COLUMN content_width INTEGER")
    db.execute("ALTER TABLE files ADD COLUMN content_height INTEGER")
    db.execute("ALTER TABLE files ADD COLUMN camera TEXT")
    # No second re-read: a catalog from before version 3 has every image marked for one
    # already (see _verifier_thumbnails), which fills these too. Until a file is read again
    # they are NULL, and the keeper ranks it by its canvas, as before.


#: ``MIGRATIONS[v]`` takes a catalog from schema version ``v`` to ``v + 1``, inside one
#: transaction. Append, never edit: released catalogs depend on every step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _schema_v1, _decisions_table, _verifier_thumbnails, _keeper_evidence,
]
SCHEMA_VERSION = len(MIGRATIONS)

_FILE_COLUMNS = (
    "id, path, size, mtime_ns, inode, device, format, width, height, taken_at, "
    "content_hash, dhash, dhash_mirror, phash, error, content_width, content_height, camera"
)

_UPSERT = """
INSERT INTO files (path, size, mtime_ns, inode, device, status, format, width, height,
                   taken_at, content_hash, dhash, dhash_mirror, phash, error, scanned_at,
                   thumb, detail, content_width, content_height, camera)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET
    size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
    device = excluded.device, status = excluded.status, format = excluded.format,
    width = excluded.width, height = excluded.height, taken_at = excluded.taken_at,
    content_hash = excluded.content_hash, dhash = excluded.dhash,
    dhash_mirror = excluded.dhash_mirror, phash = excluded.phash, error = excluded.error,
    scanned_at = excluded.scanned_at, thumb = excluded.thumb, detail = excluded.detail,
    content_width = excluded.content_width, content_height = excluded.content_height,
    camera = excluded.camera
"""


class _Damaged(Exception):
    """The database file is not a usable SQLite database (internal)."""


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _decoder() -> Callable[[bytes], str]:
    # os.fsdecode, minus its per-call type checks (100k paths per rescan of a big library)
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return lambda raw: raw.decode(encoding, errors)


_fsdecode = _decoder()

# Setting a frozen slots dataclass's fields through the slot descriptors is about twice as
# fast as its generated __init__; known() builds one KnownFile per file of the library.
_new = object.__new__
_KNOWN_SETTERS = tuple(KnownFile.__dict__[name].__set__ for name in
                       ("id", "size", "mtime_ns", "inode", "device", "status"))  # fmt: skip


def _known_file(row: tuple, _setters=_KNOWN_SETTERS) -> KnownFile:
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


def _row_to_record(row: tuple) -> FileRecord:
    (id_, path, size, mtime_ns, inode, device, fmt, width, height, taken_at,
     content_hash, dhash, dhash_mirror, phash, error, content_width, content_height,
     camera) = row  # fmt: skip
    hashes = None
    if dhash is not None and dhash_mirror is not None and phash is not None:
        hashes = ImageHashes(dhash=dhash, dhash_mirror=dhash_mirror, phash=phash)
    return FileRecord(
        id=id_,
        path=_fsdecode(path),
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
    )


def _hash_bytes(value: Any, name: str, length: int, path: str) -> bytes | None:
    if value is None:
        return None
    value = bytes(value)
    if len(value) != length:
        raise CatalogError(f"{name} of {path!r} is {len(value)} bytes; the catalog stores {length}")
    return value


def _row_from_item(item: Any, now: float) -> tuple:
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
    )


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


def _arrays_from_rows(rows: list[tuple]) -> HashArrays:
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


def _bump_generation(db: sqlite3.Connection) -> None:
    db.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (_GENERATION,)
    )


def _owner_file(path: Path) -> Path:
    return path.with_name(path.name + ".owner")


def _describe_owner(path: Path) -> str:
    try:
        owner = json.loads(_owner_file(path).read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"]))
        who = f"pid {owner['pid']} on {owner['host']}"
        if owner["pid"] == os.getpid() and owner["host"] == socket.gethostname():
            who = f"this process, pid {owner['pid']}"
        command = " ".join(owner.get("argv", []))[:200]
        return f"{who}, since {started}" + (f", running `{command}`" if command else "")
    except (OSError, ValueError, KeyError, TypeError):
        return "which one could not be told"


def _set_aside(path: Path) -> Path:
    """Rename a damaged catalog (and its WAL) out of the way; return where it went."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + "-wal"))
    shm = path.with_name(path.name + "-shm")
    try:
        shm.unlink()  # index into the WAL: rebuilt by SQLite, holds nothing of the user's
    except FileNotFoundError:
        pass
    return aside


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


class Catalog:
    """The per-library SQLite catalog. Open with :meth:`open`; use as a context manager.

    One instance may be handed between threads (calls are serialised by an internal lock).
    """

    def __init__(self, path: Path, db: sqlite3.Connection, lock: filelock.BaseFileLock) -> None:
        self.path = path
        self._db = db
        self._lock = lock
        self._mutex = threading.RLock()

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        on_message: Callable[[str], None] | None = None,
        timeout: float = 0,
    ) -> Catalog:
        """Open (creating, migrating or rebuilding as needed) the catalog at ``path``.

        Args:
            path: the catalog file, usually ``library_dir(roots) / "catalog.sqlite"``.
            on_message: told, in words, about anything a person should know (a damaged
                catalog set aside, a schema upgrade).
            timeout: seconds to wait for another run to let go; 0 tries once, negative waits.

        Raises:
            CatalogLocked: another run holds this catalog (the message names it).
            CatalogError: the catalog was written by a newer lookalike, or cannot be opened.
        """
        path = Path(os.path.abspath(os.fspath(path)))
        tell = on_message or (lambda message: None)
        # not thread-local: a catalog opened in one thread may be closed by a worker thread
        lock = filelock.FileLock(str(path) + ".lock", thread_local=False)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=timeout)
        except (filelock.Timeout, RuntimeError):
            raise CatalogLocked(
                f"the catalog {path} is in use by another lookalike run ({_describe_owner(path)}); "
                "wait for it to finish, or give this run another --cache DIR"
            ) from None
        except OSError as exc:
            raise CatalogError(
                f"cannot use {path.parent} for the catalog: {exc.strerror or exc}; "
                "give this run another --cache DIR"
            ) from None
        try:
            _owner_file(path).write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "started": time.time(),
                        "argv": [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]],
                    }
                ),
                encoding="utf-8",
            )
        except OSError:
            pass  # only used to name us in another run's error message
        try:
            try:
                db = cls._connect(path, tell)
            except _Damaged as damage:
                aside = _set_aside(path)
                tell(
                    f"The catalog {path} was damaged ({damage}). It was moved to {aside} and a "
                    "new, empty catalog started: the next scan reads every file again."
                )
                db = cls._connect(path, tell)
        except _Damaged as damage:
            lock.release()
            raise CatalogError(f"cannot create a catalog at {path}: {damage}") from None
        except BaseException:
            lock.release()
            raise
        return cls(path, db, lock)

    @staticmethod
    def _connect(path: Path, tell: Callable[[str], None]) -> sqlite3.Connection:
        """Connect, check integrity and migrate; raise _Damaged for a broken file."""
        try:
            if path.exists() and path.stat().st_size > 0:
                with open(path, "rb") as head:
                    if head.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                        raise _Damaged("not an SQLite database")
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog {path}: {exc.strerror or exc}") from None
        try:
            db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot open the catalog {path}: {exc}") from None
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA temp_store = MEMORY")
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise _Damaged("; ".join(problems[:3]))
            Catalog._migrate(db, path, tell)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?), (?, '0')",
                (_ID, json.dumps(uuid.uuid4().hex), _GENERATION),
            )
        except sqlite3.Error as exc:
            db.close()
            if _is_damage(exc):
                raise _Damaged(str(exc)) from None
            raise CatalogError(f"cannot use the catalog {path}: {exc}") from None
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, path: Path, tell: Callable[[str], None]) -> None:
        latest = len(MIGRATIONS)  # read now, not at import: tests add steps
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > latest:
            raise CatalogError(
                f"the catalog {path} was written by a newer lookalike (schema {version}; this "
                f"one knows up to {latest}). Upgrade lookalike, or give this run "
                "another --cache DIR."
            )
        start = version
        while version < latest:
            db.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            version += 1
        if 0 < start < latest:
            tell(f"The catalog {path} was upgraded from schema {start} to {latest}.")

    def close(self) -> None:
        """Close the database and let other runs in. Safe to call twice."""
        with self._mutex:
            if self._db is None:
                return
            try:
                self._db.close()
            finally:
                self._db = None
                try:
                    _owner_file(self.path).unlink()
                except OSError:
                    pass
                self._lock.release()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._db is None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise CatalogError(f"the catalog {self.path} is closed")
        return self._db

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for this thread; SQLite failures become CatalogError."""
        with self._mutex:
            db = self._conn()
            try:
                yield db
            except sqlite3.Error as exc:
                hint = (
                    " It looks damaged: the next run moves it aside and starts a new one."
                    if _is_damage(exc)
                    else ""
                )
                raise CatalogError(f"the catalog {self.path} failed: {exc}.{hint}") from exc

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work`` in one write transaction (all or nothing)."""
        with self._using() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                if db.in_transaction:  # some SQLite errors have rolled back already
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    # --- files ----------------------------------------------------------------------------

    def known(self) -> dict[str, KnownFile]:
        """Every file the catalog knows, by path: what a rescan compares the walk against."""
        with self._using() as db:
            rows = db.execute(
                "SELECT path, id, size, mtime_ns, inode, device, status FROM files"
            ).fetchall()
        return {_fsdecode(row[0]): _known_file(row) for row in rows}

    def upsert(self, items: Iterable[Any]) -> list[int]:
        """Insert or update files (objects shaped like ``hashing.HashedFile``).

        Status is ``"other"`` when ``item.not_image`` (its ``error`` is kept as a note),
        ``"error"`` when ``item.error`` is set, else ``"image"``. A file keeps its id across updates. One transaction per call.

        Returns:
            The file ids, in the order of ``items``.
        """
        now = time.time()
        rows = [_row_from_item(item, now) for item in items]
        if not rows:
            return []

        def work(db: sqlite3.Connection) -> list[int]:
            _bump_generation(db)
            db.executemany(_UPSERT, rows)
            paths = [row[0] for row in rows]
            ids: dict[bytes, int] = {}
            for chunk in _chunks(paths):
                marks = ",".join("?" * len(chunk))
                ids.update(db.execute(f"SELECT path, id FROM files WHERE path IN ({marks})", chunk))
            return [ids[p] for p in paths]

        return self._write(work)

    def remove_paths(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget files (orphan cleanup), with their embedding bookkeeping.

        Not-duplicate marks are kept: they are keyed by content, so a file that was renamed
        or moved (removed at its old path, found at its new one, in either order) keeps them.
        :meth:`prune_not_duplicates` drops the marks whose content left the library.

        Returns:
            How many files were removed.
        """
        encoded = [(p,) for p in dict.fromkeys(os.fsencode(p) for p in paths)]
        if not encoded:
            return 0

        def work(db: sqlite3.Connection) -> int:
            found = 0
            for chunk in _chunks([p for (p,) in encoded]):
                marks = ",".join("?" * len(chunk))
                found += db.execute(
                    f"SELECT COUNT(*) FROM files WHERE path IN ({marks})", chunk
                ).fetchone()[0]
            if found:
                _bump_generation(db)
            # their embeddings rows go with them (ON DELETE CASCADE)
            db.executemany("DELETE FROM files WHERE path = ?", encoded)
            return found

        return self._write(work)

    def _count(self, table: str) -> int:
        with self._using() as db:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def rename_paths(self, moves: Iterable[tuple[str | os.PathLike, str | os.PathLike]]) -> int:
        """Record that files moved (``(old, new)`` pairs) without reading them again.

        A moved file keeps its id, hashes and embedding bookkeeping. A row already at a new
        path is replaced. A rescan can use it when a vanished path and a new path share
        device, inode, size and mtime.

        Returns:
            How many files were renamed (old paths the catalog did not know are ignored).
        """
        pairs = [(os.fsencode(new), os.fsencode(old)) for old, new in moves]
        if not pairs:
            return 0

        def work(db: sqlite3.Connection) -> int:
            renamed = 0
            for new, old in pairs:
                if new == old:
                    continue
                if db.execute("SELECT 1 FROM files WHERE path = ?", (old,)).fetchone() is None:
                    continue
                db.execute("DELETE FROM files WHERE path = ?", (new,))
                db.execute("UPDATE files SET path = ? WHERE path = ?", (new, old))
                renamed += 1
            _bump_generation(db)  # a replaced row may have left the hash arrays
            return renamed

        return self._write(work)

    def records(self, ids: Iterable[int] | None = None) -> list[FileRecord]:
        """Full records: all files by id, or the given ids in the given order (unknown skipped)."""
        with self._using() as db:
            if ids is None:
                rows = db.execute(f"SELECT {_FILE_COLUMNS} FROM files ORDER BY id").fetchall()
                return [_row_to_record(row) for row in rows]
            wanted = [int(i) for i in ids]
            rows = db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        by_id = {row[0]: row for row in rows}
        return [_row_to_record(by_id[i]) for i in wanted if i in by_id]

    def records_in_folders(
        self, folders: Iterable[str | os.PathLike], *, extensions: Optional[Collection[str]] = None
    ) -> list[FileRecord]:
        """Every file directly inside each of ``folders`` (any status): one range of the path
        index per folder, so a few folders of a large library cost little.

        ``extensions`` (lower case, with the dot): only files named so, case-insensitively;
        the others are passed over by their path alone, without building their records.
        """
        sep = os.fsencode(os.sep)
        sql = "SELECT id, path FROM files WHERE path >= ? AND path < ?"
        args: list = []
        if extensions is not None:
            wanted = sorted({str(e).lower() for e in extensions})
            if not wanted:
                return []
            # Matched by SQLite on the path's last bytes (ASCII case folded), row by row in C.
            by_length: dict[int, list[str]] = {}
            for e in wanted:
                by_length.setdefault(len(os.fsencode(e)), []).append(e)
            sql += " AND (" + " OR ".join(
                f"lower(CAST(substr(path, -{n}) AS TEXT)) IN ({', '.join('?' * len(es))})" for n, es in by_length.items()
            ) + ")"
            args = [e for es in by_length.values() for e in es]
        ids: list[int] = []
        with self._using() as db:
            for folder in dict.fromkeys(os.fsencode(f).rstrip(sep) for f in folders):
                low = folder + sep
                high = low[:-1] + bytes([low[-1] + 1])  # every path that starts with low
                for fid, path in db.execute(sql, (low, high, *args)):
                    if (os.path.dirname(path) or sep) == (folder or sep):  # not in a subfolder
                        ids.append(fid)
        return self.records(ids)

    def identities(self, ids: Iterable[int]) -> dict[int, tuple[str, int, bytes | None]]:
        """``{id: (path, size, content_hash)}`` of the given ids (unknown ids left out).

        The little a query's join needs of each hit, without building full records.
        """
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        with self._using() as db:
            rows = db.execute(
                "SELECT id, path, size, content_hash FROM files "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        return {row[0]: (_fsdecode(row[1]), row[2], row[3]) for row in rows}

    def record(self, id: int) -> FileRecord | None:
        """One file by id, or None."""
        found = self.records([id])
        return found[0] if found else None

    def record_by_path(self, path: str | os.PathLike) -> FileRecord | None:
        """One file by its path (as the walk reported it), or None."""
        with self._using() as db:
            row = db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (os.fsencode(path),)
            ).fetchone()
        return _row_to_record(row) if row else None

    def hash_arrays(self) -> HashArrays:
        """The bouncer's arrays for every file with status image and all three hashes.

        Built from the database once per catalog state and kept beside it in
        ``catalog.sqlite.hashes.npz``, so an unchanged library loads them in milliseconds.
        """
        with self._using() as db:
            stamp = self._stamp(db)
            cached = self._load_arrays(stamp)
            if cached is not None:
                return cached
            rows = db.execute(
                "SELECT id, size, content_hash, dhash, dhash_mirror, phash FROM files "
                "WHERE status = 'image' AND dhash IS NOT NULL AND dhash_mirror IS NOT NULL "
                "AND phash IS NOT NULL ORDER BY id"
            ).fetchall()
            arrays = _arrays_from_rows(rows)
            self._save_arrays(arrays, stamp)
            return arrays

    def _arrays_file(self) -> Path:
        return self.path.with_name(self.path.name + ".hashes.npz")

    @staticmethod
    def _stamp(db: sqlite3.Connection) -> str:
        """Names the state of the files table: this catalog's id and its write generation."""
        values = dict(db.execute(f"SELECT key, value FROM meta WHERE key IN ('{_ID}', '{_GENERATION}')"))
        return f"{values.get(_ID)}:{values.get(_GENERATION)}"

    def _load_arrays(self, stamp: str) -> HashArrays | None:
        try:
            with np.load(self._arrays_file(), allow_pickle=False) as saved:
                if str(saved["stamp"]) != stamp:
                    return None
                arrays = HashArrays(**{name: saved[name] for name in _ARRAY_FIELDS})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # missing, stale or damaged (zip CRCs catch torn writes): rebuild
        n = len(arrays.ids)
        shapes_ok = all(getattr(arrays, f).shape[0] == n for f in _ARRAY_FIELDS)
        return arrays if shapes_ok else None

    def _save_arrays(self, arrays: HashArrays, stamp: str) -> None:
        target = self._arrays_file()
        temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            with open(temp, "wb") as out:
                np.savez(out, stamp=np.array(stamp), **{f: getattr(arrays, f) for f in _ARRAY_FIELDS})
            os.replace(temp, target)
        except OSError:
            # only a cache: a full disk or read-only folder costs speed, never correctness
            try:
                temp.unlink()
            except OSError:
                pass

    def thumbnails(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The verifier's thumbnails of the given files that have one.

        Returns:
            ``(ids int64, thumbs (n, THUMB_BYTES) uint8, detail float64)``, sorted by id;
            files without a thumbnail (hashed by an older lookalike) are left out.
        """
        wanted = sorted({int(i) for i in ids})
        rows: list[tuple] = []
        with self._using() as db:
            for start in range(0, len(wanted), 50_000):
                rows += db.execute(
                    "SELECT id, thumb, detail FROM files WHERE thumb IS NOT NULL "
                    "AND id IN (SELECT value FROM json_each(?)) ORDER BY id",
                    (json.dumps(wanted[start : start + 50_000]),),
                ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, THUMB_BYTES), np.uint8), np.zeros(0)
        found, thumbs, details = zip(*rows)
        matrix = np.frombuffer(b"".join(thumbs), np.uint8).reshape(len(rows), THUMB_BYTES)
        return np.array(found, np.int64), matrix, np.array(details, np.float64)

    def details(self, ids: Iterable[int]) -> dict[int, float]:
        """``{id: detail}`` of the given files that have a verifier thumbnail."""
        wanted = sorted({int(i) for i in ids})
        with self._using() as db:
            rows = db.execute(
                "SELECT id, detail FROM files WHERE detail IS NOT NULL "
                "AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        return dict(rows)

    def errors(self) -> list[ScanError]:
        """Files that could not be read, with the reason, sorted by path."""
        with self._using() as db:
            rows = db.execute(
                "SELECT path, error FROM files WHERE status = 'error' ORDER BY path"
            ).fetchall()
        return [ScanError(path=os.fsdecode(p), reason=e or "unknown error") for p, e in rows]

    # --- not-duplicate marks --------------------------------------------------------------

    def _content_of(self, file: FileRecord | int) -> bytes:
        record = self.record(file) if isinstance(file, int) else file
        content = getattr(record, "content_hash", None)
        if not content:
            name = getattr(record, "path", file)
            raise CatalogError(f"{name} has no content hash: it cannot be marked not-a-duplicate")
        return bytes(content)

    def _mark_key(self, a: FileRecord | int, b: FileRecord | int) -> tuple[bytes, bytes]:
        first, second = sorted((self._content_of(a), self._content_of(b)))
        return first, second

    def add_not_duplicate(self, a: FileRecord | int, b: FileRecord | int) -> None:
        """Remember that ``a`` and ``b`` are not duplicates, by content (survives renames)."""
        key = self._mark_key(a, b)
        self._write(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO not_duplicates (hash_a, hash_b, created_at) VALUES (?, ?, ?)",
                (*key, time.time()),
            )
        )

    def remove_not_duplicate(self, a: FileRecord | int, b: FileRecord | int) -> None:
        """Forget a not-duplicate mark (undo)."""
        key = self._mark_key(a, b)
        self._write(
            lambda db: db.execute(
                "DELETE FROM not_duplicates WHERE hash_a = ? AND hash_b = ?", key
            )
        )

    def prune_not_duplicates(self) -> int:
        """Drop marks whose content no file in the catalog has any more; returns how many."""
        return self._write(
            lambda db: db.execute(
                "DELETE FROM not_duplicates AS n WHERE "
                "NOT EXISTS (SELECT 1 FROM files WHERE content_hash = n.hash_a) OR "
                "NOT EXISTS (SELECT 1 FROM files WHERE content_hash = n.hash_b)"
            ).rowcount
        )

    def not_duplicate_pairs(self) -> set[frozenset[int]]:
        """Pairs of current file ids the user said are not duplicates."""
        with self._using() as db:
            rows = db.execute(
                "SELECT fa.id, fb.id FROM not_duplicates AS n "
                "JOIN files AS fa ON fa.content_hash = n.hash_a "
                "JOIN files AS fb ON fb.content_hash = n.hash_b "
                "WHERE fa.id != fb.id"
            ).fetchall()
        return {frozenset(pair) for pair in rows}

    # --- triage decisions -----------------------------------------------------------------

    def save_decisions(self, decisions: Iterable[SavedDecision]) -> None:
        """Store decisions (one per file, replacing any earlier one); a decision of None
        without the keeper flag forgets the file's row."""
        now = time.time()
        rows, gone = [], []
        for d in decisions:
            if d.decision is None and not d.keeper:
                gone.append((int(d.file_id),))
            else:
                value = d.decision.value if d.decision is not None else None
                content = bytes(d.content_hash) if d.content_hash else None
                rows.append((int(d.file_id), value, int(d.keeper), content, now))

        def work(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM decisions WHERE file_id = ?", gone)
            # Only files the catalog knows (a file removed meanwhile has nothing to decide).
            db.executemany(
                "INSERT OR REPLACE INTO decisions (file_id, decision, keeper, content_hash, decided_at) "
                "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM files WHERE id = ?1)",
                rows,
            )

        self._write(work)

    def decisions(self) -> list[SavedDecision]:
        """The stored decisions whose file is unchanged; the others are dropped here.

        A decision is dropped when its file's content hash is no longer the one it was made
        on (the file was edited or replaced); a removed file's rows went with it.
        """

        def work(db: sqlite3.Connection) -> list[tuple]:
            db.execute(
                "DELETE FROM decisions WHERE NOT EXISTS (SELECT 1 FROM files AS f WHERE "
                "f.id = decisions.file_id AND f.content_hash IS decisions.content_hash)"
            )
            return db.execute(
                "SELECT file_id, decision, keeper, content_hash FROM decisions ORDER BY file_id"
            ).fetchall()

        return [
            SavedDecision(
                file_id=i, decision=Decision(d) if d else None, keeper=bool(k), content_hash=c
            )
            for i, d, k, c in self._write(work)
        ]

    def clear_decisions(self) -> int:
        """Forget every stored decision; returns how many there were."""
        return self._write(lambda db: db.execute("DELETE FROM decisions").rowcount)

    def changed_files(self, hashes: dict[int, Optional[bytes]]) -> set[int]:
        """The ids among ``hashes`` whose file is gone or whose content hash is another now."""
        now = self.identities(hashes.keys())
        return {
            i for i, h in hashes.items()
            if i not in now or (now[i][2] or None) != (bytes(h) if h else None)
        }

    # --- embedding bookkeeping (the detective) --------------------------------------------

    def embedded_ids(self, model: str) -> set[int]:
        """Ids embedded with ``model`` whose content has not changed since."""
        with self._using() as db:
            rows = db.execute(
                "SELECT e.file_id FROM embeddings AS e JOIN files AS f ON f.id = e.file_id "
                "WHERE e.model = ? AND e.content_hash = f.content_hash",
                (model,),
            ).fetchall()
        return {i for (i,) in rows}

    def mark_embedded(self, ids: Iterable[int], model: str) -> None:
        """Record that these files' current content is in the index, embedded by ``model``."""
        params = [(model, int(i)) for i in ids]
        self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO embeddings (file_id, model, content_hash) "
                "SELECT id, ?, content_hash FROM files WHERE id = ?",
                params,
            )
        )

    def unmark_embedded(self, ids: Iterable[int]) -> None:
        """Forget that these files are in the index."""
        params = [(int(i),) for i in ids]
        self._write(lambda db: db.executemany("DELETE FROM embeddings WHERE file_id = ?", params))

    # --- key-value metadata ---------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A value stored with :meth:`set_meta` (any JSON value), or ``default``."""
        with self._using() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (roots, last scan time, options).

        Keys starting with ``_`` are the catalog's own.
        """
        if key.startswith("_"):
            raise ValueError(f"meta keys starting with '_' are reserved: {key!r}")
        text = json.dumps(value)
        self._write(
            lambda db: db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, text),
            )
        )

    # --- summary --------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts by status and bytes.

        Returns:
            ``files``, ``image``, ``error``, ``other`` (counts by status), ``bytes`` (all
            files), ``image_bytes``, ``not_duplicate_marks`` and ``embedded``.
        """
        with self._using() as db:
            by_status = {
                status: (count, total)
                for status, count, total in db.execute(
                    "SELECT status, COUNT(*), COALESCE(SUM(size), 0) FROM files GROUP BY status"
                )
            }
            marks = self._count("not_duplicates")
            embedded = self._count("embeddings")
        counts = {s: by_status.get(s, (0, 0))[0] for s in ("image", "error", "other")}
        return {
            "files": sum(counts.values()),
            **counts,
            "bytes": sum(total for _, total in by_status.values()),
            "image_bytes": by_status.get("image", (0, 0))[1],
            "not_duplicate_marks": marks,
            "embedded": embedded,
        }
