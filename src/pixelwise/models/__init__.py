"""Segmentation models and a string registry for the CLI and configs.

Models, by registry name:

- ``unet``: the chapter's U-Net (``get_unet``), 26,917,781 parameters by default.
- ``original_unet``: Ronneberger et al. 2015 (``original_unet``), 572 -> 388,
  31,030,658 parameters for 1 channel and 2 classes.

Every model outputs float32 logits (no activation) and accepts ``base_filters``,
``batch_norm`` and ``dropout_rate``; ``set_dropout_rate(model, rate)`` changes
the encoder dropout of a built (even compiled) model.

Example:
    >>> from pixelwise import models
    >>> models.available()
    ['original_unet', 'unet']
    >>> model = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=8)
    >>> model.output_shape
    (None, 64, 64, 2)
"""

from __future__ import annotations

import inspect

from pixelwise.models.layers import (
    ScheduledDropout,
    dropout_layers,
    get_dropout_rate,
    set_dropout_rate,
)
from pixelwise.models.original_unet import (
    OriginalUNet,
    original_unet,
    valid_input_size,
    valid_output_size,
)
from pixelwise.models.unet import UNet, downsample, get_unet, upsample

# name -> (builder, name of the builder's input-size argument)
_REGISTRY = {
    "unet": (get_unet, "input_size"),
    "original_unet": (original_unet, "input_shape"),
}


def available() -> list[str]:
    """Names accepted by ``build``, sorted."""
    return sorted(_REGISTRY)


def builder(name: str):
    """The function ``build(name, ...)`` calls, e.g. to read its signature and defaults."""
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown model {name!r}; expected one of {available()} (see 'pixelwise models list')."
        )
    return _REGISTRY[name][0]


def build(name: str, input_size=None, num_classes: int | None = None, **options):
    """Build a registered model by name.

    Args:
        name: str. One of ``available()``: "unet" or "original_unet".
        input_size: (height, width, channels) or None for the model's default
            ((256, 256, 3) for unet, (572, 572, 1) for original_unet). Passed as
            ``input_size`` to ``get_unet`` and as ``input_shape`` to ``original_unet``.
        num_classes: int or None for the model's default (21 / 2).
        **options: Other keyword arguments of the builder, e.g. ``base_filters``,
            ``batch_norm``, ``dropout_rate``, ``padding`` (original_unet only).

    Returns:
        A ``keras.Model`` producing float32 logits.

    Raises:
        ValueError: for an unknown name or an option the model does not take.

    Example:
        >>> model = build("original_unet", input_size=(None, None, 1), num_classes=2,
        ...               base_filters=4, padding="same")
        >>> model.output_shape
        (None, None, None, 2)
    """
    function = builder(name)
    size_argument = _REGISTRY[name][1]
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(options) - set(parameters))
    if size_argument in options:
        unknown.append(f"{size_argument} (pass input_size)")
    if unknown:
        valid = ["input_size"] + [p for p in parameters if p != size_argument]
        raise ValueError(
            f"Model {name!r} does not take option(s) {unknown}; valid options: {valid}."
        )
    if input_size is not None:
        options[size_argument] = tuple(input_size)
    if num_classes is not None:
        options["num_classes"] = num_classes
    return function(**options)


__all__ = [
    "OriginalUNet",
    "ScheduledDropout",
    "UNet",
    "available",
    "build",
    "builder",
    "downsample",
    "dropout_layers",
    "get_dropout_rate",
    "get_unet",
    "original_unet",
    "set_dropout_rate",
    "upsample",
    "valid_input_size",
    "valid_output_size",
]
