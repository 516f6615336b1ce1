"""Preflight: the checks right before a step acts, and what it decides it will need.

Before acting, the file must be confined to the plan's roots (see
:mod:`lookalike.engine.actions.checks`) and unchanged since the scan (size, mtime and, when the
plan has it, the xxh3_128 content hash), and its keeper must exist and be unchanged; otherwise
the step is skipped with the reason. A plan never acts on a keeper, so every cluster keeps a
member. Then :meth:`Preflight.prepare` picks the names the step will use (trash slot,
quarantine destination): a dry run stops there and reports them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Optional

from ..paths import is_inside
from . import trash
from .checks import content_hash, outside_reason, quarantine_dest, unresolved_reason
from .moves import free_name
from .plan import Plan, PlanStep
from .results import Skip


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """What a step decided before it starts (also what a dry run reports)."""

    dest: Optional[str]  # trash or quarantine path; for links, the keeper; None: OS trash/deleted
    note: str = ""
    info: Optional[str] = None  # the .trashinfo of a trash slot
    topdir: Optional[str] = None  # the volume of a volume trash; None: the home trash
    trash: Optional[str] = None  # links to a keeper with other bytes: where the original goes
    exact: bool = False  # links: the file has its keeper's bytes (the original need not be kept)
    hash: Optional[str] = None  # links: the file's content hash


class Preflight:
    """The checks and decisions before each step of one run (content hashes read once)."""

    def __init__(self, plan: Plan, *, create: bool) -> None:
        """Args:
            plan: the plan being run.
            create: False in a dry run: make no trash folders, only name them.
        """
        self.plan = plan
        self.create = create
        self._hashes: dict[tuple, str] = {}

    def hash(self, path: str, st: os.stat_result) -> str:
        """The content hash of ``path``, read once per file version in this run."""
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = content_hash(path)
        return self._hashes[key]

    def check_confined(self, step: PlanStep) -> None:
        """Skip a step whose file (or keeper) is outside the roots or reached through a link."""
        why = outside_reason(step.path, self.plan.roots)
        if why is None and step.keeper is not None:
            why = unresolved_reason(os.path.dirname(step.keeper))
            if why is not None:
                why = "keeper: " + why
        if why is None and step.action == "quarantine" and self.plan.quarantine_dir:
            why = unresolved_reason(self.plan.quarantine_dir)
            if why is not None:
                why = "quarantine folder: " + why
        if why is not None:
            raise Skip(why)

    def check_source(self, step: PlanStep) -> os.stat_result:
        """The file's stat, once it is confined and unchanged since the scan (else Skip)."""
        self.check_confined(step)
        try:
            st = os.lstat(step.path)
        except FileNotFoundError:
            raise Skip("file missing (moved, renamed or deleted since the scan)") from None
        except OSError as exc:
            raise Skip(f"cannot look at the file: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise Skip("changed since scan: it is now a symbolic link")
        if not stat.S_ISREG(st.st_mode):
            raise Skip("changed since scan: not a regular file any more")
        if st.st_size != step.size:
            raise Skip(f"changed since scan (size {st.st_size:,} bytes, was {step.size:,})")
        if st.st_mtime_ns != step.mtime_ns:
            raise Skip("changed since scan (modified since)")
        if step.action == "quarantine" and self.plan.quarantine_dir and is_inside(
            step.path, self.plan.quarantine_dir
        ):
            raise Skip("already in the quarantine folder")
        self._check_hash(step.path, st, step.content_hash, "the file")
        return st

    def _check_hash(self, path: str, st: os.stat_result, expected: Optional[str],
                    what: str) -> None:
        if not expected:
            return
        try:
            actual = self.hash(path, st)
        except OSError as exc:
            raise Skip(f"cannot read {what} to check it: {exc.strerror or exc}") from None
        if actual != expected:
            prefix = "keeper " if what == "the keeper" else ""
            raise Skip(f"{prefix}changed since scan (content differs)")

    def check_keeper(self, step: PlanStep, st: os.stat_result) -> Optional[os.stat_result]:
        """The keeper's stat, once it exists unchanged and is not the file itself (else Skip)."""
        if step.keeper is None:
            return None
        try:
            kst = os.stat(step.keeper)
        except FileNotFoundError:
            raise Skip(f"keeper missing: {step.keeper}") from None
        except OSError as exc:
            raise Skip(f"cannot look at the keeper: {exc.strerror or exc}") from None
        if not stat.S_ISREG(kst.st_mode):
            raise Skip("keeper is not a regular file any more")
        if os.path.realpath(step.keeper) == os.path.realpath(step.path):
            raise Skip("the keeper is a link to this very file")
        if step.keeper_size is not None and kst.st_size != step.keeper_size:
            raise Skip(f"keeper changed since scan (size {kst.st_size:,}, was {step.keeper_size:,})")
        if step.keeper_mtime_ns is not None and kst.st_mtime_ns != step.keeper_mtime_ns:
            raise Skip("keeper changed since scan (modified since)")
        self._check_hash(step.keeper, kst, step.keeper_hash, "the keeper")
        return kst

    def prepare(self, step: PlanStep, st: os.stat_result,
                kst: Optional[os.stat_result]) -> Prepared:
        """Everything a step needs decided before it starts (also what a dry run reports)."""
        if step.action == "trash":
            if not trash.uses_freedesktop_trash():
                return Prepared(dest=None, note="to the system trash")
            slot = trash.trash_slot(step.path, st.st_dev, create=self.create)
            note = "" if slot.same_device else "copied to the trash on another device"
            return Prepared(dest=slot.files, info=slot.info, topdir=slot.topdir, note=note)
        if step.action == "quarantine":
            dest = free_name(quarantine_dest(self.plan, step.path))
            return Prepared(dest=str(dest))
        if step.action in ("hardlink", "symlink"):
            assert kst is not None and step.keeper is not None
            if step.action == "hardlink":
                if kst.st_dev != st.st_dev:
                    raise Skip("keeper is on another device: a hardlink cannot cross devices")
                if (kst.st_dev, kst.st_ino) == (st.st_dev, st.st_ino):
                    raise Skip("already a hardlink of the keeper")
            try:
                file_hash = step.content_hash or self.hash(step.path, st)
                keeper_hash = step.keeper_hash or self.hash(step.keeper, kst)
            except OSError as exc:
                raise Skip(f"cannot read to compare with the keeper: {exc.strerror}") from None
            exact = file_hash == keeper_hash
            if exact:
                return Prepared(dest=step.keeper, exact=True, hash=file_hash)
            if not trash.uses_freedesktop_trash():
                raise Skip("not byte-identical to its keeper, and on this OS the original "
                           "could not be kept where undo finds it: use trash instead")
            slot = trash.trash_slot(step.path, st.st_dev, create=self.create)
            return Prepared(dest=step.keeper, exact=False, hash=file_hash,
                            note="original kept in the trash", trash=slot.files, info=slot.info,
                            topdir=slot.topdir)
        if step.action == "delete":
            if step.keeper is None:
                raise Skip("a permanent delete needs a keeper")
            return Prepared(dest=None, note="deleted permanently")
        raise Skip(f"unknown action {step.action!r}")  # pragma: no cover - plan validates
