"""The steps of ``predict --beam`` (:mod:`pixelwise.inference.beam`): Beam's model handler for a
pixelwise run, and the DoFns that skip complete images, decode, and write the outputs.

Each image travels as an :class:`ImageItem`; a failure at any step becomes a line of the
dead-letter file (:func:`dead_letter_line`) on the step's ``dead`` output, and every complete
image a line of ``counts.jsonl`` (:func:`counts_line`). Paths are local or URLs of Beam's
file systems (``gs://``, ``s3://``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_MIN_AREA, DEFAULT_TILE_BATCH
from pixelwise.extras import import_extra
from pixelwise.inference.files import predict
from pixelwise.inference.images import read_image
from pixelwise.inference.options import PredictOptions, as_options
from pixelwise.inference.outputs import encode_prediction, output_filenames, save_prediction
from pixelwise.runs.loading import LoadedRun, load_run

beam = import_extra("apache_beam", extra="beam", needed_for="predict --beam")

from apache_beam.io.filesystems import FileSystems  # noqa: E402  (after the extra's check)
from apache_beam.ml.inference.base import ModelHandler, PredictionResult  # noqa: E402

#: Images RunInference hands the model handler at once (each is predicted on its own, as
#: ``predict`` does; the cap bounds the decoded images a worker holds).
DEFAULT_IMAGES_PER_BATCH = 4
#: Beam counters of a run, namespace :data:`NAMESPACE`: images predicted and written, skipped
#: as complete, and sent to the dead-letter file.
COUNTERS = ("predicted", "skipped", "failed")
NAMESPACE = "pixelwise"
#: RunInference's metrics namespace for this handler; its ``load_model_latency_milli_secs``
#: distribution counts the loads of the run (one per worker process).
RUN_INFERENCE_NAMESPACE = "pixelwise_RunInference"


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image on its way through the pipeline: its path, its outputs' name, its pixels."""

    path: str
    name: str
    image: np.ndarray | None = None  # uint8 (H, W, 3), what the overlay is drawn on


class PixelwiseModelHandler(ModelHandler):
    """Beam's ``ModelHandler`` for a pixelwise run: loads it once per worker, predicts images.

    ``load_model`` is :func:`~pixelwise.runs.load_run` (RunInference keeps one per worker
    process); ``run_inference`` predicts each :class:`ImageItem` of a batch with
    :func:`~pixelwise.inference.files.predict` and the given options, as ``predict`` does. A
    failed prediction is a ``PredictionResult`` whose ``inference`` is the reason (a ``str``).

    Args:
        run: A run folder or ``.keras`` file (a path the workers can read).
        class_set: For a ``.keras`` file outside a run folder; overrides the run's.
        checkpoint: ``best``, ``last`` or a ``.keras`` file (default ``best``).
        options: How to predict (default ``PredictOptions()``).
        min_area: Regions with fewer pixels get no box.
        batch_size: Tiles per forward pass in tiled mode.
        images_per_batch: Images RunInference hands over at once.
    """

    def __init__(self, run, *, class_set=None, checkpoint: str = DEFAULT_CHECKPOINT,
                 options: PredictOptions | None = None, min_area: int = DEFAULT_MIN_AREA,
                 batch_size: int = DEFAULT_TILE_BATCH,
                 images_per_batch: int = DEFAULT_IMAGES_PER_BATCH):
        super().__init__(min_batch_size=1, max_batch_size=images_per_batch)
        self._run = run
        self._class_set = class_set
        self._checkpoint = checkpoint
        self._options = as_options(options)
        self._min_area = min_area
        self._batch_size = batch_size

    def load_model(self) -> LoadedRun:
        if not is_remote(self._run):
            return load_run(self._run, self._class_set, self._checkpoint)
        with tempfile.TemporaryDirectory(prefix="pixelwise-run-") as folder:
            return load_run(stage_run(self._run, folder), self._class_set, self._checkpoint)

    def run_inference(self, batch: Sequence[ImageItem], model: LoadedRun,
                      inference_args=None) -> Iterator[PredictionResult]:
        channels = model.model.input_shape[-1]
        for item in batch:
            try:
                if channels == 3:
                    array = item.image
                else:  # read again at the model's channels, as predict_files does
                    with local_file(item.path) as path:
                        array = read_image(path, channels)
                prediction = predict(model, array, self._options, min_area=self._min_area,
                                     batch_size=self._batch_size)
            except (ValueError, OSError) as exc:
                yield PredictionResult(item, str(exc))
            except MemoryError:
                yield PredictionResult(item, f"Ran out of memory predicting {item.path!r}; "
                                       "downscale or crop it, or pass tile=(H, W).")
            else:
                yield PredictionResult(item, prediction)

    def get_num_bytes(self, batch: Sequence[ImageItem]) -> int:
        return sum(item.image.nbytes for item in batch if item.image is not None)

    def get_metrics_namespace(self) -> str:
        return RUN_INFERENCE_NAMESPACE


