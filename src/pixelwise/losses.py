"""Segmentation losses: cross-entropy that ignores void, plus exercise 16's reconstruction term.

* ``"ce"``: sparse categorical cross-entropy from logits, void pixels (the class
  set's ignore label) excluded — Keras' own
  ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)`` when no class
  weights are given.
* ``"ce+dice"`` / ``"ce+l2"`` (exercise 16): cross-entropy plus
  ``reconstruction_weight`` times a term that pulls the predicted label map (softmax
  probabilities) toward the one-hot true one: soft Dice loss or squared L2 distance,
  void pixels excluded.
* Class weights (e.g. :func:`median_frequency_weights`) weight each pixel's
  cross-entropy by the weight of its true class; the weighted mean is normalised by
  the sum of the weights (as PyTorch's ``CrossEntropyLoss(weight=...)``), so the loss
  keeps the scale of the unweighted one. Keras' ``fit(class_weight=...)`` does not
  support per-pixel targets, hence the custom loss.

Example:
    >>> from pixelwise.class_sets import CAMVID
    >>> loss = segmentation_loss(CAMVID, kind="ce+dice", reconstruction_weight=0.5)
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(CAMVID.num_classes, 1)])
    >>> model.compile(optimizer="adam", loss=loss)
    >>> model.loss.name, model.loss.kind
    ('ce_dice', 'ce+dice')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
from keras import ops

from pixelwise.class_sets import ClassSet
from pixelwise.defaults import LOSS_KINDS


@keras.saving.register_keras_serializable(package="pixelwise")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy (optionally class-weighted) plus an optional reconstruction term.

    The loss of a batch is ``CE + reconstruction_weight * R`` where, over the pixels
    whose label is a class id (``0..num_classes-1``; the ignore label is excluded):

    * ``CE = sum(w[y] * ce) / sum(w[y])`` with ``ce = -log softmax(logits)[y]`` and
      ``w`` the class weights (all 1 by default: the mean CE over valid pixels);
    * ``R`` (``kind="ce+dice"``) ``= 1 - mean_c (2 sum(p_c y_c) + s) / (sum(p_c) + sum(y_c) + s)``,
      the soft Dice loss of the whole batch per class, ``s = smooth``;
    * ``R`` (``kind="ce+l2"``) ``= mean over pixels of sum_c (p_c - y_c)^2``,

    ``p`` the softmax probabilities and ``y`` the one-hot labels. The value is one
    scalar per batch (Dice is a batch-level quantity); ``sample_weight`` is not
    supported.

    Args:
        num_classes: Number of classes (logits' last dimension).
        ignore_label: Label of void pixels (default 255).
        kind: ``"ce"``, ``"ce+dice"`` or ``"ce+l2"``.
        reconstruction_weight: Weight of the reconstruction term (default 1.0).
        class_weights: Optional sequence of ``num_classes`` non-negative weights.
        smooth: Additive smoothing of the Dice ratio (default 1.0).
        name: Loss name.

    Example:
        >>> labels = np.array([[[[0], [1]], [[1], [255]]]])       # (B, H, W, 1), 255: void
        >>> probabilities = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
        ...                            [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]]], np.float32)
        >>> logits = np.log(probabilities)                         # (B, H, W, 3)
        >>> loss = SegmentationLoss(num_classes=3, kind="ce+l2", reconstruction_weight=2.0)
        >>> round(float(loss(labels, logits)), 4)                  # CE 0.5946 + 2 * L2 0.3533
        1.3013
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int = 255,
        kind: str = "ce",
        reconstruction_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
        smooth: float = 1.0,
        name: str = "segmentation_loss",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        _check_kind(kind)
        if int(num_classes) < 1:
            raise ValueError(f"Expected num_classes >= 1, received {num_classes}.")
        if float(reconstruction_weight) < 0:
            raise ValueError(
                f"Expected a non-negative reconstruction weight, received {reconstruction_weight}."
            )
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.kind = kind
        self.reconstruction_weight = float(reconstruction_weight)
        self.class_weights = (
            None if class_weights is None
            else _check_class_weights(class_weights, self.num_classes)
        )
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(logits.shape):
            labels = ops.squeeze(labels, axis=-1)
        valid = ops.logical_and(labels >= 0, labels < self.num_classes)
        valid_f = ops.cast(valid, "float32")
        one_hot = ops.one_hot(ops.where(valid, labels, 0), self.num_classes) * valid_f[..., None]

        log_probs = ops.log_softmax(logits, axis=-1)
        pixel_ce = -ops.sum(one_hot * log_probs, axis=-1)
        if self.class_weights is None:
            pixel_weight = valid_f
        else:
            weights = ops.convert_to_tensor(self.class_weights, dtype="float32")
            pixel_weight = ops.sum(one_hot * weights, axis=-1)
        loss = ops.divide_no_nan(ops.sum(pixel_weight * pixel_ce), ops.sum(pixel_weight))

        if self.kind != "ce" and self.reconstruction_weight > 0:
            probs = ops.exp(log_probs)
            if self.kind == "ce+dice":
                reconstruction = self._dice(probs, one_hot, valid_f)
            else:
                squared = ops.sum(ops.square(probs - one_hot), axis=-1)
                reconstruction = ops.divide_no_nan(ops.sum(squared * valid_f), ops.sum(valid_f))
            loss = loss + self.reconstruction_weight * reconstruction
        return loss

    def _dice(self, probs, one_hot, valid_f):
        probs = ops.reshape(probs * valid_f[..., None], (-1, self.num_classes))
        one_hot = ops.reshape(one_hot, (-1, self.num_classes))
        intersection = ops.sum(probs * one_hot, axis=0)
        total = ops.sum(probs, axis=0) + ops.sum(one_hot, axis=0)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        return 1.0 - ops.mean(dice)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            ignore_label=self.ignore_label,
            kind=self.kind,
            reconstruction_weight=self.reconstruction_weight,
            class_weights=self.class_weights,
            smooth=self.smooth,
        )
        return config


def _check_kind(kind):
    if kind not in LOSS_KINDS:
        raise ValueError(f"Unknown loss {kind!r}; expected one of {list(LOSS_KINDS)}.")


def _check_class_weights(class_weights, num_classes) -> list[float]:
    weights = np.asarray(class_weights, dtype=np.float64).reshape(-1)
    if weights.size != num_classes or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"Expected {num_classes} finite non-negative class weights, received "
            f"{weights.size}: {np.round(weights, 4).tolist()}."
        )
    if not weights.sum() > 0:
        raise ValueError("Expected class weights with at least one positive value, received all 0.")
    return [float(w) for w in weights]


def segmentation_loss(
    class_set: ClassSet,
    kind: str = "ce",
    reconstruction_weight: float = 1.0,
    class_weights: Sequence[float] | None = None,
) -> keras.losses.Loss:
    """The training loss for a dataset's class set; input logits, void excluded.

    Args:
        class_set: Class set of the dataset (number of classes, ignore label).
        kind: ``"ce"`` (default), ``"ce+dice"`` or ``"ce+l2"`` (exercise 16).
        reconstruction_weight: Weight of the Dice / L2 term (ignored for ``"ce"``).
        class_weights: Optional per-class weights of the cross-entropy, e.g.
            ``median_frequency_weights(...)``.

    Returns:
        ``keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=...)``
        for plain unweighted CE, otherwise a :class:`SegmentationLoss`. Both reload
        from ``.keras`` files.

    Example:
        >>> from pixelwise.class_sets import CAMVID, VOC
        >>> loss = segmentation_loss(VOC)                       # the chapter's loss, void ignored
        >>> type(loss).__name__, loss.ignore_class
        ('SparseCategoricalCrossentropy', 255)
        >>> weights = [1.0] * CAMVID.num_classes
        >>> loss = segmentation_loss(CAMVID, "ce+dice", 0.5, class_weights=weights)
        >>> type(loss).__name__, loss.kind, loss.reconstruction_weight
        ('SegmentationLoss', 'ce+dice', 0.5)
    """
    _check_kind(kind)
    if kind == "ce" and class_weights is None:
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=class_set.ignore_label, name="ce"
        )
    return SegmentationLoss(
        num_classes=class_set.num_classes,
        ignore_label=class_set.ignore_label,
        kind=kind,
        reconstruction_weight=reconstruction_weight,
        class_weights=class_weights,
        name=kind.replace("+", "_"),
    )


# --------------------------------------------------------------------------- class weights


def _label_arrays(labels) -> Iterable[np.ndarray]:
    """Yield label maps as numpy arrays from a dataset or an iterable of arrays/batches."""
    # A tf.data.Dataset, recognised by its interface: this module imports no TensorFlow, so
    # `import pixelwise` registers its Keras classes on a JAX-only machine too.
    if hasattr(labels, "element_spec") and hasattr(labels, "as_numpy_iterator"):
        spec = labels.element_spec
        if isinstance(spec, dict):
            labels = labels.map(lambda example: example["label"])
        elif isinstance(spec, tuple):
            labels = labels.map(lambda *pair: pair[1])
        labels = labels.as_numpy_iterator()
    for array in labels:
        array = np.asarray(array)
        if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] == 1):
            array = array[..., 0]
        if array.ndim == 2:
            yield array
        elif array.ndim == 3:
            yield from array
        else:
            raise ValueError(
                f"Expected label maps (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1), "
                f"received shape {array.shape}."
            )


def median_frequency_weights(labels, class_set: ClassSet) -> np.ndarray:
    """Median-frequency class weights (Eigen & Fergus 2015, SegNet) of a training split.

    ``freq_c = (pixels of class c) / (valid pixels of the images where c is present)``
    and ``weight_c = median(freq) / freq_c``, the median taken over the classes
    present. Void pixels (the ignore label) count nowhere. A class never present gets
    weight 0 (it never appears in these labels, so its weight is never used on them).

    Args:
        labels: A ``tf.data.Dataset`` of label maps, of ``(image, label)`` pairs or of
            example dicts with ``label``; or an iterable of NumPy label maps / batches.
        class_set: Number of classes and ignore label.

    Returns:
        float32 array of ``class_set.num_classes`` weights.

    Raises:
        ValueError: a label value that is neither a class id nor the ignore label, or
            no valid pixel at all.

    Example:
        >>> toy = ClassSet("toy", ["a", "b", "c"], [(0, 0, 0), (128, 0, 0), (0, 128, 0)])
        >>> labels = [np.array([[0, 1], [1, 255]])]           # 255: void, class "c" absent
        >>> median_frequency_weights(labels, toy)             # freq 1/3, 2/3; median 1/2
        array([1.5 , 0.75, 0.  ], dtype=float32)
        >>> loss = segmentation_loss(toy, class_weights=median_frequency_weights(labels, toy))
        >>> weights = median_frequency_weights(train_examples, CAMVID)  # doctest: +SKIP
    """
    num_classes = class_set.num_classes
    class_pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for label in _label_arrays(labels):
        values = label.astype(np.int64).ravel()
        values = values[values != class_set.ignore_label]
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"Expected label values in 0..{num_classes - 1} or {class_set.ignore_label} "
                f"(void), received values in {values.min()}..{values.max()}; is this the "
                f"class set {class_set.name!r} of the dataset?"
            )
        counts = np.bincount(values, minlength=num_classes)
        class_pixels += counts
        image_pixels[counts > 0] += values.size
    present = class_pixels > 0
    if not present.any():
        raise ValueError("Expected label maps with at least one non-void pixel, received none.")
    frequency = np.zeros(num_classes, dtype=np.float64)
    frequency[present] = class_pixels[present] / image_pixels[present]
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = np.median(frequency[present]) / frequency[present]
    return weights.astype(np.float32)


__all__ = ["LOSS_KINDS", "SegmentationLoss", "segmentation_loss", "median_frequency_weights"]
