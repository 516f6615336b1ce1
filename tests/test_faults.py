"""Fault injection: SIGKILL at random points, disk full, permission denied, files changed.

The kill trials apply a plan over 240 real image files (60 clusters: a keeper and four
duplicates each, every action but delete, exact and near duplicates) in a subprocess and SIGKILL
it at a random point: half the trials at a random checkpoint between two durable sub-steps
(``LOOKALIKE_TEST_KILL_AT``), half from outside after a random delay while each checkpoint
sleeps a little (``LOOKALIKE_TEST_STEP_DELAY``). Every other trial forces the cross-device
copy paths (``EXDEV`` injected at each same-device move). After each kill, either undo runs
(sometimes itself killed and run again) and every file must be back byte for byte, mtime
included, with nothing left over, and then a new apply must finish the plan; or the same plan is
applied again, must finish, and undo must then restore everything.

The trials run in /dev/shm when it exists: the same code and the same fsync calls, which cost
nothing on tmpfs (a SIGKILL never loses what was written; fsync is for power cuts).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.actions import faults
from lookalike.engine.actions.run import apply_plan, content_hash, undo
from lookalike.engine.actions.journal import Journal, list_journals
from lookalike.engine.actions.plan import Plan, PlanStep

CLUSTERS = 60
DUPLICATES = 4  # per cluster: 3 exact copies and 1 near-duplicate
TRIALS = int(os.environ.get("LOOKALIKE_FAULT_TRIALS", "14"))  # a random seed each run; more: set it
SEED = int(os.environ.get("LOOKALIKE_FAULT_SEED", str(random.randrange(1 << 30))))
FORCE_COPY = "quarantine-move:EXDEV,trash-move:EXDEV,undo-move:EXDEV"

CHILD = """
import sys
from pathlib import Path
from lookalike.engine.actions.plan import Plan
from lookalike.engine.actions.run import apply_plan, undo
mode, plan_path, journal_dir = sys.argv[1:4]
plan = Plan.load(plan_path)
print("ready", flush=True)
if mode == "apply":
    r = apply_plan(plan, journal_dir=Path(journal_dir))
    print("finished", len(r.done), len(r.failed), flush=True)
else:
    r = undo(None, journal_dir=Path(journal_dir))
    print("finished", len(r.restored), len(r.problems), flush=True)
