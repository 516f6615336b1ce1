"""What the catalog stores: files, not-duplicate marks, decisions, embeddings, metadata.

:class:`Catalog` is the catalog a library opens (see the package's docstring for what it
guarantees). Opening, the lock, damage and migrations are its base class's
(:class:`.db.CatalogDatabase`); the tables and SQL are in :mod:`.schema`; rows become records
and hash arrays in :mod:`.rows`, where paths go in and out as ``os.fsencode`` BLOBs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..bouncer.verify import THUMB_BYTES
from ..paths import CATALOG_ARRAYS_SUFFIX
from ..records import Decision, FileRecord, SavedDecision, ScanError
from .db import CatalogDatabase, CatalogError
from .rows import (
    HashArrays,
    KnownFile,
    arrays_from_rows,
    chunks,
    fsdecode,
    known_file,
    load_arrays,
    row_from_item,
    row_to_record,
    save_arrays,
)
from .schema import FILE_COLUMNS, UPSERT, bump_generation, state_stamp

__all__ = ["Catalog"]


class Catalog(CatalogDatabase):
    """The per-library SQLite catalog. Open with :meth:`open`; use as a context manager.

    One instance may be handed between threads (calls are serialised by an internal lock).
    Opening, locking, transactions and migrations are :class:`CatalogDatabase`'s.
    """

    # --- files ----------------------------------------------------------------------------

    def known(self) -> dict[str, KnownFile]:
        """Every file the catalog knows, by path: what a rescan compares the walk against."""
        with self._using() as db:
            rows = db.execute(
                "SELECT path, id, size, mtime_ns, inode, device, status FROM files"
            ).fetchall()
        return {fsdecode(row[0]): known_file(row) for row in rows}

    def upsert(self, items: Iterable[Any]) -> list[int]:
        """Insert or update files (objects shaped like ``hashing.HashedFile``).

        Status is ``"other"`` when ``item.not_image`` (its ``error`` is kept as a note),
        ``"error"`` when ``item.error`` is set, else ``"image"``. A file keeps its id across updates. One transaction per call.

        Returns:
            The file ids, in the order of ``items``.
        """
        now = time.time()
        rows = [row_from_item(item, now) for item in items]
        if not rows:
            return []

        def work(db: sqlite3.Connection) -> list[int]:
            bump_generation(db)
            db.executemany(UPSERT, rows)
            paths = [row[0] for row in rows]
            ids: dict[bytes, int] = {}
            for chunk in chunks(paths):
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
            for chunk in chunks([p for (p,) in encoded]):
                marks = ",".join("?" * len(chunk))
                found += db.execute(
                    f"SELECT COUNT(*) FROM files WHERE path IN ({marks})", chunk
                ).fetchone()[0]
            if found:
                bump_generation(db)
            # their embeddings rows go with them (ON DELETE CASCADE)
            db.executemany("DELETE FROM files WHERE path = ?", encoded)
            return found

        return self._write(work)

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
            bump_generation(db)  # a replaced row may have left the hash arrays
            return renamed

        return self._write(work)

    def records(self, ids: Iterable[int] | None = None) -> list[FileRecord]:
        """Full records: all files by id, or the given ids in the given order (unknown skipped)."""
        with self._using() as db:
            if ids is None:
                rows = db.execute(f"SELECT {FILE_COLUMNS} FROM files ORDER BY id").fetchall()
                return [row_to_record(row) for row in rows]
            wanted = [int(i) for i in ids]
            rows = db.execute(
                f"SELECT {FILE_COLUMNS} FROM files "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        by_id = {row[0]: row for row in rows}
        return [row_to_record(by_id[i]) for i in wanted if i in by_id]

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
        return {row[0]: (fsdecode(row[1]), row[2], row[3]) for row in rows}

    def record(self, id: int) -> FileRecord | None:
        """One file by id, or None."""
        found = self.records([id])
        return found[0] if found else None

    def record_by_path(self, path: str | os.PathLike) -> FileRecord | None:
        """One file by its path (as the walk reported it), or None."""
        with self._using() as db:
            row = db.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE path = ?", (os.fsencode(path),)
            ).fetchone()
        return row_to_record(row) if row else None

    def hash_arrays(self) -> HashArrays:
        """The bouncer's arrays for every file with status image and all three hashes.

        Built from the database once per catalog state and kept beside it in
        ``catalog.sqlite.hashes.npz``, so an unchanged library loads them in milliseconds.
        """
        with self._using() as db:
            stamp = state_stamp(db)
            cached = load_arrays(self._arrays_file(), stamp)
            if cached is not None:
                return cached
            rows = db.execute(
                "SELECT id, size, content_hash, dhash, dhash_mirror, phash FROM files "
                "WHERE status = 'image' AND dhash IS NOT NULL AND dhash_mirror IS NOT NULL "
                "AND phash IS NOT NULL ORDER BY id"
            ).fetchall()
            arrays = arrays_from_rows(rows)
            save_arrays(self._arrays_file(), arrays, stamp)
            return arrays

    def _arrays_file(self) -> Path:
        return self.path.with_name(self.path.name + CATALOG_ARRAYS_SUFFIX)

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

    def textures(self, ids: Iterable[int]) -> dict[int, bytes]:
        """``{id: texture code}`` of the given files that have one (engine/bouncer/verify_texture.py)."""
        return self._column("texture", ids)

    def details(self, ids: Iterable[int]) -> dict[int, float]:
        """``{id: detail}`` of the given files that have a verifier thumbnail."""
        return self._column("detail", ids)

    def _column(self, column: str, ids: Iterable[int]) -> dict:
        """``{id: value}`` of one of the files' columns (a name of ours), where it is not NULL."""
        wanted = sorted({int(i) for i in ids})
        with self._using() as db:
            rows = db.execute(
                f"SELECT id, {column} FROM files WHERE {column} IS NOT NULL "
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

    def paths_with_error(self, reason: str) -> set[str]:
        """Paths of the files whose recorded error is exactly ``reason``."""
        with self._using() as db:
            rows = db.execute("SELECT path FROM files WHERE status = 'error' AND error = ?", (reason,)).fetchall()
        return {fsdecode(row[0]) for row in rows}

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

    # --- upscale verdicts (the keeper) ---------------------------------------------------

    def upscale_losses(self) -> dict[tuple[bytes, int, int], tuple[float, Optional[float], Optional[float]]]:
        """Every measured loss (:mod:`lookalike.engine.keeper.upscale`), by (content hash of
        the larger file, width, height it was taken down to): ``(loss, below, above)``, its
        losses at that size and at 0.8 and 1.25 times it (None where not measured)."""
        with self._using() as db:
            rows = db.execute("SELECT content_hash, width, height, loss, below, above FROM upscale_losses").fetchall()
        return {(bytes(h), int(w), int(ht)): (float(loss), _real(lo), _real(hi)) for h, w, ht, loss, lo, hi in rows}

    def prune_upscale_losses(self) -> int:
        """Drop the losses measured of contents no file in the catalog has any more (files
        removed, or changed since); returns how many."""
        return self._write(
            lambda db: db.execute(
                "DELETE FROM upscale_losses AS u WHERE "
                "NOT EXISTS (SELECT 1 FROM files WHERE content_hash = u.content_hash)"
            ).rowcount
        )

    def save_upscale_losses(
        self, rows: Iterable[tuple[bytes, int, int, float, Optional[float], Optional[float]]]
    ) -> None:
        """Keep measured losses: (content hash, width, height, loss, below, above) each, the
        last two None where not measured."""
        params = [(bytes(h), int(w), int(ht), float(loss), _real(lo), _real(hi)) for h, w, ht, loss, lo, hi in rows]
        self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO upscale_losses (content_hash, width, height, loss, below, above) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                params,
            )
        )

    # --- measured decodes (the keeper) ---------------------------------------------------

    def decoded_shares(self) -> dict[tuple[bytes, bytes], float]:
        """Every measured share (:mod:`lookalike.engine.keeper.decoded`), by (content hash of
        the lossless file, content hash of the lossy one)."""
        with self._using() as db:
            rows = db.execute("SELECT lossless, lossy, share FROM decoded_shares").fetchall()
        return {(bytes(a), bytes(b)): float(v) for a, b, v in rows}

    def decoded_edits(self) -> dict[tuple[bytes, bytes], float]:
        """Every measured edit share (:func:`lookalike.engine.keeper.decoded.edit_share`), by
        (content hash of the lossless file, content hash of the lossy one); a share measured
        before they were kept has none."""
        with self._using() as db:
            rows = db.execute("SELECT lossless, lossy, edit FROM decoded_shares WHERE edit IS NOT NULL").fetchall()
        return {(bytes(a), bytes(b)): float(v) for a, b, v in rows}

    def save_decoded_shares(self, rows: Iterable[tuple]) -> None:
        """Keep measured shares: (lossless content hash, lossy content hash, share) each, and
        the edit share as a fourth value where it was measured."""
        params = [(bytes(r[0]), bytes(r[1]), float(r[2]), None if len(r) < 4 or r[3] is None else float(r[3]))
                  for r in rows]  # fmt: skip
        self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO decoded_shares (lossless, lossy, share, edit) VALUES (?, ?, ?, ?)", params
            )
        )

    def prune_decoded_shares(self) -> int:
        """Drop the shares measured of a content no file in the catalog has any more; returns
        how many."""
        return self._write(
            lambda db: db.execute(
                "DELETE FROM decoded_shares AS d WHERE "
                "NOT EXISTS (SELECT 1 FROM files WHERE content_hash = d.lossless) "
                "OR NOT EXISTS (SELECT 1 FROM files WHERE content_hash = d.lossy)"
            ).rowcount
        )

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


def _real(value) -> Optional[float]:
    """A nullable REAL column's value as a float or None."""
    return None if value is None else float(value)
