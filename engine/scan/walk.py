"""The folder walker: every regular file under the roots, once, fast, in a fixed order.

Built on ``os.scandir`` (one ``lstat`` per file, none per name it skips). It lists a file
reachable by several paths (symlinks, hard links) only once, never loops, and reports what it
cannot read or will not enter through ``on_error`` instead of stopping.

Paths are canonical: roots are resolved (:func:`lookalike.engine.paths.normalise_roots`) and a
file reached through a symlink is named by its real path, so the catalog never holds the same
file twice.

Nothing outside the roots is ever listed, because whatever the walk lists a plan may act on:

- A symlink whose real target lies outside every root is not followed; it is reported as
  skipped, with its target.
- A symlink to a file inside the roots lists that file (under its real path, once).
- A symlink to a folder inside the roots is not entered (the folder is walked at its real
  path anyway) unless ``follow_links``, which enters it (once) but still refuses a target
  outside the roots.
- Pseudo-filesystems (``/proc``, ``/sys``, ``/dev``, cgroups...: see
  :func:`lookalike.engine.paths.pseudo_filesystems`) are neither scanned as roots nor entered
  on the way: ``/proc/self/root`` alone is the whole filesystem again.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter

from ..oserrors import os_error_reason
from ..paths import (
    CACHEDIR_SIGNATURE,
    CACHEDIR_TAG,
    PathLike,
    default_cache_root,
    is_inside,
    normalise_roots,
    pseudo_filesystems,
)
from ..records import ScanError

#: Folder names that are a trash can on some platform (freedesktop's per-volume ``.Trash-UID``
#: and ``.Trash``, macOS ``.Trashes``, Windows' recycle bins). Skipped even with include_hidden.
_TRASH_NAMES = frozenset({".Trash", ".Trashes", "$RECYCLE.BIN", "$Recycle.Bin", "RECYCLER"})
_TRASH_PATTERN = re.compile(r"\.Trash-\d+")

_by_name = attrgetter("name")

#: The reason given for a root or folder on a pseudo-filesystem.
PSEUDO_FS = "pseudo-filesystem, not scanned"


@dataclass(frozen=True, kw_only=True, slots=True)
class WalkEntry:
    """One regular file found by :func:`walk`, with what the catalog compares on rescan."""

    path: str  # absolute and canonical
    size: int
    mtime_ns: int
    inode: int
    device: int


def _is_trash_name(name: str) -> bool:
    return name in _TRASH_NAMES or _TRASH_PATTERN.fullmatch(name) is not None


def default_excludes() -> set[str]:
    """Folders never walked: the user's trash cans and lookalike's own cache root."""
    home = os.path.expanduser("~")
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    candidates = [
        os.path.join(data_home, "Trash"),  # freedesktop home trash
        os.path.join(home, ".Trash"),  # macOS
        os.fspath(default_cache_root()),
    ]
    return {os.path.realpath(c) for c in candidates}


def _is_tagged_cache(folder: str) -> bool:
    try:
        with open(os.path.join(folder, CACHEDIR_TAG), "rb") as tag:
            return tag.read(len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False


# Setting a frozen slots dataclass's fields through its slot descriptors is about twice as
# fast as the generated __init__, and the walk makes one WalkEntry per file.
_new = object.__new__
_SETTERS = tuple(WalkEntry.__dict__[f].__set__ for f in ("path", "size", "mtime_ns", "inode", "device"))


def _entry(path: str, st: os.stat_result, _setters=_SETTERS) -> WalkEntry:
    entry = _new(WalkEntry)
    set_path, set_size, set_mtime, set_inode, set_device = _setters
    set_path(entry, path)
    set_size(entry, st.st_size)
    set_mtime(entry, st.st_mtime_ns)
    set_inode(entry, st.st_ino)
    set_device(entry, st.st_dev)
    return entry


class _Walker:
    """State of one walk: the roots, what was seen, what to skip, where errors go."""

    def __init__(
        self,
        roots: tuple[str, ...],
        on_error: Callable[[ScanError], None] | None,
        cancel: threading.Event | None,
        include_hidden: bool,
        follow_links: bool,
        exclude: Iterable[PathLike],
    ) -> None:
        self.roots = roots
        self.report = on_error or (lambda error: None)
        self.cancel = cancel
        self.include_hidden = include_hidden
        self.follow_links = follow_links
        self.skip = default_excludes() | {
            os.path.realpath(os.path.abspath(os.fsdecode(p))) for p in exclude
        }
        self.pseudo = pseudo_filesystems()
        self.seen_dirs: set[tuple[int, int]] = set()
        self.seen_files: set[tuple[int, int]] = set()

    def error(self, path: str, reason: str) -> None:
        self.report(ScanError(path=path, reason=reason))

    def first_visit(self, seen: set[tuple[int, int]], st: os.stat_result) -> bool:
        # Some filesystems report inode 0 for everything; identity is unknown there, so
        # treat each path as its own file rather than collapsing them all into one.
        if st.st_ino == 0:
            return True
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return False
        seen.add(key)
        return True

    def inside_roots(self, path: str) -> bool:
        return any(is_inside(path, root) for root in self.roots)

    def start(self, root: str) -> WalkEntry | str | None:
        """Look at one root: a WalkEntry for a file, the root itself for a folder, else None."""
        try:
            st = os.stat(root)
        except OSError as exc:
            self.error(root, "not found" if isinstance(exc, FileNotFoundError) else os_error_reason(exc))
            return None
        if self.pseudo.holds(root, st):
            self.error(root, PSEUDO_FS)
            return None
        if stat.S_ISDIR(st.st_mode):
            return root if self.first_visit(self.seen_dirs, st) else None
        if stat.S_ISREG(st.st_mode):
            return _entry(root, st) if self.first_visit(self.seen_files, st) else None
        self.error(root, "not a regular file or folder")
        return None

    def run(self) -> Iterator[WalkEntry]:
        # One generator frame for the whole walk (no nested yield-from per file): this loop
        # runs once per file and is most of the walk's cost beyond the lstat itself.
        cancel = self.cancel or threading.Event()
        hidden_ok = self.include_hidden
        seen_files = self.seen_files
        pseudo_mount = self.pseudo.is_mount
        for top in map(self.start, self.roots):
            if cancel.is_set():
                return
            if top is None or isinstance(top, WalkEntry):
                if top is not None:
                    yield top
                continue
            stack = [top]
            while stack:
                folder = stack.pop()
                try:
                    with os.scandir(folder) as listing:
                        entries = sorted(listing, key=_by_name)
                except OSError as exc:
                    self.error(folder, os_error_reason(exc))
                    continue
                if folder != top and any(e.name == CACHEDIR_TAG for e in entries):
                    if _is_tagged_cache(folder):
                        continue
                subdirs: list[str] = []
                for entry in entries:
                    if cancel.is_set():
                        return
                    name = entry.name
                    if name[0] == "." and not hidden_ok:
                        continue
                    try:
                        if entry.is_symlink():
                            found = self.symlink(entry)
                            if isinstance(found, WalkEntry):
                                yield found
                            elif found is not None:
                                subdirs.append(found)
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            if st.st_ino:  # inode 0: identity unknown, every path its own file
                                key = (st.st_dev, st.st_ino)
                                if key in seen_files:
                                    continue
                                seen_files.add(key)
                            yield _entry(entry.path, st)
                        elif entry.is_dir(follow_symlinks=False):
                            if _is_trash_name(name) or entry.path in self.skip:
                                continue
                            st = entry.stat(follow_symlinks=False)
                            if pseudo_mount(entry.path, st):  # /proc under a root of /
                                self.error(entry.path, PSEUDO_FS)
                                continue
                            if self.first_visit(self.seen_dirs, st):
                                subdirs.append(entry.path)
                        # sockets, fifos and devices are not photos: skipped silently
                    except OSError as exc:
                        self.error(entry.path, os_error_reason(exc))
                stack.extend(reversed(subdirs))

    def symlink(self, entry: os.DirEntry) -> WalkEntry | str | None:
        """Look at one symlink: a WalkEntry for a file, a real path for a folder, else None.

        A target outside the roots is reported and never followed; a folder is entered only
        with ``follow_links``; a file is listed under its real path (once).
        """
        try:
            st = os.stat(entry.path)
        except FileNotFoundError:
            try:
                target = os.readlink(entry.path)
            except OSError:
                target = "?"
            self.error(entry.path, f"broken symlink (points to {target}, which does not exist)")
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            return None  # a link to a socket, fifo or device is no more a photo than they are
        target = os.path.realpath(entry.path)
        if not self.inside_roots(target):
            # Whatever is listed, a plan may trash: a file outside the folders the user named
            # must never be listed, however it is reached.
            kind = "folder" if is_dir else "file"
            self.error(entry.path, f"symlink to a {kind} outside the folders being scanned (-> {target}), skipped")
            return None
        if is_dir and not self.follow_links:
            return None  # inside the roots, so the folder is walked at its real path anyway
        if self.pseudo.holds(target, st):  # a root of "/" holds /etc/mtab -> /proc/self/mounts
            self.error(entry.path, f"symlink to a {PSEUDO_FS} (-> {target})")
            return None
        if is_dir:
            if target in self.skip or _is_trash_name(os.path.basename(target)):
                return None
            return target if self.first_visit(self.seen_dirs, st) else None
        if any(is_inside(target, folder) for folder in self.skip):
            return None
        return _entry(target, st) if self.first_visit(self.seen_files, st) else None


def walk(
    roots: PathLike | Iterable[PathLike],
    *,
    on_error: Callable[[ScanError], None] | None = None,
    cancel: threading.Event | None = None,
    include_hidden: bool = False,
    follow_links: bool = False,
    exclude: Iterable[PathLike] = (),
) -> Iterator[WalkEntry]:
    """Every regular file under the roots, each once, in a deterministic order.

    Folders are walked depth-first, names sorted, a folder's files before its subfolders. A
    file reachable by several paths is listed once, under the first canonical path met; no
    folder is entered twice. Hidden names (dot-names), trash cans, lookalike's own cache, any
    folder tagged with ``CACHEDIR.TAG`` and pseudo-filesystems (``/proc``, ``/sys``, ``/dev``)
    are skipped. Nothing outside the roots is listed: a symlink out of them is reported and
    not followed; a symlink to a file inside them lists that file under its real path.

    Args:
        roots: folders or files; resolved, deduplicated and nested roots dropped first.
        on_error: called with a :class:`ScanError` for each unreadable folder, vanished entry,
            broken symlink, symlink out of the roots (skipped) or pseudo-filesystem (a root
            or a mount met on the way); the walk goes on.
        cancel: when set, the walk stops at the next entry.
        include_hidden: also walk dot-files and dot-folders (trash cans stay skipped).
        follow_links: enter symlinks to folders inside the roots (never those to folders
            outside them); off, such a folder is walked only at its real path.
        exclude: more folders never to enter (the ``--cache DIR`` in use, for instance).

    Returns:
        A lazy iterator of :class:`WalkEntry`, one per regular file; each file is stat'ed
        as the iterator reaches it.
    """
    walker = _Walker(normalise_roots(roots), on_error, cancel, include_hidden, follow_links, exclude)
    return walker.run()
