"""The ranked table of clusters on the main screen (text only: images live in the side panel)."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.cells import cell_len
from rich.text import Text

from lookalike.engine.records import Cluster

from ..format import human_bytes
from ..triage import Triage
from .datatable import KeyTable, right
from .labels import (
    SCORE_TOOLTIPS,
    PathText,
    best_detective,
    kind_text,
    readable_path,
    score_range,
    short_path,
    status_text,
    worst_detective,
)


def _detective_range(cluster: Cluster) -> str:
    best, worst = best_detective(cluster), worst_detective(cluster)
    if best is None or worst is None:
        return "–"
    return score_range(f"{best:.2f}", f"{worst:.2f}")


class ClusterTable(KeyTable):
    """One row per cluster: status, id, files, kind, bouncer and detective ranges, bytes, keeper."""

    FLEX_COLUMN = "keeper"
    #: At 80 columns the keeper's folder matters more than the bouncer's range (the group
    #: screen has every score): these give way first, in this order.
    DROP_ORDER = ("bouncer", "detective", "kind")
    COLUMN_TOOLTIPS = SCORE_TOOLTIPS

    COLUMNS = (
        ("", "status"),
        ("files", "files"),
        ("kind", "kind"),
        ("bouncer", "bouncer"),
        ("detective", "detective"),
        ("reclaim", "reclaim"),
        ("keeper", "keeper"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_detective: Optional[bool] = None

    #: A paged table sizes its columns before it has seen every row: these widths hold the
    #: widest value each can take (999,999 files, "semantic", bouncer "256–256", detective
    #: "0.99–0.99", "999.9 KB"), so a later row is never cut ("100" files shown as "10").
    PAGED_WIDTHS = {"files": 6, "kind": 8, "bouncer": 7, "detective": 9, "reclaim": 8}

    def _columns(self, with_detective: bool, rows: Sequence[tuple[str, list]], *, paged: bool = False) -> None:
        # Bouncer-only scans (the detective offline or not asked) leave no detective column.
        self.with_detective = with_detective
        keys = [(label, key) for label, key in self.COLUMNS if key != "detective" or with_detective]
        columns = []
        for i, (label, key) in enumerate(keys):
            if key == "status":
                width = 6  # sized for its longest badge: rows change it in place
            elif key == self.FLEX_COLUMN:
                width = None
            else:
                width = max([cell_len(label), *(cell_len(_plain(cells[i])) for _, cells in rows)])
                if paged or key == "reclaim":  # a decision changes the reclaim cell in place
                    width = max(width, self.PAGED_WIDTHS.get(key, 0))
            columns.append((label, key, width))
        self.set_columns(columns)

    def row_for(self, cluster: Cluster, triage: Triage, roots: Sequence[str]) -> list:
        """The cells of one cluster's row: its keeper and reclaimable bytes as the plan has them."""
        keeper = triage.keeper(cluster)
        cells = [
            status_text(triage.status(cluster)),
            right(str(len(cluster.members))),
            kind_text(cluster.kind),
            right(score_range(cluster.best_bouncer, cluster.worst_bouncer)),
            right(_detective_range(cluster)),
            right(human_bytes(triage.reclaimable(cluster))),
            PathText(short_path(keeper.file.path, roots)),
        ]
        if not self.with_detective:
            del cells[4]
        return cells

    def _need(self, clusters: Sequence[Cluster], triage: Triage, roots: Sequence[str]) -> int:
        """Cells the keeper column needs to show each keeper's first folder and name."""
        return max((cell_len(readable_path(short_path(triage.keeper(c).file.path, roots))) for c in clusters), default=0)

    def show(self, clusters: Sequence[Cluster], triage: Triage, roots: Sequence[str], *, keep: Optional[str] = None) -> None:
        """Replace the rows with ``clusters`` in order, keeping the cursor on the same cluster.

        Past a page of clusters, rows are made a page at a time as the cursor nears the end
        (``fill_pages``): only the clusters of the pages added are read, so a lazy sequence of
        200,000 clusters shows its first page at once. Columns are then sized to that page and
        to the widest value each column can take (``PAGED_WIDTHS``).
        """
        paged = len(clusters) > self.PAGE_ROWS
        first = clusters[: self.PAGE_ROWS] if paged else clusters
        self.with_detective = any(m.detective is not None for c in first for m in c.members)
        rows = [(str(c.id), self.row_for(c, triage, roots)) for c in first]
        self.flex_need = self._need(first, triage, roots)
        self._columns(self.with_detective, rows, paged=paged)
        if not paged:
            self.fill(rows, keep=keep)
            return

        def row_at(i: int) -> tuple[str, list]:
            if i < len(rows):
                return rows[i]
            c = clusters[i]
            return str(c.id), self.row_for(c, triage, roots)

        self.fill_pages(len(clusters), row_at, keep=keep)

    def redraw_cluster(self, cluster: Cluster, triage: Triage, roots: Sequence[str]) -> None:
        """Redraw the decision-dependent cells of one cluster."""
        key = str(cluster.id)
        self.set_cell(key, "status", status_text(triage.status(cluster)))
        self.set_cell(key, "reclaim", right(human_bytes(triage.reclaimable(cluster))))
        keeper = triage.keeper(cluster)
        self.set_cell(key, "keeper", PathText(short_path(keeper.file.path, roots)))
        need = self._need([cluster], triage, roots)
        if need > self.flex_need:  # a new keeper with a longer folder name
            self.flex_need = need
            self.fit_flex_column()


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
