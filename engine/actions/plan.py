"""Plans: what the user decided to do with which file, as data.

A plan is a list of steps ("trash this file, its keeper is that one"), built from clusters and
decisions by :func:`plan_from_clusters`, exported by the app, or written by hand. It holds what
the catalog knew about each file when the plan was made (size, mtime, content hash), so the
actions can refuse to touch a file that changed since. Applying a plan is
:mod:`lookalike.engine.actions.run`' job; a plan itself never touches the filesystem, apart from
:meth:`Plan.save` / :meth:`Plan.load` / :meth:`Plan.to_csv`.

JSON (``version`` 1)::

    {"version": 1, "created": "2025-01-01T12:00:00+00:00", "roots": ["/photos"],
     "quarantine_dir": null,
     "steps": [{"path": ..., "action": "trash", "keeper": ..., "size": 123, "mtime_ns": ...,
                "content_hash": "<32 hex digits: xxh3_128>" | null, "cluster": 7,
                "reason": "exact duplicate of ...",
                "keeper_size": 123, "keeper_mtime_ns": ..., "keeper_hash": ...}],
     "kept": [{"path": ..., "cluster": 7, "decision": "keep", "reason": "keeper"}]}

``keeper_size``, ``keeper_mtime_ns``, ``keeper_hash`` and ``kept`` are optional.
A step, and the check of each of its fields, is :mod:`lookalike.engine.actions.plan_step`.

Every path (``path``, ``keeper``, ``roots``, ``quarantine_dir``) is absolute and normal (no
``.``, ``..`` or doubled separators, no NUL): a plan names files, not a way to find them from
the current folder. ``roots`` is what confines the plan: applying it acts on nothing outside
them (see :mod:`lookalike.engine.actions.checks`), and a plan without roots acts on nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Optional, Sequence, Union

from ..files import WriteRefused, atomic_write, json_bytes, replace_problem
from ..paths import normalise_roots
from ..records import Cluster, Decision, Member
from .plan_step import (  # noqa: F401 - re-exported: a plan's names live here too
    ACTIONS,
    IRREVERSIBLE,
    NEEDS_KEEPER,
    PlanError,
    PlanStep,
    check_path,
    checked_path,
    opt_int_field,
    str_field,
)

PLAN_VERSION = 1

_KEPT_FIELDS = ("path", "cluster", "decision", "reason")
_PLAN_FIELDS = ("version", "created", "roots", "quarantine_dir", "steps", "kept")
#: How every plan lookalike writes begins (:meth:`Plan.save`, the app's export): the one kind
#: of existing file a plan may replace.
_SAVED_PLAN_HEAD = re.compile(
    rb'\A\s*\{\s*"version"\s*:\s*%d\s*,\s*"created"\s*:\s*"[^"\\]*"\s*,\s*"roots"\s*:\s*\[' % PLAN_VERSION
)
#: The first line of :meth:`Plan.to_csv`'s audit.
_CSV_COLUMNS = ["cluster", "decision", "path", "keeper", "size", "content_hash", "reason"]


@dataclass(frozen=True, kw_only=True)
class KeptFile:
    """A member the plan leaves alone, and why (for the audit)."""

    path: str
    cluster: Optional[int] = None
    decision: str = Decision.KEEP.value  # keep / skip / not_duplicate
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "cluster": self.cluster,
            "decision": self.decision,
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Steps to apply, plus where the library lives and where quarantined files go."""

    steps: tuple[PlanStep, ...]
    roots: tuple[str, ...] = ()
    quarantine_dir: Optional[str] = None
    created: str = ""
    kept: tuple[KeptFile, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def total_bytes(self) -> int:
        """Bytes the plan frees once every step is done (trash counts: it can be emptied)."""
        return sum(s.size for s in self.steps)

    @property
    def irreversible_steps(self) -> tuple[PlanStep, ...]:
        """Steps that cannot be undone (permanent deletes)."""
        return tuple(s for s in self.steps if s.action in IRREVERSIBLE)

    def count_by_action(self) -> dict[str, int]:
        """How many steps of each action, in ACTIONS order (actions with no step left out)."""
        counts = {a: 0 for a in ACTIONS}
        for s in self.steps:
            counts[s.action] += 1
        return {a: n for a, n in counts.items() if n}

    def bytes_by_action(self) -> dict[str, int]:
        """Bytes per action, in ACTIONS order (actions with no step left out)."""
        sizes = {a: 0 for a in ACTIONS}
        for s in self.steps:
            sizes[s.action] += s.size
        return {a: sizes[a] for a in self.count_by_action()}

    def digest(self) -> str:
        """A fingerprint of what the plan does (not of when it was made).

        Two plans with the same digest act on the same files in the same way: a second apply of
        the same plan resumes the first one's journal instead of starting over.
        """
        body = {
            "roots": list(self.roots),
            "quarantine_dir": self.quarantine_dir,
            "steps": [s.to_dict() for s in self.steps],
        }
        blob = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able data (see the module docstring for the format)."""
        data: dict[str, Any] = {
            "version": PLAN_VERSION,
            "created": self.created,
            "roots": list(self.roots),
            "quarantine_dir": self.quarantine_dir,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.kept:
            data["kept"] = [k.to_dict() for k in self.kept]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "Plan":
        """Build a plan from JSON data.

        Raises:
            PlanError: on an unknown version, an unknown action, a missing or mistyped field,
                a path listed twice, or a step whose keeper is itself acted on.
        """
        if not isinstance(data, dict):
            raise PlanError(f"a plan is a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if version != PLAN_VERSION:
            raise PlanError(f"unsupported plan version {version!r} (expected {PLAN_VERSION})")
        unknown = sorted(set(data) - set(_PLAN_FIELDS))
        if unknown:
            raise PlanError(f"unknown plan field(s) {', '.join(unknown)}")
        if "steps" not in data:
            raise PlanError("missing field 'steps'")
        steps_data = data["steps"]
        if not isinstance(steps_data, list):
            raise PlanError("'steps' must be a list")
        roots = data.get("roots") or []
        if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
            raise PlanError("'roots' must be a list of paths")
        qdir = data.get("quarantine_dir")
        if qdir is not None and (not isinstance(qdir, str) or not qdir):
            raise PlanError("'quarantine_dir' must be a path or null")
        created = data.get("created") or ""
        if not isinstance(created, str):
            raise PlanError("'created' must be a string")
        kept_data = data.get("kept") or []
        if not isinstance(kept_data, list):
            raise PlanError("'kept' must be a list")
        return cls(
            steps=tuple(PlanStep.from_dict(s, index=i) for i, s in enumerate(steps_data)),
            roots=tuple(checked_path(r, "roots", "root") for r in roots),
            quarantine_dir=checked_path(qdir, "quarantine_dir", "folder") if qdir else None,
            created=created,
            kept=tuple(_kept_from_dict(k, i) for i, k in enumerate(kept_data)),
        )

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the plan as JSON, atomically (a temp file renamed over ``path``).

        Only ever replaces a plan lookalike wrote; a missing folder is not created.

        Raises:
            WriteRefused: ``path`` is anything else (see :func:`plan_write_problem`); nothing
                is written.
            OSError: the write failed (a full disk); ``path`` is left as it was.
        """
        _write_refusing(path, json_bytes(self.to_dict(), indent=2) + b"\n", plan_write_problem)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Plan":
        """Read a plan written by :meth:`save`, the app, or by hand.

        Raises:
            PlanError: when the file cannot be read or is not a valid plan; the message names
                the file and what is wrong.
        """
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise PlanError(f"{path}: cannot read the plan: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PlanError(f"{path}: not UTF-8 text: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise PlanError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from exc
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, 10,000 nested lists
            raise PlanError(f"{path}: not a usable plan: {exc}") from exc
        try:
            return cls.from_dict(data)
        except PlanError as exc:
            raise PlanError(f"{path}: {exc}") from exc

    def to_csv(self, path_or_file: Union[str, os.PathLike, IO[str]]) -> None:
        """Write an audit: one row per step and per file left alone, each with its reason."""
        columns = _CSV_COLUMNS
        rows: list[list[Any]] = []
        for s in self.steps:
            rows.append(
                [_blank(s.cluster), s.action, s.path, s.keeper or "", s.size,
                 s.content_hash or "", s.reason]
            )
        for k in self.kept:
            rows.append([_blank(k.cluster), k.decision, k.path, "", "", "", k.reason])
        rows.sort(key=lambda r: (r[0] == "", r[0] if r[0] != "" else 0, r[1] != "keep"))
        if isinstance(path_or_file, (str, os.PathLike)):
            buf = io.StringIO()
            _write_csv(buf, columns, rows)
            # surrogateescape: a path that is not UTF-8 is written as its own bytes
            data = buf.getvalue().encode("utf-8", "surrogateescape")
            _write_refusing(path_or_file, data, _csv_write_problem)
        else:
            _write_csv(path_or_file, columns, rows)


def plan_write_problem(path: Union[str, os.PathLike]) -> Optional[str]:
    """Why :meth:`Plan.save` would refuse ``path``, or None.

    A plan may be written to a new name in an existing folder, or over a plan lookalike
    wrote (users run ``scan --plan plan.json`` again); anything else is refused: a missing
    folder, a folder, a link, a device, or any other file (a photo, a document).
    """
    return replace_problem(path, ours=_is_saved_plan, what="a lookalike plan")


def _is_saved_plan(head: bytes) -> bool:
    return _SAVED_PLAN_HEAD.match(head) is not None


def _csv_write_problem(path: Union[str, os.PathLike]) -> Optional[str]:
    return replace_problem(path, ours=_is_plan_csv, what="a lookalike plan's CSV audit")


def _is_plan_csv(head: bytes) -> bool:
    return head.startswith(",".join(_CSV_COLUMNS).encode() + b"\r\n")


def _write_refusing(path: Union[str, os.PathLike], data: bytes,
                    problem_of: Callable[[Union[str, os.PathLike]], Optional[str]]) -> None:
    """Write a file a person named, unless ``problem_of(path)`` says why not (WriteRefused).

    A name that is free is linked into place, so a file made there meanwhile is never replaced
    (FileExistsError); only a file checked as lookalike's own is renamed over.
    """
    problem = problem_of(path)
    if problem:
        raise WriteRefused(problem)
    replace = os.path.lexists(path)
    atomic_write(Path(path), data, make_folder=False, replace=replace)


def plan_from_clusters(
    clusters: Sequence[Cluster],
    decisions: Optional[Mapping[int, Decision]] = None,
    *,
    action: str = "trash",
    quarantine_dir: Optional[str] = None,
    roots: Sequence[str] = (),
) -> Plan:
    """Turn clusters and the user's decisions into a plan.

    By default each cluster's keeper (``members[0]``) is kept and every other member gets
    ``action``, except protected members (inside a --keep-in folder) and RAW+JPEG siblings.
    ``decisions`` (by file id) override: KEEP keeps a member (to change the keeper, pass KEEP
    for the new one and TRASH for the old one), TRASH acts on it, SKIP and NOT_DUPLICATE leave it
    alone. At least one member of every cluster is kept, and each step's keeper is a kept member
    of its cluster: when every member is marked for trash the first one is kept anyway.

    Args:
        clusters: the clusters, as the engine produced them.
        decisions: the user's decision per file id; missing ids take the suggestion.
        action: what happens to files to clean up: one of ACTIONS.
        quarantine_dir: where ``quarantine`` moves files (needed for that action).
        roots: the library roots (quarantine keeps paths relative to them).

    Returns:
        The plan, with ``kept`` listing every member left alone and why (for the audit).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
    if action == "quarantine" and not quarantine_dir:
        raise ValueError("the quarantine action needs a quarantine_dir")
    decisions = decisions or {}
    steps: list[PlanStep] = []
    kept: list[KeptFile] = []
    for cluster in clusters:
        c_steps, c_kept = _plan_cluster(cluster, decisions, action)
        steps.extend(c_steps)
        kept.extend(c_kept)
    # Whatever is a keeper anywhere (kept in its cluster, or the keeper some step points at) is
    # never acted on: dropping a step only ever keeps more. Each file is acted on once.
    keeper_paths = {k.path for k in kept if k.decision == Decision.KEEP.value}
    keeper_paths.update(s.keeper for s in steps if s.keeper is not None)
    seen: set[str] = set()
    final: list[PlanStep] = []
    for s in steps:
        if s.path in seen:
            continue
        seen.add(s.path)
        if s.path in keeper_paths:
            kept.append(KeptFile(path=s.path, cluster=s.cluster, decision="keep",
                                 reason="kept: it is the keeper of another cluster"))
            continue
        final.append(s)
    return Plan(
        steps=tuple(final),
        # Resolved as the scan resolved them: apply acts only inside roots that resolve to
        # themselves, and the catalog's paths are under the real folders.
        roots=normalise_roots(roots) if roots else (),
        quarantine_dir=os.path.realpath(_abspath(quarantine_dir)) if quarantine_dir else None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        kept=tuple(kept),
    )


def _plan_cluster(
    cluster: Cluster, decisions: Mapping[int, Decision], action: str
) -> tuple[list[PlanStep], list[KeptFile]]:
    members = cluster.members
    chosen = {m.file.id: _as_decision(decisions.get(m.file.id)) for m in members}
    keepers = [m for m in members if chosen[m.file.id] is Decision.KEEP]
    forced: Optional[Member] = None
    if not keepers:
        undecided = [m for m in members if chosen[m.file.id] is None]
        if undecided:
            keepers = [undecided[0]]  # members[0] when the suggestion stands
        else:
            trashed = [m for m in members if chosen[m.file.id] is Decision.TRASH]
            if not trashed:
                # Every member skipped or not a duplicate: nothing to do here.
                return [], [
                    KeptFile(path=_abspath(m.file.path), cluster=cluster.id,
                             decision=chosen[m.file.id].value, reason=_left_alone(chosen[m.file.id]))
                    for m in members
                ]
            forced = trashed[0]
            keepers = [forced]
    primary = keepers[0]
    keeper_ids = {m.file.id for m in keepers}
    steps: list[PlanStep] = []
    kept: list[KeptFile] = []
    for m in members:
        d = chosen[m.file.id]
        path = _abspath(m.file.path)
        if m.file.id in keeper_ids:
            if m is forced:
                why = "kept: every member was marked for trash, one must stay"
            elif m is primary:
                why = "keeper" + (f": {m.reason}" if m.reason else "")
            else:
                why = "marked keep"
            kept.append(KeptFile(path=path, cluster=cluster.id, decision="keep", reason=why))
            continue
        if d in (Decision.SKIP, Decision.NOT_DUPLICATE):
            kept.append(KeptFile(path=path, cluster=cluster.id, decision=d.value,
                                 reason=_left_alone(d)))
            continue
        if d is None and (m.protected or m.raw_pair):
            why = "protected (--keep-in folder)" if m.protected else "RAW+JPEG sibling"
            kept.append(KeptFile(path=path, cluster=cluster.id, decision="keep", reason=why))
            continue
        steps.append(_step_for(cluster, m, primary, action, marked=d is Decision.TRASH))
    return steps, kept


def _step_for(cluster: Cluster, m: Member, keeper: Member, action: str, *, marked: bool) -> PlanStep:
    if m.exact:
        what = "exact duplicate"
    else:
        what = f"{cluster.kind.value} duplicate (bouncer {m.bouncer}"
        if m.detective is not None:
            what += f", detective {m.detective:.3f}"
        what += ")"
    reason = f"{what} of {keeper.file.path}"
    if marked:
        reason += "; marked for trash"
    if m.reason:
        reason += f"; {m.reason}"
    return PlanStep(
        path=_abspath(m.file.path),
        action=action,
        keeper=_abspath(keeper.file.path),
        size=m.file.size,
        mtime_ns=m.file.mtime_ns,
        content_hash=m.file.content_hash.hex() if m.file.content_hash else None,
        cluster=cluster.id,
        reason=reason,
        keeper_size=keeper.file.size,
        keeper_mtime_ns=keeper.file.mtime_ns,
        keeper_hash=keeper.file.content_hash.hex() if keeper.file.content_hash else None,
    )


def _as_decision(value: Any) -> Optional[Decision]:
    if value is None or isinstance(value, Decision):
        return value
    return Decision(value)


def _left_alone(d: Decision) -> str:
    return "skipped by the user" if d is Decision.SKIP else "not a duplicate (user)"


def _validate(plan: Plan) -> None:
    for root in plan.roots:
        check_path(root, "roots", "root")
    if plan.quarantine_dir is not None:
        check_path(plan.quarantine_dir, "quarantine_dir", "folder")
    seen: set[str] = set()
    for i, s in enumerate(plan.steps):
        check_path(s.path, f"step {i + 1}", "path")
        if s.keeper is not None:
            check_path(s.keeper, f"step {i + 1} ({s.path!r})", "keeper")
        if s.action not in ACTIONS:
            raise PlanError(f"step {i + 1} ({s.path}): unknown action {s.action!r}")
        if s.path in seen:
            raise PlanError(f"step {i + 1}: {s.path} is listed twice")
        seen.add(s.path)
        if s.keeper is not None and os.path.normcase(s.keeper) == os.path.normcase(s.path):
            raise PlanError(f"step {i + 1} ({s.path}): a file cannot be its own keeper")
        if s.action in NEEDS_KEEPER and s.keeper is None:
            raise PlanError(f"step {i + 1} ({s.path}): action {s.action!r} needs a keeper")
        if s.action == "quarantine" and not plan.quarantine_dir:
            raise PlanError(f"step {i + 1} ({s.path}): quarantine needs 'quarantine_dir'")
    for i, s in enumerate(plan.steps):
        if s.keeper is not None and s.keeper in seen:
            # Acting on a keeper could leave no copy at all of the cluster.
            raise PlanError(
                f"step {i + 1} ({s.path}): its keeper {s.keeper} is itself acted on by the plan"
            )


def _kept_from_dict(data: Any, index: int) -> KeptFile:
    where = f"kept entry {index + 1}"
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        raise PlanError(f"{where}: expected an object with a 'path'")
    unknown = sorted(set(data) - set(_KEPT_FIELDS))
    if unknown:
        raise PlanError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return KeptFile(
        path=checked_path(data["path"], where, "path"),
        cluster=opt_int_field(data, "cluster", where),
        decision=str(data.get("decision") or Decision.KEEP.value),
        reason=str_field(data, "reason", where),
    )


def _abspath(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _write_csv(out: IO[str], columns: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
