"""Drawing results: colour masks by palette lookup, overlays, boxes with class names, and
the confusion matrix of an evaluation as a heat map.

Example:
    >>> import numpy as np
    >>> colorize(np.array([[0, 1]]), [(0, 0, 0), (255, 0, 0)])[0, 1].tolist()
    [255, 0, 0]
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from pixelwise.class_sets import ClassSet

if TYPE_CHECKING:
    from pixelwise.prediction import Box


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
        boxes: From :func:`pixelwise.prediction.find_boxes`.
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


def normalised_confusion(confusion) -> np.ndarray:
    """Rows divided by their sums (each true class's distribution of predictions); 0 for empty rows."""
    confusion = np.asarray(confusion, np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def plot_confusion(confusion, class_names) -> bytes:
    """PNG bytes of the row-normalised confusion matrix as a heat map.

    Args:
        confusion: (K, K) counts, rows = true class, columns = predicted class.
        class_names: K names for the axes; cells are annotated up to 25 classes.
    """
    # A bare Figure renders with Agg and never touches pyplot's global state or a display.
    matrix = normalised_confusion(confusion)
    k = len(class_names)
    side = max(4.0, 0.45 * k + 2.0)
    figure = Figure(figsize=(side + 1.0, side))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(k), class_names, rotation=90)
    axes.set_yticks(range(k), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix (rows normalised, void excluded)")
    if k <= 25:
        for t in range(k):
            for p in range(k):
                if matrix[t, p] >= 0.005:
                    axes.text(p, t, f"{matrix[t, p]:.2f}", ha="center", va="center", fontsize=7,
                              color="white" if matrix[t, p] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
