"""Classifying frames: a frame is seen as a saved image of it would be (stretch and crop), a real
video's frames get the right colour class over time, and `predict --video` writes its CSV."""

import argparse
import csv
import dataclasses
import io
import os

import numpy as np
import pytest
from conftest import make_class_folders
from PIL import Image
from videos import FPS, cut_in_half, make_video

from core.cli.model_commands import run_predict
from core.config import TrainingConfig
from core.data.images import decode_image
from core.data.video import UnreadableVideo
from core.errors import FitStudioError
from core.modeling.frames import classify_frames, explain_frame, predict_video
from core.modeling.model_io import load_model
from core.training.driver import train

CLASSES = ("blue", "green", "red")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("frames")
    config = TrainingConfig(
        train_dir=make_class_folders(str(base / "train"), dict.fromkeys(CLASSES, 8)),
        val_dir=make_class_folders(str(base / "val"), dict.fromkeys(CLASSES, 2)),
        epochs=4, batch_size=4, image_size=16, learning_rate=0.01, out_dir=str(base / "runs"),
    )
    result = train(config)
    assert result.status == "completed", result.message
    return result.run_dir


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(str(tmp_path_factory.mktemp("video") / "colours.mp4"))  # blue, green, red: 1 s each


@pytest.mark.parametrize("resize_mode", ["stretch", "crop"])
def test_a_frame_is_seen_as_its_saved_image_is(run_dir, tmp_path, resize_mode):
    loaded = dataclasses.replace(load_model(run_dir), resize_mode=resize_mode)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (30, 50, 3)).astype(np.uint8)
    frame[:, 10:40] = (220, 40, 40)
    path = str(tmp_path / "frame.png")
    Image.fromarray(frame).save(path)
    expected = loaded.predict(decode_image(path, loaded.image_size, resize_mode)[None])
    np.testing.assert_allclose(classify_frames(loaded, [frame]), expected, atol=1e-6)


def test_explain_frame_gives_a_heatmap_over_the_frame(run_dir):
    loaded = load_model(run_dir)
    frame = np.zeros((30, 50, 3), np.uint8)
    frame[:] = (220, 40, 40)
    probabilities, heatmap = explain_frame(loaded, frame)
    assert CLASSES[int(np.argmax(probabilities))] == "red"
    assert heatmap.shape == (30, 50) and heatmap.min() >= 0 and heatmap.max() <= 1


def test_predict_video_follows_the_colours(run_dir, video):
    result = predict_video(run_dir, video, every_s=0.5)
    assert [round(p.time_s, 2) for p in result.predictions] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    tops = [result.class_names[int(np.argmax(p.probabilities))] for p in result.predictions]
    assert tops == ["blue", "blue", "green", "green", "red", "red"]
    assert result.end.complete


def _predict_args(run_dir, video, csv_path, every=None):
    return argparse.Namespace(
        model=run_dir, paths=[], video=video, every=every, csv=csv_path, top_k=3, batch_size=8,
        explain=None, explain_class=None,
    )


def test_predict_video_command_writes_one_row_per_sampled_frame(run_dir, video, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    target = str(tmp_path / "video.csv")
    assert run_predict(_predict_args(run_dir, video, target, every=1.0), out, err) == 0
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["time_s"] for row in rows] == ["0.000", "1.000", "2.000"]
    assert [row["frame"] for row in rows] == ["0", str(FPS), str(2 * FPS)]
    assert [row["top_class"] for row in rows] == ["blue", "green", "red"]
    for row in rows:
        probabilities = [float(row[f"p_{name}"]) for name in CLASSES]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert float(row["probability"]) == pytest.approx(max(probabilities), abs=1e-6)
    assert "Wrote 3 frame predictions" in out.getvalue()


def test_predict_video_on_a_truncated_file_keeps_the_frames_before_the_break(run_dir, video, tmp_path):
    cut = cut_in_half(video, str(tmp_path / "cut.mp4"))
    out, err = io.StringIO(), io.StringIO()
    target = str(tmp_path / "cut.csv")
    assert run_predict(_predict_args(run_dir, cut, target), out, err) == 0
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert FPS <= len(rows) < 3 * FPS
    assert "Warning: The video stops after frame" in err.getvalue()


def test_predict_video_refuses_a_file_that_is_no_video(run_dir, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(os.urandom(2048))
    with pytest.raises(UnreadableVideo):
        args = _predict_args(run_dir, str(fake), str(tmp_path / "out.csv"))
        run_predict(args, io.StringIO(), io.StringIO())
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    "change", [{"csv": None}, {"paths": ["a.png"]}, {"video": None, "paths": []}]
)
def test_predict_video_needs_a_csv_and_no_image_paths(run_dir, video, tmp_path, change):
    args = _predict_args(run_dir, video, str(tmp_path / "out.csv"))
    for key, value in change.items():
        setattr(args, key, value)
    with pytest.raises(FitStudioError):
        run_predict(args, io.StringIO(), io.StringIO())
