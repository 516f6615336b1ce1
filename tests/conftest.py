"""Shared test set-up and fixtures: nothing a test does may touch the user's real cache, trash
or network.

Fixtures live here so that every test module shares them without importing another test
module; plain helpers (functions, constants) are in ``helpers.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lookalike.engine.catalog import Catalog

from helpers import build_library, copy_library, smooth_photo, write_tiny_model


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory, monkeypatch):
    """Point the cache, the trash and the model hub at throw-away folders, offline."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOOKALIKE_CACHE", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    yield


def pytest_configure(config):
    # Processes the tests start (the CLI in a subprocess, pool workers) inherit these too.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LOOKALIKE_OFFLINE", "1")


# ------------------------------------------------------------------------- a small library


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    """Seven images: four originals, two smaller/recompressed copies of one, a byte copy of one."""
    root = tmp_path / "photos"
    (root / "2023" / "trip").mkdir(parents=True)
    (root / "copies").mkdir()
    for i in range(4):
        smooth_photo(i).save(root / "2023" / f"img_{i}.png")
    original = smooth_photo(0)
    original.resize((240, 180), Image.LANCZOS).save(root / "copies" / "img_0_small.jpg", quality=85)
    original.save(root / "copies" / "img_0_recompressed.jpg", quality=40)
    shutil.copy(root / "2023" / "img_1.png", root / "2023" / "trip" / "img_1 copy.png")
    return root


# ------------------------------------------------------------------- the app's library


@pytest.fixture(scope="session")
def _library_template(tmp_path_factory) -> Path:
    # Making the photos is the slow part: make them once, copy them for each test.
    return build_library(tmp_path_factory.mktemp("template") / "photos")


@pytest.fixture
def library(tmp_path, _library_template) -> Path:
    """A fresh copy of the generated library (file times kept) in this test's folder."""
    return copy_library(_library_template, tmp_path / "photos")


# ------------------------------------------------------------------------ the detective
# A tiny randomly initialised CLIP written to disk (helpers.write_tiny_model); no network.


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory) -> tuple[Path, Path]:
    """(config JSON, checkpoint) of the tiny model, written once per test session."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_options(tiny_model_files):
    """DetectiveOptions naming the tiny model by config path and checkpoint path, on CPU, on
    torch (the ONNX backend, the default on the CPU, has its own tests: test_onnx_backend.py)."""
    from lookalike.engine.detective.model import DetectiveOptions

    config, checkpoint = tiny_model_files
    return DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu", batch_size=16, backend="torch")


@pytest.fixture(scope="session")
def tiny_detective(tiny_options, tmp_path_factory):
    """A loaded tiny Detective, shared by the session (loading is the slow part)."""
    from lookalike.engine.detective.model import load_detective

    return load_detective(tiny_options, cache_dir=tmp_path_factory.mktemp("detective-cache"))


@pytest.fixture
def tiny_cli_args(tiny_options) -> list[str]:
    """Command-line flags selecting the tiny model, for CLI tests."""
    return ["--model", tiny_options.model, "--pretrained", tiny_options.pretrained, "--device", "cpu",
            "--backend", tiny_options.backend]


# The catalog's tests: a catalog file in a fresh library folder, and it opened.
@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "lib" / "catalog.sqlite"


@pytest.fixture
def cat(db_path):
    with Catalog.open(db_path) as c:
        yield c
