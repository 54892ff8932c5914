"""What the encoder-decoder models share: the encoder call, blocks, logits, config, geometry.

The models (``unet`` with ``encoder=``, ``fpn``, ``deeplabv3plus``, ``lraspp``) are
functional ``keras.Model`` subclasses built like the chapter's U-Net: the constructor
stores its arguments, ``get_config()`` returns them and ``from_config`` calls the
constructor, so ``.keras`` files round-trip. Each model

- takes ``(batch, height, width, channels)`` float images in ``[0, 1]`` (channels 3, or 1
  repeated to RGB) and returns float32 logits at the input's size, even under a
  ``mixed_bfloat16`` policy;
- holds its backbone as the layer named ``"encoder"`` (:class:`~pixelwise.models.encoders.Encoder`);
- states its geometry: sides are multiples of its deepest stride (32, or the atrous
  output stride), the output has the input's size.

``encoder_weights`` only initialises the encoder when the model is built: a saved model
carries its trained weights, so its config records ``encoder_weights=None`` and loading
a ``.keras`` file never downloads anything.
"""

from __future__ import annotations

import keras
from keras import ops

from pixelwise.models.atrous import AtrousConv2D
from pixelwise.models.encoders import Encoder
from pixelwise.models.geometry import Geometry


def check_input_size(input_size, stride: int, model: str) -> tuple:
    """``(height, width, channels)`` with sides None or positive multiples of ``stride``."""
    size = tuple(input_size) if isinstance(input_size, (list, tuple)) else None
    if size is None or len(size) != 3:
        raise ValueError(
            f"Expected input_size as (height, width, channels), e.g. (256, 256, 3), received "
            f"{input_size!r}."
        )
    for side in size[:2]:
        if side is None:
            continue
        if not isinstance(side, int) or isinstance(side, bool) or side < stride or side % stride:
            lower = max(stride, side // stride * stride) if isinstance(side, int) else stride
            raise ValueError(
                f"{model} reduces the image by {stride}, so height and width must be multiples "
                f"of {stride} or None; received input_size {size!r}. Nearest valid side: "
                f"{lower} or {lower + stride}; resize or crop the images to it."
            )
    return size


def check_count(value, label: str) -> int:
    """``value`` if it is a positive int, else a ValueError naming ``label`` (an argument name
    is written ``name=``)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        name = f"{label}=" if label.isidentifier() else label
        raise ValueError(f"Expected a positive int for {name}, received {value!r}.")
    return value


def encode(input_size, encoder: str, encoder_weights, output_stride: int = 32):
    """The model input, and the encoder's feature maps by original stride.

    Returns:
        ``(inputs, features)``: the ``keras.Input`` named "image" and a dict
        stride -> feature map (2, 4, 8, 16, 32; strides beyond ``output_stride`` are
        atrous and have its resolution).
    """
    inputs = keras.Input(input_size, name="image")
    backbone = Encoder(encoder, input_size=input_size, weights=encoder_weights,
                       output_stride=output_stride, name="encoder")
    return inputs, dict(zip(backbone.feature_strides, backbone(inputs)))


def conv_bn_relu(x, filters: int, kernel_size: int, name: str, dilation_rate: int = 1):
    """Conv (no bias) + BatchNorm + ReLU, layers named ``name_conv``, ``name_bn``, ``name_relu``.

    A dilated conv is an :class:`~pixelwise.models.atrous.AtrousConv2D` (a ``Conv2D`` with
    the same weights, computed as a matmul over its in-bounds taps: TensorFlow's CPU
    dilated convolution is many times slower).
    """
    conv = AtrousConv2D if dilation_rate != 1 else keras.layers.Conv2D
    x = conv(filters, kernel_size, padding="same", dilation_rate=dilation_rate,
             use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def upsample(x, factor: int, name: str, interpolation: str = "bilinear", dtype=None):
    """Enlarge ``x`` by an integer ``factor``: :class:`BilinearUpsampling` or nearest neighbour."""
    if factor == 1:
        return x
    if interpolation == "bilinear":
        return BilinearUpsampling(factor, dtype=dtype, name=name)(x)
    return keras.layers.UpSampling2D(factor, interpolation=interpolation, dtype=dtype,
                                     name=name)(x)


def _upsample_axis(x, factor: int, axis: int):
    # Half-pixel centres, edges clamped: what tf.image.resize and jax.image.resize compute.
    length = ops.shape(x)[axis]
    position = (ops.arange(length * factor, dtype="float32") + 0.5) / factor - 0.5
    position = ops.maximum(position, 0.0)
    lower = ops.floor(position)
    first = ops.cast(lower, "int32")
    second = ops.minimum(first + 1, length - 1)
    weight = ops.cast(position - lower, x.dtype)
    weight = ops.reshape(weight, (1, -1, 1, 1) if axis == 1 else (1, 1, -1, 1))
    before, after = ops.take(x, first, axis=axis), ops.take(x, second, axis=axis)
    return before + (after - before) * weight


@keras.saving.register_keras_serializable(package="pixelwise")
class BilinearUpsampling(keras.layers.Layer):
    """Bilinear enlargement by an integer factor that also works for free (None) sizes.

    Equal to ``keras.ops.image.resize(x, (factor * H, factor * W), "bilinear")`` (half-pixel
    centres), computed with gathers: ``keras.layers.UpSampling2D(interpolation="bilinear")``
    cannot be traced by TensorFlow with unknown height and width (Keras checks the size with
    Python comparisons), which SavedModel export and shape-relaxed tracing need.

    Args:
        factor: int >= 1. Enlargement of height and width.
        **kwargs: Standard layer arguments (``name``, ``dtype``).
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        return _upsample_axis(_upsample_axis(inputs, self.factor, 1), self.factor, 2)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else height * self.factor,
                None if width is None else width * self.factor, channels)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def logits_at_input_size(x, num_classes: int, stride: int, kernel_size: int = 1):
    """Class logits from ``x`` (at ``stride``), bilinearly upsampled to the input, in float32."""
    x = keras.layers.Conv2D(num_classes, kernel_size, padding="same", dtype="float32",
                            name="logits")(x)
    return upsample(x, stride, name="logits_upsample", dtype="float32")


