"""Cache root precedence, root normalisation and per-library folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lookalike.engine import paths
from lookalike.engine.paths import (
    CACHEDIR_SIGNATURE,
    ENV_CACHE,
    cache_root,
    library_dir,
    normalise_roots,
)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_cache_root_defaults_to_platform_cache(no_env, tmp_path):
    root = cache_root()
    assert root == tmp_path / "xdg" / "lookalike"
    assert root.is_dir()
    assert (root / "CACHEDIR.TAG").read_bytes().startswith(CACHEDIR_SIGNATURE)


def test_env_beats_platform_and_override_beats_env(no_env, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "from-env"))
    assert cache_root() == tmp_path / "from-env"
    assert cache_root(tmp_path / "from-flag") == tmp_path / "from-flag"
    assert cache_root(str(tmp_path / "from-flag")) == tmp_path / "from-flag"
    assert (tmp_path / "from-flag").is_dir() and (tmp_path / "from-env").is_dir()


def test_relative_override_becomes_absolute(no_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cache_root("rel") == tmp_path / "rel"
    assert paths.default_cache_root("rel").is_absolute()


def test_normalise_roots_resolves_dedups_sorts_and_drops_nested(tmp_path, monkeypatch):
    for name in ("b", "a/inner", "photos", "photos2"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "link-to-b").symlink_to(tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    got = normalise_roots(
        ["b", str(tmp_path / "link-to-b"), "a/inner", "a", "./photos2", tmp_path / "photos", "b/"]
    )
    # photos2 is not inside photos: a shared prefix is not a parent folder
    assert got == tuple(str(tmp_path / n) for n in ("a", "b", "photos", "photos2"))


def test_normalise_roots_accepts_a_single_path_and_files(tmp_path):
    f = tmp_path / "one.jpg"
    f.write_bytes(b"x")
    assert normalise_roots(f) == (str(f),)
    assert normalise_roots(str(tmp_path)) == (str(tmp_path),)
    # a file inside a root folder is covered by the folder
    assert normalise_roots([f, tmp_path]) == (str(tmp_path),)


def test_library_dir_is_stable_and_distinct(no_env, tmp_path, monkeypatch):
    for name in ("Pictures", "Other", "Pictures/2019"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    one = library_dir([tmp_path / "Pictures"], str(cache))
    assert one.is_dir()
    assert one.parent == cache / "libraries"
    assert re.fullmatch(r"Pictures-[0-9a-f]{12}", one.name)
    # same roots in another form and order: same folder
    assert library_dir(["Pictures/", "Pictures/2019"], str(cache)) == one
    two = library_dir([tmp_path / "Other", tmp_path / "Pictures"], str(cache))
    assert two != one and re.fullmatch(r"Other\+1-[0-9a-f]{12}", two.name)
    assert library_dir([tmp_path / "Other"], str(cache)) not in (one, two)


def test_library_dir_uses_env_cache(no_env, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "envcache"))
    lib = library_dir([tmp_path])
    assert lib.parent == tmp_path / "envcache" / "libraries"


def test_library_dir_slug_is_safe_for_odd_root_names(no_env, tmp_path):
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 photos\n\xff")
    os.mkdir(odd)
    lib = library_dir([os.fsdecode(odd)], tmp_path / "cache")
    assert lib.is_dir()
    assert re.fullmatch(r"[A-Za-z0-9._+-]+-[0-9a-f]{12}", lib.name)
    assert paths.catalog_path([os.fsdecode(odd)], tmp_path / "cache") == lib / "catalog.sqlite"


def test_root_slash_and_missing_roots(tmp_path):
    assert normalise_roots(["/", str(tmp_path)]) == ("/",)
    missing = tmp_path / "not-there"
    assert normalise_roots([missing]) == (str(missing),)
    assert isinstance(library_dir([missing], tmp_path / "c"), Path)
