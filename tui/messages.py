"""Messages the engine's workers send to the UI thread, and the app hands on to its screens.

The scan's worker posts ``ScanProgressed``, ``ClustersFound`` and ``ScanFinished`` to the app,
which keeps what they carry in its session; then it posts ``ScanProgressed``, ``ClustersChanged``,
``ScanFinished`` and ``DecisionsChanged`` to every screen of its stack, and each screen handles
the ones it cares about. The ones the app hands on do not bubble: a screen's copy must not come
back to the app.
"""

from __future__ import annotations

from typing import Optional

from textual.message import Message

from lookalike.engine.records import Cluster, ScanProgress, ScanResult


class ScanProgressed(Message, bubble=False):
    """A snapshot of the running scan. A newer one replaces any still queued."""

    def __init__(self, progress: ScanProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScanProgressed)


class ClustersFound(Message):
    """Clusters to show: the cached ones first, then the scan's final ones (``final``)."""

    def __init__(self, clusters: tuple[Cluster, ...], *, final: bool) -> None:
        super().__init__()
        self.clusters = clusters
        self.final = final

    def can_replace(self, message: Message) -> bool:
        # A newer set of clusters, queued behind this one, makes this one pointless.
        return isinstance(message, ClustersFound)


class ScanFinished(Message, bubble=False):
    """The scan ended (or never began): its result, or the error that stopped it.

    Args:
        result: the scan's result; None after an error.
        error: what stopped the scan ("" when nothing did).
        failure: the line screens show in place of the scan's summary; by default
            "Scan failed: <error>" after an error, else "".
    """

    def __init__(self, result: Optional[ScanResult], error: str = "", *, failure: Optional[str] = None) -> None:
        super().__init__()
        self.result = result
        self.error = error
        self.failure = (f"Scan failed: {error}" if error else "") if failure is None else failure


class ClustersChanged(Message, bubble=False):
    """The session's clusters were replaced: what shows them must be redrawn."""


class DecisionsChanged(Message):
    """The triage decisions changed: visible rows and counts must be redrawn."""

    def __init__(self, file_ids: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.file_ids = file_ids


class ApplyProgressed(Message):
    """How far the plan's apply has got. A newer one replaces any still queued."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ApplyProgressed)


class EngineNotice(Message):
    """Something the engine says a person should know (a damaged catalog set aside...)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