@keras.saving.register_keras_serializable(package="pixelwise")
class BroadcastLike(keras.layers.Layer):
    """Spread a globally pooled ``(B, 1, 1, C)`` map over the height and width of a reference.

    Called on ``[pooled, reference]``; the output is ``(B, H, W, C)`` for a reference of
    ``(B, H, W, *)``. Works for free (None) sizes on every backend (a product with ones,
    no resize).
    """

    def call(self, inputs):
        pooled, reference = inputs
        return pooled * ops.ones_like(reference[..., :1], dtype=pooled.dtype)

    def compute_output_shape(self, input_shapes):
        pooled, reference = input_shapes
        return (*reference[:3], pooled[-1])


class EncoderDecoder(keras.Model):
    """Base class: a functional model that stores its arguments and states its geometry.

    Subclasses build their graph, call ``super().__init__(inputs=..., outputs=..., name=...)``
    and then ``self.remember(config, stride)``.
    """

    def remember(self, config: dict, stride: int) -> None:
        """Keep the constructor arguments (for ``get_config``) and the deepest stride."""
        self._arguments = {**config, "encoder_weights": None, "name": self.name}
        self.stride = stride

    @property
    def encoder(self) -> Encoder:
        """The backbone (the layer named "encoder")."""
        return self.get_layer("encoder")

    def get_config(self):
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in self._arguments.items()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def geometry(self) -> Geometry:
        """Sides are multiples of the deepest stride; the output has the input's size."""
        return Geometry(min_side=self.stride, step=self.stride, grid=self.stride)
