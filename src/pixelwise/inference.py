"""Inference: label maps, per-class pixel counts and bounding boxes for any image.

The chapter's last section, corrected, plus exercise 20:

* the image is read (JPEG, PNG, BMP, GIF first frame, WebP), its EXIF orientation
  applied, converted to the channel count the model takes, scaled to [0, 1];
* either resized to ``size`` x ``size`` (bilinear, as the chapter does) and the
  softmax probabilities resized back to the image's own size (bilinear, then argmax:
  class ids are never interpolated), or predicted at native resolution in
  overlapping tiles (``tile=``, see :mod:`pixelwise.tiling`);
* ``counts`` are the chapter's ``pixels_per_label`` by class name;
* ``boxes`` are the bounding boxes of the connected regions (8-connected) of every
  non-background class, with their area and mean confidence (exercise 20).

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

import numpy as np

from pixelwise.class_sets import ClassSet
from pixelwise.drawing import colorize, draw_boxes, overlay  # noqa: F401  (public here too)

#: Formats ``predict`` reads (Pillow format names).
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
#: Default side the image is resized to (the chapter predicts at 512x512).
DEFAULT_SIZE = 512
#: Connected regions smaller than this many pixels get no box.
DEFAULT_MIN_AREA = 100


@dataclasses.dataclass(frozen=True)
class Box:
    """One connected region of one class.

    ``box`` is ``(x_min, y_min, x_max, y_max)`` in pixel-edge coordinates of the input
    image: the region spans columns ``x_min .. x_max - 1`` and rows ``y_min .. y_max - 1``.
    ``area`` counts the region's pixels (not the box's); ``mean_confidence`` is the mean
    softmax probability of the predicted class over them.
    """

    class_id: int
    class_name: str
    box: tuple[int, int, int, int]
    area: int
    mean_confidence: float

    def to_json(self) -> dict:
        return {
            "class_id": self.class_id, "class_name": self.class_name, "box": list(self.box),
            "area": self.area, "mean_confidence": round(self.mean_confidence, 6),
        }


@dataclasses.dataclass
class Prediction:
    """What :func:`predict` returns for one image (all at the input's original size).

    Attributes:
        labels: (H, W) integer class ids.
        confidence: (H, W) float32 softmax probability of the predicted class.
        counts: Pixels per class name, every class listed; sums to H * W.
        boxes: :class:`Box` per connected region of each non-background class.
        class_set: The class set the ids refer to.
        probabilities: (H, W, K) float32 softmax, only with ``return_probabilities=True``.
    """

    labels: np.ndarray
    confidence: np.ndarray
    counts: dict[str, int]
    boxes: list[Box]
    class_set: ClassSet
    probabilities: np.ndarray | None = None

    def to_json(self) -> dict:
        height, width = self.labels.shape
        return {
            "height": int(height), "width": int(width), "class_set": self.class_set.name,
            "counts": self.counts, "boxes": [box.to_json() for box in self.boxes],
        }


# ----------------------------------------------------------------------------- images


def read_image(path, channels: int = 3) -> np.ndarray:
    """Read an image file as a uint8 (H, W, channels) array.

    Args:
        path: JPEG, PNG, BMP, GIF (first frame) or WebP file.
        channels: 1 (luminance), 3 (RGB; grayscale replicated, alpha dropped) or 4.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a readable image of a supported format (truncated, wrong format).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Expected an image file, received {str(path)!r}, which does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"Expected an image file, received the directory {str(path)!r}.")
    try:
        with Image.open(path) as image:
            if image.format not in IMAGE_FORMATS:
                raise ValueError(
                    f"Expected one of {', '.join(IMAGE_FORMATS)}, received a {image.format} image "
                    f"{str(path)!r}; convert it to PNG first."
                )
            image.seek(0)  # GIF / animated WebP: first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_channels(image, channels, source=str(path))
    except UnidentifiedImageError:
        raise ValueError(
            f"Expected an image ({', '.join(IMAGE_FORMATS)}), received {str(path)!r}, which is "
            "not an image Pillow can identify."
        ) from None
    except (OSError, SyntaxError) as exc:  # Pillow reports truncated/corrupt data as OSError
        raise ValueError(
            f"Expected a complete image, received {str(path)!r} that cannot be decoded ({exc}); "
            "the file is probably truncated or corrupt."
        ) from None


