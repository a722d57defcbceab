"""Live loss and accuracy plots (pyqtgraph).

Each series is one curve created once and updated with setData. Points are appended to numpy buffers
that grow by doubling; a QTimer redraws at most MAX_REDRAWS_PER_SECOND times, and only what changed
since the last redraw, so the batch rate never drives the paint rate. The per-batch curves are drawn
without antialiasing: painting is the GUI thread's largest cost while a fast model trains, and every
millisecond of it competes with the training thread for the CPU and the GIL. The x axis is in epochs:
batch `step` of epoch `e` sits at e + (step + 1) / steps, and the end of epoch e at e + 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from core.events import BatchEnd
from gui.plot_data import EmaSmoother, SeriesBuffer, steady_range, value_at

MAX_REDRAWS_PER_SECOND = 10
TRAIN_COLOUR = "#2563eb"
VAL_COLOUR = "#ea580c"
BEST_COLOUR = "#16a34a"
LR_COLOUR = "#7c3aed"
EARLY_STOP_COLOUR = "#dc2626"
RESUME_COLOUR = "#6b7280"
FINE_TUNE_COLOUR = "#0d9488"
pg.setConfigOptions(antialias=True, background="w", foreground="#374151")

METRICS = (("loss", "Loss", "val_loss"), ("accuracy", "Accuracy", "val_accuracy"))


class EpochAxis(pg.AxisItem):
    """An x axis in epochs with ticks on whole epochs only (1, 2, 5, 10, ... apart), as a run has no
    epoch 0.2; fractional ticks appear only when the view is zoomed inside a single epoch."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        levels = super().tickSpacing(minVal, maxVal, size)
        if abs(maxVal - minVal) < 1:
            return levels
        whole = [(spacing, offset) for spacing, offset in levels if spacing >= 1 and spacing == int(spacing)]
        return whole or [(1.0, 0.0)]


class MetricPlot(pg.PlotWidget):
    """One metric: per-batch training (raw and smoothed), per-epoch training and validation, best mark."""

    def __init__(self, title: str, y_label: str, parent: QWidget | None = None):
        super().__init__(parent=parent, axisItems={"bottom": EpochAxis("bottom")})
        self.setTitle(title, size="11pt", color="#1f2937")
        self.setLabel("bottom", "Epoch")
        self.setLabel("left", y_label)
        self.showGrid(x=True, y=True, alpha=0.15)
        self.setMenuEnabled(False)
        item = self.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        # The legend sits in its own row under the axis, so it never hides a curve.
        legend = pg.LegendItem(labelTextColor="#374151", labelTextSize="8pt", verSpacing=-8, horSpacing=10)
        item.layout.addItem(legend, 4, 1)
        legend.setColumnCount(3)
        # Axes (with their grid) and the legend change rarely, but every redraw of a curve repainted
        # them: pyqtgraph replays their pictures in Python and C++ with the GIL held (the stall
        # table's AxisItem.paint). Cached as pixmaps, a repaint only copies them.
        for name in ("left", "bottom"):
            item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        legend.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.batch_raw = self.plot([], [], pen=pg.mkPen(TRAIN_COLOUR + "55", width=1), antialias=False)
        self.batch_smooth = self.plot([], [], pen=pg.mkPen(TRAIN_COLOUR, width=1.5), antialias=False)
        self.train_epoch = self.plot(
            [], [], pen=pg.mkPen(TRAIN_COLOUR, width=2, style=Qt.PenStyle.DashLine), symbol="o", symbolSize=7,
            symbolBrush=TRAIN_COLOUR, symbolPen="w",
        )
        self.val_epoch = self.plot(
            [], [], pen=pg.mkPen(VAL_COLOUR, width=2.5), symbol="s", symbolSize=8,
            symbolBrush=VAL_COLOUR, symbolPen="w",
        )
        self.best = pg.ScatterPlotItem(size=18, symbol="star", brush=BEST_COLOUR, pen=pg.mkPen("w", width=1))
        self.best.setZValue(10)
        self.addItem(self.best)
        for curve, label in ((self.batch_raw, "batch"), (self.batch_smooth, "smoothed"),
                             (self.train_epoch, "train"), (self.val_epoch, "validation"),
                             (self.best, "best")):
            legend.addItem(curve, label)
        self.legend = legend
        best_pen = pg.mkPen(BEST_COLOUR, width=1, style=Qt.PenStyle.DotLine)
        self.best_line = pg.InfiniteLine(angle=90, pen=best_pen)
        self.best_line.hide()
        self.addItem(self.best_line, ignoreBounds=True)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#9ca3af", width=1))
        self.cursor.hide()
        self.addItem(self.cursor, ignoreBounds=True)
        for curve in (self.batch_raw, self.batch_smooth):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            curve.setSkipFiniteCheck(False)  # loss can be NaN
        self.markers: list[pg.InfiniteLine] = []

    def add_marker(self, x: float, text: str, colour: str, style: Qt.PenStyle, position: float,
                   kind: str, left: bool = False) -> pg.InfiniteLine:
        """A labelled vertical line at epoch `x`; `position` (0 bottom .. 1 top) places the label,
        right of the line, or left of it with `left`."""
        anchor = (1.0, 0.5) if left else (0.0, 0.5)
        line = pg.InfiniteLine(
            pos=x, angle=90, pen=pg.mkPen(colour, width=1.5, style=style), movable=False, label=text,
            labelOpts={"position": position, "color": colour, "anchors": [anchor, anchor],
                       "fill": pg.mkBrush(255, 255, 255, 210)},
        )
        line.kind = kind
        line.label.setZValue(20)
        self.addItem(line, ignoreBounds=True)
        self.markers.append(line)
        return line

    def clear_markers(self) -> None:
        for line in self.markers:
            self.removeItem(line)
        self.markers.clear()

    def marker_texts(self, kind: str | None = None) -> list[str]:
        return [line.label.format for line in self.markers if kind is None or line.kind == kind]


