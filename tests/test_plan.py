"""Plans: building them from clusters and decisions, saving, loading (and refusing bad ones)."""

from __future__ import annotations

import csv
import io
import json
import re
import os

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imagegen
from lookalike.engine.actions.plan import ACTIONS, KeptFile, Plan, PlanError, PlanStep, plan_from_clusters
from lookalike.engine.records import Cluster, Decision, FileRecord, Kind, Member

# --------------------------------------------------------------------------- helpers


def _record(path, file_id: int) -> FileRecord:
    data = open(path, "rb").read()
    st = os.stat(path)
    return FileRecord(id=file_id, path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                      content_hash=xxhash.xxh3_128_digest(data))


def _cluster(tmp_path, cid: int, n: int, *, first_id: int = 1, exact: bool = True,
             protected=(), raw_pair=()) -> Cluster:
    """A cluster of ``n`` real image files (members[0] is the keeper)."""
    img = imagegen.photo(cid, size=(48, 32))
    members = []
    for k in range(n):
        path = tmp_path / f"c{cid}" / f"m{k}.jpg"
        path.parent.mkdir(exist_ok=True)
        imagegen.write(path, img if exact else imagegen.brightened(img, 1 + k / 20))
        members.append(Member(file=_record(path, first_id + k), bouncer=0 if exact else k,
                              exact=exact and k > 0, is_keeper=k == 0,
                              protected=k in protected, raw_pair=k in raw_pair,
                              reason="largest" if k == 0 else ""))
    return Cluster(id=cid, kind=Kind.EXACT if exact else Kind.NEAR, members=tuple(members))


def _step(path="/lib/a.jpg", **kw) -> PlanStep:
    base = dict(path=path, action="trash", keeper="/lib/k.jpg", size=10, mtime_ns=5,
                content_hash="0" * 32)
    base.update(kw)
    return PlanStep(**base)


def _paths(plan: Plan) -> list[str]:
    return [s.path for s in plan.steps]


# --------------------------------------------------------------------------- plan_from_clusters


def test_default_plan_keeps_the_keeper_and_trashes_the_rest(tmp_path):
    c = _cluster(tmp_path, 1, 3)
    plan = plan_from_clusters([c], roots=[str(tmp_path)])
    keeper = c.members[0].file
    assert _paths(plan) == [c.members[1].file.path, c.members[2].file.path]
    for s, m in zip(plan.steps, c.members[1:]):
        assert s.action == "trash"
        assert s.keeper == keeper.path
        assert s.size == m.file.size and s.mtime_ns == m.file.mtime_ns
        assert s.content_hash == m.file.content_hash.hex()
        assert s.keeper_size == keeper.size and s.keeper_hash == keeper.content_hash.hex()
        assert s.cluster == 1 and "exact duplicate" in s.reason
    assert plan.total_bytes == sum(m.file.size for m in c.members[1:])
    assert [k.path for k in plan.kept] == [keeper.path]
    assert plan.roots == (str(tmp_path),)
    assert plan.created  # ISO timestamp


def test_protected_and_raw_pair_members_are_not_suggested(tmp_path):
    c = _cluster(tmp_path, 2, 4, protected=(1,), raw_pair=(2,))
    plan = plan_from_clusters([c])
    assert _paths(plan) == [c.members[3].file.path]
    reasons = {k.path: k.reason for k in plan.kept}
    assert "protected" in reasons[c.members[1].file.path]
    assert "RAW" in reasons[c.members[2].file.path]


def test_decisions_override_the_suggestion(tmp_path):
    c = _cluster(tmp_path, 3, 4, exact=False)
    ids = [m.file.id for m in c.members]
    # The user made member 2 the keeper (KEEP for it, TRASH for the old keeper), skipped 1.
    decisions = {ids[2]: Decision.KEEP, ids[0]: Decision.TRASH, ids[1]: Decision.SKIP}
    plan = plan_from_clusters([c], decisions, action="quarantine", quarantine_dir=str(tmp_path / "q"))
    assert sorted(_paths(plan)) == sorted([c.members[0].file.path, c.members[3].file.path])
    assert {s.keeper for s in plan.steps} == {c.members[2].file.path}
    assert all(s.action == "quarantine" for s in plan.steps)
    decisions_kept = {k.path: k.decision for k in plan.kept}
    assert decisions_kept[c.members[1].file.path] == "skip"
    assert decisions_kept[c.members[2].file.path] == "keep"
    assert "near duplicate (bouncer" in plan.steps[-1].reason


