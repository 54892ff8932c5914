"""Segmentation models and a string registry for the CLI and configs.

Models, by registry name:

- ``unet``: the chapter's U-Net (``get_unet``), 26,917,781 parameters by default.
- ``original_unet``: Ronneberger et al. 2015 (``original_unet``), 572 -> 388,
  31,030,658 parameters for 1 channel and 2 classes.

Every model takes ``input_size=(height, width, channels)`` and ``num_classes``,
outputs float32 logits (no activation) and accepts ``base_filters``, ``batch_norm``
and ``dropout_rate``; ``set_dropout_rate(model, rate)`` changes the encoder dropout
of a built (even compiled) model. Every model states the image sizes it takes in a
``geometry()`` method (``pixelwise.models.geometry``), which tiling and export read.

Example:
    >>> from pixelwise import models
    >>> models.available()
    ['original_unet', 'unet']
    >>> model = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=8)
    >>> model.output_shape
    (None, 64, 64, 2)
    >>> geometry_of(model).rule
    'multiples of 64'
"""

from __future__ import annotations

import inspect

from pixelwise.models.geometry import Geometry, ProbedGeometry, geometry_of
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

#: Registry name -> builder. Every builder takes ``input_size`` and ``num_classes``.
_REGISTRY = {
    "unet": get_unet,
    "original_unet": original_unet,
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
    return _REGISTRY[name]


def build(name: str, input_size=None, num_classes: int | None = None, **options):
    """Build a registered model by name.

    Args:
        name: str. One of ``available()``: "unet" or "original_unet".
        input_size: (height, width, channels) or None for the builder's default
            (``pixelwise models list`` shows it).
        num_classes: int or None for the builder's default.
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
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        # pixelwise 0.1 called the original U-Net's input size "input_shape".
        hint = "; pass input_size=(height, width, channels)" if "input_shape" in unknown else ""
        raise ValueError(
            f"Model {name!r} does not take option(s) {unknown}; valid options: "
            f"{list(parameters)}{hint}."
        )
    if input_size is not None:
        options["input_size"] = tuple(input_size)
    if num_classes is not None:
        options["num_classes"] = num_classes
    return function(**options)


__all__ = [
    "Geometry",
    "OriginalUNet",
    "ProbedGeometry",
    "ScheduledDropout",
    "UNet",
    "available",
    "build",
    "builder",
    "downsample",
    "dropout_layers",
    "get_dropout_rate",
    "geometry_of",
    "get_unet",
    "original_unet",
    "set_dropout_rate",
    "upsample",
    "valid_input_size",
    "valid_output_size",
]
