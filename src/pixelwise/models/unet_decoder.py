"""U-Net on a pretrained encoder (segmentation_models' decoder), and the ``unet`` entry point.

``models.build("unet", ...)`` without ``encoder`` is the chapter's U-Net, exactly as in
:mod:`pixelwise.models.unet`. With ``encoder="resnet50"`` (or any of
:func:`~pixelwise.models.encoders.available_encoders`) it is :class:`EncoderUNet`:
Ronneberger's decoder as segmentation_models (Yakubovskiy) builds it on an ImageNet
backbone. Five decoder blocks go from stride 32 back to the input's resolution; each
doubles the size (nearest neighbour), concatenates the encoder map of that stride (none
at stride 1, nor at stride 2 for ConvNeXt) and applies two 3x3 conv + BatchNorm + ReLU::

    image -> encoder -> f32 -> [up x2, concat f16, conv, conv] -> [.. f8 ..] -> [.. f4 ..]
          -> [.. f2 ..] -> [up x2, conv, conv] -> 3x3 conv -> logits (input size)

Example:
    >>> model = EncoderUNet((64, 64, 3), num_classes=2, encoder="mobilenetv3small",
    ...                     decoder_filters=(16, 16, 8, 8, 8))
    >>> model.output_shape
    (None, 64, 64, 2)
"""

from __future__ import annotations

import keras

from pixelwise.models.encoder_decoder import (
    EncoderDecoder, check_count, check_input_size, conv_bn_relu, encode,
)
from pixelwise.models.unet import UNet, get_unet

#: smp's decoder_channels: filters of the blocks at strides 16, 8, 4, 2, 1.
DECODER_FILTERS = (256, 128, 64, 32, 16)
_BLOCK_STRIDES = (16, 8, 4, 2, 1)


def unet_decoder_block(x, skip, filters: int, name: str):
    """Upsample x2 (nearest), concatenate ``skip`` (if any), two 3x3 conv + BN + ReLU."""
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
    if skip is not None:
        x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    x = conv_bn_relu(x, filters, 3, name=f"{name}_1")
    return conv_bn_relu(x, filters, 3, name=f"{name}_2")


@keras.saving.register_keras_serializable(package="pixelwise")
class EncoderUNet(EncoderDecoder):
    """U-Net decoder on a pretrained encoder (segmentation_models' Unet).

    Args:
        input_size: (height, width, channels), default (256, 256, 3). Sides are
            multiples of 32 or None; channels 3 or 1.
        num_classes: int, default 21.
        encoder: str, default "resnet50". One of ``available_encoders()``.
        encoder_weights: None (default), "imagenet" or a weights-file path.
        decoder_filters: five ints, default (256, 128, 64, 32, 16): the blocks at strides
            16, 8, 4, 2 and 1.
        name: str, default "unet".
    """

    def __init__(self, input_size=(256, 256, 3), num_classes: int = 21,
                 encoder: str = "resnet50", encoder_weights=None,
                 decoder_filters=DECODER_FILTERS, name: str = "unet"):
        input_size = check_input_size(input_size, 32, "unet")
        check_count(num_classes, "num_classes")
        decoder_filters = tuple(decoder_filters)
        if len(decoder_filters) != len(_BLOCK_STRIDES):
            raise ValueError(
                f"Expected 5 decoder_filters (blocks at strides 16, 8, 4, 2, 1), received "
                f"{decoder_filters!r}."
            )
        for filters in decoder_filters:
            check_count(filters, "number of decoder_filters")

        inputs, features = encode(input_size, encoder, encoder_weights)
        x = features[32]
        for filters, stride in zip(decoder_filters, _BLOCK_STRIDES):
            x = unet_decoder_block(x, features.get(stride), filters, name=f"decoder_stride{stride}")
        logits = keras.layers.Conv2D(num_classes, 3, padding="same", dtype="float32",
                                     name="logits")(x)
        super().__init__(inputs=inputs, outputs=logits, name=name)
        self.remember({"input_size": input_size, "num_classes": num_classes, "encoder": encoder,
                       "decoder_filters": decoder_filters}, stride=32)


def unet(input_size=(256, 256, 3), num_classes: int = 21, base_filters: int = 128,
         batch_norm: bool = False, dropout_rate: float | None = None, name: str = "unet",
         encoder: str | None = None, encoder_weights=None,
         decoder_filters=DECODER_FILTERS) -> UNet | EncoderUNet:
    """U-Net: the chapter's (no encoder; sides: multiples of 64), or smp's decoder on encoder=.

    The first line is what ``pixelwise models list`` prints. Without ``encoder`` this is
    :func:`~pixelwise.models.unet.get_unet` (``base_filters``, ``batch_norm``,
    ``dropout_rate``); with it, :class:`EncoderUNet` (``encoder_weights``,
    ``decoder_filters``). Options of the other kind are an error.

    Example:
        >>> type(unet((64, 64, 3), num_classes=2, base_filters=4)).__name__
        'UNet'
        >>> type(unet((64, 64, 3), num_classes=2, encoder="mobilenetv3small")).__name__
        'EncoderUNet'
    """
    if encoder is None:
        if encoder_weights is not None or tuple(decoder_filters) != DECODER_FILTERS:
            raise ValueError(
                "encoder_weights and decoder_filters are options of the U-Net on a pretrained "
                "encoder; pass encoder=NAME too (e.g. encoder='resnet50'), or leave them out "
                "for the chapter's U-Net."
            )
        return get_unet(input_size=input_size, num_classes=num_classes,
                        base_filters=base_filters, batch_norm=batch_norm,
                        dropout_rate=dropout_rate, name=name)
    if base_filters != 128 or batch_norm or dropout_rate is not None:
        raise ValueError(
            f"base_filters, batch_norm and dropout_rate are options of the chapter's U-Net "
            f"(no encoder); the U-Net on encoder {encoder!r} has BatchNorm throughout and "
            "takes decoder_filters instead."
        )
    return EncoderUNet(input_size=input_size, num_classes=num_classes, encoder=encoder,
                       encoder_weights=encoder_weights, decoder_filters=decoder_filters,
                       name=name)
