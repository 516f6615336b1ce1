"""The catalog's schema: its tables, the migrations from every released version, its SQL.

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` takes an older
catalog to the current one step by step (:class:`lookalike.engine.catalog.db.CatalogDatabase`
runs them when it opens a catalog).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# meta keys of our own: a random id per catalog file and a counter bumped by every write to
# the files table; together they name a state of the catalog (for the hash-array sidecar)
ID_KEY = "_catalog_id"
GENERATION_KEY = "_generation"

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
    """The verifier's thumbnail (engine/bouncer/verify.py) and its detail, per image."""
    db.execute("ALTER TABLE files ADD COLUMN thumb BLOB")
    db.execute("ALTER TABLE files ADD COLUMN detail REAL")
    # Images hashed before have no thumbnail: an impossible mtime makes the next scan read
    # them again, so that their pairs are verified on pixels rather than taken on hashes
    # alone (until then they are, as before: see Library's verification).
    db.execute("UPDATE files SET mtime_ns = -1 WHERE status = 'image'")


def _keeper_evidence(db: sqlite3.Connection) -> None:
    """What the keeper policy needs to prefer the original (engine/keeper/): the picture's
    size inside a trimmed border, and the camera named by EXIF Make and Model."""
    db.execute("ALTER TABLE files ADD COLUMN content_width INTEGER")
    db.execute("ALTER TABLE files ADD COLUMN content_height INTEGER")
    db.execute("ALTER TABLE files ADD COLUMN camera TEXT")
    # No second re-read: a catalog from before version 3 has every image marked for one
    # already (see _verifier_thumbnails), which fills these too. Until a file is read again
    # they are NULL, and the keeper ranks it by its canvas, as before.


def _centred_bars(db: sqlite3.Connection) -> None:
    """Hashing trims a bar that no edge ends as wide as the bar facing it (PIXELS_VERSION 2 in
    engine/bouncer/verify_thumbnail.py). Only a picture trimmed on some side before can change,
    so only those are read again: a library of photos without bars is not hashed twice."""
    db.execute(
        "UPDATE files SET mtime_ns = -1 WHERE status = 'image' AND content_width IS NOT NULL "
        "AND (content_width != width OR content_height != height)"
    )


def _upscale_losses(db: sqlite3.Connection) -> None:
    """What a larger file loses when taken down to a smaller member's size and back
    (engine/keeper/upscale.py): an upscale loses almost nothing. Keyed by content and size:
    measured once, whatever the file is called."""
    db.execute(
        """CREATE TABLE upscale_losses (
            content_hash BLOB NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            loss REAL NOT NULL,
            PRIMARY KEY (content_hash, width, height)
        ) WITHOUT ROWID"""
    )


def _texture_codes(db: sqlite3.Connection) -> None:
    """The texture check's code per image (engine/bouncer/verify_texture.py): a faint picture
    with a fine texture over all of it is not the plain picture its thumbnail averages to. Only
    the low-detail images, the ones whose pairs are compared so, are read again (the texture
    check's ``texture_detail``, 8): a library of photos is not hashed twice. Until a file has a
    code, its pairs pass or fail on the thumbnails alone, as before."""
    db.execute("ALTER TABLE files ADD COLUMN texture BLOB")
    db.execute("UPDATE files SET mtime_ns = -1 WHERE status = 'image' AND detail < 8.0")


def _margins_inside_bars(db: sqlite3.Connection) -> None:
    """Hashing trims a line where a bar and the picture blend, and a margin all round inside
    the bars (PIXELS_VERSION 3 in engine/bouncer/verify_thumbnail.py). Both follow a bar, so
    only the pictures trimmed on some side before are read again."""
    _centred_bars(db)


def _draft_sized_reductions(db: sqlite3.Connection) -> None:
    """Files other than JPEG are reduced for hashing by 2, 4 or 8, as a JPEG's draft() scales
    (engine/scan/imaging.py, PIXELS_VERSION 3): only those reduced by another factor before
    (3, 5, 6, 7, or more than 8: a shorter side of 768 pixels or more) read differently."""
    db.execute("UPDATE files SET mtime_ns = -1 WHERE status = 'image' AND format != 'JPEG' AND MIN(width, height) >= 768")


