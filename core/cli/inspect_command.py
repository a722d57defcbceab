"""`inspect`: check a dataset folder and print its report (or one JSON object with --json).

    inspect DIR [--json]

Exit codes as every command (core.cli.common): 0 the folder can be trained on, 2 it cannot (the
report says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from core.cli.common import EXIT_OK, EXIT_USAGE
from core.data.dataset import inspect


def add_inspect_command(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="check a dataset folder and print its report")
    parser.add_argument("folder", help="a folder with one subfolder per class")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    report = inspect(args.folder)
    if args.json:
        out.write(json.dumps(report.to_json()) + "\n")
        return EXIT_OK if report.usable else EXIT_USAGE
    if report.error and not report.class_names:
        out.write(f"{report.error}\n")
        return EXIT_USAGE
    out.write(f"{report.root}: {len(report.class_names)} classes, {report.total} readable images\n")
    width = max(len(name) for name in report.class_names)
    for name in report.class_names:
        out.write(f"  {name:<{width}}  {report.counts[name]:>6}\n")
    if report.min_size:
        out.write(
            f"Image sizes from {report.min_size[0]}x{report.min_size[1]} "
            f"to {report.max_size[0]}x{report.max_size[1]} pixels\n"
        )
    if report.skipped:
        out.write(f"Skipped {len(report.skipped)} unreadable files:\n")
        for skipped in report.skipped:
            out.write(f"  {skipped.path}: {skipped.reason}\n")
    for warning in report.warnings:
        out.write(f"Warning: {warning}\n")
    if report.error:
        out.write(f"Not usable: {report.error}\n")
        return EXIT_USAGE
    return EXIT_OK
