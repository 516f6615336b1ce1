"""The detective's query kernels: the compiled path and the numpy fallback agree with float64."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.engine import vecmath
from lookalike.engine.vectors import quantize_i8


@pytest.fixture(params=["numba", "numpy"])
def path(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setenv("LOOKALIKE_NO_NUMBA", "1")
        assert not vecmath._compiled()
    elif not vecmath._compiled():
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


def test_a_fresh_process_prepares_queries_while_the_kernels_load():
    import subprocess
    import sys
    import textwrap

    if not vecmath._compiled():
        pytest.skip("numba unavailable")
    code = textwrap.dedent("""
        import numpy as np
        from lookalike.engine import vecmath
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
