"""The chapter's U-Net: stride-2 convolutions down, stride-2 transposed convolutions up.

Layer for layer the model of the chapter's "U-Net 架构" section: six ``downsample``
blocks (3x3 stride-2 conv + LeakyReLU, 128-256-512-512-512-512 filters) take a
256x256 image to 4x4; five ``upsample`` blocks (3x3 stride-2 transposed conv +
ReLU, 512-512-512-512-256 filters) each followed by concatenation with the encoder
map of the same resolution; a last stride-2 transposed conv gives ``num_classes``
logits at the input resolution. 26,917,781 parameters with the defaults.

The chapter builds a sixth decoder block (128 filters) that ``zip`` never uses, so
it never gets weights and is not part of the model; we do not build it.

Example:
    >>> from pixelwise.models import get_unet
    >>> model = get_unet((256, 256, 3), num_classes=21)
    >>> model.count_params()
    26917781
"""

from __future__ import annotations

import keras

from pixelwise.models.geometry import Geometry
from pixelwise.models.layers import ScheduledDropout

#: Stride-2 encoder blocks: input sides must be multiples of 2**NUM_LEVELS.
NUM_LEVELS = 6
SIZE_MULTIPLE = 2**NUM_LEVELS
#: The chapter caps the filter count at 4x the first block's (512 for 128).
MAX_FILTERS_FACTOR = 4


def _sublayer(block_name: str | None, layer: str) -> str | None:
    # Stable names give stable weight paths in .keras files; None lets Keras choose.
    return None if block_name is None else f"{block_name}_{layer}"


def downsample(depth: int, batch_norm: bool = False, dropout_rate: float | None = None,
               name: str | None = None) -> keras.Sequential:
    """Encoder block: 3x3 stride-2 conv (he_normal) + LeakyReLU, halving height and width.

    Args:
        depth: int. Number of filters.
        batch_norm: bool, default False. Add BatchNormalization between conv and
            activation (the conv then has no bias).
        dropout_rate: float or None, default None. Append a ``ScheduledDropout``
            with this initial rate; None adds no dropout layer (the chapter).
        name: str or None. Name of the block.

    Returns:
        A ``keras.Sequential`` usable as a layer.

    Example:
        >>> block = downsample(32)
        >>> block.build((None, 64, 64, 3)); block.compute_output_shape((None, 64, 64, 3))
        (None, 32, 32, 32)
    """
    layers = [keras.layers.Conv2D(depth, 3, strides=2, padding="same",
                                  kernel_initializer="he_normal", use_bias=not batch_norm,
                                  name=_sublayer(name, "conv"))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name=_sublayer(name, "bn")))
    layers.append(keras.layers.LeakyReLU(name=_sublayer(name, "leaky_relu")))
    if dropout_rate is not None:
        layers.append(ScheduledDropout(dropout_rate, name=_sublayer(name, "dropout")))
    return keras.Sequential(layers, name=name)


def upsample(depth: int, batch_norm: bool = False, name: str | None = None) -> keras.Sequential:
    """Decoder block: 3x3 stride-2 transposed conv (he_normal) + ReLU, doubling height and width.

    Args:
        depth: int. Number of filters.
        batch_norm: bool, default False. Add BatchNormalization between the
            transposed conv and the activation (the conv then has no bias).
        name: str or None. Name of the block.

    Returns:
        A ``keras.Sequential`` usable as a layer.

    Example:
        >>> block = upsample(16)
        >>> block.build((None, 8, 8, 32)); block.compute_output_shape((None, 8, 8, 32))
        (None, 16, 16, 16)
    """
    layers = [keras.layers.Conv2DTranspose(depth, 3, strides=2, padding="same",
                                           kernel_initializer="he_normal",
                                           use_bias=not batch_norm,
                                           name=_sublayer(name, "conv_transpose"))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name=_sublayer(name, "bn")))
    layers.append(keras.layers.ReLU(name=_sublayer(name, "relu")))
    return keras.Sequential(layers, name=name)


def encoder_filters(base_filters: int = 128) -> list[int]:
    """Filters of the six encoder blocks: ``base * 2**i`` capped at ``4 * base``.

    >>> encoder_filters()
    [128, 256, 512, 512, 512, 512]
    >>> encoder_filters(16)
    [16, 32, 64, 64, 64, 64]
    """
    return [base_filters * min(2**i, MAX_FILTERS_FACTOR) for i in range(NUM_LEVELS)]


