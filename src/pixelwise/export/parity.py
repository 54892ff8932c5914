"""The parity check of an export: does the artefact predict what the Keras model predicts?

Every ``pixelwise export`` runs its artefact in its own runtime (TensorFlow for a
SavedModel, the TFLite interpreter, onnxruntime) beside the Keras model on the same
sample of images, one image at a time at its own size, and writes what it measured to
:data:`~pixelwise.defaults.PARITY_REPORT_NAME` (``parity.json``) next to the artefact:

``format``, ``artefact``, ``passed``, ``pixel_agreement`` (share of all pixels where the
two label maps agree), ``threshold`` (the least agreement that passes), ``num_images``,
``images`` (where they come from), ``mean_iou`` (``keras`` and ``export``, void excluded,
one confusion matrix over the sample; null without labels), ``threads``, ``model_size`` (the (height, width) the model sees), ``preprocessing``, ``artefact_bytes`` and, per format,
``calibration`` (int8) or ``onnx_opset``.

The "Keras model" is the model inside the same serving graph the artefact was made from,
run by TensorFlow in float32: agreement measures what the conversion changed, not the
preprocessing (a TFLite or ONNX graph resizes without antialiasing, as its own
``preprocessing`` entry says; the SavedModel's is predict's).

The sample is the first N images of the run's validation split; a bare model with no
dataset is compared on seeded noise images (agreement, no IoU).

Speed is not measured here: timed once per export, on a machine busy with other work, the
same model's latency differed 9x between two exports. ``benchmarks/bench_export.py`` times
every format under controlled conditions (warm-up calls, then the median of repeats).

Example:
    >>> sample = noise_sample(4, (64, 64), channels=3)
    >>> len(sample.images), sample.images[0].shape, sample.labels
    (4, (64, 64, 3), None)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pixelwise.class_sets import ClassSet, class_set_from_info
from pixelwise.data.pipeline import load_split
from pixelwise.inference.images import to_channels
from pixelwise.metrics import confusion_matrix, mean_iou_from_confusion


@dataclasses.dataclass(frozen=True)
class ParitySample:
    """Images (uint8 ``(H, W, C)``) to compare on, their labels if known, and where they come from."""

    images: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...] | None
    source: str


class ParityError(ValueError):
    """An export's pixel agreement with the Keras model fell below its threshold.

    Attributes:
        report: The parity report (a dict, as written to ``parity.json``).
        kept: The folder the failed export was moved to, for inspection.
    """

    def __init__(self, message: str, report: dict, kept):
        super().__init__(message)
        self.report, self.kept = report, kept


def split_sample(dataset: str, split: str, num_images: int, channels: int, class_set: ClassSet, *,
                 data_dir=None, manual_dir=None) -> ParitySample:
    """The first ``num_images`` examples of a TFDS split, images in ``channels`` channels.

    Raises:
        ValueError: The dataset's classes are not ``class_set``'s, or the split is empty.
    """
    examples, info = load_split(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
    classes = class_set_from_info(info).class_names
    if classes != class_set.class_names:
        raise ValueError(
            f"Dataset {dataset!r} has classes {list(classes)}, the model predicts "
            f"{list(class_set.class_names)}; pass dataset= the one it was trained on."
        )
    images, labels = [], []
    for example in examples.take(num_images).as_numpy_iterator():
        images.append(to_channels(example["image"], channels, source=f"{dataset} {split}"))
        labels.append(example["label"][..., 0])
    if not images:
        raise ValueError(f"Expected images in {dataset!r} split {split!r}, received none.")
    return ParitySample(tuple(images), tuple(labels), f"{dataset} {split}, first {len(images)}")


def noise_sample(num_images: int, size: tuple[int, int], channels: int, seed: int = 0) -> ParitySample:
    """``num_images`` seeded uniform-noise images of ``size``: for a model with no dataset."""
    rng = np.random.default_rng(seed)
    images = tuple(rng.integers(0, 256, (*size, channels), dtype=np.uint8) for _ in range(num_images))
    return ParitySample(images, None, f"uniform noise, seed {seed}: no dataset given")


def measure_parity(reference, artefact, sample: ParitySample, class_set: ClassSet) -> dict:
    """Run both label functions on every image of ``sample`` and compare.

    Args:
        reference: ``images -> labels`` of the Keras model (uint8 ``[1, H, W, C]`` in,
            ``[1, H, W]`` out).
        artefact: The same for the exported artefact, in its runtime.
        sample: The images (and labels) to compare on.
        class_set: Classes of the labels (their count and ignore label).

    Returns:
        ``{"pixel_agreement", "num_images", "images", "mean_iou": {"keras", "export"}}``;
        ``mean_iou`` is None without labels.
    """
    k = class_set.num_classes
    agree = total = 0
    confusion = {"keras": np.zeros((k, k), np.int64), "export": np.zeros((k, k), np.int64)}
    functions = {"keras": reference, "export": artefact}
    for index in _by_shape(sample.images):
        image = sample.images[index][None]
        labels = {name: np.asarray(function(image))[0] for name, function in functions.items()}
        if labels["export"].shape != image.shape[1:3]:
            raise ValueError(f"Expected a label map of {image.shape[1:3]} from the export, "
                             f"received {labels['export'].shape}; the artefact is broken.")
        agree += int(np.sum(labels["keras"] == labels["export"]))
        total += labels["keras"].size
        if sample.labels is not None:
            for name in confusion:
                confusion[name] += confusion_matrix(sample.labels[index], labels[name], k,
                                                    class_set.ignore_label)
    return {
        "pixel_agreement": agree / total,
        "num_images": len(sample.images),
        "images": sample.source,
        "mean_iou": None if sample.labels is None else {
            name: _rounded(mean_iou_from_confusion(cm)) for name, cm in confusion.items()},
    }


def _by_shape(images) -> list[int]:
    """Indices grouped by image shape, so a runtime re-allocates once per shape, not per image."""
    return sorted(range(len(images)), key=lambda i: (images[i].shape, i))


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def parity_line(report: dict) -> str:
    """One line saying what the parity report found, e.g. for the CLI.

    Example:
        >>> parity_line({"format": "onnx", "passed": True, "pixel_agreement": 0.99912,
        ...              "threshold": 0.98, "num_images": 50, "images": "camvid validation, first 50",
        ...              "mean_iou": {"keras": 0.61234, "export": 0.61201}})
        'parity passed: 99.91 % of pixels agree with the Keras model (at least 98.00 % needed) on 50 images (camvid validation, first 50); mean IoU 0.6123 Keras, 0.6120 onnx'
    """
    verdict = "passed" if report["passed"] else "FAILED"
    line = (f"parity {verdict}: {100 * report['pixel_agreement']:.2f} % of pixels agree with the "
            f"Keras model (at least {100 * report['threshold']:.2f} % needed) on "
            f"{report['num_images']} images ({report['images']})")
    iou = report.get("mean_iou")
    if iou and None not in iou.values():
        line += f"; mean IoU {iou['keras']:.4f} Keras, {iou['export']:.4f} {report['format']}"
    return line
