"""Command-line commands that use a trained model: evaluate, predict, export.

    evaluate --model RUN_OR_FILE --data DIR [--json] [--csv OUT]
    predict  --model RUN_OR_FILE PATH... [--csv OUT] [--top-k K] [--explain DIR [--explain-class NAME]]
    predict  --model RUN_OR_FILE --video FILE [--every SECONDS] --csv OUT
    export   --model RUN_OR_FILE --format keras|savedmodel|tflite|tflite-quant|onnx --out DIR

Exit codes and Ctrl-C as every command (core.cli.common): 0 success, 1 an unwritable output file, 2 a
bad model, folder or argument (the message goes to stderr, no traceback), 130 stopped by Ctrl-C.
The heavy modules (TensorFlow) are imported inside the handlers, so `--help` and the other commands
stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from core.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    positive_float,
    positive_int,
    quiet_tensorflow,
    stop_on_ctrl_c,
)
from core.cli.terminal import CountLine, LiveLine, report_skipped
from core.errors import FitStudioError
from core.modeling.export import FORMATS as EXPORT_FORMATS  # import-light: TensorFlow loads inside

_MODEL_HELP = "a run folder (with model.keras and labels.txt) or a .keras file"


def add_model_commands(subparsers) -> None:
    """Registers `evaluate`, `predict` and `export`."""
    evaluate_parser = subparsers.add_parser(
        "evaluate", help="accuracy, per-class metrics and confusion matrix of a model on a folder"
    )
    evaluate_parser.add_argument("--model", required=True, metavar="RUN_OR_FILE", help=_MODEL_HELP)
    evaluate_parser.add_argument(
        "--data", required=True, metavar="DIR", help="a folder with one subfolder per class of the model"
    )
    evaluate_parser.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate_parser.add_argument("--csv", metavar="OUT", help="also write one row per image to this CSV")
    evaluate_parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    evaluate_parser.set_defaults(handler=run_evaluate)

    predict_parser = subparsers.add_parser("predict", help="classify image files or folders")
    predict_parser.add_argument("--model", required=True, metavar="RUN_OR_FILE", help=_MODEL_HELP)
    predict_parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="image files, or folders searched recursively"
    )
    predict_parser.add_argument(
        "--video", metavar="FILE", help="classify a video's frames instead: one CSV row per sampled frame"
    )
    predict_parser.add_argument(
        "--every", type=positive_float, metavar="SECONDS",
        help="with --video: one frame per this many seconds of video (default: every frame)",
    )
    predict_parser.add_argument("--csv", metavar="OUT", help="write the results to this CSV file")
    predict_parser.add_argument(
        "--top-k", type=positive_int, default=3, metavar="K", help="classes listed per image (default 3)"
    )
    predict_parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    predict_parser.add_argument(
        "--explain", metavar="DIR",
        help="also write DIR/<name>_heatmap.png (where the model looked: white = most important) and "
        "DIR/<name>_overlay.jpg (the heatmap over the image) for each image",
    )
    predict_parser.add_argument(
        "--explain-class", metavar="CLASS",
        help="with --explain: the class to explain (default: the predicted one)",
    )
    predict_parser.set_defaults(handler=run_predict)

    export_parser = subparsers.add_parser(
        "export", help="write a model as .keras, SavedModel, TFLite or ONNX"
    )
    export_parser.add_argument("--model", required=True, metavar="RUN_OR_FILE", help=_MODEL_HELP)
    export_parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export_parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write the model and labels.txt into"
    )
    export_parser.set_defaults(handler=run_export)


def run_evaluate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up when called: a redirect, a test's capture
    quiet_tensorflow()
    from core.modeling.evaluation import evaluate

    progress = CountLine(err, "Evaluating") if not args.json else None
    try:
        with stop_on_ctrl_c() as cancel:
            result = evaluate(args.model, args.data, batch_size=args.batch_size, on_progress=progress,
                              cancel=cancel)
    finally:
        if progress:
            progress.done()
    if args.csv:
        result.write_csv(args.csv)
    if args.json:
        out.write(json.dumps(result.to_json()) + "\n")
        if args.csv:
            err.write(f"Per-image results: {args.csv}\n")
        return EXIT_OK
    names = result.class_names
    out.write(f"Model {result.model_path} on {result.data_dir}: {result.total} images\n")
    out.write(f"Accuracy {result.accuracy:.4f}   loss {result.loss:.4f}\n\n")
    width = max(9, *(len(name) for name in names))
    out.write(f"{'class':<{width}}  precision  recall     f1  support\n")
    for name in names:
        row = result.per_class[name]
        out.write(
            f"{name:<{width}}  {row['precision']:>9.3f}  {row['recall']:>6.3f}  {row['f1']:>5.3f}  "
            f"{row['support']:>7d}\n"
        )
    macro = result.macro_average
    out.write(
        f"{'macro avg':<{width}}  {macro['precision']:>9.3f}  {macro['recall']:>6.3f}  "
        f"{macro['f1']:>5.3f}  {result.total:>7d}\n\n"
    )
    out.write("Confusion matrix (rows: true class, columns: predicted class)\n")
    cell = max(5, *(len(str(v)) for v in result.confusion_matrix.flat), *(len(n) for n in names))
    out.write(" " * width + "  " + " ".join(f"{name:>{cell}}" for name in names) + "\n")
    for name, row in zip(names, result.confusion_matrix, strict=True):
        out.write(f"{name:<{width}}  " + " ".join(f"{int(v):>{cell}}" for v in row) + "\n")
    for note in result.notes:
        out.write(f"Note: {note}\n")
    report_skipped(result.skipped, out)
    if args.csv:
        out.write(f"Per-image results: {args.csv}\n")
    return EXIT_OK


def run_predict(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up when called: a redirect, a test's capture
    quiet_tensorflow()
    if getattr(args, "video", None) or not args.paths:
        return run_predict_video(args, out, err)
    explain_dir = getattr(args, "explain", None)
    explain_class = getattr(args, "explain_class", None)
    if explain_class is not None and not explain_dir:
        raise FitStudioError("--explain-class needs --explain DIR: the folder to write the heatmaps into.")
    with stop_on_ctrl_c() as cancel:
        if explain_dir:
            from core.modeling.explain import explain_to_folder

            report = explain_to_folder(
                args.model, args.paths, explain_dir, class_name=explain_class, batch_size=args.batch_size,
                cancel=cancel,
            )
            result = report.predictions
        else:
            from core.modeling.prediction import predict

            result = predict(args.model, args.paths, batch_size=args.batch_size, cancel=cancel)
    report_skipped(result.skipped, err)
    if not result.predictions:
        err.write("fitstudio predict: no readable image among the given paths.\n")
        return EXIT_USAGE
    if args.csv:
        result.write_csv(args.csv, args.top_k)
        out.write(f"Wrote {len(result.predictions)} predictions to {args.csv}\n")
    else:
        out.write(result.format_table(args.top_k))
    if explain_dir:
        out.write(
            f"Wrote a heatmap and an overlay for {len(report.written)} images to {explain_dir} "
            "(<name>_heatmap.png, <name>_overlay.jpg)\n"
        )
    return EXIT_OK


def run_predict_video(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.video or args.paths or getattr(args, "explain", None):
        raise FitStudioError(
            "Give image PATHs, or --video FILE with --csv OUT (not both; --explain is for images)."
        )
    if not args.csv:
        raise FitStudioError("--video needs --csv OUT: the file to write one row per sampled frame into.")
    from core.modeling.frames import predict_video

    progress = LiveLine(err)
    try:
        with stop_on_ctrl_c(stops="after this frame") as cancel:
            result = predict_video(
                args.model, args.video, every_s=args.every, batch_size=args.batch_size, cancel=cancel,
                on_progress=lambda done, at: progress.update(f"Predicting {done} frames, {at:.1f} s in"),
            )
    finally:
        progress.clear()
    if not result.end.complete:
        err.write(f"Warning: {result.end.describe()} The frames before it are classified.\n")
    if not result.predictions:
        raise FitStudioError(f"No frame could be read from {args.video}.")
    result.write_csv(args.csv)
    out.write(f"Wrote {len(result.predictions)} frame predictions to {args.csv}\n")
    return EXIT_OK


def run_export(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up when called: a redirect, a test's capture
    quiet_tensorflow()
    from core.modeling.export import export_model

    with stop_on_ctrl_c(stops="after this step (a conversion under way finishes first)") as cancel:
        written = export_model(
            args.model, args.format, args.out, on_message=lambda text: err.write(text + "\n"), cancel=cancel
        )
    for path in written:
        out.write(f"{path}  ({_size(path)})\n")
    return EXIT_OK




def _size(path: str) -> str:
    if os.path.isdir(path):
        total = sum(
            os.path.getsize(os.path.join(parent, name))
            for parent, _, names in os.walk(path)
            for name in names
        )
    else:
        total = os.path.getsize(path)
    for unit in ("bytes", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total} {unit}" if unit == "bytes" else f"{total:.1f} {unit}"
        total /= 1024
    return f"{total}"

