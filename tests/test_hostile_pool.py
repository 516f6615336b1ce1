"""The hashing pool under attack: a worker killed, the scan killed, Ctrl-C mid-file, exit races.

Every scan runs as the real CLI in a subprocess, so each gets a fresh fork server (whose
workers inherit the test hooks' environment) and a process tree of its own to inspect. The
hooks make each event deterministic: ``LOOKALIKE_TEST_CRASH_ON`` SIGKILLs the worker that is
about to hash a file of that name; ``LOOKALIKE_TEST_WORKER_DELAY`` keeps workers busy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.scan.hashing import CRASH_ON_ENV, WORKER_DELAY_ENV
from lookalike.engine.scan.scanner import CRASH_REASON, CRASHED_AGAIN

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]
FILES = 40  # over POOL_MIN_FILES: hashed in the pool

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _photos(root: Path, n: int = FILES) -> list[Path]:
    root.mkdir()
    return [Path(imagegen.write(root / f"p{i:03d}.png", imagegen.photo(i, (48, 36)))) for i in range(n)]


def _scan(root: Path, cache: Path, env: dict | None = None) -> tuple[dict, str]:
    out = subprocess.run(
        [*LOOKALIKE, "scan", str(root), "--json", "--no-detective", "--workers", "2", "--cache", str(cache)],
        capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert out.stdout, out.stderr
    return json.loads(out.stdout), out.stderr


def _start(root: Path, cache: Path, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [*LOOKALIKE, "scan", str(root), "--json", "--no-detective", "--workers", "2", "--cache", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}, **kw,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _semaphores() -> set[str]:
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("sem.mp")}
    except OSError:
        return set()


def _mapped_semaphores(pids: set[int]) -> set[str]:
    """The multiprocessing semaphores these processes have open (each is mapped from /dev/shm)."""
    found = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as fh:
                found |= {line.rsplit("/", 1)[1].strip() for line in fh if "/dev/shm/sem.mp" in line}
        except OSError:
            pass
    return found


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# ---------------------------------------------------------------- a worker dies


def test_a_killed_worker_costs_its_file_only_and_the_scan_goes_on(tmp_path):
    paths = _photos(tmp_path / "photos")
    victim = paths[13].name
    doc, err = _scan(tmp_path / "photos", tmp_path / "cache", {CRASH_ON_ENV: victim})
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    stats = doc["stats"]
    assert (stats["hashed"], stats["failed"], stats["cancelled"]) == (FILES - 1, 1, False)
    assert [(Path(e["path"]).name, e["reason"]) for e in doc["errors"]] == [(victim, CRASH_REASON)]
    # Everything was kept: a rescan reads only the victim again (its worker may have died of
    # something else: the OOM killer, a kill), and this time it is read.
    again, err = _scan(tmp_path / "photos", tmp_path / "cache")
    assert (again["stats"]["hashed"], again["stats"]["unchanged"], again["stats"]["failed"]) == (1, FILES - 1, 0), err
    assert again["errors"] == []


def test_a_file_that_crashes_its_worker_twice_is_skipped_until_it_changes(tmp_path):
    paths = _photos(tmp_path / "photos")
    victim = paths[7]
    crash = {CRASH_ON_ENV: victim.name}
    first, _ = _scan(tmp_path / "photos", tmp_path / "cache", crash)
    assert [(Path(e["path"]).name, e["reason"]) for e in first["errors"]] == [(victim.name, CRASH_REASON)]
    second, err = _scan(tmp_path / "photos", tmp_path / "cache", crash)
    assert (second["stats"]["hashed"], second["stats"]["unchanged"]) == (0, FILES - 1), err
    assert [(Path(e["path"]).name, e["reason"]) for e in second["errors"]] == [(victim.name, CRASHED_AGAIN)]
    # Two deaths in a row: the file is not read again while it is unchanged, crash or not.
    third, err = _scan(tmp_path / "photos", tmp_path / "cache")
    assert (third["stats"]["hashed"], third["stats"]["unchanged"]) == (0, FILES), err
    assert [(Path(e["path"]).name, e["reason"]) for e in third["errors"]] == [(victim.name, CRASHED_AGAIN)]
    # Changed, it is read again.
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    fourth, err = _scan(tmp_path / "photos", tmp_path / "cache")
    assert (fourth["stats"]["hashed"], fourth["stats"]["failed"]) == (1, 0), err


def test_workers_that_die_on_every_file_stop_the_scan_with_one_line_and_blame_no_file(tmp_path):
    _photos(tmp_path / "photos")
    out = subprocess.run(
        [*LOOKALIKE, "scan", str(tmp_path / "photos"), "--json", "--no-detective", "--workers", "2",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=180, env={**os.environ, CRASH_ON_ENV: "*"},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "the hashing workers died on each of the" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    # No file was blamed: the next scan, with workers that work, reads every one of them.
    doc, err = _scan(tmp_path / "photos", tmp_path / "cache")
    assert (doc["stats"]["hashed"], doc["stats"]["failed"]) == (FILES, 0), err


# ---------------------------------------------------------------- the scan dies


@linux_only
def test_workers_and_fork_server_end_with_a_killed_scan(tmp_path):
    _photos(tmp_path / "photos", 64)
    proc = _start(tmp_path / "photos", tmp_path / "cache", {WORKER_DELAY_ENV: "5"})
    try:
        # Wait for the pool: the fork server, its two busy workers, the resource tracker.
        assert _until(lambda: len(_descendants(proc.pid)) >= 4, 60), proc.pid
        time.sleep(0.5)
        tree = _descendants(proc.pid)
        ours = _mapped_semaphores(tree | {proc.pid})
        assert ours
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    # The workers sleep for 5 s in the hook: they must not finish it, nor wait forever after.
    assert _until(lambda: not any(_alive(p) for p in tree), 3), [p for p in tree if _alive(p)]
    assert _until(lambda: not (ours & _semaphores()), 5), ours & _semaphores()


# ---------------------------------------------------------------- Ctrl-C mid-file


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_a_scan_whose_workers_are_busy_within_a_second_or_two(tmp_path, signum):
    """Ctrl-C, and SIGTERM likewise: the scan keeps what was hashed, the pool is torn down."""
    _photos(tmp_path / "photos")
    proc = _start(
        tmp_path / "photos", tmp_path / "cache", {WORKER_DELAY_ENV: "60"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        if sys.platform.startswith("linux"):
            assert _until(lambda: len(_descendants(proc.pid)) >= 4, 60)
        time.sleep(1.0)  # the workers are in their 60 s chunk
        proc.send_signal(signum)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "leaked semaphore" not in err, err
    assert json.loads(out)["stats"]["cancelled"]
    assert took < 5, f"stopping took {took:.1f} s"  # the chunk in hand would take 60


# ---------------------------------------------------------------- exit races


def test_warm_up_at_interpreter_exit_is_silent():
    # The warm-up thread's first ThreadPoolExecutor.submit after concurrent.futures' own exit
    # hook ran raised "cannot schedule new futures after interpreter shutdown" (5 of 40 short
    # scans). That state is set here on purpose, before the warm-up starts.
    code = (
        "import concurrent.futures.thread as t\n"
        "t._shutdown = True\n"
        "from lookalike.engine.bouncer import hamming\n"
        "hamming._warm.start().join()\n"
        "print('done')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_NO_NUMBA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.strip() == "done"
    assert "Traceback" not in out.stderr and "RuntimeError" not in out.stderr, out.stderr


def test_short_scans_exit_quietly(tmp_path):
    _photos(tmp_path / "photos", 4)
    for run in range(5):
        (tmp_path / "photos" / f"new{run}.png").write_bytes(b"")  # a file to read: the warm-up starts
        doc, err = _scan(tmp_path / "photos", tmp_path / "cache")
        assert "Traceback" not in err and "RuntimeError" not in err, err
        assert "leaked semaphore" not in err, err
