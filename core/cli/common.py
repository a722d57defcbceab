"""What every command shares: the exit codes, Ctrl-C, the quiet-TensorFlow switch, and turning a
command's outcome into an exit code and a message.

Exit codes: 0 done, 1 failed (the run failed, an unwritable output file), 2 bad input (arguments, an
unusable folder or model: the message says what to fix), 130 stopped by Ctrl-C.

Ctrl-C, the same in every command: a command that can stop cleanly runs its engine call inside
`stop_on_ctrl_c`, so the first Ctrl-C sets its cancel event and the engine stops at its next safe
point (a training saves what it has); a second Ctrl-C interrupts at once. Either way the command
ends with exit code 130 and no traceback.

A leaf: imports nothing from core.cli, so every command module may import it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from core.errors import FitStudioError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandStopped(Exception):
    """The user pressed Ctrl-C and the engine stopped at a safe point."""


def quiet_tensorflow() -> None:
    """Hides TensorFlow's C++ INFO lines, which would bury a command's results; a user who sets
    TF_CPP_MIN_LOG_LEVEL keeps their value. Call it before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextmanager
def stop_on_ctrl_c(
    cancel: threading.Event | None = None, stops: str = "after this batch"
) -> Iterator[threading.Event]:
    """Yields the cancel event that the first Ctrl-C sets (saying the command stops `stops`); a
    second Ctrl-C falls back to Python's default and interrupts at once. An engine error raised once
    the event is set (EvaluationCancelled, CheckCancelled, ...) leaves as CommandStopped. Outside the
    main thread, where Python delivers no signals, it only yields the event."""
    cancel = cancel or threading.Event()

    def first_ctrl_c(signum, frame):
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stderr.write(f"\nStopping {stops}; press Ctrl-C again to quit at once.\n")

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, first_ctrl_c) if in_main_thread else None
    try:
        yield cancel
    except FitStudioError as exc:
        if cancel.is_set():
            raise CommandStopped(str(exc)) from exc
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def run_command(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Runs the command's handler and returns its exit code; what goes wrong ends as a message on
    `err` (default sys.stderr, looked up when called), never as a traceback."""
    err = err or sys.stderr
    try:
        return args.handler(args)
    except (CommandStopped, KeyboardInterrupt):
        err.write("\nStopped.\n")
        return EXIT_INTERRUPTED
    except FitStudioError as exc:
        err.write(f"fitstudio {args.command}: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:  # an unwritable --csv or --out, a full disk: a message, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        err.write(f"fitstudio {args.command}: {exc.strerror or exc}{where}\n")
        return EXIT_FAILED


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value
