"""The encoder-decoder models: build, train a step, save and reload with identical outputs.

Backend-agnostic (keras.ops only): ``tests/test_backends.py`` runs some of these under
JAX as well. The one train step runs the quicker way on each backend: eagerly under
TensorFlow (tracing a step costs 30-60 s per model on 2 CPU cores; what is checked, the
loss, the gradients and the saved model, is the same), compiled under JAX (its eager
mode compiles every operation separately: slower still).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pixelwise import models
from pixelwise.models.encoder_decoder import BilinearUpsampling
from pixelwise.models.summary import model_summary
from pixelwise.models.testing import run_model_saving_test
from pixelwise.inference.tiling import predict_tiled

#: Small decoders on the smallest encoder: every architecture, fast.
SMALL = {
    "encoder_unet": dict(decoder_filters=(16, 16, 8, 8, 8)),
    "fpn": dict(pyramid_filters=16, segmentation_filters=8),
    "deeplabv3plus": dict(aspp_filters=16, low_level_filters=8, decoder_filters=16),
    "lraspp": dict(head_filters=8),
}


def train_one_step(model, images, labels) -> float:
    """One eager Adam step on sparse cross-entropy; returns the loss, checks weights moved.

    Every decoder weight moves, and nearly every encoder weight: EfficientNetV2's
    stochastic depth drops whole residual branches per image while training, so a block
    can get no gradient in one step.
    """
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=keras.backend.backend() == "tensorflow")
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    loss = float(model.train_on_batch(images, labels))
    assert np.isfinite(loss)
    encoder = {w.path for w in model.encoder.trainable_weights}
    still = {w.path for w in model.trainable_weights if np.array_equal(before[w.path], w.numpy())}
    assert not still - encoder, sorted(still - encoder)[:5]
    assert len(still) <= 0.2 * len(encoder), sorted(still)[:5]
    return loss


def check_combination(name, encoder, tmp_path, size, num_classes, batch=1, **options):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch, size, size, 1)).astype("int32")
    model = models.build(name, input_size=(size, size, 3), num_classes=num_classes,
                         encoder=encoder, **options)
    assert model.output_shape == (None, size, size, num_classes)
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    train_one_step(model, images, labels)
    restored = run_model_saving_test(model, images, tmp_path)
    assert restored.get_config()["encoder_weights"] is None
    return model


# Each trains for ~6 s on 2 shared cores: the fast suite trains
# deeplabv3plus (the one test_backends.py also runs under JAX), CI all.
@pytest.mark.parametrize("name", [name if name == "deeplabv3plus" else pytest.param(name, marks=pytest.mark.slow)
                                  for name in SMALL])
def test_each_architecture_trains_saves_and_reloads(name, tmp_path):
    model = check_combination(name, "mobilenetv3small", tmp_path, 64, 3, batch=2, **SMALL[name])
    stride = 16 if name in ("deeplabv3plus", "lraspp") else 32
    assert models.geometry_of(model).rule == f"multiples of {stride}"
    assert model_summary(model)["gflops"] > model_summary(model.encoder)["gflops"] > 0


@pytest.mark.exhaustive
@pytest.mark.parametrize("name, encoder", models.combinations())
def test_every_combination_at_256_for_12_classes(name, encoder, tmp_path):
    """The issue's done-when, default options (~10-40 s each, 38 combinations)."""
    # Two images: with one, BatchNorm after ASPP's global pooling sees a single value and
    # passes no gradient back.
    check_combination(name, encoder, tmp_path, 256, 12, batch=2)


def test_models_take_free_sizes_and_tile_any_image():
    model = models.build("deeplabv3plus", input_size=(None, None, 3), num_classes=2,
                         encoder="mobilenetv3small", **SMALL["deeplabv3plus"])
    geometry = models.geometry_of(model)
    assert geometry.output_shape(48, 80) == (48, 80) and geometry.output_shape(40, 48) is None
    logits = model(np.zeros((1, 48, 80, 3), "float32"), training=False)
    assert tuple(logits.shape) == (1, 48, 80, 2)
    image = np.random.default_rng(1).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    result = predict_tiled(model, image, tile=32)
    assert result.labels.shape == (50, 70)


