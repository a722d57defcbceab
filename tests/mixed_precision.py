"""Small-cnn models trained under a mixed-precision dtype policy, saved and loaded as any .keras file
is, once per session: what a `--precision mixed` run leaves on a GPU (mixed_float16) and on a CPU
(mixed_bfloat16). Keras keeps the policy per layer in the file.

The bfloat16 one is a real `precision="mixed"` run of the engine on a CPU. The engine never picks
float16 on a CPU (it is emulated and slow there), so the float16 one is compiled as the engine
compiles and fitted for two steps by Keras directly. At 32 px small-cnn's last feature map is 2x2.
"""

from __future__ import annotations

import os

import numpy as np
from conftest import make_class_folders

CLASSES = ("blue", "green", "red")
IMAGE_SIZE = 32
_cache: dict[str, object] = {}


def mixed_precision_model(tmp_path_factory, policy: str):
    """A LoadedModel whose layers compute in `policy` ("mixed_float16" or "mixed_bfloat16")."""
    if policy not in _cache:
        folder = tmp_path_factory.mktemp(policy)
        make = _engine_run if policy == "mixed_bfloat16" else _keras_fit
        _cache[policy] = make(folder, policy)
    return _cache[policy]


def float32_twin(loaded):
    """The same small-cnn computing in float32, with the mixed model's weights (float32 already)."""
    from core.modeling.models import build_model

    twin = build_model("small-cnn", len(CLASSES), IMAGE_SIZE).model
    twin.set_weights(loaded.model.get_weights())
    return twin


def _engine_run(folder, policy):
    from core.config import TrainingConfig
    from core.modeling.model_io import load_model
    from core.training.driver import train

    data = make_class_folders(str(folder / "data"), dict.fromkeys(CLASSES, 4), size=IMAGE_SIZE)
    config = TrainingConfig(train_dir=data, val_dir=data, image_size=IMAGE_SIZE, epochs=1, batch_size=6,
                            precision="mixed", out_dir=str(folder / "runs"))
    result = train(config)
    assert result.status == "completed", result.message
    loaded = load_model(result.run_dir)
    assert loaded.model.get_layer("conv0").dtype_policy.name == policy
    return loaded


def _keras_fit(folder, policy):
    from core.modeling.model_io import load_model
    from core.modeling.models import build_model, compile_model
    from core.tf_runtime import load_keras

    keras = load_keras()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # per thread, as a training run sets it
    try:
        model = build_model("small-cnn", len(CLASSES), IMAGE_SIZE).model
        compile_model(model, 1e-2)
        images = np.random.default_rng(0).uniform(0, 255, (8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
        model.fit(images, np.arange(8) % len(CLASSES), batch_size=4, epochs=1, verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)
    path = os.path.join(str(folder), "model.keras")
    model.save(path)
    loaded = load_model(path)
    assert loaded.model.get_layer("conv0").dtype_policy.name == policy
    return loaded
