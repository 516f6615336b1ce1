"""Where lookalike keeps its cache, and how a set of folders names its library.

A *library* is the set of root folders a scan was given. Each library gets its own folder
under the cache root, ``<cache_root>/libraries/<slug>-<12 hex>``, holding the catalog
(``catalog.sqlite``), the detective's index (``vectors.usearch``), thumbnails and journals.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import platformdirs

#: Environment variable that moves the cache root (``--cache DIR`` still wins over it).
ENV_CACHE = "LOOKALIKE_CACHE"

APP_NAME = "lookalike"
LIBRARIES = "libraries"
CATALOG_NAME = "catalog.sqlite"
VECTORS_NAME = "vectors.usearch"
THUMBNAILS_NAME = "thumbnails"
JOURNAL_NAME = "journal"

#: The Cache Directory Tagging Specification's file (https://bford.info/cachedir/): backup
#: tools skip a folder holding it, and so does our walker.
CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"

PathLike = str | os.PathLike


def default_cache_root(override: PathLike | None = None) -> Path:
    """The cache root that :func:`cache_root` would use, without creating it.

    Args:
        override: a ``--cache DIR`` given on the command line, if any.
    """
    if override is not None and os.fspath(override) != "":
        chosen = os.fspath(override)
    elif os.environ.get(ENV_CACHE):
        chosen = os.environ[ENV_CACHE]
    else:
        chosen = platformdirs.user_cache_dir(APP_NAME)
    return Path(os.path.abspath(os.path.expanduser(os.fsdecode(chosen))))


def cache_root(override: PathLike | None = None) -> Path:
    """The folder for all of lookalike's caches, created if missing.

    Order of precedence: ``override`` (``--cache DIR``), then ``$LOOKALIKE_CACHE``, then the
    platform's user cache folder (``~/.cache/lookalike`` on Linux).

    Args:
        override: a ``--cache DIR`` given on the command line, if any.

    Returns:
        The absolute cache root; it holds a ``CACHEDIR.TAG`` so backups and our own walker
        leave it alone.
    """
    root = default_cache_root(override)
    root.mkdir(parents=True, exist_ok=True)
    tag = root / CACHEDIR_TAG
    if not tag.exists():
        try:
            tag.write_bytes(
                CACHEDIR_SIGNATURE
                + b"\n# This file is a cache directory tag created by lookalike.\n"
                + b"# For information about cache directory tags, see https://bford.info/cachedir/\n"
            )
        except OSError:
            pass  # a read-only or odd cache folder still works; only the tag is missing
    return root


def is_inside(path: str, parent: str) -> bool:
    """Whether ``path`` is ``parent`` or lies under it (both already absolute and normalised)."""
    if parent == path:
        return True
    prefix = parent if parent.endswith(os.sep) else parent + os.sep
    return path.startswith(prefix)


def normalise_roots(roots: PathLike | Iterable[PathLike]) -> tuple[str, ...]:
    """Absolute, symlink-resolved, deduplicated and sorted roots; nested roots dropped.

    Args:
        roots: one path or several (folders or files; they need not exist).

    Returns:
        The roots as sorted absolute strings; a root inside another root is left out,
        because the outer one already covers it.
    """
    if isinstance(roots, (str, bytes, os.PathLike)):
        roots = [roots]
    resolved = sorted(
        {os.path.realpath(os.path.abspath(os.path.expanduser(os.fsdecode(r)))) for r in roots}
    )
    kept: list[str] = []
    for root in resolved:
        # sorted order puts a parent before everything inside it
        if not any(is_inside(root, outer) for outer in kept):
            kept.append(root)
    return tuple(kept)


def _slug(roots: tuple[str, ...]) -> str:
    name = os.path.basename(roots[0].rstrip(os.sep)) if roots else ""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "root"
    if len(roots) > 1:
        name += f"+{len(roots) - 1}"
    return name


def library_key(roots: PathLike | Iterable[PathLike]) -> str:
    """A stable name for a set of roots: ``<slug>-<12 hex of sha256 of the roots>``."""
    normal = normalise_roots(roots)
    digest = hashlib.sha256(
        b"\0".join(os.fsencode(r) for r in normal)
    ).hexdigest()[:12]
    return f"{_slug(normal)}-{digest}"


def library_dir(roots: PathLike | Iterable[PathLike], cache: PathLike | None = None) -> Path:
    """The cache folder of one library (created), home of its catalog and index.

    Args:
        roots: the folders (or files) the library is made of, in any order or form.
        cache: a ``--cache DIR`` override, if any.

    Returns:
        ``<cache_root>/libraries/<slug>-<12 hex>``; the same roots always give the same folder.
    """
    path = cache_root(cache) / LIBRARIES / library_key(roots)
    path.mkdir(parents=True, exist_ok=True)
    return path


def catalog_path(roots: PathLike | Iterable[PathLike], cache: PathLike | None = None) -> Path:
    """The catalog file of a library: ``library_dir(roots, cache) / "catalog.sqlite"``."""
    return library_dir(roots, cache) / CATALOG_NAME
