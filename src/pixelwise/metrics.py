"""Segmentation metrics with void excluded: Keras metrics for ``fit`` and NumPy helpers.

Keras metrics (inputs: integer labels ``(B, H, W, 1)`` and logits ``(B, H, W, K)``):

* :class:`MeanIoU`, logged as ``mean_iou`` / ``val_mean_iou``: Keras'
  ``MeanIoU(ignore_class=255, sparse_y_pred=False)``, plus :meth:`MeanIoU.per_class_iou`
  for exercise 17's per-class callback.
* :class:`PixelAccuracy`, logged as ``pixel_accuracy``: correct pixels / non-void
  pixels. Keras' ``"accuracy"`` counts void pixels too, so it is not used.

NumPy helpers for evaluation, all from one accumulable confusion matrix (rows: true
class, columns: predicted class):

    >>> batches = [(np.array([[0, 1], [1, 255]]), np.array([[0, 1], [0, 2]]))]  # 255: void
    >>> cm = np.zeros((3, 3), np.int64)
    >>> for labels, predictions in batches:
    ...     cm += confusion_matrix(labels, predictions, 3, ignore_label=255)
    >>> cm
    array([[1, 0, 0],
           [1, 1, 0],
           [0, 0, 0]])
    >>> iou_from_confusion(cm), mean_iou_from_confusion(cm), pixel_accuracy_from_confusion(cm)
    (array([0.5, 0.5, nan]), 0.5, 0.6666666666666666)

IoU of class ``c`` is ``TP / (TP + FP + FN)``; a class with an empty union (never in
the labels nor in the predictions) has IoU NaN and is left out of the mean, as
Keras' ``MeanIoU`` and mmsegmentation do. The same matrix gives precision, recall,
Dice (F1) and the frequency-weighted IoU. Boundary IoU needs the label maps themselves
(:mod:`pixelwise.evaluation.boundary_iou`); the interval of mean IoU needs one matrix per image
(:mod:`pixelwise.evaluation.bootstrap`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pixelwise.class_sets import ClassSet


@keras.saving.register_keras_serializable(package="pixelwise")
class MeanIoU(keras.metrics.MeanIoU):
    """Mean IoU from logits with void excluded, named ``mean_iou``.

    Args:
        num_classes: Number of classes.
        ignore_class: Label of void pixels (default 255), excluded.
        name: Metric name (default ``"mean_iou"``).
        dtype: Dtype of the result.

    Other arguments are Keras' (``sparse_y_pred=False``: ``y_pred`` are logits or
    probabilities and their argmax is taken).

    Example:
        >>> from pixelwise.class_sets import VOC
        >>> model.compile(..., metrics=[MeanIoU.from_class_set(VOC), PixelAccuracy()])  # doctest: +SKIP
        >>> labels = np.array([[[[0], [1]], [[1], [255]]]])       # (1, 2, 2, 1), 255: void
        >>> logits = np.log(np.array([[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
        ...                            [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]]], np.float32))
        >>> metric = MeanIoU(num_classes=3)
        >>> _ = metric.update_state(labels, logits)
        >>> float(metric.result()), metric.per_class_iou()
        (0.5, array([0.5, 0.5, nan]))
    """

    def __init__(
        self,
        num_classes: int,
        ignore_class: int | None = 255,
        name: str = "mean_iou",
        dtype=None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes=num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
            sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis,
        )

    @classmethod
    def from_class_set(cls, class_set: ClassSet, **kwargs) -> "MeanIoU":
        """A metric for ``class_set`` (its number of classes and ignore label)."""
        return cls(class_set.num_classes, ignore_class=class_set.ignore_label, **kwargs)

    def confusion_matrix(self) -> np.ndarray:
        """The accumulated ``(K, K)`` confusion matrix (rows true, columns predicted)."""
        return np.asarray(self.total_cm.numpy()).astype(np.int64)

    def per_class_iou(self) -> np.ndarray:
        """Per-class IoU of what was accumulated, NaN for classes with an empty union."""
        return iou_from_confusion(self.confusion_matrix())


@keras.saving.register_keras_serializable(package="pixelwise")
class PixelAccuracy(keras.metrics.Metric):
    """Fraction of non-void pixels whose argmax prediction equals the label.

    Pixels labelled ``ignore_class`` are excluded, and so are labels outside
    ``0..num_classes-1`` when ``num_classes`` is given (matching :class:`MeanIoU`).

    Args:
        ignore_class: Label of void pixels (default 255).
        num_classes: Optional number of classes.
        name: Metric name (default ``"pixel_accuracy"``).
        dtype: Dtype of the result.

    Example:
        >>> labels = np.array([[[[0], [1]], [[1], [255]]]])       # (1, 2, 2, 1), 255: void
        >>> logits = np.array([[[[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 3.0]]]])
        >>> metric = PixelAccuracy(ignore_class=255)
        >>> metric.update_state(labels, logits)
        >>> round(float(metric.result()), 4)                       # 2 of 3 non-void pixels
        0.6667
    """

    def __init__(
        self,
        ignore_class: int | None = 255,
        num_classes: int | None = None,
        name: str = "pixel_accuracy",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total")

    @classmethod
    def from_class_set(cls, class_set: ClassSet, **kwargs) -> "PixelAccuracy":
        return cls(ignore_class=class_set.ignore_label, num_classes=class_set.num_classes, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, axis=-1)
        predictions = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        valid = ops.ones_like(labels, dtype="bool")
        if self.ignore_class is not None:
            valid = ops.logical_and(valid, labels != self.ignore_class)
        if self.num_classes is not None:
            valid = ops.logical_and(valid, ops.logical_and(labels >= 0, labels < self.num_classes))
        weight = ops.cast(valid, "float64")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float64")
            if len(sample_weight.shape) == len(labels.shape) + 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            while len(sample_weight.shape) < len(labels.shape):
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            weight = weight * sample_weight
        hits = ops.cast(ops.equal(labels, predictions), "float64")
        self.correct.assign_add(ops.sum(hits * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.cast(ops.divide_no_nan(self.correct, self.total), self.dtype)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class,
                "num_classes": self.num_classes}


def segmentation_metrics(class_set: ClassSet) -> list[keras.metrics.Metric]:
    """``[PixelAccuracy, MeanIoU]`` for ``class_set``, ready for ``model.compile``.

    The order is fixed, so a caller that needs the ``MeanIoU`` object itself (the
    per-class IoU callback reads its confusion matrix) can unpack the list.

    Example:
        >>> from pixelwise.class_sets import VOC
        >>> pixel_accuracy, mean_iou = segmentation_metrics(VOC)
        >>> pixel_accuracy.name, mean_iou.name, mean_iou.num_classes, mean_iou.ignore_class
        ('pixel_accuracy', 'mean_iou', 21, 255)
    """
    return [PixelAccuracy.from_class_set(class_set), MeanIoU.from_class_set(class_set)]


# --------------------------------------------------------------------------- NumPy helpers


def confusion_matrix(y_true, y_pred, num_classes: int, ignore_label: int | None = 255) -> np.ndarray:
    """Confusion matrix of integer label maps, void excluded; add them up across batches.

    Args:
        y_true: Integer labels, any shape; a trailing axis of size 1 is dropped.
        y_pred: Integer predicted class ids, the same shape as ``y_true`` (take
            ``argmax(logits, -1)`` first).
        num_classes: Number of classes ``K``.
        ignore_label: Label value excluded from the counts (default 255).

    Returns:
        int64 ``(K, K)`` array, ``cm[t, p]`` = pixels of true class ``t`` predicted ``p``.

    Raises:
        ValueError: shapes differ, or a value is neither a class id nor the ignore label.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim and y_true.shape[-1] == 1 and y_true.ndim == y_pred.ndim + 1:
        y_true = y_true[..., 0]
    if y_pred.ndim and y_pred.shape[-1] == 1 and y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"Expected labels and predicted class ids of the same shape, received "
            f"{y_true.shape} and {y_pred.shape}; pass argmax(logits, axis=-1) as y_pred."
        )
    y_true = y_true.astype(np.int64).ravel()
    y_pred = y_pred.astype(np.int64).ravel()
    if ignore_label is not None:
        keep = y_true != ignore_label
        y_true, y_pred = y_true[keep], y_pred[keep]
    for what, values in (("labels", y_true), ("predictions", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"Expected {what} in 0..{num_classes - 1}"
                + (f" or {ignore_label} (void)" if what == "labels" and ignore_label is not None else "")
                + f", received values in {values.min()}..{values.max()}."
            )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def iou_from_confusion(cm) -> np.ndarray:
    """Per-class IoU ``TP / (TP + FP + FN)``; NaN where the union is empty."""
    cm = np.asarray(cm, dtype=np.float64)
    true_positive = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou_from_confusion(cm) -> float:
    """Mean IoU over the classes with a non-empty union (NaN if there is none)."""
    iou = iou_from_confusion(cm)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


def pixel_accuracy_from_confusion(cm) -> float:
    """Correct pixels / counted (non-void) pixels; NaN for an empty matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


def class_accuracy_from_confusion(cm) -> np.ndarray:
    """Per-class accuracy (recall) ``TP / (TP + FN)``; NaN for classes absent from the labels."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def mean_class_accuracy_from_confusion(cm) -> float:
    """Mean of the per-class accuracies of the classes present in the labels."""
    accuracy = class_accuracy_from_confusion(cm)
    return float(np.nanmean(accuracy)) if np.any(~np.isnan(accuracy)) else float("nan")


def precision_from_confusion(cm) -> np.ndarray:
    """Per-class precision ``TP / (TP + FP)``; NaN for classes never predicted."""
    cm = np.asarray(cm, dtype=np.float64)
    predicted = cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, np.diag(cm) / predicted, np.nan)


