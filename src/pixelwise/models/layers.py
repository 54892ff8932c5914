"""Layers shared by the pixelwise models.

``ScheduledDropout`` is dropout whose rate lives in a non-trainable variable, so a
training callback can change it between epochs while the compiled (traced) train
step keeps running: the step reads the variable, it does not bake the rate in as a
constant the way ``keras.layers.Dropout`` does.

Example:
    >>> import keras
    >>> from pixelwise.models import get_unet, set_dropout_rate, get_dropout_rate
    >>> model = get_unet((64, 64, 3), num_classes=3, base_filters=8, dropout_rate=0.5)
    >>> set_dropout_rate(model, 0.6)  # the number of layers changed
    6
    >>> round(get_dropout_rate(model), 6)
    0.6
"""

from __future__ import annotations

import keras
from keras import ops


def _check_rate(rate) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"Expected a dropout rate in [0, 1), received {rate!r}.") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"Expected a dropout rate in [0, 1), received {value}; a rate of 1 would drop every "
            "activation. Pass a value such as 0.5."
        )
    return value


@keras.saving.register_keras_serializable(package="pixelwise")
class ScheduledDropout(keras.layers.Layer):
    """Inverted dropout with a rate that can change without recompiling.

    In training mode each activation is zeroed with probability ``rate`` and the
    survivors are scaled by ``1 / (1 - rate)``; in inference mode the layer is the
    identity. The rate is a non-trainable ``float32`` variable (saved with the
    weights), so ``layer.rate = 0.7`` takes effect at the next train step of an
    already compiled model.

    Args:
        rate: float in [0, 1), default 0.0. Initial drop probability.
        seed: int or None, default None. Seed of the layer's random generator.
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> import numpy as np
        >>> layer = ScheduledDropout(0.5, seed=1)
        >>> y = layer(np.ones((1, 1000), "float32"), training=True)
        >>> layer.rate = 0.0
        >>> float(np.asarray(layer(np.ones((1, 4), "float32"), training=True)).min())
        1.0
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.rate_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(_check_rate(rate)),
            dtype="float32",
            trainable=False,
            # Cast by hand in call(): autocasting to bfloat16 would round the rate.
            autocast=False,
            name="rate",
        )
        self.supports_masking = True

    @property
    def rate(self) -> float:
        """The drop probability currently in effect."""
        return float(self.rate_variable.numpy())

    @rate.setter
    def rate(self, value: float):
        self.rate_variable.assign(_check_rate(value))

    def call(self, inputs, training=None):
        if not training:
            return inputs
        rate = self.rate_variable.value
        noise = keras.random.uniform(ops.shape(inputs), dtype="float32", seed=self.seed_generator)
        keep = ops.greater_equal(noise, rate)
        scale = ops.cast(1.0 / (1.0 - rate), inputs.dtype)
        return ops.where(keep, inputs * scale, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


def _walk_layers(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _walk_layers(child)


def dropout_layers(model) -> list[ScheduledDropout]:
    """All ``ScheduledDropout`` layers of ``model``, nested blocks included, in order."""
    return [layer for layer in _walk_layers(model) if isinstance(layer, ScheduledDropout)]


def set_dropout_rate(model, rate: float) -> int:
    """Set the rate of every ``ScheduledDropout`` layer of ``model``.

    Safe to call between epochs of ``model.fit`` (e.g. from a callback): the
    compiled train step reads the new value at its next step.

    Args:
        model: keras.Model built with ``dropout_rate`` not None.
        rate: float in [0, 1). New drop probability.

    Returns:
        The number of layers changed.

    Raises:
        ValueError: if the rate is outside [0, 1) or the model has no schedulable
            dropout (it was built with ``dropout_rate=None``).

    Example:
        >>> from pixelwise.models import build
        >>> model = build("unet", input_size=(64, 64, 3), num_classes=2,
        ...               base_filters=8, dropout_rate=0.5)
        >>> set_dropout_rate(model, 0.6)
        6
    """
    layers = dropout_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no ScheduledDropout layers, so its dropout rate cannot be "
            "scheduled; build it with dropout_rate=0.0 (or any rate) to add encoder dropout."
        )
    value = _check_rate(rate)
    for layer in layers:
        layer.rate = value
    return len(layers)


def get_dropout_rate(model) -> float | None:
    """The encoder dropout rate of ``model``, or None when it has no ``ScheduledDropout``.

    Raises:
        ValueError: if its dropout layers disagree (someone set them one by one).
    """
    rates = {round(layer.rate, 7) for layer in dropout_layers(model)}
    if not rates:
        return None
    if len(rates) > 1:
        raise ValueError(
            f"Model {model.name!r} has dropout layers with different rates {sorted(rates)}; "
            "use set_dropout_rate(model, rate) to give them one rate."
        )
    return rates.pop()
