"""DeepLabV3+: atrous spatial pyramid pooling and a light decoder (Chen et al. 2018).

The encoder runs at ``output_stride`` 16 (or 8): its deeper stages are atrous
(:mod:`pixelwise.models.encoder_graph`). ASPP looks at its deepest map with a 1x1 conv,
three 3x3 convs dilated 6, 12, 18 (doubled at output stride 8) and global average
pooling, each with BatchNorm + ReLU, concatenated and projected by a 1x1 conv. The
decoder upsamples that to stride 4, concatenates the encoder's stride-4 map reduced to
48 channels, and refines with two 3x3 convs::

    f32 (atrous, at OS) -> ASPP [1x1 | 3x3 r6 | 3x3 r12 | 3x3 r18 | pool] -> 1x1 -> up to /4 --+
    f4 -> 1x1 (48) ---------------------------------------------------------------------------+
       -> concat -> 3x3 -> 3x3 -> 1x1 -> up x4 -> logits

``separable=True`` makes the dilated 3x3s and the decoder's 3x3s depthwise-separable (the
paper's Xception variant; smp's default), a decoder of about a fifth of the parameters.

Example:
    >>> model = DeepLabV3Plus((64, 64, 3), num_classes=2, encoder="mobilenetv3small",
    ...                       aspp_filters=16, low_level_filters=8, decoder_filters=16)
    >>> model.output_shape, model.geometry().rule
    ((None, 64, 64, 2), 'multiples of 16')
"""

from __future__ import annotations

import keras

from pixelwise.models.encoder_decoder import (
    BroadcastLike, EncoderDecoder, check_count, check_input_size, conv_bn_relu, encode,
    logits_at_input_size, upsample,
)

#: The paper's atrous rates at output stride 16 (doubled at 8).
ASPP_RATES = (6, 12, 18)


def separable_conv_bn_relu(x, filters: int, name: str, dilation_rate: int = 1):
    """Depthwise-separable 3x3 conv (no bias) + BatchNorm + ReLU, as smp's DeepLabV3+ has.

    Layers ``name_sepconv`` (one ``SeparableConv2D``: 3x3 depthwise, dilated, then 1x1
    pointwise, with no BatchNorm between them), ``name_bn``, ``name_relu``.
    """
    x = keras.layers.SeparableConv2D(
        filters, 3, padding="same", dilation_rate=dilation_rate, use_bias=False,
        depthwise_initializer="he_normal", pointwise_initializer="he_normal",
        name=f"{name}_sepconv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def aspp(x, filters: int, rates, name: str = "aspp", separable: bool = False):
    """Atrous spatial pyramid pooling: 1x1, dilated 3x3s and image pooling, projected.

    ``separable``: the dilated 3x3s are depthwise-separable (:func:`separable_conv_bn_relu`).
    """
    branches = [conv_bn_relu(x, filters, 1, name=f"{name}_1x1")]
    for rate in rates:
        if separable:
            branches.append(separable_conv_bn_relu(x, filters, name=f"{name}_rate{rate}",
                                                   dilation_rate=rate))
        else:
            branches.append(conv_bn_relu(x, filters, 3, name=f"{name}_rate{rate}",
                                         dilation_rate=rate))
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    pooled = conv_bn_relu(pooled, filters, 1, name=f"{name}_pool_1x1")
    branches.append(BroadcastLike(name=f"{name}_pool_broadcast")([pooled, x]))
    x = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    return conv_bn_relu(x, filters, 1, name=f"{name}_project")


@keras.saving.register_keras_serializable(package="pixelwise")
class DeepLabV3Plus(EncoderDecoder):
    """DeepLabV3+ on a pretrained encoder.

    Args:
        input_size: (height, width, channels), default (256, 256, 3). Sides are
            multiples of ``output_stride`` or None; channels 3 or 1.
        num_classes: int, required. Channels of the output logits.
        encoder: str, default "resnet50". One of ``available_encoders()``.
        encoder_weights: None (default), "imagenet" or a weights-file path.
        output_stride: int, 16 (default) or 8. Stride of the encoder's deepest map; 8 is
            finer and about 3x the encoder's FLOPs.
        aspp_filters: int, default 256. Channels of every ASPP branch.
        low_level_filters: int, default 48. Channels the stride-4 map is reduced to.
        decoder_filters: int, default 256. Channels of the two 3x3 decoder convs.
        separable: bool, default False. Depthwise-separable 3x3 convs in ASPP and decoder
            (3x3 depthwise + 1x1 pointwise, then BatchNorm + ReLU), as in the paper's
            Xception variant and smp's ``DeepLabV3Plus`` default: with ResNet50 at
            192x256, a decoder of 3.2 M parameters instead of 16.8 M, and 13.8 instead of
            25.6 GFLOPs for the whole model (``pixelwise models summary``).
        name: str, default "deeplabv3plus".
    """

    def __init__(self, input_size=(256, 256, 3), *, num_classes: int,
                 encoder: str = "resnet50", encoder_weights=None, output_stride: int = 16,
                 aspp_filters: int = 256, low_level_filters: int = 48,
                 decoder_filters: int = 256, separable: bool = False,
                 name: str = "deeplabv3plus"):
        if output_stride not in (8, 16):
            raise ValueError(f"Expected output_stride 16 or 8, received {output_stride!r}.")
        input_size = check_input_size(input_size, output_stride, "deeplabv3plus")
        for value, label in ((num_classes, "num_classes"), (aspp_filters, "aspp_filters"),
                             (low_level_filters, "low_level_filters"),
                             (decoder_filters, "decoder_filters")):
            check_count(value, label)

        inputs, features = encode(input_size, encoder, encoder_weights, output_stride)
        rates = tuple(rate * 16 // output_stride for rate in ASPP_RATES)
        if not isinstance(separable, bool):
            raise ValueError(f"Expected separable True or False, received {separable!r}.")
        x = aspp(features[32], aspp_filters, rates, separable=separable)
        x = upsample(x, output_stride // 4, name="aspp_upsample")
        low_level = conv_bn_relu(features[4], low_level_filters, 1, name="decoder_low_level")
        x = keras.layers.Concatenate(name="decoder_concat")([x, low_level])
        for index in (1, 2):
            if separable:
                x = separable_conv_bn_relu(x, decoder_filters, name=f"decoder_{index}")
            else:
                x = conv_bn_relu(x, decoder_filters, 3, name=f"decoder_{index}")
        logits = logits_at_input_size(x, num_classes, stride=4)
        super().__init__(inputs=inputs, outputs=logits, name=name)
        self.remember({"input_size": input_size, "num_classes": num_classes, "encoder": encoder,
                       "output_stride": output_stride, "aspp_filters": aspp_filters,
                       "low_level_filters": low_level_filters,
                       "decoder_filters": decoder_filters, "separable": separable},
                      stride=output_stride)
