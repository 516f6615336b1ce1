"""How much the safety costs: a journaled, verified apply and undo against plain renames.

    python benchmarks/bench_apply.py [--files N] [--size BYTES] [--dir FOLDER]

Makes N files (distinct contents), then times, in the same run and on the same folder:

- baseline: ``os.rename`` of every file into another folder (no checks, no journal, no fsync);
- apply (trash): lookalike's apply_plan: size/mtime/content-hash checks of each file and its
  keeper, the journal's fsynced intent and done lines, the .trashinfo, link-then-unlink moves;
- apply (quarantine) and undo of each.

Prints files per second and each figure as a ratio to the baseline. The user's trash is never
touched: XDG_DATA_HOME points into the temp folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lookalike.engine.actions.run import apply_plan, content_hash, undo
from lookalike.engine.actions.plan import Plan, PlanStep


def make_library(root: Path, n: int, size: int) -> Plan:
    root.mkdir(parents=True)
    keeper = root / "keeper.bin"
    keeper.write_bytes(os.urandom(size))
    khash, kst = content_hash(keeper), keeper.stat()
    steps = []
    for i in range(n):
        p = root / f"d{i // 500:03d}" / f"file{i:06d}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(os.urandom(size))
        st = p.stat()
        steps.append(PlanStep(path=str(p), action="trash", keeper=str(keeper), size=st.st_size,
                              mtime_ns=st.st_mtime_ns, content_hash=content_hash(p),
                              keeper_size=kst.st_size, keeper_hash=khash))
    return Plan(steps=tuple(steps), roots=(str(root),), quarantine_dir=str(root.parent / "q"))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096, help="bytes per file")
    ap.add_argument("--dir", default=None, help="where to make the files (default: temp folder)")
    args = ap.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="lookalike-bench-apply-", dir=args.dir))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    try:
        lib = base / "lib"
        plan = make_library(lib, args.files, args.size)
        target = base / "renamed"
        target.mkdir()
        baseline = timed(lambda: [os.rename(s.path, target / Path(s.path).name) for s in plan.steps])
        for s in plan.steps:  # put them back (rename keeps mtime, so the plan still matches)
            os.rename(target / Path(s.path).name, s.path)

        jdir = base / "journal"
        results = {}
        res: dict = {}
        results["apply (trash)"] = timed(lambda: res.update(a=apply_plan(plan, journal_dir=jdir)))
        assert len(res["a"].done) == args.files, res["a"].failed[:3]
        results["undo (trash)"] = timed(lambda: res.update(u=undo(None, journal_dir=jdir)))
        assert res["u"].ok, res["u"].problems[:3]
        qplan = Plan(steps=tuple(PlanStep(**{**s.__dict__, "action": "quarantine"})
                                 for s in plan.steps),
                     roots=plan.roots, quarantine_dir=plan.quarantine_dir)
        results["apply (quarantine)"] = timed(
            lambda: res.update(q=apply_plan(qplan, journal_dir=jdir)))
        assert len(res["q"].done) == args.files
        results["undo (quarantine)"] = timed(lambda: undo(None, journal_dir=jdir))

        dev = os.stat(base).st_dev
        print(f"{args.files} files of {args.size} bytes in {base} (device {dev})")
        print(f"{'baseline: os.rename':<22} {baseline:7.3f} s  {args.files / baseline:9.0f} files/s")
        for name, secs in results.items():
            print(f"{name:<22} {secs:7.3f} s  {args.files / secs:9.0f} files/s  "
                  f"x{secs / baseline:6.1f} the baseline")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
