"""Boundary IoU (Cheng et al. 2021): how well a segmentation follows the contours, void excluded.

Mean IoU is dominated by the interiors of large regions; a prediction with blurry or
shifted edges loses little of it. Boundary IoU compares only the pixels near the
contours. For class ``c`` let ``G`` be its pixels in the labels and ``P`` in the
prediction, and ``G_d`` (``P_d``) the pixels of ``G`` (``P``) within distance ``d`` of
the mask's contour (the inner band of ``G``: ``G`` minus ``G`` eroded ``d`` times by a
3x3 square). Then::

    boundary IoU_c = |G_d ∩ P_d| / |G_d ∪ P_d|

with ``d = max(1, round(ratio * image diagonal))`` pixels (``ratio`` default 0.02, the
paper's), so the band scales with the image. As in the paper's reference code
(``mask_to_boundary``: zero padding, then ``cv2.erode``): the distance is the chessboard
one (a 3x3 square per step), and the image frame counts as a contour (a region touching
the border has a band along it). Void pixels (the ignore label) are never counted; for
``G`` they are simply "not class c", so a region next to void has a band there too.

Over a split, the intersections and unions of each class are summed over all images
(like the confusion matrix), then ``boundary IoU_c = sum I_c / sum U_c``, and the mean is
over the classes with a non-empty boundary union.

Cost: one min filter and one max filter of side ``2d + 1`` per label map (separable,
O(pixels) whatever ``d``), so all classes cost about as much as one class.

Example:
    >>> labels = np.zeros((8, 8), np.uint8)
    >>> labels[:, 4:] = 1                              # two halves
    >>> counts = BoundaryCounts.zeros(2)
    >>> counts.add(labels, labels, width=1)
    >>> counts.iou().tolist()                          # a perfect prediction
    [1.0, 1.0]
    >>> shifted = np.zeros((8, 8), np.uint8)
    >>> shifted[:, 5:] = 1                             # the boundary one pixel to the right
    >>> counts = BoundaryCounts.zeros(2)
    >>> counts.add(labels, shifted, width=1)
    >>> [round(float(v), 4) for v in counts.iou()]
    [0.5, 0.4615]
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

from pixelwise.defaults import DEFAULT_BOUNDARY_RATIO


def boundary_width(height: int, width: int, ratio: float = DEFAULT_BOUNDARY_RATIO) -> int:
    """Band width ``d`` in pixels: ``max(1, round(ratio * sqrt(height² + width²)))``.

    Example:
        >>> boundary_width(360, 480), boundary_width(32, 32)
        (12, 1)
    """
    if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
        raise ValueError(
            f"Expected a boundary ratio in (0, 1] (a fraction of the image diagonal), received "
            f"{ratio!r}; the paper's is 0.02."
        )
    return max(1, int(round(ratio * math.hypot(height, width))))


def boundary_band(label_map: np.ndarray, width: int) -> np.ndarray:
    """Pixels within chessboard distance ``width`` of the contour of their own region.

    A pixel of class ``c`` is in the band when its ``(2 width + 1)``-square neighbourhood
    holds another value or leaves the image: that is ``c``'s mask minus its ``width``-fold
    erosion by a 3x3 square with zero padding, for every class at once.

    Args:
        label_map: (H, W) integer class ids (void included as its own value).
        width: ``d`` in pixels, >= 1.

    Returns:
        (H, W) bool.
    """
    values = np.asarray(label_map).astype(np.int32)
    size = 2 * int(width) + 1
    # Outside the image reads as -1, a value no class has: the frame is a contour.
    low = ndimage.minimum_filter(values, size=size, mode="constant", cval=-1)
    high = ndimage.maximum_filter(values, size=size, mode="constant", cval=-1)
    return low != high


@dataclasses.dataclass
class BoundaryCounts:
    """Per-class boundary intersections and unions, summed over the images added.

    Attributes:
        intersection: int64 (K,) ``|G_d ∩ P_d|`` per class.
        union: int64 (K,) ``|G_d ∪ P_d|`` per class.
    """

    intersection: np.ndarray
    union: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int) -> BoundaryCounts:
        return cls(np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64))

    def add(self, labels: np.ndarray, predicted: np.ndarray, width: int,
            ignore_label: int | None = None) -> None:
        """Add one image: (H, W) labels (class ids or ``ignore_label``) and predicted ids."""
        labels = np.asarray(labels)
        predicted = np.asarray(predicted)
        if labels.shape != predicted.shape or labels.ndim != 2:
            raise ValueError(
                f"Expected (H, W) labels and predictions of the same shape, received "
                f"{labels.shape} and {predicted.shape}."
            )
        num_classes = len(self.union)
        valid = np.ones(labels.shape, bool) if ignore_label is None else labels != ignore_label
        truth_band = boundary_band(labels, width) & valid
        predicted_band = boundary_band(predicted, width) & valid
        truth = labels[truth_band].astype(np.int64)
        both = truth_band & predicted_band & (labels == predicted)
        intersection = np.bincount(labels[both].astype(np.int64), minlength=num_classes)
        truth_sizes = np.bincount(truth, minlength=num_classes)
        predicted_sizes = np.bincount(predicted[predicted_band].astype(np.int64), minlength=num_classes)
        if len(truth_sizes) > num_classes or len(predicted_sizes) > num_classes:
            raise ValueError(
                f"Expected class ids in 0..{num_classes - 1}"
                + (f" or {ignore_label} (void)" if ignore_label is not None else "")
                + f", received labels up to {labels.max()} and predictions up to {predicted.max()}."
            )
        self.intersection += intersection
        self.union += truth_sizes + predicted_sizes - intersection

    def iou(self) -> np.ndarray:
        """Per-class boundary IoU, NaN where the boundary union is empty."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.union > 0, self.intersection / np.maximum(self.union, 1), np.nan)

    def mean_iou(self) -> float:
        """Mean over the classes with a non-empty boundary union (NaN if none)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


__all__ = ["BoundaryCounts", "boundary_band", "boundary_width"]