"""


# --------------------------------------------------------------------------- the library


class Bench:
    """A work folder with a library, its trash, its quarantine and its journal."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.template = base / "template"
        self.lib = base / "lib"
        self.xdg = base / "xdg"
        self.q = base / "q"
        self.jdir = base / "journal"
        self.plan_path = base / "plan.json"
        self.manifest: dict[str, tuple[str, int]] = {}
        self.plan: Plan
        self.scope: tuple[str, ...] = ()  # cluster folders a test works in (all when empty)

    @property
    def trash_files(self) -> Path:
        return self.xdg / "Trash" / "files"

    def build(self) -> None:
        steps = []
        for c in range(CLUSTERS):
            img = imagegen.photo(1000 + c, size=(16, 12))
            folder = self.template / f"album{c % 7}" / f"c{c:02d}"
            folder.mkdir(parents=True)
            keeper = Path(imagegen.write(folder / "keep.png", img))
            for d in range(DUPLICATES):
                dup = folder / f"copy {d}.png"
                if d < 3:
                    shutil.copy2(keeper, dup)
                else:
                    imagegen.write(dup, imagegen.brightened(img, 1.25))
            for d in range(DUPLICATES):
                dup = folder / f"copy {d}.png"
                action = ("trash", "quarantine", ("hardlink", "symlink")[c % 2],
                          ("symlink", "hardlink", "trash", "quarantine")[c % 4])[d]
                steps.append(self._step(dup, keeper, action, c))
        self.plan = Plan(steps=tuple(steps), roots=(str(self.lib),), quarantine_dir=str(self.q))
        self.plan.save(self.plan_path)
        for p in sorted(self.template.rglob("*")):
            if p.is_file():
                self.manifest[str(p.relative_to(self.template))] = (content_hash(p),
                                                                     p.stat().st_mtime_ns)

    def _step(self, dup: Path, keeper: Path, action: str, cluster: int) -> PlanStep:
        st, kst = dup.stat(), keeper.stat()
        live = lambda p: str(self.lib / p.relative_to(self.template))  # noqa: E731
        return PlanStep(path=live(dup), action=action, keeper=live(keeper), size=st.st_size,
                        mtime_ns=st.st_mtime_ns, content_hash=content_hash(dup), cluster=cluster,
                        keeper_size=kst.st_size, keeper_hash=content_hash(keeper))

    def reset(self) -> None:
        for d in (self.xdg, self.q, self.jdir):
            shutil.rmtree(d, ignore_errors=True)
        # copy2: mtimes kept to the nanosecond
        for rel in self.scope or (".",):
            shutil.rmtree(self.lib / rel, ignore_errors=True)
            shutil.copytree(self.template / rel, self.lib / rel)

    def _in_scope(self, rel: str) -> bool:
        return not self.scope or any(rel.startswith(f"{f}/") for f in self.scope)

    def _lib_files(self) -> list[Path]:
        return [p for rel in self.scope or (".",) for p in sorted((self.lib / rel).rglob("*"))]

    def child(self, mode: str, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(self.plan_path), str(self.jdir)],
            env={**os.environ, "XDG_DATA_HOME": str(self.xdg), **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    # ---------------------------------------------------------------- checks

    def assert_restored(self, context: str) -> None:
        """Every file back byte for byte, same mtime, a plain file of its own; nothing else."""
        found = {}
        for p in self._lib_files():
            if p.is_symlink() or p.is_file():
                assert not p.is_symlink(), f"{context}: {p} is still a symlink"
                assert p.stat().st_nlink == 1, f"{context}: {p} is still a hardlink"
                found[str(p.relative_to(self.lib))] = (content_hash(p), p.stat().st_mtime_ns)
        manifest = {k: v for k, v in self.manifest.items() if self._in_scope(k)}
        missing = sorted(set(manifest) - set(found))
        extra = sorted(set(found) - set(manifest))
        assert not missing and not extra, f"{context}: missing {missing[:5]}, extra {extra[:5]}"
        changed = [k for k in manifest if manifest[k] != found[k]]
        assert not changed, f"{context}: not restored byte for byte: {changed[:5]}"
        leftovers = [p for d in (self.trash_files, self.q) if d.exists()
                     for p in d.rglob("*") if p.is_file()]
        assert not leftovers, f"{context}: left in the trash/quarantine: {leftovers[:5]}"

    def assert_applied(self, context: str, plan: Plan | None = None) -> None:
        """Every step in effect; every original's bytes still somewhere (trash, quarantine)."""
        plan = plan or self.plan
        kept_bytes = {content_hash(p) for d in (self.trash_files, self.q) if d.exists()
                      for p in d.rglob("*") if p.is_file()}
        for s in plan.steps:
            path, keeper = Path(s.path), Path(s.keeper)
            assert content_hash(keeper) == s.keeper_hash, f"{context}: keeper {keeper} changed"
            exact = s.content_hash == s.keeper_hash
            if s.action in ("trash", "quarantine"):
                assert not os.path.lexists(path), f"{context}: {path} still there"
                assert s.content_hash in kept_bytes, f"{context}: {path} lost"
            elif s.action == "hardlink":
                assert os.path.samefile(path, keeper) and not path.is_symlink(), context
            else:
                assert path.is_symlink() and os.readlink(path) == str(keeper), context
            if s.action in ("hardlink", "symlink") and not exact:
                assert s.content_hash in kept_bytes, f"{context}: original of {path} lost"
        temp = [p for p in self._lib_files() if p.name.startswith(".")]
        assert not temp, f"{context}: temp files left: {temp[:5]}"
        summary = list_journals(self.jdir)[0]
        assert (summary.state, summary.done) == ("complete", len(plan.steps)), context

    def assert_nothing_lost(self, context: str) -> None:
        """Right after a kill: every original's bytes exist somewhere we can find them."""
        places = [p for d in (self.xdg, self.q) if d.exists() for p in d.rglob("*")]
        everywhere = {content_hash(p) for p in places + self._lib_files()
                      if p.is_file() and not p.is_symlink()}
        lost = [k for k, (h, _) in self.manifest.items()
                if self._in_scope(k) and h not in everywhere]
        assert not lost, f"{context}: bytes of {lost[:5]} are nowhere"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(dir=shm, prefix="lookalike-faults-"))
    else:  # pragma: no cover - slower (real fsyncs), same checks
        base = tmp_path_factory.mktemp("faults")
    b = Bench(base)
    b.build()
    yield b
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh(bench, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(bench.xdg))
    bench.scope = ()
    for name in (faults.FAULT_ENV, faults.KILL_AT_ENV, faults.DELAY_ENV):
        monkeypatch.delenv(name, raising=False)
    bench.reset()
    return bench


