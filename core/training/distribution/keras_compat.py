"""What Keras 3.15 `model.fit` (TensorFlow 2.21) needs to run under MultiWorkerMirroredStrategy.

Plain Keras 3 cannot train on several workers today (keras-team/keras#20585, tensorflow/tensorflow
#72388, ray-project/ray#47464). With 2 CPU workers on 127.0.0.1, `fit` fails in two places:

1. `TensorFlowTrainer._maybe_symbolic_build` creates the model's variables from the first batch,
   which it gets as `strategy.reduce("MEAN", batch, axis=None)`. Reducing per-replica *data* under
   collective all-reduce fails before the first step: "ValueError: Attempt to convert a value
   (PerReplica:{...}) ... to a Tensor". Only shapes and dtypes matter there, so we build from this
   worker's first local replica's batch.
2. `reduce_per_replica` then reduces the step's outputs with `strategy.reduce("MEAN", v, axis=0)`
   on multi-worker strategies; the loss and the metrics are scalars, which have no axis 0. We
   reduce scalars with `axis=None` (their mean across replicas) and everything else as Keras does.

With both, a 2-worker fit gives identical losses on both workers. `install()` patches both places
once per process. The replacements hand every call that is not multi-worker collective all-reduce
to Keras's own code, so MirroredStrategy and single-device training are untouched.

tests/core/test_keras_compat.py runs real 2-worker fits without these patches and fails as soon as
upstream Keras no longer needs them: delete this module then.
"""

from __future__ import annotations

import sys
import threading

from core.tf_runtime import load_keras, load_tensorflow

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Patches Keras's TensorFlow trainer (idempotent). Call before the model is built."""
    global _installed
    with _lock:
        if _installed:
            return
        install_symbolic_build_fix()
        install_scalar_reduce_fix()
        _installed = True


def install_symbolic_build_fix() -> None:
    trainer = _keras_tensorflow_trainer()
    original = trainer.TensorFlowTrainer._maybe_symbolic_build

    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = _first_local_values(strategy, next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch


def install_scalar_reduce_fix() -> None:
    trainer = _keras_tensorflow_trainer()
    original = trainer.reduce_per_replica

    def reduce_scalars_without_axis(values, strategy, reduction):
        averaged = reduction == "mean" or (
            reduction == "auto" and not _is_tpu(strategy)
        )
        if not (averaged and trainer._collective_all_reduce_multi_worker(strategy)):
            return original(values, strategy, reduction)
        return _map(lambda value: _mean_across_replicas(strategy, value), values)

    trainer.reduce_per_replica = reduce_scalars_without_axis


def _keras_tensorflow_trainer():
    """Keras's TensorFlow trainer module, which loading Keras (on its TensorFlow backend) imported."""
    load_keras()
    return sys.modules["keras.src.backend.tensorflow.trainer"]


def _first_local_values(strategy, batch):
    tf = load_tensorflow()

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return _map(local, batch)


def _mean_across_replicas(strategy, value):
    rank = strategy.experimental_local_results(value)[0].shape.rank
    return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)


def _is_tpu(strategy) -> bool:
    tf = load_tensorflow()

    return isinstance(strategy, tf.distribute.TPUStrategy)


def _map(function, structure):
    tf = load_tensorflow()

    # tf.nest (not keras.tree) treats PerReplica values as leaves, as Keras's own code here does.
    return tf.nest.map_structure(function, structure)
