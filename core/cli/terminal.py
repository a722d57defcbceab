"""Printing progress to a terminal: one live line that is rewritten in place (only on a TTY, so
logs and pipes get clean lines), above which finished lines scroll."""

from __future__ import annotations

from typing import TextIO

CLEAR_LINE = "\r\033[K"


class LiveLine:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.live = stream.isatty()

    def update(self, text: str) -> None:
        """Shows `text` on the live line; nothing when the stream is not a terminal."""
        if self.live:
            self.stream.write(f"{CLEAR_LINE}{text}")
            self.stream.flush()

    def print(self, text: str) -> None:
        """A finished line: replaces the live line and scrolls up."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()


class CountLine:
    """A live "<label> done/total images" line, called as on_progress(done, total)."""

    def __init__(self, stream: TextIO, label: str):
        self.terminal = LiveLine(stream)
        self.label = label

    def __call__(self, done: int, total: int) -> None:
        self.terminal.update(f"{self.label} {done}/{total} images")

    def done(self) -> None:
        self.terminal.clear()


def report_skipped(skipped, stream: TextIO) -> None:
    """Lists the unreadable files a command passed over, with why."""
    if skipped:
        stream.write(f"Skipped {len(skipped)} unreadable files:\n")
        for item in skipped:
            stream.write(f"  {item.path}: {item.reason}\n")
