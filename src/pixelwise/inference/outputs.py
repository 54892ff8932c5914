"""Writing what prediction found: NAME_mask.png, NAME_overlay.png, NAME_boxes.png and NAME.json, atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.files import write_all_atomic
from pixelwise.inference.drawing import colorize, draw_boxes, overlay
from pixelwise.inference.prediction import Prediction


def save_prediction(prediction: Prediction, image: np.ndarray, out_dir, name: str) -> dict[str, Path]:
    """Write ``NAME_mask.png``, ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json``.

    All four are encoded in memory, written under temporary names and only then renamed,
    so a failure leaves none of them half-written.

    Args:
        prediction: From :func:`predict`.
        image: The input as uint8 (H, W, C), same size as the prediction.
        out_dir: Output folder (created).
        name: Base name of the files, usually the input's stem.

    Returns:
        The paths written, by kind (``mask``, ``overlay``, ``boxes``, ``json``).
    """
    out_dir = Path(out_dir)
    mask = colorize(prediction.labels, prediction.class_set)
    contents = {
        "mask": (f"{name}_mask.png", _png(mask)),
        "overlay": (f"{name}_overlay.png", _png(overlay(image, mask))),
        "boxes": (f"{name}_boxes.png", _png(draw_boxes(image, prediction.boxes, prediction.class_set))),
        "json": (f"{name}.json", json.dumps(prediction.to_json(), indent=2)),
    }
    paths = {kind: out_dir / filename for kind, (filename, _) in contents.items()}
    write_all_atomic({paths[kind]: data for kind, (_, data) in contents.items()})
    return paths



def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
