"""What a label map contains: pixel counts by class name, and boxes around connected regions.

Exercise 20 of the chapter: counts per class and one box per connected region of a class
(SciPy's labelling), background and void left out, regions under ``min_area`` pixels dropped.

Example:
    >>> labels = np.array([[0, 1, 1], [0, 0, 1]])
    >>> count_pixels(labels, ClassSet("ab", ("background", "cat"), ((0, 0, 0), (9, 9, 9))))
    {'background': 3, 'cat': 3}
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from pixelwise.class_sets import ClassSet
from pixelwise.defaults import DEFAULT_MIN_AREA


@dataclasses.dataclass(frozen=True)
class Box:
    """One connected region of one class.

    ``box`` is ``(x_min, y_min, x_max, y_max)`` in pixel-edge coordinates of the input
    image: the region spans columns ``x_min .. x_max - 1`` and rows ``y_min .. y_max - 1``.
    ``area`` counts the region's pixels (not the box's); ``mean_confidence`` is the mean
    softmax probability of the predicted class over them.
    """

    class_id: int
    class_name: str
    box: tuple[int, int, int, int]
    area: int
    mean_confidence: float

    def to_json(self) -> dict:
        return {
            "class_id": self.class_id, "class_name": self.class_name, "box": list(self.box),
            "area": self.area, "mean_confidence": round(self.mean_confidence, 6),
        }



def count_pixels(labels: np.ndarray, class_set: ClassSet) -> dict[str, int]:
    """Pixels per class name (the chapter's ``pixels_per_label``); every class is listed."""
    counts = np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=class_set.num_classes)
    return {name: int(counts[i]) for i, name in enumerate(class_set.class_names)}



def background_ids(class_set: ClassSet) -> set[int]:
    """Class ids named ``background`` (case-insensitive): they get no boxes."""
    return {i for i, name in enumerate(class_set.class_names) if name.lower() == "background"}



def find_boxes(labels: np.ndarray, confidence: np.ndarray | None, class_set: ClassSet,
               min_area: int = DEFAULT_MIN_AREA) -> list[Box]:
    """Bounding boxes of the 8-connected regions of each non-background class (exercise 20).

    Args:
        labels: (H, W) class ids.
        confidence: (H, W) probability of the predicted class, or ``None`` (confidence 1).
        class_set: Names the classes; classes named ``background`` are skipped.
        min_area: Regions with fewer pixels are dropped (default 100).

    Returns:
        Boxes sorted by class id, then by position (top to bottom, left to right).

    Example:
        >>> labels = np.zeros((4, 6), np.uint8)
        >>> labels[1:3, 2:5] = 1
        >>> cats = ClassSet("ab", ("background", "cat"), ((0, 0, 0), (9, 9, 9)))
        >>> [(b.class_name, b.box, b.area) for b in find_boxes(labels, None, cats, min_area=1)]
        [('cat', (2, 1, 5, 3), 6)]
    """
    labels = np.asarray(labels)
    if confidence is None:
        confidence = np.ones(labels.shape, np.float32)
    skip = background_ids(class_set)
    connectivity = np.ones((3, 3), dtype=bool)
    boxes = []
    for class_id in np.unique(labels):
        class_id = int(class_id)
        if class_id in skip or class_id >= class_set.num_classes:
            continue
        regions, count = ndimage.label(labels == class_id, structure=connectivity)
        areas = np.bincount(regions.ravel(), minlength=count + 1)
        sums = np.bincount(regions.ravel(), weights=confidence.ravel(), minlength=count + 1)
        for index, slices in enumerate(ndimage.find_objects(regions), start=1):
            if slices is None or areas[index] < min_area:
                continue
            rows, cols = slices
            boxes.append(Box(
                class_id=class_id, class_name=class_set.class_names[class_id],
                box=(int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)),
                area=int(areas[index]), mean_confidence=float(sums[index] / areas[index]),
            ))
    return sorted(boxes, key=lambda b: (b.class_id, b.box[1], b.box[0]))
