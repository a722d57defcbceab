"""Evaluation: metrics equal to hand-computed values, every readable image counted exactly once
(also when files fail mid-stream), the same loss as Keras, and the JSON the CLI prints."""

import csv
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import make_class_folders

from core.config import TrainingConfig
from core.data.dataset import SkippedFile
from core.data.images import UnreadableImage, decode_image
from core.errors import DatasetError
from core.modeling.evaluation import (
    EvaluationCancelled,
    EvaluationResult,
    ImageResult,
    classification_metrics,
    evaluate,
)
from core.modeling.model_io import load_model
from core.training.driver import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = ("blue", "green", "red")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluation")
    train_dir = make_class_folders(str(base / "train"), dict.fromkeys(CLASSES, 8))
    val_dir = make_class_folders(str(base / "val"), {"blue": 5, "green": 4, "red": 3})
    (base / "val" / "red" / "broken.png").write_bytes(b"\x89PNG not really")  # skipped at scan
    config = TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=3,
        batch_size=8,
        image_size=16,
        out_dir=str(base / "runs"),
    )
    result = train(config)
    assert result.status == "completed"
    return load_model(result.run_dir), val_dir


def test_metrics_match_hand_computed_values():
    # Four classes; class 3 is never predicted (precision 0 by definition, not NaN).
    true = [0, 0, 0, 1, 1, 2, 2, 2, 3]
    pred = [0, 0, 1, 1, 2, 2, 2, 0, 2]
    p_true = [0.5, 0.8, 0.25, 0.5, 0.1, 0.9, 0.6, 0.2, 0.0]  # the last is clipped to 1e-7
    probabilities = np.zeros((9, 4))
    probabilities[np.arange(9), true] = p_true
    metrics = classification_metrics(np.array(true), np.array(pred), probabilities, 4)
    assert metrics["confusion_matrix"].tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0], [0, 0, 1, 0]]
    assert metrics["accuracy"] == pytest.approx(5 / 9)
    assert metrics["precision"] == pytest.approx([2 / 3, 1 / 2, 2 / 4, 0.0])
    assert metrics["recall"] == pytest.approx([2 / 3, 1 / 2, 2 / 3, 0.0])
    assert metrics["f1"] == pytest.approx([2 / 3, 1 / 2, 4 / 7, 0.0])
    assert metrics["support"] == [3, 2, 3, 1]
    # -ln of 0.5, 0.8, 0.25, 0.5, 0.1, 0.9, 0.6, 0.2, 1e-7, summed by hand
    hand_sum = 0.693147 + 0.223144 + 1.386294 + 0.693147 + 2.302585 + 0.105361 + 0.510826 + 1.609438
    assert metrics["loss"] == pytest.approx((hand_sum + 16.118096) / 9, abs=1e-5)


def test_a_class_without_images_has_recall_zero():
    metrics = classification_metrics(np.array([0, 0]), np.array([0, 1]), np.full((2, 3), 1 / 3), 3)
    assert metrics["recall"] == [0.5, 0.0, 0.0] and metrics["precision"] == [1.0, 0.0, 0.0]
    assert metrics["support"] == [2, 0, 0]


def test_evaluation_counts_every_readable_image_once_and_agrees_with_keras(trained):
    loaded, val_dir = trained
    progress = []
    result = evaluate(loaded, val_dir, batch_size=5, on_progress=lambda d, t: progress.append((d, t)))
    assert result.class_names == list(CLASSES)
    assert result.total == 12 and int(result.confusion_matrix.sum()) == 12
    assert sorted(image.path for image in result.images) == sorted(
        os.path.join(val_dir, name, f)
        for name in CLASSES
        for f in os.listdir(os.path.join(val_dir, name))
        if f != "broken.png"
    )
    assert [s.path for s in result.skipped] == [os.path.join(val_dir, "red", "broken.png")]
    assert result.confusion_matrix.sum(axis=1).tolist() == [5, 4, 3]
    assert {name: row["support"] for name, row in result.per_class.items()} == {
        "blue": 5,
        "green": 4,
        "red": 3,
    }
    for image in result.images:  # each result belongs to its own file
        assert CLASSES[image.true_label] == os.path.basename(os.path.dirname(image.path))
    assert progress[-1] == (12, 12) and len(progress) == 3

    # Keras's own evaluate on the same decoded images gives the same loss and accuracy.
    images = np.stack([decode_image(image.path, 16) for image in result.images]).astype("float32")
    labels = np.array([image.true_label for image in result.images])
    model = loaded.model
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(images, labels, verbose=0)
    assert result.loss == pytest.approx(loss, abs=1e-4)
    assert result.accuracy == pytest.approx(accuracy)
    expected = loaded.predict(images)
    assert np.allclose(np.stack([image.probabilities for image in result.images]), expected, atol=1e-5)


