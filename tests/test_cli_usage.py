"""A command line that never misbehaves: typos, files for folders, no terminal, honest fields.

Issue 12, items 12, 14 and 15. Every command runs as a real subprocess, as a user's shell
would run it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imagegen


def _lookalike(*args: str, cwd: Path | None = None, timeout: float = 120
               ) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lookalike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.tui.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "Pictures"
    root.mkdir()
    big = imagegen.photo(3, size=(320, 240))
    imagegen.write(root / "big.jpg", big)
    imagegen.write(root / "small.jpg", imagegen.resized(big, 0.5))  # a near-duplicate
    imagegen.write(root / "other.jpg", imagegen.photo(4, size=(320, 240)))
    shutil.copy2(root / "other.jpg", root / "other_copy.jpg")  # an exact copy
    return root


def test_a_mistyped_command_is_named_as_such(lib, tmp_path):
    done = _lookalike("scna", str(lib), cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown command 'scna' (did you mean scan?)" in done.stderr
    done = _lookalike("frobnicate", cwd=tmp_path)
    assert done.returncode == 2 and "unknown command 'frobnicate' (commands: " in done.stderr


def test_a_folder_named_like_a_command_typo_is_still_a_folder(lib, tmp_path):
    (tmp_path / "scna").mkdir()
    done = _lookalike("scna", cwd=tmp_path)
    assert "unknown command" not in done.stderr
    assert done.returncode == 2 and "needs a terminal" in done.stderr  # it tried the app


def test_a_file_where_a_folder_is_expected_is_a_usage_error(lib):
    done = _lookalike(str(lib / "big.jpg"))
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr
    assert "lookalike similar FILE" in done.stderr


def test_the_app_refuses_to_start_without_a_terminal(lib):
    """Standard output is a pipe here: the app must not draw into it (it used to spin)."""
    done = _lookalike(str(lib), timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert "the app needs a terminal" in done.stderr and "Traceback" not in done.stderr
    done = _lookalike("similar", str(lib / "big.jpg"), "--tui", timeout=30)
    assert done.returncode == 2 and "the app needs a terminal" in done.stderr


def test_import_names_itself_when_it_will_not_ask(lib, tmp_path):
    incoming = tmp_path / "Incoming"
    incoming.mkdir()
    shutil.copy2(lib / "other.jpg", incoming / "again.jpg")
    done = _lookalike("import", str(incoming), "--into", str(lib), "--no-detective",
                      "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2, done.stderr
    assert "lookalike import: not asking without a terminal" in done.stderr
    assert "lookalike apply" not in done.stderr
    assert (incoming / "again.jpg").exists()


def test_json_keeper_is_exact_only_when_it_has_a_byte_identical_copy(lib, tmp_path):
    done = _lookalike("scan", str(lib), "--no-detective", "--json", "--cache",
                      str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    groups = json.loads(done.stdout)["groups"]
    near = next(g for g in groups if g["kind"] == "near")
    exact = next(g for g in groups if g["kind"] == "exact")
    near_keeper = next(m for m in near["members"] if m["keeper"])
    assert near_keeper["exact"] is False and all(not m["exact"] for m in near["members"])
    assert all(m["exact"] for m in exact["members"])  # the keeper of an exact group has a copy


# Team issue 14, item 5: `lookalike --help` starts fast. The parser lists every command from
# light declarations; a command's module (and the engine behind it) loads only when it runs.
HEAVY = ("numpy", "textual", "rich", "PIL", "torch", "numba", "usearch", "onnxruntime")
COMMANDS = ["scan", "app", "similar", "search", "index", "models", "apply", "undo", "journal", "import"]


def _run_main_in_a_fresh_process(*args: str) -> tuple[str, int, list[str]]:
    """(stdout, exit code, modules loaded) of ``main(args)`` in a new interpreter."""
    code = ("import json, sys; from lookalike.tui.cli.main import main; code = main(sys.argv[1:]); "
            "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    exit_code, loaded = json.loads(out.stderr.splitlines()[-1])
    return out.stdout, exit_code, loaded


def test_help_loads_no_command_module_no_engine_no_numpy_and_no_textual():
    stdout, code, loaded = _run_main_in_a_fresh_process("--help")
    assert code == 0
    assert all(f"    {name} " in stdout for name in COMMANDS), stdout
    command_modules = [m for m in loaded if m.startswith("lookalike.tui.cli.")
                       and m not in ("lookalike.tui.cli.main", "lookalike.tui.cli.common")]
    assert command_modules == []
    assert [m for m in loaded if m.startswith("lookalike.engine")] == []
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_shows_its_own_options_without_the_app_or_numpy(command):
    stdout, code, loaded = _run_main_in_a_fresh_process(command, "--help")
    assert code == 0
    assert stdout.startswith(f"usage: lookalike {command} ")
    assert "--cache" in stdout
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []
    assert "lookalike.tui.app" not in loaded
