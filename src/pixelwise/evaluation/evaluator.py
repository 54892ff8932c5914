"""Evaluation: pixel accuracy, per-class and mean IoU over a whole split, void excluded.

As the VOC devkit does, one confusion matrix is accumulated over every pixel of the
split (not averaged per image or per batch); IoU of class ``c`` is
``TP / (TP + FP + FN)``; the mean is over the classes present (non-empty union:
in the labels or in the predictions), as Keras' ``MeanIoU`` does. Void pixels
(the class set's ignore label, 255) are left out of everything.

Resolution:

* **native** (default): each image is resized to the size the model was trained at
  (``options.model_size``; default :attr:`pixelwise.runs.LoadedRun.image_size`: the model's
  fixed input size, else the run's ``image_size``, else the image's own size), predicted,
  and the softmax probabilities are resized back to the label's size (bilinear) before
  the argmax, exactly as :func:`pixelwise.predict` does. Labels are never resized. Class
  ids are never interpolated.
* **fixed** (``image_size=``): images are resized bilinearly and labels with nearest
  neighbour to ``image_size``, as the training pipeline's validation batches are.

How each image is predicted: mode ``whole`` (the resolutions above) or ``slide``
(overlapping tiles at the image's resolution, :mod:`pixelwise.inference.tiling`), with or without
test-time augmentation (:mod:`pixelwise.inference.tta`); both are
:func:`pixelwise.inference.prediction.predict_probabilities`, exactly what ``pixelwise predict`` runs.

Besides the confusion matrix, evaluation keeps one confusion matrix per image (int64
K x K each: 1449 VOC images x 21² classes are 5 MB, 500 Cityscapes images x 19² are
1.4 MB; 2000 ADE20K images x 150² would be 360 MB) for the bootstrap interval of mean IoU,
and the boundary IoU counts (:mod:`pixelwise.evaluation.boundary_iou`). The metrics themselves are
:class:`~pixelwise.evaluation.result.EvaluationResult`'s.

:func:`evaluate_run` and :func:`evaluate_model_file` evaluate on a TFDS split and write
the results with :func:`write_evaluation` (``pixelwise evaluate``).

Example:
    >>> from pixelwise.data.pipeline import load_split                       # doctest: +SKIP
    >>> examples, info = load_split("camvid", "validation")          # doctest: +SKIP
    >>> result = evaluate("runs/camvid", examples)                   # doctest: +SKIP
    >>> print(result.table())                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from pixelwise.inference import tiling as tiling
from pixelwise.evaluation.bootstrap import bootstrap_mean_iou
from pixelwise.evaluation.boundary_iou import BoundaryCounts, boundary_width
from pixelwise.class_sets import ClassSet, class_set_from_info, resolve_class_set
from pixelwise.sizes import normalize_image_size
from pixelwise.data.pipeline import load_split
from pixelwise.defaults import (
    DEFAULT_BOOTSTRAP_RESAMPLES, DEFAULT_BOOTSTRAP_SEED, DEFAULT_BOUNDARY_RATIO, DEFAULT_CHECKPOINT,
    DEFAULT_SPLIT, DEFAULT_TILE_BATCH,
)
from pixelwise.evaluation.confusion_plot import plot_confusion
# EvaluationResult lived here before 0.2; it stays importable from pixelwise.evaluation.evaluator.
from pixelwise.evaluation.result import EvaluationResult
from pixelwise.files import check_can_write, write_all_atomic
from pixelwise.inference.images import to_channels
from pixelwise.metrics import confusion_matrix
from pixelwise.inference.options import PredictOptions, as_options
from pixelwise.inference.prediction import default_tile, predict_array, resize_image_uint8
from pixelwise.runs.folder import RunFolder
from pixelwise.runs.loading import load_run
from pixelwise.data.selection import evaluation_examples
from pixelwise.data.transforms import resize_label


def _examples(examples):
    """Yield ``(image, label)`` uint8 numpy pairs from a tf.data dataset of dicts or an iterable."""
    if hasattr(examples, "as_numpy_iterator"):
        examples = examples.as_numpy_iterator()
    for example in examples:
        if isinstance(example, dict):
            if "image" not in example or "label" not in example:
                raise ValueError(
                    f"Expected examples with 'image' and 'label', received keys {sorted(example)}."
                )
            yield np.asarray(example["image"]), np.asarray(example["label"])
        else:
            image, label = example
            yield np.asarray(image), np.asarray(label)


def evaluate(
    model_or_run,
    examples,
    class_set: ClassSet | str | None = None,
    *,
    image_size=None,
    options: PredictOptions | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    batch_size: int = DEFAULT_TILE_BATCH,
    boundary_ratio: float = DEFAULT_BOUNDARY_RATIO,
    bootstrap_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate a model on a split: one confusion matrix over all its pixels, and more.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), ``RunFolder`` or its path, a
            ``.keras`` file, or a :class:`~pixelwise.runs.LoadedRun`.
        examples: ``tf.data.Dataset`` of dicts with ``image`` (H, W, C) uint8 and ``label``
            (H, W, 1) (what :func:`pixelwise.data.pipeline.load_split` returns), or an iterable of
            ``(image, label)`` arrays.
        class_set: The classes (or a class set's name or JSON path); default: the run's.
            Labels must be class ids or its ignore label.
        image_size: Evaluate at this fixed size (int or (H, W)) instead of native resolution:
            images and labels are resized to it, as the training pipeline's validation is.
        options: How each image is predicted, a
            :class:`~pixelwise.inference.options.PredictOptions`: ``model_size``, the size
            the model sees in mode ``whole`` (default: ``image_size`` if given, else the
            model's fixed input size, else the run's ``image_size`` in config.json, else each
            image's own size); ``mode`` ``whole`` (default) or ``slide`` (overlapping tiles
            at the image's resolution; default when ``tile`` is given); ``tile`` (default:
            the model's fixed input, else ``model_size``, the training size); ``overlap``
            (default: :func:`pixelwise.inference.tiling.default_overlap`); ``tta``, e.g.
            ``"flip"`` or ``"flip,scales=0.75,1,1.25"`` (default none). The options in
            effect, defaults filled in, are the result's ``options``.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders (default ``best``).
        batch_size: Tiles per forward pass (default 4).
        boundary_ratio: Boundary IoU band width, a fraction of each image's diagonal (0.02).
        bootstrap_resamples: Resamples of the mean IoU interval (default 1000; 0: none).
        bootstrap_seed: Seed of the resampling (default 0).
        progress: Print a progress line to stderr every 50 images.

    Returns:
        :class:`~pixelwise.evaluation.result.EvaluationResult`.

    Example:
        >>> result = evaluate(model, [(image, label)], class_set=VOC,             # doctest: +SKIP
        ...                   options=PredictOptions(tta="flip"))
        >>> result.mean_iou, result.interval.low, result.mean_boundary_iou          # doctest: +SKIP
    """
    options = as_options(options)
    if int(bootstrap_resamples) != bootstrap_resamples or bootstrap_resamples < 0:
        raise ValueError(
            f"Expected a number of bootstrap resamples >= 0 (0: no interval), received "
            f"{bootstrap_resamples!r}."
        )
    boundary_width(1, 1, boundary_ratio)  # checks the ratio before any prediction
    loaded = load_run(model_or_run, class_set, checkpoint)
    model, class_set = loaded.model, loaded.class_set
    channels = model.input_shape[-1]
    image_size = normalize_image_size(image_size)
    options = options.with_default_size(image_size or loaded.image_size)
    if options.mode == "slide":
        tile = options.tile if options.tile is not None else default_tile(model, options.model_size)
        rows, cols = tiling.tile_geometry(model, tile, options.overlap)
        # The tile and overlap in effect; the model size only chose the default tile.
        options = PredictOptions(mode="slide", tile=(rows.tile, cols.tile),
                                 overlap=(2 * rows.crop, 2 * cols.crop), tta=options.tta)

    num_classes = class_set.num_classes
    per_image, boundary = [], BoundaryCounts.zeros(num_classes)
    seconds = 0.0
    for count, (image, label) in enumerate(_examples(examples)):
        image = to_channels(image if image.ndim == 2 or image.shape[-1] != 1 else image[..., 0],
                            channels, source=f"example {count}")
        label = label[..., None] if label.ndim == 2 else label
        if image.shape[:2] != label.shape[:2]:
            raise ValueError(
                f"Example {count}: expected an image and label of the same size, received "
                f"{image.shape[:2]} and {label.shape[:2]}."
            )
        if image_size is not None:
            image = resize_image_uint8(image, image_size)
            label = resize_label(label, image_size).numpy()
        started = time.perf_counter()
        predicted, _, _ = predict_array(model, image, options, batch_size=batch_size)
        seconds += time.perf_counter() - started
        label = label[..., 0]
        per_image.append(confusion_matrix(label, predicted, num_classes, class_set.ignore_label))
        boundary.add(label, predicted, boundary_width(*label.shape, boundary_ratio),
                     class_set.ignore_label)
        if progress and (count + 1) % 50 == 0:
            print(f"evaluated {count + 1} images", file=sys.stderr)
    if not per_image:
        raise ValueError("Expected at least one example to evaluate, received an empty split.")
    per_image = np.stack(per_image)
    interval = (bootstrap_mean_iou(per_image, bootstrap_resamples, bootstrap_seed)
                if bootstrap_resamples else None)
    return EvaluationResult(
        confusion=per_image.sum(axis=0), class_set=class_set, num_images=len(per_image),
        image_size=image_size, options=options, per_image_confusion=per_image,
        boundary=boundary, boundary_ratio=float(boundary_ratio), interval=interval,
        seconds_per_image=seconds / len(per_image),
    )


