"""FitStudio: `python main.py` opens the window; subcommands run the same engine headless.

    python main.py                        open the window on the bundled demo dataset
    python main.py inspect DIR [--json]   check a dataset folder
    python main.py train [options]        train without the window (--resume RUN continues one,
                                          --like RUN repeats one with any flag changed)
    python main.py runs [--out DIR] [--json]   list the runs kept in the output folders
    python main.py evaluate|predict|export --model RUN ...   use a trained model
    python main.py cache --info|--clear   show or empty the disk cache of decoded images
    python main.py doctor --train DIR [--val DIR] [--json]   duplicates, leaks, imbalance, label errors
    python main.py capture --video FILE --into DIR/CLASS      save a video's frames into a class folder
    python main.py label --model RUN --unlabeled DIR [--json]   unlabeled images, most uncertain first
    python main.py --self-test            check that this build works (offscreen, exit 0 or 1)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys


def _give_streams_a_target() -> None:
    """The Windows build has no console (so no console window pops up): its sys.stdout and
    sys.stderr are None, and the first print of a command would crash."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def build_parser() -> argparse.ArgumentParser:
    from core.cli.commands import add_commands

    parser = argparse.ArgumentParser(
        prog="fitstudio",
        description="Train image classifiers from folders of images: a window, or headless commands.",
    )
    parser.add_argument(
        "--self-test", action="store_true",
        help="train one epoch on the demo dataset through the window, offscreen, and report",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # first, for the frozen build
    _give_streams_a_target()
    args = build_parser().parse_args(argv)
    if args.self_test:
        from gui.self_test import run_self_test

        return run_self_test()
    if args.command is None:
        from gui.app import run_app

        return run_app()
    from core.cli.common import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
