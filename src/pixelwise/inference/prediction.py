"""Prediction on arrays: label maps and confidence, described by a :class:`Prediction`.

What :func:`pixelwise.predict` computes once the image is an array (reading files and
writing outputs is :mod:`pixelwise.inference.outputs`):

* :func:`predict_probabilities`: the softmax probabilities of one image at its own size,
  under the :class:`~pixelwise.inference.options.PredictOptions` (a mode and a test-time
  augmentation, :class:`pixelwise.inference.tta.TTA`). Mode ``whole``: the image is
  resized to ``model_size`` (bilinear, as the chapter does; a fixed-size model's own input) and the
  probabilities resized back (bilinear). Mode ``slide``: native resolution in overlapping
  tiles (:mod:`pixelwise.inference.tiling`), ``N`` x ``N`` or ``height`` x ``width`` (by default the
  size the model was made for). With TTA every view (a scale, flipped or not) is predicted
  the same way, its probabilities brought back to the image's size (and flipped back),
  and the views averaged; only then is the argmax taken;
* :func:`predict_array`: labels and confidence from those (class ids are never interpolated);
* :class:`Prediction` adds what :mod:`pixelwise.inference.boxes` finds in them: the chapter's
  ``pixels_per_label`` by class name, and the boxes of the connected regions (exercise 20).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pixelwise.class_sets import ClassSet
from pixelwise.data.transforms import resize_image
from pixelwise.defaults import DEFAULT_MIN_AREA, DEFAULT_PREDICT_SIZE, DEFAULT_TILE_BATCH
from pixelwise.inference import tiling
from pixelwise.inference.boxes import Box, count_pixels, find_boxes
from pixelwise.inference.options import NATIVE, PredictOptions, as_options
from pixelwise.sizes import as_pair, square_or_pair


@dataclasses.dataclass
class Prediction:
    """What :func:`pixelwise.predict` returns for one image (all at the input's original size).

    Attributes:
        labels: (H, W) integer class ids.
        confidence: (H, W) float32 softmax probability of the predicted class.
        counts: Pixels per class name, every class listed; sums to H * W.
        boxes: :class:`Box` per connected region of each non-background class.
        class_set: The class set the ids refer to.
        probabilities: (H, W, K) float32 softmax, only with ``return_probabilities=True``.
    """

    labels: np.ndarray
    confidence: np.ndarray
    counts: dict[str, int]
    boxes: list[Box]
    class_set: ClassSet
    probabilities: np.ndarray | None = None

    @classmethod
    def from_labels(cls, labels: np.ndarray, confidence: np.ndarray | None, class_set: ClassSet,
                    min_area: int = DEFAULT_MIN_AREA,
                    probabilities: np.ndarray | None = None) -> Prediction:
        """Counts and boxes of a label map (see :func:`count_pixels`, :func:`find_boxes`)."""
        if confidence is None:
            confidence = np.ones(np.shape(labels), np.float32)
        return cls(labels=labels, confidence=confidence, counts=count_pixels(labels, class_set),
                   boxes=find_boxes(labels, confidence, class_set, min_area=min_area),
                   class_set=class_set, probabilities=probabilities)

    def to_json(self) -> dict:
        height, width = self.labels.shape
        return {
            "height": int(height), "width": int(width), "class_set": self.class_set.name,
            "counts": self.counts, "boxes": [box.to_json() for box in self.boxes],
        }


# ----------------------------------------------------------------------------- label maps


def ends_in_softmax(model) -> bool:
    """Whether the model's last layer already applies softmax (its outputs are probabilities)."""
    activation = getattr(model.layers[-1], "activation", None) if model.layers else None
    return activation is keras.activations.softmax


def default_tile(model, model_size) -> int | tuple[int, int]:
    """Tile of mode ``slide`` when none is given: the size the model was made for.

    A fixed-size model's input (e.g. ``(192, 256)`` for the CamVid recipe's checkpoint),
    else ``model_size``, the size the model sees (the run's training ``image_size`` in
    evaluation), both as ``N`` when square, else ``(height, width)``.

    Example:
        >>> free, fixed = keras.Input((None, None, 3)), keras.Input((64, 64, 3))
        >>> default_tile(keras.Model(free, keras.layers.Conv2D(2, 1)(free)), model_size=(192, 256))
        (192, 256)
        >>> default_tile(keras.Model(fixed, keras.layers.Conv2D(2, 1)(fixed)), model_size=(192, 256))
        64
    """
    fixed = tiling.fixed_input(model)
    if fixed is not None:
        return square_or_pair(fixed)
    if model_size is None or model_size == NATIVE:
        raise ValueError(
            "Expected a tile size for mode 'slide', received none, and neither the model nor "
            "the run fixes an image size; pass tile=N or (height, width) (e.g. the training "
            "image size)."
        )
    return square_or_pair(as_pair(model_size, "model_size"))


def resolved_options(options: PredictOptions | None, model_size=DEFAULT_PREDICT_SIZE) -> PredictOptions:
    """``options`` (default :class:`PredictOptions`) with ``model_size`` filled in if not given."""
    return as_options(options).with_default_size(model_size)


def predict_probabilities(model, image: np.ndarray, options: PredictOptions | None = None, *,
                          batch_size: int = DEFAULT_TILE_BATCH) -> np.ndarray:
    """Softmax probabilities of a uint8 (H, W, C) image at its own size, averaged over TTA views.

    Args:
        model: ``keras.Model`` whose outputs are one logit (or probability) per class.
        image: uint8 (H, W, C), C the model's input channels.
        options: :class:`~pixelwise.inference.options.PredictOptions`: mode ``whole`` (the
            image resized to ``model_size``, default 512; a model with a fixed input size
            uses that; ``"native"``: the image's own size; sizes the model cannot take are
            mirrored out to one it can) or ``slide`` (``tile``, default :func:`default_tile`;
            ``overlap``, default :func:`pixelwise.inference.tiling.default_overlap`), and
            ``tta`` (default none).
        batch_size: Tiles per forward pass (default 4).

    Returns:
        (H, W, K) float32, each pixel's probabilities summing to 1.

    Example:
        >>> probs = predict_probabilities(model, image, PredictOptions(tta="flip"))  # doctest: +SKIP
        >>> probs.shape[:2] == image.shape[:2]                                      # doctest: +SKIP
        True
    """
    options = resolved_options(options)
    tile = options.tile
    if options.mode == "slide" and tile is None:
        tile = default_tile(model, options.model_size)
    size = None if options.model_size == NATIVE else options.model_size
    total = None
    for scale, flipped in options.tta.views:
        view = image[:, ::-1] if flipped else image
        if options.mode == "slide":
            probs = _slide_probabilities(model, view, tile, options.overlap, scale, batch_size)
        else:
            probs = _whole_probabilities(model, view, size, scale, batch_size)
        if flipped:
            probs = probs[:, ::-1]
        total = probs if total is None else total + probs
    return np.ascontiguousarray(total / len(options.tta.views), dtype=np.float32)


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, int(round(size[0] * scale))), max(1, int(round(size[1] * scale)))


