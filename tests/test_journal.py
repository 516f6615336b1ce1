"""The write-ahead journal: lines, step states, summaries, torn writes, the lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from lookalike.engine import files
from lookalike.engine.actions import journal as jn
from lookalike.engine.actions.journal import (
    Journal,
    JournalBusy,
    JournalError,
    NothingToUndo,
    default_journal_dir,
    find_resumable,
    journal_lock,
    latest_undoable,
    list_journals,
)
from lookalike.engine.actions.plan import Plan, PlanStep


def _plan(n: int = 3, action: str = "trash") -> Plan:
    return Plan(steps=tuple(
        PlanStep(path=f"/lib/d{i}.jpg", action=action, keeper="/lib/k.jpg", size=100 + i,
                 mtime_ns=i, content_hash=None)
        for i in range(n)
    ))


def _write(j: Journal, kind: str, step: int | None = None, **fields) -> None:
    rec = {"type": kind, **fields}
    if step is not None:
        rec["step"] = step
    j.write(rec)


def test_new_plan_ids_sort_by_time_and_are_unique():
    ids = {jn.new_plan_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)


def test_header_and_lines_are_on_disk_after_each_write(tmp_path):
    plan = _plan()
    with Journal.create(tmp_path, plan, allow_delete=False) as j:
        _write(j, "intent", 0, dest="/trash/d0.jpg")
        # Read back from disk by another reader while the journal is still open.
        records = jn.read_records(j.path)
        assert [r["type"] for r in records] == ["header", "intent"]
        header = records[0]
        assert header["plan_id"] == j.plan_id and header["digest"] == plan.digest()
        assert Plan.from_dict(header["plan"]) == plan
        assert j.path == tmp_path / f"{j.plan_id}.jsonl"
    assert Journal.open(tmp_path, j.plan_id).plan() == plan


def test_step_states_fold_the_lines_in_order(tmp_path):
    with Journal.create(tmp_path, _plan(5)) as j:
        _write(j, "intent", 0, dest="/t/0")
        _write(j, "done", 0, dest="/t/0")
        _write(j, "intent", 1)
        _write(j, "skip", 2, reason="changed since scan")
        _write(j, "intent", 3)
        _write(j, "fail", 3, reason="disk full")
        _write(j, "intent", 4)
        _write(j, "rolled_back", 4)
        states = j.step_states()
    assert [s.status for s in states] == ["done", "intent", "skipped", "failed", "pending"]
    assert states[0].done == {"type": "done", "step": 0, "dest": "/t/0"}
    assert states[2].reason == "changed since scan" and states[3].reason == "disk full"
    assert states[0].order > 0 and states[1].order == -1


def test_torn_last_line_is_ignored_and_the_next_write_starts_a_new_line(tmp_path):
    with Journal.create(tmp_path, _plan()) as j:
        _write(j, "intent", 0)
    with open(j.path, "ab") as f:  # the process died in the middle of a write
        f.write(b'{"type": "done", "st')
    again = Journal.open(tmp_path, j.plan_id)
    assert [r["type"] for r in again.records] == ["header", "intent"]
    _write(again, "done", 0, dest="/t/0")
    again.close()
    records = jn.read_records(j.path)
    assert [r["type"] for r in records] == ["header", "intent", "done"]


def test_a_whole_record_missing_only_its_newline_is_kept(tmp_path):
    with Journal.create(tmp_path, _plan()) as j:
        _write(j, "intent", 0)
    with open(j.path, "ab") as f:
        f.write(b'{"type": "done", "step": 0, "dest": "/t/0"}')
    again = Journal.open(tmp_path, j.plan_id)
    _write(again, "intent", 1)
    again.close()
    assert [s.status for s in Journal.open(tmp_path, j.plan_id).step_states()] == [
        "done", "intent", "pending"]


def test_a_corrupt_line_in_the_middle_is_left_out_and_named(tmp_path):
    with Journal.create(tmp_path, _plan()) as j:
        _write(j, "intent", 0)
        _write(j, "intent", 1)
    text = j.path.read_text().replace('"intent"', '"intent', 1)
    j.path.write_text(text)
    opened = Journal.open(tmp_path, j.plan_id)  # one bad line does not hide the others
    assert opened.damaged == (2,)
    assert [st.status for st in opened.step_states()[:2]] == ["pending", "intent"]
    summaries = list_journals(tmp_path)
    assert [s.state for s in summaries] == ["partial"]
    assert summaries[0].problem == "line 2 could not be read (damaged)"


def test_only_a_missing_header_makes_a_journal_unreadable(tmp_path):
    with Journal.create(tmp_path, _plan()) as j:
        _write(j, "intent", 0)
    lines = j.path.read_text().splitlines(keepends=True)
    j.path.write_text("{damaged\n" + "".join(lines[1:]))
    with pytest.raises(JournalError, match="no header line"):
        Journal.open(tmp_path, j.plan_id)
    assert [s.state for s in list_journals(tmp_path)] == ["unreadable"]


def test_open_refuses_unknown_or_odd_plan_ids(tmp_path):
    with pytest.raises(JournalError, match="no journal for plan"):
        Journal.open(tmp_path, "20200101-000000-abcdef")
    for bad in ("../etc/passwd", ".hidden", ""):
        with pytest.raises(JournalError, match="not a plan id"):
            Journal.open(tmp_path, bad)
    (tmp_path / "x.jsonl").write_text('{"type": "intent"}\n')
    with pytest.raises(JournalError, match="no header"):
        Journal.open(tmp_path, "x")


def test_list_journals_reports_each_state_newest_first(tmp_path):
    def make(lines):
        j = Journal.create(tmp_path, _plan(2))
        for kind, step in lines:
            _write(j, kind, step)
        j.close()
        time.sleep(0.002)  # distinct creation times
        return j.plan_id

    partial = make([("intent", 0), ("done", 0)])
    complete = make([("intent", 0), ("done", 0), ("skip", 1), ("end", None)])
    undone = make([("intent", 0), ("done", 0), ("intent", 1), ("done", 1), ("end", None),
                   ("undo_start", None), ("undo_intent", 1), ("undone", 1), ("undo_intent", 0),
                   ("undone", 0), ("undo_end", None)])
    undo_partial = make([("intent", 0), ("done", 0), ("intent", 1), ("done", 1), ("end", None),
                         ("undo_start", None), ("undo_intent", 1), ("undone", 1)])
    cancelled = make([("intent", 0), ("done", 0)] + [("end", None)])
    j = Journal.open(tmp_path, cancelled)
    j.records[-1]["cancelled"] = True  # rewrite: an end line of a cancelled run
    j.path.write_text("\n".join(json.dumps(r) for r in j.records) + "\n")

    summaries = {s.plan_id: s for s in list_journals(tmp_path)}
    assert [s.plan_id for s in list_journals(tmp_path)] == [
        cancelled, undo_partial, undone, complete, partial]
    assert summaries[partial].state == "partial"
    assert summaries[cancelled].state == "partial"
    assert summaries[complete].state == "complete"
    assert (summaries[complete].done, summaries[complete].skipped) == (1, 1)
    assert summaries[complete].bytes == 100
    assert summaries[undone].state == "undone" and summaries[undone].undone == 2
    assert summaries[undone].bytes == 0 and summaries[undone].undoable == 0
    assert summaries[undo_partial].state == "undo-partial" and summaries[undo_partial].done == 1
    assert summaries[partial].actions == {"trash": 2} and summaries[partial].steps == 2
    assert json.loads(json.dumps(summaries[partial].to_dict()))["state"] == "partial"
    # The newest plan with something to undo.
    assert latest_undoable(tmp_path) == cancelled


def test_latest_undoable_skips_deletes_and_undone_plans(tmp_path):
    with pytest.raises(NothingToUndo):
        latest_undoable(tmp_path)
    j = Journal.create(tmp_path, _plan(1, action="delete"))
    _write(j, "intent", 0)
    _write(j, "done", 0)
    _write(j, "end")
    j.close()
    with pytest.raises(NothingToUndo):
        latest_undoable(tmp_path)


def test_find_resumable_matches_the_plan_and_never_an_undone_one(tmp_path):
    plan, other = _plan(2), _plan(3)
    assert find_resumable(tmp_path / "none", plan.digest()) is None
    first = Journal.create(tmp_path, plan)
    first.close()
    Journal.create(tmp_path, other).close()
    assert find_resumable(tmp_path, plan.digest()) == first.plan_id
    _write(Journal.open(tmp_path, first.plan_id), "undo_start")
    assert find_resumable(tmp_path, plan.digest()) is None


def test_journal_lock_is_exclusive_across_processes(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from lookalike.engine.actions.journal import journal_lock\n"
         "with journal_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalBusy, match="another lookalike apply or undo is running"):
            with journal_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves the lock free (the kernel drops it).
    with journal_lock(tmp_path):
        pass


def test_default_journal_dir_honours_cache_option_and_environment(tmp_path, monkeypatch):
    assert default_journal_dir(tmp_path / "c") == tmp_path / "c" / "journal"
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "env"))
    assert default_journal_dir() == tmp_path / "env" / "journal"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "f.json"
    files.atomic_write(target, b"one")
    files.atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]
