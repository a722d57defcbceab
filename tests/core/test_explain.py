"""Heatmaps: a trained model's heatmap lies on what decides the class; heatmaps line up with the image
whatever the resize mode and orientation; every model family gives one; `predict --explain` writes
the files."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from mixed_precision import IMAGE_SIZE as MIXED_SIZE
from mixed_precision import float32_twin, mixed_precision_model
from PIL import Image
from squares import make_square_dataset, strongest_point_on_square

from core.config import Augmentation, TrainingConfig
from core.data.images import decode_image
from core.modeling.explain import (
    ExplainError,
    align_heatmap,
    class_index,
    explain_images,
    last_feature_layer,
    overlay,
    unique_stems,
)
from core.modeling.model_io import LoadedModel, load_model
from core.modeling.models import build_model
from core.paths import demo_val_dir
from core.tf_runtime import load_keras
from core.training.driver import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Measured: 96.7% at 128 px (bench/explain.py, small-cnn, one seed); the test keeps a margin for the
# variation between machines and thread schedules.
LOCALISATION_RATE = 0.8


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """small-cnn trained (6 epochs, ~10 s) to tell red, green and blue squares on colour noise apart."""
    base = tmp_path_factory.mktemp("squares")
    make_square_dataset(str(base / "train"), 30, seed=1)
    make_square_dataset(str(base / "val"), 6, seed=2)
    config = TrainingConfig(
        train_dir=str(base / "train"), val_dir=str(base / "val"), epochs=6, batch_size=16,
        image_size=128, learning_rate=3e-3, seed=0, out_dir=str(base / "runs"),
    )
    result = train(config)
    assert result.status == "completed", result.message
    assert result.final_logs["val_accuracy"] >= 0.9
    return load_model(result.run_dir), base


def localisation_rate(loaded, boxes) -> float:
    explanations = list(explain_images(loaded, list(boxes)))
    assert len(explanations) == len(boxes)
    for explanation in explanations:
        assert explanation.heatmaps[0].shape == (60, 80)  # the image's own size, not the model's 128
    hits = [strongest_point_on_square(e.heatmaps[0], boxes[e.path]) for e in explanations]
    return float(np.mean(hits))


def test_the_heatmap_lies_on_the_square(squares):
    loaded, base = squares
    boxes = make_square_dataset(str(base / "test"), 20, seed=3)  # 60 images, squares anywhere
    rate = localisation_rate(loaded, boxes)
    print(f"strongest point on the square, stretch: {rate:.1%}")
    assert rate >= LOCALISATION_RATE


def test_crop_heatmaps_are_zero_outside_the_crop_and_still_on_the_square(squares):
    loaded, base = squares
    cropping = dataclasses.replace(loaded, resize_mode="crop")
    boxes = make_square_dataset(str(base / "test-crop"), 20, seed=4, centre_only=True)
    explanations = list(explain_images(cropping, list(boxes)))
    for explanation in explanations:
        heatmap = explanation.heatmaps[0]
        assert heatmap.shape == (60, 80)
        assert not heatmap[:, :10].any() and not heatmap[:, 70:].any()  # the model never saw them
    rate = float(np.mean([strongest_point_on_square(e.heatmaps[0], boxes[e.path]) for e in explanations]))
    print(f"strongest point on the square, crop: {rate:.1%}")
    assert rate >= LOCALISATION_RATE


def test_a_chosen_class_and_both_classes_of_a_mistake(squares):
    loaded, base = squares
    path = sorted(make_square_dataset(str(base / "one"), 1, seed=5))[0]
    (explanation,) = explain_images(loaded, [path], [(0, 2)])
    assert explanation.classes == (0, 2) and len(explanation.heatmaps) == 2
    assert not np.array_equal(explanation.heatmaps[0], explanation.heatmaps[1])
    (predicted,) = explain_images(loaded, [path])
    assert predicted.classes == (predicted.predicted,)
    with pytest.raises(ExplainError, match="0 to 2"):
        list(explain_images(loaded, [path], [(3,)]))
    with pytest.raises(ExplainError, match=r"no class 'purple'.*blue, green, red"):
        class_index(loaded, "purple")


def test_heatmaps_follow_the_exif_orientation(squares, tmp_path):
    loaded, _ = squares
    pixels = np.random.default_rng(0).integers(0, 256, (20, 40, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90°": viewers show it 20 wide and 40 tall
    path = str(tmp_path / "rotated.jpg")
    Image.fromarray(pixels).save(path, exif=exif)
    (explanation,) = explain_images(loaded, [path])
    assert explanation.image.shape == (40, 20, 3) and explanation.heatmaps[0].shape == (40, 20)


def test_unreadable_files_are_skipped_and_max_side_shrinks_the_heatmap(squares, tmp_path):
    loaded, _ = squares
    good = sorted(make_square_dataset(str(tmp_path / "good"), 1, seed=6))[0]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    skipped = []
    explanations = list(explain_images(loaded, [str(broken), good], max_side=40, skipped=skipped))
    assert [e.path for e in explanations] == [good]
    assert explanations[0].heatmaps[0].shape == (30, 40)  # 80x60 scaled to a 40 px long side
    assert [s.path for s in skipped] == [str(broken)] and "truncated" in skipped[0].reason


# --- geometry ---------------------------------------------------------------------------------------


def hottest(heatmap):
    return np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)


def test_stretch_places_each_feature_cell_over_its_part_of_the_image():
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[1, 2] = 1.0
    heatmap = align_heatmap(cam, 80, 60, "stretch")
    assert heatmap.shape == (60, 80)
    row, column = hottest(heatmap)
    assert abs(row - 22) <= 1 and abs(column - 50) <= 1  # the centre of cell (1, 2): (1.5/4, 2.5/4)
    assert heatmap.max() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("width", "height"), [(80, 60), (60, 80)])
def test_crop_maps_onto_the_centre_square_and_zero_outside(width, height):
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[1, 2] = 1.0
    heatmap = align_heatmap(cam, width, height, "crop")
    assert heatmap.shape == (height, width)
    left, top = (width - 60) // 2, (height - 60) // 2
    row, column = hottest(heatmap)
    assert abs(row - (top + 22)) <= 1 and abs(column - (left + 37)) <= 1  # cell (1, 2) of the square
    inside = np.zeros_like(heatmap, dtype=bool)
    inside[top : top + 60, left : left + 60] = True
    assert not heatmap[~inside].any() and heatmap[inside].min() >= 0


def test_the_overlay_keeps_the_image_where_the_heatmap_is_cold():
    image = np.full((10, 10, 3), 200, dtype=np.uint8)
    heatmap = np.zeros((10, 10), dtype=np.float32)
    heatmap[5:, 5:] = 1.0
    blended = overlay(image, heatmap)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    cold, hot = blended[0, 0].astype(int), blended[9, 9].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red where hot, blue-tinted where cold
    assert np.abs(cold - 200).max() < np.abs(hot - 200).max()


def test_stems_that_clash_get_numbers():
    paths = ["a/cat.jpg", "b/cat.png", "c/Cat.gif", "d/cat-2.jpg", "dog.jpg"]
    stems = unique_stems(paths)
    assert stems["a/cat.jpg"] == "cat" and stems["d/cat-2.jpg"] == "cat-2" and stems["dog.jpg"] == "dog"
    assert len({stem.casefold() for stem in stems.values()}) == len(paths)


# --- model families -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "augment", "feature_layer"),
    [
        ("small-cnn", True, "relu3"),
        ("mobilenetv2", False, "mobilenetv2_1.00_64"),
        ("efficientnetb0", True, "efficientnetb0"),
    ],
)
def test_every_model_family_gives_a_heatmap_in_inference_mode(name, augment, feature_layer):
    """Random weights at 64 px (no downloads): the heatmap has the image's size and the answer
    equals the model's, so augmentation and dropout did not run."""
    augmentation = Augmentation.all_on() if augment else Augmentation()
    model = build_model(name, 3, 64, augmentation).model
    assert last_feature_layer(model).name == feature_layer
    loaded = LoadedModel(model, ["apple", "banana", "lime"], 64, "stretch", "", None, True)
    folder = os.path.join(demo_val_dir(), "banana")
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:2]]
    explanations = list(explain_images(loaded, paths))
    assert [e.path for e in explanations] == paths
    expected = loaded.predict(np.stack([decode_image(path, 64) for path in paths]))
    for explanation, probabilities in zip(explanations, expected, strict=True):
        heatmap = explanation.heatmaps[0]
        assert heatmap.shape == explanation.image.shape[:2] == Image.open(explanation.path).size[::-1]
        assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1
        assert np.allclose(explanation.probabilities, probabilities, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_model_gives_the_heatmaps_of_its_float32_twin(policy, tmp_path_factory):
    """Under --precision mixed the feature map is float16 (bfloat16 on a CPU) and the head float32:
    the heatmaps are those of the same weights computing in float32, up to the rounding."""
    loaded = mixed_precision_model(tmp_path_factory, policy)
    twin = dataclasses.replace(loaded, model=float32_twin(loaded))
    folder = os.path.join(demo_val_dir(), "lime")
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:3]]
    targets = [(0, 2)] * len(paths)  # two classes each: both gradient slots
    mixed = list(explain_images(loaded, paths, targets))
    exact = list(explain_images(twin, paths, targets))
    assert [e.path for e in mixed] == paths
    for ours, theirs in zip(mixed, exact, strict=True):
        np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=0.02)
        for heatmap, expected in zip(ours.heatmaps, theirs.heatmaps, strict=True):
            assert heatmap.dtype == np.float32
            np.testing.assert_allclose(heatmap, expected, atol=0.05)
    assert any(heatmap.max() == pytest.approx(1.0) for e in mixed for heatmap in e.heatmaps)  # not all blank
    assert loaded.image_size == MIXED_SIZE


