"""Test helpers for models, after keras' ``run_model_saving_test``.

Example:
    >>> import numpy as np
    >>> from pixelwise.models import build
    >>> model = build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4)
    >>> restored = run_model_saving_test(model, np.zeros((1, 64, 64, 3), "float32"),
    ...                                  "/tmp/pixelwise_doctest")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np


def run_model_saving_test(model, inputs, directory, atol: float = 0.0):
    """Save ``model`` to ``directory/model.keras``, reload it and check it is the same model.

    Checks: the reloaded model has the same class, ``get_config()``, weight names
    and values, and gives the same outputs on ``inputs`` (inference mode) within
    ``atol`` (default 0: bit-identical).

    Args:
        model: keras.Model to check.
        inputs: array or batch the model accepts.
        directory: str or Path. Folder to write to (a pytest ``tmp_path``).
        atol: float, default 0.0. Allowed absolute output difference.

    Returns:
        The reloaded model.

    Raises:
        AssertionError: when anything differs (this is a test helper).
    """
    path = Path(directory) / f"{model.name}.keras"
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    model.save(path)
    restored = keras.models.load_model(path, compile=False)

    assert type(restored) is type(model), (type(restored), type(model))
    assert restored.get_config() == model.get_config(), (restored.get_config(), model.get_config())
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
    for original, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(original.numpy(),
                                      loaded.numpy(), err_msg=original.path)
    actual = keras.ops.convert_to_numpy(restored(inputs, training=False))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)
    return restored