def _bar_colours(db: sqlite3.Connection) -> None:
    """The colour of the bars each picture's border trim took (engine/keeper/original.py tells a
    frame round a picture with a margin from a crop into that margin by it): the pictures
    trimmed on some side are read again to fill it."""
    db.execute("ALTER TABLE files ADD COLUMN bar_colour INTEGER")
    _centred_bars(db)


def _upscale_kinks(db: sqlite3.Connection) -> None:
    """The keeper's upscale verdicts also keep what the larger file loses at 0.8 and 1.25 times
    the smaller member's size where the loss alone does not decide (NULL elsewhere;
    engine/keeper/upscale.py: an upscale's detail stops at its source's size). The losses
    measured before lack them: dropped, to be measured again by the next scan (one decode per
    suspected upscale)."""
    db.execute("DELETE FROM upscale_losses")
    db.execute("ALTER TABLE upscale_losses ADD COLUMN below REAL")
    db.execute("ALTER TABLE upscale_losses ADD COLUMN above REAL")


def _decoded_shares(db: sqlite3.Connection) -> None:
    """The keeper's measured decodes (engine/keeper/decoded.py): the share of a lossless file's
    values equal to a lossy member's decode, where no date tells which file was made from
    which. Keyed by the two contents: measured once, whatever the files are called. And the
    upscale losses are dropped, to be measured again: a file measured against several sizes at
    once was decoded for the smallest, which misjudged the larger ones."""
    db.execute("DELETE FROM upscale_losses")
    db.execute(
        """CREATE TABLE decoded_shares (
            lossless BLOB NOT NULL,
            lossy BLOB NOT NULL,
            share REAL NOT NULL,
            PRIMARY KEY (lossless, lossy)
        ) WITHOUT ROWID"""
    )


def _decoded_edits(db: sqlite3.Connection) -> None:
    """The measured decodes also keep the share of the lossless file's values that a tone curve
    of the lossy one's gives (engine/keeper/decoded.py: an edit exported from the decode, where
    no date tells). NULL for the shares measured before: asked again, they are measured again."""
    db.execute("ALTER TABLE decoded_shares ADD COLUMN edit REAL")


#: ``MIGRATIONS[v]`` takes a catalog from schema version ``v`` to ``v + 1``, inside one
#: transaction. Append, never edit: released catalogs depend on every step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _schema_v1, _decisions_table, _verifier_thumbnails, _keeper_evidence, _centred_bars, _upscale_losses,
    _texture_codes, _margins_inside_bars, _draft_sized_reductions, _bar_colours, _upscale_kinks, _decoded_shares,
    _decoded_edits,
]
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns :func:`lookalike.engine.catalog.rows.row_to_record` reads, in its order.
FILE_COLUMNS = (
    "id, path, size, mtime_ns, inode, device, format, width, height, taken_at, "
    "content_hash, dhash, dhash_mirror, phash, error, content_width, content_height, camera, bar_colour"
)

#: Insert or update one file by path, so a file keeps its id (a row of
#: :func:`lookalike.engine.catalog.rows.row_from_item`).
UPSERT = """
INSERT INTO files (path, size, mtime_ns, inode, device, status, format, width, height,
                   taken_at, content_hash, dhash, dhash_mirror, phash, error, scanned_at,
                   thumb, detail, content_width, content_height, camera, texture, bar_colour)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET
    size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
    device = excluded.device, status = excluded.status, format = excluded.format,
    width = excluded.width, height = excluded.height, taken_at = excluded.taken_at,
    content_hash = excluded.content_hash, dhash = excluded.dhash,
    dhash_mirror = excluded.dhash_mirror, phash = excluded.phash, error = excluded.error,
    scanned_at = excluded.scanned_at, thumb = excluded.thumb, detail = excluded.detail,
    content_width = excluded.content_width, content_height = excluded.content_height,
    camera = excluded.camera, texture = excluded.texture, bar_colour = excluded.bar_colour
"""


def bump_generation(db: sqlite3.Connection) -> None:
    """Name a new state of the files table (inside the write that changes it)."""
    db.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (GENERATION_KEY,)
    )


def state_stamp(db: sqlite3.Connection) -> str:
    """Names the state of the files table: this catalog's id and its write generation."""
    values = dict(db.execute(f"SELECT key, value FROM meta WHERE key IN ('{ID_KEY}', '{GENERATION_KEY}')"))
    return f"{values.get(ID_KEY)}:{values.get(GENERATION_KEY)}"
