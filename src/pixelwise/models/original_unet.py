"""The original U-Net of Ronneberger, Fischer and Brox (MICCAI 2015), exercise 7.

Contracting path: four levels of two 3x3 convolutions + ReLU (64, 128, 256, 512
filters) each followed by 2x2 max pooling, then two 3x3 convolutions with 1024
filters. Expansive path: per level a 2x2 stride-2 up-convolution halving the
filters, concatenation with the centre crop of the encoder map of that level,
and two 3x3 convolutions + ReLU. A final 1x1 convolution maps the 64 features to
``num_classes`` logits. With unpadded ("valid") convolutions a 572x572 tile gives a
388x388 output (the centre of the tile); 31,030,658 parameters for one input channel
and two classes.

Valid padding only fits some sizes (every feature map before pooling must be
even); ``valid_output_size`` and ``valid_input_size`` convert between tile and
output sizes for overlap-tile inference.

Example:
    >>> from pixelwise.models import original_unet, valid_input_size, valid_output_size
    >>> valid_output_size(572), valid_input_size(388)
    (388, 572)
"""

from __future__ import annotations

import keras

from pixelwise.models.geometry import Geometry
from pixelwise.models.layers import ScheduledDropout
from pixelwise.models.unet import ArgumentsConfig, check_options

#: Max-pooling steps of the paper's U-Net.
DEPTH = 4
#: Each level has two 3x3 valid convolutions: each loses 2 pixels per side length.
_CONV_LOSS = 4


def _output_side_or_none(input_side: int) -> int | None:
    side = input_side
    for _ in range(DEPTH):
        side -= _CONV_LOSS
        if side < 2 or side % 2:
            return None
        side //= 2
    side -= _CONV_LOSS
    if side < 1:
        return None
    for _ in range(DEPTH):
        side = 2 * side - _CONV_LOSS
        if side < 1:
            return None
    return side


def _input_side_for_bottom(bottom: int) -> int:
    side = bottom + _CONV_LOSS
    for _ in range(DEPTH):
        side = 2 * side + _CONV_LOSS
    return side


def _valid_input_sides(up_to: int) -> list[int]:
    sides, bottom = [], 1
    while (side := _input_side_for_bottom(bottom)) <= up_to:
        if _output_side_or_none(side) is not None:
            sides.append(side)
        bottom += 1
    return sides


def _nearest_valid_inputs(side: int) -> list[int]:
    candidates = _valid_input_sides(max(side, 0) + 2**DEPTH + 1)
    below = [s for s in candidates if s <= side][-1:]
    above = [s for s in candidates if s >= side][:1]
    return sorted(set(below + above))


def valid_output_size(input_size: int) -> int:
    """Output side of the valid-padding original U-Net for an input side.

    Args:
        input_size: int. Height or width of the input tile.

    Returns:
        The output side; 572 -> 388.

    Raises:
        ValueError: when valid convolutions and 2x2 pooling cannot take that side,
            naming the nearest sides that work (they are 16 * k + 124, k >= 4).

    Example:
        >>> valid_output_size(572)
        388
    """
    output = _output_side_or_none(input_size) if isinstance(input_size, int) else None
    if output is None:
        nearest = _nearest_valid_inputs(input_size) if isinstance(input_size, int) else [572]
        raise ValueError(
            f"The valid-padding U-Net cannot take a side of {input_size!r}: every map before a "
            f"2x2 pooling must have an even side and the output must be at least 1 pixel. Valid "
            f"input sides are 188, 204, 220, ..., 572, ... (16 * k + 124); nearest: "
            f"{' or '.join(map(str, nearest))}. Use valid_input_size(wanted_output) to choose one."
        )
    return output


