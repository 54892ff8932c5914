"""Overlap-tile inference: predict an image of any size in tiles and stitch them.

This is the U-Net paper's overlap-tile strategy (Ronneberger et al. 2015, Fig. 2):
the image is extended by mirroring at its borders, cut into tiles that overlap,
each tile is predicted, and only the *valid centre* of each tile's output is
kept, so the kept centres tile the image exactly once.

What a model takes and gives comes from the model itself: ``geometry_of(model)``
(``pixelwise.models.geometry``) returns the geometry its class states, or one probed
from Keras' ``compute_output_shape`` for any other Keras model.

Geometry of one tile (all sizes in pixels, per side)::

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
    >>> from pixelwise.tiling import predict_tiled       # doctest: +SKIP
    >>> result = predict_tiled(model, image_uint8, tile=256, overlap=64)  # doctest: +SKIP
    >>> result.labels.shape == image_uint8.shape[:2]      # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pixelwise.models.geometry import geometry_of

#: Largest input side tried when looking for a tile size a model accepts.
_MAX_SEARCH = 4096


@dataclasses.dataclass(frozen=True)
class TileGeometry:
    """Sizes of one tile, see the module docstring.

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
    """A few input sizes near ``size`` that ``model`` accepts (for error messages)."""
    found = []
    for delta in range(0, 257):
        for candidate in (size - delta, size + delta):
            if candidate > 0 and candidate not in found and output_size(model, candidate):
                found.append(candidate)
        if len(found) >= count:
            break
    return sorted(found)


