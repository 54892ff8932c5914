"""Export a trained model as a serving artefact: SavedModel, TFLite (fp32, fp16, int8) or ONNX.

Every artefact takes a **uint8 image batch** ``[B, H, W, C]`` (any H, W; C = the model's
input channels; B = 1 for TFLite, :data:`TFLITE_BATCH_SIZE`) and returns
``{"labels": [B, H, W]}`` class ids (uint8 up to 256 classes, int32 beyond) at the input's size. Everything :func:`pixelwise.predict` does in its
whole-image mode happens inside the graph: scaling to [0, 1], bilinear resize to the
model's size, mirror padding where the model cannot take that size directly
(valid-padding models; the chapter U-Net at sides not multiples of 64), softmax,
bilinear resize of the probabilities back to H x W, argmax.

Formats (:data:`FORMATS`): ``savedmodel`` (a folder); ``tflite`` (float32),
``tflite-fp16`` (float16 weights) and ``tflite-int8`` (full-integer post-training
quantization calibrated on the training split), each a ``model.tflite``
(:mod:`pixelwise.export.tflite`); ``onnx``, a ``model.onnx`` at opset
:data:`~pixelwise.export.onnx.ONNX_OPSET` made by tf2onnx, which with onnxruntime is the
optional ``export`` extra (:mod:`pixelwise.export.onnx`).

Class names travel with the artefact:

* SavedModel: ``assets/class_set.json`` and ``assets/class_names.txt`` (one name per
  line, line ``i`` = class ``i``), the ``class_names`` string tensor attribute of the
  loaded object, and a ``class_names`` signature returning it.
* TFLite and ONNX: ``class_names.txt`` and ``class_set.json`` beside the model file (the
  TFLite interpreter has no string metadata without the TFLite Support library); the
  ONNX model also has them in its ``metadata_props``.

The TFLite and ONNX graphs use builtin ops only, so their resize is plain bilinear; the
SavedModel's (like the training pipeline's) is antialiased when shrinking. They agree
exactly when the input already has the model's size.

Every export is checked: the artefact runs in its own runtime beside the Keras model
and ``parity.json`` says how far they agree (:mod:`pixelwise.export.parity`); one that agrees
less than its threshold goes to ``<out>.FAILED`` instead of ``out``.

Example:
    >>> export_model("runs/voc", "export/voc", format="savedmodel")   # doctest: +SKIP
    >>> serving = tf.saved_model.load("export/voc")                     # doctest: +SKIP
    >>> serving.signatures["serving_default"](images=batch)["labels"]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import tensorflow as tf

from pixelwise.inference import tiling as tiling
from pixelwise.class_sets import ClassSet
from pixelwise.sizes import normalize_image_size
from pixelwise.defaults import (
    DEFAULT_CALIBRATION_IMAGES, DEFAULT_CHECKPOINT, DEFAULT_EXPORT_SIZE, DEFAULT_MIN_AGREEMENT,
    DEFAULT_PARITY_IMAGES, DEFAULT_SPLIT, EXPORT_FORMATS, PARITY_REPORT_NAME,
)
from pixelwise.export.onnx import ONNX_OPSET, convert_onnx, onnx_labels, require_export_extra
from pixelwise.export.tflite import TFLITE_PRECISIONS, available_cpus, convert_tflite, tflite_labels
from pixelwise.files import replace_dir, staging_dir, write_atomic
from pixelwise.export.parity import ParityError, measure_parity, noise_sample, parity_line, split_sample
from pixelwise.inference.prediction import ends_in_softmax
from pixelwise.runs.loading import load_run

#: ``savedmodel``, ``tflite``, ``tflite-fp16``, ``tflite-int8``, ``onnx``.
FORMATS = EXPORT_FORMATS
#: Appended to ``out``'s name for an export that failed its parity check.
FAILED_SUFFIX = ".FAILED"
#: Images per call of a TFLite artefact. Fixed, so that the converter sees every shape of the
#: model's body: with a free batch the transposed convolutions' output shapes are computed at
#: run time, and int8 ones then miss XNNPACK (the test's 4-filter U-Net at 64x64: 19 ms with a
#: free batch, 0.6 ms with batch 1; the CamVid recipe model at 192x256: 71 ms vs 32 ms).
TFLITE_BATCH_SIZE = 1


def serving_module(model, class_set: ClassSet, model_size: tuple[int, int], antialias: bool = True,
                   asset_dir: Path | None = None, batch_size: int | None = None,
                   float_input: bool = False):
    """The ``tf.Module`` every artefact is made from: ``serve(images)`` -> ``{"labels"}``.

    Args:
        model: The ``keras.Model``.
        class_set: Its classes (their names become the ``class_names`` variable).
        model_size: ``(height, width)`` each image is resized to inside the graph.
        antialias: Antialias the resize when shrinking (True: as predict; TFLite and ONNX
            have no such builtin op, so their graphs are made with False).
        asset_dir: A folder holding ``class_set.json`` and ``class_names.txt`` to attach as
            SavedModel assets.
        batch_size: Fixed batch size of ``images``; None: any (TFLite exports use 1, see
            :data:`TFLITE_BATCH_SIZE`).
        float_input: ``images`` are float32 in [0, 1] (``uint8 / 255``) instead of uint8:
            the graph an int8 TFLite export is converted from, whose converter then makes
            the input uint8 again with the exact scale 1/255 (:func:`~pixelwise.export.tflite.convert_tflite`).

    Returns:
        A ``tf.Module`` with ``serve`` (uint8 ``images`` ``[B, H, W, C]`` in, ``labels``
        ``[B, H, W]`` out), ``get_class_names`` and the ``class_names`` variable.
    """
    channels = int(model.input_shape[-1])
    height, width = model_size
    # Models that cannot take this size directly (valid-padding models, or the chapter
    # U-Net at sides that are not multiples of 64): mirror the resized image out to the
    # tile whose kept centre covers it, as predict's whole-image mode does.
    if tiling.output_shape(model, height, width) == (height, width):
        tile, pad, crop = None, (0, 0, 0, 0), (0, 0)
    else:
        tile, overlap = tiling.covering_tile(model, (height, width))
        rows, cols = tiling.tile_geometry(model, tile, overlap)
        pad = (rows.margin, rows.tile - height - rows.margin,
               cols.margin, cols.tile - width - cols.margin)
        if max(pad[:2]) >= height or max(pad[2:]) >= width:
            raise ValueError(
                f"Export size {height}x{width} is too small to mirror-pad to the model's "
                f"{rows.tile}x{cols.tile} input (by up to {max(pad)} pixels); pass a "
                f"size above {max(pad)} on each side."
            )
        crop = (rows.crop, cols.crop)
    out_dtype = tf.uint8 if class_set.num_classes <= 256 else tf.int32
    outputs_are_probabilities = ends_in_softmax(model)

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            # A variable, not a constant, so that it is saved as an attribute of the module.
            self.class_names = tf.Variable(list(class_set.class_names), trainable=False,
                                           name="class_names")
            if asset_dir is not None:
                self.class_set_file = tf.saved_model.Asset(str(asset_dir / "class_set.json"))
                self.class_names_file = tf.saved_model.Asset(str(asset_dir / "class_names.txt"))

        @tf.function(input_signature=[tf.TensorSpec([batch_size, None, None, channels],
                                                    tf.float32 if float_input else tf.uint8,
                                                    name="images")])
        def serve(self, images):
            original = tf.shape(images)[1:3]
            if float_input:  # int8: the resize runs on the quantized [0, 1] input, exactly
                x = tf.image.resize(images, (height, width), method="bilinear",
                                    antialias=antialias)
            else:
                x = tf.image.resize(tf.cast(images, tf.float32), (height, width),
                                    method="bilinear", antialias=antialias)
                # Same rounding as the training pipeline, which stores resized images as uint8.
                x = tf.clip_by_value(tf.round(x), 0.0, 255.0) / 255.0
            if tile is not None:
                x = tf.pad(x, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]], mode="REFLECT")
            outputs = self.model(x, training=False)
            if tile is not None:
                outputs = outputs[:, crop[0]:crop[0] + height, crop[1]:crop[1] + width]
            probs = outputs if outputs_are_probabilities else tf.nn.softmax(outputs, axis=-1)
            probs = tf.image.resize(probs, original, method="bilinear")
            return {"labels": tf.cast(tf.argmax(probs, axis=-1), out_dtype)}

        @tf.function(input_signature=[])
        def get_class_names(self):
            return {"class_names": self.class_names}

    return Serving()


def export_model(
    model_or_run,
    out,
    format: str = EXPORT_FORMATS[0],  # noqa: A002 - the CLI's --format
    *,
    class_set: ClassSet | str | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    model_size=None,
    overwrite: bool = False,
    dataset: str | None = None,
    data_dir=None,
    manual_dir=None,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    parity_images: int = DEFAULT_PARITY_IMAGES,
    min_agreement: float | None = None,
) -> Path:
    """Export a model with its class names, check it against the Keras model, write both.

    The artefact is run in its own runtime on ``parity_images`` validation images beside
    the Keras model (:mod:`pixelwise.export.parity`) and ``parity.json`` is written next to it.
    An export whose pixel agreement is below ``min_agreement`` is **not** put at ``out``
    (a previous export there stays): it goes to ``<out>.FAILED`` (replacing an older one)
    for inspection, and :class:`~pixelwise.export.parity.ParityError` is raised. An export that
    passes removes a ``<out>.FAILED`` left by an earlier try.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), ``RunFolder`` or its path, a
            ``.keras`` file, or a :class:`~pixelwise.runs.LoadedRun`.
        out: Output directory (created; for SavedModel it *is* the SavedModel).
        format: One of :data:`FORMATS`: ``savedmodel`` (default), ``tflite`` (float32),
            ``tflite-fp16``, ``tflite-int8`` (calibrated on the training split) or ``onnx``
            (needs the ``export`` extra: ``pip install -e ".[export]"``).
        class_set: Class set (or its name, or a JSON path) for a bare model; default: the run's.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders (default ``best``).
        model_size: Side (or (H, W)) the image is resized to inside the graph, the size the
            model sees (its output is resized back). Default: the model's fixed input size,
            else the run's training ``image_size``, else 512.
        overwrite: Replace an existing non-empty ``out``.
        dataset: TFDS name or export path of the images for calibration and the parity
            check; default: the run's. Without one, the parity check uses noise images.
        data_dir: TFDS data directory; default: the run's.
        manual_dir: Downloaded data to build the dataset from if needed; default: the run's.
        calibration_images: ``tflite-int8``: training images calibrated on (default 100).
        parity_images: Validation images of the parity check (default 50).
        min_agreement: Least pixel agreement that passes; default per format
            (:data:`~pixelwise.defaults.DEFAULT_MIN_AGREEMENT`: 0.95 for int8, else 0.98).

    Returns:
        The SavedModel directory, or the ``model.tflite`` / ``model.onnx`` path.

    Raises:
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is False.
        ValueError: Bad options; ``tflite-int8`` with no dataset to calibrate on.
        pixelwise.extras.MissingExtraError: ``onnx`` without the ``export`` extra (also a ValueError).
        ParityError: The agreement is below ``min_agreement`` (a ValueError).
    """
    threshold = _check_options(format, calibration_images, parity_images, min_agreement)
    if format == "onnx":
        require_export_extra()  # before anything is loaded
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(
            f"Export folder {str(out)!r} already exists and is not empty; choose another out= "
            "or pass overwrite=True."
        )
    loaded = load_run(model_or_run, class_set, checkpoint)
    model, class_set = loaded.model, loaded.class_set
    size = tiling.whole_image_size(model, normalize_image_size(model_size) or loaded.image_size
                                   or (DEFAULT_EXPORT_SIZE, DEFAULT_EXPORT_SIZE))
    source = _data_source(loaded.config or {}, dataset, data_dir, manual_dir)
    if format == "tflite-int8" and source is None:
        raise ValueError(
            "Expected a dataset to calibrate a tflite-int8 export on, received a model with no "
            "run dataset; pass dataset= NAME|PATH, or export a run folder.")
    channels = int(model.input_shape[-1])

    with staging_dir(out) as staging:
        metadata_dir = staging / "metadata"
        metadata_dir.mkdir()
        (metadata_dir / "class_set.json").write_text(class_set.to_json())
        (metadata_dir / "class_names.txt").write_text("\n".join(class_set.class_names) + "\n")
        sample = (noise_sample(parity_images, size, channels) if source is None else split_sample(
            source["dataset"], source["validation_split"], parity_images, channels, class_set,
            data_dir=source["data_dir"], manual_dir=source["manual_dir"]))
        result_dir = staging / "result"
        module = serving_module(model, class_set, size, antialias=format == "savedmodel",
                                asset_dir=metadata_dir if format == "savedmodel" else None,
                                batch_size=TFLITE_BATCH_SIZE if format in TFLITE_PRECISIONS else None)
        # int8 is converted from a float-input twin of the graph (serving_module's float_input).
        converted = module if format != "tflite-int8" else serving_module(
            model, class_set, size, antialias=False, batch_size=TFLITE_BATCH_SIZE, float_input=True)
        artefact, details = _write_artefact(format, converted, class_set, result_dir, metadata_dir,
                                            source, channels, calibration_images)
        measured = measure_parity(lambda images: module.serve(images)["labels"].numpy(),
                                  _artefact_labels(format, artefact), sample, class_set)
        report = {
            "format": format, "artefact": "this folder" if format == "savedmodel" else artefact.name,
            "passed": measured["pixel_agreement"] >= threshold, **measured, "threshold": threshold,
            "threads": available_cpus(), "model_size": list(size),
            "preprocessing": ("bilinear resize with antialiasing, as pixelwise predict"
                              if format == "savedmodel" else
                              "bilinear resize without antialiasing (TFLite/ONNX builtin ops)"),
            "artefact_bytes": _size_of(artefact), **details,
            "checkpoint": None if loaded.checkpoint_path is None else str(loaded.checkpoint_path),
        }
        write_atomic(result_dir / PARITY_REPORT_NAME, json.dumps(report, indent=2) + "\n")
        failed = out.with_name(out.name + FAILED_SUFFIX)
        kept = out if report["passed"] else failed
        replace_dir(result_dir, kept)
        if report["passed"]:  # an earlier failed try is superseded; its report would mislead
            shutil.rmtree(failed, ignore_errors=True)
    if not report["passed"]:
        raise ParityError(
            f"Export not written to {str(out)!r}: {parity_line(report)}. The artefact and its "
            f"{PARITY_REPORT_NAME} are in {str(kept)!r} for inspection; to ship it anyway, pass "
            f"min_agreement={math.floor(100 * report['pixel_agreement']) / 100:.2f} or lower.",
            report, kept)
    return kept if format == "savedmodel" else kept / artefact.name


def _check_options(format, calibration_images, parity_images, min_agreement) -> float:
    """The agreement threshold, after checking the options a user typed."""
    if format not in FORMATS:
        raise ValueError(f"Expected an export format in {list(FORMATS)}, received {format!r}.")
    for name, value in (("calibration_images", calibration_images),
                        ("parity_images", parity_images)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected {name}= a whole number of at least 1, received {value!r}.")
    threshold = DEFAULT_MIN_AGREEMENT[format] if min_agreement is None else min_agreement
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"Expected min_agreement= between 0 and 1 (a share of pixels, e.g. 0.98), "
                         f"received {min_agreement!r}.")
    return float(threshold)


def _data_source(config: dict, dataset, data_dir, manual_dir) -> dict | None:
    """Where calibration and parity images come from: the arguments, else the run's config."""
    dataset = dataset or config.get("dataset")
    if not dataset:
        return None
    return {"dataset": str(dataset), "data_dir": data_dir or config.get("data_dir"),
            "manual_dir": manual_dir or config.get("manual_dir"),
            "train_split": config.get("train_split") or "train",
            "validation_split": config.get("validation_split") or DEFAULT_SPLIT}


