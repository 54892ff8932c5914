"""Model options: schedulable dropout, float32 logits, config and .keras round trips, registry."""

from __future__ import annotations

import inspect
import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelwise import models
from pixelwise.models import ScheduledDropout, get_dropout_rate, set_dropout_rate
from pixelwise.models.testing import run_model_saving_test


def _zero_fraction(values) -> float:
    return float(np.mean(np.asarray(values) == 0))


def test_scheduled_dropout_rate_in_effect_changes_and_survivors_are_rescaled():
    layer = ScheduledDropout(0.2, seed=3)
    ones = np.ones((1, 400, 500), "float32")
    first = np.asarray(layer(ones, training=True))
    assert _zero_fraction(first) == pytest.approx(0.2, abs=0.01)
    np.testing.assert_allclose(first[first != 0], 1 / 0.8, rtol=1e-6)
    layer.rate = 0.7
    second = np.asarray(layer(ones, training=True))
    assert _zero_fraction(second) == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(second[second != 0], 1 / 0.3, rtol=1e-6)
    assert np.array_equal(np.asarray(layer(ones, training=False)), ones)
    for bad in (1.0, -0.1, "high"):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            layer.rate = bad


def test_set_dropout_rate_reaches_an_already_traced_step_without_retracing():
    model = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4,
                         dropout_rate=0.1)
    first_block = model.get_layer("downsample_0")
    probe = keras.Model(model.input, first_block.output)

    @tf.function
    def forward(images):
        return probe(images, training=True)

    # Positive inputs and a zero-initialised conv bias: zeros come from dropout only.
    images = np.abs(np.random.default_rng(0).normal(size=(8, 64, 64, 3))).astype("float32") + 0.1
    for layer in first_block.layers[:1]:
        layer.kernel.assign(np.abs(layer.kernel.numpy()) + 1e-3)
    low = _zero_fraction(forward(images))
    assert set_dropout_rate(model, 0.6) == 6  # one per encoder block
    high = _zero_fraction(forward(images))
    assert forward.experimental_get_tracing_count() == 1
    assert low == pytest.approx(0.1, abs=0.02) and high == pytest.approx(0.6, abs=0.02)
    assert get_dropout_rate(model) == pytest.approx(0.6)


def test_set_dropout_rate_changes_a_compiled_fit_between_epochs():
    model = models.build("original_unet", input_size=(32, 32, 1), num_classes=2, padding="same",
                         base_filters=2, dropout_rate=0.0)
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []

    class Schedule(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            set_dropout_rate(self.model, 0.3 + 0.1 * epoch)

        def on_epoch_end(self, epoch, logs=None):
            seen.append(get_dropout_rate(self.model))

    x = np.random.default_rng(1).random((4, 32, 32, 1), dtype="float32")
    y = np.zeros((4, 32, 32), "int32")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[Schedule()])
    assert seen == [pytest.approx(0.3), pytest.approx(0.4)]
    assert len(models.dropout_layers(model)) == 5  # four encoder levels and the bottom


def test_models_without_dropout_say_how_to_get_it():
    model = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4)
    assert get_dropout_rate(model) is None
    with pytest.raises(ValueError, match="dropout_rate"):
        set_dropout_rate(model, 0.5)


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("name, options", [
    ("unet", {"input_size": (64, 64, 3), "base_filters": 4, "batch_norm": True,
              "dropout_rate": 0.2}),
    ("original_unet", {"input_size": (32, 32, 1), "padding": "same", "base_filters": 2,
                       "dropout_rate": 0.2}),
])
def test_logits_are_float32_under_mixed_bfloat16(mixed_bfloat16, name, options):
    model = models.build(name, num_classes=3, **options)
    assert model.layers[1].compute_dtype == "bfloat16"
    x = np.zeros((1, *options["input_size"]), "float32")
    assert model(x).dtype == "float32"
    assert model(x, training=True).dtype == "float32"


@pytest.mark.parametrize("name, options, input_size", [
    ("unet", {"base_filters": 4, "batch_norm": True, "dropout_rate": 0.25}, (64, 64, 3)),
    ("unet", {"base_filters": 4}, (None, None, 3)),
    ("original_unet", {"base_filters": 2, "batch_norm": True, "dropout_rate": 0.1,
                       "padding": "same"}, (32, 32, 1)),
    ("original_unet", {"base_filters": 1}, (188, 188, 1)),
])
def test_keras_file_round_trip_gives_identical_outputs(tmp_path, name, options, input_size):
    model = models.build(name, input_size=input_size, num_classes=3, **options)
    side = [64 if d is None else d for d in input_size[:2]]
    x = np.random.default_rng(2).normal(size=(2, *side, input_size[2])).astype("float32")
    restored = run_model_saving_test(model, x, tmp_path)
    assert type(restored) is type(model)


