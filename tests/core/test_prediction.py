"""Prediction: files and folders, top-k, unreadable files reported not fatal, and the CSV the
command writes read back."""

import argparse
import csv
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_class_folders, write_image

from core.cli.model_commands import run_predict
from core.config import TrainingConfig
from core.data.images import decode_image
from core.modeling.model_io import load_model
from core.modeling.prediction import collect_images, predict
from core.training.driver import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = ("blue", "green", "red")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    base = tmp_path_factory.mktemp("prediction")
    train_dir = make_class_folders(str(base / "train"), dict.fromkeys(CLASSES, 8))
    val_dir = make_class_folders(str(base / "val"), dict.fromkeys(CLASSES, 2))
    config = TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=2,
        batch_size=8,
        image_size=16,
        out_dir=str(base / "runs"),
    )
    result = train(config)
    assert result.status == "completed"
    return load_model(result.run_dir)


@pytest.fixture
def inputs(tmp_path):
    """A folder with nested images and a broken one, a lone file (a JPEG of another size), a text
    file named explicitly and a path that does not exist."""
    folder = tmp_path / "photos"
    write_image(str(folder / "a.png"), (220, 40, 40), size=16, seed=1)
    write_image(str(folder / "deeper" / "b.png"), (40, 180, 60), size=24, seed=2)
    (folder / "deeper" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "notes.txt").write_text("ignored inside folders")
    lone = write_image(str(tmp_path / "lone.jpg"), (50, 70, 220), size=40, seed=3)
    (tmp_path / "readme.txt").write_text("not an image")
    return [str(folder), lone, str(tmp_path / "readme.txt"), str(tmp_path / "missing.png"), lone]


def test_collect_images_searches_folders_and_keeps_explicit_files(inputs):
    found, skipped = collect_images(inputs)
    names = [os.path.relpath(p, os.path.dirname(inputs[0])) for p in found]
    assert names == [
        "photos/a.png",
        "photos/deeper/b.png",
        "photos/deeper/broken.png",
        "lone.jpg",
        "readme.txt",
    ]
    assert [(s.path, s.reason) for s in skipped] == [(inputs[3], "does not exist")]


def test_predict_gives_top_k_per_readable_image_and_reports_the_rest(loaded, inputs):
    progress = []
    result = predict(loaded, inputs, batch_size=2, on_progress=lambda d, t: progress.append((d, t)))
    paths = [p.path for p in result.predictions]
    assert [os.path.basename(p) for p in paths] == ["a.png", "b.png", "lone.jpg"]
    assert sorted(os.path.basename(s.path) for s in result.skipped) == [
        "broken.png",
        "missing.png",
        "readme.txt",
    ]
    assert all(s.reason for s in result.skipped)
    assert progress[-1] == (5, 5)
    for prediction in result.predictions:
        expected = loaded.predict(decode_image(prediction.path, 16, loaded.resize_mode)[None])[0]
        assert np.allclose(prediction.probabilities, expected, atol=1e-5)
        top = prediction.top_k(3)
        assert [name for name, _ in top] == [CLASSES[i] for i in np.argsort(-expected)]
        assert top[0] == (prediction.top_class, pytest.approx(prediction.top_probability))
        assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    assert len(result.predictions[0].top_k(10)) == 3
    header = ["path", "top_class", "probability", "class_2", "probability_2", "class_3", "probability_3"]
    assert result.csv_header(10) == header


def test_nothing_readable_gives_an_empty_result(loaded, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"")
    result = predict(loaded, [str(tmp_path / "bad.png"), str(tmp_path / "gone")])
    assert result.predictions == [] and len(result.skipped) == 2


def namespace(model, paths, **options):
    return argparse.Namespace(model=model, paths=paths, csv=None, top_k=3, batch_size=32, **options)


def test_the_predict_command_prints_a_table_and_reports_unreadable_files(loaded, inputs):
    out, err = io.StringIO(), io.StringIO()
    assert run_predict(namespace(loaded.run_dir, inputs), out, err) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["path", "top", "class", "#2", "#3"] and len(lines) == 4
    assert "Skipped 3 unreadable files" in err.getvalue() and "readme.txt" in err.getvalue()
    err = io.StringIO()
    assert run_predict(namespace(loaded.run_dir, [inputs[3]]), io.StringIO(), err) == 2
    assert "no readable image" in err.getvalue()


def test_cli_predict_csv_round_trip(loaded, inputs, tmp_path):
    out_csv = tmp_path / "out" / "predictions.csv"
    command = ["predict", "--model", loaded.run_dir, *inputs, "--csv", str(out_csv), "--top-k", "2"]
    done = subprocess.run(
        [sys.executable, "main.py", *command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "top_class", "probability", "class_2", "probability_2"]
    expected = predict(loaded, inputs)
    assert [row["path"] for row in rows] == [p.path for p in expected.predictions]
    for row, prediction in zip(rows, expected.predictions, strict=True):
        (first, p1), (second, p2) = prediction.top_k(2)
        assert (row["top_class"], row["class_2"]) == (first, second)
        assert float(row["probability"]) == pytest.approx(p1, abs=1e-5)
        assert float(row["probability_2"]) == pytest.approx(p2, abs=1e-5)
