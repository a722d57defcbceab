"""`runs`: every run folder under the output folders, one row per run.

    runs [--out DIR ...] [--json]

Without --out it lists the default output folder (runs/). --json prints one JSON list of objects
(core.runs.index.summary_row); `best` holds the values of each run's report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from core.cli.common import EXIT_OK
from core.config import TrainingConfig
from core.formatting import format_duration
from core.runs.index import differing_settings, fingerprint_label, flat_settings, list_runs, summary_row
from core.runs.run_info import RunInfo


def add_runs_command(subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list the runs in the output folders")
    parser.add_argument(
        "--out", action="append", metavar="DIR",
        help=f"an output folder to list (repeat for several; default {TrainingConfig().out_dir})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list, an object per run")
    parser.set_defaults(handler=run_runs)


def run_runs(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    roots = args.out or [TrainingConfig().out_dir]
    runs = list_runs(roots)
    if args.json:
        out.write(json.dumps([summary_row(info) for info in runs], indent=2) + "\n")
    elif not runs:
        out.write(f"No runs in {', '.join(roots)}.\n")
    else:
        out.write(format_table(runs))
    return EXIT_OK


def format_table(runs: list[RunInfo]) -> str:
    """Aligned columns, with the settings that differ between the runs last."""
    differing = [name for name in differing_settings(runs) if name != "out_dir"]
    header = ["started", "run", "model", "status", "epochs", "val_acc", "val_loss", "time", "data"]
    rows = [header + differing]
    for info in runs:
        settings = flat_settings(info.config)
        rows.append([
            info.started_at[:16].replace("T", " "),
            info.name,
            info.model if info.status != "unreadable" else "",
            info.status,
            f"{info.done}/{info.total}" if info.status != "unreadable" else "",
            _number(info.best.get("val_accuracy"), "{:.3f}"),
            _number(info.best.get("val_loss"), "{:.4f}"),
            format_duration(info.duration_seconds),
            fingerprint_label(info.dataset_fingerprint),
            *(_setting(settings.get(name)) for name in differing),
        ])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) + len(differing))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    problems = [f"{info.name}: {info.problem}" for info in runs if info.status == "unreadable"]
    return "\n".join(lines + problems) + "\n"


def _number(value, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "-"


def _setting(value) -> str:
    return "-" if value is None else str(value)
