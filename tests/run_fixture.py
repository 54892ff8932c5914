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