def tile_geometry(model, tile: int, overlap: int | None = None) -> TileGeometry:
    """Check that ``model`` takes ``tile``-sized inputs and work out the tile geometry.

    Args:
        model: A Keras model taking ``[B, H, W, C]`` images.
        tile: Input tile side; one the model's geometry accepts (e.g. a multiple of 64
            for the chapter U-Net, 188 + 16k for the valid-padding original U-Net).
        overlap: Output pixels shared by neighbouring tiles (dropped ``overlap // 2``
            at each edge). ``None``: :func:`default_overlap`.

    Returns:
        A :class:`TileGeometry`.
    """
    if int(tile) != tile or tile <= 0:
        raise ValueError(f"Expected a positive integer tile size, received {tile!r}.")
    tile = int(tile)
    out = output_size(model, tile)
    if out is None:
        fixed = model_spatial_input(model)
        if fixed[0] is not None:
            hint = f"this model only takes {fixed[0]}x{fixed[1]}; pass --tile {fixed[0]}"
        else:
            near = _accepted_sizes_near(model, tile)
            hint = f"sizes near it that work: {near}" if near else "no nearby size works"
            rule = geometry_of(model).rule
            if rule:
                hint += f"; its input sides are {rule}"
        raise ValueError(f"The model cannot take {tile}x{tile} tiles; {hint}.")
    if overlap is None:
        overlap = default_overlap(model, tile, out)
    if overlap < 0 or overlap // 2 * 2 >= out:
        raise ValueError(
            f"Expected an overlap in 0..{out - 1} for {tile}px tiles (model output {out}px), "
            f"received {overlap}; use a smaller --overlap or a larger --tile."
        )
    return TileGeometry(tile=tile, output=out, crop=overlap // 2)


def default_overlap(model, tile: int, output: int) -> int:
    """Overlap used when none is given.

    Same-padding models (output side == tile): ``tile // 4`` (their zero padding makes
    tile edges unreliable). Valid-padding models: ``output % grid`` of the model's
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
    tile: int,
    overlap: int | None = None,
    *,
    batch_size: int = 4,
    return_probabilities: bool = False,
    outputs_are_probabilities: bool = False,
) -> TiledPrediction:
    """Predict ``image`` with overlapping, mirror-padded tiles and stitch the valid centres.

    Args:
        model: Keras model, ``[B, T, T, C]`` float images in [0, 1] -> ``[B, T', T', K]`` logits.
        image: ``(H, W, C)`` array, uint8 or float in [0, 1] (``C`` = the model's input channels).
        tile: Input tile side (see :func:`tile_geometry`).
        overlap: See :func:`tile_geometry`; ``None``: :func:`default_overlap`.
        batch_size: Tiles per forward pass (memory grows with it, not with the image).
        return_probabilities: Also return the stitched (H, W, K) float32 softmax;
            this is the one output whose size grows with the image times classes.
        outputs_are_probabilities: The model already ends in a softmax.

    Returns:
        :class:`TiledPrediction` at the image's size.
    """
    if image.ndim != 3:
        raise ValueError(f"Expected an (H, W, C) image array, received shape {image.shape}.")
    sizes = tile_geometry(model, tile, overlap)
    height, width = image.shape[:2]
    labels = None
    confidence = np.zeros((height, width), np.float32)
    probabilities = None
    core, margin, crop = sizes.core, sizes.margin, sizes.crop

    origins = [(y, x) for y in _tile_origins(height, core) for x in _tile_origins(width, core)]
    offsets = np.arange(sizes.tile)
    for start in range(0, len(origins), batch_size):
        batch_origins = origins[start:start + batch_size]
        batch = np.stack([
            # Mirror the image at its borders by reflecting indices, so no padded copy exists.
            image[np.ix_(reflect_indices(y - margin + offsets, height),
                         reflect_indices(x - margin + offsets, width))]
            for y, x in batch_origins
        ])
        batch = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32)
        if len(origins) > batch_size and len(batch) < batch_size:
            # Pad the last batch to full size: one traced shape instead of two.
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), axis=0)])
        outputs = np.asarray(model.predict_on_batch(batch), dtype=np.float32)[:len(batch_origins)]
        outputs = outputs[:, crop:crop + core, crop:crop + core]
        probs = outputs if outputs_are_probabilities else softmax(outputs)
        if labels is None:
            num_classes = probs.shape[-1]
            labels = np.zeros((height, width), np.uint8 if num_classes <= 256 else np.int32)
            if return_probabilities:
                probabilities = np.zeros((height, width, num_classes), np.float32)
        for (y, x), p in zip(batch_origins, probs):
            h, w = min(core, height - y), min(core, width - x)
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
    fixed = model_spatial_input(model)
    if fixed[0] is not None and fixed[1] is not None:
        return output_shape(model, fixed[0], fixed[1]) or (fixed[0], fixed[1])
    if requested is None:
        return None
    if isinstance(requested, (tuple, list)):
        return int(requested[0]), int(requested[1])
    return int(requested), int(requested)


def covering_tile(model, side: int) -> tuple[int, int]:
    """``(tile, overlap)`` of the smallest single tile whose kept centre covers ``side`` pixels.

    Used for whole-image prediction with models that cannot take the image's size
    directly (the valid-padding original U-Net, or a U-Net whose sides must be multiples
    of 64): the image is mirrored out to that tile. For valid-padding models with a
    pooling grid the overlap is the model's default, so a whole-image prediction sits on
    the same grid as a tiled one; otherwise it is 0.
    """
    fixed = model_spatial_input(model)
    if fixed[0] is not None and fixed[0] == fixed[1]:
        if (output_size(model, fixed[0]) or 0) >= side:
            return fixed[0], 0
        raise ValueError(
            f"This model only takes {fixed[0]}x{fixed[1]} inputs, whose output does not cover "
            f"{side}px; pass --tile {fixed[0]} to predict in tiles."
        )
    geometry = geometry_of(model)
    if geometry.border and geometry.grid > 1:
        # Valid padding on a pooling grid: keep the default overlap, so the kept centre sits
        # on the grid of a tiled prediction; one grid step more output leaves room for it.
        candidate = geometry.input_side(int(side) + geometry.grid)
        sizes = tile_geometry(model, candidate)
        if sizes.core >= side:
            return candidate, 2 * sizes.crop
    for candidate in range(side, _MAX_SEARCH + 1):
        out = output_size(model, candidate)
        if out is not None and out >= side:
            return candidate, 0
    raise ValueError(
        f"Found no input size up to {_MAX_SEARCH}px for which the model's output covers "
        f"{side}px; pass --tile to predict in tiles."
    )