def evaluate_run(run, dataset: str | None = None, split: str | None = None, *,
                 data_dir=None, manual_dir=None, image_size=None,
                 options: PredictOptions | None = None, checkpoint: str = DEFAULT_CHECKPOINT,
                 out=None, progress: bool = True, **kwargs):
    """Evaluate a run folder on a TFDS split and write the results (``pixelwise evaluate``).

    Args:
        run: Run folder (path or ``RunFolder``).
        dataset: TFDS name; default: the run's ``dataset``.
        split: Split or slice; default: the run's validation (its held-out groups, written
            as ``held-out-GROUP``, or its ``validation_split``), else ``"validation"``. A
            split sharing groups with the run's training examples is evaluated with a
            :class:`~pixelwise.data.groups.GroupOverlapWarning`, the groups recorded in
            ``eval-<split>.json`` (``shares_groups_with_training``).
        data_dir: TFDS data directory; default: the run's.
        manual_dir: Downloaded data to build the dataset from if needed; default: the run's.
        image_size: Fixed evaluation size instead of native resolution.
        options: How each image is predicted (see :func:`evaluate`); recorded in
            ``eval-<split>.json`` as ``predict_options``.
        checkpoint: ``best``, ``last`` or a ``.keras`` file (default ``best``).
        out: Folder for the results; default: the run folder.
        progress: Report progress on stderr.
        **kwargs: ``batch_size``, ``boundary_ratio``, ``bootstrap_resamples``,
            ``bootstrap_seed`` of :func:`evaluate`.

    Returns:
        ``(result, paths, meta)``: :class:`EvaluationResult`, the files written (see
        :func:`write_evaluation`) and ``{"dataset", "split"}``.

    Raises:
        FileNotFoundError: No run folder, no checkpoint, dataset not built and not buildable.
        ValueError: The dataset's classes differ from the run's.
        OSError: ``out`` cannot be written (checked before the dataset is loaded).
    """
    options = as_options(options)  # a wrong type fails before the dataset is loaded
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    loaded = load_run(run, checkpoint=checkpoint)  # fails before the dataset is loaded
    check_can_write(out or run.path)  # and so does an output folder that cannot be written
    config = loaded.config
    dataset = dataset or config.get("dataset")
    if not dataset:
        raise ValueError(f"Run {str(run.path)!r} does not name its dataset in config.json; pass dataset=NAME.")
    examples, info, split, shared = evaluation_examples(config, dataset, split, data_dir, manual_dir)
    dataset_class_set = class_set_from_info(info)
    if dataset_class_set.class_names != loaded.class_set.class_names:
        raise ValueError(
            f"Dataset {dataset!r} has classes {list(dataset_class_set.class_names)}, the run was "
            f"trained on {list(loaded.class_set.class_names)}; evaluate on the dataset it was trained on."
        )
    result = evaluate(loaded, examples, image_size=image_size, options=options,
                      progress=progress, **kwargs)
    paths = write_evaluation(result, out or run.path, split, extra={
        "dataset": dataset, "run": str(run.path), "checkpoint": checkpoint,
        "shares_groups_with_training": {g: {"trained": t, "evaluated": n}
                                        for g, (t, n) in shared.items()},
    })
    return result, paths, {"dataset": dataset, "split": split}


