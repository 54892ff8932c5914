"""Overlap-tile inference: predict an image of any size in tiles and stitch them.

This is the U-Net paper's overlap-tile strategy (Ronneberger et al. 2015, Fig. 2):
the image is extended by mirroring at its borders, cut into tiles that overlap,
each tile is predicted, and only the *valid centre* of each tile's output is
kept, so the kept centres tile the image exactly once.

Tiles are rectangles: a tile (or an overlap) is ``N`` for ``N x N`` or ``(height, width)``,
so a model built for a fixed 192x256 input is tiled with 192x256 tiles. What a model takes
and gives comes from the model itself: ``geometry_of(model)`` (``pixelwise.models.geometry``)
returns the geometry its class states, or one probed from Keras' ``compute_output_shape``
for any other Keras model; a fixed input size comes from ``model.input_shape``.

Geometry along one side of a tile, rows and columns each (all sizes in pixels)::

    input tile  = tile                      (what the model sees)
    model output = output_size(tile)        (== tile for padding="same"; smaller
                                             for the valid-padding original U-Net)
    border      = (tile - output) // 2      context the model itself consumes
    crop        = overlap // 2              output pixels dropped at each edge
    core        = output - 2 * crop         kept centre, and the stride between tiles

Memory: the image is held once as uint8; each step holds only a batch of tiles
and their logits; the stitched result is a label map plus a float32 confidence
map (H x W each). Full-image probabilities are kept only when asked for.

Example:
    >>> from pixelwise.inference.tiling import predict_tiled       # doctest: +SKIP
    >>> result = predict_tiled(model, image_uint8, tile=(192, 256), overlap=64)  # doctest: +SKIP
    >>> result.labels.shape == image_uint8.shape[:2]      # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pixelwise.sizes import as_pair, pair_text
from pixelwise.models.geometry import geometry_of

#: Largest input side tried when looking for a tile size a model accepts.
_MAX_SEARCH = 4096


@dataclasses.dataclass(frozen=True)
class TileGeometry:
    """Sizes along one side of a tile (its rows or its columns), see the module docstring.

    Args:
        tile: Input tile side fed to the model.
        output: Model output side for that input.
        crop: Output pixels discarded at each edge (``overlap // 2``).
    """

    tile: int
    output: int
    crop: int

    @property
    def border(self) -> int:
        return (self.tile - self.output) // 2

    @property
    def core(self) -> int:
        return self.output - 2 * self.crop

    @property
    def margin(self) -> int:
        """Distance from a tile's input edge to its kept centre."""
        return self.border + self.crop


@dataclasses.dataclass
class TiledPrediction:
    """Stitched result: ``labels`` (H, W) int, ``confidence`` (H, W) float32 max softmax,
    and ``probabilities`` (H, W, K) float32 or ``None``."""

    labels: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None


def model_spatial_input(model) -> tuple[int | None, int | None]:
    """(height, width) of the model's input; ``None`` for a dimension it leaves free."""
    shape = tuple(model.input_shape)
    if len(shape) != 4:
        raise ValueError(
            f"Expected a model taking images [batch, height, width, channels], received input "
            f"shape {shape}."
        )
    return shape[1], shape[2]


def fixed_input(model) -> tuple[int, int] | None:
    """(height, width) of a model built for one input size; ``None`` if a side is free."""
    height, width = model_spatial_input(model)
    return None if height is None or width is None else (int(height), int(width))


def output_shape(model, height: int, width: int) -> tuple[int, int] | None:
    """(height, width) of the model's output for an input of that size; ``None`` if it can't take it."""
    fixed = model_spatial_input(model)
    if (fixed[0] is not None and fixed[0] != height) or (fixed[1] is not None and fixed[1] != width):
        return None
    return geometry_of(model).output_shape(height, width)


def output_size(model, size: int) -> int | None:
    """Output side of ``model`` for a square input of side ``size``; ``None`` if it can't take it."""
    shape = output_shape(model, size, size)
    return shape[0] if shape is not None and shape[0] == shape[1] else None


def _accepted_sizes_near(model, size: int, count: int = 3) -> list[int]:
    """A few input sides near ``size`` that ``model`` accepts (for error messages)."""
    found = []
    for delta in range(0, 257):
        for candidate in (size - delta, size + delta):
            if candidate > 0 and candidate not in found and output_size(model, candidate):
                found.append(candidate)
        if len(found) >= count:
            break
    return sorted(found)


def _refusal(model, tile: tuple[int, int]) -> ValueError:
    """Why ``model`` cannot take ``tile``, with tiles that work."""
    fixed = fixed_input(model)
    if fixed is not None:
        hint = (f"this model only takes {fixed[0]}x{fixed[1]}; pass tile={fixed} "
                "or leave tile= out (the default is the model's input)")
    else:
        if tile[0] == tile[1]:
            near = _accepted_sizes_near(model, tile[0])
            hint = f"sizes near it that work: {near}" if near else "no nearby size works"
        else:
            near = [_accepted_sizes_near(model, side) for side in tile]
            hint = (f"heights near {tile[0]} that work: {near[0] or 'none'}, widths near "
                    f"{tile[1]} that work: {near[1] or 'none'}")
        rule = geometry_of(model).rule
        if rule:
            hint += f"; its input sides are {rule}"
    return ValueError(f"The model cannot take {tile[0]}x{tile[1]} tiles; {hint}.")


def tile_geometry(model, tile, overlap=None) -> tuple[TileGeometry, TileGeometry]:
    """Check that ``model`` takes ``tile``-sized inputs and work out the tile geometry.

    Args:
        model: A Keras model taking ``[B, H, W, C]`` images.
        tile: Input tile, ``N`` (N x N) or ``(height, width)``; one the model accepts (e.g.
            sides that are multiples of 64 for the chapter U-Net, 188 + 16k for the
            valid-padding original U-Net, exactly its input for a fixed-size model).
        overlap: Output pixels shared by neighbouring tiles (dropped ``overlap // 2`` at
            each edge), ``N`` for both sides or ``(rows, columns)``. ``None``:
            :func:`default_overlap` of each side.

    Returns:
        ``(rows, columns)``: the :class:`TileGeometry` along the tile's height and width.

    Example:
        >>> from pixelwise.models import build
        >>> unet = build("unet", input_size=(None, None, 3), num_classes=2, base_filters=4)
        >>> rows, cols = tile_geometry(unet, (128, 192))
        >>> (rows.core, cols.core), (cols.tile, cols.output, cols.crop)
        ((96, 144), (192, 192, 24))
    """
    tile = as_pair(tile)
    output = output_shape(model, *tile)
    if output is None:
        raise _refusal(model, tile)
    if overlap is None:
        overlap = tuple(default_overlap(model, t, o) for t, o in zip(tile, output))
    overlap = as_pair(overlap, "overlap", minimum=0)
    for side, t, o, lap in zip(("height", "width"), tile, output, overlap):
        if lap // 2 * 2 >= o:
            raise ValueError(
                f"Expected an overlap in 0..{o - 1} for {pair_text(tile)}px tiles (model output "
                f"{o}px along the {side}), received {pair_text(overlap)}; use a smaller "
                "overlap= or a larger tile=."
            )
    rows, cols = (TileGeometry(tile=t, output=o, crop=lap // 2)
                  for t, o, lap in zip(tile, output, overlap))
    return rows, cols


def default_overlap(model, tile: int, output: int) -> int:
    """Overlap used along one side of a tile when none is given.

    Same-padding models (output side == tile side): ``tile // 4`` (their zero padding
    makes tile edges unreliable). Valid-padding models: ``output % grid`` of the model's
    geometry, so that the kept centre is a multiple of the grid and every tile sits on
    the same pooling grid (the original U-Net is shift-equivariant only for shifts by
    multiples of 16: overlap 4 for every valid tile); their border already gives each
    kept pixel its full context. Models that state no grid (grid 1): 0.
    """
    if output == tile:
        return tile // 4
    return output % geometry_of(model).grid


def reflect_indices(indices: np.ndarray, n: int) -> np.ndarray:
    """Mirror indices into ``0..n-1`` without repeating the edge (``np.pad(mode="reflect")``)."""
    indices = np.asarray(indices)
    if n == 1:
        return np.zeros_like(indices)
    period = 2 * (n - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= n, period - folded, folded)


def _tile_origins(length: int, core: int) -> list[int]:
    return [i * core for i in range(math.ceil(length / core))]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=-1, keepdims=True)
    return shifted


def predict_tiled(
    model,
    image: np.ndarray,
    tile,
    overlap=None,
    *,
    batch_size: int = 4,
    return_probabilities: bool = False,
    outputs_are_probabilities: bool = False,
) -> TiledPrediction:
    """Predict ``image`` with overlapping, mirror-padded tiles and stitch the valid centres.

    Args:
        model: Keras model, ``[B, Th, Tw, C]`` float images in [0, 1] -> ``[B, Th', Tw', K]`` logits.
        image: ``(H, W, C)`` array, uint8 or float in [0, 1] (``C`` = the model's input channels).
        tile: Input tile, ``N`` or ``(height, width)`` (see :func:`tile_geometry`).
        overlap: ``N`` or ``(rows, columns)``, see :func:`tile_geometry`; ``None``:
            :func:`default_overlap` of each side.
        batch_size: Tiles per forward pass (memory grows with it, not with the image).
        return_probabilities: Also return the stitched (H, W, K) float32 softmax;
            this is the one output whose size grows with the image times classes.
        outputs_are_probabilities: The model already ends in a softmax.

    Returns:
        :class:`TiledPrediction` at the image's size.
    """
    if image.ndim != 3:
        raise ValueError(f"Expected an (H, W, C) image array, received shape {image.shape}.")
    rows, cols = tile_geometry(model, tile, overlap)
    height, width = image.shape[:2]
    labels = None
    confidence = np.zeros((height, width), np.float32)
    probabilities = None

    origins = [(y, x) for y in _tile_origins(height, rows.core)
               for x in _tile_origins(width, cols.core)]
    row_offsets, col_offsets = np.arange(rows.tile), np.arange(cols.tile)
    for start in range(0, len(origins), batch_size):
        batch_origins = origins[start:start + batch_size]
        batch = np.stack([
            # Mirror the image at its borders by reflecting indices, so no padded copy exists.
            image[np.ix_(reflect_indices(y - rows.margin + row_offsets, height),
                         reflect_indices(x - cols.margin + col_offsets, width))]
            for y, x in batch_origins
        ])
        batch = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32)
        if len(origins) > batch_size and len(batch) < batch_size:
            # Pad the last batch to full size: one traced shape instead of two.
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), axis=0)])
        outputs = np.asarray(model.predict_on_batch(batch), dtype=np.float32)[:len(batch_origins)]
        outputs = outputs[:, rows.crop:rows.crop + rows.core, cols.crop:cols.crop + cols.core]
        probs = outputs if outputs_are_probabilities else softmax(outputs)
        if labels is None:
            num_classes = probs.shape[-1]
            labels = np.zeros((height, width), np.uint8 if num_classes <= 256 else np.int32)
            if return_probabilities:
                probabilities = np.zeros((height, width, num_classes), np.float32)
        for (y, x), p in zip(batch_origins, probs):
            h, w = min(rows.core, height - y), min(cols.core, width - x)
            p = p[:h, :w]
            labels[y:y + h, x:x + w] = p.argmax(axis=-1)
            confidence[y:y + h, x:x + w] = p.max(axis=-1)
            if probabilities is not None:
                probabilities[y:y + h, x:x + w] = p
    return TiledPrediction(labels=labels, confidence=confidence, probabilities=probabilities)