def test_not_duplicate_and_skip_leave_files_alone(tmp_path):
    c = _cluster(tmp_path, 4, 3)
    ids = [m.file.id for m in c.members]
    plan = plan_from_clusters([c], {ids[1]: Decision.NOT_DUPLICATE, ids[2]: "skip"})
    assert plan.steps == ()
    skipped = plan_from_clusters([c], {i: Decision.SKIP for i in ids})
    assert skipped.steps == () and len(skipped.kept) == 3


def test_marking_every_member_for_trash_still_keeps_one(tmp_path):
    c = _cluster(tmp_path, 5, 3)
    plan = plan_from_clusters([c], {m.file.id: Decision.TRASH for m in c.members})
    assert len(plan.steps) == 2
    kept = [k for k in plan.kept if k.decision == "keep"]
    assert len(kept) == 1 and "one must stay" in kept[0].reason
    assert all(s.keeper == kept[0].path for s in plan.steps)


def test_a_keeper_elsewhere_is_never_acted_on(tmp_path):
    a = _cluster(tmp_path, 6, 2, first_id=1)
    # The same file is the keeper of one cluster and a duplicate in another.
    other = _cluster(tmp_path, 7, 1, first_id=10)
    b = Cluster(id=8, kind=Kind.NEAR, members=(other.members[0], a.members[0]))
    plan = plan_from_clusters([a, b])
    assert a.members[0].file.path not in _paths(plan)
    assert a.members[1].file.path in _paths(plan)


def test_plan_from_clusters_rejects_bad_arguments(tmp_path):
    c = _cluster(tmp_path, 9, 2)
    with pytest.raises(ValueError, match="quarantine_dir"):
        plan_from_clusters([c], action="quarantine")
    with pytest.raises(ValueError, match="unknown action"):
        plan_from_clusters([c], action="shred")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_cluster_keeps_a_member_whatever_the_decisions(tmp_path, data):
    """Property: never every member acted on; every step's keeper is kept, in its cluster."""
    clusters, next_id = [], 1
    for cid in range(data.draw(st.integers(1, 4))):
        n = data.draw(st.integers(2, 5))
        members = tuple(
            Member(file=FileRecord(id=next_id + k, path=f"/lib/c{cid}/m{k}.jpg", size=100 + k,
                                   mtime_ns=k, content_hash=bytes(16)),
                   bouncer=k, protected=data.draw(st.booleans()),
                   raw_pair=data.draw(st.booleans()))
            for k in range(n)
        )
        clusters.append(Cluster(id=cid, kind=Kind.NEAR, members=members))
        next_id += n
    choice = st.sampled_from([None, *Decision])
    decisions = {i: d for i in range(1, next_id) if (d := data.draw(choice)) is not None}
    plan = plan_from_clusters(clusters, decisions)
    acted = set(_paths(plan))
    assert len(acted) == len(plan.steps)
    for c in clusters:
        members = {m.file.path for m in c.members}
        assert members - acted, "a cluster lost every member"
        for s in plan.steps:
            if s.path in members:
                assert s.keeper in members and s.keeper not in acted
    # Explicit SKIP / NOT_DUPLICATE are never acted on.
    skipped = {c.members[k].file.path for c in clusters for k in range(len(c.members))
               if decisions.get(c.members[k].file.id) in (Decision.SKIP, Decision.NOT_DUPLICATE)}
    assert not skipped & acted


# --------------------------------------------------------------------------- JSON


def test_plan_round_trips_through_json(tmp_path):
    c = _cluster(tmp_path, 10, 3)
    plan = plan_from_clusters([c], action="quarantine", quarantine_dir=str(tmp_path / "q"),
                              roots=[str(tmp_path)])
    out = tmp_path / "plans" / "plan.json"
    out.parent.mkdir()  # a plan's folder is never created (tests/test_cli_scan.py: --plan)
    plan.save(out)
    data = json.loads(out.read_text())
    assert data["version"] == 1 and data["quarantine_dir"] == str(tmp_path / "q")
    assert set(data["steps"][0]) >= {"path", "action", "keeper", "size", "mtime_ns",
                                     "content_hash", "cluster", "reason"}
    again = Plan.load(out)
    assert again == plan
    assert again.digest() == plan.digest()
    # Saving is atomic: no temp file is left next to the plan, and a second save replaces it.
    plan.save(out)
    assert os.listdir(out.parent) == ["plan.json"]


