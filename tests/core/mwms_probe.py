"""One worker of a 2-worker MultiWorkerMirroredStrategy on 127.0.0.1, run by test_keras_compat.py.

    python mwms_probe.py RANK PORT0,PORT1

Fits a tiny model three times: with Keras as it is, with only the symbolic-build fix, with both fixes
of core.training.distribution.keras_compat. Prints one JSON line per fit: {"fixes", "error",
"losses"}. Each failure happens while Keras traces, before any collective op runs, so both workers
fail alike and the next fit starts clean.
"""

import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main(rank: int, ports: list[str]) -> None:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})
    import keras
    import numpy as np
    import tensorflow as tf

    from core.training.distribution import keras_compat

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(rank)
    images = rng.normal(size=(8, 4)).astype("float32")
    labels = (images[:, 0] > 0).astype("int32")

    def per_worker_dataset(context):
        return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4).repeat()

    for fixes in ("none", "symbolic-build", "both"):
        if fixes == "symbolic-build":
            keras_compat.install_symbolic_build_fix()
        elif fixes == "both":
            keras_compat.install()
        data = strategy.distribute_datasets_from_function(per_worker_dataset)
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        outcome = {"fixes": fixes, "error": None, "losses": None}
        try:
            history = model.fit(data, epochs=2, steps_per_epoch=2, verbose=0)
            outcome["losses"] = [round(float(loss), 6) for loss in history.history["loss"]]
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:400]
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(","))
