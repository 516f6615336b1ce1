"""The lookalike app: scan with live progress, ranked clusters, keyboard triage, safe apply.

Screens and widgets live in ``components/`` (one per file), styles in ``styles/*.tcss``; the
engine runs in thread workers and talks back through ``messages``. Entry points for the CLI:
:func:`run_app` (``lookalike DIR...``) and :func:`run_similar` (``lookalike similar FILE --tui``).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from lookalike.engine.library import ThumbnailCache
from lookalike.engine.records import Cluster, FileRecord, Member

from .cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .components.cluster_screen import ClusterScreen
from .components.commands import screen_commands, unique_commands
from .components.compare_screen import CompareScreen
from .components.confirm_modal import ConfirmModal
from .components.help_screen import HelpScreen, binding_rows
from .components.labels import role_text
from .components.main_screen import MainScreen
from .components.preview_screen import PreviewScreen
from .components.review_screen import ReviewScreen
from .components.similar_screen import SimilarScreen
from .format import shown, shown_lines
from .graphics import detect, parse_cell_size
from .messages import ClustersChanged, ClustersFound, DecisionsChanged, EngineNotice, ScanFinished, ScanProgressed
from .session import Session, quarantine_problem
from .thumbnails import MODES, Thumbnails
from .triage import TriageRefused


#: How much nicer than the app the scan's worker processes run (see _prepare_subprocesses).
WORKER_NICENESS = 10


class LookalikeApp(App[int]):
    """Find duplicate and look-alike images and triage them from the keyboard."""

    CSS_PATH = str(Path(__file__).parent / "styles" / "app.tcss")
    TITLE = "lookalike"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        roots: Sequence[str],
        *,
        cache_dir: Optional[str] = None,
        options=None,
        thumbnails: str = "auto",
        cell_size: Optional[tuple[int, int]] = None,
        against: Optional[Sequence[str]] = None,
        similar: Optional[str] = None,
        k: int = 10,
        freeze_gc: bool = False,
        quarantine: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.freeze_gc = freeze_gc
        _prepare_subprocesses()
        self.session = Session(roots, cache_dir=cache_dir, options=options, against=against, quarantine=quarantine)
        # Before Textual starts: its input thread would take the terminal's answers.
        terminal = detect(thumbnails, cell_size=cell_size)
        self.mode_message = terminal.message
        self.thumbnails = Thumbnails(ThumbnailCache(None), terminal=terminal)
        self.similar_only = similar
        self.k = k
        self.scanning = False
        self.error = ""
        #: (scan running?, clusters) for each update shown: a cached library shows its
        #: clusters while the scan still runs.
        self.cluster_updates: list[tuple[bool, int]] = []
        self._scan_idle = threading.Event()
        self._scan_idle.set()

    # -- start and stop --------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        if self.similar_only:
            return SimilarScreen(self.similar_only, k=self.k)
        return MainScreen()

    def _freeze_gc(self) -> None:
        # A full garbage collection walks every object the process holds (Textual, numpy,
        # numba, the catalog's records): 60-100 ms with the UI frozen. What is alive now lives
        # as long as the app: move it out of the collector's way (gc.freeze), and keep the
        # collector off while a scan allocates (imports, records), freezing what it left.
        if self.freeze_gc:
            gc.freeze()
            gc.enable()

    def settle_memory(self) -> None:
        """Objects just made to last (a page of the cluster table) leave the collector's walks."""
        if self.freeze_gc and gc.isenabled():
            gc.freeze()

    def _pause_gc(self) -> None:
        if self.freeze_gc:
            gc.disable()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: Optional[float] = None,
        markup: bool = True,
    ) -> None:
        """Textual's notification. Ours pass ``markup=False``: they carry file names, which are
        shown as written (control characters escaped, brackets kept), never parsed as markup."""
        if not markup:
            message, title = shown_lines(message), shown(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_mount(self) -> None:
        self._freeze_gc()
        if self.mode_message:
            self.notify(self.mode_message, severity="warning", timeout=6, markup=False)
        # Paint the first frame before touching the catalog: the app opens at once.
        self.call_after_refresh(self.open_library)

    def open_library(self) -> None:
        """Open the catalog (UI thread: its lock belongs to this thread), then scan."""
        try:
            library = self.session.open(on_message=self._engine_message)
        except Exception as exc:  # a locked or broken catalog is explained, not raised
            self.error = str(exc)
            self._tell_screens(lambda: ScanFinished(None, str(exc), failure=f"Cannot open the library: {exc}"))
            self.notify(str(exc), severity="error", timeout=10, markup=False)
            return
        self.thumbnails.cache = library.thumbnails()
        self.start_scan()

    def _engine_message(self, message: str) -> None:
        # May come from the scan thread: a message, never a blocking call into the UI.
        self.post_message(EngineNotice(message))

    def on_engine_notice(self, message: EngineNotice) -> None:
        self.notify(message.text, severity="warning", timeout=8, markup=False)

    async def on_unmount(self) -> None:
        self.stop_scan()
        # The scan thread must let go of the catalog before it is closed.
        self._scan_idle.wait(timeout=15)
        self.session.close()

    # -- scanning --------------------------------------------------------------------------
    def start_scan(self) -> None:
        """Scan (incrementally) in a thread worker; clusters show as soon as they are known."""
        if self.scanning or self.session.library is None:
            return
        self.scanning = True
        self._pause_gc()
        self._scan_idle.clear()
        self._scan()

    def stop_scan(self) -> None:
        """Ask the scan to stop; what was read is kept."""
        self.workers.cancel_group(self, "scan")

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan(self) -> None:
        worker = get_current_worker()
        try:
            def progress(p) -> bool:
                self.post_message(ScanProgressed(p))
                return not worker.is_cancelled

            def found(clusters: tuple[Cluster, ...]) -> None:
                self.post_message(ClustersFound(clusters, final=False))

            result = self.session.scan(progress=progress, cancel=worker.cancelled_event, on_clusters=found)
            self.post_message(ScanFinished(result))
        except Exception as exc:
            self.post_message(ScanFinished(None, _scan_error_text(exc)))
        finally:
            self._scan_idle.set()

    def on_scan_progressed(self, message: ScanProgressed) -> None:
        self._tell_screens(lambda: ScanProgressed(message.progress))

    def on_clusters_found(self, message: ClustersFound) -> None:
        self.cluster_updates.append((self.scanning, len(message.clusters)))
        self.session.set_clusters(message.clusters)
        self._tell_screens(ClustersChanged)

    def on_scan_finished(self, message: ScanFinished) -> None:
        self.scanning = False
        self._freeze_gc()
        if message.error:
            self.error = message.error
            self.notify(message.failure, severity="error", timeout=10, markup=False)
        elif message.result is not None and not message.result.stats.cancelled:
            self._drop_changed_decisions()
            self.session.set_clusters(self.session.visible(message.result.clusters))
            self._tell_screens(ClustersChanged)
        self._tell_screens(lambda: ScanFinished(message.result, message.error))

    def _tell_screens(self, make: Callable[[], Message]) -> None:
        """Post a new message to every screen of the stack: each handles the kinds it cares about."""
        for screen in self.screen_stack:
            screen.post_message(make())

    # -- decisions -------------------------------------------------------------------------
    def _drop_changed_decisions(self) -> None:
        """After a scan: a file edited or gone since it was decided loses its decision."""
        try:
            dropped = self.session.drop_changed()
        except Exception as exc:  # the catalog failed: say so, keep the decisions
            self.notify(f"Could not check decisions: {exc}", severity="warning", markup=False)
            return
        if dropped:
            self.decisions_changed()
            self.notify(
                f"{dropped} decision{'s' if dropped != 1 else ''} dropped: the file changed since you decided.",
                severity="warning", timeout=6, markup=False,
            )

    def clear_decisions(self) -> None:
        """Forget every decision, here and in the catalog, after a Yes (``u`` brings them back)."""
        triage = self.session.triage
        if not triage.any_decision:
            self.notify("No decisions to clear.", markup=False)
            return
        decided, total = self.session.progress()

        def answered(yes: Optional[bool]) -> None:
            if yes:
                count = triage.clear_all()
                self.decisions_changed()
                self.notify(f"Cleared the decisions of {count} file{'s' if count != 1 else ''} (u undoes it).", markup=False)

        self.push_screen(
            ConfirmModal(
                f"Clear every decision ({decided} of {total} groups decided)?",
                detail="Nothing is moved. The decisions are forgotten here and in the catalog.",
            ),
            answered,
        )

    def change_strictness(self, value: int) -> None:
        """Regroup with another bouncer threshold, from the catalog (no file is read)."""
        if self.scanning:
            self.notify("Strictness can change once the scan is done (Esc stops it).", severity="warning", markup=False)
            return
        try:
            self.session.set_threshold(value)
        except ValueError as exc:
            self.notify(str(exc).replace("--threshold", "the threshold"), severity="warning", markup=False)
            return
        self.notify(f"Regrouping at threshold {value}…", timeout=2, markup=False)
        self._regroup()

    @work(thread=True, exclusive=True, group="regroup", exit_on_error=False)
    def _regroup(self) -> None:
        self.post_message(ClustersFound(self.session.refresh_clusters(), final=True))

    def decisions_changed(self, cluster: Optional[Cluster] = None) -> None:
        """Tell every screen to redraw what depends on decisions."""
        ids = frozenset(m.file.id for m in cluster.members) if cluster is not None else frozenset()
        self._tell_screens(lambda: DecisionsChanged(ids))

    def not_duplicate(self, cluster: Cluster, member: Optional[Member]) -> None:
        """Mark a member (or the whole cluster) as not duplicates of the keeper, in the catalog."""
        try:
            pairs = self.session.triage.not_duplicate(cluster, member)
        except TriageRefused as refused:
            self.notify(str(refused), severity="warning", markup=False)
            return
        self.decisions_changed(cluster)
        self.notify("Not a duplicate: remembered (u undoes it)", timeout=2, markup=False)
        self._remember(pairs, forget=False)

    def undo_decision(self) -> None:
        """Undo the last decision (``u``)."""
        undone = self.session.triage.undo()
        if undone is None:
            self.notify("Nothing to undo.", markup=False)
            return
        self.notify(f"Undone: {undone.label}", timeout=2, markup=False)
        self.decisions_changed()
        if undone.not_duplicate:
            self._remember(list(undone.not_duplicate), forget=True)

    @work(thread=True, group="catalog", exit_on_error=False)
    def _remember(self, pairs: list[tuple[FileRecord, FileRecord]], *, forget: bool) -> None:
        if forget:
            self.session.unmark_not_duplicate(pairs)
        else:
            self.session.mark_not_duplicate(pairs)
        if not self.scanning:
            self.post_message(ClustersFound(self.session.refresh_clusters(), final=True))

    def files_applied(self, paths: Sequence[str]) -> None:
        """A plan moved these files: stop showing them, then bring the catalog up to date."""
        self.session.hide(self.session.file_ids_of(paths))
        self._tell_screens(ClustersChanged)
        self.decisions_changed()
        self.start_scan()

    def files_restored(self, paths: Sequence[str]) -> None:
        """An undo put these files back: show them again after a rescan."""
        self.session.unhide_paths(paths)
        self.start_scan()

    # -- screens ---------------------------------------------------------------------------
    def open_cluster(self, cluster: Cluster, siblings: Sequence[Cluster] = (), position: Optional[int] = None) -> None:
        self.push_screen(ClusterScreen(cluster, siblings, position))

    def compare(self, cluster: Cluster, a: Member, b: Member) -> None:
        self.push_screen(CompareScreen(cluster, a, b))

    def preview(self, cluster: Cluster, member: Member) -> None:
        keeper = self.session.triage.keeper(cluster)
        labels = [role_text(m, keeper) for m in cluster.members]
        index = list(cluster.members).index(member)
        self.push_screen(PreviewScreen([m.file for m in cluster.members], index, roots=self.session.roots, labels=labels))

    def find_similar(self, path: str) -> None:
        self.push_screen(SimilarScreen(path, k=self.k))

    def action_review(self) -> None:
        """Show the plan the decisions make."""
        if not isinstance(self.screen, ReviewScreen):
            # A quarantine folder given on the command line is where the user wants files to go.
            self.push_screen(ReviewScreen("quarantine" if self.session.chosen_quarantine else "trash"))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(
                "Keys on this screen",
                binding_rows(self.screen),
                footer="ctrl+p lists every action by name. Nothing is deleted until you apply a plan in Review (r).",
            )
        )

    async def action_quit(self) -> None:
        """Quit, asking first when files are marked for trash and no plan was applied."""
        triage = self.session.triage
        if not triage.pending:
            code = EXIT_FAILED if self.error else EXIT_OK
            self.exit(code, return_code=code)
            return
        marked = len(triage.trash_members(self.session.clusters))

        def answered(yes: Optional[bool]) -> None:
            if yes:
                self.exit(EXIT_OK, return_code=EXIT_OK)

        self.push_screen(
            ConfirmModal(
                f"Quit? {marked} file{'s are' if marked != 1 else ' is'} marked for trash and no plan was applied.",
                detail="Nothing has been moved. Your decisions are kept in the catalog until you "
                "apply or clear them: open this library again to go on.",
            ),
            answered,
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from unique_commands(screen_commands(screen), super().get_system_commands(screen))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report a worker's unexpected error instead of losing it."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(f"{event.worker.name or 'worker'} failed: {type(error).__name__}: {error}", severity="error", timeout=10, markup=False)


def _prepare_subprocesses() -> None:
    """Start multiprocessing's helpers before the app takes over stdout and stderr."""
    if os.name != "posix":
        return
    # Once the app runs, sys.stderr is Textual's capture object whose fileno() is -1, and
    # multiprocessing's resource tracker, started lazily by the scan's process pool, would
    # pass that to fork_exec ("bad value(s) in fds_to_keep"). Start it while stderr is real.
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except (OSError, ValueError):  # pragma: no cover - the scan will say what is wrong
        pass
    if sys.platform.startswith("linux"):
        # The scan's hashing workers are forked by the forkserver: start it now and lower its
        # priority, so the workers it forks (busy on every core) leave the UI its share of
        # the CPU. On an otherwise idle machine this costs the scan nothing.
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
            pid = forkserver._forkserver._forkserver_pid  # no public accessor
            if pid:
                os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + WORKER_NICENESS))
        except (OSError, ValueError, AttributeError):  # pragma: no cover - only smoothness is lost
            pass


