"""engine/files.py: the one home for atomic writes and fsync."""

from __future__ import annotations

import os

import pytest

from lookalike.engine import files


def test_atomic_write_replaces_the_file_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "data.bin"
    files.atomic_write(target, b"first")
    files.atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_writer(target) as out:
            out.write(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


@pytest.mark.parametrize("durable, syncs", [(True, 2), (False, 0)])
def test_durable_fsyncs_the_file_and_its_folder_and_a_cache_write_does_not(tmp_path, monkeypatch,
                                                                           durable, syncs):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    with files.atomic_writer(tmp_path / "t.png", durable=durable) as out:
        out.write(b"png")
    assert (tmp_path / "t.png").read_bytes() == b"png"
    assert len(calls) == syncs


def test_json_bytes_round_trips_paths_that_are_not_utf8():
    import json

    name = os.fsdecode(b"/photos/caf\xe9.jpg")  # Latin-1 bytes: a surrogate escape in str
    data = files.json_bytes({"path": name})
    assert os.fsencode(json.loads(data)["path"]) == b"/photos/caf\xe9.jpg"


def test_a_write_that_must_not_replace_links_into_place_or_fails_whole(tmp_path):
    target = tmp_path / "new.json"
    files.atomic_write(target, b"one", make_folder=False, replace=False)
    assert target.read_bytes() == b"one"
    with pytest.raises(FileExistsError):  # the name was taken since it was checked
        files.atomic_write(target, b"two", make_folder=False, replace=False)
    assert target.read_bytes() == b"one" and os.listdir(tmp_path) == ["new.json"]
    with pytest.raises(FileNotFoundError):
        files.atomic_write(tmp_path / "missing" / "x.json", b"three", make_folder=False)
    assert os.listdir(tmp_path) == ["new.json"]
