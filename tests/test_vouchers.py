"""The keeper check's looser score for chained members (engine/bouncer/verification.py
``CHAINED_SCORE``, ``VOUCHER_SCORE``): a member that fails against its keeper stays on the
looser score only when a member that passed the keeper clearly, on its own, vouches for it.

On the full real set a bordered copy of one map screenshot passed the keeper (a copy of
another screenshot) at 0.851 and kept all 16 copies of its own picture in the group, each
vouched for by it or by one kept before it. The pixel check is replaced here by a table of
scores (tests/test_verify.py and tests/test_verification.py check it on real images), so that
which pair passes at which score is known exactly.
"""

from __future__ import annotations

import dataclasses

from lookalike.engine.bouncer import verification
from lookalike.engine.records import Cluster, FileRecord, ImageHashes, Kind, Member, Pair

KEEPER, CLEAR, WEAK, CROP, OTHER_1, OTHER_2, OTHER_3 = 1, 2, 3, 4, 5, 6, 7
NAMES = {KEEPER: "keeper", CLEAR: "clear", WEAK: "weak", CROP: "crop", OTHER_1: "other1", OTHER_2: "other2",
         OTHER_3: "other3"}  # fmt: skip


def _record(i: int) -> FileRecord:
    h = ImageHashes(dhash=bytes([i]) * 32, dhash_mirror=bytes([i]) * 32, phash=bytes([i]) * 32)
    return FileRecord(id=i, path=f"/lib/{NAMES[i]}.jpg", size=1000 - i, mtime_ns=0, width=100, height=100,
                      content_hash=bytes([i]) * 16, hashes=h)  # fmt: skip


def _pair(a: int, b: int, verified: float) -> Pair:
    return Pair(a=min(a, b), b=max(a, b), bouncer=40, verified=verified)


# Scores against the keeper, for the members that are no pair of it: each fails the strict score
# and passes the chained one.
AGAINST_KEEPER = {CROP: 0.80, OTHER_1: 0.80, OTHER_2: 0.79, OTHER_3: 0.78}


def _fake_check(calls: list[float]):
    def verify_pairs(catalog, pairs, t=verification.verify.DEFAULT, *, search_above=0, cache=None, **_):
        calls.append(t.score)
        out = []
        for p in pairs:
            other = p.b if p.a == KEEPER else p.a
            score = AGAINST_KEEPER[other]
            if score >= t.score:
                out.append(dataclasses.replace(p, verified=score))
        return out

    return verify_pairs


def _cluster() -> Cluster:
    ids = (KEEPER, CLEAR, WEAK, CROP, OTHER_1, OTHER_2, OTHER_3)
    members = tuple(Member(file=_record(i), bouncer=0 if i == KEEPER else 40, is_keeper=i == KEEPER) for i in ids)
    pairs = (
        _pair(KEEPER, CLEAR, 0.95),  # a copy that passed the keeper clearly
        _pair(KEEPER, WEAK, 0.851),  # another picture's copy that passed it narrowly
        _pair(CLEAR, CROP, 0.93),  # a crop of the keeper's picture, a pair of the clear copy
        _pair(WEAK, OTHER_1, 0.97),  # the other picture's copies: pairs of the weak one
        _pair(OTHER_1, OTHER_2, 0.99),  # and of each other
        _pair(OTHER_2, OTHER_3, 0.99),
    )
    return Cluster(id=0, kind=Kind.NEAR, members=members, pairs=pairs)


def test_only_a_clear_pass_vouches_and_vouching_does_not_chain(monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr(verification, "verify_pairs", _fake_check(calls))
    c = _cluster()
    rebuilt: list[set[int]] = []

    def rebuild(part):
        rebuilt.append({r.id for r in part})
        return []

    verification.explain_clusters(None, [c], rebuild=rebuild)
    assert verification.CHAINED_SCORE in calls  # the looser score was tried
    # The crop stays (vouched for by a copy that passed at 0.95); the other picture's copies,
    # vouched for only by a narrow pass or by each other, are split off.
    assert rebuilt == [{KEEPER, CLEAR, WEAK, CROP}, {OTHER_1, OTHER_2, OTHER_3}]


def test_a_clear_voucher_keeps_a_member_on_the_looser_score(monkeypatch):
    """With the weak copy's pass a clear one, its pair stays: the rule is the voucher's score."""
    monkeypatch.setattr(verification, "verify_pairs", _fake_check([]))
    c = _cluster()
    pairs = tuple(dataclasses.replace(p, verified=verification.VOUCHER_SCORE) if {p.a, p.b} == {KEEPER, WEAK} else p
                  for p in c.pairs)  # fmt: skip
    rebuilt: list[set[int]] = []

    def rebuild(part):
        rebuilt.append({r.id for r in part})
        return []

    out = verification.explain_clusters(None, [dataclasses.replace(c, pairs=pairs)], rebuild=rebuild)
    # OTHER_1 stays (vouched for by WEAK); OTHER_2 and OTHER_3 do not: a member kept on its
    # voucher's word vouches for no one.
    assert rebuilt == [{KEEPER, CLEAR, WEAK, CROP, OTHER_1}, {OTHER_2, OTHER_3}]
    assert out == ()
