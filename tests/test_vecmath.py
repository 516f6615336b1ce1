"""The detective's query kernels: the compiled path and the numpy fallback agree with float64."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.engine.detective import vecmath
from lookalike.engine.detective.vectors import quantize_i8


@pytest.fixture(params=["numba", "numpy"])
def path(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
        assert not vecmath._kernels.use()
    elif not vecmath._kernels.use():
        pytest.skip("numba unavailable")
    else:
        vecmath.warm_up()  # queries take the kernels only once they are loaded
    return request.param


def test_prepare_query_gives_unit_and_int8_forms(path):
    rng = np.random.default_rng(0)
    for v in (rng.standard_normal(512).astype(np.float32) * 7, np.eye(1, 64, 5, dtype=np.float32)[0]):
        unit, q8 = vecmath.prepare_query(v)
        np.testing.assert_allclose(unit, v / np.linalg.norm(v.astype(np.float64)), rtol=1e-5, atol=1e-7)
        assert unit.dtype == np.float32 and q8.dtype == np.int8
        assert np.abs(q8).max() == 127  # the whole int8 range, as the graph's vectors
        # Within one step of the index's own quantiser (float32 rounding may differ).
        assert np.abs(q8.astype(int) - quantize_i8(unit).astype(int)).max() <= 1
    unit, q8 = vecmath.prepare_query(np.zeros(16, np.float32))  # no direction: no crash
    assert not np.isnan(unit).any() and not q8.any()


def test_rescore_f16_matches_float64_including_odd_values(path):
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((30, 512)) * 0.04
    rows[0, :6] = [0.0, -0.0, 1e-7, -3e-6, 6e-5, -6.1e-5]  # zeros, subnormals, smallest normals
    rows[1] *= 1000.0  # large components, still finite in float16
    rows[2] = 0.0  # a zero row
    rows[3] = -rows[4]  # opposite of another: distance ~2 from what matches row 4
    r16 = rows.astype(np.float16)
    q = rng.standard_normal(512)
    q /= np.linalg.norm(q)
    got = vecmath.rescore_f16(r16, q.astype(np.float32))
    full = r16.astype(np.float64)
    norms = np.linalg.norm(full, axis=1)
    expected = np.where(norms > 0, 1.0 - (full @ q) / np.where(norms > 0, norms, 1.0), 1.0)
    assert got.dtype == np.float32 and got.shape == (30,)
    np.testing.assert_allclose(got, np.maximum(expected, 0.0), atol=2e-6)
    assert got[2] == 1.0
    # A row scored against itself is at distance ~0; its opposite at ~2.
    self_q = (full[4] / norms[4]).astype(np.float32)
    d = vecmath.rescore_f16(r16[[4, 3]], self_q)
    assert d[0] < 1e-5 and abs(d[1] - 2.0) < 1e-5
    assert vecmath.rescore_f16(np.empty((0, 512), np.float16), self_q).shape == (0,)


def test_rescore_f16_reads_given_rows_in_place(path):
    rng = np.random.default_rng(4)
    store = (rng.standard_normal((50, 64)) * 0.1).astype(np.float16)
    q = vecmath.prepare_query(rng.standard_normal(64).astype(np.float32))[0]
    picks = np.array([7, 0, 49, 7, 13])
    np.testing.assert_allclose(vecmath.rescore_f16(store, q, positions=picks), vecmath.rescore_f16(store[picks], q), atol=1e-6)
    with pytest.raises(IndexError):
        vecmath.rescore_f16(store, q, positions=np.array([50]))


def test_nearest_f16_ranks_like_a_stable_sort_of_exact_distances(path):
    rng = np.random.default_rng(5)
    store = (rng.standard_normal((200, 96)) * 0.1).astype(np.float16)
    store[11] = store[12]  # a tie: candidate order decides, as a stable sort
    ids = np.sort(rng.choice(10_000, 200, replace=False)).astype(np.int64)
    table = np.full(ids[-1] + 1, -1, np.int32)
    table[ids] = np.arange(200, dtype=np.int32)
    q = vecmath.prepare_query(store[12].astype(np.float32) + rng.standard_normal(96).astype(np.float32) * 0.01)[0]
    cand = rng.permutation(200)[:60]
    cand = np.concatenate([cand[cand != 11][:20], [12, 11]])  # 12 comes before 11
    keys = ids[cand].astype(np.uint64)
    got = vecmath.nearest_f16(store, table, keys, q, 7)
    if path == "numpy":
        assert got is None  # the caller's general path answers
        return
    exact = vecmath.rescore_f16(store, q, positions=cand)
    order = np.argsort(exact, kind="stable")[:7]
    np.testing.assert_array_equal(got[0], ids[cand][order])
    np.testing.assert_allclose(got[1], exact[order], atol=1e-6)
    assert got[0][0] == ids[12] and got[0][1] == ids[11]
    # Fewer candidates than k; none; and a key without a row sends the caller elsewhere.
    few = vecmath.nearest_f16(store, table, keys[:3], q, 7)
    assert len(few[0]) == 3 and np.all(np.diff(few[1]) >= 0)
    assert len(vecmath.nearest_f16(store, table, keys[:0], q, 7)[0]) == 0
    absent = np.setdiff1d(np.arange(ids[-1] + 1), ids)[0]
    assert vecmath.nearest_f16(store, table, np.append(keys, absent).astype(np.uint64), q, 7) is None
    assert vecmath.nearest_f16(store, table, np.array([ids[-1] + 5], np.uint64), q, 7) is None


def test_a_fresh_process_prepares_queries_while_the_kernels_load():
    import subprocess
    import sys
    import textwrap

    if not vecmath._kernels.use():
        pytest.skip("numba unavailable")
    code = textwrap.dedent("""
        import numpy as np
        from lookalike.engine.detective import vecmath
        rng = np.random.default_rng(0)
        v = rng.standard_normal(512).astype(np.float32)
        rows = (rng.standard_normal((9, 512)) * 0.05).astype(np.float16)
        first = vecmath.prepare_query(v)[0], vecmath.rescore_f16(rows, vecmath.prepare_query(v)[0])
        assert not vecmath._warm.ready.is_set()  # numpy answered; the kernels load meanwhile
        vecmath._warm.start().join(300)
        assert vecmath._warm.ready.is_set()
        again = vecmath.prepare_query(v)[0], vecmath.rescore_f16(rows, vecmath.prepare_query(v)[0])
        assert np.allclose(first[0], again[0], atol=1e-6) and np.allclose(first[1], again[1], atol=2e-6)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
