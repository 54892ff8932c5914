"""Shared helpers for evaluate/predict/export tests: tiny real models in real run folders."""

from __future__ import annotations

import json
from pathlib import Path

from pixelwise.class_sets import ClassSet

#: A 3-class set with a background class (gets no boxes) and two object classes.
TINY_CLASSES = ClassSet(
    name="tiny", class_names=("background", "disc", "square"),
    palette=((0, 0, 0), (255, 0, 0), (0, 0, 255)),
)


def tiny_unet(num_classes: int = 3, channels: int = 3, input_size=None, seed: int = 0):
    """The chapter's U-Net at 4 base filters (sides: multiples of 64), seeded weights."""
    import keras

    from pixelwise import models

    keras.utils.set_random_seed(seed)
    size = input_size or (None, None)
    return models.build("unet", input_size=(*size, channels), num_classes=num_classes, base_filters=4)


def tiny_conv_model(num_classes: int = 3, channels: int = 3, seed: int = 0):
    """Two same-padded 3x3 convolutions: any input size, receptive field 5x5 (radius 2)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, channels))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    logits = keras.layers.Conv2D(num_classes, 3, padding="same")(x)
    return keras.Model(inputs, logits)


def reference_overlap_tile(model, image, tile, overlap):
    """Overlap-tile prediction step by step in NumPy, independent of ``pixelwise.inference.tiling``.

    The image is mirror-padded with ``np.pad(mode="reflect")``, cut into ``tile`` (``N`` or
    ``(height, width)``) tiles spaced by their kept centre, the model called on each, the
    softmax taken, each output's centre kept (``overlap // 2`` dropped at each edge of the
    output, which is smaller than the tile for valid-padding models) and the centres stitched.

    Returns:
        (H, W, K) float64 probabilities.
    """
    import math

    import numpy as np

    def pair(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    (tile_h, tile_w), (overlap_h, overlap_w) = pair(tile), pair(overlap)
    x = np.zeros((1, tile_h, tile_w, image.shape[-1]), np.float32)
    out_h, out_w = np.asarray(model(x, training=False)).shape[1:3]
    sides = []
    for size, t, out, lap in ((image.shape[0], tile_h, out_h, overlap_h),
                              (image.shape[1], tile_w, out_w, overlap_w)):
        crop = lap // 2
        core = out - 2 * crop
        margin = (t - out) // 2 + crop
        count = math.ceil(size / core)
        sides.append((t, crop, core, count, (margin, count * core + margin - size)))
    (th, crop_h, core_h, rows, pad_h), (tw, crop_w, core_w, cols, pad_w) = sides
    padded = np.pad(image, [pad_h, pad_w, (0, 0)], mode="reflect")
    out = None
    for i in range(rows):
        for j in range(cols):
            y, x = i * core_h, j * core_w
            view = padded[y:y + th, x:x + tw].astype(np.float32)[None] / 255.0
            logits = np.asarray(model(view, training=False), np.float64)[0]
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            if out is None:
                out = np.zeros((rows * core_h, cols * core_w, probs.shape[-1]))
            out[y:y + core_h, x:x + core_w] = probs[crop_h:crop_h + core_h, crop_w:crop_w + core_w]
    return out[:image.shape[0], :image.shape[1]]


def write_run(path: Path, model, class_set: ClassSet = TINY_CLASSES, config: dict | None = None,
              checkpoints=("best",)) -> Path:
    """A run folder as ``pixelwise train`` leaves it: class_set.json, config.json, checkpoints."""
    path = Path(path)
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    (path / "class_set.json").write_text(class_set.to_json())
    (path / "config.json").write_text(json.dumps(config or {}))
    for name in checkpoints:
        model.save(path / "checkpoints" / f"{name}.keras")
    return path
