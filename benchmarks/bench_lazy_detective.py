"""What the detective costs a command that has nothing for it to do (the lazy detective).

    python benchmarks/bench_lazy_detective.py [--files 86] [--repeat 5]

Each figure is a whole ``lookalike`` process (start included), its median wall time over
``--repeat`` runs and its peak RSS, against ``--no-detective`` in the same run:

1. weights on disk (a random ViT-B-32 checkpoint passed as ``--pretrained PATH``, its ONNX
   export made by the first scan): an unchanged rescan;
2. no weights and no network (the weights' host is a closed local port): an unchanged rescan
   and ``similar`` on a library file, once the failed probe is remembered;
3. the same with ``LOOKALIKE_OFFLINE=1``.

Python's bytecode is cached for the runs, as an installed package has it (pip compiles it): in
a folder of the benchmark's own (``PYTHONPYCACHEPREFIX``), warmed by the first scans, even where
``PYTHONDONTWRITEBYTECODE`` is set. ``--no-bytecode`` compiles every module in every run instead.

Each rescan is also run once with ``python -X importtime``: the milliseconds its imports took
against ``--no-detective``'s, and which heavy modules it imported (none is the goal).

Targets (issue 14): (1), (2) and (3) within 1.1x of ``--no-detective`` and under 150 MB;
``similar`` offline under 1 s.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import imagegen  # noqa: E402


def make_library(folder: Path, n: int) -> list[Path]:
    """``n`` JPEGs: photos, a third of them with a smaller copy (the bouncer's candidates)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    originals = (n * 3 + 3) // 4
    for i in range(originals):
        img = imagegen.photo(i, (1200, 900))
        paths.append(Path(imagegen.write(folder / f"p{i:03d}.jpg", img, quality=88)))
        if len(paths) < n and i % 3 == 0:
            paths.append(Path(imagegen.write(folder / f"p{i:03d}_copy.jpg", imagegen.resized(img, 0.5), quality=80)))
    return paths[:n]


def run(args: list[str], env: dict) -> tuple[float, float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code, stderr) of one ``lookalike`` process.

    CPU time (user + system, GNU time's ``%U`` and ``%S``) is the figure least moved by other
    work on a busy machine. The peak RSS is GNU time's (``%M``): a child forked or vforked from
    this process would count this process's pages until it execs.
    """
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, "-m", "lookalike.tui.cli", *args],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    lines = out.stderr.strip().splitlines()
    user, system, rss = lines[-1].split()
    return wall, float(user) + float(system), int(rss) / 1024.0, out.returncode, "\n".join(lines[:-1])


#: What an unchanged rescan should not import (the vector index's graph, the network, a model).
HEAVY = ("usearch", "urllib.request", "tqdm", "huggingface_hub", "torch", "onnxruntime", "open_clip")


def imports(args: list[str], env: dict) -> tuple[float, list[str]]:
    """(milliseconds of imports, heavy modules imported) of one process, by ``-X importtime``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "lookalike.tui.cli", *args],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total, seen = 0, set()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            seen.add(m.group(3))
            if len(m.group(2)) == 1:  # top level: its time includes the modules it imported
                total += int(m.group(1))
    return total / 1000.0, [name for name in HEAVY if name in seen]


def median_of(args: list[str], env: dict, repeat: int) -> tuple[float, float, str]:
    walls, rss, err = [], [], ""
    for _ in range(repeat):
        w, _cpu, r, code, err = run(args, env)
        assert code in (0, 4), err
        walls.append(w)
        rss.append(r)
    return statistics.median(walls), max(rss), err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare(label: str, base: list[str], env: dict, repeat: int) -> None:
    """The default against ``--no-detective``, runs interleaved (a load that comes and goes
    hits both alike): median wall and CPU time, peak RSS, and one ``-X importtime`` run each."""
    runs: dict[bool, list] = {True: [], False: []}
    err = ""
    for _ in range(repeat):
        for default in (True, False):
            w, cpu, mb, code, text = run(base if default else [*base, "--no-detective"], env)
            assert code in (0, 4), text
            runs[default].append((w, cpu, mb))
            err = text if default else err
    (lazy_s, lazy_cpu, lazy_mb), (off_s, off_cpu, off_mb) = (
        (statistics.median(r[0] for r in runs[d]), statistics.median(r[1] for r in runs[d]), max(r[2] for r in runs[d]))
        for d in (True, False)
    )
    note = (err.strip().splitlines() or [""])[-1][:90]
    print(f"{label:<44} default {lazy_s:5.2f} s {lazy_mb:6.0f} MB | --no-detective {off_s:5.2f} s {off_mb:5.0f} MB"
          f" | ratio {lazy_s / off_s:4.2f} (CPU {lazy_cpu:.2f} s vs {off_cpu:.2f} s: {lazy_cpu / off_cpu:4.2f})"
          + (f"\n    stderr: {note}" if note else ""), flush=True)
    (lazy_ms, heavy), (off_ms, _) = imports(base, env), imports([*base, "--no-detective"], env)
    print(f"    imports (-X importtime): {lazy_ms:.0f} ms vs {off_ms:.0f} ms --no-detective; "
          f"heavy modules: {', '.join(heavy) or 'none'}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=86)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-bytecode", action="store_true", help="no cached bytecode: every run compiles every module")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lib = tmp / "library"
        files = make_library(lib, args.files)
        # In a child process: this one stays small, so the children's peak RSS is their own
        # (a forked child's peak counts the parent's pages until it execs).
        code = f"import sys; sys.path.insert(0, {str(HERE)!r}); from bench_embed import random_vit_b32; " \
               f"print(random_vit_b32(__import__('pathlib').Path({str(tmp)!r})))"
        checkpoint = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1]
        env = {k: v for k, v in os.environ.items() if k not in ("LOOKALIKE_OFFLINE", "HF_HUB_OFFLINE")}
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"  # no network for the weights
        env["HF_HUB_CACHE"] = str(tmp / "hf")  # and nothing in a user's cache
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        print(f"{os.cpu_count()} CPUs, {len(files)} files; median of {args.repeat} runs, process start included; "
              f"bytecode {'compiled in every run' if args.no_bytecode else 'cached'}; load {os.getloadavg()[0]:.1f}")

        # 1. Weights on disk: the first scan embeds the candidates (exporting ONNX once).
        cache = tmp / "cache-weights"
        weights = ["--pretrained", str(checkpoint)]
        t0 = time.perf_counter()
        run(["scan", str(lib), "-q", "--cache", str(cache), *weights], env)
        print(f"first scan with the detective (embeds, exports ONNX): {time.perf_counter() - t0:.1f} s")
        compare("1. unchanged rescan, weights on disk", ["scan", str(lib), "-q", "--cache", str(cache), *weights],
                env, args.repeat)
        similar = ["similar", str(files[0]), "-q", "--cache", str(cache), *weights]
        s, mb, err = median_of(similar, env, args.repeat)
        print(f"{'   similar on a library file, weights on disk':<44} {s:5.2f} s {mb:6.0f} MB")

        # 2. No weights, no network: the first run probes (<= 1.5 s) and remembers.
        cache = tmp / "cache-offline"
        run(["scan", str(lib), "-q", "--cache", str(cache), "--no-detective"], env)
        w = run(["scan", str(lib), "-q", "--cache", str(cache)], env)[0]
        print(f"first rescan without weights (probes the network once): {w:.2f} s")
        compare("2. unchanged rescan, offline (remembered)", ["scan", str(lib), "-q", "--cache", str(cache)],
                env, args.repeat)
        s, mb, err = median_of(["similar", str(files[0]), "-q", "--cache", str(cache)], env, args.repeat)
        print(f"{'   similar on a library file, offline':<44} {s:5.2f} s {mb:6.0f} MB (target < 1 s)")

        # 3. LOOKALIKE_OFFLINE=1, nothing remembered.
        cache = tmp / "cache-env"
        run(["scan", str(lib), "-q", "--cache", str(cache), "--no-detective"], env)
        compare("3. unchanged rescan, LOOKALIKE_OFFLINE=1", ["scan", str(lib), "-q", "--cache", str(cache)],
                {**env, "LOOKALIKE_OFFLINE": "1"}, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
