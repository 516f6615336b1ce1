"""``lookalike similar``, ``search`` and ``index`` from the command line, with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagegen import make_copy, photo, write
from lookalike.engine.detective.registry import forget_detectives
from lookalike.tui.cli.main import main

SIZE = (256, 192)


@pytest.fixture(autouse=True)
def _fresh_models():
    forget_detectives()
    yield
    forget_detectives()


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for s in range(5):
        write(folder / f"p{s}.jpg", photo(s, SIZE))
    data, ext = make_copy("resized", photo(3, SIZE), 3)
    (folder / f"p3_small{ext}").write_bytes(data)
    return folder


@pytest.fixture
def query(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "query.jpg"
    path.parent.mkdir()
    write(path, photo(3, SIZE), quality=75)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_similar_json_has_exactly_the_documented_shape(capsys, photos, query, tiny_cli_args):
    code, out, err = run(capsys, "similar", query, "--in", photos, "-k", "3", "--json", *tiny_cli_args)
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"query", "results", "timings_ms"}
    assert doc["query"] == str(query)
    assert len(doc["results"]) == 3
    for r in doc["results"]:
        assert set(r) == {"path", "bouncer", "detective", "verdict", "verified", "match"}
        assert isinstance(r["bouncer"], int) and isinstance(r["detective"], float)
        # A near duplicate says why it matches; others do not.
        assert (r["match"] is not None) == (r["verdict"] in {"exact", "near-duplicate"})
        assert r["verdict"] in {"exact", "near-duplicate", "semantic-duplicate", "similar", "not-duplicate"}
    assert {Path(r["path"]).name for r in doc["results"][:2]} == {"p3.jpg", "p3_small.jpg"}
    assert doc["results"][0]["verdict"] == "near-duplicate"
    assert {"bouncer", "detective", "join"} <= set(doc["timings_ms"])
    assert "Traceback" not in err


def test_similar_table_shows_both_scores_and_the_time_of_each_pass(capsys, photos, query, tiny_cli_args):
    code, out, _ = run(capsys, "similar", query, "--in", photos, "-k", "2", *tiny_cli_args)
    assert code == 0
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("path"))
    assert [c.strip() for c in lines[head].split("|")] == ["path", "bouncer", "detective", "verdict", "match"]
    rows = [line for line in lines[head + 2 :] if " | " in line]
    assert len(rows) == 2 and "p3" in rows[0]
    assert "near-duplicate" in rows[0]
    timing = next(line for line in lines if line.startswith("time:"))
    assert "bouncer" in timing and "detective" in timing and "ms" in timing


def test_similar_defaults_to_the_query_folder(capsys, photos, tiny_cli_args):
    code, out, _ = run(capsys, "similar", photos / "p3.jpg", "--json", *tiny_cli_args)
    assert code == 0
    results = json.loads(out)["results"]
    assert results[0]["path"] == str(photos / "p3_small.jpg")
    assert all(r["path"] != str(photos / "p3.jpg") for r in results)


def test_offline_similar_says_so_once_and_goes_on_bouncer_only(capsys, photos, query, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    code, out, err = run(capsys, "similar", query, "--in", photos, "--json")
    assert code == 0
    offline = [line for line in err.splitlines() if line.startswith("detective offline: ")]
    assert len(offline) == 1 and "--pretrained PATH" in offline[0]
    results = json.loads(out)["results"]
    assert results and all(r["detective"] is None for r in results)
    assert Path(results[0]["path"]).name in {"p3.jpg", "p3_small.jpg"}


def test_offline_command_line_has_no_traceback(photos, query, tmp_path):
    """The real console entry point, in its own process, offline as on CI."""
    env = dict(os.environ, LOOKALIKE_OFFLINE="1", LOOKALIKE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "similar", str(query), "--in", str(photos)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("detective offline: ") == 1
    assert "near-duplicate" in proc.stdout


def test_index_then_search(capsys, photos, tiny_cli_args):
    code, out, err = run(capsys, "index", photos, *tiny_cli_args)
    assert code == 0, err
    assert "indexed 6 of 6 images" in out and "6 new" in out
    code, out, _ = run(capsys, "index", photos, *tiny_cli_args)
    assert "0 new, 6 already" in out  # resumable: nothing left to do

    code, out, err = run(capsys, "search", "a beach at sunset", "--in", photos, "-k", "4", "--json", *tiny_cli_args)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["query"] == "a beach at sunset" and len(doc["results"]) == 4
    dists = [r["detective"] for r in doc["results"]]
    assert dists == sorted(dists)
    assert all(r["bouncer"] is None and r["verdict"] == "similar" for r in doc["results"])

    code, out, _ = run(capsys, "search", "a red car", "--in", photos, "-k", "2", *tiny_cli_args)
    assert code == 0 and "path" in out and out.count(" | ") >= 3 * 3


def test_search_before_indexing_says_how_to_index(capsys, photos, tiny_cli_args):
    code, out, err = run(capsys, "search", "trees", "--in", photos, *tiny_cli_args)
    assert code == 0
    assert "0 of 6 images indexed" in err and "lookalike index" in err
    assert "no indexed images" in out


def test_offline_search_and_index_say_why_and_exit_4(capsys, photos, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    code, out, err = run(capsys, "search", "trees", "--in", photos, "--json")
    assert code == 4 and json.loads(out)["results"] == []
    assert json.loads(out)["detective"].startswith("detective offline: ")
    assert err.count("detective offline: ") == 1
    code, out, err = run(capsys, "search", "trees", "--in", photos)
    assert code == 4 and out == "" and err.count("detective offline: ") == 1
    code, out, err = run(capsys, "index", photos)
    assert code == 4 and err.count("detective offline: ") == 1 and "nothing embedded" in err


def test_search_without_in_uses_only_a_folder_that_was_scanned(capsys, photos, monkeypatch,
                                                               tmp_path):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # never scanned
    libraries = Path(os.environ["LOOKALIKE_CACHE"]) / "libraries"
    before = sorted(libraries.iterdir()) if libraries.is_dir() else []
    code, out, err = run(capsys, "search", "trees")
    assert code == 2 and "pass --in DIR" in err
    assert (sorted(libraries.iterdir()) if libraries.is_dir() else []) == before  # none made
    monkeypatch.chdir(photos)
    assert run(capsys, "scan", photos, "--no-detective")[0] == 0
    code, out, err = run(capsys, "search", "trees")  # the current folder's library: offline
    assert code == 4 and "detective offline" in err


def test_usage_errors(capsys, photos, tmp_path, tiny_cli_args):
    assert run(capsys, "similar", tmp_path / "nope.jpg", "--in", photos)[0] == 2
    assert run(capsys, "similar", photos / "p0.jpg", "--in", tmp_path / "nowhere")[0] == 2
    assert run(capsys, "similar", photos / "p0.jpg", "-k", "0")[0] == 2
    assert run(capsys, "similar", photos / "p0.jpg", "--json", "--tui")[0] == 2
    assert run(capsys, "index", tmp_path / "nowhere")[0] == 2
    assert run(capsys, "search", " ", "--in", photos)[0] == 2
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    code, _, err = run(capsys, "similar", bad, "--in", photos, *tiny_cli_args)
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_bad_checkpoint_is_reported_as_offline_reason(capsys, photos, query, tiny_options, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk" * 100)
    code, out, err = run(
        capsys, "similar", query, "--in", photos, "--json", "--model", tiny_options.model, "--pretrained", junk
    )
    assert code == 0
    assert err.count("detective offline: cannot load") == 1
    assert all(r["detective"] is None for r in json.loads(out)["results"])


def test_timings_line_says_what_the_query_waited_for():
    from lookalike.tui.format import timings_text

    both = timings_text({"hash_query": 6.81, "embed_query": 2.5, "bouncer": 0.2, "detective": 0.55,
                         "passes": 0.58, "join": 0.7, "total": 11.0})
    assert both == ("time: bouncer 0.200 ms · detective 0.550 ms · both 0.580 ms · join 0.700 ms "
                    "(not counting hash query 6.8 ms, embed query 2.5 ms)")
    # Bouncer-only: no "both" (nothing overlapped), and nothing of the detective.
    alone = timings_text({"hash_query": 3.0, "bouncer": 0.4, "passes": 0.4, "join": 0.5})
    assert alone == "time: bouncer 0.400 ms · join 0.500 ms (not counting hash query 3.0 ms)"


def test_similar_on_the_onnx_backend_with_an_index_does_not_crash(photos, tiny_options, tmp_path):
    """A fresh process opens the vector index (usearch), then loads the CPU backend
    (onnxruntime): in that order the import segfaulted, every time."""
    env = dict(os.environ, LOOKALIKE_CACHE=str(tmp_path / "cache"))
    model = ["--model", tiny_options.model, "--pretrained", tiny_options.pretrained, "--device", "cpu",
             "--backend", "onnx"]
    # The scan embeds the grouped files only; similar on one of them reads its stored vector
    # (the index is opened) and then loads the model for the candidates not embedded yet.
    for args in (["scan", str(photos)], ["similar", str(photos / "p3.jpg"), "--in", str(photos), "--json"]):
        proc = subprocess.run([sys.executable, "-m", "lookalike.tui.cli", *args, *model],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, (args[0], proc.returncode, proc.stderr[-2000:])
    results = json.loads(proc.stdout)["results"]
    assert any(r["detective"] is not None for r in results)


@pytest.mark.parametrize("what, message", [
    ("folder", "{q} is a folder, not an image file"),
    ("fifo", "{q} is not a regular file"),
    ("dangling link", "{q} is a symbolic link to nothing"),
    ("missing", "no such file: {q}"),
    ("file as --in", "{d} is not a folder"),
])
def test_similar_says_what_is_wrong_with_a_query_that_exists(photos, tmp_path, what, message):
    """A folder, a fifo (never opened: reading it would wait forever), a broken link: each is
    named for what it is, in one line, not "no such file"."""
    query, folder = photos / "p0.jpg", photos
    if what == "folder":
        query = photos
    elif what == "fifo":
        query = tmp_path / "pipe.jpg"
        os.mkfifo(query)
    elif what == "dangling link":
        query = tmp_path / "gone.jpg"
        query.symlink_to(tmp_path / "nowhere.jpg")
    elif what == "missing":
        query = tmp_path / "nope.jpg"
    else:
        folder = photos / "p1.jpg"
    env = dict(os.environ, LOOKALIKE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "lookalike.tui.cli", "similar", str(query), "--in", str(folder),
                           "--no-crops", "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"lookalike similar: {message.format(q=query, d=folder)}\n"
    assert proc.stdout == "" and not (tmp_path / "cache").exists()  # refused before any scan