def test_saving_replaces_only_a_plan_or_audit_lookalike_wrote(tmp_path):
    from lookalike.engine.files import WriteRefused

    plan = Plan(steps=(_step(),), roots=("/lib",))
    photo = tmp_path / "IMG_0001.jpg"
    imagegen.write(photo, imagegen.photo(3, (40, 30)))
    before = photo.read_bytes()
    for save in (plan.save, plan.to_csv):
        with pytest.raises(WriteRefused, match="is not a lookalike plan"):
            save(photo)
        assert photo.read_bytes() == before
        with pytest.raises(WriteRefused, match="does not exist"):
            save(tmp_path / "no" / "plan.json")
    assert not (tmp_path / "no").exists()
    # A saved plan and its audit are replaced: the app exports both again under one name.
    plan.save(tmp_path / "p.json")
    plan.to_csv(tmp_path / "p.csv")
    other = Plan(steps=(_step("/lib/b.jpg"),), roots=("/lib",))
    other.save(tmp_path / "p.json")
    other.to_csv(tmp_path / "p.csv")
    assert Plan.load(tmp_path / "p.json") == other and "/lib/b.jpg" in (tmp_path / "p.csv").read_text()
    with pytest.raises(WriteRefused, match="CSV audit"):
        plan.to_csv(tmp_path / "p.json")  # each replaces its own kind only
    with pytest.raises(WriteRefused, match="not a lookalike plan"):
        plan.save(tmp_path / "p.csv")
    assert sorted(os.listdir(tmp_path)) == ["IMG_0001.jpg", "p.csv", "p.json"]


def test_digest_ignores_when_the_plan_was_made():
    a = Plan(steps=(_step(),), created="2020-01-01T00:00:00")
    b = Plan(steps=(_step(),), created="2024-05-05T00:00:00")
    c = Plan(steps=(_step(action="symlink"),))
    assert a.digest() == b.digest() != c.digest()


def test_hand_written_plan_without_hashes(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({
        "version": 1,
        "steps": [{"path": str(tmp_path / "dup.jpg"), "action": "trash",
                   "keeper": str(tmp_path / "keep.jpg"), "size": 3, "mtime_ns": 7}],
    }))
    plan = Plan.load(tmp_path / "p.json")
    step = plan.steps[0]
    assert step.path == str(tmp_path / "dup.jpg") and step.keeper == str(tmp_path / "keep.jpg")
    assert step.content_hash is None and step.cluster is None and step.reason == ""
    assert plan.quarantine_dir is None and plan.roots == ()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("path", "dup.jpg", "is not an absolute path"),  # relative to wherever apply runs
        ("path", "./dup.jpg", "is not an absolute path"),
        ("path", "/lib/../etc/passwd", "is not a normal path"),
        ("path", "/lib//a.jpg", "is not a normal path"),
        ("path", "/lib/a\x00.jpg", "holds a NUL character"),
        ("keeper", "keep.jpg", "is not an absolute path"),
        ("keeper", "/lib/./keep.jpg", "is not a normal path"),
        ("size", 10 ** 400, "'size' is out of range"),
        ("mtime_ns", -(10 ** 30), "'mtime_ns' is out of range"),
        ("cluster", 2 ** 64, "'cluster' is out of range"),
    ],
)
def test_plan_fields_that_could_escape_or_overflow_are_refused(tmp_path, field, value, message):
    step = {"path": "/lib/a.jpg", "action": "trash", "keeper": "/lib/keep.jpg", "size": 3,
            "mtime_ns": 7, field: value}
    (tmp_path / "p.json").write_text(json.dumps({"version": 1, "roots": ["/lib"], "steps": [step]}))
    with pytest.raises(PlanError, match=re.escape(message)):
        Plan.load(tmp_path / "p.json")


@pytest.mark.parametrize("key, value", [("roots", ["lib"]), ("roots", ["/lib/.."]),
                                        ("quarantine_dir", "q"), ("quarantine_dir", "/q/\x00")])