def evaluate_model_file(path, dataset: str, split: str | None = None, *, out,
                        class_set: ClassSet | str | None = None, data_dir=None, manual_dir=None,
                        image_size=None, options: PredictOptions | None = None,
                        progress: bool = True, **kwargs):
    """Evaluate any ``.keras`` model file on a TFDS split and write the results.

    What ``pixelwise evaluate --checkpoint FILE.keras --dataset D --out DIR`` runs when
    there is no run folder: the class set comes from the dataset's metadata (or
    ``class_set``), and the model sees each image at its own size unless it has a fixed
    input size or ``options.model_size``/``image_size`` says otherwise.

    Args:
        path: A ``.keras`` model file whose outputs are one logit (or probability) per class.
        dataset: TFDS name, e.g. ``"camvid"``.
        split: Split or slice; default ``"validation"``.
        out: Folder for the results (required: there is no run folder to write to).
        class_set: The classes (a class set, its name or a JSON path); default: the
            dataset's (``class_set_from_info``). Must name the same classes as the dataset
            when the dataset has a class set.
        data_dir: TFDS data directory.
        manual_dir: Downloaded data to build the dataset from if needed.
        image_size: Fixed evaluation size instead of native resolution.
        options: How each image is predicted (see :func:`evaluate`).
        progress: Report progress on stderr.
        **kwargs: As for :func:`evaluate_run`.

    Returns:
        ``(result, paths, meta)`` as :func:`evaluate_run`.

    Raises:
        FileNotFoundError: No such model file; dataset not built and not buildable.
        ValueError: Not a ``.keras`` file, no ``out``, or a class set that differs from the
            dataset's or from the model's output channels.
        OSError: ``out`` cannot be written (checked before the dataset is loaded).

    Example:
        >>> result, paths, _ = evaluate_model_file("voc.keras", "voc2012_semantic",  # doctest: +SKIP
        ...                                        out="eval/voc")
        >>> paths["metrics"].name                                    # doctest: +SKIP
        'eval-validation.json'
    """
    options = as_options(options)
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(
            f"Expected a .keras model file, received {str(path)!r}; for a run folder use "
            "evaluate_run(run='runs/NAME'), or pass a file saved with model.save('NAME.keras')."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Model file {str(path)!r} does not exist.")
    if out is None:
        raise ValueError(
            f"Expected out=DIR for the results of {str(path)!r}, received none; a model file "
            "has no run folder to write eval-SPLIT.json to."
        )
    check_can_write(out)
    class_set = resolve_class_set(class_set)
    split = split or DEFAULT_SPLIT
    examples, info = load_split(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
    try:
        dataset_class_set = class_set_from_info(info)
    except ValueError:  # a TFDS dataset not built by pixelwise
        dataset_class_set = None
    if class_set is None:
        if dataset_class_set is None:
            raise ValueError(
                f"Dataset {dataset!r} stores no class set in its metadata; pass "
                "class_set='voc', 'camvid', 'isbi2012' or a FILE.json."
            )
        class_set = dataset_class_set
    elif dataset_class_set is not None and dataset_class_set.class_names != class_set.class_names:
        raise ValueError(
            f"Dataset {dataset!r} has classes {list(dataset_class_set.class_names)}, the class set "
            f"{class_set.name!r} has {list(class_set.class_names)}; leave class_set= out to use "
            "the dataset's."
        )
    result = evaluate(path, examples, class_set, image_size=image_size, options=options,
                      progress=progress, **kwargs)
    paths = write_evaluation(result, out, split, extra={
        "dataset": dataset, "checkpoint": str(path), "class_set": class_set.name,
    })
    return result, paths, {"dataset": dataset, "split": split}


def evaluation_paths(out_dir, split: str) -> dict:
    """Where :func:`write_evaluation` puts the results of ``split`` (a slice made file-safe).

    Example:
        >>> evaluation_paths("runs/voc", "validation[:10]")["metrics"].name
        'eval-validation_-10.json'
    """
    out_dir = Path(out_dir)
    safe = split.replace("/", "_").replace("[", "_").replace("]", "").replace(":", "-")
    return {
        "metrics": out_dir / f"eval-{safe}.json",
        "confusion": out_dir / f"confusion-{safe}.json",
        "heatmap": out_dir / f"confusion-{safe}.png",
    }


def write_evaluation(result: EvaluationResult, out_dir, split: str, extra: dict | None = None) -> dict:
    """Write ``eval-<split>.json``, ``confusion-<split>.json`` and ``confusion-<split>.png``.

    The three are written under temporary names and then renamed
    (:func:`pixelwise.files.write_all_atomic`), so an interrupted call leaves the previous
    files or the new ones, never half of one.

    Args:
        result: From :func:`evaluate`.
        out_dir: Folder (the run folder by default in the CLI); created if missing.
        split: Split name used in the file names.
        extra: More keys for ``eval-<split>.json`` (dataset, checkpoint, ...).

    Returns:
        ``{"metrics": path, "confusion": path, "heatmap": path}``.
    """
    paths = evaluation_paths(out_dir, split)
    metrics = {"split": split, **(extra or {}), **result.to_json(),
               "confusion_matrix": paths["confusion"].name, "heatmap": paths["heatmap"].name}
    confusion = {
        "rows": "true class", "columns": "predicted class", "void_excluded": True,
        "class_names": list(result.class_set.class_names), "matrix": result.confusion.tolist(),
    }
    write_all_atomic({
        paths["metrics"]: json.dumps(metrics, indent=2),
        paths["confusion"]: json.dumps(confusion, indent=1),
        paths["heatmap"]: plot_confusion(result.confusion, result.class_set.class_names),
    })
    return paths