def whole_image_size(model, requested) -> tuple[int, int] | None:
    """Size an image is resized to for whole-image prediction.

    A model with a fixed input takes that size (for a fixed-size valid-padding model: its
    output size, mirrored out to its input); otherwise ``requested`` (``None``: native).
    """
    fixed = fixed_input(model)
    if fixed is not None:
        return output_shape(model, *fixed) or fixed
    if requested is None:
        return None
    return as_pair(requested, "size")


def covering_tile(model, size) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(tile, overlap)``, each ``(height, width)``, of the smallest single tile whose kept
    centre covers an image of ``size`` (``N`` for N x N, or ``(height, width)``).

    Used for whole-image prediction with models that cannot take the image's size
    directly (the valid-padding original U-Net, or a U-Net whose sides must be multiples
    of 64): the image is mirrored out to that tile, each side only as far as it must be.
    For valid-padding models with a pooling grid the overlap is the model's default, so a
    whole-image prediction sits on the same grid as a tiled one; otherwise it is 0. A
    model with a fixed input has one tile, its input, which must cover the image.

    Example:
        >>> from pixelwise.models import build
        >>> covering_tile(build("unet", input_size=(None, None, 3), num_classes=2, base_filters=4), (100, 150))
        ((128, 192), (0, 0))
    """
    height, width = as_pair(size, "size")
    fixed = fixed_input(model)
    if fixed is not None:
        output = output_shape(model, *fixed)
        if output is not None and output[0] >= height and output[1] >= width:
            return fixed, (0, 0)
        raise ValueError(
            f"This model only takes {fixed[0]}x{fixed[1]} inputs, whose output does not cover "
            f"{height}x{width}; predict in tiles of its input (mode='slide', "
            f"tile={fixed})."
        )
    (tile_h, overlap_h), (tile_w, overlap_w) = _covering_side(model, height), _covering_side(model, width)
    output = output_shape(model, tile_h, tile_w)
    if output is None or output[0] - overlap_h < height or output[1] - overlap_w < width:
        # Sides are found with square inputs; a model whose sides are not independent
        # gets the square tile of the longer side.
        (tile_h, overlap_h) = (tile_w, overlap_w) = _covering_side(model, max(height, width))
    return (tile_h, tile_w), (overlap_h, overlap_w)


def _covering_side(model, side: int) -> tuple[int, int]:
    """``(tile side, overlap)`` of the smallest square tile whose kept centre covers ``side``."""
    geometry = geometry_of(model)
    if geometry.border and geometry.grid > 1:
        # Valid padding on a pooling grid: keep the default overlap, so the kept centre sits
        # on the grid of a tiled prediction; one grid step more output leaves room for it.
        candidate = geometry.input_side(int(side) + geometry.grid)
        output = output_size(model, candidate)
        if output is not None:
            overlap = default_overlap(model, candidate, output)
            if output - overlap // 2 * 2 >= side:
                return candidate, overlap // 2 * 2
    for candidate in range(side, _MAX_SEARCH + 1):
        output = output_size(model, candidate)
        if output is not None and output >= side:
            return candidate, 0
    raise ValueError(
        f"Found no input size up to {_MAX_SEARCH}px for which the model's output covers "
        f"{side}px; pass tile=(H, W) to predict in tiles."
    )
