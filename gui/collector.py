"""Python's garbage collector, run on the GUI thread only.

A collection runs on whichever thread happens to allocate when a threshold is crossed: a scan's or
a training's worker thread as often as not. When it finds a Qt wrapper in a reference cycle (a menu
of a closed window, say) it destroys the C++ widget there, on the wrong thread. With PySide6 6.12
that deadlocked: the destructor holds the object's connection lock while it waits for the GIL,
and the GUI thread holds the GIL while it waits for that lock to connect a new widget's signals
(seen in the test suite on Python 3.13). So while the window runs, automatic collection is off and
a timer on the GUI thread collects each generation once its threshold is crossed, as the automatic
collector would have (the pattern of pyqtgraph.util.garbage_collector, for the same reason).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000


class GuiThreadCollector(QObject):
    """Collects on the thread that owns it (the GUI thread) from start() until stop()."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.collect_due)

    def start(self) -> None:
        gc.disable()
        self.timer.start()

    def stop(self) -> None:
        """Back to automatic collection, after one full collection here."""
        self.timer.stop()
        gc.collect()
        gc.enable()

    def collect_due(self) -> None:
        """The generations whose thresholds are crossed, youngest first, as gc would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in range(3):
            if counts[generation] <= thresholds[generation]:
                return
            gc.collect(generation)


def collect_on_gui_thread(app: QObject) -> GuiThreadCollector:
    """Starts collecting on `app`'s thread for as long as the application lives."""
    collector = app.findChild(GuiThreadCollector)
    if collector is None:
        collector = GuiThreadCollector(app)
        collector.start()
    return collector