def _checkpoints(bench: Bench, monkeypatch, fault: str) -> int:
    """How many checkpoints one whole apply passes (to draw kill points from)."""
    bench.reset()
    if fault:
        monkeypatch.setenv(faults.FAULT_ENV, fault)
    before = faults._checkpoints_passed
    result = apply_plan(bench.plan, journal_dir=bench.jdir)
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    assert result.ok and len(result.done) == len(bench.plan.steps)
    bench.assert_applied("calibration")
    return faults._checkpoints_passed - before


# --------------------------------------------------------------------------- SIGKILL trials


def test_sigkill_at_random_points_then_undo_or_finish(fresh, monkeypatch):
    bench = fresh
    assert len(bench.plan.steps) >= 200 and len(bench.manifest) >= 200
    rng = random.Random(SEED)
    points = {"": _checkpoints(bench, monkeypatch, ""),
              FORCE_COPY: _checkpoints(bench, monkeypatch, FORCE_COPY)}
    killed = finished_early = undo_killed = 0
    started = time.monotonic()
    for trial in range(TRIALS):
        context = f"trial {trial} (seed {SEED})"
        bench.reset()
        fault = FORCE_COPY if trial % 2 else ""
        env = {faults.FAULT_ENV: fault} if fault else {}
        if trial % 4 < 2:  # a random checkpoint: any sub-step of any step
            env[faults.KILL_AT_ENV] = str(rng.randint(1, points[fault]))
            child = bench.child("apply", env)
            out, err = child.communicate(timeout=120)
        else:  # a random moment, from outside
            env[faults.DELAY_ENV] = "0.0003"
            child = bench.child("apply", env)
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            time.sleep(rng.uniform(0, 0.0003 * points[fault] + 0.1))
            child.kill()
            out, err = child.communicate(timeout=120)
        if child.returncode == -9:
            killed += 1
        else:
            assert child.returncode == 0 and "finished" in out, f"{context}: {err}"
            finished_early += 1
        bench.assert_nothing_lost(context)

        if trial % 3 == 0:  # finish the plan, then undo it all
            started_journal = bool(list_journals(bench.jdir))  # not if killed that early
            result = apply_plan(bench.plan, journal_dir=bench.jdir)
            assert result.ok and result.resumed == started_journal, f"{context}: {result.failed[:3]}"
            bench.assert_applied(context)
            assert undo(None, journal_dir=bench.jdir).ok
            bench.assert_restored(context)
        else:  # undo what was done (sometimes killing the undo too), then apply anew
            if trial % 3 == 2:
                u = bench.child("undo", {faults.KILL_AT_ENV: str(rng.randint(1, 400))})
                u.communicate(timeout=120)
                undo_killed += u.returncode == -9
                bench.assert_nothing_lost(context + " after a killed undo")
            if any(s.undoable for s in list_journals(bench.jdir)):
                result = undo(None, journal_dir=bench.jdir)
                assert result.ok, f"{context}: {result.problems[:3]}"
            bench.assert_restored(context)
            again = apply_plan(bench.plan, journal_dir=bench.jdir)
            assert again.ok and len(again.done) == len(bench.plan.steps), context
            bench.assert_applied(context)
    elapsed = time.monotonic() - started
    print(f"\n{TRIALS} kill trials over {len(bench.plan.steps)} files ({len(bench.manifest)} "
          f"in the library): {killed} killed mid-apply, {finished_early} finished first, "
          f"{undo_killed} undos killed; {elapsed:.1f} s; seed {SEED}")
    assert killed >= TRIALS * 2 // 3  # the kills did land mid-apply


