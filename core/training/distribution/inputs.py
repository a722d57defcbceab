"""The input of a multi-worker fit: each worker streams its own shard of the file list.

Handed a PyDataset, Keras wraps it in a generator dataset and distributes that with
`experimental_distribute_dataset`, whose AUTO shard policy falls back to DATA for a generator: every
worker would decode every batch and keep only its part. It would also re-split each batch across all
replicas of the cluster. So a worker's ImageStream (already holding only its shard, dealt into the
same number of batches on every worker) goes in through `distribute_datasets_from_function`, which
neither shards nor re-batches, with auto-sharding turned off as well.

Keras applies `fit(class_weight=...)` by mapping the dataset, which a distributed dataset cannot do;
so class weights come in the dataset itself, as each sample's weight: Keras turns a class weight into
exactly that sample weight (class_weight[label]) in its own data adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.tf_runtime import load_tensorflow


def distributed_dataset(stream: Any, strategy: Any, image_size: int,
                        class_weights: Sequence[float] | None = None) -> Any:
    """`stream`'s batches, epoch after epoch from its current epoch on, as this worker's input;
    with `class_weights` (one per class index), each batch carries its samples' weights too.

    The dataset never ends: Keras keeps one iterator across epochs when `steps_per_epoch` is given,
    and this generator moves the stream to the next epoch after its last batch.
    """
    tf = load_tensorflow()

    import numpy as np

    signature: tuple = (
        tf.TensorSpec((None, image_size, image_size, 3), tf.uint8),
        tf.TensorSpec((None,), tf.int32),
    )
    weight_of = None if class_weights is None else np.asarray(class_weights, dtype="float32")
    if weight_of is not None:
        signature += (tf.TensorSpec((None,), tf.float32),)

    def batches():
        epoch = stream.epoch
        while True:
            stream.set_epoch(epoch)
            for index in range(len(stream)):
                images, labels = stream[index]
                labels = labels.astype("int32", copy=False)
                yield (images, labels) if weight_of is None else (images, labels, weight_of[labels])
            epoch += 1

    def this_workers_dataset(context):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return tf.data.Dataset.from_generator(batches, output_signature=signature).with_options(options)

    return strategy.distribute_datasets_from_function(this_workers_dataset)