def test_files_failing_mid_stream_are_reported_and_not_counted(trained, monkeypatch):
    loaded, val_dir = trained
    failing = {os.path.join(val_dir, "blue", f"blue_{i:03d}.png") for i in (0, 1, 3)}  # a whole batch
    real_decode = decode_image

    def flaky_decode(path, size, resize_mode="stretch"):
        if path in failing:
            raise UnreadableImage("truncated or corrupt image data (test)")
        return real_decode(path, size, resize_mode)

    monkeypatch.setattr("core.data.pipeline.decode_image", flaky_decode)
    result = evaluate(loaded, val_dir, batch_size=2)
    assert result.total == 9 and int(result.confusion_matrix.sum()) == 9
    assert {image.path for image in result.images}.isdisjoint(failing)
    assert {s.path for s in result.skipped} == failing | {os.path.join(val_dir, "red", "broken.png")}
    assert result.per_class["blue"]["support"] == 2
    for image in result.images:
        assert CLASSES[image.true_label] == os.path.basename(os.path.dirname(image.path))


def test_a_folder_without_the_models_classes_is_refused(trained, tmp_path):
    loaded, _ = trained
    other = make_class_folders(str(tmp_path / "other"), {"blue": 1, "green": 1, "purple": 1})
    with pytest.raises(
        DatasetError, match="no subfolder for red; subfolders the model does not know: purple"
    ):
        evaluate(loaded, other)


def test_a_model_without_labels_takes_the_folders_classes_in_sorted_order(trained, tmp_path):
    loaded, val_dir = trained
    bare = shutil.copy(loaded.model_path, tmp_path / "bare.keras")
    result = evaluate(str(bare), val_dir)
    assert result.class_names == list(CLASSES) and result.total == 12
    assert result.notes and "sorted order" in result.notes[0]


def test_cancel_stops_the_evaluation(trained):
    loaded, val_dir = trained
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(EvaluationCancelled):
        evaluate(loaded, val_dir, cancel=cancel)


def fixed_result():
    def image(name, true, pred, probabilities):
        return ImageResult(name, true, pred, np.array(probabilities, dtype=np.float32))

    images = [
        image("a.png", 0, 0, [0.9, 0.1]),
        image("b.png", 0, 1, [0.4, 0.6]),
        image("c.png", 1, 0, [0.95, 0.05]),
        image("d.png", 1, 1, [0.3, 0.7]),
        image("e.png", 0, 1, [0.2, 0.8]),
    ]
    metrics = classification_metrics(
        np.array([i.true_label for i in images]),
        np.array([i.predicted_label for i in images]),
        np.stack([i.probabilities for i in images]),
        2,
    )
    per_class = {
        name: {key: metrics[key][k] for key in ("precision", "recall", "f1", "support")}
        for k, name in enumerate(["cat", "dog"])
    }
    return EvaluationResult(
        ["cat", "dog"],
        metrics["accuracy"],
        metrics["loss"],
        per_class,
        metrics["confusion_matrix"],
        images,
        [SkippedFile("x.png", "not an image")],
    )


def test_misclassified_are_sorted_by_confidence_in_the_wrong_class():
    result = fixed_result()
    assert [i.path for i in result.misclassified()] == ["c.png", "e.png", "b.png"]
    assert [i.path for i in result.images_in_cell(0, 1)] == ["e.png", "b.png"]
    assert [i.path for i in result.images_in_cell(1, 1)] == ["d.png"]
    assert result.images_in_cell(1, 0)[0].confidence == pytest.approx(0.95)


def test_json_and_csv_of_the_results(tmp_path):
    result = fixed_result()
    data = json.loads(json.dumps(result.to_json(include_images=True)))
    assert data["accuracy"] == pytest.approx(0.4) and data["confusion_matrix"] == [[1, 2], [1, 1]]
    assert data["per_class"]["cat"]["support"] == 3 and data["skipped"][0]["reason"] == "not an image"
    assert data["images"][1]["predicted_class"] == "dog" and data["images"][1]["correct"] is False
    result.write_csv(str(tmp_path / "out" / "images.csv"))
    with open(tmp_path / "out" / "images.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and list(rows[0]) == result.csv_header()
    assert rows[2] == {
        "path": "c.png",
        "true_class": "dog",
        "predicted_class": "cat",
        "correct": "0",
        "confidence": "0.950000",
        "true_class_probability": "0.050000",
        "p_cat": "0.950000",
        "p_dog": "0.050000",
    }


def test_cli_evaluate_json(trained, tmp_path):
    loaded, val_dir = trained
    out_csv = tmp_path / "per_image.csv"
    command = ["evaluate", "--model", loaded.run_dir, "--data", val_dir, "--json", "--csv", str(out_csv)]
    done = subprocess.run(
        [sys.executable, "main.py", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"accuracy", "loss", "class_names", "confusion_matrix", "per_class", "skipped"} <= set(data)
    assert data["class_names"] == list(CLASSES)
    assert sum(map(sum, data["confusion_matrix"])) == 12
    assert set(data["per_class"]["red"]) == {"precision", "recall", "f1", "support"}
    assert data["skipped"][0]["path"].endswith("broken.png")
    with open(out_csv, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12
