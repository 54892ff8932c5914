"""Segmentation models and a string registry for the CLI and configs.

Models, by registry name:

- ``unet``: the chapter's U-Net (``get_unet``), 26,917,781 parameters by default; it
  takes no encoder.
- ``encoder_unet``: segmentation_models' U-Net decoder on a pretrained encoder
  (:class:`EncoderUNet`, ``encoder=NAME``).
- ``original_unet``: Ronneberger et al. 2015 (``original_unet``), 572 -> 388,
  31,030,658 parameters for 1 channel and 2 classes.
- ``fpn`` (:class:`FPN`), ``deeplabv3plus`` (:class:`DeepLabV3Plus`, output stride 16
  or 8) and ``lraspp`` (:class:`LRASPP`, MobileNetV3 encoders only): decoders on a
  pretrained encoder.

Encoders (``encoder=``, :mod:`pixelwise.models.encoders`) are ``keras.applications``
backbones: ``resnet50``, ``mobilenetv3large``, ``mobilenetv3small``,
``efficientnetv2b0`` to ``b3`` and ``convnext_tiny``; ``encoder_weights`` is None,
"imagenet" (Keras' download and cache) or the path of a weights file.
:func:`combinations` lists the valid (model, encoder) pairs.

Every model takes ``input_size=(height, width, channels)`` and ``num_classes`` (required:
there is no default class count), takes float images in ``[0, 1]`` and outputs float32 logits (no activation). The
chapter's U-Nets accept ``base_filters``, ``batch_norm`` and ``dropout_rate``;
``set_dropout_rate(model, rate)`` changes their encoder dropout of a built (even
compiled) model. Every model states the image sizes it takes in a ``geometry()``
method (``pixelwise.models.geometry``), which tiling and export read.

Example:
    >>> from pixelwise import models
    >>> models.available()
    ['deeplabv3plus', 'encoder_unet', 'fpn', 'lraspp', 'original_unet', 'unet']
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
from pixelwise.models.deeplabv3plus import DeepLabV3Plus
from pixelwise.models.encoders import Encoder, available_encoders, encoder_spec, encoders_in
from pixelwise.models.fpn import FPN
from pixelwise.models.lraspp import LRASPP, LRASPP_ENCODERS
from pixelwise.models.unet import UNet, downsample, get_unet, upsample
from pixelwise.models.unet_decoder import EncoderUNet

#: Registry name -> builder. Every builder takes ``input_size`` and ``num_classes``.
_REGISTRY = {
    "unet": get_unet,
    "encoder_unet": EncoderUNet,
    "original_unet": original_unet,
    "fpn": FPN,
    "deeplabv3plus": DeepLabV3Plus,
    "lraspp": LRASPP,
}


def encoders_of(name: str) -> list[str]:
    """Encoders model ``name`` takes with ``encoder=`` (none for unet and original_unet)."""
    if "encoder" not in inspect.signature(builder(name)).parameters:
        return []
    return list(LRASPP_ENCODERS) if name == "lraspp" else available_encoders()


def combinations() -> list[tuple[str, str]]:
    """Every valid ``(model, encoder)`` pair, models sorted, encoders in their order.

    Example:
        >>> len(combinations()), ("lraspp", "mobilenetv3small") in combinations()
        (38, True)
    """
    return [(name, encoder) for name in available() for encoder in encoders_of(name)]


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


def build(name: str, input_size=None, *, num_classes: int, **options):
    """Build a registered model by name.

    Args:
        name: str. One of ``available()``: "unet", "original_unet", "encoder_unet",
            "fpn", "deeplabv3plus" or "lraspp".
        input_size: (height, width, channels) or None for the builder's default
            (``pixelwise models list`` shows it).
        num_classes: int, required. Channels of the output logits (the class set's
            ``num_classes``).
        **options: Other keyword arguments of the builder, e.g. ``encoder``,
            ``encoder_weights``, ``output_stride`` (deeplabv3plus), ``base_filters``,
            ``batch_norm``, ``dropout_rate`` (the chapter's U-Nets), ``padding``
            (original_unet).

    Returns:
        A ``keras.Model`` producing float32 logits.

    Raises:
        ValueError: for an unknown name or an option the model does not take (``encoder``
            given to "unet": the U-Net on a pretrained encoder is "encoder_unet").
        FileNotFoundError: ``encoder_weights`` "imagenet" offline and not cached, or a
            path that is not a file.

    Example:
        >>> model = build("original_unet", input_size=(None, None, 1), num_classes=2,
        ...               base_filters=4, padding="same")
        >>> model.output_shape
        (None, None, None, 2)
        >>> build("deeplabv3plus", input_size=(64, 64, 3), num_classes=3,
        ...       encoder="mobilenetv3small").output_shape
        (None, 64, 64, 3)
    """
    function = builder(name)
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(options) - set(parameters))
    encoder_options = sorted({"encoder", "encoder_weights", "decoder_filters"} & set(unknown))
    if name == "unet" and encoder_options:
        raise ValueError(
            f"Model 'unet' is the chapter's U-Net and takes no encoder; received "
            f"{encoder_options}. For the U-Net decoder on a pretrained encoder use model "
            "'encoder_unet': models.build('encoder_unet', encoder='resnet50', ...).")
    if unknown:
        # pixelwise 0.1 called the original U-Net's input size "input_shape".
        hint = "; pass input_size=(height, width, channels)" if "input_shape" in unknown else ""
        raise ValueError(
            f"Model {name!r} does not take option(s) {unknown}; valid options: "
            f"{list(parameters)}{hint}."
        )
    if input_size is not None:
        options["input_size"] = tuple(input_size)
    return function(num_classes=num_classes, **options)


__all__ = [
    "DeepLabV3Plus",
    "Encoder",
    "EncoderUNet",
    "FPN",
    "Geometry",
    "LRASPP",
    "OriginalUNet",
    "ProbedGeometry",
    "ScheduledDropout",
    "UNet",
    "available",
    "available_encoders",
    "build",
    "builder",
    "combinations",
    "downsample",
    "dropout_layers",
    "encoder_spec",
    "encoders_in",
    "encoders_of",
    "get_dropout_rate",
    "geometry_of",
    "get_unet",
    "original_unet",
    "set_dropout_rate",
    "upsample",
    "valid_input_size",
    "valid_output_size",
]
