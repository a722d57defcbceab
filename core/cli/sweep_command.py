"""`sweep`: trials drawn from ranges and lists of settings, run on Ray Tune, bad ones stopped early.

    sweep --train DIR --val DIR --trials N --epochs E --lr 1e-4:1e-2 --batch-size 16,32,64
          --model small-cnn,mobilenetv2 --augment on,off [--scheduler asha|none] [--concurrent C]
          [--metric val_accuracy|val_loss] [--out DIR] [--json] [--cluster ADDRESS] [--like RUN]
    sweep --resume SWEEP_DIR

Every other `train` option passes through to every trial; `--like RUN` takes RUN's settings as the
base. A range a:b is sampled log-uniformly, a list is a choice (seeded by --seed). Exit codes as
`train`: 0 done, 1 every trial failed, 2 bad arguments, 130 stopped by Ctrl-C (finished trials kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from core.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, stop_on_ctrl_c
from core.cli.train_command import add_training_arguments, config_from_args, like_config
from core.events import Message
from core.training.sweep.runner import (
    METRICS,
    SCHEDULERS,
    SweepFinished,
    SweepRequest,
    SweepStarted,
    TrialUpdate,
    resume_sweep,
    run_sweep,
)
from core.training.sweep.space import SEARCHABLE, parse_dimension

# The searchable flags take text (a:b or a,b,c) in a sweep, so train's typed ones are replaced.
_SEARCH_FLAGS = {"--lr": "learning_rate", "--batch-size": "batch_size", "--model": "model",
                 "--augment": "augment"}


def add_sweep_command(subparsers) -> None:
    parser = subparsers.add_parser("sweep", help="search learning rate, batch size, model and augmentation",
                                   conflict_handler="resolve")
    add_training_arguments(parser)
    search = parser.add_argument_group("the search (README: Sweeps)")
    search.add_argument("--lr", metavar="A:B|X,Y", help="learning rates: a range sampled log-uniformly, "
                        "or a list (default: the base setting)")
    search.add_argument("--batch-size", metavar="16,32,64", help="batch sizes: a list or a range")
    search.add_argument("--model", metavar="NAMES", help="models, e.g. small-cnn,mobilenetv2")
    search.add_argument("--augment", metavar="on,off", help="augmentation on, off, or on,off")
    search.add_argument("--trials", type=int, default=8, metavar="N", help="trials to run (default 8)")
    search.add_argument("--scheduler", choices=SCHEDULERS, default="asha",
                        help="asha: stop trials behind the others early (default); none: run all to the end")
    search.add_argument("--concurrent", type=int, default=0, metavar="C",
                        help="trials at once (default: the cores divided by each trial's threads)")
    search.add_argument("--metric", choices=tuple(METRICS), default="val_accuracy",
                        help="what the best trial is best at (default val_accuracy)")
    search.add_argument("--json", action="store_true", help="print sweep.json's final content as one object")
    parser.add_argument("--resume", metavar="SWEEP_DIR", help="continue a killed or stopped sweep")
    parser.set_defaults(handler=run_sweep_command, lr=None, batch_size=None, model=None, augment=None)


def run_sweep_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    printer = SweepPrinter(out, quiet=args.json)
    with stop_on_ctrl_c(stops="after this batch of every trial") as cancel:
        if args.resume:
            finished = resume_sweep(args.resume, printer, cancel, cluster=args.cluster or "",
                                    concurrent=args.concurrent)
        else:
            finished = run_sweep(sweep_request(args), printer, cancel)
    if args.json:
        out.write(json.dumps({"sweep_dir": finished.sweep_dir, "status": finished.status,
                              "best": finished.best, "trials": finished.trials}) + "\n")
    if finished.status == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if finished.status == "failed" else EXIT_OK


def sweep_request(args: argparse.Namespace) -> SweepRequest:
    searched = {name: getattr(args, _attribute(flag)) for flag, name in _SEARCH_FLAGS.items()}
    base_args = argparse.Namespace(**vars(args))
    for flag in _SEARCH_FLAGS:  # the base keeps its own values; the space holds the searched ones
        setattr(base_args, _attribute(flag), None)
    cluster = base_args.cluster or ""
    base_args.cluster, base_args.workers = None, None
    base = config_from_args(base_args, like_config(args.like) if args.like else None)
    space = {name: parse_dimension(name, text) for name, text in searched.items() if text is not None}
    return SweepRequest(base, space, args.trials, args.metric, args.scheduler, args.concurrent, cluster)


def _attribute(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class SweepPrinter:
    """A line when the sweep starts, per trial epoch and per trial's end; the table at the end."""

    def __init__(self, out: TextIO, quiet: bool = False):
        self.out, self.quiet = out, quiet
        self.epochs: dict[int, int] = {}

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if isinstance(event, SweepStarted):
            self.epochs = {t["index"]: t["config"]["epochs"] for t in event.trials}
            self._line(f"Sweep {event.sweep_dir}: {len(event.trials)} trials, {event.concurrent} at once, "
                       f"{event.threads_per_trial} threads each; {event.cluster}")
        elif isinstance(event, TrialUpdate):
            self._trial(event)
        elif isinstance(event, SweepFinished):
            self._finished(event)
        elif isinstance(event, Message):
            self._line(("Warning: " if event.level == "warning" else "") + event.text)

    def _trial(self, event: TrialUpdate) -> None:
        name = f"trial {event.index:02d}"
        if event.status == "running" and event.metrics.get("epoch"):
            metrics = event.metrics
            self._line(f"  {name}  epoch {event.epoch}/{self.epochs.get(event.index, '?')}  "
                       f"val_acc {metrics.get('val_accuracy', 0):.3f}  "
                       f"val_loss {metrics.get('val_loss', 0):.4f}")
        elif event.status == "running":
            self._line(f"  {name}  started")
        elif event.status != "pending":
            self._line(f"  {name}  {event.status}" + (f": {event.message}" if event.message else ""))

    def _finished(self, event: SweepFinished) -> None:
        for trial in event.trials:
            settings = "  ".join(f"{key}={value}" for key, value in trial["settings"].items())
            result = trial.get("result") or {}
            accuracy, loss = result.get("val_accuracy"), result.get("val_loss")
            score = f"val_acc {accuracy:.3f}  val_loss {loss:.4f}" if accuracy is not None else "no result"
            self._line(f"{trial['run_dir']}  {trial['status']:<9}  {trial['epochs_completed']} epochs  "
                       f"{score}  {settings}")
        if event.best:
            self._line(f"Best: {event.best['run_dir']} {event.best['settings']}. Train with its settings: "
                       f"main.py train --like {event.sweep_dir}/{event.best['run_dir']}")
        if event.status == "cancelled":
            self._line(f"Stopped; the finished trials are kept. Continue with: main.py sweep --resume "
                       f"{event.sweep_dir}")

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


__all__ = ["SEARCHABLE", "add_sweep_command", "run_sweep_command"]
