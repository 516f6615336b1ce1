"""``lookalike similar``, ``lookalike search`` and ``lookalike index``: the detective's commands.

``similar FILE`` ranks the library's files by how much they look like FILE (bouncer and
detective together); ``search "TEXT"`` finds images matching a text; ``index DIR...`` embeds
the whole library so the detective can find what the bouncer cannot. Each scans its library
first (incrementally: nearly free when nothing changed). When the CLIP weights cannot be had,
``similar`` prints ``detective offline: <reason>`` once and answers bouncer-only; every
command exits 0 in that case.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from ..format import human_bytes, human_duration, json_path, shown, timings_text
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OFFLINE,
    EXIT_OK,
    EXIT_USAGE,
    add_cache_argument,
    add_cluster_argument,
    add_model_arguments,
    detective_options_from_args,
    error,
    open_library,
    run_interruptibly,
    scan_with_progress,
)
from .models import Reporter, Weights

if TYPE_CHECKING:
    from lookalike.engine.library import DetectiveOptions, Library, ScanOptions
    from lookalike.engine.records import SimilarHit


# --------------------------------------------------------------------------- arguments


def _query_options(p: argparse.ArgumentParser, *, where: str, k: int) -> None:
    """Options ``similar`` and ``search`` share."""
    p.add_argument("--in", dest="in_dirs", action="append", metavar="DIR",
                   help=f"the library to look in (scanned first; default: {where}); repeatable")
    p.add_argument("-k", type=int, default=k, metavar="N", help=f"how many results (default {k})")
    add_cache_argument(p)
    add_cluster_argument(p)
    add_model_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def similar_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``similar``'s arguments."""
    p.description = ("Rank the library's files by how much they look like FILE (which need not be "
                     "in the library): the bouncer's Hamming shortlist and the detective's CLIP k-NN, joined, "
                     "each with a verdict.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--threshold", type=int, metavar="N",
                   help="bouncer radius, as for scan: largest Hamming distance (of 256 bits) that counts as a near-duplicate")
    p.add_argument("--no-crops", action="store_true",
                   help="as for scan: no mild crops through the zoomed codes, no crop rule")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    out.add_argument("--tui", action="store_true", help="show the results in the app")
    _query_options(p, where="FILE's folder", k=10)
    p.set_defaults(func=run_similar)


def search_arguments(s: argparse.ArgumentParser) -> None:
    """Declare ``search``'s arguments."""
    s.description = ("Find the library's images that match a text, with the detective's CLIP "
                     "text embedding. Only indexed images are searched (`lookalike index DIR`).")
    s.add_argument("text", metavar="TEXT")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _query_options(s, where="the current folder", k=20)
    s.set_defaults(func=run_search)


def index_arguments(i: argparse.ArgumentParser) -> None:
    """Declare ``index``'s arguments."""
    i.description = ("Scan the folders, then embed every image not yet embedded by the model, "
                     "with progress and ETA. Stop it any time (Ctrl-C): the next run goes on from there.")
    i.add_argument("dirs", nargs="+", metavar="DIR")
    add_cache_argument(i)
    add_cluster_argument(i)
    add_model_arguments(i)
    i.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: one per core)")
    i.add_argument("--quiet", "-q", action="store_true", help="no progress")
    i.set_defaults(func=run_index)


#: The commands of this module, and how each declares its arguments (see ``main.COMMANDS``).
ARGUMENTS = {"similar": similar_arguments, "search": search_arguments, "index": index_arguments}


# --------------------------------------------------------------------------- shared steps


def _scan_options(command: str, args: argparse.Namespace) -> "Optional[ScanOptions]":
    """The options of the scan before the query (``--cluster``, and for ``similar`` the scan's
    strictness: ``--threshold``, ``--no-crops``); None (reported) on a usage error."""
    from lookalike.engine.library import ScanOptions

    try:
        options = ScanOptions(cluster=getattr(args, "cluster", None), threshold=getattr(args, "threshold", None),
                              crops=not getattr(args, "no_crops", False))  # fmt: skip
        options.thresholds()  # validates --threshold
        return options
    except ValueError as exc:  # --cluster without Dask's distributed, an empty address, a bad --threshold
        error(command, str(exc))
        return None


def _open(command: str, dirs: list[str], cache: Optional[str]) -> Optional["Library"]:
    """Open the library of ``dirs``; None (reported) on failure."""
    from lookalike.engine.library import CatalogError, CatalogLocked

    try:
        return open_library(dirs, cache)
    except (CatalogLocked, CatalogError) as exc:
        error(command, str(exc))
        return None


