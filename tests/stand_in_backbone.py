"""A backbone of MobileNetV2's kinds of layers (convolution, BatchNormalization, ReLU), small enough
that a fine-tuning run takes seconds, with seeded weights: each build starts from the same ones.
Tests put it in place of `core.modeling.models.build_backbone` (also in fresh processes)."""

from __future__ import annotations


def stand_in_backbone(model, image_size, weights=None):
    import keras

    inputs = keras.Input((image_size, image_size, 3))
    x = inputs
    for index in range(3):
        initializer = keras.initializers.GlorotUniform(seed=index)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", kernel_initializer=initializer,
                                name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    return keras.Model(inputs, x, name="stand_in_backbone")