def test_a_model_without_convolutions_is_refused_with_a_reason():
    keras = load_keras()

    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    loaded = LoadedModel(keras.Model(inputs, outputs), ["a", "b", "c"], 16, "stretch", "", None, True)
    with pytest.raises(ExplainError, match="no convolutional feature map"):
        list(explain_images(loaded, [os.path.join(demo_val_dir(), "lime", os.listdir(
            os.path.join(demo_val_dir(), "lime"))[0])]))


# --- the command --------------------------------------------------------------------------------------


def fitstudio(*args):
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def test_predict_explain_writes_a_heatmap_and_an_overlay_per_image(squares, tmp_path):
    loaded, _ = squares
    boxes = make_square_dataset(str(tmp_path / "photos"), 1, seed=7)
    red, green, _blue = sorted(boxes)
    os.makedirs(tmp_path / "other")
    clash = str(tmp_path / "other" / os.path.basename(red))  # same name, another folder
    Image.open(green).resize((50, 70)).save(clash)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out = tmp_path / "why"
    done = fitstudio("predict", "--model", loaded.run_dir, red, clash, str(broken), "--explain", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    stem = os.path.splitext(os.path.basename(red))[0]
    assert sorted(os.listdir(out)) == sorted(
        [f"{stem}_heatmap.png", f"{stem}_overlay.jpg", f"{stem}-2_heatmap.png", f"{stem}-2_overlay.jpg"]
    )
    for name, size in ((stem, (80, 60)), (f"{stem}-2", (50, 70))):
        with Image.open(out / f"{name}_heatmap.png") as heatmap:
            assert (heatmap.mode, heatmap.size) == ("L", size)
            assert np.asarray(heatmap).max() == 255  # white: the most important place
        with Image.open(out / f"{name}_overlay.jpg") as blended:
            assert (blended.mode, blended.size) == ("RGB", size)
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    assert "heatmap and an overlay for 2 images" in done.stdout


def test_predict_explain_explains_bad_requests(squares, tmp_path, capsys):
    from main import main

    loaded, _ = squares
    image = sorted(make_square_dataset(str(tmp_path / "photos"), 1, seed=8))[0]
    (tmp_path / "a-file").write_text("")
    requests = {
        "is a file": ["--explain", str(tmp_path / "a-file")],
        "no class 'pink'; its classes are blue, green, red": [
            "--explain", str(tmp_path / "out"), "--explain-class", "pink"
        ],
        "--explain-class needs --explain DIR": ["--explain-class", "red"],
    }
    for message, options in requests.items():
        assert main(["predict", "--model", loaded.run_dir, image, *options]) == 2
        assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")
