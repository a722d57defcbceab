"""The Runs tab's "Sweeps" view: one sweep as a group. A row per trial (its settings, status, epochs and
result, from sweep.json and the trials' run folders), a scatter of the sweep's metric against one
hyperparameter (pyqtgraph; learning rates on a log axis), and "Train with the best settings", which
starts a run like the best trial (as `train --like`).

While the sweep it shows is running, sweep.json is read again every POLL_MS, so the rows are live.
Reading is plain JSON (core.runs.sweep_folder); nothing here trains.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.runs.sweep_folder import SweepInfo, find_sweep_dirs, read_sweep

POLL_MS = 2000
COLUMNS = ("Trial", "Status", "Epochs", "Val acc", "Val loss")
STATUS_WORDS = {"stopped": "stopped by the sweep", "cancelled": "stopped", "pending": "waiting"}
POINT_COLOURS = {"completed": "#2563eb", "stopped": "#9ca3af", "running": "#16a34a"}


class SweepGroup(QWidget):
    train_like_requested = Signal(str)  # the best trial's run folder
    shown = Signal(str)  # sweep_dir, after the rows and the scatter were filled

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info: SweepInfo | None = None
        self.sweep_box = QComboBox()
        self.parameter_box = QComboBox()
        self.summary = QLabel()
        self.summary.setObjectName("sectionHint")
        self.best_button = QPushButton("Train with the best settings")
        self.best_button.setEnabled(False)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.scatter = pg.ScatterPlotItem(size=9)
        self.plot.addItem(self.scatter)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.reload)
        self._layout()
        self.sweep_box.currentIndexChanged.connect(lambda _i: self.show_sweep(self.sweep_box.currentData()))
        self.parameter_box.currentIndexChanged.connect(lambda _i: self._draw())
        self.best_button.clicked.connect(self._train_like_best)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Sweep"))
        top.addWidget(self.sweep_box, 1)
        top.addWidget(self.best_button)
        lower = QHBoxLayout()
        lower.addWidget(self.table, 3)
        side = QVBoxLayout()
        side.addWidget(self.parameter_box)
        side.addWidget(self.plot, 1)
        lower.addLayout(side, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addLayout(lower, 1)

    def list_sweeps(self, folders: list[str]) -> None:
        """The sweeps under the Runs tab's folders, newest first; keeps the one shown if still there."""
        current = self.info.sweep_dir if self.info else None
        sweeps = find_sweep_dirs(folders)
        self.sweep_box.blockSignals(True)
        self.sweep_box.clear()
        for sweep_dir in sweeps:
            self.sweep_box.addItem(sweep_dir.rstrip("/").rsplit("/", 1)[-1], sweep_dir)
        self.sweep_box.blockSignals(False)
        if sweeps:
            self.show_sweep(current if current in sweeps else sweeps[0])

    def show_sweep(self, sweep_dir: str | None) -> None:
        if not sweep_dir:
            return
        index = self.sweep_box.findData(sweep_dir)
        if index < 0:
            self.sweep_box.addItem(sweep_dir.rstrip("/").rsplit("/", 1)[-1], sweep_dir)
            index = self.sweep_box.count() - 1
        self.sweep_box.blockSignals(True)
        self.sweep_box.setCurrentIndex(index)
        self.sweep_box.blockSignals(False)
        self.info = read_sweep(sweep_dir)
        self._fill()

    def reload(self) -> None:
        if self.info is not None:
            self.info = read_sweep(self.info.sweep_dir)
            self._fill()

    def _fill(self) -> None:
        info = self.info
        if info.problem:
            self.summary.setText(info.problem)
            self.table.setRowCount(0)
            self.best_button.setEnabled(False)
            return
        names = list(info.record.get("space", {}))
        self.table.setColumnCount(len(COLUMNS) + len(names))
        self.table.setHorizontalHeaderLabels([*COLUMNS, *names])
        self.table.setRowCount(len(info.trials))
        for row, trial in enumerate(info.trials):
            self._set_row(row, trial, names)
        self._fill_parameters(names)
        best = info.best
        status = info.record.get("status", "")
        self.summary.setText(f"{len(info.trials)} trials, {status}; best by {info.metric}: "
                             + (f"{best['run_dir']} ({best[info.metric]:.4g})" if best else "none yet"))
        self.best_button.setEnabled(best is not None)
        self._draw()
        live = status in ("running", "pending")
        if live and not self.timer.isActive():
            self.timer.start()
        elif not live:
            self.timer.stop()
        self.shown.emit(info.sweep_dir)

    def _set_row(self, row: int, trial: dict[str, Any], names: list[str]) -> None:
        result = trial.get("result") or {}
        status = str(trial.get("status", ""))
        if status == "stopped" and trial.get("stopped_at"):
            status = f"stopped by the sweep after epoch {trial['stopped_at']}"
        cells = [trial.get("run_dir", ""), STATUS_WORDS.get(status, status),
                 f"{trial.get('epochs_completed', 0)}/{trial.get('config', {}).get('epochs', '?')}",
                 _number(result.get("val_accuracy"), "{:.3f}"), _number(result.get("val_loss"), "{:.4f}"),
                 *(str(trial.get("settings", {}).get(name, "")) for name in names)]
        for column, text in enumerate(cells):
            self.table.setItem(row, column, QTableWidgetItem(text))

    def _fill_parameters(self, names: list[str]) -> None:
        if [self.parameter_box.itemText(i) for i in range(self.parameter_box.count())] == names:
            return
        self.parameter_box.blockSignals(True)
        self.parameter_box.clear()
        self.parameter_box.addItems(names)
        self.parameter_box.blockSignals(False)

    def scatter_points(self) -> list[tuple[float, float, str]]:
        """(x, metric, status) of every trial with a result, x the chosen hyperparameter's value
        (a choice's position in its list when it is not a number)."""
        if self.info is None or not self.parameter_box.currentText():
            return []
        name = self.parameter_box.currentText()
        space = self.info.record.get("space", {}).get(name, {})
        values = space.get("values") or []
        points = []
        for trial in self.info.trials:
            result, value = trial.get("result") or {}, trial.get("settings", {}).get(name)
            metric = result.get(self.info.metric)
            if not isinstance(metric, int | float) or value is None:
                continue
            x = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float(
                values.index(value) if value in values else 0)
            points.append((x, float(metric), str(trial.get("status", ""))))
        return points

    def _draw(self) -> None:
        points = self.scatter_points()
        name = self.parameter_box.currentText()
        log_x = name == "learning_rate"
        self.plot.setLogMode(x=log_x, y=False)
        spots = [{"pos": (math.log10(x) if log_x and x > 0 else x, y),
                  "brush": pg.mkBrush(POINT_COLOURS.get(status, "#ea580c"))} for x, y, status in points]
        self.scatter.setData(spots)
        if self.info is not None:
            self.plot.setLabel("left", self.info.metric)
            self.plot.setLabel("bottom", name)

    def _train_like_best(self) -> None:
        if self.info is not None and self.info.best:
            self.train_like_requested.emit(self.info.trial_path(self.info.best))

    def hideEvent(self, event) -> None:
        self.timer.stop()
        super().hideEvent(event)


def _number(value: Any, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "-"
