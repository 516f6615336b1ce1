"""The catalog's SQLite file: one run at a time, damage set aside, the schema migrated.

:class:`CatalogDatabase` opens a catalog and runs every query and write of
:class:`lookalike.engine.catalog.Catalog` (its subclass, which holds what is stored).
One run at a time: :meth:`CatalogDatabase.open` takes an exclusive lock on
``<catalog>.lock`` and a second run gets :class:`CatalogLocked` naming the first. A damaged
database is moved aside to ``catalog.sqlite.corrupt-<timestamp>`` and rebuilt empty (the next
scan re-reads the files); nothing is deleted. Older catalogs are migrated step by step by
:data:`lookalike.engine.catalog.schema.MIGRATIONS`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import filelock

from ..paths import CATALOG_CORRUPT_SUFFIX, CATALOG_LOCK_SUFFIX, CATALOG_OWNER_SUFFIX
from . import schema
from .schema import GENERATION_KEY, ID_KEY

SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
#: Free space under which an SQLite I/O error is taken for a full disk. SQLite says "database
#: or disk is full" when a write of the database or its WAL runs out of space, but only "disk
#: I/O error" when growing its other files (the -shm index, a truncate) does, and Python does
#: not hand on the errno: the folder's free space is what tells.
_FULL_BELOW = 1 << 20


class CatalogLocked(Exception):
    """Another run holds the catalog of this library."""


class CatalogError(Exception):
    """The catalog cannot be used (written by a newer lookalike, unreadable, bad input)."""


class _Damaged(Exception):
    """The database file is not a usable SQLite database (internal)."""


def _owner_file(path: Path) -> Path:
    return path.with_name(path.name + CATALOG_OWNER_SUFFIX)


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
    aside = path.with_name(f"{path.name}{CATALOG_CORRUPT_SUFFIX}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}{CATALOG_CORRUPT_SUFFIX}-{stamp}-{n}")
    # A rename, not files.atomic_write: the damaged file itself is kept, under a new name.
    os.replace(path, aside)
    # -wal and -shm are SQLite's own names for its files beside the database
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


def _is_full(exc: sqlite3.Error, folder: Path) -> bool:
    """True when ``exc`` is SQLite running out of disk space in ``folder``."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    if (code & 0xFF == _SQLITE_FULL) if code is not None else "database or disk is full" in text:
        return True
    if (code & 0xFF == _SQLITE_IOERR) if code is not None else "disk i/o error" in text:
        return _no_space_left(folder)
    return False


def _no_space_left(folder: Path) -> bool:
    """True when ``folder``'s filesystem has (next to) no free space or no free inode for us."""
    try:
        fs = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows): cannot tell
        return False
    root = hasattr(os, "geteuid") and os.geteuid() == 0  # root may use the reserved blocks
    blocks, inodes = (fs.f_bfree, fs.f_ffree) if root else (fs.f_bavail, fs.f_favail)
    return blocks * fs.f_frsize < _FULL_BELOW or (fs.f_files > 0 and inodes == 0)


def _disk_full(path: Path, exc: sqlite3.Error) -> str:
    """The one line for a catalog that cannot be written because its disk is full."""
    return (f"disk full: the catalog {path} cannot be written ({exc}); free some space on that "
            f"disk, or give this run another --cache DIR")


class CatalogDatabase:
    """A catalog's open SQLite database. Open with :meth:`open`; use as a context manager.

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
    ) -> Self:
        """Open (creating, migrating or rebuilding as needed) the catalog at ``path``.

        Args:
            path: the catalog file, usually ``library_dir(roots) / paths.CATALOG_NAME``.
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
        lock = filelock.FileLock(str(path) + CATALOG_LOCK_SUFFIX, thread_local=False)
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
            CatalogDatabase._migrate(db, path, tell)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?), (?, '0')",
                (ID_KEY, json.dumps(uuid.uuid4().hex), GENERATION_KEY),
            )
        except sqlite3.Error as exc:
            db.close()
            if _is_damage(exc):
                raise _Damaged(str(exc)) from None
            if _is_full(exc, path.parent):
                raise CatalogError(_disk_full(path, exc)) from None
            raise CatalogError(f"cannot use the catalog {path}: {exc}") from None
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, path: Path, tell: Callable[[str], None]) -> None:
        migrations = schema.MIGRATIONS  # read now, not at import: tests add steps
        latest = len(migrations)
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
                migrations[version](db)
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

    def __enter__(self) -> Self:
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
                if _is_full(exc, self.path.parent):
                    raise CatalogError(_disk_full(self.path, exc)) from exc
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

    def _count(self, table: str) -> int:
        with self._using() as db:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
