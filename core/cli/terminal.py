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
