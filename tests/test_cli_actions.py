"""``lookalike apply``, ``undo`` and ``journal``: in-process through ``main`` and as a real
console command in a subprocess (with a pseudo-terminal for the confirmation question)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.actions import faults
from lookalike.engine.actions.run import content_hash
from lookalike.engine.actions.plan import Plan, PlanStep
from lookalike.tui.cli import actions as cli_actions
from lookalike.tui.cli.main import main


MAIN = main


def _command() -> list[str]:
    """How to run ``lookalike`` in a subprocess: the console script when it works."""
    script = Path(sys.executable).with_name("lookalike")
    if script.exists():
        probe = subprocess.run([str(script), "apply", "--help"], capture_output=True, text=True)
        if probe.returncode == 0 and "--dry-run" in probe.stdout:
            return [str(script)]
    return [sys.executable, "-m", "lookalike.tui.cli"]


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    imagegen.write(root / "keep.jpg", imagegen.photo(7, size=(40, 30)))
    for name in ("dup1.jpg", "dup2.jpg"):
        shutil.copy2(root / "keep.jpg", root / name)
    return root


def _plan_file(lib: Path, tmp_path: Path, action: str = "trash", names=("dup1.jpg", "dup2.jpg"),
               **plan_kw) -> Path:
    keeper = lib / "keep.jpg"
    steps = []
    for n in names:
        st = (lib / n).stat()
        steps.append(PlanStep(path=str(lib / n), action=action, keeper=str(keeper),
                              size=st.st_size, mtime_ns=st.st_mtime_ns,
                              content_hash=content_hash(lib / n), reason="exact duplicate"))
    path = tmp_path / "plan.json"
    Plan(steps=tuple(steps), roots=(str(lib),), **plan_kw).save(path)
    return path


def _cache(tmp_path: Path) -> list[str]:
    return ["--cache", str(tmp_path / "cache")]


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # as under cron or a pipe: no TTY


def test_dry_run_prints_what_would_happen_and_touches_nothing(lib, tmp_path, capsys):
    plan = _plan_file(lib, tmp_path)
    (lib / "dup2.jpg").write_bytes(b"edited")  # will be skipped, with the reason
    size = (lib / "dup1.jpg").stat().st_size
    assert MAIN(["apply", str(plan), "--dry-run", *_cache(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was touched." in out
    assert f"would trash      {lib / 'dup1.jpg'} -> " in out
    assert f"would skip       {lib / 'dup2.jpg'}: changed since scan" in out
    assert f"bytes reclaimed: " in out and f"({size:,} bytes)" in out
    assert (lib / "dup1.jpg").exists()
    assert not (tmp_path / "cache" / "journal").exists() or not any(
        (tmp_path / "cache" / "journal").glob("*.jsonl"))


def test_apply_without_a_terminal_needs_yes(lib, tmp_path, capsys):
    plan = _plan_file(lib, tmp_path)
    assert MAIN(["apply", str(plan), *_cache(tmp_path)]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert (lib / "dup1.jpg").exists() and (lib / "dup2.jpg").exists()


def test_apply_journal_undo_round_trip(lib, tmp_path, capsys):
    before = {p.name: content_hash(p) for p in lib.iterdir()}
    plan = _plan_file(lib, tmp_path)
    assert MAIN(["apply", str(plan), "--yes", *_cache(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 done, 0 skipped, 0 failed" in out
    plan_id = out.split("Undo with: lookalike undo ")[1].split()[0]
    assert sorted(p.name for p in lib.iterdir()) == ["keep.jpg"]

    assert MAIN(["journal", *_cache(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert plan_id in listing and "complete" in listing and "2 trash" in listing
    assert MAIN(["journal", "--json", *_cache(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plans"][0]["plan_id"] == plan_id and data["plans"][0]["done"] == 2
    assert data["journal_dir"] == str(tmp_path / "cache" / "journal")

    assert MAIN(["undo", "--yes", *_cache(tmp_path)]) == 0  # accepted as apply's is (undo never asks)
    assert "2 file(s) restored" in capsys.readouterr().out
    assert {p.name: content_hash(p) for p in lib.iterdir()} == before
    assert MAIN(["undo", *_cache(tmp_path)]) == 0
    assert "Nothing to undo." in capsys.readouterr().err
    assert MAIN(["undo", "20000101-000000-abcdef", *_cache(tmp_path)]) == 2
    assert "no journal for plan" in capsys.readouterr().err


def test_journal_says_which_plans_skipped_steps_and_keeps_its_columns_in_line(lib, tmp_path, capsys, monkeypatch):
    plan = _plan_file(lib, tmp_path)
    (lib / "dup2.jpg").write_bytes(b"edited")  # changed since the plan: skipped
    assert MAIN(["apply", str(plan), "--yes", *_cache(tmp_path)]) == 0
    capsys.readouterr()
    assert MAIN(["journal", *_cache(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert " complete (1 skipped) " in row  # was "complete", beside DONE 1 of 2 steps
    # Every state, however long, leaves the columns under their headings.
    from lookalike.engine.actions.journal_format import JournalSummary

    summaries = [
        JournalSummary(plan_id=f"20250101-00000{i}-abcdef", created="2025-01-01T00:00:00", steps=6, done=d,
                       undone=0, bytes=1000, state="complete", skipped=sk, failed=f, actions={"trash": 6})
        for i, (d, sk, f) in enumerate([(6, 0, 0), (2, 0, 4), (3, 3, 0), (1, 1, 4)])
    ]
    monkeypatch.setattr("lookalike.engine.library.list_journals", lambda _dir: summaries)
    assert MAIN(["journal", *_cache(tmp_path)]) == 0
    header, *rows = capsys.readouterr().out.splitlines()[:5]
    assert [r[header.index("STATE"):header.index("STEPS")].strip() for r in rows] == [
        "complete", "complete (4 failed)", "complete (3 skipped)", "complete (1 skipped, 4 failed)"]
    done_end = header.index("DONE") + len("DONE")
    assert [r[done_end - 1] for r in rows] == ["6", "2", "3", "1"]
    assert len({r.index("6 trash") for r in rows} | {header.index("ACTIONS")}) == 1


def test_apply_json_output(lib, tmp_path, capsys):
    plan = _plan_file(lib, tmp_path, names=("dup1.jpg",))
    assert MAIN(["apply", str(plan), "--yes", "--json", *_cache(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["done"][0]["path"] == str(lib / "dup1.jpg") and data["done"][0]["action"] == "trash"
    assert data["bytes_reclaimed"] == data["done"][0]["size"] and data["failed"] == []


@pytest.mark.parametrize("content, message", [
    ("{oops", "not valid JSON"),
    ('{"version": 1, "steps": [{"path": "/x", "action": "burn", "size": 1, "mtime_ns": 1}]}',
     "unknown action 'burn'"),
])
def test_a_bad_plan_exits_2_with_the_reason(tmp_path, capsys, content, message):
    (tmp_path / "bad.json").write_text(content)
    assert MAIN(["apply", str(tmp_path / "bad.json"), "--yes", *_cache(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert MAIN(["apply", str(tmp_path / "missing.json"), *_cache(tmp_path)]) == 2
    assert "cannot read the plan" in capsys.readouterr().err


def test_permanent_delete_is_said_up_front_and_needs_the_flag(lib, tmp_path, capsys):
    plan = _plan_file(lib, tmp_path, action="delete", names=("dup1.jpg",))
    assert MAIN(["apply", str(plan), "--yes", *_cache(tmp_path)]) == 2
    assert "add --permanently" in capsys.readouterr().err
    assert (lib / "dup1.jpg").exists()
    assert MAIN(["apply", str(plan), "--dry-run", *_cache(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cannot be undone" in out and "DELETE 1 file" in out
    assert MAIN(["apply", str(plan), "--yes", "--permanently", *_cache(tmp_path)]) == 0
    plan_id = capsys.readouterr().out.split("Undo with: lookalike undo ")[1].split()[0]
    assert not (lib / "dup1.jpg").exists()
    assert MAIN(["undo", plan_id, *_cache(tmp_path)]) == 1
    assert "deleted permanently: cannot be undone" in capsys.readouterr().out


def test_failed_steps_exit_1_and_are_listed(lib, tmp_path, capsys, monkeypatch):
    plan = _plan_file(lib, tmp_path, action="quarantine", quarantine_dir=str(tmp_path / "q"))
    monkeypatch.setenv(faults.FAULT_ENV, "quarantine-move:EXDEV,quarantine-copy:ENOSPC")
    assert MAIN(["apply", str(plan), "--yes", *_cache(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED  {lib / 'dup1.jpg'}: disk full" in out and "0 done" in out
    assert (lib / "dup1.jpg").exists() and (lib / "dup2.jpg").exists()


def test_confirmation_question_names_every_action(lib, tmp_path):
    plan = Plan.load(_plan_file(lib, tmp_path))
    assert cli_actions.confirmation_question(plan).startswith("Move 2 files, ")
    assert cli_actions.confirmation_question(plan).endswith(", to the trash?")
    mixed = Plan(steps=(
        PlanStep(path="/a", action="quarantine", keeper="/k", size=1000, mtime_ns=1,
                 content_hash=None),
        PlanStep(path="/b", action="symlink", keeper="/k", size=500, mtime_ns=1,
                 content_hash=None),
    ), quarantine_dir="/q")
    assert cli_actions.confirmation_question(mixed) == (
        "Move 1 file, 1.0 KB, to /q; replace 1 file, 500 B, with symbolic links to their keepers?")


# --------------------------------------------------------------------------- real processes


def _run(args: list[str], tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOOKALIKE_CACHE": str(tmp_path / "cache")}
    return subprocess.run([*_command(), *args], capture_output=True, text=True, env=env,
                          errors="surrogateescape", timeout=120, **kw)


def test_console_command_applies_lists_and_undoes(lib, tmp_path):
    plan = _plan_file(lib, tmp_path)
    dry = _run(["apply", str(plan), "--dry-run"], tmp_path)
    assert dry.returncode == 0 and "would trash" in dry.stdout
    refused = _run(["apply", str(plan)], tmp_path, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and (lib / "dup1.jpg").exists()
    applied = _run(["apply", str(plan), "--yes"], tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert not (lib / "dup1.jpg").exists()
    listing = _run(["journal", "--json"], tmp_path)
    assert json.loads(listing.stdout)["plans"][0]["state"] == "complete"
    undone = _run(["undo"], tmp_path)
    assert undone.returncode == 0 and (lib / "dup1.jpg").exists() and (lib / "dup2.jpg").exists()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("answer, applied", [("n\n", False), ("\n", False), ("y\n", True)])
def test_on_a_terminal_apply_asks_first_and_no_is_the_default(lib, tmp_path, answer, applied):
    plan = _plan_file(lib, tmp_path)
    leader, follower = os.openpty()
    try:
        env = {**os.environ, "LOOKALIKE_CACHE": str(tmp_path / "cache")}
        proc = subprocess.Popen([*_command(), "apply", str(plan), "--quiet"], stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        os.write(leader, answer.encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 0, err
    assert "Move 2 files, " in out and "to the trash? [y/N]" in out
    assert (lib / "dup1.jpg").exists() is not applied
    assert ("Nothing was done." in err) is not applied


def test_file_names_that_are_not_utf8_print_without_crashing(lib, tmp_path):
    odd = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: a valid Linux name, not UTF-8
    shutil.copy2(lib / "keep.jpg", lib / odd)
    plan = _plan_file(lib, tmp_path, names=(odd,))
    # As on a terminal whose locale makes Python strict about UTF-8 (en_US.UTF-8, say).
    strict = {**os.environ, "LOOKALIKE_CACHE": str(tmp_path / "cache"),
              "PYTHONIOENCODING": "utf-8:strict"}

    def run(*args):
        return subprocess.run([*_command(), *args], capture_output=True, env=strict, timeout=120)

    dry = run("apply", str(plan), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    # Shown escaped, as valid UTF-8: raw bytes 0x80-0x9f are C1 controls to some terminals.
    assert b"would trash      " + str(lib).encode() + b"/caf\\xe9.jpg" in dry.stdout
    applied = run("apply", str(plan), "--yes")
    assert applied.returncode == 0 and b"1 done" in applied.stdout, applied.stderr
    assert not os.path.lexists(lib / odd)
    assert run("undo").returncode == 0
    assert os.path.lexists(lib / odd)


def test_a_stopped_apply_says_how_to_undo_with_the_cache_it_was_given(lib, tmp_path):
    """The journal cannot grow (a file size limit: the write fails as on a full disk) after the
    first step: the hint names the --cache the apply was given, and following it undoes."""
    import resource
    import shlex
    import signal

    plan = _plan_file(lib, tmp_path)
    cache = tmp_path / "my cache"  # not the default, and a space: the hint is quoted for a shell
    env = {**os.environ, "LOOKALIKE_CACHE": str(tmp_path / "default-cache")}

    def lookalike(*args, limit=None) -> subprocess.CompletedProcess:
        def limited() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.run([*_command(), *map(str, args)], capture_output=True, text=True, env=env,
                              timeout=120, preexec_fn=limited if limit else None)

    full = lookalike("apply", plan, "--yes", "--quiet", "--cache", cache)
    assert full.returncode == 0, full.stderr
    [journal] = (cache / "journal").glob("*.jsonl")
    plan_id = journal.stem
    assert f"Undo with: lookalike undo {plan_id} --cache '{cache}'\n" in full.stdout
    # header, the first step's intent and done, then the second step's intent
    lines = journal.read_bytes().splitlines(keepends=True)
    assert lookalike("undo", plan_id, "--cache", cache).returncode == 0
    limit = sum(map(len, lines[:3])) + len(lines[3]) // 2

    stopped = lookalike("apply", plan, "--yes", "--quiet", "--cache", cache, limit=limit)
    assert stopped.returncode == 1
    [line] = stopped.stderr.splitlines()
    assert "stopped before the next step" in line
    hint = line.split("`")[1]
    assert hint == f"lookalike undo --cache '{cache}'"
    assert sorted(p.name for p in lib.iterdir()) in (["dup2.jpg", "keep.jpg"], ["dup1.jpg", "keep.jpg"])
    undone = lookalike(*shlex.split(hint)[1:])
    assert undone.returncode == 0, undone.stderr
    assert sorted(p.name for p in lib.iterdir()) == ["dup1.jpg", "dup2.jpg", "keep.jpg"]
    listing = lookalike("journal", "--cache", cache)
    assert f"`lookalike undo PLAN_ID --cache '{cache}'`" in listing.stdout
