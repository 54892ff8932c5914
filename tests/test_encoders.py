"""Encoders: feature maps and strides, preprocessing, atrous output strides, initial weights.

No test here reaches the network: ``closed_weights_urls`` (autouse) points every Keras
application's weights URL at a closed port on 127.0.0.1 and Keras' cache at ``tmp_path``,
so even a missing check would fail fast instead of downloading (or resolving a name).
"""

from __future__ import annotations

import socket
import time

import keras
import numpy as np
import pytest
from keras.src.applications import convnext, efficientnet_v2, mobilenet_v3, resnet
from keras.src.backend import config as keras_config

from pixelwise import models
from pixelwise.models.encoder_graph import input_strides, stable_names
from pixelwise.models.encoder_weights import imagenet_cache_path
from pixelwise.models.encoders import (
    ENCODERS, PROBE_SIDE, CaffePreprocessing, Encoder, encoder_spec,
)

#: (stride, channels) of every encoder's feature maps, as the encoders module documents them.
FEATURES = {
    "resnet50": [(2, 64), (4, 256), (8, 512), (16, 1024), (32, 2048)],
    "mobilenetv3large": [(2, 16), (4, 24), (8, 40), (16, 112), (32, 960)],
    "mobilenetv3small": [(2, 16), (4, 16), (8, 24), (16, 48), (32, 576)],
    "efficientnetv2b0": [(2, 16), (4, 32), (8, 48), (16, 112), (32, 1280)],
    "efficientnetv2b1": [(2, 16), (4, 32), (8, 48), (16, 112), (32, 1280)],
    "efficientnetv2b2": [(2, 16), (4, 32), (8, 56), (16, 120), (32, 1408)],
    "efficientnetv2b3": [(2, 16), (4, 40), (8, 56), (16, 136), (32, 1536)],
    "convnext_tiny": [(4, 96), (8, 192), (16, 384), (32, 768)],
    "efficientnet_lite0": [(2, 16), (4, 24), (8, 40), (16, 112), (32, 1280)],
    "efficientnet_lite1": [(2, 16), (4, 24), (8, 40), (16, 112), (32, 1280)],
    "efficientnet_lite2": [(2, 16), (4, 24), (8, 48), (16, 120), (32, 1280)],
}
LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def closed_weights_urls(monkeypatch, tmp_path):
    """Keras' weights URLs -> a closed local port; Keras' home -> an empty tmp folder."""
    base = f"http://127.0.0.1:{closed_port()}/keras-applications/"
    for module, attribute in ((resnet, "BASE_WEIGHTS_PATH"), (mobilenet_v3, "BASE_WEIGHT_PATH"),
                              (efficientnet_v2, "BASE_WEIGHTS_PATH"),
                              (convnext, "BASE_WEIGHTS_PATH")):
        monkeypatch.setattr(module, attribute, base)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                  "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return base


def _images(size=64, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, size, size, 3)).astype("float32")


def test_the_registry_lists_encoders_and_valid_combinations():
    assert models.available_encoders() == list(FEATURES)
    assert models.encoders_of("lraspp") == ["mobilenetv3large", "mobilenetv3small", *LITE]
    assert models.encoders_of("original_unet") == []
    assert len(models.combinations()) == 3 * len(FEATURES) + 5
    with pytest.raises(ValueError, match="Unknown encoder 'vgg16'.*resnet50"):
        encoder_spec("vgg16")