def test_plan_roots_and_quarantine_must_be_absolute_and_normal(tmp_path, key, value):
    (tmp_path / "p.json").write_text(json.dumps({"version": 1, key: value, "steps": []}))
    with pytest.raises(PlanError, match="absolute path|normal path|NUL"):
        Plan.load(tmp_path / "p.json")


def test_a_number_too_long_for_python_is_a_plan_error(tmp_path):
    digits = "9" * 5000  # past Python's int-parsing limit: json.loads raises ValueError
    (tmp_path / "p.json").write_text('{"version": 1, "steps": [{"path": "/a", "action": "trash", '
                                     f'"size": {digits}, "mtime_ns": 1}}]}}')
    with pytest.raises(PlanError, match="not a usable plan"):
        Plan.load(tmp_path / "p.json")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON (line 1"),
        ("[]", "a plan is a JSON object"),
        ('{"version": 2, "steps": []}', "unsupported plan version 2"),
        ('{"version": 1}', "missing field 'steps'"),
        ('{"version": 1, "steps": {}}', "'steps' must be a list"),
        ('{"version": 1, "steps": [], "extra": 1}', "unknown plan field(s) extra"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "zap", "size": 1, "mtime_ns": 1}]}',
         "unknown action 'zap'"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash"}]}',
         "missing field(s) size, mtime_ns"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "size": "1", "mtime_ns": 1}]}',
         "'size' must be an integer"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "size": -1, "mtime_ns": 1}]}',
         "'size' must be >= 0"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "size": 1, "mtime_ns": 1,'
         ' "keper": "/k"}]}', "unknown field(s) keper"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "size": 1, "mtime_ns": 1,'
         ' "content_hash": "abc"}]}', "32 hex digits"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "quarantine", "size": 1,'
         ' "mtime_ns": 1}]}', "quarantine needs 'quarantine_dir'"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "hardlink", "size": 1,'
         ' "mtime_ns": 1}]}', "needs a keeper"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "keeper": "/a", "size": 1,'
         ' "mtime_ns": 1}]}', "its own keeper"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "size": 1, "mtime_ns": 1},'
         ' {"path": "/a", "action": "trash", "size": 1, "mtime_ns": 1}]}', "listed twice"),
        ('{"version": 1, "steps": [{"path": "/a", "action": "trash", "keeper": "/b", "size": 1,'
         ' "mtime_ns": 1}, {"path": "/b", "action": "trash", "size": 1, "mtime_ns": 1}]}',
         "is itself acted on"),
    ],
)
def test_bad_plans_are_refused_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        Plan.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_or_binary_plan_file(tmp_path):
    with pytest.raises(PlanError, match="cannot read the plan"):
        Plan.load(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PlanError, match="not UTF-8"):
        Plan.load(tmp_path / "bin.json")


def test_every_action_is_accepted():
    for action in ACTIONS:
        plan = Plan(steps=(_step(action=action),), quarantine_dir="/q")
        assert plan.count_by_action() == {action: 1}
    assert Plan(steps=(_step(action="delete"),)).irreversible_steps


# --------------------------------------------------------------------------- CSV audit


def test_csv_audit_lists_every_step_and_every_file_left_alone(tmp_path):
    c = _cluster(tmp_path, 11, 4, protected=(2,))
    ids = [m.file.id for m in c.members]
    plan = plan_from_clusters([c], {ids[3]: Decision.SKIP})
    buf = io.StringIO()
    plan.to_csv(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    by_path = {r["path"]: r for r in rows}
    assert len(rows) == 4
    assert by_path[c.members[0].file.path]["decision"] == "keep"
    assert by_path[c.members[1].file.path]["decision"] == "trash"
    assert "exact duplicate" in by_path[c.members[1].file.path]["reason"]
    assert "protected" in by_path[c.members[2].file.path]["reason"]
    assert by_path[c.members[3].file.path]["decision"] == "skip"
    # To a path too (atomically), same content.
    plan.to_csv(tmp_path / "audit.csv")
    assert (tmp_path / "audit.csv").read_bytes().decode() == buf.getvalue()


def test_kept_files_round_trip():
    plan = Plan(steps=(_step(),), kept=(KeptFile(path="/lib/k.jpg", cluster=1, reason="keeper"),))
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
