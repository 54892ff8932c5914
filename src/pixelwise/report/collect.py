"""``pixelwise report``: one self-contained HTML page about a trained run.

The page (:mod:`pixelwise.report.html` draws it) holds the run's configuration, its
training curves, the evaluation metrics with the bootstrap interval of mean IoU, per-class
IoU as a bar chart, the confusion matrix as a heat map, the ``k`` worst and ``k`` best
images of the split (image | truth | prediction, with each image's mean IoU) and the
parity reports of the run's exports. Images are embedded as ``data:`` URIs: the file
opens in any browser, offline, with no server and nothing fetched.

Where the numbers come from:

* **Metrics** are ``RUN/eval-<split>.json`` and ``confusion-<split>.json`` as
  ``pixelwise evaluate`` wrote them. When they are absent the report runs that evaluation
  first (:func:`pixelwise.evaluation.evaluator.evaluate_run`, default options, the ``best``
  checkpoint) and writes them, so the run folder holds what the page shows.
* **Per-image mean IoU** (which images are worst and best) is the evaluation's: taken
  from the key ``per_image_mean_iou`` of ``eval-<split>.json`` (one value per image, in
  the split's order) when the file has it, from the evaluation just run otherwise, and
  else recomputed in memory with the options the file records (mode, tile, overlap, TTA,
  resolution, model input size). Only the ``2 k`` images shown are predicted again, with
  those same options.
* **Parity reports** are the JSON files named :data:`~pixelwise.defaults.PARITY_REPORT_NAME`
  (``parity.json``, written by ``pixelwise export`` next to each artefact) found under
  ``RUN/exports/`` (any depth) or under the paths given as ``exports``.

Example:
    >>> build_report("runs/voc", "runs/voc/report.html")                    # doctest: +SKIP
    PosixPath('runs/voc/report.html')
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np

from pixelwise.training.curves import plot_curves
from pixelwise.class_sets import ClassSet, class_set_from_info
from pixelwise.defaults import (
    DEFAULT_CHECKPOINT, DEFAULT_REPORT_EXAMPLES, PARITY_REPORT_NAME,
    REPORT_EXPORTS_DIR,
)
from pixelwise.evaluation.confusion_plot import plot_confusion
from pixelwise.evaluation.evaluator import evaluate, evaluate_run, evaluation_paths
from pixelwise.evaluation.result import recorded_options
from pixelwise.files import check_can_write_file, write_atomic
from pixelwise.training.history import read_history
from pixelwise.inference.images import to_channels
from pixelwise.metrics import confusion_matrix, mean_iou_from_confusion
from pixelwise.inference.options import PredictOptions
from pixelwise.inference.prediction import predict_array, resize_image_uint8
from pixelwise.report.html import render_html
from pixelwise.runs.folder import RunFolder
from pixelwise.runs.loading import load_run
from pixelwise.data.selection import evaluation_examples
from pixelwise.data.transforms import resize_label


@dataclasses.dataclass(frozen=True)
class ShownImage:
    """One image of the gallery: the image, its truth, the prediction and its mean IoU.

    Attributes:
        index: Position in the split (the order of :func:`pixelwise.data.pipeline.load_split`).
        filename: The example's ``image/filename`` (empty if the dataset has none).
        mean_iou: Mean IoU of this image alone (classes present in it), void excluded.
        image: uint8 (H, W, C) as evaluated (resized only at a fixed evaluation size).
        label: (H, W) true class ids, the ignore label for void.
        predicted: (H, W) predicted class ids.
    """

    index: int
    filename: str
    mean_iou: float
    image: np.ndarray
    label: np.ndarray
    predicted: np.ndarray


@dataclasses.dataclass
class ReportData:
    """Everything the page shows; :func:`pixelwise.report.html.render_html` draws it.

    Attributes:
        run: The run folder.
        config: Its ``config.json``.
        split: The split evaluated.
        metrics: The content of ``eval-<split>.json``.
        metrics_path: That file.
        image_size: The fixed size it evaluated at, or ``None`` (native resolution).
        predict_options: How it predicted each image (its ``predict_options``).
        confusion: int64 (K, K) confusion matrix of the split (rows true, columns predicted).
        confusion_png: Its heat map: ``confusion-<split>.png`` as evaluate drew it.
        class_set: The run's classes.
        curves_png: PNG bytes of the training curves, or ``None`` (no history yet).
        worst: The lowest-scoring images, worst first.
        best: The highest-scoring images not among ``worst``, best first.
        parity: ``(path, content)`` of each export parity report found.
        exports_searched: The folders and files searched for parity reports.
        notes: Sentences the reader should see (how the numbers were obtained, mismatches).
    """

    run: Path
    config: dict
    split: str
    metrics: dict
    metrics_path: Path
    image_size: tuple[int, int] | None
    predict_options: PredictOptions
    confusion: np.ndarray
    confusion_png: bytes
    class_set: ClassSet
    curves_png: bytes | None
    worst: list[ShownImage]
    best: list[ShownImage]
    parity: list[tuple[Path, dict]]
    exports_searched: list[Path]
    notes: list[str]


def build_report(run, out, *, split: str | None = None, data_dir=None, manual_dir=None,
                 num_examples: int = DEFAULT_REPORT_EXAMPLES, exports=None,
                 progress: bool = True) -> Path:
    """Write the HTML report of a run (``pixelwise report``).

    Args:
        run: Run folder (path or :class:`~pixelwise.runs.RunFolder`).
        out: The ``.html`` file to write (atomically: the previous one stays until the new
            one is complete).
        split: Split or slice; default: what ``pixelwise evaluate --run`` scores, the run's
            own validation (its held-out groups, or its ``validation_split``), else
            ``validation``.
        data_dir: TFDS data directory holding the built dataset; default: the run's.
        manual_dir: Downloaded data to build the dataset from if needed; default: the run's.
        num_examples: Worst images shown, and as many best ones (default 4).
        exports: Parity report files, or folders searched for ``parity.json`` at any
            depth; default: ``RUN/exports``.
        progress: Say on stderr what is evaluated and predicted.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: No run folder, no checkpoint, dataset not built and not buildable,
            an ``exports`` path that does not exist.
        ValueError: ``num_examples`` < 1, no dataset in the run's config, other classes.
        OSError: ``out`` cannot be written (checked before anything is evaluated).
    """
    check_can_write_file(out, what="the report", example="report.html")
    data = collect_report(run, split=split, data_dir=data_dir, manual_dir=manual_dir,
                          num_examples=num_examples, exports=exports, progress=progress)
    return write_atomic(Path(out), render_html(data))


def collect_report(run, *, split: str | None = None, data_dir=None, manual_dir=None,
                   num_examples: int = DEFAULT_REPORT_EXAMPLES, exports=None,
                   progress: bool = False) -> ReportData:
    """Gather what the report shows (evaluating first if needed); see :func:`build_report`."""
    if int(num_examples) != num_examples or num_examples < 1:
        raise ValueError(f"Expected num_examples= of at least 1 example to show, received {num_examples!r}.")
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    config = run.config()
    dataset = config.get("dataset")
    if not dataset:
        raise ValueError(
            f"Run {str(run.path)!r} names no dataset in config.json; expected a run folder "
            "written by 'pixelwise train', whose config.json names the dataset it was trained on."
        )
    searched = _export_paths(run, exports)  # a wrong --exports fails before any evaluation
    data_dir = data_dir or config.get("data_dir")
    manual_dir = manual_dir or config.get("manual_dir")
    # The split evaluate scores by default: the run's held-out groups or validation split.
    requested = split
    examples, info, split, _ = evaluation_examples(config, dataset, split, data_dir, manual_dir)
    paths, per_image, notes = _evaluation_files(run, split, requested, data_dir, manual_dir,
                                                progress)
    metrics = json.loads(paths["metrics"].read_text())
    image_size, options = recorded_options(metrics)  # a file it cannot read fails before predicting
    confusion = np.asarray(json.loads(paths["confusion"].read_text())["matrix"], np.int64)
    if per_image is None and metrics.get("per_image_mean_iou") is not None:
        per_image = np.array([np.nan if v is None else v for v in metrics["per_image_mean_iou"]])

    loaded = load_run(run, checkpoint=metrics.get("checkpoint") or DEFAULT_CHECKPOINT)
    if class_set_from_info(info).class_names != loaded.class_set.class_names:
        raise ValueError(
            f"Dataset {dataset!r} has classes {list(class_set_from_info(info).class_names)}, the "
            f"run was trained on {list(loaded.class_set.class_names)}; pass the data_dir= the "
            "run was trained with."
        )
    if per_image is None:
        _say(progress, f"{paths['metrics'].name} has no per-image mean IoU: predicting {split} "
             "again with its options to rank the images")
        per_image = _rank_by_evaluating(loaded, examples, metrics, paths["metrics"].name, notes)
    worst, best = rank_images(per_image, num_examples)
    _say(progress, f"predicting the {len(worst) + len(best)} images shown")
    shown = predict_images(loaded, examples, worst + best, metrics)
    if len(shown) < len(worst) + len(best):
        raise ValueError(
            f"{str(paths['metrics'])!r} scores {len(per_image)} images, the split {split!r} has "
            f"fewer now; run 'pixelwise evaluate --run {run.path} --split {split}' again."
        )
    return ReportData(
        run=run.path, config=config, split=split, metrics=metrics, metrics_path=paths["metrics"],
        image_size=image_size, predict_options=options,
        confusion=confusion, confusion_png=_heat_map(paths["heatmap"], confusion, loaded.class_set),
        class_set=loaded.class_set, curves_png=curves_png(run),
        worst=[shown[i] for i in worst], best=[shown[i] for i in best],
        parity=find_parity_reports(searched), exports_searched=searched, notes=notes,
    )


def _evaluation_files(run: RunFolder, split: str, requested, data_dir, manual_dir,
                      progress: bool):
    """``(paths, per_image_mean_iou or None, notes)``: the evaluation files, written if absent.

    ``split`` names the files (``held-out-0006R0`` for a run's held-out groups);
    ``requested`` is the split asked for (None: the run's own validation).
    """
    paths = evaluation_paths(run.path, split)
    if paths["metrics"].exists():
        return paths, None, []
    _say(progress, f"{paths['metrics']} does not exist: evaluating the run on {split} first")
    result, paths, _ = evaluate_run(run, split=requested, data_dir=data_dir,
                                    manual_dir=manual_dir, progress=progress)
    return paths, result.per_image_mean_iou, [
        f"{paths['metrics'].name} was written by this report (pixelwise evaluate, default options)."]


def _rank_by_evaluating(loaded, examples, metrics: dict, name: str, notes: list) -> np.ndarray:
    """Per-image mean IoU from a new evaluation with the options ``metrics`` records."""
    image_size, options = recorded_options(metrics)
    result = evaluate(loaded, examples, image_size=image_size, options=options, bootstrap_resamples=0)
    recorded = metrics.get("mean_iou")
    if recorded is None or not np.isclose(result.mean_iou, recorded, atol=1e-6):
        notes.append(
            f"The images were ranked by a new evaluation whose mean IoU "
            f"({100 * result.mean_iou:.2f} %) differs from {name}'s "
            f"({_percent(recorded)}): the file is older than the checkpoint or the data; "
            "run 'pixelwise evaluate' again.")
    return result.per_image_mean_iou


def rank_images(per_image_iou, k: int) -> tuple[list[int], list[int]]:
    """Indices of the ``k`` worst images (worst first) and the ``k`` best of the rest (best first).

    Images without a score (NaN: every pixel void) are left out; ties keep the split's order.

    Example:
        >>> rank_images([0.5, 0.1, float("nan"), 0.9, 0.7], 2)
        ([1, 0], [3, 4])
        >>> rank_images([0.5, 0.1, 0.9], 2)
        ([1, 0], [2])
    """
    scores = np.asarray(per_image_iou, np.float64)
    order = [int(i) for i in np.argsort(scores, kind="stable") if not np.isnan(scores[i])]
    worst = order[:k]
    best = order[k:][::-1][:k]
    return worst, best


def predict_images(loaded, examples, indices, metrics: dict) -> dict[int, ShownImage]:
    """Predict the examples at ``indices`` as the evaluation in ``metrics`` did.

    Args:
        loaded: :class:`~pixelwise.runs.LoadedRun`.
        examples: The split, a ``tf.data.Dataset`` of dicts (:func:`pixelwise.data.pipeline.load_split`).
        indices: Positions in the split.
        metrics: ``eval-<split>.json``'s content: its ``image_size`` and
            ``predict_options`` say how to predict
            (:func:`pixelwise.evaluation.result.recorded_options`).

    Returns:
        ``{index: ShownImage}``.
    """
    wanted, shown = set(indices), {}
    fixed, options = recorded_options(metrics)
    class_set = loaded.class_set
    channels = loaded.model.input_shape[-1]
    for index, example in enumerate(examples.as_numpy_iterator()):
        if index not in wanted:
            continue
        image, label = example["image"], example["label"]
        image = to_channels(image if image.shape[-1] != 1 else image[..., 0], channels,
                            source=f"example {index}")
        if fixed is not None:
            image = resize_image_uint8(image, fixed)
            label = resize_label(label, fixed).numpy()
        predicted, _, _ = predict_array(loaded.model, image, options)
        label = label[..., 0]
        matrix = confusion_matrix(label, predicted, class_set.num_classes, class_set.ignore_label)
        filename = example.get("image/filename", b"")
        shown[index] = ShownImage(
            index=index, filename=filename.decode() if isinstance(filename, bytes) else str(filename),
            mean_iou=mean_iou_from_confusion(matrix), image=image, label=label, predicted=predicted,
        )
        if len(shown) == len(wanted):
            break
    return shown


def curves_png(run: RunFolder) -> bytes | None:
    """The run's ``curves.png``, else curves drawn from ``history.csv``, else ``None``."""
    if run.curves_path.is_file():
        return run.curves_path.read_bytes()
    rows = read_history(run.history_path)
    if not rows:
        return None
    buffer = io.BytesIO()
    plot_curves(rows).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _heat_map(path: Path, confusion: np.ndarray, class_set: ClassSet) -> bytes:
    """The heat map evaluate wrote beside eval-<split>.json, drawn again only if it is missing."""
    if path.is_file():
        return path.read_bytes()
    return plot_confusion(confusion, class_set.class_names)


def _export_paths(run: RunFolder, exports) -> list[Path]:
    if exports is None:
        return [run.path / REPORT_EXPORTS_DIR]  # a run with no exports has no such folder
    paths = [Path(exports)] if isinstance(exports, (str, Path)) else [Path(p) for p in exports]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"Expected exports= to name parity report files or folders holding "
            f"{PARITY_REPORT_NAME}, received {missing[0]!r}, which does not exist."
        )
    return paths


def find_parity_reports(paths) -> list[tuple[Path, dict]]:
    """``(path, content)`` of every parity report in ``paths`` (files, or folders at any depth).

    A file that is not a JSON object is reported as such in place of its content, so a
    broken report shows up on the page instead of vanishing.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob(PARITY_REPORT_NAME)))
    found = []
    for file in dict.fromkeys(files):
        try:
            content = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            content = {"error": f"unreadable: {exc}"}
        if not isinstance(content, dict):
            content = {"error": f"expected a JSON object, found {type(content).__name__}"}
        found.append((file, content))
    return found


def _percent(value) -> str:
    return "-" if value is None else f"{100 * float(value):.2f} %"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr)


__all__ = [
    "ReportData", "ShownImage", "build_report", "collect_report", "curves_png",
    "find_parity_reports", "predict_images", "rank_images",
]
