"""AtrousConv2D: Conv2D's dilated "same" convolution as a matmul over in-bounds taps.

Against ``keras.layers.Conv2D`` with the same weights: outputs and gradients (input and
kernel) agree on maps larger than, equal to and smaller than the rate, with the size known
at build time (taps wholly outside the map are dropped) and unknown (every tap is kept).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from pixelwise import models
from pixelwise.models.atrous import AtrousConv2D


def _pair(filters, rate, use_bias=False):
    atrous = AtrousConv2D(filters, 3, dilation_rate=rate, padding="same", use_bias=use_bias)
    plain = keras.layers.Conv2D(filters, 3, dilation_rate=rate, padding="same",
                                use_bias=use_bias)
    return atrous, plain


def _outputs_and_gradients(layer, x):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cos(y))
    dx, *dweights = tape.gradient(loss, [x, *layer.trainable_weights])
    return [np.asarray(y), np.asarray(dx), *[np.asarray(g) for g in dweights]]


@pytest.mark.parametrize("height, width, rate", [(12, 16, 6), (12, 16, 12), (12, 16, 18),
                                                 (5, 7, 2), (24, 30, 18), (3, 4, 1)])
@pytest.mark.parametrize("use_bias", [False, True])
def test_matches_conv2d_forward_and_backward(height, width, rate, use_bias):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradients taken with tf.GradientTape; tests/test_backends.py covers JAX")
    x = np.random.default_rng(rate).standard_normal((2, height, width, 6)).astype("float32")
    atrous, plain = _pair(4, rate, use_bias)
    atrous(x), plain(x)
    plain.set_weights(atrous.get_weights())
    for mine, reference in zip(_outputs_and_gradients(atrous, x), _outputs_and_gradients(plain, x)):
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-4)


def test_unknown_size_keeps_every_tap_and_still_matches():
    inputs = keras.Input((None, None, 3))
    atrous_model = keras.Model(inputs, AtrousConv2D(2, 3, dilation_rate=6, padding="same")(inputs))
    plain_model = keras.Model(inputs, keras.layers.Conv2D(2, 3, dilation_rate=6,
                                                          padding="same")(inputs))
    plain_model.set_weights(atrous_model.get_weights())
    for shape in ((1, 4, 5, 3), (1, 13, 20, 3)):
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        np.testing.assert_allclose(atrous_model.predict_on_batch(x),
                                   plain_model.predict_on_batch(x), rtol=1e-4, atol=1e-5)


def test_other_configurations_are_conv2d_own():
    x = np.random.default_rng(2).random((1, 8, 8, 3), dtype=np.float32)
    for kwargs in ({"strides": 2, "padding": "same"}, {"dilation_rate": 2, "padding": "valid"}):
        atrous, plain = AtrousConv2D(2, 3, **kwargs), keras.layers.Conv2D(2, 3, **kwargs)
        atrous(x), plain(x)
        plain.set_weights(atrous.get_weights())
        np.testing.assert_allclose(atrous(x), plain(x), rtol=1e-5, atol=1e-6)


def test_deeplabv3plus_aspp_uses_it_and_round_trips(tmp_path):
    model = models.build("deeplabv3plus", input_size=(64, 64, 3), num_classes=3,
                         encoder="mobilenetv3small", aspp_filters=8, low_level_filters=4,
                         decoder_filters=8)
    rates = {layer.name: layer.dilation_rate for layer in model.layers
             if isinstance(layer, AtrousConv2D)}
    assert rates == {f"aspp_rate{r}_conv": (r, r) for r in (6, 12, 18)}
    path = tmp_path / "dl.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x),
                               rtol=1e-5, atol=1e-5)
    assert isinstance(loaded.get_layer("aspp_rate18_conv"), AtrousConv2D)
    assert float(ops.max(ops.abs(loaded.get_layer("aspp_rate18_conv").kernel))) > 0
