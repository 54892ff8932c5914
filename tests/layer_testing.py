"""``run_layer_test``: the checks every custom Keras layer of pixelwise must pass, in one call.

In the style of keras-hub's ``TestCase.run_layer_test`` (keras_hub/src/tests/test_case.py): a
new layer gets its shape, config, serialization and ``.keras`` round trips from one line in
tests/test_layers.py instead of four hand-written tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _numpy(outputs):
    return [np.asarray(output) for output in _as_list(outputs)]


def _config_json(layer) -> str:
    return json.dumps(layer.get_config(), sort_keys=True, default=str)


def _assert_same_outputs(received, expected, what: str, atol: float):
    for got, want in zip(_numpy(received), _numpy(expected), strict=True):
        np.testing.assert_allclose(got, want, atol=atol, err_msg=f"{what}: different outputs")


def run_layer_test(layer_cls, init_kwargs: dict, input_data, expected_output_shape, *,
                   expected_num_trainable_weights: int | None = None,
                   expected_num_non_trainable_weights: int | None = None,
                   expected_output_data=None, call_kwargs: dict | None = None,
                   tmp_path: Path | None = None, atol: float = 1e-6) -> None:
    """Build, call and round-trip ``layer_cls(**init_kwargs)``; fail with what differed.

    Checks, in order:

    1. ``build`` on the input shapes, then a symbolic call (``keras.Input``) and an eager call
       on ``input_data``, give ``expected_output_shape`` (``None`` for the batch in the
       symbolic call); the eager output equals ``expected_output_data`` when given.
    2. The counts of trainable and non-trainable weights, when given.
    3. ``get_config()`` -> ``from_config()`` gives the same config, and, with the weights
       copied, the same output.
    4. ``keras.saving.serialize_keras_object`` -> JSON -> ``deserialize_keras_object`` gives
       an object of the same class with the same config (this needs the registration).
    5. With ``tmp_path``: the layer inside a small functional model saved to ``.keras`` and
       loaded (``safe_mode=True``) is a ``layer_cls`` again and predicts the same. (That a
       fresh process finds the classes after ``import pixelwise`` alone is checked once, for
       all of them, by tests/test_structure.py and tests/test_layout.py.)

    Args:
        layer_cls: The layer class.
        init_kwargs: dict. Constructor arguments.
        input_data: array, or list of arrays for a layer called on a list.
        expected_output_shape: tuple. Shape of the eager output.
        expected_num_trainable_weights: int or None, default None (not checked).
        expected_num_non_trainable_weights: int or None, default None (not checked).
        expected_output_data: array or None, default None (not checked).
        call_kwargs: dict or None, default None. Extra arguments of every call (``training``).
        tmp_path: Path or None, default None. Folder for the ``.keras`` check (skipped if None).
        atol: float, default 1e-6. Tolerance of the output comparisons.
    """
    import keras

    call_kwargs = call_kwargs or {}
    arrays = [np.asarray(x) for x in _as_list(input_data)]
    as_called = arrays if isinstance(input_data, (list, tuple)) else arrays[0]
    expected_output_shape = tuple(expected_output_shape)

    # 1. build, symbolic call, eager call
    layer = layer_cls(**init_kwargs)
    layer.build([x.shape for x in arrays] if isinstance(input_data, (list, tuple))
                else arrays[0].shape)
    assert layer.built, f"{layer_cls.__name__}.build() left the layer unbuilt"
    symbolic_inputs = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in arrays]
    symbolic = layer_cls(**init_kwargs)(
        symbolic_inputs if isinstance(input_data, (list, tuple)) else symbolic_inputs[0],
        **call_kwargs)
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:]), (
        f"{layer_cls.__name__}: expected a symbolic output of shape "
        f"{(None, *expected_output_shape[1:])}, received {tuple(symbolic.shape)}")
    layer = layer_cls(**init_kwargs)
    output = np.asarray(layer(as_called, **call_kwargs))
    assert output.shape == expected_output_shape, (
        f"{layer_cls.__name__}: expected an output of shape {expected_output_shape}, "
        f"received {output.shape}")
    if expected_output_data is not None:
        np.testing.assert_allclose(output, expected_output_data, atol=atol,
                                   err_msg=f"{layer_cls.__name__}: unexpected output values")

    # 2. weights
    for count, weights, kind in ((expected_num_trainable_weights, layer.trainable_weights,
                                  "trainable"),
                                 (expected_num_non_trainable_weights,
                                  layer.non_trainable_weights, "non-trainable")):
        if count is not None:
            assert len(weights) == count, (
                f"{layer_cls.__name__}: expected {count} {kind} weights, received "
                f"{len(weights)}: {[w.path for w in weights]}")

    # 3. get_config / from_config
    revived = layer_cls.from_config(layer.get_config())
    assert _config_json(revived) == _config_json(layer), (
        f"{layer_cls.__name__}: from_config(get_config()) changed the config: "
        f"{_config_json(layer)} became {_config_json(revived)}")
    revived(as_called, **call_kwargs)
    revived.set_weights(layer.get_weights())
    _assert_same_outputs(revived(as_called, **call_kwargs), output,
                         f"{layer_cls.__name__} from its config with the weights copied", atol)

    # 4. serialize_keras_object / deserialize_keras_object
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls, (
        f"expected deserialize_keras_object to give a {layer_cls.__name__}, received "
        f"{type(deserialized).__name__}; is the class registered with "
        "keras.saving.register_keras_serializable(package='pixelwise')?")
    assert _config_json(deserialized) == _config_json(layer), (
        f"{layer_cls.__name__}: the serialization round trip changed the config")

    # 5. .keras file, loaded where only pixelwise registered the class
    if tmp_path is not None:
        _check_saved_model(layer_cls, init_kwargs, arrays, isinstance(input_data, (list, tuple)),
                           call_kwargs, Path(tmp_path), atol)


def _check_saved_model(layer_cls, init_kwargs, arrays, as_list, call_kwargs, folder: Path,
                       atol: float):
    import keras

    import pixelwise  # noqa: F401 - the registration a user's process gets

    inputs = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in arrays]
    outputs = layer_cls(**init_kwargs)(inputs if as_list else inputs[0], **call_kwargs)
    model = keras.Model(inputs, outputs)
    path = folder / f"{layer_cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    [revived] = [layer for layer in loaded.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert type(revived) is layer_cls, (
        f"expected the loaded model to hold a {layer_cls.__name__}, received "
        f"{type(revived).__name__}")
    feed = arrays if as_list else arrays[0]
    _assert_same_outputs(loaded.predict(feed, verbose=0), model.predict(feed, verbose=0),
                         f"{layer_cls.__name__} saved to {path.name} and loaded", atol)
