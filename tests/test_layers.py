"""Every custom Keras layer of pixelwise through :func:`layer_testing.run_layer_test`.

One test per layer registered with ``keras.saving.register_keras_serializable`` under
``pixelwise.models`` (the ``keras.Model`` subclasses have their own round-trip tests in
test_models_*.py and test_encoder_models.py). Expected values come from NumPy or from
``keras.ops.image.resize``, not from the layer. ``test_every_registered_layer_is_tested``
fails when a new layer is registered without a test here.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from layer_testing import run_layer_test
from pixelwise.models.atrous import AtrousConv2D
from pixelwise.models.encoder_decoder import BilinearUpsampling, BroadcastLike
from pixelwise.models.encoder_graph import LayerScale
from pixelwise.models.encoders import CaffePreprocessing
from pixelwise.models.layers import ScheduledDropout

TESTED = {ScheduledDropout, CaffePreprocessing, LayerScale, BilinearUpsampling, BroadcastLike,
          AtrousConv2D}


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_scheduled_dropout(tmp_path):
    x = _x(2, 4, 5, 3)
    run_layer_test(ScheduledDropout, {"rate": 0.4, "seed": 1}, x, (2, 4, 5, 3),
                   expected_output_data=x,  # inference: the identity
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=1,  # the rate, saved with the weights
                   tmp_path=tmp_path)


def test_scheduled_dropout_keeps_a_changed_rate_through_its_config():
    layer = ScheduledDropout(0.2)
    layer.rate = 0.6
    assert ScheduledDropout.from_config(layer.get_config()).rate == pytest.approx(0.6)


def test_caffe_preprocessing(tmp_path):
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 5, 3)).astype("float32")
    expected = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    run_layer_test(CaffePreprocessing, {}, x, (2, 3, 5, 3), expected_output_data=expected,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   tmp_path=tmp_path, atol=1e-4)


def test_layer_scale(tmp_path):
    x = _x(2, 3, 3, 4)
    run_layer_test(LayerScale, {"init_values": 0.25, "projection_dim": 4}, x, (2, 3, 3, 4),
                   expected_output_data=x * 0.25, expected_num_trainable_weights=1,
                   expected_num_non_trainable_weights=0, tmp_path=tmp_path)
    layer = LayerScale(init_values=0.25, projection_dim=4)
    layer.build((None, 3, 3, 4))
    assert layer.gamma.path.endswith("/gamma"), layer.gamma.path  # the name pretrained files use


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_bilinear_upsampling(tmp_path, factor):
    x = _x(2, 3, 5, 4)
    expected = keras.ops.convert_to_numpy(
        keras.ops.image.resize(x, (3 * factor, 5 * factor), interpolation="bilinear"))
    run_layer_test(BilinearUpsampling, {"factor": factor}, x, (2, 3 * factor, 5 * factor, 4),
                   expected_output_data=expected, expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, tmp_path=tmp_path, atol=1e-5)


def test_broadcast_like(tmp_path):
    pooled, reference = _x(2, 1, 1, 4), _x(2, 3, 5, 2, seed=1)
    run_layer_test(BroadcastLike, {}, [pooled, reference], (2, 3, 5, 4),
                   expected_output_data=np.broadcast_to(pooled, (2, 3, 5, 4)),
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   tmp_path=tmp_path)


def test_atrous_conv2d(tmp_path):
    # All-ones 3x3 kernel dilated 3: each output is the sum, over channels, of the input at
    # the nine offsets (0, +-3) x (0, +-3) that fall inside the 4x7 map (NumPy, not the layer).
    x = _x(2, 4, 7, 2)
    padded = np.pad(x.sum(-1), ((0, 0), (3, 3), (3, 3)))
    summed = sum(padded[:, 3 + dy:7 + dy, 3 + dx:10 + dx] for dy in (-3, 0, 3) for dx in (-3, 0, 3))
    expected = np.repeat(summed[..., None], 5, axis=-1)
    run_layer_test(AtrousConv2D, {"filters": 5, "kernel_size": 3, "dilation_rate": 3,
                                  "padding": "same", "use_bias": False,
                                  "kernel_initializer": "ones"},
                   x, (2, 4, 7, 5), expected_output_data=expected,
                   expected_num_trainable_weights=1, expected_num_non_trainable_weights=0,
                   tmp_path=tmp_path, atol=1e-4)


def test_every_registered_layer_is_tested():
    """Scans the sources of pixelwise.models for the decorator, so a new file counts too."""
    import pixelwise.models

    folder = Path(pixelwise.models.__path__[0])
    modules = [importlib.import_module(f"pixelwise.models.{path.stem}")
               for path in sorted(folder.glob("*.py"))
               if "register_keras_serializable" in path.read_text()]
    registered = {obj for module in modules for _, obj in inspect.getmembers(module, inspect.isclass)
                  if obj.__module__ == module.__name__
                  and keras.saving.get_registered_name(obj).startswith("pixelwise>")
                  and not issubclass(obj, keras.Model)}
    assert registered >= TESTED, "a tested layer is no longer registered under 'pixelwise>'"
    untested = sorted(cls.__name__ for cls in registered - TESTED)
    assert not untested, (f"expected a run_layer_test in tests/test_layers.py for every custom "
                          f"layer, received none for {untested}; add one")


def test_a_fresh_process_finds_every_layer_after_import_pixelwise(tmp_path):
    """Registration under the layers' module paths: a model holding all of them, saved here,
    loads in a process that imported nothing but ``pixelwise`` and ``keras``."""
    image = keras.Input((3, 5, 3))
    x = CaffePreprocessing()(image)
    x = ScheduledDropout(0.3, seed=0)(x)
    x = LayerScale(init_values=0.5, projection_dim=3)(x)
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Concatenate()([x, BroadcastLike()([pooled, x])])
    x = AtrousConv2D(3, 3, dilation_rate=2, padding="same")(x)
    model = keras.Model(image, BilinearUpsampling(2)(x))
    inputs = np.random.default_rng(3).uniform(0, 255, (1, 3, 5, 3)).astype("float32")
    model.save(tmp_path / "layers.keras")
    np.save(tmp_path / "input.npy", inputs)
    np.save(tmp_path / "expected.npy", model.predict(inputs, verbose=0))
    code = (
        "import numpy as np, keras, pixelwise\n"
        f"folder = {str(tmp_path)!r}\n"
        "model = keras.saving.load_model(folder + '/layers.keras', safe_mode=True)\n"
        "received = model.predict(np.load(folder + '/input.npy'), verbose=0)\n"
        "np.testing.assert_allclose(received, np.load(folder + '/expected.npy'), atol=1e-4)\n"
        "print(sorted(type(layer).__name__ for layer in model.layers))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"the fresh process failed to load layers.keras:\n{done.stderr[-3000:]}"
    for cls in TESTED:
        assert cls.__name__ in done.stdout, (cls.__name__, done.stdout)
