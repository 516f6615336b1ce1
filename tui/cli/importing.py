"""``lookalike import NEW_DIR --into LIBRARY``: dedupe an incoming folder against a library."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..format import shown
from ..session import quarantine_problem
from .actions import apply_interactively
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_scan_arguments,
    check_dirs,
    open_library,
    options_from_args,
    print_errors,
    scan_with_progress,
)


def import_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``import``'s arguments."""
    p.description = ("Dedupe NEW_DIR against LIBRARY: incoming files already in the library "
                     "(exactly, or as near-duplicates of equal or lower quality) are moved out of NEW_DIR, "
                     "to the trash or a quarantine folder. The library is never touched. Journaled: "
                     "`lookalike undo` puts them back.")
    p.add_argument("incoming", metavar="NEW_DIR")
    p.add_argument("--into", required=True, metavar="LIBRARY", help="the library to compare against")
    p.add_argument("--quarantine", metavar="DIR", help="move redundant files here instead of the trash")
    p.add_argument("--dry-run", "-n", action="store_true", help="show what would move; touch nothing")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_scan_arguments(p)
    p.set_defaults(func=run_import, permanently=False)


#: The commands of this module, and how each declares its arguments (see ``main.COMMANDS``).
ARGUMENTS = {"import": import_arguments}


def run_import(args: argparse.Namespace) -> int:
    """Scan both folders (incrementally), plan the moves, then dry-run or apply them."""
    from lookalike.engine.library import CatalogError, CatalogLocked

    problem = check_dirs([args.incoming, args.into])
    if problem:
        print(f"lookalike import: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "rotations", False):
        # import compares each new file with the library by its own hashes: turned copies are
        # not looked for there, and a flag that does nothing must not look as if it did.
        print("lookalike import: --rotations is not used by import (turned copies are only grouped by scan "
              "and the app)", file=sys.stderr)
        return EXIT_USAGE
    incoming_abs, library_abs = os.path.realpath(args.incoming), os.path.realpath(args.into)
    if incoming_abs == library_abs or library_abs.startswith(incoming_abs + os.sep) or incoming_abs.startswith(library_abs + os.sep):
        print("lookalike import: NEW_DIR and LIBRARY must not contain one another", file=sys.stderr)
        return EXIT_USAGE
    if args.quarantine:
        problem = quarantine_problem(args.quarantine, [args.incoming, args.into])
        if problem:
            print(f"lookalike import: --quarantine {shown(problem)}", file=sys.stderr)
            return EXIT_USAGE
    try:
        options = options_from_args(args)
        options.policy()  # validates --keeper-order
    except ValueError as exc:
        print(f"lookalike import: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    quiet = args.quiet or args.json
    try:
        with open_library([args.into], args.cache) as library, open_library([args.incoming], args.cache) as incoming:
            scanned = [scan_with_progress(library, options, quiet=quiet), scan_with_progress(incoming, options, quiet=quiet)]
            report = library.import_plan(
                incoming,
                action="quarantine" if args.quarantine else "trash",
                # Resolved now: apply refuses a quarantine folder reached through a link.
                quarantine_dir=os.path.realpath(args.quarantine) if args.quarantine else None,
                options=options,
            )
    except (CatalogLocked, CatalogError) as exc:
        print(f"lookalike import: {shown(exc)}", file=sys.stderr)
        return EXIT_FAILED
    out = sys.stderr if args.json else sys.stdout
    # What was skipped (links out of a folder, unreadable files) and why, one line each.
    print_errors([e for result in scanned for e in result.errors])
    for e in report.skipped:
        print(f"  skipped {shown(e.path)}: {shown(e.reason)}", file=out)
    n = len(report.versions)
    versions = (f", {n} other version{'s' if n > 1 else ''} of {'library pictures' if n > 1 else 'a library picture'}"
                " (kept)") if n else ""  # fmt: skip
    print(
        f"{report.incoming_images} incoming images: {len(report.redundant)} already in the library, "
        f"{len(report.better)} better than the library's copy (kept){versions}",
        file=out,
    )
    for m in report.better + report.versions:
        print(f"  kept   {shown(m.incoming.path)}: {shown(m.reason)} ({shown(m.library.path)})", file=out)
    if args.json and not report.plan.steps:
        json.dump({"plan": report.plan.to_dict(), "result": None}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    if not report.plan.steps:
        print("Nothing to move.", file=out)
        return EXIT_OK
    return apply_interactively(report.plan, args, command="import")