def _write_artefact(format, module, class_set, directory: Path, metadata_dir: Path, source,
                    channels, calibration_images) -> tuple[Path, dict]:
    """Write the artefact of ``format`` into ``directory``; its path and what the report adds."""
    details: dict = {}
    if format == "savedmodel":
        tf.saved_model.save(module, str(directory), signatures={
            "serving_default": module.serve, "class_names": module.get_class_names,
        })
        return directory, details
    directory.mkdir()
    if format == "onnx":
        artefact = directory / "model.onnx"
        artefact.write_bytes(convert_onnx(module, class_set.class_names))
        details["onnx_opset"] = ONNX_OPSET
    else:
        calibration = None
        if format == "tflite-int8":
            calibration = split_sample(
                source["dataset"], source["train_split"], calibration_images, channels, class_set,
                data_dir=source["data_dir"], manual_dir=source["manual_dir"])
            details["calibration"] = {"images": len(calibration.images), "source": calibration.source}
        artefact = directory / "model.tflite"
        artefact.write_bytes(convert_tflite(module, TFLITE_PRECISIONS[format],
                                            calibration and calibration.images))
    for name in ("class_set.json", "class_names.txt"):
        shutil.copy(metadata_dir / name, directory / name)
    return artefact, details


def _artefact_labels(format, artefact: Path):
    """``images -> labels`` of the written artefact, loaded the way a user loads it."""
    if format == "savedmodel":
        serve = tf.saved_model.load(str(artefact)).signatures["serving_default"]
        return lambda images: serve(images=tf.constant(images))["labels"].numpy()
    if format == "onnx":
        return onnx_labels(artefact)
    return tflite_labels(artefact)


def _size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def load_class_names(artefact) -> list[str]:
    """Class names of an exported SavedModel directory, ``model.tflite`` or ``model.onnx`` (its folder)."""
    path = Path(artefact)
    folder = path.parent if path.is_file() else path
    for candidate in (folder / "assets" / "class_names.txt", folder / "class_names.txt"):
        if candidate.exists():
            return candidate.read_text().splitlines()
    raise FileNotFoundError(
        f"Expected class_names.txt in {str(folder)!r} (written by 'pixelwise export'), found none."
    )