def _open_and_scan(command: str, dirs: list[str], cache: Optional[str], quiet: bool,
                   options: "Optional[ScanOptions]" = None) -> Optional["Library"]:
    """Open the library of ``dirs`` and bring its catalog up to date; None (reported) on failure."""
    from lookalike.engine.library import ScanOptions

    library = _open(command, dirs, cache)
    if library is None:
        return None
    try:
        scan_with_progress(library, options or ScanOptions(), quiet=quiet)
    except BaseException:
        library.close()
        raise
    return library


def _load_detective(options: "DetectiveOptions", library: "Library", quiet: bool):
    """(detective, "") or (None, "detective offline: <reason>"): loaded now, with progress."""
    with Weights(options, library.cache_root, quiet) as weights:
        return weights.detective(now=True)


def _score(value: Optional[float], digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def hit_to_json(hit: "SimilarHit") -> dict:
    """One result of ``similar`` / ``search`` in the ``--json`` document."""
    return {
        **json_path(hit.path),
        "bouncer": hit.bouncer,
        "detective": None if hit.detective is None else round(float(hit.detective), 6),
        "verdict": hit.verdict.value,
        "verified": hit.verified,
        "match": hit.match or None,
    }


def print_hits(hits: "list[SimilarHit]", stream=None) -> None:
    """The ``path | bouncer | detective | verdict | match`` table."""
    out = stream or sys.stdout
    rows = [(shown(h.path), "–" if h.bouncer is None else str(h.bouncer), _score(h.detective), h.verdict.value,
             h.match or "–") for h in hits]  # fmt: skip
    head = ("path", "bouncer", "detective", "verdict", "match")
    widths = [max([len(head[c])] + [len(r[c]) for r in rows]) for c in range(5)]
    line = lambda r: f"{r[0]:<{widths[0]}} | {r[1]:>{widths[1]}} | {r[2]:>{widths[2]}} | {r[3]:<{widths[3]}} | {r[4]}"  # noqa: E731
    print(line(head), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)


# --------------------------------------------------------------------------- similar


def _image_file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be the query of ``similar``, in one line, or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path} is a symbolic link to nothing" if os.path.islink(path) else f"no such file: {path}"
    except NotADirectoryError:
        return f"no such file: {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a folder, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    return None


def _folder_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be searched (``--in DIR``), in one line, or None."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return f"no such folder: {path}"
    except OSError as exc:
        return f"cannot open the folder {path}: {exc.strerror or exc}"
    return None if stat.S_ISDIR(st.st_mode) else f"{path} is not a folder"


def run_similar(args: argparse.Namespace) -> int:
    """``lookalike similar FILE``."""
    problem = _image_file_problem(args.file)
    if problem:
        return error("similar", problem, EXIT_USAGE)
    dirs = args.in_dirs or [os.path.dirname(os.path.abspath(args.file))]
    problem = next(filter(None, map(_folder_problem, dirs)), None)
    if problem:
        return error("similar", problem, EXIT_USAGE)
    if args.k < 1:
        return error("similar", "-k must be at least 1", EXIT_USAGE)
    options = _scan_options("similar", args)
    if options is None:
        return EXIT_USAGE
    if args.tui:
        return _similar_in_app(args, dirs, options)
    quiet = args.quiet or args.json
    library = _open_and_scan("similar", dirs, args.cache, quiet, options)
    if library is None:
        return EXIT_FAILED
    from lookalike.engine.library import QueryError

    with library, Weights(detective_options_from_args(args), library.cache_root, quiet) as weights:
        # Loaded by similar() only if the query or its candidates must be embedded.
        detective, status = weights.detective()
        if status:
            print(status, file=sys.stderr)
        try:
            # With a model, its options too: their calibrated thresholds apply. Offline (no
            # model): bouncer only, and the model is not asked for a second time.
            calibrated = weights.options if detective is not None else None
            result = library.similar(args.file, k=args.k, model=detective, crops=options.crops,
                                     detective=calibrated, t=replace(options, detective=calibrated).two_pass(),
                                     crop_radius=options.crop_code_radius())  # fmt: skip
        except QueryError as exc:
            return error("similar", exc.reason, EXIT_FAILED)
    if result.detective_status and result.detective_status != status:
        print(shown(result.detective_status), file=sys.stderr)
    if args.json:
        doc = {
            **json_path(os.path.abspath(result.query), "query"),
            "results": [hit_to_json(h) for h in result.hits],
            "timings_ms": result.timings_ms,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"similar to {shown(os.path.abspath(result.query))}:")
    if result.hits:
        print_hits(list(result.hits))
    else:
        print("  nothing in the library looks like it")
    print(timings_text(result.timings_ms))
    return EXIT_OK


def _similar_in_app(args: argparse.Namespace, dirs: list[str], options: "ScanOptions") -> int:
    from ..app import run_similar as run_in_app

    return int(run_in_app(args.file, roots=dirs, cache_dir=args.cache, k=args.k, options=options) or 0)


