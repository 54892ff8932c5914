"""Batch prediction on Apache Beam: ``pixelwise predict --beam`` over a glob or a file list.

The same outputs as :func:`pixelwise.inference.files.predict_files` (``NAME_mask.png``,
``NAME_overlay.png``, ``NAME_boxes.png``, ``NAME.json``, by
:func:`~pixelwise.inference.outputs.save_prediction`), computed by the same
:func:`~pixelwise.inference.files.predict` with the same
:class:`~pixelwise.inference.options.PredictOptions`, in a Beam pipeline:

    images (globs, a file list; matched by Beam's FileSystems, named as predict names them)
      -> skip the complete ones          (NAME.json, written last, exists with the other three)
      -> read and decode                 (an unreadable image -> the dead-letter file)
      -> RunInference(PixelwiseModelHandler)   (the run loaded once per worker process)
      -> write the outputs               (a failed prediction or write -> the dead-letter file)

and two files of JSON lines in the output folder: ``counts.jsonl`` (one line per complete
image, skipped ones included: path, name, size, pixel counts by class, number of boxes) and
``dead-letter.jsonl`` (one line per failed image: path, reason). Both are rewritten by each
run; a re-run predicts only the images not complete, so a killed job resumes where it stopped.

apache-beam is pixelwise's optional ``beam`` extra (``pip install "pixelwise[beam]"``),
imported when a pipeline is built. The runner is Beam's DirectRunner in multi-processing mode
with one worker per CPU unless ``beam_options`` say otherwise (``--runner=DataflowRunner ...``;
docs/scale.md).

Example:
    >>> summary = predict_beam("runs/voc", ["photos/*.jpg"], "predictions/")   # doctest: +SKIP
    >>> summary.predicted, summary.skipped, summary.failed                     # doctest: +SKIP
    (990, 0, 10)
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Sequence

from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_MIN_AREA, DEFAULT_TILE_BATCH
from pixelwise.extras import import_extra
from pixelwise.files import make_dirs
from pixelwise.inference.beam_steps import (
    COUNTERS, NAMESPACE, RUN_INFERENCE_NAMESPACE, PixelwiseModelHandler, ReadImage, SkipComplete,
    WriteOutputs, is_remote,
)
from pixelwise.inference.files import file_list_entries, read_file_list as read_local_file_list
from pixelwise.inference.options import PredictOptions, as_options
from pixelwise.inference.outputs import output_names
from pixelwise.runs.folder import RunFolder

beam = import_extra("apache_beam", extra="beam", needed_for="predict --beam")

from apache_beam.io.filesystems import FileSystems  # noqa: E402  (after the extra's check)
from apache_beam.ml.inference.base import RunInference  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

#: The file of JSON lines naming each image that failed, with its reason.
DEAD_LETTER = "dead-letter.jsonl"
#: The file of JSON lines with each complete image's pixel counts.
COUNTS = "counts.jsonl"


@dataclasses.dataclass(frozen=True)
class BeamSummary:
    """What :func:`predict_beam` did.

    Attributes:
        images: Images matched.
        predicted: Predicted and written by this run.
        skipped: Complete before this run (not predicted again).
        failed: Written to the dead-letter file.
        counts_path, dead_letter_path: The two files of JSON lines.
        runs_loaded: Times a worker loaded the run (once per worker process).
    """

    images: int
    predicted: int
    skipped: int
    failed: int
    counts_path: str
    dead_letter_path: str
    runs_loaded: int


def predict_beam(run, images: Sequence[str] = (), out_dir=None, *, file_list=None,
                 class_set=None, checkpoint: str = DEFAULT_CHECKPOINT,
                 options: PredictOptions | None = None, min_area: int = DEFAULT_MIN_AREA,
                 batch_size: int = DEFAULT_TILE_BATCH, beam_options: str | Sequence[str] = ""
                 ) -> BeamSummary:
    """Predict every image of globs or a file list on Beam; write what ``predict`` writes.

    Args:
        run: A run folder (path or :class:`~pixelwise.runs.RunFolder`) or a ``.keras`` file,
            readable where the workers run.
        images: Image paths or glob patterns (``photos/*.jpg``, ``gs://bucket/tiles/*.png``),
            matched by Beam's FileSystems. A pattern that matches nothing is an error; a path
            that does not exist goes to the dead-letter file.
        out_dir: Output folder (local, ``gs://`` or ``s3://``).
        file_list: A text file naming one image (path or pattern) per line, added to ``images``.
        class_set, checkpoint, options, min_area, batch_size: As for
            :func:`~pixelwise.inference.files.predict_files`.
        beam_options: Pipeline options, a string split like a shell line or a list of flags
            (``"--runner=DataflowRunner --project=P ..."``); default: DirectRunner,
            multi-processing, one worker per CPU.

    Returns:
        A :class:`BeamSummary` (from the pipeline's counters).

    Raises:
        ValueError: No images, a pattern that matches nothing, a bare ``keras.Model``.
        pixelwise.extras.MissingExtraError: apache-beam is not installed.
    """
    options = as_options(options)  # refused once, before the pipeline starts
    if out_dir is None:
        raise ValueError("Expected an output folder, received out=None; pass out='predictions/'.")
    if isinstance(run, RunFolder):
        run = run.path
    if not isinstance(run, (str, os.PathLike)):
        raise ValueError(
            f"Expected run= as a run folder or .keras path the Beam workers can load, received "
            f"{type(run).__name__}; save the model (model.save('model.keras')) and pass its path.")
    paths = match_images(list(images) + read_file_list(file_list))
    out_dir = os.fspath(out_dir)
    if not is_remote(out_dir):
        make_dirs(out_dir)
    handler = PixelwiseModelHandler(os.fspath(run), class_set=class_set, checkpoint=checkpoint,
                                    options=options, min_area=min_area, batch_size=batch_size)
    counts_path = FileSystems.join(out_dir, COUNTS)
    dead_letter_path = FileSystems.join(out_dir, DEAD_LETTER)
    with beam.Pipeline(options=pipeline_options(beam_options)) as pipeline:
        checked = (pipeline
                   | "Images" >> beam.Create(list(zip(paths, output_names(paths))))
                   | "Spread" >> beam.Reshuffle()
                   | "SkipComplete" >> beam.ParDo(SkipComplete(out_dir)).with_outputs(
                       "done", main="todo"))
        decoded = checked.todo | "Read" >> beam.ParDo(ReadImage()).with_outputs("dead", main="images")
        written = (decoded.images
                   | "Predict" >> RunInference(handler)
                   | "Write" >> beam.ParDo(WriteOutputs(out_dir)).with_outputs("dead", main="counts"))
        _ = ((checked.done, written.counts) | "Counts" >> beam.Flatten()
             | "WriteCounts" >> _write_lines(counts_path))
        _ = ((decoded.dead, written.dead) | "DeadLetter" >> beam.Flatten()
             | "WriteDeadLetter" >> _write_lines(dead_letter_path))
    counters = _counters(pipeline.result)
    return BeamSummary(images=len(paths), counts_path=counts_path,
                       dead_letter_path=dead_letter_path, **counters)


def match_images(patterns: Sequence[str]) -> list[str]:
    """The image paths of ``patterns``, in order (a glob's matches sorted), each once.

    A glob pattern (``*``, ``?``, ``[``) is matched by Beam's FileSystems (local, ``gs://``,
    ``s3://``) and must match something; a plain path is kept as it is, so that a missing
    file goes to the dead-letter file as ``predict`` reports it.
    """
    if not patterns:
        raise ValueError("Expected images to predict, received none; pass image paths or glob "
                         "patterns (images=['photos/*.jpg']) or a file_list= naming them.")
    paths: list[str] = []
    for pattern in map(os.fspath, patterns):
        if not any(char in pattern for char in "*?["):
            paths.append(pattern)
            continue
        [matched] = FileSystems.match([pattern])
        found = sorted(metadata.path for metadata in matched.metadata_list)
        if not found:
            raise ValueError(f"Expected the pattern {pattern!r} to match image files, received "
                             "no match; check the folder and the extension (patterns are "
                             "case-sensitive).")
        paths.extend(found)
    return list(dict.fromkeys(paths))


def read_file_list(file_list) -> list[str]:
    """:func:`pixelwise.inference.files.read_file_list`, also for a ``gs://`` or ``s3://`` file."""
    if file_list is None or not is_remote(os.fspath(file_list)):
        return read_local_file_list(file_list)
    with FileSystems.open(os.fspath(file_list)) as file:
        return file_list_entries(file.read().decode("utf-8"))


def pipeline_options(beam_options: str | Sequence[str] = "") -> PipelineOptions:
    """``PipelineOptions`` of the defaults (DirectRunner, multi-processing, one worker per
    CPU) followed by ``beam_options`` (a shell-like string or a list of flags), which win.

    Example:
        >>> pipeline_options("--direct_num_workers=1").get_all_options()["direct_num_workers"]
        1
    """
    flags = shlex.split(beam_options) if isinstance(beam_options, str) else list(beam_options)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    defaults = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                f"--direct_num_workers={cpus}"]
    return PipelineOptions(defaults + flags)


def _write_lines(path: str):
    """One file of text lines at ``path`` (not sharded: ``counts.jsonl``, ``dead-letter.jsonl``)."""
    return beam.io.WriteToText(path, shard_name_template="", num_shards=1)


def _counters(result) -> dict[str, int]:
    """The pipeline's ``pixelwise`` counters and its loads of the run, committed values."""
    metrics = result.metrics()
    totals = dict.fromkeys(COUNTERS, 0)
    for counter in metrics.query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        totals[counter.key.metric.name] += counter.committed or 0
    loads = metrics.query(beam.metrics.MetricsFilter().with_namespace(RUN_INFERENCE_NAMESPACE)
                          .with_name("load_model_latency_milli_secs"))["distributions"]
    totals["runs_loaded"] = sum(d.committed.count for d in loads if d.committed is not None)
    return totals


__all__ = ["COUNTS", "DEAD_LETTER", "BeamSummary",
           "match_images", "pipeline_options", "predict_beam", "read_file_list"]
