"""`doctor`: the dataset doctor on the command line.

    doctor --train DIR [--val DIR] [--model RUN_OR_FILE] [--no-labels] [--json]

Prints what core.modeling.doctor.check_dataset finds: unreadable files, class counts and balancing
weights, duplicates, train/validation leaks, likely label errors and outliers; with --json one
object (keys in README.md). Exit codes and Ctrl-C as every command (core.cli.common): 0 the check ran
(whatever it found), 2 an unusable folder or model (the message says what to fix), 130 stopped by
Ctrl-C. TensorFlow is imported when the check runs, not with this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from core.cli.common import EXIT_OK, quiet_tensorflow, stop_on_ctrl_c
from core.cli.terminal import LiveLine
from core.events import CheckProgress

SHOWN_PER_CHECK = 20  # the text report lists this many findings per check; --json lists all


def add_doctor_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="find duplicates, train/validation leaks, imbalance and likely label errors"
    )
    parser.add_argument("--train", required=True, metavar="DIR", help="the training folder")
    parser.add_argument("--val", metavar="DIR", help="the validation folder: also look for leaks")
    parser.add_argument(
        "--model", metavar="RUN_OR_FILE",
        help="check labels on this trained model's features (default: train a quick model)",
    )
    parser.add_argument(
        "--no-labels", action="store_true", help="skip the label and outlier checks (no model is trained)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    # the streams are looked up when called, so that a redirected sys.stdout (pytest's capsys) is used
    out, err = out or sys.stdout, err or sys.stderr
    from core.modeling.doctor import check_dataset

    quiet_tensorflow()
    progress = _StepPrinter(err)
    try:
        with stop_on_ctrl_c(stops="after this step") as cancel:
            report = check_dataset(
                args.train, args.val, args.model, check_labels=not args.no_labels,
                on_event=progress, cancel=cancel,
            )
    finally:
        progress.done()
    if args.json:
        out.write(json.dumps(report.to_json()) + "\n")
    else:
        write_text_report(report, out)
    return EXIT_OK


def write_text_report(report, out: TextIO) -> None:
    counts = report.class_counts
    out.write(f"Dataset {report.train_dir}" + (f" (validation: {report.val_dir})" if report.val_dir else ""))
    out.write(f", checked in {report.seconds:.1f} s\n\nClasses\n")
    width = max(len(name) for name in report.class_names)
    header = f"  {'':<{width}}  {'train':>7}" + (f"  {'val':>7}" if "val" in counts else "") + "   weight\n"
    out.write(header)
    for name in report.class_names:
        val = f"  {counts['val'][name]:>7}" if "val" in counts else ""
        weight = report.class_weights.get(name)
        out.write(f"  {name:<{width}}  {counts['train'][name]:>7}{val}   {_weight(weight)}\n")
    for split, ratio in report.imbalance().items():
        if ratio:
            out.write(f"  {split}: largest/smallest class {ratio:.2f}\n")
    _section(out, "Unreadable files", report.skipped, lambda s: f"{s.path}: {s.reason}")
    _section(out, "Duplicates within a split", report.duplicates,
             lambda g: f"{g.kind} ({g.split}): " + "  ".join(g.paths))
    if report.val_dir:
        _section(out, "Leaks (the same picture in training and validation)", report.leaks,
                 lambda leak: f"{leak.kind}: {leak.train}  =  {leak.val}")
    if not report.label_source:
        out.write("\nLikely label errors: not checked\n")
    else:
        _section(out, f"Likely label errors (from {report.label_source})", report.label_issues,
                 lambda i: f"{i.path}: in '{i.given}', looks like '{i.suggested}' (score {i.score:.2f})")
        _section(out, "Outliers (unlike the other images)", report.outliers,
                 lambda o: f"{o.path} (score {o.score:.1f})")
    for note in report.notes:
        out.write(f"\nNote: {note}\n")
    if report.kept:
        out.write(f"\n{report.kept} finding(s) marked 'not a problem' in the window are not listed.\n")


def _section(out: TextIO, title: str, items: list, line) -> None:
    out.write(f"\n{title}: {len(items) or 'none'}\n")
    for item in items[:SHOWN_PER_CHECK]:
        out.write(f"  {line(item)}\n")
    if len(items) > SHOWN_PER_CHECK:
        out.write(f"  ... and {len(items) - SHOWN_PER_CHECK} more (--json lists all)\n")


def _weight(weight: float | None) -> str:
    return "-" if weight is None else f"{weight:.3f}"


class _StepPrinter:
    """The current step and its progress on the terminal's live line (nothing when not a TTY)."""

    def __init__(self, stream: TextIO):
        self.line = LiveLine(stream)

    def __call__(self, event) -> None:
        if isinstance(event, CheckProgress):
            amount = f" {event.done}/{event.total}" if event.total else ""
            self.line.update(f"{event.step}{amount}")

    def done(self) -> None:
        self.line.clear()
