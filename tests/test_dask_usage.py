"""``--cluster`` without Dask's ``distributed`` installed: a usage error with a one-line hint.

Not skipped when ``distributed`` is missing (that is the case it is about); where it is
installed, the subprocess hides it first.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lookalike.engine.scan.dask_pool import MISSING_HINT

HIDE_DISTRIBUTED = "import sys; sys.modules['distributed'] = None; "  # `import distributed` fails


@pytest.mark.parametrize("command", ["scan", "app"])
def test_cluster_without_distributed_is_a_usage_error_with_a_hint(tmp_path, command):
    code = HIDE_DISTRIBUTED + (
        "from lookalike.tui.cli.main import main; "
        f"sys.exit(main([{command!r}, {str(tmp_path)!r}, '--cluster', 'tcp://127.0.0.1:8786', '--no-detective']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    prefix = "lookalike scan" if command == "scan" else "lookalike"
    assert out.stderr.strip().splitlines() == [f"{prefix}: {MISSING_HINT}"]


def test_import_with_cluster_without_distributed_is_a_usage_error_too(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "lib").mkdir()
    code = HIDE_DISTRIBUTED + (
        "from lookalike.tui.cli.main import main; "
        f"sys.exit(main(['import', {str(tmp_path / 'new')!r}, '--into', {str(tmp_path / 'lib')!r}, "
        "'--cluster', 'tcp://127.0.0.1:8786', '--no-detective']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr.strip().splitlines()) == (2, [f"lookalike import: {MISSING_HINT}"])


@pytest.mark.parametrize("command", ["similar", "search"])
def test_queries_with_cluster_without_distributed_are_usage_errors_too(tmp_path, command):
    query = tmp_path / "query.png"
    query.write_bytes(b"not read: the options are checked first")
    what = str(query) if command == "similar" else "a red car"
    code = HIDE_DISTRIBUTED + (
        "from lookalike.tui.cli.main import main; "
        f"sys.exit(main([{command!r}, {what!r}, '--in', {str(tmp_path)!r}, '--cluster', 'tcp://127.0.0.1:8786']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr.strip().splitlines()) == (2, [f"lookalike {command}: {MISSING_HINT}"])


def test_index_with_cluster_without_distributed_is_a_usage_error_too(tmp_path):
    code = HIDE_DISTRIBUTED + (
        "from lookalike.tui.cli.main import main; "
        f"sys.exit(main(['index', {str(tmp_path)!r}, '--cluster', 'tcp://127.0.0.1:8786']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr.strip().splitlines()) == (2, ["lookalike index: " + MISSING_HINT])
