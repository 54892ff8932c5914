"""Drawing predictions: colour masks by palette lookup, overlays, boxes with class names.

Example:
    >>> import numpy as np
    >>> colorize(np.array([[0, 1]]), [(0, 0, 0), (255, 0, 0)])[0, 1].tolist()
    [255, 0, 0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pixelwise.class_sets import ClassSet

if TYPE_CHECKING:
    from pixelwise.inference import Box


def colorize(labels, palette) -> np.ndarray:
    """Colour a label map by palette lookup (no per-class loop).

    Args:
        labels: Integer array (..., H, W) of class ids.
        palette: A :class:`ClassSet` (its void colour is used for the ignore label) or a
            sequence of RGB triples, one per class id.

    Returns:
        uint8 array (..., H, W, 3).

    Example:
        >>> colorize(np.array([[0, 1]]), [(0, 0, 0), (255, 0, 0)])[0, 1].tolist()
        [255, 0, 0]
    """
    if isinstance(palette, ClassSet):
        return palette.colorize(labels)
    table = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    if table.ndim != 2 or table.shape[1] != 3:
        raise ValueError(f"Expected a palette of RGB triples, received shape {table.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= len(table)):
        raise ValueError(
            f"Expected class ids in 0..{len(table) - 1} (one palette entry each), received "
            f"values in {labels.min()}..{labels.max()}."
        )
    return table[labels]


def overlay(image: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour mask over an image: ``(1 - alpha) * image + alpha * mask``."""
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * mask_rgb.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: list[Box], class_set: ClassSet) -> np.ndarray:
    """Draw boxes with ``tf.image.draw_bounding_boxes`` and write class names beside them.

    Args:
        image: uint8 (H, W, 1|3|4) image.
        boxes: From :func:`find_boxes`.
        class_set: Gives each box its class colour.

    Returns:
        uint8 (H, W, 3) image.
    """
    import tensorflow as tf
    from PIL import Image, ImageDraw, ImageFont

    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    if not boxes:
        return rgb.copy()
    height, width = rgb.shape[:2]
    # draw_bounding_boxes scales normalised coordinates by (size - 1) and draws
    # inclusive pixel rows/columns, so the last pixel of the region is x_max - 1.
    scale = np.array([max(height - 1, 1), max(width - 1, 1)] * 2, np.float32)
    coords = np.array([[b.box[1], b.box[0], b.box[3] - 1, b.box[2] - 1] for b in boxes], np.float32)
    colours = [_box_colour(class_set, b.class_id) for b in boxes]
    colour_rgba = np.array([[*c, 255] for c in colours], np.float32) / 255.0
    drawn = tf.image.draw_bounding_boxes(
        tf.convert_to_tensor(rgb[None], tf.float32) / 255.0, (coords / scale)[None], colour_rgba,
    )
    drawn = np.asarray(np.clip(np.round(drawn[0].numpy() * 255.0), 0, 255), np.uint8)

    canvas = Image.fromarray(drawn)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for box, colour in zip(boxes, colours):
        text = f"{box.class_name} {box.mean_confidence:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_w, text_h = right - left, bottom - top
        x = min(box.box[0], max(width - text_w - 2, 0))
        y = box.box[1] - text_h - 3 if box.box[1] >= text_h + 3 else box.box[1] + 1
        draw.rectangle([x, y, x + text_w + 2, y + text_h + 2], fill=colour)
        draw.text((x + 1 - left, y + 1 - top), text, font=font, fill=_text_colour(colour))
    return np.asarray(canvas)


def _box_colour(class_set: ClassSet, class_id: int) -> tuple[int, int, int]:
    colour = class_set.palette[class_id]
    # A black class colour (ISBI's cell interior) would be invisible on dark images.
    return colour if sum(colour) > 60 else (255, 255, 0)


def _text_colour(background) -> tuple[int, int, int]:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luminance > 128 else (255, 255, 255)