def test_changed_dropout_rate_survives_save_and_load(tmp_path):
    model = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4,
                         dropout_rate=0.5)
    set_dropout_rate(model, 0.35)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert get_dropout_rate(restored) == pytest.approx(0.35)


def test_get_config_stores_the_arguments():
    model = models.build("original_unet", input_size=(None, None, 2), num_classes=4,
                         padding="same", base_filters=2, batch_norm=True, dropout_rate=0.3)
    config = model.get_config()
    assert config == {"input_size": [None, None, 2], "num_classes": 4, "padding": "same",
                      "base_filters": 2, "batch_norm": True, "dropout_rate": 0.3,
                      "name": "original_unet"}
    clone = type(model).from_config(config)
    assert clone.get_config() == config and clone.count_params() == model.count_params()


def test_registry_names_and_errors():
    assert models.available() == ["deeplabv3plus", "encoder_unet", "fpn", "lraspp",
                                  "original_unet", "unet"]
    assert models.build("unet", input_size=(64, 64, 1), num_classes=5,
                        base_filters=4).output_shape == (None, 64, 64, 5)
    assert models.build("original_unet", input_size=(32, 48, 1), num_classes=3, padding="same",
                        base_filters=2).output_shape == (None, 32, 48, 3)
    expected = (r"expected one of \[.deeplabv3plus., .encoder_unet., .fpn., .lraspp., "
                r".original_unet., .unet.\]")
    with pytest.raises(ValueError, match=expected):
        models.build("segnet", num_classes=2)
    with pytest.raises(ValueError, match="padding"):
        models.build("unet", input_size=(64, 64, 3), num_classes=2, padding="same")
    with pytest.raises(ValueError, match=r"\['input_shape'\].*pass input_size=\(height, width"):
        models.build("original_unet", num_classes=2, input_shape=(572, 572, 1))
    assert models.builder("original_unet") is models.original_unet
    for name in models.available():
        parameters = inspect.signature(models.builder(name)).parameters
        assert list(parameters)[:2] == ["input_size", "num_classes"]
        # No silent class count: a model built without one would train the wrong head.
        assert parameters["num_classes"].default is inspect.Parameter.empty, name
    with pytest.raises(TypeError, match="num_classes"):
        models.build("unet", input_size=(64, 64, 3), base_filters=4)


@pytest.mark.parametrize("options", [dict(encoder="mobilenetv3small"),
                                     dict(encoder_weights="imagenet"),
                                     dict(decoder_filters=(16, 16, 8, 8, 8))])
def test_unet_takes_no_encoder_and_names_encoder_unet(options):
    with pytest.raises(ValueError, match="chapter's U-Net and takes no encoder.*'encoder_unet'"):
        models.build("unet", input_size=(64, 64, 3), num_classes=2, **options)


def test_old_config_with_input_shape_still_builds_the_same_model():
    """pixelwise 0.1 stored the original U-Net's input size as "input_shape"."""
    old = {"input_shape": [None, None, 2], "num_classes": 4, "padding": "same",
           "base_filters": 2, "batch_norm": True, "dropout_rate": 0.3, "name": "original_unet"}
    model = models.OriginalUNet.from_config(old)
    assert model.input_shape == (None, None, None, 2) and model.input_size == (None, None, 2)
    assert model.get_config()["input_size"] == [None, None, 2]
    assert "input_shape" not in model.get_config()


def _rewrite_keras_config(path, edit):
    """Rewrite config.json inside a .keras zip file (to make a file as an older version wrote it)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config["config"])
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_keras_file_written_with_the_old_input_shape_key_loads_with_its_weights(tmp_path):
    model = models.build("original_unet", input_size=(188, 188, 1), num_classes=3, base_filters=1)
    path = tmp_path / "old.keras"
    model.save(path)
    _rewrite_keras_config(path, lambda config: config.update(input_shape=config.pop("input_size")))
    with zipfile.ZipFile(path) as archive:
        written = json.loads(archive.read("config.json"))["config"]
    assert "input_shape" in written and "input_size" not in written

    restored = keras.models.load_model(path, compile=False)
    assert type(restored) is models.OriginalUNet
    assert restored.get_config() == model.get_config()
    x = np.random.default_rng(4).normal(size=(1, 188, 188, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(model(x)))


def test_models_use_keras_only_no_tensorflow():
    import pixelwise.models.geometry
    import pixelwise.models.layers
    import pixelwise.models.original_unet
    import pixelwise.models.unet

    for module in (pixelwise.models.geometry, pixelwise.models.layers, pixelwise.models.unet,
                   pixelwise.models.original_unet):
        source = inspect.getsource(module)
        assert "import tensorflow" not in source and "tf." not in source, module.__name__
