"""The Runs tab's table: one sortable, filterable row per run, and the selection's colour swatches.

`RunsTable` owns its item model and the sort/filter proxy in front of it. It is told which runs to
show and which settings differ between them (extra columns); it says which runs are selected and
paints a selected run's colour beside its name. Which runs to list, their colours and what a
selection does stay with gui.runs_page.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from core.formatting import format_duration
from core.runs.index import fingerprint_label, flat_settings
from core.runs.run_info import RunInfo
from gui.run_overlay import swatch

BASE_COLUMNS = ("Started", "Run", "Model", "Status", "Epochs", "Best val acc", "Best val loss", "Duration",
                "Dataset")
RUN_COLUMN = 1
STATUS_COLUMN = 3
DATASET_COLUMN = 8
RUN_DIR_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
# short words for the Status column
STATUS_WORDS = {"cancelled": "stopped", "running": "training", "stopped": "stopped by sweep"}


class RunsTable(QTableView):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsTable")
        self.item_model = QStandardItemModel(0, len(BASE_COLUMNS), self)
        self.item_model.setHorizontalHeaderLabels(list(BASE_COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.item_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(100)  # fit columns to the first rows, not to a thousand
        header.setStretchLastSection(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.differing: list[str] = []  # the settings columns shown
        self._row_of: dict[str, int] = {}  # run_dir -> row of the item model

    def shows(self, run_dirs, differing: list[str]) -> bool:
        """Whether the table already has exactly these runs' rows and these settings columns."""
        return self._row_of.keys() == set(run_dirs) and differing == self.differing

    def fill(self, infos: list[RunInfo], differing: list[str]) -> None:
        """A new model, filled before the proxy sees it (so it sorts once, not once per row); the
        selection is kept, without a selection change being signalled."""
        selected = self.selected_run_dirs()
        model = QStandardItemModel(0, len(BASE_COLUMNS) + len(differing), self)
        model.setHorizontalHeaderLabels([*BASE_COLUMNS, *differing])
        for info in infos:
            model.appendRow(run_row(info, differing))
        self.differing = differing
        self._row_of = {info.run_dir: row for row, info in enumerate(infos)}
        selection = self.selectionModel()
        blocked = selection.blockSignals(True)  # the rows go and come back: one change, not two
        old, self.item_model = self.item_model, model
        self.proxy.setSourceModel(model)
        old.deleteLater()
        self.select(selected)
        selection.blockSignals(blocked)
        self.resizeColumnsToContents()

    def update_row(self, info: RunInfo) -> None:
        """Redraws one listed run's row in place."""
        row = self._row_of[info.run_dir]
        for column, item in enumerate(run_row(info, self.differing)):
            self.item_model.setItem(row, column, item)

    def filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)

    def count_text(self) -> str:
        shown, listed = self.proxy.rowCount(), self.item_model.rowCount()
        return f"{listed} runs" if shown == listed else f"{shown} of {listed} runs"

    def selected_run_dirs(self) -> list[str]:
        """The selected runs, in table order."""
        rows = sorted(index.row() for index in self.selectionModel().selectedRows(RUN_COLUMN))
        return [self.proxy.index(row, RUN_COLUMN).data(RUN_DIR_ROLE) for row in rows]

    def select(self, run_dirs: list[str]) -> None:
        """Selects exactly these runs (those listed), without signalling a selection change."""
        selection = self.selectionModel()
        blocked = selection.blockSignals(True)
        selection.clearSelection()
        flags = (selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, RUN_COLUMN)
            if index.data(RUN_DIR_ROLE) in run_dirs:
                selection.select(index, flags)
        selection.blockSignals(blocked)
        self.viewport().update()

    def paint_swatches(self, colours: dict[str, str]) -> None:
        """A square of its colour beside each run in `colours` (run_dir -> colour); none beside the others."""
        for row in range(self.item_model.rowCount()):
            item = self.item_model.item(row, RUN_COLUMN)
            colour = colours.get(item.data(RUN_DIR_ROLE))
            item.setData(swatch(colour) if colour else None, Qt.ItemDataRole.DecorationRole)

    def swatch_colour(self, run_dir: str) -> str | None:
        """The colour of the swatch painted beside a run, None when there is none."""
        for row in range(self.item_model.rowCount()):
            item = self.item_model.item(row, RUN_COLUMN)
            if item.data(RUN_DIR_ROLE) == run_dir:
                icon = item.data(Qt.ItemDataRole.DecorationRole)
                return None if icon is None else icon.pixmap(12, 12).toImage().pixelColor(6, 6).name()
        return None


def run_row(info: RunInfo, differing: list[str]) -> list[QStandardItem]:
    """One run's cells: what they show, and the key they sort by (SORT_ROLE)."""
    readable = info.status != "unreadable"
    best = info.best
    settings = flat_settings(info.config)
    cells: list[tuple[str, Any]] = [
        (info.started_at[:16].replace("T", " "), info.started_at),
        (info.name, info.name.lower()),
        (info.model if readable else "", info.model.lower() if readable else ""),
        (info.status, info.status),
        (f"{info.done}/{info.total}" if readable else "", info.done),
        _number(best.get("val_accuracy"), "{:.3f}"),
        _number(best.get("val_loss"), "{:.4f}"),
        (format_duration(info.duration_seconds) if info.duration_seconds is not None else "",
         info.duration_seconds if info.duration_seconds is not None else -1.0),
        (_dataset(info), _dataset(info).lower()),
        *((_setting(settings.get(name)), _sort_key(settings.get(name))) for name in differing),
    ]
    items = []
    for text, key in cells:
        item = QStandardItem(text)
        item.setData(key, SORT_ROLE)
        items.append(item)
    items[RUN_COLUMN].setData(info.run_dir, RUN_DIR_ROLE)
    items[RUN_COLUMN].setToolTip(info.run_dir if readable else f"{info.run_dir}\n{info.problem}")
    items[STATUS_COLUMN].setToolTip(info.describe() if readable else info.problem)
    items[STATUS_COLUMN].setText(STATUS_WORDS.get(info.status, info.status))
    items[DATASET_COLUMN].setToolTip(_fingerprint_tip(info))
    return items


def _number(value: Any, pattern: str) -> tuple[str, float]:
    if isinstance(value, int | float):
        return pattern.format(value), float(value)
    return "", float("-inf")


def _dataset(info: RunInfo) -> str:
    train_dir = info.config.get("train_dir")
    name = os.path.basename(os.path.normpath(train_dir)) if isinstance(train_dir, str) and train_dir else ""
    label = fingerprint_label(info.dataset_fingerprint)
    return f"{name} · {label}" if name and label else name or label


def _fingerprint_tip(info: RunInfo) -> str:
    lines = [f"Training folder: {info.config.get('train_dir', '-')}",
             f"Validation folder: {info.config.get('val_dir') or 'split from the training folder'}"]
    for split, title in (("train", "Training"), ("val", "Validation")):
        part = info.dataset_fingerprint.get(split)
        if isinstance(part, dict):
            lines.append(f"{title}: {part.get('files')} files, fingerprint {str(part.get('hash', ''))[:16]}")
    return "\n".join(lines)


def _setting(value: Any) -> str:
    return "-" if value is None else str(value)


def _sort_key(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _setting(value)
