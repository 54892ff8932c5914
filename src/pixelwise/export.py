"""Export a trained model as a serving artefact: SavedModel or TFLite.

Both take a **uint8 image batch** ``[B, H, W, C]`` (any H, W; C = the model's input
channels) and return ``{"labels": [B, H, W]}`` class ids (uint8 up to 256 classes,
int32 beyond) at the input's size. Everything :func:`pixelwise.predict` does in its
whole-image mode happens inside the graph: scaling to [0, 1], bilinear resize to the
model's size, mirror padding where the model cannot take that size directly
(valid-padding models; the chapter U-Net at sides not multiples of 64), softmax,
bilinear resize of the probabilities back to H x W, argmax.

Class names travel with the artefact:

* SavedModel: ``assets/class_set.json`` and ``assets/class_names.txt`` (one name per
  line, line ``i`` = class ``i``), the ``class_names`` string tensor attribute of the
  loaded object, and a ``class_names`` signature returning it.
* TFLite: ``class_names.txt`` and ``class_set.json`` beside ``model.tflite`` (the
  interpreter has no string metadata without the TFLite Support library).

The TFLite graph uses builtin ops only, so its resize is plain bilinear; the
SavedModel's (like the training pipeline's) is antialiased when shrinking. The two
agree exactly when the input already has the model's size.

Example:
    >>> export_model("runs/voc", "export/voc", format="savedmodel")   # doctest: +SKIP
    >>> serving = tf.saved_model.load("export/voc")                     # doctest: +SKIP
    >>> serving.signatures["serving_default"](images=batch)["labels"]   # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from pixelwise import tiling
from pixelwise.class_sets import ClassSet
from pixelwise.config import normalize_image_size
from pixelwise.files import replace_dir, staging_dir
from pixelwise.prediction import ends_in_softmax
from pixelwise.runs import load_run
from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_EXPORT_SIZE, EXPORT_FORMATS

#: ``"savedmodel"`` or ``"tflite"``.
FORMATS = EXPORT_FORMATS


def _serving_module(model, class_set: ClassSet, size: tuple[int, int], antialias: bool,
                    asset_dir: Path | None = None):
    channels = int(model.input_shape[-1])
    height, width = size
    # Models that cannot take this size directly (valid-padding models, or the chapter
    # U-Net at sides that are not multiples of 64): mirror the resized image out to the
    # square tile whose kept centre covers it, as predict's whole-image mode does.
    if tiling.output_shape(model, height, width) == (height, width):
        tile, pad, crop = None, (0, 0, 0, 0), 0
    else:
        tile, overlap = tiling.covering_tile(model, max(height, width))
        geometry = tiling.tile_geometry(model, tile, overlap)
        before = geometry.margin
        after_h, after_w = tile - height - before, tile - width - before
        if max(before, after_h) >= height or max(before, after_w) >= width:
            raise ValueError(
                f"Export size {height}x{width} is too small to mirror-pad to the model's "
                f"{tile}x{tile} input (by up to {max(before, after_h, after_w)} pixels); pass a "
                f"size above {max(before, after_h, after_w)} on each side."
            )
        pad, crop = (before, after_h, before, after_w), geometry.crop
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

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")])
        def serve(self, images):
            original = tf.shape(images)[1:3]
            x = tf.image.resize(tf.cast(images, tf.float32), (height, width), method="bilinear",
                                antialias=antialias)
            # Same rounding as the training pipeline, which stores resized images as uint8.
            x = tf.clip_by_value(tf.round(x), 0.0, 255.0) / 255.0
            if tile is not None:
                x = tf.pad(x, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]], mode="REFLECT")
            outputs = self.model(x, training=False)
            if tile is not None:
                outputs = outputs[:, crop:crop + height, crop:crop + width]
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
    size=None,
    overwrite: bool = False,
) -> Path:
    """Export a model as a SavedModel directory or a TFLite file with its class names.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), ``RunFolder`` or its path, a
            ``.keras`` file, or a :class:`~pixelwise.runs.LoadedRun`.
        out: Output directory (created; for SavedModel it *is* the SavedModel).
        format: ``"savedmodel"`` (default) or ``"tflite"``.
        class_set: Class set (or its name, or a JSON path) for a bare model; default: the run's.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders (default ``best``).
        size: Side (or (H, W)) the image is resized to inside the graph. Default: the
            model's fixed input size, else the run's training ``image_size``, else 512.
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        The SavedModel directory, or the ``model.tflite`` path.

    Raises:
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is False.
    """
    if format not in FORMATS:
        raise ValueError(f"Expected an export format in {list(FORMATS)}, received {format!r}.")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(
            f"Export folder {str(out)!r} already exists and is not empty; choose another --out "
            "or pass --overwrite."
        )
    loaded = load_run(model_or_run, class_set, checkpoint)
    model, class_set = loaded.model, loaded.class_set
    size = tiling.whole_image_size(model, normalize_image_size(size) or loaded.image_size
                                   or (DEFAULT_EXPORT_SIZE, DEFAULT_EXPORT_SIZE))

    with staging_dir(out) as staging:
        metadata_dir = staging / "metadata"
        metadata_dir.mkdir()
        (metadata_dir / "class_set.json").write_text(class_set.to_json())
        (metadata_dir / "class_names.txt").write_text("\n".join(class_set.class_names) + "\n")
        if format == "savedmodel":
            result_dir, result = staging / "savedmodel", out
            _save_savedmodel(model, class_set, size, result_dir, metadata_dir)
        else:
            result_dir, result = staging / "tflite", out / "model.tflite"
            result_dir.mkdir()
            (result_dir / "model.tflite").write_bytes(_convert_tflite(model, class_set, size))
            for name in ("class_set.json", "class_names.txt"):
                shutil.copy(metadata_dir / name, result_dir / name)
        replace_dir(result_dir, out)
    return result


def _save_savedmodel(model, class_set, size, directory: Path, asset_dir: Path):
    module = _serving_module(model, class_set, size, antialias=True, asset_dir=asset_dir)
    tf.saved_model.save(module, str(directory), signatures={
        "serving_default": module.serve, "class_names": module.get_class_names,
    })


def _convert_tflite(model, class_set, size) -> bytes:
    """TFLite flatbuffer of the serving function, weights frozen into constants.

    ``TFLiteConverter.from_saved_model`` on a ``tf.Module`` holding a Keras 3 model keeps
    the weights as resource variables the interpreter never initialises (TF 2.21: the
    model then outputs garbage or fails in READ_VARIABLE), so the concrete function is
    frozen first and converted with ``from_concrete_functions``.
    """
    module = _serving_module(model, class_set, size, antialias=False)
    frozen = convert_variables_to_constants_v2(module.serve.get_concrete_function())

    # Freezing flattens the outputs; restore the "labels" name of the signature.
    @tf.function(input_signature=module.serve.input_signature)
    def serve(images):
        return {"labels": frozen(images)[0]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def load_class_names(artefact) -> list[str]:
    """Class names of an exported SavedModel directory or ``model.tflite`` (its folder)."""
    path = Path(artefact)
    folder = path.parent if path.suffix == ".tflite" else path
    for candidate in (folder / "assets" / "class_names.txt", folder / "class_names.txt"):
        if candidate.exists():
            return candidate.read_text().splitlines()
    raise FileNotFoundError(
        f"Expected class_names.txt in {str(folder)!r} (written by 'pixelwise export'), found none."
    )