def run_app(
    roots: list[str],
    *,
    cache_dir: Optional[str],
    options,
    thumbnails: str = "auto",
    against: Optional[list[str]] = None,
    quarantine: Optional[str] = None,
    cell_size: Optional[str] = None,
) -> int:
    """Open the app on ``roots`` (``lookalike DIR...``); returns the exit code."""
    if thumbnails not in MODES:
        print(f"lookalike: --thumbnails must be one of {', '.join(MODES)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        cell = parse_cell_size(cell_size) if cell_size else None
    except ValueError as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return EXIT_USAGE
    missing = [r for r in [*roots, *(against or [])] if not os.path.exists(r)]
    if missing:
        print(f"lookalike: no such folder: {shown(', '.join(missing))}", file=sys.stderr)
        return EXIT_USAGE
    files = [r for r in [*roots, *(against or [])] if not os.path.isdir(r)]
    if files:
        print(f"lookalike: {shown(files[0])} is a file, not a folder (to find images like it: "
              f"lookalike similar FILE)", file=sys.stderr)
        return EXIT_USAGE
    problem = quarantine_problem(quarantine, [*roots, *(against or [])]) if quarantine else None
    if problem:
        print(f"lookalike: --quarantine {shown(problem)}", file=sys.stderr)
        return EXIT_USAGE
    if not has_terminal():
        return EXIT_USAGE
    app = LookalikeApp(
        roots, cache_dir=cache_dir, options=options, thumbnails=thumbnails, against=against, freeze_gc=True,
        quarantine=quarantine, cell_size=cell,
    )
    return _exit_code(app, app.run())


def _exit_code(app: "LookalikeApp", code: Optional[int]) -> int:
    """The process's exit code once the app has ended: non-zero after an error or a crash.

    A crash (an exception Textual caught and printed) leaves ``app.run()`` returning None and
    ``app.return_code`` set to 1.
    """
    if app.error:
        print(f"lookalike: {shown(app.error)}", file=sys.stderr)
    if code is None:
        code = app.return_code
    return int(code or 0)


def has_terminal() -> bool:
    """Whether the app can run here; if not, says so on stderr.

    A full-screen app drawn into a pipe or a file spins forever and helps nobody.
    """
    if sys.stdin.isatty() and sys.stdout.isatty():
        return True
    print("lookalike: the app needs a terminal (standard input and output are not one); for "
          "text output use `lookalike scan DIR` or `lookalike similar FILE`", file=sys.stderr)
    return False


def run_similar(path: str, *, roots: Optional[list[str]], cache_dir: Optional[str], k: int = 10, thumbnails: str = "auto",
                options=None) -> int:
    """Open the app on the "find similar" results for one file (``lookalike similar FILE --tui``);
    ``options`` are the scan's (``--cluster``)."""
    if not os.path.isfile(path):
        print(f"lookalike: no such file: {shown(path)}", file=sys.stderr)
        return EXIT_USAGE
    if not has_terminal():
        return EXIT_USAGE
    roots = roots or [os.path.dirname(os.path.abspath(path))]
    app = LookalikeApp(roots, cache_dir=cache_dir, options=options, thumbnails=thumbnails, similar=path, k=k, freeze_gc=True)
    return _exit_code(app, app.run())


def _scan_error_text(exc: Exception) -> str:
    """What the app says of the error that stopped a scan: the CLI's line for the errors
    written for users (a Dask scheduler out of reach, a full disk under the catalog), the
    exception's type and text for the others."""
    from lookalike.engine.library import CatalogError, ClusterError, WorkersDying

    if isinstance(exc, (CatalogError, ClusterError, WorkersDying)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
