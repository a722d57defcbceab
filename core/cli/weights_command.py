"""`import-weights`: put a pretrained weight file into the Keras cache, after checking it (for
computers that cannot download Keras's ImageNet weights).

    import-weights FILE --model NAME [--image-size N]
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from core.cli.common import EXIT_OK
from core.config import PRETRAINED_MODELS, TrainingConfig


def add_import_weights_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-weights", help="put a pretrained weight file into the Keras cache, after checking it"
    )
    parser.add_argument("file", help="a Keras ImageNet weight file without top (.h5)")
    parser.add_argument("--model", choices=PRETRAINED_MODELS, required=True)
    parser.add_argument(
        "--image-size", type=int, default=TrainingConfig.image_size, metavar="N",
        help="the image size it is for (Keras names MobileNetV2's files by size)",
    )
    parser.set_defaults(handler=run_import_weights)


def run_import_weights(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    from core.modeling.weights import import_weights

    TrainingConfig(model=args.model, image_size=args.image_size).validate()
    target = import_weights(args.file, args.model, args.image_size)
    out.write(f"Checked and copied to {target}: {args.model} runs use it from now on.\n")
    return EXIT_OK
