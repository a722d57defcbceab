"""`label`: rank a folder of unlabeled images by what the model is unsure of, and optionally move the
images it is sure of into the training folder.

    label --model RUN --unlabeled DIR [--strategy margin|entropy|least-confidence|random]
          [--limit N] [--json] [--accept-above P --into TRAIN_DIR]

Prints the ranking (most uncertain first, near duplicates spread out): rank, suggested class, its
probability, the margin (top-1 minus top-2), the entropy and the path; with --json one object whose
"images" hold those keys per image. --accept-above moves each image whose top probability is at
least P into TRAIN_DIR/<suggested>/, as logged, undoable moves (Data health's Undo, or
core.data.fixes.undo). Exit codes as the other commands: 0 done, 2 an unusable folder, model or
argument, 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from core.cli.common import EXIT_OK, positive_int, quiet_tensorflow, stop_on_ctrl_c
from core.cli.terminal import CountLine, report_skipped
from core.errors import FitStudioError

DEFAULT_SHOWN = 50  # the text report lists this many images unless --limit says otherwise


def add_label_command(subparsers) -> None:
    from core.modeling.label_ranking import DEFAULT_STRATEGY, STRATEGIES

    parser = subparsers.add_parser(
        "label", help="rank unlabeled images, most uncertain first, and move the sure ones into classes"
    )
    parser.add_argument("--model", required=True, metavar="RUN", help="a run folder or a .keras file")
    parser.add_argument("--unlabeled", required=True, metavar="DIR",
                        help="a folder of images without labels (searched with its subfolders)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY,
                        help=f"what 'unsure' means (default {DEFAULT_STRATEGY}: top-1 minus top-2 smallest)")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help=f"list the first N images (default: all with --json, {DEFAULT_SHOWN} as text)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--accept-above", type=_probability, metavar="P",
                        help="move the images whose top probability is at least P into --into/<class>/")
    parser.add_argument("--into", metavar="TRAIN_DIR", help="the training folder for --accept-above")
    parser.add_argument("--no-spread", action="store_true",
                        help="keep near duplicates where their score puts them")
    parser.set_defaults(handler=run_label)


def run_label(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if (args.accept_above is None) != (args.into is None):
        raise FitStudioError("--accept-above P and --into TRAIN_DIR go together: give both or neither.")
    from core.modeling.label_ranking import accept_above, rank_folder

    quiet_tensorflow()
    progress = CountLine(err, "Scoring")
    try:
        with stop_on_ctrl_c() as cancel:
            ranking = rank_folder(args.model, args.unlabeled, args.strategy, spread=not args.no_spread,
                                  on_progress=progress, cancel=cancel)
    finally:
        progress.done()
    if not ranking.suggestions:
        report_skipped(ranking.skipped, err)
        raise FitStudioError(f"No readable image in {args.unlabeled}.")
    accepted = accept_above(ranking, args.accept_above, args.into) if args.into else None
    if args.json:
        report = ranking.to_json(args.limit)
        if accepted is not None:
            report["accepted"] = [
                {"id": m.id, "source": m.source, "target": m.target} for m in accepted.moves
            ]
            report["refused"] = [{"path": r.path, "reason": r.reason} for r in accepted.refused]
        out.write(json.dumps(report) + "\n")
    else:
        _write_table(ranking, args.limit or DEFAULT_SHOWN, out)
        report_skipped(ranking.skipped, err)
        if accepted is not None:
            _write_accepted(accepted, args.accept_above, args.into, out, err)
    return EXIT_OK


def _write_table(ranking, limit: int, out: TextIO) -> None:
    shown = ranking.suggestions[:limit]
    width = max(len("suggested"), *(len(s.suggested) for s in shown))
    out.write(f"{len(ranking.suggestions)} images ranked by {ranking.strategy}, most uncertain first\n")
    out.write(f"{'rank':>5}  {'suggested':<{width}}  {'prob':>6}  {'margin':>6}  {'entropy':>7}  path\n")
    for s in shown:
        out.write(f"{s.rank:>5}  {s.suggested:<{width}}  {s.probability:>6.3f}  {s.margin:>6.3f}  "
                  f"{s.entropy:>7.3f}  {s.path}\n")
    if len(ranking.suggestions) > limit:
        out.write(f"... and {len(ranking.suggestions) - limit} more (--limit N or --json lists them)\n")


def _write_accepted(accepted, threshold: float, train_dir: str, out: TextIO, err: TextIO) -> None:
    out.write(f"Moved {len(accepted.moves)} images with a probability of {threshold:g} or more into "
              f"{train_dir}/<class>/ (Undo in Data health's Moves list puts one back)\n")
    for item in accepted.refused:
        err.write(f"Not moved: {item.path}: {item.reason}\n")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {value}")
    return value
