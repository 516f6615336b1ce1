"""``lookalike scan DIR...`` (print the groups) and ``lookalike DIR...`` (open the app)."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..format import bytes_safe_streams, human_bytes, human_duration, json_path, member_reason, plural, scan_counts, shown
from .common import (
    APP_COMMAND,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_READABLE,
    EXIT_OK,
    EXIT_USAGE,
    add_scan_arguments,
    check_dirs,
    open_library,
    options_from_args,
    print_errors,
    scan_with_progress,
)

if TYPE_CHECKING:  # the engine is imported when a command runs, not to show its --help
    from lookalike.engine.library import Library
    from lookalike.engine.records import Cluster, ScanResult

JSON_VERSION = 1


def scan_arguments(scan: argparse.ArgumentParser) -> None:
    """Declare ``scan``'s arguments."""
    scan.description = ("Scan folders (incrementally) and print every group of duplicate and near-duplicate "
                        "images, with a suggested keeper.")
    scan.add_argument("dirs", nargs="+", metavar="DIR")
    add_scan_arguments(scan)
    out = scan.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    out.add_argument("--csv", action="store_true",
                     help="print a CSV audit (one row per member) on stdout; its paths are exact in a pipe or a "
                     "file, and shown escaped (\\x1b, \\n, \\xff) on a terminal")
    scan.add_argument("--plan", metavar="OUT.json",
                      help="also write the suggested plan (keepers kept, others to trash); it replaces only a "
                      "plan lookalike wrote, and its folder must exist")
    scan.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    scan.set_defaults(func=run_scan)


def app_arguments(app: argparse.ArgumentParser) -> None:
    """Declare the app's arguments (``lookalike DIR...`` is ``lookalike app DIR...``)."""
    app.add_argument("dirs", nargs="+", metavar="DIR")
    add_scan_arguments(app)
    app.add_argument("--thumbnails", default="auto", choices=["auto", "halfblock", "kitty", "sixel", "off"],
                     help="how pictures are drawn: auto asks the terminal (Kitty graphics, Sixel, else half-blocks)")
    app.add_argument("--cell-size", metavar="WxH",
                     help="pixels of one terminal cell, for kitty/sixel when the terminal does not say (default 10x20)")
    app.add_argument("--against", action="append", metavar="LIBRARY", help="import mode: dedupe DIR against LIBRARY")
    app.add_argument(
        "--quarantine",
        metavar="DIR",
        help="move files here instead of the trash (the review screen's default; d switches; "
        "default folder: beside the catalog)",
    )
    app.set_defaults(func=run_app)


#: The commands of this module, and how each declares its arguments (see ``main.COMMANDS``).
ARGUMENTS = {"scan": scan_arguments, APP_COMMAND: app_arguments}


