"""Encoders: ``keras.applications`` backbones that hand their feature maps to a decoder.

An :class:`Encoder` is a functional model that takes pixelwise's images (float RGB in
``[0, 1]``, as :mod:`pixelwise.data.pipeline` makes them; grayscale is repeated to RGB) and returns
the backbone's feature maps at strides 2, 4, 8, 16 and 32, shallowest first (ConvNeXt has
no stride-2 map). The backbone's own preprocessing is inside the model: images are scaled
to ``[0, 255]``, then each application applies what its ImageNet weights expect
(MobileNetV3, EfficientNetV2 and ConvNeXt have it built in; ResNet50's caffe-style BGR
mean subtraction is :class:`CaffePreprocessing`).

Names are Keras' in lower case. Parameters are those of the application without its
classifier (``include_top=False``), which Keras' documentation lists with the top:

==================  ==========  =====================================================
name                parameters  features (stride: channels)
==================  ==========  =====================================================
resnet50            23,587,712  2: 64, 4: 256, 8: 512, 16: 1024, 32: 2048
mobilenetv3large     2,996,352  2: 16, 4: 24, 8: 40, 16: 112, 32: 960
mobilenetv3small       939,120  2: 16, 4: 16, 8: 24, 16: 48, 32: 576
efficientnetv2b0     5,919,312  2: 16, 4: 32, 8: 48, 16: 112, 32: 1280
efficientnetv2b1     6,931,124  2: 16, 4: 32, 8: 48, 16: 112, 32: 1280
efficientnetv2b2     8,769,374  2: 16, 4: 32, 8: 56, 16: 120, 32: 1408
efficientnetv2b3    12,930,622  2: 16, 4: 40, 8: 56, 16: 136, 32: 1536
convnext_tiny       27,820,128  4: 96, 8: 192, 16: 384, 32: 768
==================  ==========  =====================================================

Each feature is the output of the last block at its stride (the stride-32 one is the
application's output). ``output_stride`` 16 or 8 makes the deeper stages atrous
(:mod:`pixelwise.models.encoder_graph`): their maps stay at 1/16 or 1/8 of the input.

An encoder is frozen by setting ``encoder.frozen = True`` (the ``FreezeEncoder`` callback
does it): it then runs in inference mode even in a training step, so its BatchNorm layers
normalise with, and keep, their moving statistics, and no gradient flows into it.

Example:
    >>> encoder = Encoder("mobilenetv3small", input_size=(64, 64, 3))
    >>> [tuple(shape) for shape in encoder.output_shape]
    [(None, 32, 32, 16), (None, 16, 16, 16), (None, 8, 8, 24), (None, 4, 4, 48), (None, 2, 2, 576)]
    >>> encoder.feature_strides
    (2, 4, 8, 16, 32)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import keras
from keras import ops
from keras.src.applications import convnext, efficientnet_v2, mobilenet_v3, resnet

from pixelwise.models import efficientnet_lite_weights
from pixelwise.models.efficientnet_lite import VARIANTS as LITE_VARIANTS
from pixelwise.models.efficientnet_lite import tap_layers
from pixelwise.models.encoder_graph import copy_weights, rebuild
from pixelwise.models.encoder_weights import (
    check_imagenet_available, check_weights_file, imagenet_cache_path, unavailable_error,
)

#: Side of the square input the application is first built for, to read its strides.
PROBE_SIDE = 224
OUTPUT_STRIDES = (8, 16, 32)


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """How to make one encoder from its ``keras.applications`` model.

    Attributes:
        name: Registry name (Keras' name in lower case).
        application: The ``keras.applications`` constructor.
        taps: Stride -> name of the layer whose output is the feature map at that stride
            (after :func:`~pixelwise.models.encoder_graph.stable_names`); the stride-32
            map is always the application's output.
        weights_file: Keras' ImageNet weights file without the classifier.
        weights_module: The Keras module whose ``weights_url_attribute`` is the URL folder
            Keras downloads ``weights_file`` from.
        weights_url_attribute: Name of that module constant.
        caffe_preprocessing: The application expects BGR images minus the ImageNet mean,
            which it does not do itself (ResNet50).

    An application without ``weights_file`` finds and checks its ImageNet weights
    itself (EfficientNet-Lite: :mod:`pixelwise.models.efficientnet_lite_weights`).
    """

    name: str
    application: Callable
    taps: dict
    weights_file: str | None = None
    weights_module: object = None
    weights_url_attribute: str = "BASE_WEIGHTS_PATH"
    caffe_preprocessing: bool = False

    @property
    def feature_strides(self) -> tuple[int, ...]:
        return tuple(sorted({*self.taps, 32}))

    @property
    def imagenet_origin(self) -> str:
        """The URL Keras downloads the ImageNet file from (read now, from Keras' module)."""
        return getattr(self.weights_module, self.weights_url_attribute) + self.weights_file


def _efficientnet_lite(variant: str):
    return EncoderSpec(name=variant, application=functools.partial(efficientnet_lite_weights.application, variant),
                       taps=tap_layers(variant))


def _efficientnetv2(variant: str, application, stage_ends: tuple[str, str, str, str]):
    return EncoderSpec(
        name=f"efficientnetv2{variant}", application=application,
        taps=dict(zip((2, 4, 8, 16), stage_ends)),
        weights_file=f"efficientnetv2-{variant}_notop.h5", weights_module=efficientnet_v2,
    )


_SPECS = (
    EncoderSpec(
        name="resnet50", application=keras.applications.ResNet50,
        taps={2: "conv1_relu", 4: "conv2_block3_out", 8: "conv3_block4_out",
              16: "conv4_block6_out"},
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_module=resnet, caffe_preprocessing=True,
    ),
    EncoderSpec(
        name="mobilenetv3large", application=keras.applications.MobileNetV3Large,
        taps={2: "expanded_conv_add", 4: "expanded_conv_2_add", 8: "expanded_conv_5_add",
              16: "expanded_conv_11_add"},
        weights_file="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        weights_module=mobilenet_v3, weights_url_attribute="BASE_WEIGHT_PATH",
    ),
    EncoderSpec(
        # The stem's hard-swish is Keras' first unnamed Activation: stable name activation_0.
        name="mobilenetv3small", application=keras.applications.MobileNetV3Small,
        taps={2: "activation_0", 4: "expanded_conv_project_bn", 8: "expanded_conv_2_add",
              16: "expanded_conv_7_add"},
        weights_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        weights_module=mobilenet_v3, weights_url_attribute="BASE_WEIGHT_PATH",
    ),
    _efficientnetv2("b0", keras.applications.EfficientNetV2B0,
                    ("block1a_project_activation", "block2b_add", "block3b_add", "block5e_add")),
    _efficientnetv2("b1", keras.applications.EfficientNetV2B1,
                    ("block1b_add", "block2c_add", "block3c_add", "block5f_add")),
    _efficientnetv2("b2", keras.applications.EfficientNetV2B2,
                    ("block1b_add", "block2c_add", "block3c_add", "block5f_add")),
    _efficientnetv2("b3", keras.applications.EfficientNetV2B3,
                    ("block1b_add", "block2c_add", "block3c_add", "block5g_add")),
    EncoderSpec(
        name="convnext_tiny", application=keras.applications.ConvNeXtTiny,
        taps={4: "convnext_tiny_stage_0_block_2_identity",
              8: "convnext_tiny_stage_1_block_2_identity",
              16: "convnext_tiny_stage_2_block_8_identity"},
        weights_file="convnext_tiny_notop.h5", weights_module=convnext,
    ),
    *(_efficientnet_lite(variant) for variant in LITE_VARIANTS),
)
ENCODERS = {spec.name: spec for spec in _SPECS}


def available_encoders() -> list[str]:
    """Encoder names accepted by ``encoder=``, in a fixed order (ResNet, MobileNet, ...)."""
    return list(ENCODERS)


def encoder_spec(name: str) -> EncoderSpec:
    """The :class:`EncoderSpec` of ``name``; ValueError listing the names for an unknown one."""
    if name not in ENCODERS:
        raise ValueError(
            f"Unknown encoder {name!r}; expected one of {available_encoders()} "
            "(see 'pixelwise models list')."
        )
    return ENCODERS[name]


@keras.saving.register_keras_serializable(package="pixelwise")
class CaffePreprocessing(keras.layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` inside the model: RGB->BGR, minus mean.

    Takes RGB in ``[0, 255]``; subtracts the ImageNet channel means (103.939, 116.779,
    123.68 in BGR order) without scaling, as the caffe-trained ResNet weights expect.
    """

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1)
        return bgr - ops.convert_to_tensor(self.MEAN_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def load_application(spec: EncoderSpec, weights=None):
    """The Keras application of ``spec`` without its classifier, at ``PROBE_SIDE``, with weights.

    Args:
        spec: :class:`EncoderSpec`.
        weights: None, "imagenet" or the path of a weights file (see
            :mod:`pixelwise.models.encoder_weights`).

    Raises:
        FileNotFoundError: ImageNet weights neither cached nor downloadable, or a path
            that is not a file.
    """
    cached = False
    if spec.weights_file is None:
        pass  # the application finds, checks and reads its weights itself
    elif weights == "imagenet":
        cached = imagenet_cache_path(spec.weights_file).is_file()
        check_imagenet_available(spec.name, spec.weights_file, spec.imagenet_origin)
    elif weights is not None:
        weights = check_weights_file(spec.name, weights)
    try:
        return spec.application(include_top=False, weights=weights,
                                input_shape=(PROBE_SIDE, PROBE_SIDE, 3))
    except Exception as error:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception
        if weights == "imagenet" and str(error).startswith("URL fetch failure"):
            # Keras downloads again when the cached copy fails its checksum.
            reason = f"the cached copy failed Keras' checksum; {error}" if cached else str(error)
            raise unavailable_error(spec.name, spec.weights_file, spec.imagenet_origin,
                                    reason) from None
        raise


def _check_encoder_input(input_size) -> tuple:
    size = tuple(input_size) if isinstance(input_size, (list, tuple)) else None
    if size is None or len(size) != 3 or size[-1] not in (1, 3):
        raise ValueError(
            f"Expected input_size (height, width, channels) with 3 (RGB) or 1 (grayscale, "
            f"repeated to RGB) channels for a pretrained encoder, received {input_size!r}."
        )
    return size


@keras.saving.register_keras_serializable(package="pixelwise")
class Encoder(keras.Model):
    """A ``keras.applications`` backbone returning its feature maps, shallowest first.

    Args:
        backbone: str. One of :func:`available_encoders`.
        input_size: (height, width, channels), default (None, None, 3); channels 3 or 1.
        weights: None (default), "imagenet" or a weights-file path: the backbone's initial
            weights. Not part of the config: a saved model carries its trained weights.
        output_stride: int, 32 (default), 16 or 8. Stride of the deepest feature maps.
        name: str, default "encoder".

    Attributes:
        feature_strides: The original stride of each output (2, 4, 8, 16, 32).
        frozen: bool, default False. True: inference mode and no gradients (see the
            module docstring).
    """

    def __init__(self, backbone: str, input_size=(None, None, 3), weights=None,
                 output_stride: int = 32, name: str = "encoder", **kwargs):
        spec = encoder_spec(backbone)
        input_size = _check_encoder_input(input_size)
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"Expected output_stride in {OUTPUT_STRIDES}, received {output_stride!r}."
            )
        application = load_application(spec, weights)
        copy = rebuild(application, keras.Input((*input_size[:2], 3), name=f"{backbone}_input"),
                       output_stride=output_stride, side=PROBE_SIDE)
        if weights is not None:
            copy_weights(application, copy)
        taps = [copy.get_layer(spec.taps[s]).output if s in spec.taps else copy.output
                for s in spec.feature_strides]
        features = keras.Model(copy.input, taps, name=backbone)

        inputs = keras.Input(input_size, name="image")
        x = inputs
        if input_size[-1] == 1:
            x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
        x = keras.layers.Rescaling(255.0, name="to_0_255")(x)
        if spec.caffe_preprocessing:
            x = CaffePreprocessing(name="caffe_preprocessing")(x)
        super().__init__(inputs=inputs, outputs=features(x), name=name, **kwargs)

        self.backbone = backbone
        self.input_size = input_size
        self.output_stride = output_stride
        self.feature_strides = spec.feature_strides
        self.frozen = False

    def call(self, inputs, training=None, mask=None):
        # A Python bool read when the train step is traced: FreezeEncoder retraces it.
        features = super().call(inputs, training=bool(training) and not self.frozen, mask=mask)
        if self.frozen:
            features = [ops.stop_gradient(feature) for feature in features]
        return features

    def feature_stride(self, stride: int) -> int:
        """Actual stride of the feature map whose original stride is ``stride``."""
        return min(stride, self.output_stride)

    def get_config(self):
        return {"backbone": self.backbone, "input_size": list(self.input_size),
                "output_stride": self.output_stride, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def encoders_in(model) -> list[Encoder]:
    """The :class:`Encoder` layers of ``model``, nested ones included, in layer order."""
    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, Encoder):
            found.append(layer)
        else:
            stack.extend(getattr(layer, "layers", ()))
    return found
