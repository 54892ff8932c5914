"""LR-ASPP: the MobileNetV3 segmentation head (Howard et al. 2019, "Searching for MobileNetV3").

The encoder is atrous from stride 16 on (its last stage keeps 1/16, as in the paper). Its
deepest map goes through a 1x1 conv + BatchNorm + ReLU, scaled per channel by a sigmoid
gate computed from its global average (torchvision's form of the paper's large-kernel
pooling), upsampled to stride 8; a 1x1 conv of it and a 1x1 conv of the encoder's
stride-8 map are added as logits, upsampled x8::

    f32 (atrous, at /16) -> 1x1 conv, BN, ReLU --x-- sigmoid(1x1 conv(pool)) -> up x2 -> 1x1 --+
    f8 ----------------------------------------------------------------------------> 1x1 --+
                                                                          sum -> up x8 -> logits

LR-ASPP is a head for the small mobile encoders: MobileNetV3 and EfficientNet-Lite.

Example:
    >>> model = LRASPP((64, 64, 3), num_classes=2, encoder="mobilenetv3small", head_filters=16)
    >>> model.output_shape
    (None, 64, 64, 2)
"""

from __future__ import annotations

import keras

from pixelwise.models.encoder_decoder import (
    EncoderDecoder, check_count, check_input_size, conv_bn_relu, encode, upsample,
)

#: The encoders LR-ASPP is designed for.
LRASPP_ENCODERS = ("mobilenetv3large", "mobilenetv3small",
                   "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
OUTPUT_STRIDE = 16


@keras.saving.register_keras_serializable(package="pixelwise")
class LRASPP(EncoderDecoder):
    """Lite reduced atrous spatial pyramid pooling on a MobileNetV3 encoder.

    Args:
        input_size: (height, width, channels), default (256, 256, 3). Sides are
            multiples of 16 or None; channels 3 or 1.
        num_classes: int, required. Channels of the output logits.
        encoder: str, default "mobilenetv3large"; or "mobilenetv3small".
        encoder_weights: None (default), "imagenet" or a weights-file path.
        head_filters: int, default 128. Channels of the head.
        name: str, default "lraspp".
    """

    def __init__(self, input_size=(256, 256, 3), *, num_classes: int,
                 encoder: str = "mobilenetv3large", encoder_weights=None,
                 head_filters: int = 128, name: str = "lraspp"):
        if encoder not in LRASPP_ENCODERS:
            raise ValueError(
                f"LR-ASPP is the mobile segmentation head: expected encoder in "
                f"{list(LRASPP_ENCODERS)}, received {encoder!r}; for other encoders use "
                "deeplabv3plus, fpn or unet."
            )
        input_size = check_input_size(input_size, OUTPUT_STRIDE, "lraspp")
        check_count(num_classes, "num_classes")
        check_count(head_filters, "head_filters")

        inputs, features = encode(input_size, encoder, encoder_weights, OUTPUT_STRIDE)
        high = features[32]
        x = conv_bn_relu(high, head_filters, 1, name="head")
        gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(high)
        gate = keras.layers.Conv2D(head_filters, 1, use_bias=False, activation="sigmoid",
                                   name="head_gate")(gate)
        x = keras.layers.Multiply(name="head_scale")([x, gate])
        x = upsample(x, 2, name="head_upsample")
        high_logits = keras.layers.Conv2D(num_classes, 1, dtype="float32",
                                          name="high_logits")(x)
        low_logits = keras.layers.Conv2D(num_classes, 1, dtype="float32",
                                         name="low_logits")(features[8])
        logits = keras.layers.Add(dtype="float32", name="logits")([low_logits, high_logits])
        logits = upsample(logits, 8, name="logits_upsample", dtype="float32")
        super().__init__(inputs=inputs, outputs=logits, name=name)
        self.remember({"input_size": input_size, "num_classes": num_classes, "encoder": encoder,
                       "head_filters": head_filters}, stride=OUTPUT_STRIDE)