def test_deeplabv3plus_output_stride_8_doubles_the_rates_and_keeps_size():
    model = models.build("deeplabv3plus", input_size=(64, 64, 3), num_classes=2,
                         encoder="mobilenetv3small", output_stride=8, **SMALL["deeplabv3plus"])
    assert model.get_layer("aspp_rate12_conv").dilation_rate == (12, 12)
    assert model.get_layer("aspp_rate36_conv").dilation_rate == (36, 36)
    assert model.encoder.output_shape[-1] == (None, 8, 8, 576)
    assert models.geometry_of(model).rule == "multiples of 8"
    assert model.output_shape == (None, 64, 64, 2)


def test_unet_is_the_chapters_and_encoder_unet_the_one_on_an_encoder():
    chapter = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4)
    assert type(chapter) is models.UNet
    assert chapter.get_config() == models.get_unet((64, 64, 3), num_classes=2,
                                                   base_filters=4).get_config()
    with_encoder = models.build("encoder_unet", input_size=(64, 64, 3), num_classes=2,
                                encoder="mobilenetv3small", **SMALL["encoder_unet"])
    assert type(with_encoder) is models.EncoderUNet
    names = [layer.name for layer in with_encoder.layers]
    assert "decoder_stride2_concat" in names and "decoder_stride1_concat" not in names


def test_logits_stay_float32_under_mixed_bfloat16():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build("lraspp", input_size=(32, 32, 3), num_classes=2,
                             encoder="mobilenetv3small", **SMALL["lraspp"])
    finally:
        keras.config.set_dtype_policy(policy)
    backbone = model.encoder.get_layer("mobilenetv3small")
    assert backbone.get_layer("conv").compute_dtype == "bfloat16"
    assert model.get_layer("head_conv").compute_dtype == "bfloat16"
    logits = model(np.zeros((1, 32, 32, 3), "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_upsampling_is_keras_bilinear_resize(factor):
    x = np.random.default_rng(factor).normal(size=(2, 3, 5, 4)).astype("float32")
    expected = keras.ops.image.resize(x, (3 * factor, 5 * factor), interpolation="bilinear")
    actual = BilinearUpsampling(factor)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(actual),
                               keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export writes TF artefacts")
@pytest.mark.slow  # ~15 s: a SavedModel export
def test_an_encoder_model_exports_as_a_savedmodel_with_free_sizes(tmp_path):
    """No special case in export: the graph traces with unknown height and width (~10 s)."""
    import json

    from pixelwise.class_sets import CAMVID
    from pixelwise.export.serving import export_model

    model = models.build("deeplabv3plus", input_size=(None, None, 3),
                         num_classes=CAMVID.num_classes, encoder="mobilenetv3small",
                         **SMALL["deeplabv3plus"])
    out = export_model(model, tmp_path / "exported", "savedmodel", class_set=CAMVID,
                       model_size=(96, 128), parity_images=2)
    assert json.loads((out / "parity.json").read_text())["pixel_agreement"] == 1.0


def test_deeplabv3plus_separable_is_smps_decoder_and_reloads(tmp_path):
    """separable=True: depthwise-separable ASPP rates and decoder convs (smp's default)."""
    options = dict(input_size=(64, 64, 3), num_classes=3, encoder="mobilenetv3small",
                   aspp_filters=16, low_level_filters=8, decoder_filters=16)
    full = models.build("deeplabv3plus", **options)
    separable = models.build("deeplabv3plus", separable=True, **options)
    for name in ("aspp_rate6", "aspp_rate18", "decoder_1", "decoder_2"):
        layer = separable.get_layer(f"{name}_sepconv")
        assert isinstance(layer, keras.layers.SeparableConv2D) and not layer.use_bias
    assert separable.get_layer("aspp_rate12_sepconv").dilation_rate == (12, 12)
    # 3x3 depthwise + 1x1 pointwise: 9 * C_in + C_in * C_out weights instead of 9 * C_in * C_out.
    channels_in = separable.get_layer("decoder_concat").output.shape[-1]
    assert separable.get_layer("decoder_1_sepconv").count_params() == 9 * channels_in + channels_in * 16
    assert full.get_layer("decoder_1_conv").count_params() == 9 * channels_in * 16
    assert separable.count_params() < full.count_params()
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype("float32")
    path = tmp_path / "separable.keras"
    separable.save(path)
    again = keras.saving.load_model(path)
    assert again.get_config()["separable"] is True
    np.testing.assert_allclose(again.predict(x, verbose=0), separable.predict(x, verbose=0),
                               atol=1e-5)
    with pytest.raises(ValueError, match="separable True or False"):
        models.build("deeplabv3plus", separable="yes", **options)
