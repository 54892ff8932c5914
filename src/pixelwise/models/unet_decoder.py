"""U-Net on a pretrained encoder (segmentation_models' decoder): ``encoder_unet``.

``models.build("encoder_unet", encoder="resnet50", ...)`` (or any of
:func:`~pixelwise.models.encoders.available_encoders`) is :class:`EncoderUNet`:
Ronneberger's decoder as segmentation_models (Yakubovskiy) builds it on an ImageNet
backbone; the chapter's U-Net, without an encoder, is ``unet`` (:mod:`pixelwise.models.unet`). Five decoder blocks go from stride 32 back to the input's resolution; each
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
        input_size: (height, width, channels) with sides multiples of 32 or None and 3 or 1
            channels; default (256, 256, 3).
        num_classes: int, required: the output logits' channels.
        encoder: str, one of ``available_encoders()``; default "resnet50".
        encoder_weights: None (default), "imagenet" or a weights-file path.
        decoder_filters: five ints, default (256, 128, 64, 32, 16): the blocks at strides
            16, 8, 4, 2 and 1.
        name: str, default "encoder_unet".
    """

    def __init__(self, input_size=(256, 256, 3), *, num_classes: int,
                 encoder: str = "resnet50", encoder_weights=None,
                 decoder_filters=DECODER_FILTERS, name: str = "encoder_unet"):
        input_size = check_input_size(input_size, 32, "encoder_unet")
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

