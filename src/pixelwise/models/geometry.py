"""What a segmentation model states about the image sizes it takes: its geometry.

Overlap-tile prediction, whole-image prediction and export (``pixelwise.inference.tiling``) need
three facts about a model. They ask the model for them instead of checking its class:

- **valid input sides**: ``min_side + step * k`` for k >= 0 (the chapter U-Net: multiples
  of 64; the paper's valid-padding U-Net: 188, 204, 220, ...);
- **the output side** for an input side: ``side - 2 * border``. ``border`` is the context
  the model consumes at each edge with unpadded convolutions, 0 for "same" padding;
- **its grid**: the model commutes with shifts of its input only in steps of ``grid``
  pixels (its total pooling stride). Tiles of a valid-padding model keep their kept
  centres on that grid, which sets the default tile overlap
  (``pixelwise.inference.tiling.default_overlap``).

A model class states them in a ``geometry()`` method that returns a :class:`Geometry`.
``geometry_of(model)`` calls it, and for any other Keras model falls back to
:class:`ProbedGeometry`, which asks Keras' ``compute_output_shape``. Sides are those of
a model built with free (``None``) height and width; a model built with a fixed input
takes only that size, which ``pixelwise.inference.tiling`` reads from ``model.input_shape``.

Example:
    >>> paper = Geometry(min_side=188, step=16, border=92, grid=16)  # valid-padding U-Net
    >>> paper.output_side(572), paper.output_side(570), paper.input_side(388)
    (388, None, 572)
    >>> paper.rule
    '188 + 16k (k >= 0)'
"""

from __future__ import annotations

import dataclasses


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Input sides a model takes and the output side it gives for each.

    Args:
        min_side: int >= 1. Smallest input side the model takes.
        step: int >= 1. Valid sides are ``min_side + step * k``, k >= 0.
        border: int >= 0, default 0. Output pixels lost at each edge (unpadded
            convolutions): output side = input side - 2 * border. 0 for "same" padding.
        grid: int >= 1, default 1. The model's output follows shifts of its input only
            in steps of ``grid`` pixels (e.g. 16 after four 2x2 poolings).

    Example:
        >>> chapter = Geometry(min_side=64, step=64, grid=64)
        >>> chapter.output_shape(128, 192), chapter.output_shape(100, 128), chapter.rule
        ((128, 192), None, 'multiples of 64')
    """

    min_side: int
    step: int
    border: int = 0
    grid: int = 1

    def __post_init__(self):
        for name in ("min_side", "step", "grid"):
            value = getattr(self, name)
            if not _is_count(value) or value < 1:
                raise ValueError(f"Expected a positive int {name} in Geometry, received {value!r}.")
        if not _is_count(self.border) or not 0 <= 2 * self.border < self.min_side:
            raise ValueError(
                f"Expected an int border in Geometry with 0 <= 2 * border < min_side "
                f"({self.min_side}), received {self.border!r}."
            )

    @property
    def rule(self) -> str:
        """The valid input sides in words, for error messages."""
        if self.min_side == self.step:
            return f"multiples of {self.step}"
        return f"{self.min_side} + {self.step}k (k >= 0)"

    def accepts(self, side) -> bool:
        """Whether the model takes an input of this side."""
        return _is_count(side) and side >= self.min_side and (side - self.min_side) % self.step == 0

    def output_side(self, side: int) -> int | None:
        """Output side for an input side; ``None`` when the model cannot take it."""
        side = int(side)
        return side - 2 * self.border if self.accepts(side) else None

    def output_shape(self, height: int, width: int) -> tuple[int, int] | None:
        """(height, width) of the output for an input of that size; ``None`` if it can't take it."""
        out_h, out_w = self.output_side(height), self.output_side(width)
        return None if out_h is None or out_w is None else (out_h, out_w)

    def input_side(self, output: int) -> int:
        """Smallest valid input side whose output side is at least ``output``."""
        missing = max(0, int(output) + 2 * self.border - self.min_side)
        return self.min_side + -(-missing // self.step) * self.step


class ProbedGeometry:
    """The geometry of a Keras model that does not state one, found by asking Keras.

    It knows no rule for the valid sides, no border and no grid (``grid`` 1): each size
    is tried with ``model.compute_output_shape``.

    Args:
        model: keras.Model taking ``[batch, height, width, channels]`` images.
    """

    grid = 1
    border = None
    rule = None

    def __init__(self, model):
        self.model = model

    def output_shape(self, height: int, width: int) -> tuple[int, int] | None:
        """(height, width) Keras computes for that input; ``None`` if the model can't take it."""
        try:
            shape = self.model.compute_output_shape((1, height, width, self.model.input_shape[-1]))
        except Exception:  # noqa: BLE001 - Keras raises many types for sizes a model can't take
            return None
        if shape[1] is None or shape[2] is None:
            return None
        out_h, out_w = int(shape[1]), int(shape[2])
        # Keras computes shapes even where layers disagree (a stride-64 U-Net at 100 px gives
        # 128): an output larger than the input, or not centred in it, means "can't take it".
        if not (0 < out_h <= height and 0 < out_w <= width) or (height - out_h) % 2 \
                or (width - out_w) % 2:
            return None
        return out_h, out_w

    def output_side(self, side: int) -> int | None:
        """Output side for a square input of this side; ``None`` if the model can't take it."""
        shape = self.output_shape(side, side)
        return shape[0] if shape is not None and shape[0] == shape[1] else None


def geometry_of(model) -> Geometry | ProbedGeometry:
    """The geometry ``model`` states with a ``geometry()`` method, else one probed from Keras.

    Works for models reloaded from ``.keras`` files: pixelwise's model classes are
    registered with Keras, so a reloaded model is an instance of the same class.

    Args:
        model: keras.Model.

    Returns:
        A :class:`Geometry`, or a :class:`ProbedGeometry` for a model without ``geometry()``.

    Example:
        >>> from pixelwise.models import build
        >>> geometry_of(build("unet", input_size=(None, None, 3), num_classes=2, base_filters=4))
        Geometry(min_side=64, step=64, border=0, grid=64)
    """
    stated = getattr(model, "geometry", None)
    return stated() if callable(stated) else ProbedGeometry(model)
