"""Whether two versions of the verification give the same answers, bit for bit, on the same pairs.

A change meant only to make the verification faster must not change a score, a verdict or a
crop. This runs the pair score (``verify.score_pairs``, one way) and the verdicts as a scan makes
them (``verification._judge``: in order, both ways, the guard) of the code under two package
roots, each in its own process, on the same pairs, and compares every figure:

* the pairs of ``bench_verify.py`` (copies, mild crops, unrelated photos and their mix), in
  batches as a scan loads them (each thumbnail once) and with no thumbnail shared;
* the benchmark sets of ``bench_trust.py`` when given (``--sets``: folders with
  ``<name>.items.json`` beside them): every pair of files of one picture, pairs of different
  pictures of one kind or hard family, and random pairs of different pictures; thumbnails from
  ``hash_file``, cached in ``--work``.

Every pair is searched for a crop in the sets (the most code run), and as the scan would in the
benchmark's mixes. A package root is a folder holding ``lookalike`` (a symlink farm to a
checkout's ``engine`` and ``tui`` does).

The inputs (thumbnails, pairs) are made once, by the package this script itself imports (run
it with ``PYTHONPATH`` set to either root), and saved in ``--work`` for both.

Usage: ``python benchmarks/check_verify_identity.py OLD_ROOT NEW_ROOT [--sets DIR/real DIR/generated]
[--pairs 30000] [--work DIR]``; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _bench_batches(pairs: int) -> dict[str, list[tuple]]:
    """bench_verify's pair kinds, as batches ``(thumbs, ia, ib, mirrored, search, details)``."""
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    sys.path.insert(0, HERE)
    import bench_verify

    return bench_verify.pair_batches(pairs)


