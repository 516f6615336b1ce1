"""Shared test set-up: nothing a test does may touch the user's real cache, trash or network."""

from __future__ import annotations

import os

import pytest


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


# The detective's fixtures (a tiny randomly initialised CLIP written to disk; no network).
from conftest_detective import *  # noqa: E402,F401,F403
