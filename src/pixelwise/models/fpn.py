"""FPN: a feature pyramid with a semantic-segmentation head (Kirillov et al. 2019).

The panoptic-FPN semantic branch as segmentation_models builds it: 1x1 lateral convs
bring the encoder maps at strides 4-32 to ``pyramid_filters`` channels and a top-down
path adds each upsampled level to the next; every level then goes through 3x3 conv +
GroupNorm + ReLU (+ x2 bilinear upsampling) blocks until it reaches stride 4, the four
maps are summed, and a 1x1 conv gives logits at stride 4, upsampled x4::

    f32 -> P32 ----------------> [conv, up]x3 --+
    f16 -> P16 = up(P32) + lat -> [conv, up]x2 --+
    f8  -> P8  = up(P16) + lat -> [conv, up]   --+-> sum -> 1x1 conv -> up x4 -> logits
    f4  -> P4  = up(P8)  + lat -> [conv]       --+

Example:
    >>> model = FPN((64, 64, 3), num_classes=2, encoder="mobilenetv3small",
    ...             pyramid_filters=16, segmentation_filters=8)
    >>> model.output_shape
    (None, 64, 64, 2)
"""

from __future__ import annotations

import keras

from pixelwise.models.encoder_decoder import (
    EncoderDecoder, check_count, check_input_size, encode, logits_at_input_size, upsample,
)

_LEVELS = (32, 16, 8, 4)


def segmentation_block(x, filters: int, stride: int, name: str, groups: int = 32):
    """3x3 conv + GroupNorm + ReLU, upsampled x2 per block, from ``stride`` down to 4."""
    for index in range(max(1, (stride // 4).bit_length() - 1)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"{name}_{index}_conv")(x)
        x = keras.layers.GroupNormalization(min(groups, filters), name=f"{name}_{index}_gn")(x)
        x = keras.layers.ReLU(name=f"{name}_{index}_relu")(x)
        if stride > 4:
            x = upsample(x, 2, name=f"{name}_{index}_upsample")
    return x


@keras.saving.register_keras_serializable(package="pixelwise")
class FPN(EncoderDecoder):
    """Feature pyramid network with a semantic-segmentation head on a pretrained encoder.

    Args:
        input_size: (height, width, channels), default (256, 256, 3). Sides are
            multiples of 32 or None; channels 3 or 1.
        num_classes: int, required. Channels of the output logits.
        encoder: str, default "resnet50". One of ``available_encoders()``.
        encoder_weights: None (default), "imagenet" or a weights-file path.
        pyramid_filters: int, default 256. Channels of the pyramid levels.
        segmentation_filters: int, default 128. Channels of the head's blocks (GroupNorm
            with 32 groups, or fewer for fewer channels).
        name: str, default "fpn".
    """

    def __init__(self, input_size=(256, 256, 3), *, num_classes: int,
                 encoder: str = "resnet50", encoder_weights=None, pyramid_filters: int = 256,
                 segmentation_filters: int = 128, name: str = "fpn"):
        input_size = check_input_size(input_size, 32, "fpn")
        for value, label in ((num_classes, "num_classes"), (pyramid_filters, "pyramid_filters"),
                             (segmentation_filters, "segmentation_filters")):
            check_count(value, label)

        inputs, features = encode(input_size, encoder, encoder_weights)
        pyramid = {}
        for stride in _LEVELS:
            lateral = keras.layers.Conv2D(pyramid_filters, 1, name=f"lateral_stride{stride}")(
                features[stride])
            if stride == 32:
                pyramid[stride] = lateral
            else:
                top_down = upsample(pyramid[stride * 2], 2, name=f"top_down_stride{stride}",
                                    interpolation="nearest")
                pyramid[stride] = keras.layers.Add(name=f"pyramid_stride{stride}")(
                    [top_down, lateral])
        heads = [segmentation_block(pyramid[stride], segmentation_filters, stride,
                                    name=f"head_stride{stride}") for stride in _LEVELS]
        x = keras.layers.Add(name="head_sum")(heads)
        logits = logits_at_input_size(x, num_classes, stride=4)
        super().__init__(inputs=inputs, outputs=logits, name=name)
        self.remember({"input_size": input_size, "num_classes": num_classes, "encoder": encoder,
                       "pyramid_filters": pyramid_filters,
                       "segmentation_filters": segmentation_filters}, stride=32)
