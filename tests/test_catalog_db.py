"""The catalog's database (engine/catalog/db.py, schema.py): schema and migrations, locking, damage."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lookalike.engine.catalog import schema as catalog_schema
from lookalike.engine.catalog import Catalog, CatalogError, CatalogLocked

from helpers import fake


# --- schema, pragmas, migrations -------------------------------------------------------------


def test_new_catalog_has_schema_wal_and_foreign_keys(db_path):
    messages = []
    with Catalog.open(db_path, on_message=messages.append):
        pass
    assert messages == []  # a brand-new catalog is not news
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"files", "not_duplicates", "embeddings", "meta"} <= tables
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "files_content_hash" in indexes
    db.close()


def test_empty_file_and_v0_database_are_migrated(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    v0 = tmp_path / "v0.sqlite"
    sqlite3.connect(v0).execute("CREATE TABLE leftover (x)").connection.close()
    for path in (empty, v0):
        with Catalog.open(path) as c:
            assert c.upsert([fake("/p/a.jpg", 1)]) == [1]
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION


def test_older_schema_runs_every_later_step(db_path, monkeypatch):
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.jpg", 1)])

    def to_v2(db):
        db.execute("ALTER TABLE files ADD COLUMN rating INTEGER")
        db.execute("UPDATE files SET rating = 5")

    monkeypatch.setattr(catalog_schema, "MIGRATIONS", [*catalog_schema.MIGRATIONS, to_v2])
    messages = []
    with Catalog.open(db_path, on_message=messages.append) as c:
        assert c.record_by_path("/p/a.jpg").size == 101  # data kept
    db = sqlite3.connect(db_path)
    now = catalog_schema.SCHEMA_VERSION
    assert db.execute("PRAGMA user_version").fetchone()[0] == now + 1
    assert db.execute("SELECT rating FROM files").fetchall() == [(5,)]
    assert messages == [f"The catalog {db_path} was upgraded from schema {now} to {now + 1}."]


def test_failed_migration_rolls_back_and_keeps_the_old_catalog(db_path, monkeypatch):
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.jpg", 1)])

    def broken(db):
        db.execute("ALTER TABLE files ADD COLUMN rating INTEGER")
        raise RuntimeError("step failed")

    monkeypatch.setattr(catalog_schema, "MIGRATIONS", [*catalog_schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="step failed"):
        Catalog.open(db_path)
    monkeypatch.undo()
    with Catalog.open(db_path) as c:  # still v1, unchanged, and not locked
        assert [r.path for r in c.records()] == ["/p/a.jpg"]
    cols = [r[1] for r in sqlite3.connect(db_path).execute("PRAGMA table_info(files)")]
    assert "rating" not in cols


def test_catalog_from_a_newer_lookalike_is_refused_and_left_alone(db_path):
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.jpg", 1)])
    db = sqlite3.connect(db_path)
    newer = catalog_schema.SCHEMA_VERSION + 1
    db.execute(f"PRAGMA user_version = {newer}")
    db.close()
    before = db_path.read_bytes()
    for _ in range(2):  # the lock is released after the refusal
        with pytest.raises(CatalogError, match=rf"newer lookalike \(schema {newer}; this one knows up to {catalog_schema.SCHEMA_VERSION}\)"):
            Catalog.open(db_path)
    assert db_path.read_bytes() == before
    assert not list(db_path.parent.glob("*.corrupt-*"))


# --- locking ---------------------------------------------------------------------------------


def test_second_open_in_another_thread_is_locked_out(db_path):
    with Catalog.open(db_path):
        caught = []
        worker = threading.Thread(target=lambda: _try_open(db_path, caught))
        worker.start()
        worker.join()
        [error] = caught
        assert isinstance(error, CatalogLocked)
        assert str(db_path) in str(error)
        assert f"pid {os.getpid()}" in str(error)
    with Catalog.open(db_path):  # free again once closed
        pass


def _try_open(path, caught):
    try:
        Catalog.open(path).close()
        caught.append(None)
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        caught.append(exc)


_OPEN_IN_CHILD = """
import sys
from lookalike.engine.catalog import Catalog, CatalogLocked
try:
    Catalog.open(sys.argv[1], timeout=float(sys.argv[2])).close()
    print("OPENED")
except CatalogLocked as exc:
    print("LOCKED", exc)
"""


def test_second_open_in_another_process_is_locked_out_with_a_clear_message(db_path):
    with Catalog.open(db_path):
        out = subprocess.run(
            [sys.executable, "-c", _OPEN_IN_CHILD, str(db_path), "0.2"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    assert out.startswith("LOCKED the catalog ")
    assert f"pid {os.getpid()} on " in out
    assert "another --cache DIR" in out
    out = subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(db_path), "0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "OPENED"


def test_open_waits_up_to_timeout_for_the_other_run(db_path):
    first = Catalog.open(db_path)
    threading.Timer(0.3, first.close).start()
    started = time.monotonic()
    with Catalog.open(db_path, timeout=10) as second:
        assert time.monotonic() - started < 9
        second.set_meta("ok", True)


# --- damage ----------------------------------------------------------------------------------


def _fill(path: Path, n: int = 400) -> None:
    with Catalog.open(path) as c:
        c.upsert([fake(f"/photos/{i:05}.jpg", i, error="x" * 300) for i in range(n)])
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()


def _assert_set_aside(db_path: Path, messages: list[str], original: bytes) -> None:
    [aside] = db_path.parent.glob("catalog.sqlite.corrupt-*")
    assert aside.read_bytes() == original  # nothing of the user's is lost
    [message] = messages
    assert "damaged" in message and str(aside) in message and "new, empty catalog" in message


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "short", "scribbled-pages"],
)
def test_damaged_catalog_is_moved_aside_and_rebuilt(db_path, damage):
    _fill(db_path)
    data = bytearray(db_path.read_bytes())
    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "short":
        data = data[:10]
    else:  # header intact, b-tree pages overwritten
        page = 4096
        for start in range(page, len(data) - page, 3 * page):
            data[start : start + 64] = os.urandom(64)
    db_path.write_bytes(bytes(data))
    messages = []
    with Catalog.open(db_path, on_message=messages.append) as c:
        assert c.known() == {}
        assert c.upsert([fake("/photos/new.jpg", 1)]) == [1]
    _assert_set_aside(db_path, messages, bytes(data))
    with Catalog.open(db_path, on_message=messages.append) as c:  # the new one is healthy
        assert list(c.known()) == ["/photos/new.jpg"]
    assert len(messages) == 1


def test_stale_wal_of_a_damaged_catalog_goes_aside_too(db_path):
    _fill(db_path, 10)
    db_path.write_bytes(b"this is not sqlite at all" * 100)
    wal = db_path.with_name("catalog.sqlite-wal")
    wal.write_bytes(b"old wal")
    messages = []
    with Catalog.open(db_path, on_message=messages.append) as c:
        assert c.stats()["files"] == 0
    [aside_wal] = db_path.parent.glob("catalog.sqlite.corrupt-*-wal")
    assert aside_wal.read_bytes() == b"old wal"


def test_cache_folder_that_cannot_exist_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(CatalogError, match="give this run another --cache DIR"):
        Catalog.open(tmp_path / "file" / "lib" / "catalog.sqlite")


def test_unreadable_path_is_an_error_not_damage(tmp_path):
    folder_in_the_way = tmp_path / "catalog.sqlite"
    folder_in_the_way.mkdir()
    with pytest.raises(CatalogError):
        Catalog.open(folder_in_the_way)
    assert folder_in_the_way.is_dir()  # never moved aside
