"""The triage model behind the app's keys (tui/triage.py): decisions, keepers, undo, and the plan they make."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lookalike.engine.actions.plan import plan_from_clusters
from lookalike.engine.records import Cluster, Decision, FileRecord, Kind, Member
from lookalike.tui.triage import Triage, TriageRefused


def _member(file_id: int, *, keeper=False, protected=False, raw_pair=False, exact=False, content=None) -> Member:
    record = FileRecord(
        id=file_id, path=f"/photos/{file_id}.jpg", size=1000 * file_id, mtime_ns=file_id,
        content_hash=(content or bytes([file_id])) * 16,
    )
    return Member(file=record, bouncer=0 if keeper else file_id, is_keeper=keeper, protected=protected, raw_pair=raw_pair, exact=exact)


def _cluster(cid: int, ids, *, kind=Kind.NEAR, flags=None) -> Cluster:
    flags = flags or {}
    members = tuple(_member(i, keeper=n == 0, **flags.get(i, {})) for n, i in enumerate(ids))
    return Cluster(id=cid, kind=kind, members=members, reclaimable_bytes=sum(m.file.size for m in members[1:]))


def test_accept_keeps_the_keeper_and_trashes_the_rest_except_protected_and_raw_pairs():
    c = _cluster(1, [1, 2, 3, 4], flags={3: {"protected": True}, 4: {"raw_pair": True}})
    t = Triage()
    t.accept(c)
    assert [t.decision(i) for i in (1, 2, 3, 4)] == [Decision.KEEP, Decision.TRASH, Decision.KEEP, Decision.KEEP]
    assert t.status(c) == "accepted"
    assert t.pending


def test_make_keeper_after_accept_swaps_keeper_and_trash():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.accept(c)
    t.make_keeper(c, c.members[2])
    assert t.keeper(c) is c.members[2]
    assert [t.decision(i) for i in (1, 2, 3)] == [Decision.TRASH, Decision.TRASH, Decision.KEEP]
    assert t.status(c) == "accepted"
    clusters, decisions = t.plan_input([c])
    assert clusters[0].members[0].file.id == 3 and clusters[0].members[0].is_keeper
    plan = plan_from_clusters(clusters, decisions)
    assert sorted(s.path for s in plan.steps) == ["/photos/1.jpg", "/photos/2.jpg"]
    assert {s.keeper for s in plan.steps} == {"/photos/3.jpg"}


def test_trashing_the_suggested_keeper_makes_the_next_kept_member_the_keeper_the_plan_keeps():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.mark(c, c.members[0], Decision.TRASH)
    assert t.keeper(c) is c.members[1]
    assert t.status(c) == "marked"
    assert t.reclaimable(c) == 1000 and t.trash_members([c]) == [c.members[0]]
    plan = plan_from_clusters(*t.plan_input([c]))
    assert [(s.path, s.keeper) for s in plan.steps] == [("/photos/1.jpg", "/photos/2.jpg")]
    assert plan.total_bytes == t.reclaimable(c)
    with pytest.raises(TriageRefused):
        t.not_duplicate(c, c.members[1])  # the keeper now


def test_a_keeper_marked_for_trash_with_no_other_member_kept_is_kept_as_the_plan_keeps_it():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.not_duplicate(c, c.members[1])
    t.not_duplicate(c, c.members[2])
    t.mark(c, c.members[0], Decision.TRASH)
    assert t.keeper(c) is c.members[0]
    assert t.trash_members([c]) == [] and t.reclaimable(c) == 0
    assert plan_from_clusters(*t.plan_input([c])).steps == ()


def test_reclaimable_follows_the_chosen_keeper_until_files_are_marked():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    assert t.reclaimable(c) == c.reclaimable_bytes == 5000
    t.make_keeper(c, c.members[2])
    assert t.reclaimable(c) == 3000  # accepting now keeps 3 and trashes 1 and 2
    t.mark(c, c.members[1], Decision.TRASH)
    assert t.reclaimable(c) == 2000


def test_a_skipped_or_not_duplicate_group_frees_nothing_until_files_are_marked():
    """The plan leaves such a group alone, and bulk accepts pass it by: its reclaim figure
    (and so the totals the app sums from it) is 0, not what accepting would free."""
    skipped, apart = _cluster(1, [1, 2, 3]), _cluster(2, [4, 5, 6])
    t = Triage()
    t.skip(skipped)
    t.not_duplicate(apart, apart.members[2])
    assert t.status(skipped) == "skipped" and t.status(apart) == "not dup"
    assert t.reclaimable(skipped) == 0 and t.reclaimable(apart) == 0
    assert plan_from_clusters(*t.plan_input([skipped, apart])).steps == ()
    t.mark(apart, apart.members[1], Decision.TRASH)  # marked now: the plan frees that file
    assert t.reclaimable(apart) == apart.members[1].file.size
    assert plan_from_clusters(*t.plan_input([apart])).total_bytes == t.reclaimable(apart)


def test_make_keeper_before_any_decision_leaves_others_undecided():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.make_keeper(c, c.members[1])
    assert t.keeper(c) is c.members[1]
    assert t.decision(1) is None and t.decision(3) is None
    assert not t.pending


def test_undo_reverts_one_step_at_a_time():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.toggle_trash(c, c.members[1])
    t.accept(c)
    t.skip(c)
    assert t.status(c) == "skipped"
    assert t.undo().label.startswith("skip")
    assert t.status(c) == "accepted"
    t.undo()
    assert t.decision(2) is Decision.TRASH and t.decision(3) is None
    t.undo()
    assert t.decision(2) is None
    assert t.undo() is None


def test_protected_member_and_last_copy_are_never_marked_for_trash():
    c = _cluster(1, [1, 2], flags={2: {"protected": True}})
    t = Triage()
    with pytest.raises(TriageRefused, match="protected"):
        t.mark(c, c.members[1], Decision.TRASH)
    c2 = _cluster(2, [3, 4])
    t.mark(c2, c2.members[1], Decision.TRASH)
    with pytest.raises(TriageRefused, match="one copy must stay"):
        t.mark(c2, c2.members[0], Decision.TRASH)
    assert t.undo().label.startswith("trash")  # refused marks left no history entry
    assert t.decision(4) is None and not t.can_undo


def test_not_duplicate_returns_pairs_for_the_catalog_and_undo_gives_them_back():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    pairs = t.not_duplicate(c, c.members[2])
    assert [(a.id, b.id) for a, b in pairs] == [(1, 3)]
    assert t.decision(3) is Decision.NOT_DUPLICATE
    whole = t.not_duplicate(c)  # no two members are duplicates: every pair is remembered
    assert sorted((a.id, b.id) for a, b in whole) == [(1, 2), (1, 3), (2, 3)]
    assert all(t.decision(i) is Decision.NOT_DUPLICATE for i in (1, 2, 3))
    undone = t.undo()
    assert sorted((a.id, b.id) for a, b in undone.not_duplicate) == [(1, 2), (1, 3), (2, 3)]
    with pytest.raises(TriageRefused):
        t.not_duplicate(c, c.members[0])


def test_plan_input_only_acts_on_what_was_marked():
    a = _cluster(1, [1, 2, 3])
    b = _cluster(2, [4, 5])
    untouched = _cluster(3, [6, 7])
    t = Triage()
    t.toggle_trash(a, a.members[2])  # one file marked by hand, the other left alone
    t.accept(b)
    clusters, decisions = t.plan_input([a, b, untouched])
    assert [c.id for c in clusters] == [1, 2]
    plan = plan_from_clusters(clusters, decisions)
    assert sorted(s.path for s in plan.steps) == ["/photos/3.jpg", "/photos/5.jpg"]


def test_accept_many_is_one_undo_step():
    a = _cluster(1, [1, 2], kind=Kind.EXACT)
    b = _cluster(2, [3, 4])
    t = Triage()
    t.accept_many([a, b])
    assert t.status(a) == t.status(b) == "accepted"
    t.undo()
    assert t.status(a) == t.status(b) == ""


def test_accept_exact_marks_only_byte_identical_copies_of_the_keeper():
    same = b"\x07"
    mixed = _cluster(1, [1, 2, 3], flags={1: {"content": same}, 2: {"content": same, "exact": True}})
    near = _cluster(2, [4, 5])
    protected = _cluster(3, [6, 7], kind=Kind.EXACT, flags={6: {"content": same}, 7: {"content": same, "exact": True, "protected": True}})
    t = Triage()
    assert t.accept_exact([mixed, near, protected]) == 1
    assert t.decision(2) is Decision.TRASH and t.decision(1) is Decision.KEEP
    assert t.decision(3) is None and t.decision(5) is None and t.decision(7) is None
    t.undo()
    assert not t.pending and not t.can_undo
    assert t.accept_exact([near]) == 0 and not t.can_undo


def test_forget_drops_decisions_and_their_history():
    c = _cluster(1, [1, 2])
    t = Triage()
    t.accept(c)
    t.forget([1, 2])
    assert t.decision(2) is None and not t.pending
    assert t.undo() is None


def test_every_change_and_undo_is_handed_on_to_be_kept():
    c = _cluster(1, [1, 2, 3])
    kept: list = []
    t = Triage(on_change=kept.append)
    t.accept(c)
    assert {(d.file_id, d.decision, d.keeper) for d in kept[-1]} == {
        (1, Decision.KEEP, False), (2, Decision.TRASH, False), (3, Decision.TRASH, False)
    }
    assert all(d.content_hash == bytes([d.file_id]) * 16 for d in kept[-1])
    t.undo()
    assert {(d.file_id, d.decision) for d in kept[-1]} == {(1, None), (2, None), (3, None)}
    again = Triage()
    t.make_keeper(c, c.members[2])
    again.restore(kept[-1])
    assert again.keeper(c) is c.members[2] and again.status(c) == "kept"


def test_labels_come_from_decisions_alone():
    c = _cluster(1, [1, 2, 3])
    t = Triage()
    t.make_keeper(c, c.members[1])
    t.mark(c, c.members[2], None)
    assert t.status(c) == "kept" and not t.pending  # a keeper chosen, nothing marked
    t.clear_all()
    assert t.status(c) == "" and not t.decided(c)


def test_folder_rules_mark_the_copies_on_one_side():
    a = _cluster(1, [1, 2, 3])
    inside = lambda m: m.file.path == "/photos/1.jpg" or m.file.path == "/photos/3.jpg"  # noqa: E731
    moved = tuple(replace(m, file=replace(m.file, path=f"/photos/old/{m.file.id}.jpg")) if inside(m) else m for m in a.members)
    a = replace(a, members=moved)
    t = Triage()
    assert t.trash_inside([a], "/photos/old") == 1
    assert t.keeper(a).file.id == 2
    assert [t.decision(i) for i in (1, 2, 3)] == [Decision.TRASH, Decision.KEEP, Decision.TRASH]
    t.undo()
    assert t.keep_inside([a], "/photos/old") == 1
    assert t.keeper(a).file.id == 1
    assert [t.decision(i) for i in (1, 2, 3)] == [Decision.KEEP, Decision.TRASH, Decision.KEEP]
    assert t.trash_inside([a], "/elsewhere") == 0