@pytest.mark.parametrize("name", ["mobilenetv3small", "resnet50"])
def test_features_have_the_documented_strides_and_channels(name):
    encoder = Encoder(name, input_size=(64, 64, 3))
    shapes = [tuple(shape) for shape in encoder.output_shape]
    assert shapes == [(None, 64 // s, 64 // s, c) for s, c in FEATURES[name]]
    assert encoder.feature_strides == tuple(s for s, _ in FEATURES[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(FEATURES) - {"mobilenetv3small", "resnet50"}))
def test_every_encoder_has_the_documented_features_and_stable_names(name):
    """~4-8 s each: the taps, and no layer or weight named by a process-wide counter."""
    encoder = Encoder(name, input_size=(64, 64, 3))
    assert [tuple(shape) for shape in encoder.output_shape] == [
        (None, 64 // s, 64 // s, c) for s, c in FEATURES[name]]
    paths = [weight.path for weight in encoder.weights]
    assert paths == [weight.path for weight in Encoder(name, input_size=(64, 64, 3)).weights]
    assert not [p for p in paths if p.split("/")[-1].startswith("variable")]


def test_counter_named_layers_get_names_in_graph_order():
    app = keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                              input_shape=(PROBE_SIDE, PROBE_SIDE, 3))
    names = stable_names(app)
    # The stem's hard-swish is the first unnamed Activation: the stride-2 tap of the spec.
    stem = app.get_layer("expanded_conv_depthwise_pad").input._keras_history.operation
    assert names[stem.name] == "activation_0" == ENCODERS["mobilenetv3small"].taps[2]
    assert len(set(names.values())) == len(names)
    assert all(not name.startswith(("expanded_conv", "conv")) for name in names)
    strides = input_strides(app, PROBE_SIDE)
    # A map padded before a strided depthwise conv counts at the stride it pads.
    assert strides["expanded_conv_8_depthwise"] == 16 and strides["conv_1"] == 32


# ~3 s each on 2 shared cores (a whole application): the fast suite checks the smallest.
@pytest.mark.parametrize("name", ["mobilenetv3small", pytest.param("efficientnetv2b0", marks=pytest.mark.slow),
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_batchnorm_momentum_is_at_most_keras_default(name):
    # MobileNetV3 ships 0.999: trained from scratch, its moving statistics lag the data for
    # thousands of steps and the model predicts one class in inference mode (CamVid LR-ASPP:
    # validation mean IoU 1 % for 12 epochs). The copy caps it at 0.99; the others keep theirs.
    spec = encoder_spec(name)
    app = spec.application(include_top=False, weights=None,
                           input_shape=(PROBE_SIDE, PROBE_SIDE, 3))
    original = {layer.momentum for layer in app.layers
                if isinstance(layer, keras.layers.BatchNormalization)}
    encoder = Encoder(name, input_size=(64, 64, 3))
    copied = {layer.momentum for layer in encoder.get_layer(name).layers
              if isinstance(layer, keras.layers.BatchNormalization)}
    assert copied == {min(momentum, 0.99) for momentum in original}
    if name == "mobilenetv3small":
        assert original == {0.999} and copied == {0.99}


def test_caffe_preprocessing_is_keras_resnet_preprocess_input():
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(images.copy())
    actual = keras.ops.convert_to_numpy(CaffePreprocessing()(images))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


def test_grayscale_images_are_repeated_to_rgb():
    gray = _images(32, seed=2)[..., :1]
    encoder = Encoder("mobilenetv3small", input_size=(32, 32, 1))
    rgb = Encoder("mobilenetv3small", input_size=(32, 32, 3))
    rgb.set_weights(encoder.get_weights())
    for a, b in zip(encoder(gray), rgb(np.repeat(gray, 3, axis=-1))):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # ~4 s: saves and reloads a whole application
def test_weights_path_reproduces_the_saved_application_exactly(tmp_path):
    """encoder_weights=PATH: the encoder computes what the application saved there computes."""
    app = keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                              input_shape=(64, 64, 3))
    rng = np.random.default_rng(3)
    app.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") if "moving_variance"
                     not in w.path else rng.uniform(0.5, 2, w.shape).astype("float32")
                     for w in app.weights])
    path = tmp_path / "mobilenetv3small.weights.h5"
    app.save_weights(path)

    encoder = Encoder("mobilenetv3small", input_size=(64, 64, 3), weights=str(path))
    images = _images(64, seed=4)
    expected = keras.ops.convert_to_numpy(app(images * 255.0, training=False))
    actual = keras.ops.convert_to_numpy(encoder(images, training=False)[-1])
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    # And a model built on it starts from those weights.
    model = models.build("fpn", input_size=(64, 64, 3), num_classes=2,
                         encoder="mobilenetv3small", encoder_weights=str(path))
    for weight, saved in zip(model.encoder.weights, app.weights):
        np.testing.assert_array_equal(weight.numpy(), saved.numpy())


def test_a_missing_weights_path_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="encoder_weights None, 'imagenet' or the path"):
        Encoder("mobilenetv3small", input_size=(32, 32, 3), weights=str(tmp_path / "no.h5"))


def test_imagenet_offline_fails_fast_naming_the_file_cache_and_alternatives(closed_weights_urls):
    spec = encoder_spec("resnet50")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        models.build("deeplabv3plus", input_size=(64, 64, 3), num_classes=2,
                     encoder="resnet50", encoder_weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert spec.weights_file in message and closed_weights_urls in message
    assert str(imagenet_cache_path(spec.weights_file).parent) in message
    assert "encoder_weights=PATH" in message and "encoder_weights=None" in message
    assert "\n" not in message


def test_a_cached_file_that_fails_the_checksum_is_the_same_clear_error():
    spec = encoder_spec("mobilenetv3small")
    cached = imagenet_cache_path(spec.weights_file)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the weights")
    with pytest.raises(FileNotFoundError, match="checksum") as error:
        Encoder("mobilenetv3small", input_size=(32, 32, 3), weights="imagenet")
    assert spec.weights_file in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(FEATURES) - set(LITE)))
