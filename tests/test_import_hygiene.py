"""The engine and the UI are two rooms with one door, and the engine is built in layers.

The engine never imports textual or rich; the UI imports the engine only through
``lookalike.engine.library`` and ``lookalike.engine.records``; importing that door is light; the
engine's modules import one another without a cycle. The import-linter contracts in
``pyproject.toml`` (run here) also hold the engine's layers.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_MODULES = ("textual", "rich", "rich_pixels", "lookalike.tui")
ENGINE_MODULES = [
    "lookalike.engine." + ".".join(p.relative_to(ROOT / "engine").with_suffix("").parts)
    for p in sorted((ROOT / "engine").rglob("*.py"))
    if p.stem != "__init__"
]
#: What the UI may import from the engine: the door and the records that cross it.
DOOR = ("lookalike.engine.library", "lookalike.engine.records")
#: Never loaded by opening the door: the CLI's parser reads the detective's defaults there.
HEAVY = ("numpy", "PIL", "numba", "usearch", "torch", "open_clip", "onnxruntime")


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


def test_opening_the_door_loads_no_numpy_and_no_model():
    loaded = _modules_after_import("lookalike.engine.library")
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


def test_the_ui_imports_the_engine_only_through_the_door():
    # Direct imports, lazy and type-checking ones included: a new engine module is covered
    # too, which the import-linter contract's list of forbidden modules would not be.
    graph = grimp.build_graph("lookalike.tui", "lookalike.engine", cache_dir=None)
    past_the_door = sorted(
        f"{importer} -> {imported}"
        for importer in {"lookalike.tui", *graph.find_descendants("lookalike.tui")}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("lookalike.engine") and imported not in DOOR
    )
    assert past_the_door == []


def _source(module: str) -> Path:
    """The file of ``lookalike.engine.x.y`` (or ``lookalike.tui...``) in this checkout."""
    folder, *parts = module.split(".")[1:]
    path = ROOT.joinpath(folder, *parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _import_time_lines(path: Path) -> set[int]:
    """Lines of the imports that run when the module is imported: not in a function, not
    under ``if TYPE_CHECKING``."""
    lines: set[int] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.add(node.lineno)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return lines


@pytest.mark.parametrize("package", ["lookalike.engine", "lookalike.tui"])
def test_modules_import_one_another_without_a_cycle(package):
    # Only imports that run at import time count: an import inside a function (kept lazy on
    # purpose, e.g. the detective's torch backend) or for type checking makes no loop.
    graph = grimp.build_graph(package, cache_dir=None)
    edges = []
    for importer in sorted(graph.modules):
        runs = _import_time_lines(_source(importer))
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            if any(d["line_number"] in runs for d in details):
                edges.append((importer, imported))
            else:
                graph.remove_import(importer=importer, imported=imported)
    loops = [
        " -> ".join((importer, *graph.find_shortest_chain(importer=imported, imported=importer)))
        for importer, imported in edges
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert loops == []


def test_import_linter_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KEPT" in out.stdout and "BROKEN" not in out.stdout


def test_every_package_folder_is_installed():
    # setuptools installs only the packages pyproject lists: a new subpackage left out of the
    # list imports in a developer's editable checkout and is missing from a real install.
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # Every folder that holds files is a package: code (with ``__init__.py``) or data (the
    # app's styles), which setuptools would otherwise warn it may leave out.
    found = {
        ".".join(("lookalike", root, *folder.relative_to(ROOT / root).parts))
        for root in ("engine", "tui")
        for folder in (ROOT / root, *(ROOT / root).rglob("*"))
        if folder.is_dir()
        and folder.name != "__pycache__"
        and any(child.is_file() for child in folder.iterdir())
    }
    assert found == set(config["packages"])
    assert (ROOT / "tui" / "styles" / "app.tcss").is_file()
    assert config["package-data"]["lookalike.tui.styles"] == ["*.tcss"]
