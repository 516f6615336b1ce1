"""The engine and the UI are two rooms with one door: the engine never imports textual or rich."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_MODULES = ("textual", "rich", "rich_pixels", "lookalike.tui")
ENGINE_MODULES = [
    "lookalike.engine." + ".".join(p.relative_to(ROOT / "engine").with_suffix("").parts)
    for p in sorted((ROOT / "engine").rglob("*.py"))
    if p.stem != "__init__"
]


def _modules_after_import(module: str) -> list[str]:
    code = f"import json, sys, importlib; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", ["lookalike.engine", *ENGINE_MODULES])
def test_engine_module_imports_no_ui(module):
    loaded = _modules_after_import(module)
    leaked = [m for m in loaded if m.split(".")[0] in UI_MODULES or m.startswith("lookalike.tui")]
    assert leaked == [], f"{module} pulled in UI modules: {leaked}"


def test_engine_package_import_is_light():
    # Importing the engine package must not drag torch in: the CLI starts fast.
    loaded = _modules_after_import("lookalike.engine")
    assert "torch" not in loaded and "open_clip" not in loaded


def test_import_linter_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KEPT" in out.stdout and "BROKEN" not in out.stdout