def recall_from_confusion(cm) -> np.ndarray:
    """Per-class recall ``TP / (TP + FN)`` (the per-class accuracy); NaN for classes absent from the labels."""
    return class_accuracy_from_confusion(cm)


def dice_from_confusion(cm) -> np.ndarray:
    """Per-class Dice (F1) ``2 TP / (2 TP + FP + FN)``; NaN where the union is empty (as IoU)."""
    cm = np.asarray(cm, dtype=np.float64)
    true_positive = np.diag(cm)
    total = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * true_positive / total, np.nan)


def mean_dice_from_confusion(cm) -> float:
    """Mean Dice over the classes with a non-empty union (the classes of the mean IoU)."""
    dice = dice_from_confusion(cm)
    return float(np.nanmean(dice)) if np.any(~np.isnan(dice)) else float("nan")


def frequency_weighted_iou_from_confusion(cm) -> float:
    """IoU of each class weighted by its share of the (non-void) labelled pixels (Long et al. 2015).

    ``sum_c (support_c / total) * IoU_c``; a class absent from the labels weighs nothing.
    NaN for an empty matrix.

    Example:
        >>> frequency_weighted_iou_from_confusion([[3, 1], [0, 0]])   # 4 pixels, all class 0
        0.75
    """
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1)
    total = support.sum()
    if total == 0:
        return float("nan")
    iou = np.nan_to_num(iou_from_confusion(cm))
    return float(np.sum(support / total * iou))


__all__ = [
    "MeanIoU", "PixelAccuracy", "segmentation_metrics", "confusion_matrix",
    "iou_from_confusion", "mean_iou_from_confusion", "pixel_accuracy_from_confusion",
    "class_accuracy_from_confusion", "mean_class_accuracy_from_confusion",
    "precision_from_confusion", "recall_from_confusion", "dice_from_confusion",
    "mean_dice_from_confusion", "frequency_weighted_iou_from_confusion",
]