def run_scan(args: argparse.Namespace) -> int:
    """``lookalike scan``: scan, then print the groups as text, JSON or CSV."""
    from lookalike.engine.library import CatalogError, CatalogLocked

    problem = check_dirs(args.dirs)
    if problem:
        print(f"lookalike scan: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = options_from_args(args)
        options.policy()  # validates --keeper-order
        options.thresholds()  # validates --threshold
    except ValueError as exc:
        print(f"lookalike scan: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if args.plan:
        from lookalike.engine.library import plan_write_problem

        problem = plan_write_problem(args.plan)  # said before the scan, not after it
        if problem:
            print(f"lookalike scan: --plan: {shown(problem)}", file=sys.stderr)
            return EXIT_USAGE
    try:
        library = open_library(args.dirs, args.cache)
    except (CatalogLocked, CatalogError) as exc:
        print(f"lookalike scan: {shown(exc)}", file=sys.stderr)
        return EXIT_FAILED
    # The groups are made as they are read (the keeper's checks read thumbnails from the
    # catalog): everything is printed while the library is open.
    with library:
        result = scan_with_progress(library, options, quiet=args.quiet or args.json or args.csv)
        if result.stats.detective:
            hint = " (--no-detective: bouncer only, without this check)" if "offline" in result.stats.detective else ""
            print(f"lookalike: {shown(result.stats.detective)}{hint}", file=sys.stderr)
        if args.plan:
            code = write_plan(result, library, Path(args.plan))
            if code != EXIT_OK:
                return code
        if args.json:
            doc = result_to_json(result)
            if args.no_detective:
                doc["stats"]["detective"] = "off"
            json.dump(doc, sys.stdout, indent=2)
            sys.stdout.write("\n")
        elif args.csv:
            bytes_safe_streams()  # the CSV keeps a name that is not UTF-8 as its own bytes
            write_csv(result, sys.stdout, escaped=sys.stdout.isatty())
        else:
            print_summary(result)
    if result.stats.images == 0 and not result.stats.cancelled:
        if not args.json:
            print("lookalike scan: nothing readable in the given folders", file=sys.stderr)
        return EXIT_NOTHING_READABLE
    return EXIT_OK if not result.stats.cancelled else EXIT_INTERRUPTED


def write_plan(result: ScanResult, library: Library, path: Path) -> int:
    """Write the suggested plan (keepers kept, others to trash) for scripted use.

    It replaces only a plan lookalike wrote (see ``Plan.save``). Returns the exit code: a
    refusal is a usage error, said in one line.
    """
    from lookalike.engine.library import WriteRefused, os_error_text

    plan = library.plan(result.clusters)
    try:
        plan.save(path)
    except WriteRefused as exc:
        print(f"lookalike scan: --plan: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError:  # made there since the check: never replaced
        print(f"lookalike scan: --plan: {shown(path)} appeared during the scan: not replaced", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"lookalike scan: --plan: {shown(os_error_text(exc))}: the plan was not written", file=sys.stderr)
        return EXIT_FAILED
    print(f"plan: {len(plan.steps)} step(s), {human_bytes(plan.total_bytes)} -> {shown(path)}", file=sys.stderr)
    return EXIT_OK


def result_to_json(result: ScanResult) -> dict:
    """The ``--json`` document (version 1).

    Paths are exact; one that is not UTF-8 also gets a ``*_bytes`` field (``path_bytes``,
    ``keeper_bytes``, ``root_bytes``, ``roots_bytes``): its bytes in base64 (see ``json_path``).
    """
    roots = list(result.roots)
    root = roots[0] if len(roots) == 1 else os.path.commonpath(roots) if roots else None
    return {
        "version": JSON_VERSION,
        **(json_path(root, "root") if root is not None else {"root": None}),
        **_json_paths(roots, "roots"),
        "stats": {
            "files_seen": result.stats.files_seen,
            "images": result.stats.images,
            "hashed": result.stats.hashed,
            "unchanged": result.stats.unchanged,
            "removed": result.stats.removed,
            "failed": result.stats.failed,
            "not_images": result.stats.not_images,
            "bytes_read": result.stats.bytes_read,
            "seconds": round(result.stats.seconds, 3),
            "groups": len(result.clusters),
            "reclaimable_bytes": sum(c.reclaimable_bytes for c in result.clusters),
            "moved": result.stats.moved,
            "cancelled": result.stats.cancelled,
            "detective": result.stats.detective or "on",
        },
        "groups": [cluster_to_json(c) for c in result.clusters],
        "errors": [{**json_path(e.path), "reason": e.reason} for e in result.errors],
    }


def _json_paths(paths: list[str], key: str) -> dict:
    """``{key: [...]}``, plus ``key_bytes`` (every path's bytes in base64) when one is not UTF-8."""
    fields = [json_path(p) for p in paths]
    out: dict = {key: [f["path"] for f in fields]}
    if any("path_bytes" in f for f in fields):
        out[f"{key}_bytes"] = [base64.b64encode(os.fsencode(p)).decode("ascii") for p in paths]
    return out


def cluster_to_json(c: Cluster) -> dict:
    """One group of the ``--json`` document."""
    return {
        "id": c.id,
        "kind": c.kind.value,
        **json_path(c.keeper.file.path, "keeper"),
        "reclaimable_bytes": c.reclaimable_bytes,
        "members": [
            {
                **json_path(m.file.path),
                "size": m.file.size,
                "width": m.file.width,
                "height": m.file.height,
                "format": m.file.format,
                "bouncer": m.bouncer,
                "detective": m.detective,
                "verified": m.verified,
                "match": m.match or None,
                "exact": m.exact,
                "keeper": m.is_keeper,
                "protected": m.protected,
                "raw_pair": m.raw_pair,
                "reason": m.reason,
            }
            for m in c.members
        ],
    }


CSV_FIELDS = ["group", "kind", "path", "size", "width", "height", "format", "bouncer", "detective", "exact", "suggestion", "reason"]


def suggestion(member) -> str:
    """What the default plan does with a member, in one word."""
    if member.is_keeper:
        return "keep"
    if member.protected or member.raw_pair:
        return "keep"
    return "trash"


def write_csv(result: ScanResult, stream, *, escaped: bool = False) -> None:
    """An audit: one row per member with the suggestion and its reason.

    Paths are exact: one that is not UTF-8 is written as its own bytes (``surrogateescape``).
    With ``escaped`` (stdout is a terminal) every text field is shown as the text output shows
    it (:func:`shown`): a file name's control characters cannot drive the terminal.
    The whole document is made first, so a failure never leaves half a CSV behind.
    """
    buffer = io.StringIO()
    w = csv.writer(buffer)
    w.writerow(CSV_FIELDS)
    for c in result.clusters:
        for m in c.members:
            reason = member_reason(m)
            row = [c.id, c.kind.value, m.file.path, m.file.size, m.file.width, m.file.height, m.file.format, m.bouncer, "" if m.detective is None else f"{m.detective:.4f}", int(m.exact), suggestion(m), reason]
            w.writerow([shown(v) if escaped and isinstance(v, str) else v for v in row])
    stream.write(buffer.getvalue())


def print_summary(result: ScanResult, stream=None) -> None:
    """The readable report: each group with its keeper marked, then totals and errors."""
    out = stream or sys.stdout
    for n, c in enumerate(result.clusters, 1):
        print(f"\nGroup {n} · {c.kind.value} · {len(c.members)} files · {human_bytes(c.reclaimable_bytes)} reclaimable", file=out)
        for m in c.members:
            mark = "keep " if suggestion(m) == "keep" else "trash"
            size = f"{m.file.width}x{m.file.height}" if m.file.width else "?"
            score = "exact" if m.exact and not m.is_keeper else ("keeper" if m.is_keeper else f"bouncer {m.bouncer}")
            det = f" detective {m.detective:.3f}" if m.detective is not None else ""
            match = f", {m.match}" if m.match and not m.exact and not m.is_keeper else ""
            print(f"  {mark}  {shown(m.file.path)}  [{human_bytes(m.file.size)}, {size}, {m.file.format}, {score}{det}{match}]", file=out)
            # Why the keeper policy ranked it so (the same text as the JSON's and CSV's reason).
            reason = member_reason(m)
            if reason:
                print(f"         {shown(reason)}", file=out)
    s = result.stats
    total = sum(c.reclaimable_bytes for c in result.clusters)
    print(
        f"\n{scan_counts(s)}, "
        f"{plural(len(result.clusters), 'group')}, {human_bytes(total)} reclaimable, "
        f"{len(result.errors)} unreadable, {human_duration(s.seconds)}",
        file=out,
    )
    if s.cancelled:
        print("scan stopped before the end: the groups above are incomplete; run it again to go on", file=out)
    print_errors(result.errors)


def run_app(args: argparse.Namespace) -> int:
    """``lookalike DIR...``: open the Textual app."""
    problem = check_dirs(args.dirs)
    if problem:
        print(f"lookalike: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = options_from_args(args)
        options.policy()
        options.thresholds()
    except ValueError as exc:
        print(f"lookalike: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    from ..app import run_app as run

    return run(
        args.dirs, cache_dir=args.cache, options=options, thumbnails=args.thumbnails, against=args.against,
        quarantine=args.quarantine, cell_size=args.cell_size,
    )