def to_channels(image, channels: int, source: str = "image") -> np.ndarray:
    """Convert a PIL image or array to a uint8 (H, W, channels) array.

    Grayscale becomes RGB by replication, RGB becomes grayscale by luminance
    (ITU-R 601-2, Pillow's ``convert("L")``), alpha is dropped (transparent pixels keep
    their stored colour), palette images are expanded, 16-bit images scaled to 8 bits.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 image array, received dtype {array.dtype} from {source}.")
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"Expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image array, received shape "
                f"{array.shape} from {source}."
            )
        image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(wide / (257.0 if wide.max() > 255 else 1.0), 0, 255).astype(np.uint8))
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if channels not in modes:
        raise ValueError(
            f"Expected a model taking 1, 3 or 4 input channels, received one taking {channels}."
        )
    array = np.asarray(image.convert(modes[channels]), dtype=np.uint8)
    return array[..., None] if channels == 1 else array


# ----------------------------------------------------------------------------- models


def resolve_model(model_or_run, class_set: ClassSet | None = None, checkpoint: str = "best"):
    """Return ``(keras_model, class_set)`` from a model, a run folder or a ``.keras`` file.

    Args:
        model_or_run: ``keras.Model``, :class:`pixelwise.runs.RunFolder`, or a path to a
            run folder or a ``.keras`` file.
        class_set: Required with a bare model or ``.keras`` file; overrides the run's.
        checkpoint: ``best``, ``last`` or a ``.keras`` path, for run folders.

    Raises:
        ValueError: No class set, or the model's output channels differ from its class count.
    """
    from pixelwise.runs import RunFolder

    model = model_or_run
    if isinstance(model_or_run, (str, os.PathLike)):
        path = Path(model_or_run)
        if path.suffix == ".keras" and not path.is_dir():
            # A checkpoint inside a run folder brings the run's class set along.
            folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            model_or_run = RunFolder(folder)
            checkpoint = str(path)
            if class_set is None and not model_or_run.class_set_path.exists():
                raise ValueError(
                    f"Expected a class set with the model file {str(path)!r}, received none and "
                    f"found no class_set.json in {str(folder)!r}; pass --class-set voc|camvid|"
                    "isbi2012|FILE.json (Python: class_set=...)."
                )
        else:
            model_or_run = RunFolder(path)
    if isinstance(model_or_run, RunFolder):
        run = model_or_run
        checkpoint_path = run.resolve_checkpoint(checkpoint)
        if class_set is None:
            class_set = run.class_set()
        model = run.load_model(str(checkpoint_path))
    if class_set is None:
        raise ValueError(
            "Expected a class set with a bare model, received none; pass class_set= "
            "(e.g. pixelwise.datasets.VOC) or a run folder that has class_set.json."
        )
    check_model_matches(model, class_set)
    return model, class_set


def resolve_run(model_or_run, class_set: ClassSet | None = None, checkpoint: str = "best"):
    """Like :func:`resolve_model`, plus the run's training configuration.

    Returns:
        ``(keras_model, class_set, run_config)``; ``run_config`` is the run folder's
        ``config.json`` as a dict, or ``None`` for a bare model or ``.keras`` file.
    """
    from pixelwise.runs import RunFolder

    run_config = None
    if isinstance(model_or_run, (str, os.PathLike)) and Path(model_or_run).is_dir():
        model_or_run = RunFolder(model_or_run)
    if isinstance(model_or_run, RunFolder):
        run_config = model_or_run.config()
    model, class_set = resolve_model(model_or_run, class_set, checkpoint)
    return model, class_set, run_config


def check_model_matches(model, class_set: ClassSet) -> None:
    """Raise ``ValueError`` unless the model outputs one channel per class of ``class_set``."""
    out_channels = model.output_shape[-1]
    if out_channels != class_set.num_classes:
        raise ValueError(
            f"Model/class-set mismatch: the model outputs {out_channels} channels, the class set "
            f"{class_set.name!r} has {class_set.num_classes} classes; use the class set the model "
            "was trained with (the run folder's class_set.json)."
        )


def _ends_in_softmax(model) -> bool:
    import keras

    activation = getattr(model.layers[-1], "activation", None) if model.layers else None
    return activation is keras.activations.softmax


# ----------------------------------------------------------------------------- prediction


def predict(
    model_or_run,
    image,
    size: int | None = DEFAULT_SIZE,
    tile: int | None = None,
    overlap: int | None = None,
    min_area: int = DEFAULT_MIN_AREA,
    return_probabilities: bool = False,
    *,
    class_set: ClassSet | None = None,
    checkpoint: str = "best",
    batch_size: int = 4,
) -> Prediction:
    """Segment one image and describe what is in it.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), a ``RunFolder``, or a path to a
            run folder or ``.keras`` file.
        image: Path, PIL image, or uint8 array (H, W[, C]).
        size: Side the image is resized to for a whole-image prediction (default 512, the
            chapter's). A model with a fixed input size uses that size instead. ``None``:
            the image's native size (the smallest size the model takes that covers it, with
            mirrored borders).
        tile: Predict at native resolution in overlapping ``tile``-sized tiles
            (:mod:`pixelwise.tiling`); ``size`` is then unused.
        overlap: Tile overlap in pixels; default depends on the model, see
            :func:`pixelwise.tiling.tile_geometry`.
        min_area: Regions with fewer pixels get no box (default 100).
        return_probabilities: Also return the (H, W, K) softmax (memory: H*W*K*4 bytes).
        class_set: Class set for a bare model (run folders bring their own).
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders.
        batch_size: Tiles per forward pass in tiled mode.

    Returns:
        :class:`Prediction` at the input's original size.

    Example:
        >>> p = predict(model, "cat.png", class_set=VOC)     # doctest: +SKIP
        >>> sum(p.counts.values()) == p.labels.size          # doctest: +SKIP
        True
    """
    model, class_set = resolve_model(model_or_run, class_set, checkpoint)
    channels = model.input_shape[-1]
    if isinstance(image, (str, os.PathLike)):
        array = read_image(image, channels)
    else:
        array = to_channels(image, channels)
    labels, confidence, probabilities = predict_array(
        model, array, size=size, tile=tile, overlap=overlap,
        return_probabilities=return_probabilities, batch_size=batch_size,
    )
    return Prediction(
        labels=labels, confidence=confidence, counts=count_pixels(labels, class_set),
        boxes=find_boxes(labels, confidence, class_set, min_area=min_area),
        class_set=class_set, probabilities=probabilities,
    )


def predict_array(model, image: np.ndarray, size=DEFAULT_SIZE, tile=None, overlap=None,
                  return_probabilities=False, batch_size=4):
    """Labels, confidence (and probabilities) for a uint8 (H, W, C) array; see :func:`predict`."""
    import tensorflow as tf

    from pixelwise import tiling

    softmax_out = _ends_in_softmax(model)
    height, width = image.shape[:2]
    if tile is not None:
        result = tiling.predict_tiled(
            model, image, tile, overlap, batch_size=batch_size,
            return_probabilities=return_probabilities, outputs_are_probabilities=softmax_out,
        )
        return result.labels, result.confidence, result.probabilities

    target = tiling.whole_image_size(model, size) or (height, width)
    if target != (height, width):
        image = resize_image_uint8(image, target)
    resized = image.astype(np.float32) / 255.0
    if tiling.output_shape(model, *target) == target:
        outputs = np.asarray(model.predict_on_batch(resized[None]), np.float32)[0]
        probs = outputs if softmax_out else tiling.softmax(outputs)
    else:
        # Valid-padding model, or a size the model can't take directly: one square tile
        # with mirrored borders whose output covers the (resized) image.
        covering, covering_overlap = tiling.covering_tile(model, max(target))
        probs = tiling.predict_tiled(
            model, resized, covering, covering_overlap, batch_size=batch_size,
            return_probabilities=True, outputs_are_probabilities=softmax_out,
        ).probabilities
    if probs.shape[:2] != (height, width):
        # Probabilities, not class ids, are interpolated; the argmax comes after.
        probs = tf.image.resize(probs, (height, width), method="bilinear").numpy()
    labels = probs.argmax(axis=-1).astype(np.uint8 if probs.shape[-1] <= 256 else np.int32)
    confidence = probs.max(axis=-1).astype(np.float32)
    return labels, confidence, (probs.astype(np.float32) if return_probabilities else None)


def resize_image_uint8(image: np.ndarray, size) -> np.ndarray:
    """Resize a uint8 image exactly as the training pipeline does (bilinear, antialiased, rounded)."""
    from pixelwise.data import resize_image

    resized = resize_image(image, size).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def count_pixels(labels: np.ndarray, class_set: ClassSet) -> dict[str, int]:
    """Pixels per class name (the chapter's ``pixels_per_label``); every class is listed."""
    counts = np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=class_set.num_classes)
    return {name: int(counts[i]) for i, name in enumerate(class_set.class_names)}


