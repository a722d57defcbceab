"""Export: each format, written by the command, gives the Keras model's top-1 class on the demo
validation set (dynamic-range quantised TFLite: at least 95%); ONNX does for every model family;
augmentation and BatchNorm export in inference mode."""

import io
import os
import threading

import numpy as np
import pytest
from conftest import make_class_folders
from mixed_precision import IMAGE_SIZE as MIXED_SIZE
from mixed_precision import float32_twin, mixed_precision_model

from core.config import Augmentation, TrainingConfig
from core.data.dataset import scan
from core.data.images import decode_image
from core.errors import FitStudioError
from core.modeling import export
from core.modeling.export import (
    FORMATS,
    OUTPUT_NAMES,
    ExportCancelled,
    ExportError,
    export_model,
    load_exported,
)
from core.modeling.model_io import LoadedModel, load_model
from core.modeling.models import build_model
from core.paths import demo_val_dir
from core.runs.run_folder import read_labels
from core.training.driver import train


def decoded(folder, size, resize_mode="stretch"):
    files, _ = scan(folder)
    return np.stack([decode_image(path, size, resize_mode) for path in files.paths])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo model (5 epochs, ~8 s), its validation images and its own probabilities."""
    base = tmp_path_factory.mktemp("export")
    result = train(TrainingConfig(out_dir=str(base / "runs")))
    assert result.status == "completed"
    loaded = load_model(result.run_dir)
    images = decoded(demo_val_dir(), loaded.image_size, loaded.resize_mode)
    assert len(images) == 90
    return loaded, images, loaded.predict(images), base


@pytest.fixture(scope="module")
def exported(demo):
    """Every format written by the `export` command, into one folder. The command runs in this
    process (its parser and handler, as main.py calls them): five processes that each import
    TensorFlow and load the model would take most of the test's time limit on a busy machine."""
    from main import build_parser

    loaded, _, _, base = demo
    out = base / "exported"
    outputs = {}
    for fmt in FORMATS:  # one after the other: they share labels.txt
        command = ["export", "--model", loaded.run_dir, "--format", fmt, "--out", str(out)]
        args = build_parser().parse_args(command)
        stdout, stderr = io.StringIO(), io.StringIO()
        assert args.handler(args, stdout, stderr) == 0, stderr.getvalue()[-3000:]
        path = str(out / OUTPUT_NAMES[fmt])
        assert stdout.getvalue().splitlines()[0].startswith(path)
        outputs[fmt] = path
    return outputs


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_export_gives_the_keras_top1_class(demo, exported, fmt):
    loaded, images, keras_probabilities, _ = demo
    path = exported[fmt]
    assert os.path.exists(path)
    assert read_labels(os.path.join(os.path.dirname(path), "labels.txt")) == loaded.class_names
    run = load_exported(path)
    probabilities = np.concatenate([run(images[i : i + 32]) for i in range(0, len(images), 32)])
    agreement = np.mean(probabilities.argmax(axis=1) == keras_probabilities.argmax(axis=1))
    if fmt == "tflite-quant":
        assert agreement >= 0.95
    else:
        assert agreement == 1.0
        assert np.allclose(probabilities, keras_probabilities, atol=1e-4)
    assert run(images[:1].astype(np.float32)).shape == (1, 3)  # float input, another batch size


def test_export_sizes(exported):
    sizes = {fmt: _size(path) for fmt, path in exported.items()}
    assert sizes["tflite-quant"] < sizes["tflite"] / 2  # the weights became int8
    print("export sizes (bytes):", sizes)


