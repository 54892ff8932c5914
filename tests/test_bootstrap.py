"""Bootstrap interval of mean IoU over images, against a per-resample NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.evaluation.bootstrap import bootstrap_mean_iou, mean_iou_of_matrices

K = 4


def synthetic_confusions(num_images, seed=0):
    """Per-image confusion matrices of noisy predictions of random label maps (16x16, K classes)."""
    rng = np.random.default_rng(seed)
    matrices = []
    for _ in range(num_images):
        labels = rng.integers(0, K, (16, 16))
        # Each image has its own difficulty, so images differ and the interval has a width.
        wrong = rng.random((16, 16)) < rng.uniform(0.1, 0.6)
        predicted = np.where(wrong, rng.integers(0, K, (16, 16)), labels)
        matrix = np.zeros((K, K), np.int64)
        np.add.at(matrix, (labels.ravel(), predicted.ravel()), 1)
        matrices.append(matrix)
    return np.stack(matrices)


def numpy_mean_iou(matrix):
    ious = []
    for c in range(len(matrix)):
        union = matrix[c].sum() + matrix[:, c].sum() - matrix[c, c]
        if union:
            ious.append(matrix[c, c] / union)
    return np.mean(ious)


def test_interval_equals_a_loop_over_resamples():
    per_image = synthetic_confusions(12)
    interval = bootstrap_mean_iou(per_image, resamples=300, seed=7)
    rng = np.random.default_rng(7)  # the same draws, summed image by image
    drawn = rng.integers(0, 12, size=(300, 12))
    means = [numpy_mean_iou(per_image[row].sum(axis=0)) for row in drawn]
    low, high = np.percentile(means, [2.5, 97.5])
    assert interval.low == pytest.approx(low, rel=1e-12)
    assert interval.high == pytest.approx(high, rel=1e-12)
    assert (interval.resamples, interval.seed, interval.num_images) == (300, 7, 12)
    data = interval.to_json()
    assert data["resamples"] == 300 and data["confidence"] == 0.95


def test_contains_the_point_estimate_and_narrows_with_more_images():
    widths = {}
    for n in (8, 64):
        per_image = synthetic_confusions(n, seed=n)
        interval = bootstrap_mean_iou(per_image)
        point = numpy_mean_iou(per_image.sum(axis=0))
        assert interval.low < point < interval.high
        widths[n] = interval.high - interval.low
    # The spread of a mean shrinks like 1/sqrt(n): 8x the images, about a third of the width.
    assert widths[64] < 0.6 * widths[8]


def test_seeded_and_reproducible():
    per_image = synthetic_confusions(10)
    assert bootstrap_mean_iou(per_image, seed=3) == bootstrap_mean_iou(per_image, seed=3)
    assert bootstrap_mean_iou(per_image, seed=3) != bootstrap_mean_iou(per_image, seed=4)


def test_mean_iou_of_a_stack_leaves_out_absent_classes():
    matrices = np.array([[[2, 0, 0], [1, 1, 0], [0, 0, 0]], np.zeros((3, 3))])
    means = mean_iou_of_matrices(matrices)
    assert means[0] == pytest.approx((2 / 3 + 1 / 2) / 2) and np.isnan(means[1])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, K, K\)"):
        bootstrap_mean_iou(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_mean_iou(synthetic_confusions(2), resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_iou(synthetic_confusions(2), confidence=95)