def test_imagenet_file_names_are_the_ones_keras_downloads(name):
    """Keras itself asks the (closed) local URL for exactly the spec's file. ~2-6 s each."""
    spec = encoder_spec(name)
    with pytest.raises(Exception, match="URL fetch failure") as error:
        spec.application(include_top=False, weights="imagenet")
    assert spec.imagenet_origin in str(error.value)


@pytest.mark.slow
def test_atrous_output_strides_compute_the_same_features_more_densely(tmp_path):
    """ResNet50 at output stride 16 / 8 is the stride-32 network sampled densely (~25 s).

    With 'same'-padded dilated convs and stride-2 1x1 shortcuts, the dilated map at every
    2nd (4th) pixel is exactly the original one: a check of the atrous rule.
    """
    app = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = tmp_path / "resnet50.weights.h5"
    app.save_weights(path)
    images = _images(64, batch=1, seed=5)
    maps = {stride: [keras.ops.convert_to_numpy(f) for f in
                     Encoder("resnet50", input_size=(64, 64, 3), weights=str(path),
                             output_stride=stride)(images, training=False)]
            for stride in (32, 16, 8)}
    np.testing.assert_allclose(maps[16][-1][:, ::2, ::2], maps[32][-1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps[8][-1][:, ::4, ::4], maps[32][-1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps[8][-2][:, ::2, ::2], maps[32][-2], rtol=1e-4, atol=1e-4)
    for stride in (16, 8):  # the shallower maps are untouched
        for shallow, original in zip(maps[stride][:3], maps[32][:3]):
            np.testing.assert_array_equal(shallow, original)


@pytest.mark.parametrize("options, message", [
    (dict(name="unet", encoder="resnet50"), "takes no encoder.*'encoder_unet'"),
    (dict(name="encoder_unet", encoder="resnet50", base_filters=16),
     r"does not take option\(s\) \['base_filters'\]"),
    (dict(name="lraspp", encoder="resnet50"), "mobile segmentation head"),
    (dict(name="fpn", encoder="vgg16"), "Unknown encoder 'vgg16'"),
    (dict(name="deeplabv3plus", encoder="mobilenetv3small", output_stride=32),
     "output_stride 16 or 8"),
    (dict(name="fpn", encoder="mobilenetv3small", input_size=(48, 64, 3)), "multiples of 32"),
    (dict(name="fpn", encoder="mobilenetv3small", input_size=(64, 64, 4)), "3 \\(RGB\\) or 1"),
])
def test_bad_options_are_value_errors_that_say_what_to_pass(options, message):
    options = {"input_size": (64, 64, 3), "num_classes": 2, **options}
    with pytest.raises(ValueError, match=message):
        models.build(options.pop("name"), **options)


def test_models_list_shows_encoders_and_valid_combinations(capsys):
    from pixelwise.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "encoder='resnet50'" in out and "output_stride=16" in out
    assert "convnext_tiny      keras.applications backbone, feature maps at strides 4, 8, 16" \
        in out
    assert "lraspp          mobilenetv3large, mobilenetv3small, efficientnet_lite0, " \
        "efficientnet_lite1, efficientnet_lite2\n" in out


def test_cli_summary_of_an_encoder_model_and_its_offline_imagenet_error(capsys):
    from pixelwise.cli import main

    args = ["models", "summary", "lraspp", "--input-size", "64", "--num-classes", "2",
            "--model-arg", "encoder=mobilenetv3small"]
    assert main(args) == 0
    assert "(None, 64, 64, 2)" in capsys.readouterr().out
    assert main([*args, "--model-arg", "encoder_weights=imagenet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weights_mobilenet_v3_small" in err


def test_flop_counter_counts_depthwise_and_separable_convolutions():
    from pixelwise.models.summary import count_flops

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(inputs)  # 8x8x8
    x = keras.layers.SeparableConv2D(6, 3, strides=2, padding="same")(x)  # 4x4x6
    model = keras.Model(inputs, x)
    depthwise = 8 * 8 * 4 * 2 * 3 * 3
    separable = 4 * 4 * 8 * (3 * 3 + 6)
    assert count_flops(model) == 2 * (depthwise + separable)