def valid_input_size(output_size: int) -> int:
    """Input side the valid-padding original U-Net needs for an output of at least ``output_size``.

    Valid outputs are 4, 20, 36, ... (16 * k - 60); a wanted size between two of them
    is rounded up, so ``valid_output_size(valid_input_size(n)) >= n`` and equals ``n``
    when ``n`` is itself a valid output. The input tile exceeds its output by 184 pixels
    (92 of context on each side), the overlap of overlap-tile inference.

    Args:
        output_size: int >= 1. Wanted output side.

    Example:
        >>> valid_input_size(388), valid_input_size(380), valid_output_size(572)
        (572, 572, 388)
    """
    if not isinstance(output_size, int) or isinstance(output_size, bool) or output_size < 1:
        raise ValueError(f"Expected a positive int output size, received {output_size!r}.")
    bottom = 1
    while True:
        side = _input_side_for_bottom(bottom)
        output = _output_side_or_none(side)
        if output is not None and output >= output_size:
            return side
        bottom += 1


def skip_crops() -> list[int]:
    """Pixels cropped from each side of the encoder map at levels 0..3 (valid padding).

    Independent of the input size, which is why a fixed ``Cropping2D`` also serves
    ``(None, None, C)`` inputs.

    >>> skip_crops()
    [88, 40, 16, 4]
    """
    input_side = valid_input_size(1)
    encoder, side = [], input_side
    for _ in range(DEPTH):
        side -= _CONV_LOSS
        encoder.append(side)
        side //= 2
    decoder = []
    side -= _CONV_LOSS
    for _ in range(DEPTH):
        side *= 2
        decoder.append(side)
        side -= _CONV_LOSS
    return [(e - d) // 2 for e, d in zip(encoder, reversed(decoder))]


def check_input_size(input_size, padding: str) -> tuple:
    """Validate ``(height, width, channels)`` for ``original_unet`` and return it as a tuple."""
    shape = tuple(input_size) if isinstance(input_size, (list, tuple)) else None
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"Expected input_size as (height, width, channels), e.g. (572, 572, 1), received "
            f"{input_size!r}."
        )
    channels = shape[2]
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"Expected a positive int number of channels, received {channels!r}.")
    for side in shape[:2]:
        if side is None:
            continue
        if padding == "valid":
            valid_output_size(side)
        elif not isinstance(side, int) or side < 2**DEPTH or side % 2**DEPTH:
            raise ValueError(
                f"With padding='same' the original U-Net pools {DEPTH} times, so height and width "
                f"must be multiples of {2**DEPTH} (16, 32, ..., 256, ...) or None; received "
                f"input_size {shape!r}."
            )
    return shape


def geometry_for_padding(padding: str = "valid") -> Geometry:
    """Input sides, output side and pooling grid of the original U-Net (see ``models.geometry``).

    Args:
        padding: "valid" (default) or "same".

    Example:
        >>> geometry_for_padding("valid"), geometry_for_padding("same").rule
        (Geometry(min_side=188, step=16, border=92, grid=16), 'multiples of 16')
    """
    grid = 2**DEPTH
    if padding == "same":
        return Geometry(min_side=grid, step=grid, grid=grid)
    smallest = valid_input_size(1)
    return Geometry(min_side=smallest, step=grid, border=(smallest - valid_output_size(smallest)) // 2,
                    grid=grid)


def conv_block(x, filters: int, padding: str, batch_norm: bool = False, name: str = "conv"):
    """Two 3x3 convolutions (he_normal), each followed by (BatchNorm and) ReLU."""
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding=padding, kernel_initializer="he_normal",
                                use_bias=not batch_norm, name=f"{name}_conv{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def decoder_block(x, skip, filters: int, crop: int, padding: str, batch_norm: bool = False,
                  name: str = "decoder"):
    """2x2 up-convolution, concatenation with the centre-cropped ``skip``, two 3x3 convs."""
    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, kernel_initializer="he_normal",
                                     name=f"{name}_upconv")(x)
    if crop:
        skip = keras.layers.Cropping2D(crop, name=f"{name}_crop")(skip)
    x = keras.layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, padding, batch_norm=batch_norm, name=name)


