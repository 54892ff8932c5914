"""Mask PNGs of an exported dataset to class ids, by the encoding its class file states.

* ``index`` (``classes.txt``): the mask's values are class indices; a palette or 8/16-bit
  grayscale PNG, or an RGB PNG whose three channels are equal. 255 is void.
* ``color`` (``class_dict.csv``): the mask's colours are looked up in the class colours
  (a palette or grayscale PNG by the colours it shows).
* ``auto`` (CVAT / VOC): palette and grayscale PNGs are indices, RGB PNGs colours.

Whatever cannot be mapped raises :class:`~pixelwise.datasets.decoding.InvalidExampleError`
with the reason the build reports: a colour outside the class map, an index at or above
the number of classes (other than 255), an undecodable file.

Example:
    >>> from pixelwise.datasets.folder.class_files import class_spec
    >>> spec = class_spec(["background", "cell"], "index", "cells", "classes.txt")
    >>> ids_from_indices(np.array([[0, 1], [255, 1]], np.uint8), spec)[..., 0].tolist()
    [[0, 1], [255, 1]]
"""

from __future__ import annotations

import numpy as np

from pixelwise.class_sets import IGNORE_LABEL
from pixelwise.datasets.decoding import InvalidExampleError, open_image, rgb_to_ids
from pixelwise.datasets.folder.class_files import ClassSpec

_INDEX_MODES = ("P", "L", "1", "I;16", "I;16B", "I;16L", "I")


def ids_from_indices(values: np.ndarray, spec: ClassSpec) -> np.ndarray:
    """Class ids ``(H, W, 1)`` uint8 from a mask's index values ``(H, W)`` (any integer type).

    Raises:
        InvalidExampleError: an index at or above the number of indices the class file
            names, other than 255.
    """
    values = np.asarray(values)
    num_indices = len(spec.value_map) if spec.value_map else spec.class_set.num_classes
    bad = (values >= num_indices) & (values != IGNORE_LABEL)
    if bad.any():
        found, counts = np.unique(values[bad], return_counts=True)
        pairs = list(zip(found.tolist(), counts.tolist()))[:5]
        listed = ", ".join(f"{v} ({c} px)" for v, c in pairs)
        raise InvalidExampleError(
            f"mask holds class index {listed}, but {spec.source} names {num_indices} classes "
            f"(indices 0..{num_indices - 1}; 255 is void)"
        )
    ids = values.astype(np.uint8)
    if spec.value_map:
        table = np.arange(256, dtype=np.uint8)
        for index, class_id in spec.value_map.items():
            table[index] = class_id
        ids = table[ids]
    return ids[..., np.newaxis]


def decode_mask(data: bytes, spec: ClassSpec) -> np.ndarray:
    """A mask file's class ids, ``(H, W, 1)`` uint8 (255 = void).

    Args:
        data: The encoded mask (PNG).
        spec: The dataset's classes and mask encoding.

    Raises:
        InvalidExampleError: undecodable, an unsupported image mode, a colour outside
            the class map, an index outside the class list.
    """
    pil = open_image(data, "mask")
    colour_image = pil.mode in ("RGB", "RGBA")
    if spec.encoding == "color" or (spec.encoding == "auto" and colour_image):
        rgb = np.asarray(pil if pil.mode == "RGB" else pil.convert("RGB"), dtype=np.uint8)
        return rgb_to_ids(rgb, spec.class_set)[..., np.newaxis]
    if pil.mode in _INDEX_MODES:
        values = np.asarray(pil.convert("L") if pil.mode == "1" else pil)
        if pil.mode == "1":
            values = (values > 0).astype(np.uint8)
        return ids_from_indices(values, spec)
    if colour_image:
        rgb = np.asarray(pil, dtype=np.uint8)[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return ids_from_indices(rgb[..., 0], spec)
        raise InvalidExampleError(
            f"mask is an RGB colour image, but {spec.source} defines index masks (1 channel, "
            "value = class index); save it as a grayscale or palette PNG, or describe the "
            "colours in class_dict.csv"
        )
    raise InvalidExampleError(
        f"unsupported mask image mode {pil.mode!r}; expected a palette, grayscale or RGB PNG"
    )