def check_input_size(input_size) -> tuple:
    """Validate ``(height, width, channels)`` for the chapter U-Net and return it as a tuple.

    Height and width must be positive multiples of 64 (six stride-2 blocks) or None
    (any multiple of 64 at call time); channels must be a positive int.

    Raises:
        ValueError: naming the valid sizes nearest to the received one.
    """
    size = tuple(input_size) if isinstance(input_size, (list, tuple)) else None
    if size is None or len(size) != 3:
        raise ValueError(
            f"Expected input_size as (height, width, channels), e.g. (256, 256, 3), received "
            f"{input_size!r}."
        )
    height, width, channels = size
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(
            f"Expected a positive int number of channels in input_size, received {channels!r} "
            f"in {size!r}; pass e.g. (256, 256, 3)."
        )
    for side in (height, width):
        if side is None:
            continue
        if not isinstance(side, int) or isinstance(side, bool) or side < SIZE_MULTIPLE \
                or side % SIZE_MULTIPLE:
            lower = max(SIZE_MULTIPLE, (side // SIZE_MULTIPLE) * SIZE_MULTIPLE) \
                if isinstance(side, int) else SIZE_MULTIPLE
            upper = lower + SIZE_MULTIPLE if isinstance(side, int) and side > lower else lower
            nearest = sorted({lower, upper})
            raise ValueError(
                f"The U-Net halves the image {NUM_LEVELS} times, so height and width must be "
                f"multiples of {SIZE_MULTIPLE} (64, 128, 192, 256, ..., 512, ...) or None; "
                f"received input_size {size!r}. Nearest valid side: "
                f"{' or '.join(map(str, nearest))}; resize or crop the images to it."
            )
    return (height, width, channels)


def check_options(num_classes, base_filters, dropout_rate):
    """Raise ValueError unless the U-Nets' common options are valid (positive ints, a rate in [0, 1))."""
    for label, value in (("num_classes", num_classes), ("base_filters", base_filters)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Expected a positive int for {label}=, received {value!r}.")
    if dropout_rate is not None and not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(
            f"Expected dropout_rate None (no dropout) or in [0, 1), received {dropout_rate!r}."
        )


def decoder_block(x, skip, filters: int, batch_norm: bool = False, name: str | None = None):
    """Upsample ``x`` with an ``upsample`` block and concatenate ``skip`` (same resolution)."""
    x = upsample(filters, batch_norm=batch_norm, name=name)(x)
    return keras.layers.Concatenate(name=None if name is None else f"{name}_concat")([x, skip])


class ArgumentsConfig:
    """``get_config`` of a functional model that keeps its constructor arguments.

    The constructor calls ``self.keep_arguments(input_size=..., ...)`` after building: each
    becomes an attribute, and ``get_config`` returns them all (``input_size`` as a list: JSON
    has no tuples) with the name, so ``from_config`` calls the constructor with the same ones.
    """

    def keep_arguments(self, **arguments) -> None:
        self._argument_names = tuple(arguments)
        for key, value in arguments.items():
            setattr(self, key, value)

    def get_config(self):
        config = {key: getattr(self, key) for key in self._argument_names}
        config["input_size"] = list(config["input_size"])
        return {**config, "name": self.name}


@keras.saving.register_keras_serializable(package="pixelwise")
class UNet(ArgumentsConfig, keras.Model):
    """The chapter's U-Net as a functional model that stores its arguments.

    Args:
        input_size: (height, width, channels), default (256, 256, 3). Sides are
            multiples of 64 or None (fully convolutional: any multiple of 64).
        num_classes: int, required. Channels of the output logits.
        base_filters: int, default 128 (the chapter). Filters of the first encoder
            block; block i has ``base * min(2**i, 4)``, decoders mirror them. 16
            gives a 1/8-width model (~420k parameters) for CPU experiments.
        batch_norm: bool, default False. BatchNormalization in every encoder and
            decoder block (not the output layer).
        dropout_rate: float or None, default None. None: no dropout (the chapter).
            A float in [0, 1): a ``ScheduledDropout`` after every encoder block with
            this initial rate, changeable later with ``set_dropout_rate``.
        name: str, default "unet".

    The output is ``(batch, height, width, num_classes)`` float32 logits (no
    activation); the output layer computes in float32 even under a
    ``mixed_bfloat16`` policy.
    """

    def __init__(self, input_size=(256, 256, 3), *, num_classes: int, base_filters: int = 128,
                 batch_norm: bool = False, dropout_rate: float | None = None,
                 name: str = "unet", **kwargs):
        input_size = check_input_size(input_size)
        check_options(num_classes, base_filters, dropout_rate)
        filters = encoder_filters(base_filters)

        inputs = keras.Input(input_size, name="image")
        x = inputs
        skips = []
        for level, depth in enumerate(filters):
            x = downsample(depth, batch_norm=batch_norm, dropout_rate=dropout_rate,
                           name=f"downsample_{level}")(x)
            skips.append(x)
        # Decoder k upsamples from level L-k to L-k-1 with the filters of level L-k
        # (the chapter's reversed depth list), then joins that level's skip.
        for level in reversed(range(NUM_LEVELS - 1)):
            x = decoder_block(x, skips[level], filters[level + 1], batch_norm=batch_norm,
                              name=f"upsample_{level}")
        logits = keras.layers.Conv2DTranspose(
            num_classes, 3, strides=2, padding="same", kernel_initializer="he_normal",
            dtype="float32", name="logits")(x)
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)

        self.keep_arguments(input_size=input_size, num_classes=num_classes, base_filters=base_filters,
                            batch_norm=batch_norm, dropout_rate=dropout_rate)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def geometry(self) -> Geometry:
        """Sides are multiples of 64; the output has the input's size."""
        return Geometry(min_side=SIZE_MULTIPLE, step=SIZE_MULTIPLE, grid=SIZE_MULTIPLE)


def get_unet(input_size=(256, 256, 3), *, num_classes: int, base_filters: int = 128,
             batch_norm: bool = False, dropout_rate: float | None = None,
             name: str = "unet") -> UNet:
    """The chapter's U-Net: same padding, output as large as the input (sides: multiples of 64).

    The first line is what ``pixelwise models list`` prints; the arguments are
    :class:`UNet`'s.

    Args:
        input_size: (height, width, channels), default (256, 256, 3).
        num_classes: int, required.
        base_filters: int, default 128.
        batch_norm: bool, default False.
        dropout_rate: float or None, default None.
        name: str, default "unet".

    Example:
        >>> model = get_unet((None, None, 3), num_classes=2, base_filters=8)
        >>> model.output_shape
        (None, None, None, 2)
    """
    return UNet(input_size=input_size, num_classes=num_classes, base_filters=base_filters,
                batch_norm=batch_norm, dropout_rate=dropout_rate, name=name)
