"""run_app(): the QApplication, the style, and the main window. Imports no TensorFlow.

With FITSTUDIO_STARTUP_PROBE=1 the app prints one line when the window has first been painted
("shown <seconds since process start> tensorflow=<bool>") and quits: bench/startup.py uses it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core.paths import resource_path
from gui.collector import collect_on_gui_thread
from gui.worker import wait_for_threads

PROBE_ENV = "FITSTUDIO_STARTUP_PROBE"
# How long the closed window's leftover threads get to stop: a cancelled scan stops at its next file.
EXIT_WAIT_MS = 3_000
# Libraries Qt 6's X11 plugin loads that minimal Linux installs lack (soname: Debian package).
# Without them Qt aborts with "no Qt platform plugin could be initialized", which says nothing useful.
X11_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def seconds_since_process_start() -> float | None:
    """From the kernel's record of when this process started (Linux); None elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def load_style_sheet() -> str:
    try:
        with open(resource_path("style.qss"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""  # the window works unstyled
    # Style sheet URLs are relative to the working directory: point them at the bundled icons.
    return text.replace("@ICONS@", resource_path("icons").replace(os.sep, "/"))


def style_application(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(resource_path("icons", "fitstudio.svg")))
    app.setStyleSheet(load_style_sheet())


def create_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setOrganizationName("FitStudio")
    app.setApplicationName("FitStudio")
    style_application(app)
    collect_on_gui_thread(app)
    return app


class _FirstPaintProbe(QObject):
    """Prints the start-up time at the window's first paint, then quits (bench/startup.py)."""

    def __init__(self, app: QApplication, started: float):
        super().__init__()
        self._app, self._started, self._done = app, started, False

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and not self._done:
            self._done = True
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        since_start = seconds_since_process_start()
        print(
            f"shown {since_start if since_start is not None else -1:.3f} "
            f"main={time.perf_counter() - self._started:.3f} "
            f"tensorflow={'tensorflow' in sys.modules}",
            flush=True,
        )
        self._app.quit()


def missing_x11_packages() -> list[str]:
    """Debian packages of the X11 libraries Qt will need but cannot load; [] when not on X11."""
    uses_x11 = os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb" and not os.environ.get("WAYLAND_DISPLAY")
    if not sys.platform.startswith("linux") or not uses_x11:
        return []
    missing = []
    for soname, package in X11_LIBRARIES.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    return missing


def run_app() -> int:
    started = time.perf_counter()
    missing = missing_x11_packages()
    if missing:
        sys.stderr.write(
            "FitStudio's window needs system libraries that this machine lacks: "
            f"{', '.join(missing)}.\nInstall them with: sudo apt install {' '.join(missing)}\n"
            "(The headless commands work without them: python main.py --help.)\n"
        )
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users
    probing = os.environ.get(PROBE_ENV) == "1"
    app = create_application()
    from gui.main_window import MainWindow

    window = MainWindow(device_fn=None) if probing else MainWindow()
    if probing:
        probe = _FirstPaintProbe(app, started)
        window.installEventFilter(probe)
    window.show()
    return exit_when_threads_stop(app.exec())


def exit_when_threads_stop(code: int, wait_ms: int = EXIT_WAIT_MS) -> int:
    """`code`, once the threads the closed window left behind have stopped.

    Training and the model thread stopped before the window closed; what may remain is a cancelled
    scan or the device probe still loading TensorFlow. A thread that does not stop in time (a scan
    stuck on an unreachable network drive) must not reach interpreter shutdown, where destroying its
    running QThread makes Qt abort the process: then the process ends here, with `code`. Nothing
    is lost, as settings and run folders were written before the window closed.
    """
    if wait_for_threads(wait_ms):
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
