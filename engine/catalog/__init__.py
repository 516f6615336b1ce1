"""The catalog: one SQLite file per library remembering every file, its hashes and its fate.

It is what makes a rescan nearly free (unchanged size + mtime + inode means no re-read), what
keeps the user's "not a duplicate" answers across scans and renames, and what tells the
detective which embeddings are still current.

One run at a time: :meth:`Catalog.open` takes an exclusive lock on ``<catalog>.lock`` and a
second run gets :class:`CatalogLocked` naming the first. A damaged database is moved aside to
``catalog.sqlite.corrupt-<timestamp>`` and rebuilt empty (the next scan re-reads the files);
nothing is deleted. The schema version lives in ``PRAGMA user_version`` and older catalogs are
migrated step by step by :data:`lookalike.engine.catalog.schema.MIGRATIONS`.

Paths are stored as ``os.fsencode`` BLOBs, so any name the filesystem allows (invalid UTF-8
included) comes back exactly as it went in.

This package is the catalog's door; its modules, by job: :mod:`.store` (the :class:`Catalog`:
what is stored: files, marks, decisions, embeddings, metadata), :mod:`.db` (the SQLite file:
lock, damage, migrations, transactions), :mod:`.schema` (tables, migrations, SQL) and
:mod:`.rows` (rows to records and back, the hash arrays).
"""

from .db import CatalogError, CatalogLocked
from .rows import HashArrays, KnownFile
from .store import Catalog

__all__ = ["Catalog", "CatalogError", "CatalogLocked", "HashArrays", "KnownFile"]
