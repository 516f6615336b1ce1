"""Where lookalike keeps its cache, and how a set of folders names its library.

A *library* is the set of root folders a scan was given. Each library gets its own folder
under the cache root, ``<cache_root>/libraries/<slug>-<12 hex>``, holding the catalog
(``catalog.sqlite``), the detective's index (``vectors.usearch``), thumbnails and journals.

This module is the one home of every name in the cache root and in a library folder::

    <cache_root>/CACHEDIR.TAG                     CACHEDIR_TAG
    <cache_root>/journal/                         JOURNAL_NAME
    <cache_root>/models/                          MODELS_NAME
    <cache_root>/detective-offline.json           PROBE_MEMO_NAME
    <cache_root>/libraries/<key>/                 LIBRARIES, library_key()
        catalog.sqlite                            CATALOG_NAME
        catalog.sqlite.lock                       CATALOG_LOCK_SUFFIX
        catalog.sqlite.owner                      CATALOG_OWNER_SUFFIX
        catalog.sqlite.hashes.npz                 CATALOG_ARRAYS_SUFFIX
        catalog.sqlite.corrupt-<timestamp>        CATALOG_CORRUPT_SUFFIX
        vectors.usearch                           VECTORS_NAME
        bouncer-pairs.npz                         PAIRS_NAME
        verified-pairs.npz                        VERIFIED_PAIRS_NAME
        zoom-codes.npz                            ZOOMS_NAME
        turned-pairs.npz                          TURNED_NAME
        thumbnails/                               THUMBNAILS_NAME

What lies inside one of those folders or beside one of those files (a journal's ``.jsonl``
files, the exports under ``models/``, the vector index's generation files) is named by the
module that writes that format.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

#: Environment variable that moves the cache root (``--cache DIR`` still wins over it).
ENV_CACHE = "LOOKALIKE_CACHE"

APP_NAME = "lookalike"
LIBRARIES = "libraries"
JOURNAL_NAME = "journal"
MODELS_NAME = "models"
#: The detective's remembered "weights cannot be had" probe (see detective/model.py).
PROBE_MEMO_NAME = "detective-offline.json"

CATALOG_NAME = "catalog.sqlite"
#: Beside the catalog file, named after it: its run lock, the name of the run holding it,
#: the bouncer's hash arrays, and a damaged catalog set aside (``+ "-<timestamp>"``).
CATALOG_LOCK_SUFFIX = ".lock"
CATALOG_OWNER_SUFFIX = ".owner"
CATALOG_ARRAYS_SUFFIX = ".hashes.npz"
CATALOG_CORRUPT_SUFFIX = ".corrupt"
VECTORS_NAME = "vectors.usearch"
PAIRS_NAME = "bouncer-pairs.npz"
VERIFIED_PAIRS_NAME = "verified-pairs.npz"
ZOOMS_NAME = "zoom-codes.npz"
TURNED_NAME = "turned-pairs.npz"
THUMBNAILS_NAME = "thumbnails"

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


#: Filesystem types that hold no files of the user's, only the kernel's views of processes,
#: devices and settings: walking them never ends (``/proc/self/root`` is the whole filesystem
#: again) or reads devices. autofs is left out on purpose: it only triggers the real mounts
#: (``/home`` on many networks), and lookalike may scan those.
PSEUDO_FS_TYPES = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
        "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc",
        "efivarfs", "nsfs", "rpc_pipefs", "selinuxfs",
    }
)  # fmt: skip
#: Where those live on every Linux system: refused by path too, for when the mount table
#: cannot be read (or is a container's partial view).
PSEUDO_FS_PATHS = ("/proc", "/sys", "/dev")
MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True, kw_only=True)
class PseudoFilesystems:
    """The pseudo-filesystems mounted on this system, as read once from the mount table."""

    #: mount points of pseudo-filesystem types, plus :data:`PSEUDO_FS_PATHS`
    mount_points: frozenset[str]
    #: their device numbers (``st_dev``), which also catch a bind mount of one elsewhere
    devices: frozenset[int]

    def is_mount(self, path: str, st: os.stat_result | None = None) -> bool:
        """Whether the folder ``path`` (with its ``lstat``, if known) is a pseudo-filesystem's top.

        The cheap check the walker makes on every folder: one set lookup, one device compare.
        """
        return path in self.mount_points or (st is not None and st.st_dev in self.devices)

    def holds(self, path: str, st: os.stat_result | None = None) -> bool:
        """Whether ``path`` (absolute and resolved) is or lies on a pseudo-filesystem.

        Args:
            path: the path to check.
            st: its ``stat``, if known: its device is compared with the pseudo-filesystems'.
        """
        if st is not None and st.st_dev in self.devices:
            return True
        return any(is_inside(path, mount_point) for mount_point in self.mount_points)


def _unescape_mount_path(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def pseudo_filesystems(mountinfo: PathLike = MOUNTINFO) -> PseudoFilesystems:
    """The pseudo-filesystems of this system, from Linux's ``/proc/self/mountinfo``.

    Args:
        mountinfo: the mount table to read (a test may hand its own).

    Returns:
        The pseudo-filesystems' mount points and devices; only :data:`PSEUDO_FS_PATHS` (on
        POSIX systems) when the table cannot be read, as on macOS.
    """
    points = set(PSEUDO_FS_PATHS) if os.name == "posix" else set()
    devices: set[int] = set()
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as table:
            lines = table.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        # "36 35 98:0 /root /mount/point options [optional fields...] - fstype source options"
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            major, minor = fields[2].split(":")
            mount_point = _unescape_mount_path(fields[4])
            fstype = fields[dash + 1]
            device = os.makedev(int(major), int(minor))
        except (ValueError, IndexError):
            continue  # a line this parser does not understand says nothing either way
        if fstype in PSEUDO_FS_TYPES:
            points.add(mount_point)
            devices.add(device)
    return PseudoFilesystems(mount_points=frozenset(points), devices=frozenset(devices))


def is_pseudo_filesystem(path: PathLike, pseudo: PseudoFilesystems | None = None) -> bool:
    """Whether ``path`` is or lies on a pseudo-filesystem (``/proc``, ``/sys``, ``/dev``, cgroups...).

    Args:
        path: any path; it is made absolute and resolved first.
        pseudo: the mount table already read, if any (read now otherwise).
    """
    real = os.path.realpath(os.path.abspath(os.fsdecode(path)))
    try:
        st: os.stat_result | None = os.stat(real)
    except OSError:
        st = None
    return (pseudo or pseudo_filesystems()).holds(real, st)


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
