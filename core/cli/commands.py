"""The command table: every subcommand of `python main.py`, in the order `--help` lists them. A new
command is one module with an `add_*_command(subparsers)` that sets its handler, and one line here.
"""

from __future__ import annotations

from core.cli.cache_commands import add_cache_command
from core.cli.capture_command import add_capture_command
from core.cli.doctor_command import add_doctor_command
from core.cli.inspect_command import add_inspect_command
from core.cli.label_command import add_label_command
from core.cli.model_commands import add_model_commands
from core.cli.runs_commands import add_runs_command
from core.cli.sweep_command import add_sweep_command
from core.cli.train_command import add_train_command
from core.cli.weights_command import add_import_weights_command

COMMANDS = (
    add_inspect_command,  # inspect
    add_train_command,  # train
    add_import_weights_command,  # import-weights
    add_model_commands,  # evaluate, predict, export
    add_cache_command,  # cache
    add_doctor_command,  # doctor
    add_runs_command,  # runs
    add_sweep_command,  # sweep
    add_capture_command,  # capture --video
    add_label_command,  # label
)


def add_commands(subparsers) -> None:
    for add_command in COMMANDS:
        add_command(subparsers)