class SkipComplete(beam.DoFn):
    """Complete images (all four outputs there) -> ``done`` with their counts line; others on."""

    def __init__(self, out_dir: str):
        self._out_dir = out_dir

    def process(self, element):
        path, name = element
        paths = {kind: FileSystems.join(self._out_dir, filename)
                 for kind, filename in output_filenames(name).items()}
        if all(FileSystems.exists(p) for p in paths.values()):
            try:
                with FileSystems.open(paths["json"]) as file:
                    described = json.loads(file.read())
                line = counts_line(path, name, described)
            except (OSError, ValueError, KeyError, TypeError):
                pass  # not what save_prediction writes: predict it again
            else:
                beam.metrics.Metrics.counter(NAMESPACE, "skipped").inc()
                yield beam.pvalue.TaggedOutput("done", line)
                return
        yield ImageItem(path, name)


class ReadImage(beam.DoFn):
    """Decode each image as RGB; an unreadable one -> ``dead`` with its reason."""

    def process(self, item: ImageItem):
        try:
            with local_file(item.path) as path:
                image = read_image(path, 3)
        except (ValueError, OSError) as exc:
            beam.metrics.Metrics.counter(NAMESPACE, "failed").inc()
            yield beam.pvalue.TaggedOutput("dead", dead_letter_line(item.path, str(exc)))
            return
        yield dataclasses.replace(item, image=image)


class WriteOutputs(beam.DoFn):
    """Write an image's four outputs (``NAME.json`` last); a failure -> ``dead``."""

    def __init__(self, out_dir: str):
        self._out_dir = out_dir

    def process(self, result: PredictionResult):
        item, prediction = result.example, result.inference
        try:
            if isinstance(prediction, str):
                raise ValueError(prediction)
            write_outputs(prediction, item.image, self._out_dir, item.name)
        except (ValueError, OSError) as exc:
            beam.metrics.Metrics.counter(NAMESPACE, "failed").inc()
            yield beam.pvalue.TaggedOutput("dead", dead_letter_line(item.path, str(exc)))
            return
        beam.metrics.Metrics.counter(NAMESPACE, "predicted").inc()
        yield counts_line(item.path, item.name, prediction.to_json())


def counts_line(path: str, name: str, described: dict) -> str:
    """The ``counts.jsonl`` line of an image, from its ``NAME.json`` (``Prediction.to_json``)."""
    return json.dumps({"path": path, "name": name, "height": described["height"],
                       "width": described["width"], "counts": described["counts"],
                       "boxes": len(described["boxes"])})


def dead_letter_line(path: str, reason: str) -> str:
    """The ``dead-letter.jsonl`` line of a failed image."""
    return json.dumps({"path": path, "reason": reason})


def write_outputs(prediction, image: np.ndarray, out_dir: str, name: str) -> None:
    """:func:`save_prediction` into a local folder; elsewhere (``gs://``, ``s3://``) through
    Beam's FileSystems, one object at a time, ``NAME.json`` last."""
    if not is_remote(out_dir):
        save_prediction(prediction, image, out_dir, name)
        return
    for filename, data in encode_prediction(prediction, image, name).values():
        with FileSystems.create(FileSystems.join(out_dir, filename)) as file:
            file.write(data.encode() if isinstance(data, str) else data)


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL of a Beam file system (``gs://``, ``s3://``), not a local path."""
    return "://" in str(path)


#: What a worker copies of a remote run folder: its class set and config (which say how to
#: load it) and the checkpoints ``best`` and ``last`` (``best`` is ``last`` without validation).
RUN_FILES = ("config.json", "class_set.json", "checkpoints/best.keras", "checkpoints/last.keras")


def stage_run(run: str, folder: str) -> str:
    """A local copy, in ``folder``, of a run folder or ``.keras`` file on a Beam file system
    (``gs://``, ``s3://``): Keras and :func:`~pixelwise.runs.load_run` read local files.

    Returns the local path to load (the copied folder, or the ``.keras`` file in it, with the
    run's ``class_set.json`` beside it when it sits in ``checkpoints/``).
    """
    run = run.rstrip("/")
    if run.endswith(".keras"):
        parent = run.rsplit("/", 1)[0]
        root = parent.rsplit("/", 1)[0] if parent.endswith("/checkpoints") else parent
        relative = run[len(root) + 1:]
        names = (relative, "class_set.json", "config.json")
    else:
        root, relative, names = run, None, RUN_FILES
    for name in names:
        source = f"{root}/{name}"
        if not FileSystems.exists(source):
            continue
        target = Path(folder, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileSystems.open(source) as reader, open(target, "wb") as writer:
            while chunk := reader.read(1 << 24):
                writer.write(chunk)
    return os.path.join(folder, relative) if relative else folder


@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """``path`` itself, or a local copy of a remote one (removed afterwards) for Pillow to read."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="pixelwise-") as folder:
        local = os.path.join(folder, "image" + Path(path.split("://", 1)[1]).suffix)
        with FileSystems.open(path) as source, open(local, "wb") as target:
            target.write(source.read())
        yield local


__all__ = ["COUNTERS", "NAMESPACE", "RUN_INFERENCE_NAMESPACE", "ImageItem", "PixelwiseModelHandler", "ReadImage", "SkipComplete",
           "WriteOutputs", "counts_line",
           "dead_letter_line", "is_remote", "local_file", "stage_run", "write_outputs"]