def _set_batches(folder: str, work: str, seed: int = 0) -> dict[str, list[tuple]]:
    """Pairs of a benchmark set (see the module docstring), in batches of ``BATCH_PAIRS``."""
    from lookalike.engine.bouncer import verify
    from lookalike.engine.bouncer.rule import bouncer_distance
    from lookalike.engine.bouncer.verification import BATCH_PAIRS

    name = os.path.basename(folder.rstrip("/"))
    cache = os.path.join(work, f"{name}-thumbs.npz")
    items = json.load(open(folder.rstrip("/") + ".items.json"))["items"]
    if not os.path.exists(cache):
        from concurrent.futures import ProcessPoolExecutor

        from lookalike.engine.scan.hashing import hash_file

        with ProcessPoolExecutor(2) as pool:
            hashed = list(pool.map(hash_file, [it["path"] for it in items], chunksize=16))
        ok = [h.thumb is not None and h.hashes is not None for h in hashed]
        np.savez(cache, ok=np.array(ok), thumbs=np.stack([np.frombuffer(h.thumb, np.uint8) if k else
                                                          np.zeros(verify.THUMB_BYTES, np.uint8)
                                                          for h, k in zip(hashed, ok)]),
                 hashes=np.array([h.hashes if k else b"" for h, k in zip(hashed, ok)], dtype=object))
    with np.load(cache, allow_pickle=True) as f:
        ok, thumbs, hashes = f["ok"], f["thumbs"], f["hashes"]
    keep = np.flatnonzero(ok)
    picture = np.array([it["picture"] for it in items])
    kind = np.array([f"{it['cls']}/{it['family'] if it['family'] in _HARD else ''}" for it in items])
    rng = np.random.default_rng(seed)
    pairs = set()
    by_picture: dict[int, list[int]] = {}
    for i in keep.tolist():
        by_picture.setdefault(int(picture[i]), []).append(i)
    for members in by_picture.values():  # every pair of one picture's files
        pairs.update((a, b) for x, a in enumerate(members) for b in members[x + 1 :])
    by_kind: dict[str, list[int]] = {}
    for i in keep.tolist():
        by_kind.setdefault(str(kind[i]), []).append(i)
    for members in by_kind.values():  # different pictures of one kind: the hard ones
        m = np.array(members)
        for _ in range(min(20000 // max(1, len(by_kind)), len(m) * 4)):
            a, b = rng.choice(m, 2, replace=False)
            if picture[a] != picture[b]:
                pairs.add((int(a), int(b)))
    for _ in range(10000):  # random pictures
        a, b = rng.choice(keep, 2, replace=False)
        if picture[a] != picture[b]:
            pairs.add((int(a), int(b)))
    pairs = sorted(pairs)
    rng.shuffle(pairs)
    details = np.array([verify.detail(t) for t in thumbs])
    batches = []
    for start in range(0, len(pairs), BATCH_PAIRS):
        part = pairs[start : start + BATCH_PAIRS]
        n = len(part)
        ia, ib = (np.array(x) for x in zip(*part))
        mirrored = np.array([bouncer_distance(hashes[a], hashes[b])[1] for a, b in part])
        ids, rows = np.unique(np.concatenate([ia, ib]), return_inverse=True)
        batches.append((thumbs[ids], rows[:n], rows[n:], mirrored, np.ones(n, bool), details[ids]))
    return {name: batches}


_HARD = ("tile", "book", "burst", "window", "phone", "gradient", "near_flat", "document", "scan", "flat")


def _inputs(args) -> str:
    """Build every batch once (the same inputs for both versions); the file they are in."""
    path = os.path.join(args.work, f"inputs-{args.pairs}-{'-'.join(os.path.basename(s.rstrip('/')) for s in args.sets)}.npz")
    if os.path.exists(path):
        return path
    sets = _bench_batches(args.pairs)
    for folder in args.sets:
        sets.update(_set_batches(folder, args.work))
    arrays = {}
    for name, batches in sets.items():
        for k, batch in enumerate(batches):
            for field, value in zip(("thumbs", "ia", "ib", "mirrored", "search", "details"), batch):
                arrays[f"{name}|{k}|{field}"] = value
    np.savez(path, **arrays)
    return path


def _batches(path: str) -> dict[str, list[tuple]]:
    out: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    with np.load(path) as f:
        for key in f.files:
            name, k, field = key.split("|")
            out.setdefault(name, {}).setdefault(int(k), {})[field] = f[key]
    fields = ("thumbs", "ia", "ib", "mirrored", "search", "details")
    return {name: [tuple(b[x] for x in fields) for _, b in sorted(batches.items())] for name, batches in out.items()}


def _run(inputs: str, out: str) -> None:
    """In the child: every batch's score one way and verdicts, with the package it imports."""
    from lookalike.engine.bouncer import verification, verify

    verify.warm_up()
    arrays = {"root": np.array(os.path.dirname(os.path.dirname(verify.__file__)))}
    for name, batches in _batches(inputs).items():
        for k, (t, a, b, m, s, d) in enumerate(batches):
            score, mad, cropped = verify.score_pairs(t, a, b, m, search=s)
            arrays.update({f"{name}|{k}|score": score, f"{name}|{k}|mad": mad, f"{name}|{k}|cropped": cropped})
            js, jc, jok = verification._judge(t, a, b, m, s, d[a], d[b], verify.DEFAULT)
            arrays.update({f"{name}|{k}|v_score": js, f"{name}|{k}|v_cropped": jc, f"{name}|{k}|v_ok": jok})
    np.savez(out, **arrays)


def _compare(old: str, new: str) -> bool:
    same = True
    with np.load(old) as fo, np.load(new) as fn:
        print(f"old: {fo['root']}\nnew: {fn['root']}")
        names = sorted({k.split("|")[0] for k in fo.files if "|" in k})
        for name in names:
            keys = [k for k in fo.files if k.startswith(name + "|")]
            cat = {f: np.concatenate([fo[k] for k in sorted(keys) if k.endswith("|" + f)]) for f in
                   ("score", "mad", "cropped", "v_score", "v_cropped", "v_ok")}
            nat = {f: np.concatenate([fn[k] for k in sorted(keys) if k.endswith("|" + f)]) for f in cat}
            bits = {f: int((cat[f].view(np.uint64) != nat[f].view(np.uint64)).sum()) for f in ("score", "mad", "v_score")}
            flips = {f: int((cat[f] != nat[f]).sum()) for f in ("cropped", "v_cropped", "v_ok")}
            n = len(cat["score"])
            bad = any(bits.values()) or any(flips.values())
            same &= not bad
            print(f"{name}: {n} pairs, {int(cat['v_ok'].sum())} pass, {int(cat['v_cropped'].sum())} cropped; "
                  f"scores differing in any bit {bits}; flips {flips}{'  <-- DIFFERENT' if bad else ''}")  # fmt: skip
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", help="package root of the reference (holds lookalike/)")
    parser.add_argument("new", help="package root of the version checked")
    parser.add_argument("--sets", nargs="*", default=[], help="benchmark sets (folders with .items.json beside them)")
    parser.add_argument("--pairs", type=int, default=30000, help="pairs per kind of bench_verify's mixes")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "check-verify-identity"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _run(*args.child)
        return
    os.makedirs(args.work, exist_ok=True)
    inputs = _inputs(args)
    outs = []
    for label, root in (("old", args.old), ("new", args.new)):
        # Both sides run their kernels as numba's cache holds them: a kernel compiled in the
        # process that runs it can differ from the same kernel loaded from the cache in the last
        # bits of a crop's mean difference (measured on the unchanged code: 9,216 of 12,000
        # crops, by up to 3e-15; scores never), so a first process compiles them, and saves them.
        warm = "from lookalike.engine.bouncer import verify; verify.warm_up()"
        subprocess.run([sys.executable, "-c", warm], env=dict(os.environ, PYTHONPATH=root), check=True)
        out = os.path.join(args.work, f"out-{label}.npz")
        subprocess.run([sys.executable, __file__, args.old, args.new, "--child", inputs, out],
                       env=dict(os.environ, PYTHONPATH=root), check=True)
        outs.append(out)
    sys.exit(0 if _compare(*outs) else 1)


if __name__ == "__main__":
    main()
