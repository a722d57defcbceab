"""The Runs tab's two views of the selected runs: their curves overlaid (RunOverlay) and what differs
between them (RunDifferences). Both only draw what they are given: histories and RunInfos are read
by the page, on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.formatting import format_duration
from core.runs.index import fingerprint_label, flat_settings
from core.runs.run_info import RunInfo

# (history key, plot) pairs: validation solid, training dashed
VALIDATION_KEYS = {"loss": "val_loss", "accuracy": "val_accuracy"}
TRAINING_KEYS = {"loss": "loss", "accuracy": "accuracy"}
AXIS_COLOUR = "#374151"
ENVIRONMENT_KEYS = ("python", "tensorflow", "keras", "numpy", "pillow", "PySide6", "os", "cpu", "gpus")


@dataclass(frozen=True)
class RunCurves:
    run_dir: str
    name: str
    colour: str
    history: list[dict[str, float]]


class RunOverlay(QWidget):
    """Validation loss and accuracy per epoch of every run given, one colour per run, a legend of
    run names; with "Training curves" on, the training loss and accuracy too, dashed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots = {"loss": self._plot("Validation loss", "Loss"),
                      "accuracy": self._plot("Validation accuracy", "Accuracy")}
        self.legend = self.plots["loss"].addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.training_check = QCheckBox("Training curves too (dashed)")
        self.training_check.toggled.connect(self._show_training)
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {}  # run_dir -> history key -> curve
        plots = QHBoxLayout()
        plots.addWidget(self.plots["loss"])
        plots.addWidget(self.plots["accuracy"])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(plots, 1)
        layout.addWidget(self.training_check)

    @staticmethod
    def _plot(title: str, y_label: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setTitle(title, size="10pt", color="#1f2937")
        for side, label in (("bottom", "Epoch"), ("left", y_label)):
            axis = plot.getAxis(side)
            axis.setPen(AXIS_COLOUR)
            axis.setTextPen(AXIS_COLOUR)
            axis.enableAutoSIPrefix(False)  # accuracy stays 0..1, never "x0.001"
            plot.setLabel(side, label)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMenuEnabled(False)
        return plot

    def show_runs(self, runs: list[RunCurves]) -> None:
        """Draws exactly `runs` (curves of runs no longer given are removed)."""
        wanted = {run.run_dir for run in runs}
        for run_dir in [run_dir for run_dir in self.curves if run_dir not in wanted]:
            for key, curve in self.curves.pop(run_dir).items():
                self._plot_of(key).removeItem(curve)
        for run in runs:
            self._draw(run)

    def _draw(self, run: RunCurves) -> None:
        curves = self.curves.get(run.run_dir)
        if curves is None:
            curves = self.curves[run.run_dir] = self._make_curves(run)
        epochs = np.array([row["epoch"] + 1 for row in run.history], dtype=np.float64)
        for key, curve in curves.items():
            values = np.array([row.get(key, np.nan) for row in run.history], dtype=np.float64)
            curve.setData(epochs, values, connect="finite")
            if key in TRAINING_KEYS.values():
                curve.setVisible(self.training_check.isChecked())

    def _make_curves(self, run: RunCurves) -> dict[str, pg.PlotDataItem]:
        curves = {}
        for plot_name, key in VALIDATION_KEYS.items():
            curves[key] = self.plots[plot_name].plot(
                [], [], pen=pg.mkPen(run.colour, width=2.5), symbol="o", symbolSize=5,
                symbolBrush=run.colour, symbolPen=None, name=run.name if plot_name == "loss" else None,
            )
        for plot_name, key in TRAINING_KEYS.items():
            pen = pg.mkPen(run.colour, width=1.5, style=Qt.PenStyle.DashLine)
            curves[key] = self.plots[plot_name].plot([], [], pen=pen)  # unnamed: not in the legend
        return curves

    def _plot_of(self, key: str) -> pg.PlotWidget:
        return self.plots["loss" if key in ("loss", "val_loss") else "accuracy"]

    def _show_training(self, on: bool) -> None:
        for curves in self.curves.values():
            for key in TRAINING_KEYS.values():
                curves[key].setVisible(on)

    def curve_data(self, run_dir: str, key: str) -> tuple[list[float], list[float]]:
        """The points drawn for one run and history key (for tests and the read-out)."""
        x, y = self.curves[run_dir][key].getData()
        return ([] if x is None else list(x)), ([] if y is None else list(y))

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]


class RunDifferences(QWidget):
    """The settings, data fingerprints, environment and results of the selected runs side by side,
    one column per run; "Only what differs" hides the rows that are the same in all of them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.only_differences = QCheckBox("Only what differs")
        self.only_differences.setChecked(True)
        self.only_differences.toggled.connect(lambda _on: self._fill())
        self.table = QTableWidget()
        self.table.setObjectName("resultTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.only_differences)
        layout.addWidget(self.table, 1)
        self._runs: list[tuple[RunInfo, str]] = []

    def show_runs(self, runs: list[tuple[RunInfo, str]]) -> None:
        """`runs`: (info, colour) in column order."""
        self._runs = list(runs)
        self._fill()

    def rows(self) -> dict[str, list[str]]:
        """What the table shows: row name -> one text per run (for tests)."""
        return {
            self.table.verticalHeaderItem(row).text(): [
                self.table.item(row, column).text() for column in range(self.table.columnCount())
            ]
            for row in range(self.table.rowCount())
        }

    def _fill(self) -> None:
        described = [describe_run(info) for info, _colour in self._runs]
        names: dict[str, None] = {}
        for values in described:
            names.update(dict.fromkeys(values))
        if self.only_differences.isChecked() and len(described) > 1:
            names = {name: None for name in names if len({values.get(name, "") for values in described}) > 1}
        self.table.clear()
        self.table.setColumnCount(len(self._runs))
        self.table.setRowCount(len(names))
        self.table.setVerticalHeaderLabels(list(names))
        for column, (info, colour) in enumerate(self._runs):
            self.table.setHorizontalHeaderItem(column, QTableWidgetItem(swatch(colour), info.name))
            for row, name in enumerate(names):
                self.table.setItem(row, column, QTableWidgetItem(described[column].get(name, "")))


def swatch(colour: str) -> QIcon:
    """A small square of a run's colour, beside its name in tables."""
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


def describe_run(info: RunInfo) -> dict[str, str]:
    """Every row of the differences table for one run, as text."""
    values = {f"setting: {name}": _text(value) for name, value in flat_settings(info.config).items()}
    fingerprint = info.dataset_fingerprint
    values["data: fingerprint"] = fingerprint_label(fingerprint) or "-"
    for split, title in (("train", "training"), ("val", "validation")):
        part = fingerprint.get(split) if isinstance(fingerprint.get(split), dict) else {}
        if part:
            values[f"data: {title} files"] = f"{part.get('files')} ({str(part.get('hash', ''))[:8]})"
            counts = part.get("class_counts") if isinstance(part.get("class_counts"), dict) else {}
            values[f"data: {title} classes"] = ", ".join(f"{name} {n}" for name, n in counts.items())
    for key in ENVIRONMENT_KEYS:
        if key in info.environment:
            values[f"environment: {key}"] = _text(info.environment[key])
    values["result: status"] = info.status
    values["result: epochs"] = f"{info.done} of {info.total}"
    values["result: best val accuracy"] = _number(info.best.get("val_accuracy"), "{:.4f}")
    values["result: best val loss"] = _number(info.best.get("val_loss"), "{:.4f}")
    values["result: training time"] = format_duration(info.duration_seconds)
    return values


def _number(value: Any, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "-"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return "-" if value is None else str(value)