class LivePlots(QWidget):
    """Loss and accuracy side by side, a smoothing slider, and a read-out of values under the mouse."""

    redrawn = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots = {name: MetricPlot(title, title.lower()) for name, title, _ in METRICS}
        self.plots["accuracy"].setXLink(self.plots["loss"])
        self.plots["accuracy"].setYRange(0, 1.0, padding=0.02)
        self.plots["accuracy"].getPlotItem().enableAutoRange(axis="y", enable=False)
        # The loss axis follows the data in steps (steady_range), not at every redraw: each change
        # makes pyqtgraph lay its ticks out again in Python, the costliest part of a redraw.
        self.plots["loss"].getPlotItem().enableAutoRange(axis="y", enable=False)
        self._loss_range: tuple[float, float] | None = None
        self.batch = {name: SeriesBuffer(4096) for name, _, _ in METRICS}
        self.smoothed = {name: SeriesBuffer(4096) for name, _, _ in METRICS}
        self.smoothers = {name: EmaSmoother() for name, _, _ in METRICS}
        self.train_epochs = {name: SeriesBuffer(64) for name, _, _ in METRICS}
        self.val_epochs = {name: SeriesBuffer(64) for name, _, _ in METRICS}
        self.learning_rates = SeriesBuffer(64)  # per epoch, when the engine tracks it
        self.best_epoch: int | None = None
        self.lr_changes: list[tuple[float, float, float]] = []  # (x, old, new)
        self.early_stop_x: float | None = None
        self.resumed_at: float | None = None
        self.fine_tune_x: float | None = None
        self.redraw_count = 0
        self._dirty = False
        self._epochs_changed = False  # the per-epoch points or the best epoch changed since the redraw
        self._resmooth = False
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // MAX_REDRAWS_PER_SECOND)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self._build_controls()
        self._mouse_proxies = [
            pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
            for plot in self.plots.values()
        ]
        self.set_smoothing(0.6)

    def _build_controls(self) -> None:
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setFixedWidth(160)
        self.smoothing.setToolTip("Exponential moving average of the per-batch values, as in TensorBoard")
        self.smoothing_value = QLabel()
        self.smoothing_value.setMinimumWidth(32)
        self.smoothing.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.readout = QLabel("Move the mouse over a plot to read its values.")
        self.readout.setObjectName("plotReadout")
        controls = QHBoxLayout()
        controls.addWidget(self.readout, 1)
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.smoothing)
        controls.addWidget(self.smoothing_value)
        row = QHBoxLayout()
        row.setSpacing(8)
        for plot in self.plots.values():
            row.addWidget(plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row, 1)
        layout.addLayout(controls)

    # --- data in ----------------------------------------------------------------------------------

    def reset(self, epochs: int | None = None) -> None:
        for buffers in (self.batch, self.smoothed, self.train_epochs, self.val_epochs):
            for buffer in buffers.values():
                buffer.clear()
        for smoother in self.smoothers.values():
            smoother.reset()
        self.learning_rates.clear()
        self.best_epoch = None
        self.lr_changes.clear()
        self.early_stop_x = self.resumed_at = self.fine_tune_x = None
        for plot in self.plots.values():
            plot.clear_markers()
        self._loss_range = None
        if epochs:
            self.show_epochs(epochs)
        self._dirty = self._epochs_changed = True

    def show_epochs(self, epochs: int) -> None:
        """Fits the x axis (shared by both plots) to a run of `epochs` epochs."""
        self.plots["loss"].setXRange(0, epochs, padding=0.04)

    def is_empty(self) -> bool:
        return not any(len(buffer) for buffers in (self.batch, self.train_epochs, self.val_epochs)
                       for buffer in buffers.values())

    def add_batches(self, batches: Sequence[BatchEnd]) -> None:
        """One point per batch and metric, in the order given (the worker sends them in groups)."""
        x = np.fromiter((b.epoch + (b.step + 1) / max(b.steps, 1) for b in batches), np.float64, len(batches))
        for name in ("loss", "accuracy"):
            values = np.fromiter((getattr(b, name) for b in batches), np.float64, len(batches))
            smoother = self.smoothers[name]
            smoothed = np.fromiter((smoother.add(float(v)) for v in values), np.float64, len(values))
            self.batch[name].extend(x, values)
            self.smoothed[name].extend(x, smoothed)
        self._dirty = True

    def add_epoch(self, epoch: int, logs: dict[str, float], best_epoch: int | None = None) -> None:
        x = float(epoch + 1)
        for name, _, val_name in METRICS:
            if name in logs:
                self.train_epochs[name].append(x, float(logs[name]))
            if val_name in logs:
                self.val_epochs[name].append(x, float(logs[val_name]))
        if "learning_rate" in logs:
            rate = float(logs["learning_rate"])
            rates = self.learning_rates
            if len(rates) and rates.x[-1] == x - 1 and rate < rates.y[-1] * (1 - 1e-6):
                # Epoch `epoch` trained with a lower rate: it was reduced at the end of the one before.
                self.mark_lr_change(epoch - 1, float(rates.y[-1]), rate)
            rates.append(x, rate)
        if best_epoch is not None:
            self.best_epoch = best_epoch
        self._dirty = self._epochs_changed = True

    def load_history(self, rows: Iterable[dict[str, float]]) -> None:
        """The epochs a resumed run trained before: epoch points (and their markers), best epoch."""
        rows = sorted(rows, key=lambda row: row["epoch"])
        for row in rows:
            self.add_epoch(int(row["epoch"]), row)
        losses = [(row["val_loss"], int(row["epoch"])) for row in rows
                  if math.isfinite(row.get("val_loss", math.nan))]
        if losses:
            self.best_epoch = min(losses)[1]
        self._dirty = self._epochs_changed = True

    # --- markers ------------------------------------------------------------------------------------

    def mark_lr_change(self, epoch: int, old: float, new: float) -> None:
        """The learning rate went from `old` to `new` at the end of 0-based `epoch`; once per epoch."""
        x = float(epoch + 1)
        if any(abs(x - seen) < 1e-9 for seen, _, _ in self.lr_changes) or x == self.fine_tune_x:
            return  # once per epoch; the fine-tuning marker names its own learning rate
        self.lr_changes.append((x, old, new))
        # Alternate the label height so neighbouring reductions do not cover each other.
        position = 0.94 if len(self.lr_changes) % 2 else 0.84
        for plot in self.plots.values():
            plot.add_marker(x, f"lr → {new:.3g}", LR_COLOUR, Qt.PenStyle.DashLine, position, "lr")

    def mark_early_stop(self, epoch: int) -> None:
        """Early stopping ended the run after 0-based `epoch`."""
        x = float(epoch + 1)
        if self.early_stop_x == x:
            return
        self.early_stop_x = x
        for plot in self.plots.values():
            plot.add_marker(x, "early stop", EARLY_STOP_COLOUR, Qt.PenStyle.SolidLine, 0.62, "early_stop",
                            left=True)

    def mark_fine_tune(self, epoch: int, learning_rate: float) -> None:
        """Fine-tuning began with 0-based `epoch` (the backbone's top layers were unfrozen before it)."""
        x = float(epoch)
        if self.fine_tune_x == x:
            return
        self.fine_tune_x = x
        for plot in self.plots.values():
            for line in [m for m in plot.markers if m.kind == "lr" and m.value() == x]:
                plot.removeItem(line)
                plot.markers.remove(line)
            plot.add_marker(x, f"fine-tuning, lr {learning_rate:.3g}", FINE_TUNE_COLOUR,
                            Qt.PenStyle.DashDotLine, 0.28, "fine_tune")

    def mark_resume(self, initial_epoch: int) -> None:
        """This session continues a run that had finished `initial_epoch` epochs."""
        x = float(initial_epoch)
        if self.resumed_at == x or initial_epoch <= 0:
            return
        self.resumed_at = x
        for plot in self.plots.values():
            plot.add_marker(x, "resumed", RESUME_COLOUR, Qt.PenStyle.DotLine, 0.08, "resume")

    def marker_texts(self, kind: str | None = None) -> list[str]:
        """The labels of the markers on the loss plot (the accuracy plot has the same)."""
        return self.plots["loss"].marker_texts(kind)

    def set_best_epoch(self, epoch: int | None) -> None:
        self.best_epoch = epoch
        self._dirty = self._epochs_changed = True

    def set_smoothing(self, weight: float) -> None:
        weight = min(max(weight, 0.0), 0.99)
        if self.smoothing.value() != round(weight * 100):
            self.smoothing.setValue(round(weight * 100))
        self.smoothing_value.setText(f"{weight:.2f}")
        for smoother in self.smoothers.values():
            smoother.weight = weight
        # Re-smoothing all points is O(n): done once at the next redraw, not per slider tick.
        self._resmooth = True
        self._dirty = True

    def _resmooth_all(self) -> None:
        self._resmooth = False
        for name, smoother in self.smoothers.items():
            buffer = self.batch[name]
            self.smoothed[name].assign(buffer.x, smoother.smooth(buffer.y))

    # --- drawing ------------------------------------------------------------------------------------

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self.redraw()

    def redraw(self) -> None:
        self._dirty = False
        self.redraw_count += 1
        if self._resmooth:
            self._resmooth_all()
        smoothing_on = self.smoothing.value() > 0
        epochs_changed, self._epochs_changed = self._epochs_changed, False
        for name, plot in self.plots.items():
            plot.batch_raw.setData(self.batch[name].x, self.batch[name].y)
            smoothed = self.smoothed[name] if smoothing_on else SeriesBuffer(1)
            plot.batch_smooth.setData(smoothed.x, smoothed.y)
            if epochs_changed:
                plot.train_epoch.setData(self.train_epochs[name].x, self.train_epochs[name].y)
                plot.val_epoch.setData(self.val_epochs[name].x, self.val_epochs[name].y)
                self._draw_best(name, plot)
        self._follow_loss()
        self.redrawn.emit()

    def _follow_loss(self) -> None:
        series = [self.batch["loss"].y, self.train_epochs["loss"].y, self.val_epochs["loss"].y]
        values = np.concatenate(series)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        wanted = steady_range(float(values.min()), float(values.max()), self._loss_range)
        if wanted != self._loss_range:
            self._loss_range = wanted
            self.plots["loss"].setYRange(*wanted, padding=0)

    def _draw_best(self, name: str, plot: MetricPlot) -> None:
        x = float(self.best_epoch + 1) if self.best_epoch is not None else None
        values = self.val_epochs[name]
        match = np.flatnonzero(values.x == x) if x is not None else []
        if len(match):
            plot.best.setData([x], [values.y[match[0]]])
            plot.best_line.setValue(x)
            plot.best_line.show()
        else:
            plot.best.setData([], [])
            plot.best_line.hide()

    # --- values under the mouse -------------------------------------------------------------------

    def _mouse_moved(self, event) -> None:
        position = event[0]
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(position) and plot.plotItem.vb.sceneBoundingRect().contains(
                position
            ):
                x = plot.plotItem.vb.mapSceneToView(position).x()
                self.show_values_at(x)
                return
        for plot in self.plots.values():
            plot.cursor.hide()

    def show_values_at(self, x: float) -> str:
        """Writes the values nearest to epoch `x` into the read-out and returns that text."""
        parts = [f"<b>epoch {x:.2f}</b>"]
        for name, plot in self.plots.items():
            plot.cursor.setValue(x)
            plot.cursor.show()
            values = []
            batch = value_at(self.smoothed[name] if self.smoothing.value() else self.batch[name], x)
            if batch is not None:
                values.append(f"batch {batch:.4g}")
            epoch = round(x)
            for label, series in (("train", self.train_epochs[name]), ("val", self.val_epochs[name])):
                found = np.flatnonzero(series.x == epoch)
                if len(found):
                    values.append(f"{label}@{epoch} {series.y[found[0]]:.4g}")
            if values:
                parts.append(f"{name}: " + ", ".join(values))
        found = np.flatnonzero(self.learning_rates.x == round(x))
        if len(found):
            parts.append(f"lr@{round(x)} {self.learning_rates.y[found[0]]:.3g}")
        text = " &nbsp;·&nbsp; ".join(parts)
        self.readout.setText(text)
        return text

    def point_counts(self) -> dict[str, int]:
        """How many points each loss series holds (the accuracy series hold as many)."""
        return {
            "batch": len(self.batch["loss"]),
            "train_epoch": len(self.train_epochs["loss"]),
            "val_epoch": len(self.val_epochs["loss"]),
        }
