"""Drawing results: colour masks by palette lookup, overlays, boxes with class names.

(The confusion matrix's heat map is :mod:`pixelwise.evaluation.confusion_plot`; the training
curves are :mod:`pixelwise.training.curves`.)

Example:
    >>> import numpy as np
    >>> colorize(np.array([[0, 1]]), [(0, 0, 0), (255, 0, 0)])[0, 1].tolist()
    [255, 0, 0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from pixelwise.class_sets import ClassSet

if TYPE_CHECKING:
    from pixelwise.inference.boxes import Box


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
        boxes: From :func:`pixelwise.inference.boxes.find_boxes`.
        class_set: Gives each box its class colour.

    Returns:
        uint8 (H, W, 3) image.
    """
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
    texts = [f"{box.class_name} {box.mean_confidence:.2f}" for box in boxes]
    extents = [draw.textbbox((0, 0), text, font=font) for text in texts]
    sizes = [(right - left + 3, bottom - top + 3) for left, top, right, bottom in extents]
    places = place_labels([b.box for b in boxes], sizes, width, height)
    for text, (left, top, _, _), (x0, y0, x1, y1), colour in zip(texts, extents, places, colours):
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
        draw.text((x0 + 1 - left, y0 + 1 - top), text, font=font, fill=_text_colour(colour))
    return np.asarray(canvas)


def place_labels(boxes, sizes, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Where each box's label goes: ``(x0, y0, x1, y1)``, end-exclusive, inside the image.

    Each label goes above its box, else inside its top edge, else below it (at the box's
    left edge, or ending at its right edge), else at the free place nearest its box's top
    left corner, so that no label covers one placed before it. Only when the image has no
    free place left does a label overlap (above its box).

    Args:
        boxes: ``(x_min, y_min, x_max, y_max)`` per box (:class:`~pixelwise.inference.boxes.Box`).
        sizes: ``(width, height)`` of each label, in pixels.
        width, height: The image's size.

    Example:
        >>> place_labels([(0, 20, 30, 40), (2, 20, 30, 40)], [(20, 10), (20, 10)], 64, 64)
        [(0, 10, 20, 20), (2, 21, 22, 31)]
    """
    placed: list[tuple[int, int, int, int]] = []
    for box, (w, h) in zip(boxes, sizes):
        candidates = _label_candidates(box, w, h, width, height)
        free = (c for c in candidates if not any(_overlap(c, other) for other in placed))
        # No free place: the first choice, overlapping (a label taller than the image: at 0).
        x = max(0, min(box[0], width - w))
        first = next(_label_candidates(box, w, h, width, height), (x, 0, x + w, h))
        placed.append(next(free, first))
    return placed


def _label_candidates(box, w: int, h: int, width: int, height: int):
    """Label places for ``box`` in order of preference (see :func:`place_labels`).

    Past the three preferred rows the search steps a quarter label at a time, so a full
    image costs thousands of checks, not a check per pixel.
    """
    x_min, y_min, x_max, y_max = box
    clamp = lambda x: max(0, min(x, width - w))  # noqa: E731
    for y in (y_min - h, y_min + 1, y_max + 1):
        for x in dict.fromkeys((clamp(x_min), clamp(x_max - w))):
            if 0 <= y <= height - h and 0 <= x <= width - w:
                yield x, y, x + w, y + h
    rows = sorted(range(0, height - h + 1, max(1, h // 4)), key=lambda y: abs(y - y_min))
    columns = sorted(range(0, width - w + 1, max(1, w // 4)), key=lambda x: abs(x - x_min))
    for y in rows:
        for x in columns:
            yield x, y, x + w, y + h


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_colour(class_set: ClassSet, class_id: int) -> tuple[int, int, int]:
    colour = class_set.palette[class_id]
    # A black class colour (ISBI's cell interior) would be invisible on dark images.
    return colour if sum(colour) > 60 else (255, 255, 0)


def _text_colour(background) -> tuple[int, int, int]:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luminance > 128 else (255, 255, 255)