def test_augmentation_and_batchnorm_export_in_inference_mode(tmp_path):
    classes = dict.fromkeys(("blue", "green", "red"), 8)
    train_dir = make_class_folders(str(tmp_path / "train"), classes)
    val_dir = make_class_folders(str(tmp_path / "val"), dict.fromkeys(classes, 4))
    config = TrainingConfig(
        train_dir=train_dir,
        val_dir=val_dir,
        epochs=2,
        batch_size=8,
        image_size=16,
        augmentation=Augmentation.all_on(),
        out_dir=str(tmp_path / "runs"),
    )
    result = train(config)
    assert result.status == "completed"
    loaded = load_model(result.run_dir)
    images = decoded(val_dir, 16)
    expected = loaded.predict(images)
    for fmt in ("savedmodel", "tflite"):
        written = export_model(loaded, fmt, str(tmp_path / "out"))
        assert written == [str(tmp_path / "out" / OUTPUT_NAMES[fmt]), str(tmp_path / "out" / "labels.txt")]
        run = load_exported(written[0])
        first, second = run(images), run(images)
        # Random augmentation or batch statistics would change the answers between calls.
        assert np.array_equal(first, second)
        assert np.allclose(first, expected, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenetv2", "efficientnetb0"])
def test_onnx_gives_the_keras_top1_class_for_every_model_family(name, tmp_path):
    """Random weights at 32 px (no downloads; the conversion time grows with the graph, not the
    size), with augmentation layers, which must not reach the ONNX graph. small-cnn: above."""
    model = build_model(name, 3, 32, Augmentation.all_on()).model
    loaded = LoadedModel(model, ["apple", "banana", "lime"], 32, "stretch", "", None, True)
    written = export_model(loaded, "onnx", str(tmp_path))
    assert written == [str(tmp_path / "model.onnx"), str(tmp_path / "labels.txt")]
    images = decoded(demo_val_dir(), 32)
    expected = loaded.predict(images)
    probabilities = load_exported(written[0])(images)
    agreement = np.mean(probabilities.argmax(axis=1) == expected.argmax(axis=1))
    print(f"{name} ONNX: top-1 agreement {agreement:.1%}, largest difference "
          f"{np.abs(probabilities - expected).max():.1e}")
    assert agreement == 1.0
    assert np.allclose(probabilities, expected, atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_model_exports_in_float32_to_every_format(policy, tmp_path, tmp_path_factory):
    """The exported graphs compute in float32 with the model's (float32) weights: TFLite cannot
    convert a float16 graph and ONNX Runtime cannot load a bfloat16 one. The .keras file is the
    model as trained."""
    loaded = mixed_precision_model(tmp_path_factory, policy)
    images = decoded(demo_val_dir(), MIXED_SIZE)
    own = loaded.predict(images)
    exact = float32_twin(loaded).predict(images, verbose=0)
    for fmt in ("savedmodel", "tflite", "onnx"):
        written = export_model(loaded, fmt, str(tmp_path / fmt))
        probabilities = load_exported(written[0])(images)
        np.testing.assert_allclose(probabilities, exact, atol=1e-4, err_msg=fmt)
        np.testing.assert_allclose(probabilities, own, atol=0.02, err_msg=fmt)  # float16 rounding
    written = export_model(loaded, "keras", str(tmp_path / "keras"))
    np.testing.assert_array_equal(load_exported(written[0])(images), own)


def test_a_mixed_precision_model_that_cannot_be_rebuilt_in_float32_is_refused(tmp_path, tmp_path_factory,
                                                                            monkeypatch):
    loaded = mixed_precision_model(tmp_path_factory, "mixed_bfloat16")

    def refuse(config):
        raise ValueError("Unknown layer: 'SomeoneElsesLayer'")

    monkeypatch.setattr(export.load_keras().saving, "deserialize_keras_object", refuse)
    with pytest.raises(ExportError, match=r"could not be rebuilt in float32 .*SomeoneElsesLayer"):
        export_model(loaded, "onnx", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_onnx_names_its_input_and_output(exported):
    import onnx

    graph = onnx.load(exported["onnx"]).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["probabilities"]
    dims = [d.dim_value or d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [128, 128, 3] and isinstance(dims[0], str)  # any batch size


def test_bad_export_requests_are_explained(demo, tmp_path):
    loaded = demo[0]
    with pytest.raises(ExportError, match="Unknown export format 'pytorch'"):
        export_model(loaded, "pytorch", str(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="is a file"):
        export_model(loaded, "keras", str(tmp_path / "file"))
    with pytest.raises(FitStudioError, match="does not exist"):
        export_model(str(tmp_path / "no-model"), "keras", str(tmp_path / "out"))


def test_exporting_keras_into_its_own_folder_keeps_the_file(demo):
    loaded = demo[0]
    before = os.path.getsize(loaded.model_path)
    written = export_model(loaded, "keras", loaded.run_dir)
    assert written[0] == loaded.model_path and os.path.getsize(loaded.model_path) == before


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(p, f)) for p, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def test_a_cancelled_export_stops_at_its_next_step_and_keeps_the_earlier_export(
    tmp_path_factory, tmp_path, monkeypatch
):
    from trained_model import tiny_run

    run_dir, out = tiny_run(tmp_path_factory).run_dir, tmp_path / "out"
    export_model(run_dir, "savedmodel", str(out))
    earlier = os.path.getmtime(out / "saved_model" / "saved_model.pb")
    cancel = threading.Event()
    # Stopped while the TensorFlow Lite conversion is announced: it ends after its SavedModel step.
    with pytest.raises(ExportCancelled):
        export_model(run_dir, "tflite", str(out), on_message=lambda text: cancel.set(), cancel=cancel)
    assert not (out / "model.tflite").exists()
    # Stopped while a SavedModel is written: the earlier export stays in place, nothing half-written.
    cancel.clear()
    real_write = export.write_saved_model

    def write_then_stop(loaded, path):
        real_write(loaded, path)
        cancel.set()

    monkeypatch.setattr(export, "write_saved_model", write_then_stop)
    with pytest.raises(ExportCancelled):
        export_model(run_dir, "savedmodel", str(out), cancel=cancel)
    assert os.path.getmtime(out / "saved_model" / "saved_model.pb") == earlier
    assert sorted(os.listdir(out)) == ["labels.txt", "saved_model"]
