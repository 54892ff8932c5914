"""What an evaluation found: the split's confusion matrix and every metric derived from it.

:func:`pixelwise.evaluation.evaluator.evaluate` fills an :class:`EvaluationResult`; its
:meth:`~EvaluationResult.to_json` is the content of ``eval-<split>.json`` and its
:meth:`~EvaluationResult.table` what ``pixelwise evaluate`` prints.

From the split's confusion matrix (:mod:`pixelwise.metrics`): per-class IoU, precision,
recall (the per-class accuracy) and Dice; mean IoU and mean Dice over the classes
present; frequency-weighted IoU; pixel accuracy. From the label maps: boundary IoU
(:mod:`pixelwise.evaluation.boundary_iou`). From one confusion matrix per image: the bootstrap
interval of mean IoU (:mod:`pixelwise.evaluation.bootstrap`).

Example:
    >>> from pixelwise.class_sets import ClassSet
    >>> two = ClassSet("two", ("background", "cat"), ((0, 0, 0), (9, 9, 9)))
    >>> result = EvaluationResult(np.array([[6, 2], [0, 2]]), two, 1)
    >>> round(result.mean_iou, 4), round(result.frequency_weighted_iou, 4), result.precision.tolist()
    (0.625, 0.7, [1.0, 0.5])
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pixelwise.evaluation.bootstrap import BootstrapInterval
from pixelwise.evaluation.boundary_iou import BoundaryCounts
from pixelwise.class_sets import ClassSet
from pixelwise.metrics import (
    class_accuracy_from_confusion, dice_from_confusion, frequency_weighted_iou_from_confusion,
    iou_from_confusion, mean_class_accuracy_from_confusion, mean_dice_from_confusion,
    mean_iou_from_confusion, pixel_accuracy_from_confusion, precision_from_confusion,
)
from pixelwise.inference.options import NATIVE, PredictOptions
from pixelwise.inference.tta import TTA
from pixelwise.sizes import pair_text


@dataclasses.dataclass
class EvaluationResult:
    """Confusion matrix of a split and the metrics derived from it.

    Attributes:
        confusion: int64 (K, K); ``confusion[t, p]`` = pixels of true class ``t`` predicted ``p``.
        class_set: Names the classes.
        num_images: Images evaluated.
        image_size: ``(height, width)`` images and labels were resized to (a fixed
            evaluation size), or ``None``: each label's native resolution.
        options: How each image was predicted, defaults filled in
            (:class:`~pixelwise.inference.options.PredictOptions`: ``model_size`` the model saw
            in mode ``whole``, ``"native"`` for each image's own size; the tile and overlap in
            effect in mode ``slide``; the TTA).
        per_image_confusion: int64 (N, K, K), one matrix per image, or ``None``.
        boundary: Boundary IoU intersections and unions per class, or ``None``.
        boundary_ratio: Band width of the boundary IoU, a fraction of the image diagonal.
        interval: Bootstrap interval of mean IoU over images, or ``None``.
        seconds_per_image: Mean wall time of one image's prediction (TTA views included).
    """

    confusion: np.ndarray
    class_set: ClassSet
    num_images: int
    image_size: tuple[int, int] | None = None
    options: PredictOptions = PredictOptions(model_size=NATIVE)
    per_image_confusion: np.ndarray | None = None
    boundary: BoundaryCounts | None = None
    boundary_ratio: float | None = None
    interval: BootstrapInterval | None = None
    seconds_per_image: float | None = None

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN for classes absent from labels and predictions."""
        return iou_from_confusion(self.confusion)

    @property
    def mean_iou(self) -> float:
        return mean_iou_from_confusion(self.confusion)

    @property
    def frequency_weighted_iou(self) -> float:
        return frequency_weighted_iou_from_confusion(self.confusion)

    @property
    def pixel_accuracy(self) -> float:
        return pixel_accuracy_from_confusion(self.confusion)

    @property
    def class_accuracy(self) -> np.ndarray:
        """Per-class accuracy, i.e. recall ``TP / (TP + FN)``."""
        return class_accuracy_from_confusion(self.confusion)

    recall = class_accuracy

    @property
    def precision(self) -> np.ndarray:
        return precision_from_confusion(self.confusion)

    @property
    def dice(self) -> np.ndarray:
        return dice_from_confusion(self.confusion)

    @property
    def mean_dice(self) -> float:
        return mean_dice_from_confusion(self.confusion)

    @property
    def mean_class_accuracy(self) -> float:
        return mean_class_accuracy_from_confusion(self.confusion)

    @property
    def boundary_iou(self) -> np.ndarray:
        """Per-class boundary IoU (NaN where its band is empty; all NaN if not computed)."""
        if self.boundary is None:
            return np.full(self.class_set.num_classes, np.nan)
        return self.boundary.iou()

    @property
    def mean_boundary_iou(self) -> float:
        return float("nan") if self.boundary is None else self.boundary.mean_iou()

    @property
    def per_image_mean_iou(self) -> np.ndarray | None:
        """Mean IoU of each image on its own (classes present in it), or ``None``."""
        if self.per_image_confusion is None:
            return None
        return np.array([mean_iou_from_confusion(cm) for cm in self.per_image_confusion])

    def to_json(self) -> dict:
        """The content of ``eval-<split>.json`` (NaN written as ``null``)."""
        iou, precision, recall = self.iou, self.precision, self.recall
        dice, boundary = self.dice, self.boundary_iou
        per_image = self.per_image_mean_iou
        return {
            "num_images": self.num_images,
            "image_size": list(self.image_size) if self.image_size else None,
            # Read back by the report with PredictOptions.from_dict.
            "predict_options": self.options.to_dict(),
            "pixel_accuracy": _finite(self.pixel_accuracy),
            "mean_iou": _finite(self.mean_iou),
            "mean_iou_interval": self.interval.to_json() if self.interval else None,
            "frequency_weighted_iou": _finite(self.frequency_weighted_iou),
            "mean_dice": _finite(self.mean_dice),
            "boundary_iou": _finite(self.mean_boundary_iou),
            "boundary_ratio": self.boundary_ratio,
            "mean_class_accuracy": _finite(self.mean_class_accuracy),
            "classes_in_mean": [n for n, v in zip(self.class_set.class_names, iou) if not np.isnan(v)],
            "per_class": {
                name: {
                    "iou": _finite(iou[i]), "accuracy": _finite(recall[i]),
                    "precision": _finite(precision[i]), "recall": _finite(recall[i]),
                    "dice": _finite(dice[i]), "boundary_iou": _finite(boundary[i]),
                    "label_pixels": int(self.confusion[i].sum()),
                    "predicted_pixels": int(self.confusion[:, i].sum()),
                }
                for i, name in enumerate(self.class_set.class_names)
            },
            # In split order; the report picks the worst and best images from it.
            "per_image_mean_iou": None if per_image is None else [_finite(v) for v in per_image],
            "seconds_per_image": _finite(self.seconds_per_image) if self.seconds_per_image else None,
            "void_excluded": True,
            "ignore_label": self.class_set.ignore_label,
        }

    def table(self) -> str:
        """A plain-text table: one row per class, then the means."""
        width = max(12, *(len(n) for n in self.class_set.class_names))
        columns = ("IoU %", "bIoU %", "prec %", "recall %", "Dice %")
        lines = [f"{'class':<{width}}" + "".join(f"  {c:>8}" for c in columns) + f"  {'pixels':>12}"]
        rows = (self.iou, self.boundary_iou, self.precision, self.recall, self.dice)
        for i, name in enumerate(self.class_set.class_names):
            lines.append(f"{name:<{width}}" + "".join(f"  {_percent(row[i]):>8}" for row in rows)
                         + f"  {int(self.confusion[i].sum()):>12,}")
        lines.append("-" * len(lines[0]))
        interval = ""
        if self.interval is not None:
            interval = (f"  {100 * self.interval.confidence:g}% interval {_percent(self.interval.low)}"
                        f"-{_percent(self.interval.high)} ({self.interval.resamples} bootstrap "
                        "resamples of the images)")
        for label, value, note in (
            ("mean IoU", self.mean_iou, interval),
            ("fw IoU", self.frequency_weighted_iou, "  (IoU weighted by class pixels)"),
            ("boundary IoU", self.mean_boundary_iou,
             f"  (band: {100 * self.boundary_ratio:g}% of the image diagonal)"
             if self.boundary is not None else ""),
            ("mean Dice", self.mean_dice, ""),
            ("pixel acc.", self.pixel_accuracy, ""),
            ("mean acc.", self.mean_class_accuracy, "  (mean recall)"),
        ):
            lines.append(f"{label:<{width}}  {_percent(value):>8}{note}")
        where = ("native label resolution" if self.image_size is None
                 else f"fixed {pair_text(self.image_size)}")
        timing = f", {self.seconds_per_image:.3f} s/image" if self.seconds_per_image else ""
        lines.append(f"{self.num_images} images, metrics at {where}, {how_predicted(self.options)}"
                     f"{timing}, void excluded")
        return "\n".join(lines)


