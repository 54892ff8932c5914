"""Inference on image files: read them, predict, write masks, overlays, boxes and counts.

The chapter's last section, corrected, plus exercise 20:

* images are read by :func:`pixelwise.inference.images.read_image` (JPEG, PNG, BMP, GIF's
  first frame, WebP; EXIF orientation; the model's channel count); an image too large for
  the memory available is refused from its header, before it is decoded
  (:mod:`pixelwise.inference.memory`; Pillow's fixed 179-megapixel cap does not apply, since
  tiled prediction exists for large images);
* :func:`predict` segments one image and describes it (a :class:`Prediction`: labels,
  confidence, pixel counts by class name, boxes), computed by :mod:`pixelwise.inference.prediction`;
* :func:`predict_files` (with :func:`pixelwise.inference.outputs.save_prediction`) writes ``NAME_mask.png``,
  ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json`` per image.

Models come from :func:`pixelwise.runs.load_run` (a run folder, a ``.keras`` file or a
``keras.Model``).

Example:
    >>> import pixelwise                                     # doctest: +SKIP
    >>> p = pixelwise.predict("runs/voc", "author.jpg")       # doctest: +SKIP
    >>> p.counts["person"], p.boxes[0].class_name              # doctest: +SKIP
    (42285, 'person')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pixelwise.class_sets import ClassSet
from pixelwise.files import make_dirs
from pixelwise.inference.images import read_image, to_channels
from pixelwise.inference.options import PredictOptions, as_options
from pixelwise.inference.outputs import output_names, save_prediction
from pixelwise.inference.prediction import Prediction, memory_per_pixel, predict_array
from pixelwise.runs.loading import load_run
from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_MIN_AREA, DEFAULT_TILE_BATCH


# ----------------------------------------------------------------------------- images


# ----------------------------------------------------------------------------- memory


# ----------------------------------------------------------------------------- prediction


def predict(
    model_or_run,
    image,
    options: PredictOptions | None = None,
    *,
    min_area: int = DEFAULT_MIN_AREA,
    return_probabilities: bool = False,
    class_set: ClassSet | str | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    batch_size: int = DEFAULT_TILE_BATCH,
) -> Prediction:
    """Segment one image and describe what is in it.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), a ``RunFolder``, a path to a
            run folder or ``.keras`` file, or a :class:`~pixelwise.runs.LoadedRun`.
        image: Path, PIL image, or uint8 array (H, W[, C]).
        options: How to predict, a :class:`~pixelwise.inference.options.PredictOptions`:
            ``model_size``, the side (or (H, W)) the image is resized to for a whole-image
            prediction (default 512, the chapter's; a model with a fixed input size uses
            that size instead; ``"native"``: the image's own size, the smallest size the
            model takes that covers it, with mirrored borders); or ``tile`` (and
            ``overlap``) to predict at native resolution in overlapping tiles
            (:mod:`pixelwise.inference.tiling`); ``mode`` and ``tta`` (see
            :func:`pixelwise.inference.prediction.predict_probabilities`).
        min_area: Regions with fewer pixels get no box (default 100).
        return_probabilities: Also return the (H, W, K) softmax (memory: H*W*K*4 bytes).
        class_set: Class set (or its name, or a ``class_set.json`` path) for a bare model;
            run folders bring their own.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders (default ``best``).
        batch_size: Tiles per forward pass in tiled mode (default 4).

    Returns:
        :class:`Prediction` at the input's original size.

    Example:
        >>> p = predict(model, "cat.png", class_set=VOC)     # doctest: +SKIP
        >>> sum(p.counts.values()) == p.labels.size          # doctest: +SKIP
        True
        >>> tiled = predict(model, "big.png", PredictOptions(tile=512, tta="flip"),  # doctest: +SKIP
        ...                 class_set=VOC)
    """
    options = as_options(options)  # a wrong type fails before the model is loaded
    loaded = load_run(model_or_run, class_set, checkpoint)
    channels = loaded.model.input_shape[-1]
    if isinstance(image, (str, os.PathLike)):
        need = memory_per_pixel(loaded.class_set.num_classes, options,
                                probabilities=return_probabilities)
        array = read_image(image, channels, bytes_per_pixel=need)
    else:
        array = to_channels(image, channels)
    labels, confidence, probabilities = predict_array(
        loaded.model, array, options, return_probabilities=return_probabilities,
        batch_size=batch_size,
    )
    return Prediction.from_labels(labels, confidence, loaded.class_set, min_area=min_area,
                                  probabilities=probabilities)


# ----------------------------------------------------------------------------- files


@dataclasses.dataclass
class FileResult:
    """Outcome of one input of :func:`predict_files`: ``prediction`` or ``error`` is set."""

    path: Path
    prediction: Prediction | None = None
    outputs: dict[str, Path] | None = None
    error: str | None = None


def predict_files(model_or_run, paths, out_dir, *, class_set: ClassSet | str | None = None,
                  checkpoint: str = DEFAULT_CHECKPOINT, options: PredictOptions | None = None,
                  min_area: int = DEFAULT_MIN_AREA, batch_size: int = DEFAULT_TILE_BATCH,
                  on_result=None) -> list[FileResult]:
    """Predict every image file and save its outputs; a bad file never stops the others.

    Args:
        model_or_run: As for :func:`predict`; loaded once.
        paths: Image files.
        out_dir: Where the outputs go (see :func:`save_prediction`).
        class_set: For a bare model / ``.keras`` file.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders.
        options: How to predict (:class:`~pixelwise.inference.options.PredictOptions`), as
            for :func:`predict`.
        min_area: Regions with fewer pixels get no box (default 100).
        batch_size: Tiles per forward pass in tiled mode (default 4).
        on_result: Called with each :class:`FileResult` as soon as it is done.

    Returns:
        One :class:`FileResult` per path, in order.

    Raises:
        OSError: ``out_dir`` cannot be created (one error, not one per image).
    """
    options = as_options(options)  # refused once, not once per image
    loaded = load_run(model_or_run, class_set, checkpoint)
    make_dirs(out_dir)
    channels = loaded.model.input_shape[-1]
    need = memory_per_pixel(loaded.class_set.num_classes, options)
    names = output_names(paths)
    results = []
    for path, name in zip(map(Path, paths), names):
        try:
            display = read_image(path, 3, bytes_per_pixel=need)
            array = display if channels == 3 else read_image(path, channels, bytes_per_pixel=need)
            prediction = predict(loaded, array, options, min_area=min_area, batch_size=batch_size)
            outputs = save_prediction(prediction, display, out_dir, name)
            result = FileResult(path=path, prediction=prediction, outputs=outputs)
        except (ValueError, OSError) as exc:
            result = FileResult(path=path, error=str(exc))
        except MemoryError:  # the estimate of memory_per_pixel fell short: the next image may fit
            result = FileResult(path=path, error=f"Ran out of memory predicting {str(path)!r}; "
                                "downscale or crop it, or pass tile=(H, W).")
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def read_file_list(path) -> list[str]:
    r"""The images a file list names (``--file-list``); ``[]`` for ``None``.

    Example:
        >>> file_list_entries("a.png\n\n# broken, see #12\n  b.jpg \n")
        ['a.png', 'b.jpg']
    """
    if path is None:
        return []
    return file_list_entries(Path(path).read_text(encoding="utf-8"))


def file_list_entries(text: str) -> list[str]:
    """The lines of a file list: one image path per line; blank lines and ``#`` comments skipped."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
