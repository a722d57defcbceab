"""The log panel: the engine's messages (skipped files, weights fallback, run folder) with a time stamp."""

from __future__ import annotations

import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from gui.text import escape

LEVEL_COLOURS = {"info": "#1f2937", "warning": "#b54708", "error": "#b42318", "success": "#067647"}


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("logPanel")
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)  # a long run with many skipped files must not grow without end
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(8.5)
        self.setFont(font)
        self.setPlaceholderText("Messages from the training engine appear here.")
        self.lines: list[tuple[str, str]] = []  # (level, text): what was logged, for tests and copying

    def log(self, text: str, level: str = "info") -> None:
        self.lines.append((level, text))
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])
        stamp = time.strftime("%H:%M:%S")
        body = escape(text).replace("\n", "<br>")
        self.appendHtml(
            f"<span style='color:#6b7280'>{stamp}</span> <span style='color:{colour}'>{body}</span>"
        )
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)