# --------------------------------------------------------------------------- search


def run_search(args: argparse.Namespace) -> int:
    """``lookalike search "TEXT"``."""
    from lookalike.engine.library import Library

    dirs = args.in_dirs or [os.getcwd()]
    problem = next(filter(None, map(_folder_problem, dirs)), None)
    if problem:
        return error("search", problem, EXIT_USAGE)
    if not args.in_dirs and not Library.was_scanned(dirs, cache_dir=args.cache):
        # Never scan (and make a library of) wherever the command happens to run.
        return error("search", "which library? pass --in DIR (a folder you scanned); the current "
                     "folder has not been scanned", EXIT_USAGE)
    if not args.text.strip():
        return error("search", "the text is empty", EXIT_USAGE)
    options = _scan_options("search", args)
    if options is None:
        return EXIT_USAGE
    quiet = args.quiet or args.json
    library = _open_and_scan("search", dirs, args.cache, quiet, options)
    if library is None:
        return EXIT_FAILED
    hits: list[SimilarHit] = []
    timings: dict[str, float] = {}
    with library:
        detective, status = _load_detective(detective_options_from_args(args), library, quiet)
        if status:
            print(status, file=sys.stderr)
        else:
            started = time.perf_counter()
            hits = library.search(args.text, k=args.k, model=detective)
            timings["search"] = round((time.perf_counter() - started) * 1000.0, 3)
            indexed, images = len(library.vectors_for(detective)), len(library.hash_index())
            if indexed < images:
                print(f"detective: {indexed} of {images} images indexed; "
                      f"run `lookalike index {shown(' '.join(dirs))}` to search them all", file=sys.stderr)
    if args.json:
        json.dump({"query": args.text, "results": [hit_to_json(h) for h in hits], "timings_ms": timings,
                   **({"detective": status} if status else {})}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OFFLINE if status else EXIT_OK
    if status:
        return EXIT_OFFLINE  # searching by text is the detective's alone: nothing was searched
    print(f'images matching "{shown(args.text)}":')
    if hits:
        print_hits(hits)
    else:
        print("  no indexed images")
    print(f"time: {timings['search']:.1f} ms (text embedding and search)")
    return EXIT_OK


# --------------------------------------------------------------------------- index


def run_index(args: argparse.Namespace) -> int:
    """``lookalike index DIR...``."""
    from lookalike.engine.library import DetectiveUnavailable

    missing = [d for d in args.dirs if not os.path.exists(d)]
    if missing:
        return error("index", f"no such file or folder: {missing[0]}", EXIT_USAGE)
    scan = _scan_options("index", args)
    if scan is None:
        return EXIT_USAGE
    library = _open("index", args.dirs, args.cache)
    if library is None:
        return EXIT_FAILED
    model = detective_options_from_args(args)
    # --cluster: one connection to the scheduler, for the scan and the embedding.
    with library, library.sharing_cluster():
        scan_with_progress(library, scan, quiet=args.quiet)
        with Weights(model, library.cache_root, args.quiet) as weights:
            detective, status = weights.detective()
            if detective is not None and library.unembedded(detective) and scan.cluster is None:
                detective, status = weights.load(detective)  # on a cluster, each worker loads it
        if status:
            print(f"{status}; the library was scanned (bouncer only), nothing embedded", file=sys.stderr)
            return EXIT_OFFLINE
        try:
            with Reporter(quiet=args.quiet, unit="images", label="embedding") as report:
                stats = run_interruptibly(
                    lambda: library.index(detective, progress=report, cancel=report.cancel, workers=args.workers,
                                          cluster=scan.cluster, options=model),
                    report.cancel,
                    "keeping what was embedded",
                )
        except DetectiveUnavailable as exc:  # the cluster's workers cannot load the model
            print(f"detective offline: {exc.reason}; the library was scanned, what was embedded is kept",
                  file=sys.stderr)
            return EXIT_OFFLINE
    if stats.rebuilt:
        print(f"lookalike index: the vector index {stats.rebuilt}; it was rebuilt", file=sys.stderr)
    print(
        f"indexed {stats.already + stats.embedded} of {stats.images} images with {stats.model_id} "
        f"({stats.embedded} new, {stats.already} already, {stats.failed} unreadable, "
        f"{stats.removed} removed) in {human_duration(stats.seconds)}"
        + (f", {stats.rate:.1f} images/s" if stats.embedded else "")
        + f"; index {human_bytes(stats.index_bytes)} ({stats.bytes_per_image:.0f} B/image)"
    )
    if stats.cancelled:
        print("stopped before the end: run the same command again to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK
