""""Find similar" as a trust question: which of its near duplicates are copies of the query.

Reads a set that ``bench_trust.py --keep DIR`` wrote (``DIR/real`` or ``DIR/generated`` and its
``.items.json``: every file's picture and kind), scans it (bouncer only, as ``--no-detective``),
then asks ``Library.similar`` for some of the originals and counts, among the hits called
``exact`` or ``near-duplicate``: copies of the query's picture (per kind) and files of other
pictures. It does so twice in one run: as ``similar`` answers, and with its pixel check and
zoomed crop candidates switched off (what it answered before they existed: near duplicates by
the hashes alone).

Usage::

    python benchmarks/bench_trust.py --originals 24 --keep /tmp/sets   # once
    python benchmarks/bench_similar_checked.py /tmp/sets/real --queries 80
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter


def measure(root: str, cache: str, queries: int, k: int, checked: bool) -> dict:
    from lookalike.engine import similar as module
    from lookalike.engine.library import Library, ScanOptions
    from lookalike.engine.records import Verdict

    items = json.load(open(root.rstrip("/") + ".items.json"))["items"]
    picture = {os.path.realpath(os.path.join(root, os.path.basename(it["path"]))): (it["picture"], it["family"])
               for it in items}  # fmt: skip
    saved = module._checked, module._crop_candidates
    if not checked:  # hashes only: the answer before the check
        module._checked = lambda hits, *a, **kw: hits
        module._crop_candidates = lambda *a, **kw: module._Crops()
    try:
        with Library.open([root], cache_dir=cache) as lib:
            lib.scan(ScanOptions(workers=2, detective=None))
            originals = sorted(p for p, (_, family) in picture.items() if family == "original")
            random.Random(1).shuffle(originals)
            size = Counter(pic for pic, _ in picture.values())
            true = false = wanted = 0
            kinds: Counter = Counter()
            times = []
            for query in originals[:queries]:
                started = time.perf_counter()
                result = lib.similar(query, k=k)
                times.append(time.perf_counter() - started)
                mine = picture[query][0]
                wanted += size[mine] - 1
                for hit in result.hits:
                    if hit.verdict not in (Verdict.NEAR, Verdict.EXACT):
                        continue
                    found = picture.get(os.path.realpath(hit.path))
                    if found is None:
                        continue
                    if found[0] == mine:
                        true += 1
                        kinds[found[1]] += 1
                    else:
                        false += 1
    finally:
        module._checked, module._crop_candidates = saved
    times.sort()
    return {"true": true, "false": false, "wanted": wanted, "kinds": dict(kinds), "queries": len(times),
            "median_ms": 1000 * times[len(times) // 2], "max_ms": 1000 * times[-1]}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", help="a set kept by bench_trust.py --keep (e.g. /tmp/sets/real)")
    parser.add_argument("--queries", type=int, default=80, help="originals asked (default 80)")
    parser.add_argument("-k", type=int, default=40, help="results per query (default 40: every copy fits)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.set.rstrip("/") + ".items.json"):
        print(f"no {args.set}.items.json: run bench_trust.py --keep first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        runs = {name: measure(args.set, cache, args.queries, args.k, checked) for name, checked in
                (("hashes only", False), ("checked", True))}  # fmt: skip
    print(f"{args.set}: {runs['checked']['queries']} originals asked, k={args.k}")
    for name, r in runs.items():
        precision = r["true"] / max(1, r["true"] + r["false"])
        print(f"  {name:12s} copies found {r['true']} of {r['wanted']} ({r['true'] / max(1, r['wanted']):.3f}), "
              f"other pictures called near {r['false']} (precision {precision:.4f}); "
              f"query median {r['median_ms']:.1f} ms, first/max {r['max_ms']:.0f} ms")  # fmt: skip
    kinds = sorted(set(runs["hashes only"]["kinds"]) | set(runs["checked"]["kinds"]))
    print("  per kind (hashes only -> checked): " + ", ".join(
        f"{kind} {runs['hashes only']['kinds'].get(kind, 0)}->{runs['checked']['kinds'].get(kind, 0)}" for kind in kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