@keras.saving.register_keras_serializable(package="pixelwise")
class OriginalUNet(ArgumentsConfig, keras.Model):
    """Ronneberger et al.'s U-Net as a functional model that stores its arguments.

    Args:
        input_size: (height, width, channels), default (572, 572, 1). With valid
            padding each side is 16 * k + 124 (k >= 4) or None; with same padding a
            multiple of 16 or None.
        num_classes: int, required (2 in the paper). Channels of the output logits.
        padding: "valid" (default, the paper: output smaller than input) or "same"
            (output size = input size, no cropping needed).
        base_filters: int, default 64 (the paper). Filters of the first level;
            level i has ``base * 2**i``.
        batch_norm: bool, default False. BatchNormalization after every 3x3 conv.
        dropout_rate: float or None, default None. A ``ScheduledDropout`` after every
            level of the contracting path (bottom included), before pooling, so the
            skips carry it too; None adds none. The paper has dropout only at the end
            of the contracting path.
        name: str, default "original_unet".
    """

    def __init__(self, input_size=(572, 572, 1), *, num_classes: int, padding: str = "valid",
                 base_filters: int = 64, batch_norm: bool = False,
                 dropout_rate: float | None = None, name: str = "original_unet", **kwargs):
        if padding not in ("valid", "same"):
            raise ValueError(f"Expected padding 'valid' or 'same', received {padding!r}.")
        input_size = check_input_size(input_size, padding)
        check_options(num_classes, base_filters, dropout_rate)
        crops = skip_crops() if padding == "valid" else [0] * DEPTH

        inputs = keras.Input(input_size, name="image")
        x, skips = inputs, []
        for level in range(DEPTH + 1):
            x = conv_block(x, base_filters * 2**level, padding, batch_norm, name=f"encoder_{level}")
            if dropout_rate is not None:
                x = ScheduledDropout(dropout_rate, name=f"encoder_{level}_dropout")(x)
            if level < DEPTH:
                skips.append(x)
                x = keras.layers.MaxPooling2D(2, name=f"encoder_{level}_pool")(x)
        for level in reversed(range(DEPTH)):
            x = decoder_block(x, skips[level], base_filters * 2**level, crops[level], padding,
                              batch_norm, name=f"decoder_{level}")
        logits = keras.layers.Conv2D(num_classes, 1, kernel_initializer="he_normal",
                                     dtype="float32", name="logits")(x)
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)

        self.keep_arguments(input_size=input_size, num_classes=num_classes, padding=padding,
                            base_filters=base_filters, batch_norm=batch_norm,
                            dropout_rate=dropout_rate)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "input_shape" in config:
            # .keras files written by pixelwise 0.1 name the input size "input_shape".
            config["input_size"] = config.pop("input_shape")
        return cls(**config)

    def geometry(self) -> Geometry:
        """Valid padding: sides 188 + 16k, output 184 px smaller; same padding: multiples of 16."""
        return geometry_for_padding(self.padding)


def original_unet(input_size=(572, 572, 1), *, num_classes: int, padding: str = "valid",
                  base_filters: int = 64, batch_norm: bool = False,
                  dropout_rate: float | None = None, name: str = "original_unet") -> OriginalUNet:
    """Ronneberger et al.'s U-Net: valid padding, 572x572 in, 388x388 out; padding='same' too.

    The first line is what ``pixelwise models list`` prints; the arguments are
    :class:`OriginalUNet`'s.

    Args:
        input_size: (height, width, channels), default (572, 572, 1).
        num_classes: int, required (2 in the paper).
        padding: "valid" (default) or "same".
        base_filters: int, default 64.
        batch_norm: bool, default False.
        dropout_rate: float or None, default None.
        name: str, default "original_unet".

    Example:
        >>> model = original_unet(num_classes=2)
        >>> model.output_shape, model.count_params()
        ((None, 388, 388, 2), 31030658)
    """
    return OriginalUNet(input_size=input_size, num_classes=num_classes, padding=padding,
                        base_filters=base_filters, batch_norm=batch_norm,
                        dropout_rate=dropout_rate, name=name)
