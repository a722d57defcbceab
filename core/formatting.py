"""Numbers as a person reads them, the same in the window and on the command line."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """"0:07", "12:05", "1:02:03"; "-" when unknown (None, NaN or negative)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "-"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_size(size: int) -> str:
    """"812 bytes", "3.4 MB": a byte count in the largest unit below 1024 of it."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
