"""What every command shares (core.cli.common): exit codes, and Ctrl-C handled the same way by all.

The commands run in the test's own process here: pytest runs tests in the main thread, where
Python delivers SIGINT, so os.kill(own pid, SIGINT) is a real Ctrl-C.
"""

import argparse
import io
import os
import signal
import threading
import time

import pytest

from core.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandStopped,
    quiet_tensorflow,
    run_command,
    stop_on_ctrl_c,
)
from core.errors import FitStudioError

HANG_GUARD_SECONDS = 30


class WorkCancelled(FitStudioError):
    """What an engine raises when its cancel event is set (EvaluationCancelled and kin)."""


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def engine(cancel: threading.Event, presses: int) -> None:
    """A long engine call that checks `cancel` between steps, while the user presses Ctrl-C."""
    for _ in range(presses):
        ctrl_c()
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        if cancel.is_set():
            raise WorkCancelled("The work was stopped.")
        time.sleep(0.01)
    raise AssertionError("Ctrl-C did not reach the cancel event")


def command(presses: int):
    def handler(args) -> int:
        with stop_on_ctrl_c() as cancel:
            engine(cancel, presses)
        return EXIT_OK

    return argparse.Namespace(command="work", handler=handler)


def test_the_first_ctrl_c_stops_the_engine_at_a_safe_point_and_exits_130(capsys):
    err = io.StringIO()
    assert run_command(command(presses=1), err) == EXIT_INTERRUPTED
    assert err.getvalue() == "\nStopped.\n"
    assert "press Ctrl-C again to quit at once" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # pytest's own, restored


def test_a_second_ctrl_c_interrupts_at_once_and_still_exits_130_without_a_traceback():
    def handler(args) -> int:
        with stop_on_ctrl_c():
            ctrl_c()
            ctrl_c()  # KeyboardInterrupt here, before any safe point
            raise AssertionError("the second Ctrl-C did not interrupt")

    err = io.StringIO()
    assert run_command(argparse.Namespace(command="work", handler=handler), err) == EXIT_INTERRUPTED
    assert err.getvalue() == "\nStopped.\n"


def test_an_engine_error_without_ctrl_c_is_bad_input_not_a_stop():
    def handler(args) -> int:
        with stop_on_ctrl_c():
            raise WorkCancelled("No image in /data could be read.")

    err = io.StringIO()
    assert run_command(argparse.Namespace(command="work", handler=handler), err) == EXIT_USAGE
    assert err.getvalue() == "fitstudio work: No image in /data could be read.\n"


def test_an_unwritable_file_exits_1_naming_it():
    def handler(args) -> int:
        raise PermissionError(13, "Permission denied", "/read-only/out.csv")

    err = io.StringIO()
    assert run_command(argparse.Namespace(command="predict", handler=handler), err) == EXIT_FAILED
    assert err.getvalue() == "fitstudio predict: Permission denied (/read-only/out.csv)\n"


def test_outside_the_main_thread_it_only_yields_the_event():
    seen = []

    def in_thread():
        with stop_on_ctrl_c() as cancel:
            seen.append(cancel.is_set())
        with pytest.raises(CommandStopped), stop_on_ctrl_c() as cancel:
            cancel.set()  # a stop asked some other way ends the same
            raise WorkCancelled("stopped")
        seen.append("stopped")

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert seen == [False, "stopped"]


def test_quiet_tensorflow_keeps_a_level_the_user_chose(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