def background_ids(class_set: ClassSet) -> set[int]:
    """Class ids named ``background`` (case-insensitive): they get no boxes."""
    return {i for i, name in enumerate(class_set.class_names) if name.lower() == "background"}


def find_boxes(labels: np.ndarray, confidence: np.ndarray | None, class_set: ClassSet,
               min_area: int = DEFAULT_MIN_AREA) -> list[Box]:
    """Bounding boxes of the 8-connected regions of each non-background class (exercise 20).

    Args:
        labels: (H, W) class ids.
        confidence: (H, W) probability of the predicted class, or ``None`` (confidence 1).
        class_set: Names the classes; classes named ``background`` are skipped.
        min_area: Regions with fewer pixels are dropped.

    Returns:
        Boxes sorted by class id, then by position (top to bottom, left to right).
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if confidence is None:
        confidence = np.ones(labels.shape, np.float32)
    skip = background_ids(class_set)
    connectivity = np.ones((3, 3), dtype=bool)
    boxes = []
    for class_id in np.unique(labels):
        class_id = int(class_id)
        if class_id in skip or class_id >= class_set.num_classes:
            continue
        regions, count = ndimage.label(labels == class_id, structure=connectivity)
        areas = np.bincount(regions.ravel(), minlength=count + 1)
        sums = np.bincount(regions.ravel(), weights=confidence.ravel(), minlength=count + 1)
        for index, slices in enumerate(ndimage.find_objects(regions), start=1):
            if slices is None or areas[index] < min_area:
                continue
            rows, cols = slices
            boxes.append(Box(
                class_id=class_id, class_name=class_set.class_names[class_id],
                box=(int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)),
                area=int(areas[index]), mean_confidence=float(sums[index] / areas[index]),
            ))
    return sorted(boxes, key=lambda b: (b.class_id, b.box[1], b.box[0]))


# ----------------------------------------------------------------------------- files


def save_prediction(prediction: Prediction, image: np.ndarray, out_dir, name: str) -> dict[str, Path]:
    """Write ``NAME_mask.png``, ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json``.

    All four are encoded in memory, written under temporary names and only then renamed,
    so a failure leaves none of them half-written.

    Args:
        prediction: From :func:`predict`.
        image: The input as uint8 (H, W, C), same size as the prediction.
        out_dir: Output folder (created).
        name: Base name of the files, usually the input's stem.

    Returns:
        The paths written, by kind (``mask``, ``overlay``, ``boxes``, ``json``).
    """
    import io
    import json
    import tempfile

    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask = colorize(prediction.labels, prediction.class_set)

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    contents = {
        "mask": (f"{name}_mask.png", png(mask)),
        "overlay": (f"{name}_overlay.png", png(overlay(image, mask))),
        "boxes": (f"{name}_boxes.png", png(draw_boxes(image, prediction.boxes, prediction.class_set))),
        "json": (f"{name}.json", json.dumps(prediction.to_json(), indent=2).encode()),
    }
    temps, paths = [], {}
    try:
        for kind, (filename, data) in contents.items():
            handle, temp = tempfile.mkstemp(dir=out_dir, prefix=f".{filename}.", suffix=".tmp")
            temps.append(temp)
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            paths[kind] = out_dir / filename
        for temp, path in zip(temps, paths.values()):
            os.replace(temp, path)
    finally:
        for temp in temps:
            Path(temp).unlink(missing_ok=True)
    return paths


@dataclasses.dataclass
class FileResult:
    """Outcome of one input of :func:`predict_files`: ``prediction`` or ``error`` is set."""

    path: Path
    prediction: Prediction | None = None
    outputs: dict[str, Path] | None = None
    error: str | None = None


def predict_files(model_or_run, paths, out_dir, *, class_set: ClassSet | None = None,
                  checkpoint: str = "best", on_result=None, **options) -> list[FileResult]:
    """Predict every image file and save its outputs; a bad file never stops the others.

    Args:
        model_or_run: As for :func:`predict`; loaded once.
        paths: Image files.
        out_dir: Where the outputs go (see :func:`save_prediction`).
        class_set: For a bare model / ``.keras`` file.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders.
        on_result: Called with each :class:`FileResult` as soon as it is done.
        **options: ``size``, ``tile``, ``overlap``, ``min_area``, ``batch_size`` of :func:`predict`.

    Returns:
        One :class:`FileResult` per path, in order.
    """
    model, class_set = resolve_model(model_or_run, class_set, checkpoint)
    channels = model.input_shape[-1]
    names = _output_names([Path(p) for p in paths])
    results = []
    for path, name in zip(map(Path, paths), names):
        try:
            display = read_image(path, 3)
            array = display if channels == 3 else read_image(path, channels)
            prediction = predict(model, array, class_set=class_set, **options)
            outputs = save_prediction(prediction, display, out_dir, name)
            result = FileResult(path=path, prediction=prediction, outputs=outputs)
        except (ValueError, OSError) as exc:
            result = FileResult(path=path, error=str(exc))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _output_names(paths: list[Path]) -> list[str]:
    """Input stems, made unique (``a/x.png`` and ``b/x.jpg`` -> ``x``, ``x-2``)."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names
