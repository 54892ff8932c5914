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


#: What :func:`save_prediction` writes per image, by kind, in the order written: ``NAME.json``
#: comes last, so an image whose ``NAME.json`` exists has all four.
OUTPUT_SUFFIXES = {"mask": "_mask.png", "overlay": "_overlay.png", "boxes": "_boxes.png",
                   "json": ".json"}


def output_filenames(name: str) -> dict[str, str]:
    """The file names :func:`save_prediction` writes for ``name``, by kind.

    Example:
        >>> output_filenames("street")["mask"], output_filenames("street")["json"]
        ('street_mask.png', 'street.json')
    """
    return {kind: f"{name}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def output_names(paths) -> list[str]:
    """The ``name`` of each input's outputs: its stem, made unique in order.

    Example:
        >>> output_names([Path("a/x.png"), Path("b/x.jpg"), Path("y.png")])
        ['x', 'x-2', 'y']
    """
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = Path(path).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def encode_prediction(prediction: Prediction, image: np.ndarray, name: str) -> dict[str, tuple[str, bytes | str]]:
    """What :func:`save_prediction` writes, encoded in memory: ``{kind: (file name, data)}``.

    In :data:`OUTPUT_SUFFIXES`' order (``json`` last); for a writer of another file system
    (Beam's ``FileSystems``: ``gs://``, ``s3://``).
    """
    mask = colorize(prediction.labels, prediction.class_set)
    filenames = output_filenames(name)
    data = {
        "mask": _png(mask),
        "overlay": _png(overlay(image, mask)),
        "boxes": _png(draw_boxes(image, prediction.boxes, prediction.class_set)),
        "json": json.dumps(prediction.to_json(), indent=2),
    }
    return {kind: (filenames[kind], data[kind]) for kind in OUTPUT_SUFFIXES}


def save_prediction(prediction: Prediction, image: np.ndarray, out_dir, name: str) -> dict[str, Path]:
    """Write ``NAME_mask.png``, ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json``.

    All four are encoded in memory, written under temporary names and only then renamed,
    ``NAME.json`` last, so a failure leaves none of them half-written, and an image whose
    ``NAME.json`` exists has all four (how ``predict --beam`` knows an image is done).

    Args:
        prediction: From :func:`predict`.
        image: The input as uint8 (H, W, C), same size as the prediction.
        out_dir: Output folder (created).
        name: Base name of the files, usually the input's stem.

    Returns:
        The paths written, by kind (``mask``, ``overlay``, ``boxes``, ``json``).
    """
    out_dir = Path(out_dir)
    contents = encode_prediction(prediction, image, name)
    paths = {kind: out_dir / filename for kind, (filename, _) in contents.items()}
    write_all_atomic({paths[kind]: data for kind, (_, data) in contents.items()})
    return paths


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
