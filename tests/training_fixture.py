"""Shared helpers of the training tests: tiny configurations and a NumPy mean IoU."""

from __future__ import annotations

import numpy as np

#: Options that make a run tiny: 64 px, a 4-filter U-Net, 2 images a batch, no summaries noise.
TINY = dict(image_size=64, batch_size=2, model_args={"base_filters": 4}, verbose=0,
            image_summaries=2)


def numpy_mean_iou(labels: np.ndarray, logits: np.ndarray, num_classes: int,
                   ignore_label: int = 255) -> tuple[float, np.ndarray]:
    """Mean IoU (classes with a non-empty union) and per-class IoU, by np.bincount."""
    labels = labels.reshape(-1).astype(np.int64)
    predicted = logits.argmax(axis=-1).reshape(-1).astype(np.int64)
    keep = labels != ignore_label
    counts = np.bincount(labels[keep] * num_classes + predicted[keep],
                         minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - tp
    iou = np.full(num_classes, np.nan)
    iou[union > 0] = tp[union > 0] / union[union > 0]
    return float(np.nanmean(iou)), iou