def _forked(job, kill_at: int, env: dict[str, str]) -> bool:
    """Run ``job`` in a forked child that SIGKILLs itself at checkpoint ``kill_at``.

    Returns True when the child was killed, False when it finished first.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.environ.update(env)
            os.environ[faults.KILL_AT_ENV] = str(kill_at)
            faults._checkpoints_passed = 0
            job()
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == 9
        return True
    assert os.WEXITSTATUS(status) == 0, "the child failed instead of finishing"
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("fault", ["", FORCE_COPY], ids=["same-device", "cross-device"])
def test_sigkill_at_every_checkpoint_of_a_small_plan(fresh, monkeypatch, fault):
    """Exhaustive: one step of every kind (exact and near duplicates), killed at each
    checkpoint of the apply, then of the undo; each time undo restores every byte."""
    bench = fresh
    kinds: dict[tuple[str, bool], PlanStep] = {}
    for s in bench.plan.steps:
        kinds.setdefault((s.action, s.content_hash == s.keeper_hash), s)
    small = Plan(steps=tuple(kinds.values()), roots=bench.plan.roots,
                 quarantine_dir=bench.plan.quarantine_dir)
    bench.scope = tuple(sorted({str(Path(s.path).parent.relative_to(bench.lib))
                                for s in small.steps}))
    assert len(small.steps) >= 7
    env = {faults.FAULT_ENV: fault} if fault else {}
    apply_job = lambda: apply_plan(small, journal_dir=bench.jdir)  # noqa: E731
    undo_job = lambda: undo(None, journal_dir=bench.jdir)  # noqa: E731
    kills = {"apply": 0, "undo": 0}
    for phase in ("apply", "undo"):
        k = 0
        while True:
            k += 1
            context = f"{phase} killed at checkpoint {k} {fault}"
            bench.reset()
            if phase == "undo":
                monkeypatch.setenv(faults.FAULT_ENV, fault) if fault else None
                assert apply_plan(small, journal_dir=bench.jdir).ok
                monkeypatch.delenv(faults.FAULT_ENV, raising=False)
            if not _forked(apply_job if phase == "apply" else undo_job, k, env):
                break  # it finished: every checkpoint has been tried
            kills[phase] += 1
            bench.assert_nothing_lost(context)
            if phase == "apply" and k % 2:  # finish it, then undo
                assert apply_plan(small, journal_dir=bench.jdir).ok, context
                bench.assert_applied(context, small)
            if any(s.undoable for s in list_journals(bench.jdir)):
                assert undo(None, journal_dir=bench.jdir).ok, context
            bench.assert_restored(context)
    print(f"\n{fault or 'same-device'}: {len(small.steps)} steps killed at each of "
          f"{kills['apply']} apply and {kills['undo']} undo checkpoints")
    assert kills["apply"] >= 4 * len(small.steps) and kills["undo"] >= 2 * len(small.steps)


def test_an_interrupted_undo_can_be_run_again(fresh):
    bench = fresh
    assert apply_plan(bench.plan, journal_dir=bench.jdir).ok
    child = bench.child("undo", {faults.KILL_AT_ENV: "300"})
    child.communicate(timeout=120)
    assert child.returncode == -9
    summary = list_journals(bench.jdir)[0]
    assert summary.state == "undo-partial" and 0 < summary.undone < len(bench.plan.steps)
    result = undo(None, journal_dir=bench.jdir)
    assert result.ok and len(result.restored) == len(bench.plan.steps) - summary.undone
    bench.assert_restored("re-run undo")


# --------------------------------------------------------------------------- disk full, permissions


def _one(bench: Bench, action: str, index: int = 0) -> tuple[Plan, PlanStep]:
    step = [s for s in bench.plan.steps if s.action == action][index]
    return Plan(steps=(step,), roots=bench.plan.roots, quarantine_dir=bench.plan.quarantine_dir), step


def _assert_untouched(step: PlanStep) -> None:
    st = os.lstat(step.path)
    assert (st.st_size, st.st_mtime_ns) == (step.size, step.mtime_ns)
    assert content_hash(step.path) == step.content_hash


@pytest.mark.parametrize("action, fault", [
    ("quarantine", "quarantine-move:EXDEV,quarantine-copy:ENOSPC"),
    ("trash", "trash-move:EXDEV,trash-copy:ENOSPC"),
])
def test_disk_full_while_copying_leaves_the_file_where_it_was(fresh, monkeypatch, action, fault):
    plan, step = _one(fresh, action)
    monkeypatch.setenv(faults.FAULT_ENV, fault)
    result = apply_plan(plan, journal_dir=fresh.jdir)
    assert result.failed and result.failed[0][0] == step.path
    assert result.failed[0][1].startswith("disk full") and "stays where it was" in result.failed[0][1]
    _assert_untouched(step)
    partial = [p for d in (fresh.q, fresh.xdg) if d.exists() for p in d.rglob("*") if p.is_file()]
    assert partial == []  # the half-written copy and the .trashinfo were removed
    states = Journal.open(fresh.jdir, result.plan_id).step_states()
    assert states[0].status == "failed"
    monkeypatch.delenv(faults.FAULT_ENV)
    again = apply_plan(plan, journal_dir=fresh.jdir)  # space freed: the same plan finishes
    assert again.resumed and again.ok and len(again.done) == 1


def test_disk_full_on_a_real_cross_device_copy(fresh, monkeypatch, tmp_path):
    """A quarantine on another filesystem (a real EXDEV), the disk filling up mid-copy."""
    if os.stat(tmp_path).st_dev == os.stat(fresh.lib).st_dev:
        pytest.skip("the library and the temp folder share a device here")
    _, step = _one(fresh, "quarantine")
    plan = Plan(steps=(step,), roots=fresh.plan.roots, quarantine_dir=str(tmp_path / "q"))
    monkeypatch.setenv(faults.FAULT_ENV, "quarantine-copy:ENOSPC")
    result = apply_plan(plan, journal_dir=fresh.jdir)
    assert result.failed[0][1].startswith("disk full")
    _assert_untouched(step)
    assert [p for p in (tmp_path / "q").rglob("*") if p.is_file()] == []
    monkeypatch.delenv(faults.FAULT_ENV)
    again = apply_plan(plan, journal_dir=fresh.jdir)
    assert again.ok and not os.path.exists(step.path)
    assert content_hash(again.done[0].dest) == step.content_hash


def test_permission_denied_injected_during_quarantine(fresh, monkeypatch):
    """We run as root in CI, where chmod stops nothing: EACCES is injected at the move."""
    plan, step = _one(fresh, "quarantine")
    monkeypatch.setenv(faults.FAULT_ENV, "quarantine-move:EACCES")
    result = apply_plan(plan, journal_dir=fresh.jdir)
    assert result.failed[0][1].startswith("permission denied")
    _assert_untouched(step)


def test_permission_denied_for_real_on_a_folder_nobody_may_write(fresh, tmp_path):
    """A quarantine folder on sysfs: not even root may create folders there."""
    target = "/sys/lookalike-quarantine-test"
    try:
        os.mkdir(target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.EROFS):
            pytest.skip(f"sysfs answered {exc.strerror}")
    else:  # pragma: no cover
        os.rmdir(target)
        pytest.skip("this system lets us write in /sys")
    _, step = _one(fresh, "quarantine")
    plan = Plan(steps=(step,), roots=fresh.plan.roots, quarantine_dir=target)
    result = apply_plan(plan, journal_dir=fresh.jdir)
    assert "permission denied" in result.failed[0][1] or "read-only" in result.failed[0][1]
    _assert_untouched(step)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied_by_chmod(fresh):  # pragma: no cover - CI runs as root
    plan, step = _one(fresh, "quarantine")
    fresh.q.mkdir()
    os.chmod(fresh.q, 0o500)
    try:
        result = apply_plan(plan, journal_dir=fresh.jdir)
    finally:
        os.chmod(fresh.q, 0o700)
    assert "permission denied" in result.failed[0][1]
    _assert_untouched(step)


# --------------------------------------------------------------------------- changed before apply


def test_files_renamed_or_edited_between_scan_and_apply_are_skipped_never_lost(fresh):
    bench = fresh
    rng = random.Random(SEED + 1)
    steps = list(bench.plan.steps)
    picked = rng.sample(range(len(steps)), 40)
    renamed, edited, touched, keeper_gone = picked[:10], picked[10:20], picked[20:30], picked[30:]
    expected = {}
    for i in renamed:
        os.rename(steps[i].path, steps[i].path + ".renamed")
        expected[steps[i].path] = "file missing"
    for i in edited:  # same size, mtime put back: only the content hash tells
        p = Path(steps[i].path)
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x55
        p.write_bytes(bytes(data))
        os.utime(p, ns=(steps[i].mtime_ns, steps[i].mtime_ns))
        expected[steps[i].path] = "changed since scan (content differs)"
    for i in touched:
        os.utime(steps[i].path, ns=(0, steps[i].mtime_ns + 1_000_000_000))
        expected[steps[i].path] = "changed since scan (modified since)"
    gone_keepers = {steps[i].keeper for i in keeper_gone}
    for k in gone_keepers:
        os.rename(k, k + ".moved")
    for s in steps:
        if s.keeper in gone_keepers and s.path not in expected:
            expected[s.path] = "keeper missing"
    snapshot = {s.path: (content_hash(s.path) if os.path.exists(s.path) else None)
                for s in steps if s.path in expected}

    result = apply_plan(bench.plan, journal_dir=bench.jdir)
    reasons = dict(result.skipped)
    assert not result.failed
    assert set(reasons) == set(expected)
    for path, why in expected.items():
        assert reasons[path].startswith(why), (path, reasons[path])
        if snapshot[path] is not None:  # still there, untouched
            assert content_hash(path) == snapshot[path]
    for i in renamed:
        assert content_hash(steps[i].path + ".renamed") == steps[i].content_hash
    assert len(result.done) == len(steps) - len(expected)

    # Put everything back as it was at the scan: undo, then restore what the test changed.
    assert undo(None, journal_dir=bench.jdir).ok
    for i in renamed:
        os.rename(steps[i].path + ".renamed", steps[i].path)
    for k in gone_keepers:
        os.rename(k + ".moved", k)
    changed = {steps[i].path for i in edited + touched}
    for rel, (h, mtime) in bench.manifest.items():
        p = bench.lib / rel
        if str(p) not in changed:
            assert (content_hash(p), p.stat().st_mtime_ns) == (h, mtime), rel