def _to_image_size(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    if probs.shape[:2] == (height, width):
        return probs
    # Probabilities, not class ids, are interpolated; the argmax comes after.
    return tf.image.resize(probs, (height, width), method="bilinear").numpy()


def _slide_probabilities(model, image, tile, overlap, scale, batch_size) -> np.ndarray:
    height, width = image.shape[:2]
    if scale != 1:
        image = resize_image_uint8(image, _scaled((height, width), scale))
    probs = tiling.predict_tiled(
        model, image, tile, overlap, batch_size=batch_size, return_probabilities=True,
        outputs_are_probabilities=ends_in_softmax(model),
    ).probabilities
    return _to_image_size(probs, height, width)


def _whole_probabilities(model, image, size, scale, batch_size) -> np.ndarray:
    """One view of mode ``whole``: the image at ``scale`` times the whole-image size.

    A model with a fixed input (the CamVid recipe's 192x256) sees the image at that size
    for scale 1. For another scale the image is resized to ``scale`` times that size and
    predicted in tiles of the fixed input (one mirrored tile when it is smaller), not
    resized to the fixed input again: that would undo the scale and give every scale the
    same view. So a scale keeps its meaning for every model: the content is seen ``scale``
    times as large as at the size the model was trained at.
    """
    height, width = image.shape[:2]
    target = tiling.whole_image_size(model, size) or (height, width)
    if scale != 1:
        target = _scaled(target, scale)
    if target != (height, width):
        image = resize_image_uint8(image, target)
    resized = image.astype(np.float32) / 255.0
    softmax_out = ends_in_softmax(model)
    if tiling.output_shape(model, *target) == target:
        outputs = np.asarray(model.predict_on_batch(resized[None]), np.float32)[0]
        probs = outputs if softmax_out else tiling.softmax(outputs)
    else:
        tile, overlap = _whole_image_tiles(model, target)
        probs = tiling.predict_tiled(
            model, resized, tile, overlap, batch_size=batch_size,
            return_probabilities=True, outputs_are_probabilities=softmax_out,
        ).probabilities
    return _to_image_size(probs, height, width)


def _whole_image_tiles(model, target: tuple[int, int]):
    """``(tile, overlap)`` for a whole image of size ``target`` that the model can't take directly.

    Valid-padding models, or sizes that are not the model's: one tile with mirrored borders
    whose output covers the image. A fixed-size model whose output does not cover it (a
    TTA scale above 1): tiles of its input, with the default overlap.
    """
    fixed = tiling.fixed_input(model)
    if fixed is not None:
        output = tiling.output_shape(model, *fixed) or (0, 0)
        if output[0] < target[0] or output[1] < target[1]:
            return fixed, None
    return tiling.covering_tile(model, target)


def predict_array(model, image: np.ndarray, options: PredictOptions | None = None, *,
                  return_probabilities: bool = False, batch_size: int = DEFAULT_TILE_BATCH):
    """Labels, confidence (and probabilities) of a uint8 (H, W, C) image, at its own size.

    Args:
        model: ``keras.Model`` whose outputs are one logit (or probability) per class.
        image: uint8 (H, W, C), C the model's input channels.
        options: How to predict (:class:`~pixelwise.inference.options.PredictOptions`; see
            :func:`predict_probabilities`); default: whole image at ``model_size`` 512 (the
            chapter's), a fixed-size model at its own size.
        return_probabilities: Also return the (H, W, K) float32 softmax.
        batch_size: Tiles per forward pass (default 4).

    Returns:
        ``(labels, confidence, probabilities)``: (H, W) uint8 class ids (int32 beyond 256
        classes), (H, W) float32 probability of the predicted class, and the probabilities
        or ``None``.
    """
    options = resolved_options(options)
    if options.mode == "slide" and options.tta.views == [(1.0, False)] and not return_probabilities:
        # One tiled pass keeps only labels and confidence: no (H, W, K) array.
        tile = options.tile if options.tile is not None else default_tile(model, options.model_size)
        result = tiling.predict_tiled(
            model, image, tile, options.overlap,
            batch_size=batch_size, outputs_are_probabilities=ends_in_softmax(model),
        )
        return result.labels, result.confidence, None
    probs = predict_probabilities(model, image, options, batch_size=batch_size)
    labels = probs.argmax(axis=-1).astype(np.uint8 if probs.shape[-1] <= 256 else np.int32)
    confidence = probs.max(axis=-1).astype(np.float32)
    return labels, confidence, (probs if return_probabilities else None)


def memory_per_pixel(num_classes: int, options: PredictOptions | None = None, *,
                     probabilities: bool = False) -> int:
    """Bytes per image pixel that predicting one image and drawing its outputs take at most.

    An upper estimate for :func:`pixelwise.inference.memory.check_fits_in_memory`, for the options
    of :func:`predict_array`. Measured peak resident memory per pixel on a 3000x3000 PNG
    (``predict_files``, CPU, TensorFlow 2.21): 57 bytes whole-image with 2 or 3 classes,
    179 with 21, 268 with 21 and flip TTA (either mode); 54-66 tiled without TTA, any class
    count. Decoding, the drawn outputs and their PNG encodings take up to 72 bytes; every
    other way builds the (H, W, K) float32 softmax at the image's size (two copies with the
    resize and the argmax; a third for the sum of TTA views). The model's own activations are left out: they depend on the
    input it is given (``model_size``, ``tile``), not on the image's size.

    Example:
        >>> tiled, flip = PredictOptions(tile=512), PredictOptions(tta="flip")
        >>> memory_per_pixel(21), memory_per_pixel(21, tiled), memory_per_pixel(21, flip)
        (240, 72, 324)
    """
    options = as_options(options)
    need = 72
    if options.mode == "slide" and options.tta.views == [(1.0, False)] and not probabilities:
        return need
    need += 2 * 4 * num_classes
    if len(options.tta.views) > 1:
        need += 4 * num_classes
    return need


def resize_image_uint8(image: np.ndarray, size) -> np.ndarray:
    """Resize a uint8 image exactly as the training pipeline does (bilinear, antialiased, rounded)."""
    resized = resize_image(image, size).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- counts and boxes


