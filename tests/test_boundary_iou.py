"""Boundary IoU (Cheng et al. 2021) against a direct NumPy/SciPy computation from distance transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from pixelwise.evaluation.boundary_iou import BoundaryCounts, boundary_band, boundary_width

VOID = 255


def inner_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of ``mask`` within chessboard distance ``width`` of a pixel outside it (or of the frame)."""
    padded = np.pad(mask, 1, constant_values=False)  # the frame is outside the mask
    distance = ndimage.distance_transform_cdt(padded, metric="chessboard")[1:-1, 1:-1]
    return mask & (distance <= width)


def reference_counts(pairs, num_classes, width):
    """Per-class |G_d ∩ P_d| and |G_d ∪ P_d| summed over images, void pixels dropped."""
    intersection = np.zeros(num_classes, np.int64)
    union = np.zeros(num_classes, np.int64)
    for labels, predicted in pairs:
        valid = labels != VOID
        for c in range(num_classes):
            truth = inner_band(labels == c, width) & valid
            guess = inner_band(predicted == c, width) & valid
            intersection[c] += (truth & guess).sum()
            union[c] += (truth | guess).sum()
    return intersection, union


def scene(height=40, width=48):
    """Background, a rectangle (1), a disc (2) and a void ring around the disc."""
    labels = np.zeros((height, width), np.uint8)
    labels[5:20, 6:30] = 1
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - 28, xx - 34)
    labels[radius < 8] = 2
    labels[(radius >= 8) & (radius < 9)] = VOID
    return labels


def test_width_is_a_fraction_of_the_diagonal():
    assert boundary_width(360, 480) == round(0.02 * 600) == 12
    assert boundary_width(40, 48, 0.1) == round(0.1 * math.hypot(40, 48))
    assert boundary_width(8, 8) == 1  # never below one pixel
    for bad in (0, -0.1, 2, "0.02"):
        with pytest.raises(ValueError, match="boundary ratio"):
            boundary_width(10, 10, bad)


@pytest.mark.parametrize("width", [1, 2, 5])
def test_band_of_every_class_equals_its_inner_band(width):
    labels = scene()
    band = boundary_band(labels, width)
    for value in np.unique(labels):
        mask = labels == value
        np.testing.assert_array_equal(band & mask, inner_band(mask, width))


def test_perfect_prediction_scores_one_and_void_is_never_counted():
    labels = scene()
    predicted = np.where(labels == VOID, 1, labels)  # anything at void pixels
    counts = BoundaryCounts.zeros(3)
    counts.add(labels, predicted, width=2, ignore_label=VOID)
    np.testing.assert_array_equal(counts.iou(), [1.0, 1.0, 1.0])
    assert counts.mean_iou() == 1.0
    intersection, union = reference_counts([(labels, predicted)], 3, 2)
    np.testing.assert_array_equal(counts.union, union)


@pytest.mark.parametrize("width", [1, 3])
def test_a_one_pixel_shift_lowers_it_by_exactly_the_numpy_value(width):
    labels = scene()
    predicted = np.where(labels == VOID, 0, labels)
    predicted = np.roll(predicted, 1, axis=1)  # every boundary one pixel to the right
    predicted[:, 0] = 0
    counts = BoundaryCounts.zeros(3)
    counts.add(labels, predicted, width=width, ignore_label=VOID)
    intersection, union = reference_counts([(labels, predicted)], 3, width)
    np.testing.assert_array_equal(counts.intersection, intersection)
    np.testing.assert_array_equal(counts.union, union)
    np.testing.assert_allclose(counts.iou(), intersection / union)
    assert (counts.iou()[1:] < 1).all() and counts.mean_iou() < 1
    # The pixel IoU of the same shift drops much less: the band is where the error is.
    valid = labels != VOID
    pixel_iou = ((labels == 1) & (predicted == 1) & valid).sum() / (((labels == 1) | (predicted == 1)) & valid).sum()
    assert counts.iou()[1] < pixel_iou


def test_counts_add_up_over_images_and_absent_classes_are_left_out():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(3):
        labels = scene()
        predicted = np.where(labels == VOID, 0, labels)
        predicted = ndimage.shift(predicted, rng.integers(-2, 3, 2), order=0, mode="nearest")
        pairs.append((labels, predicted.astype(np.uint8)))
    counts = BoundaryCounts.zeros(4)  # class 3 never occurs
    for labels, predicted in pairs:
        counts.add(labels, predicted, width=2, ignore_label=VOID)
    intersection, union = reference_counts(pairs, 4, 2)
    np.testing.assert_array_equal(counts.intersection, intersection)
    np.testing.assert_array_equal(counts.union, union)
    assert math.isnan(counts.iou()[3])
    assert counts.mean_iou() == pytest.approx(np.mean(intersection[:3] / union[:3]))


def test_bad_input_is_refused():
    counts = BoundaryCounts.zeros(2)
    with pytest.raises(ValueError, match="same shape"):
        counts.add(np.zeros((4, 4)), np.zeros((4, 5)), width=1)
    with pytest.raises(ValueError, match="class ids in 0..1"):
        counts.add(np.full((4, 4), 3), np.zeros((4, 4), int), width=1, ignore_label=VOID)