def recorded_options(metrics: dict) -> tuple[tuple[int, int] | None, PredictOptions]:
    """``(image_size, options)`` that ``eval-<split>.json`` records: how evaluate predicted.

    The reverse of :meth:`EvaluationResult.to_json` for these keys: ``image_size`` is the
    fixed evaluation size (``None``: native resolution); the options are
    :meth:`PredictOptions.from_dict` of its ``predict_options``. The report predicts again
    with them.

    Example:
        >>> recorded_options({"image_size": None, "predict_options": {"mode": "slide", "tile": 64}})
        (None, PredictOptions(model_size=None, mode='slide', tile=64, overlap=None, tta=TTA(flip=False, scales=(1.0,))))
    """
    if "predict_options" in metrics:
        size = metrics.get("image_size")
        return (tuple(size) if size else None), PredictOptions.from_dict(metrics["predict_options"])
    # Files written before PredictOptions existed kept the options as
    # top-level keys, the model's size as "input_size", the fixed size as "resolution" text
    # and the TTA as its spec; read them here, in this one place, so such runs still report.
    resolution = metrics.get("resolution", "native")
    fixed = None if resolution == "native" else tuple(int(s) for s in resolution.split("x"))
    size = metrics.get("input_size")
    mode = metrics.get("mode") or "whole"
    return fixed, PredictOptions(
        model_size=(tuple(size) if size else NATIVE) if mode == "whole" else None, mode=mode,
        tile=_pair(metrics.get("tile")), overlap=_pair(metrics.get("overlap")),
        tta=TTA.parse(metrics.get("tta")))


def _pair(value):
    return tuple(value) if isinstance(value, list) else value


def how_predicted(options: PredictOptions) -> str:
    """One line for people: ``whole: model input 24x32, TTA flip`` or ``slide: 64px tiles, ...``.

    Example:
        >>> how_predicted(PredictOptions(tile=(12, 20), overlap=4, tta="flip"))
        'slide: 12x20px tiles, overlap 4, TTA flip'
    """
    if options.mode == "slide":
        tile, overlap = (("default" if v is None else pair_text(v)) for v in (options.tile, options.overlap))
        how = f"slide: {tile}px tiles, overlap {overlap}"
    elif options.model_size in (None, NATIVE):
        how = "whole: model input each image's own size"
    else:
        how = f"whole: model input {options.model_size[0]}x{options.model_size[1]}"
    return f"{how}, TTA {options.tta}"


def _finite(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def _percent(value) -> str:
    return "-" if np.isnan(value) else f"{100 * float(value):.2f}"


__all__ = ["EvaluationResult", "how_predicted", "recorded_options"]
