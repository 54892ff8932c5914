"""``pixelwise export``: a thin layer over :func:`pixelwise.export.serving.export_model`.

Example (also in ``pixelwise export --help``)::

    pixelwise export --run runs/camvid --format tflite-int8 --out runs/camvid/exports/int8
"""

from __future__ import annotations

import json

from pixelwise.cli import HelpFormatter
from pixelwise.cli.options import (
    SIZE_METAVAR, add_hidden_alias, add_model_options, model_source, parse_image_size,
)
from pixelwise.defaults import (
    DEFAULT_CALIBRATION_IMAGES, DEFAULT_EXPORT_SIZE, DEFAULT_MIN_AGREEMENT, DEFAULT_PARITY_IMAGES,
    DEFAULT_SPLIT, EXPORT_FORMATS, PARITY_REPORT_NAME,
)


def run_export(args) -> int:
    from pixelwise.export.serving import export_model
    from pixelwise.export.parity import parity_line

    model_or_run, class_set, checkpoint = model_source(args)
    path = export_model(model_or_run, args.out, args.format, class_set=class_set,
                        checkpoint=checkpoint, model_size=args.input_size, overwrite=args.overwrite,
                        dataset=args.dataset, data_dir=args.data_dir, manual_dir=args.manual_dir,
                        calibration_images=args.calibration_images,
                        parity_images=args.parity_images, min_agreement=args.min_agreement)
    report_path = (path if path.is_dir() else path.parent) / PARITY_REPORT_NAME
    print(f"wrote {args.format} to {path}")
    print(f"{parity_line(json.loads(report_path.read_text()))} (report: {report_path})")
    return 0


def _thresholds() -> str:
    usual = DEFAULT_MIN_AGREEMENT["savedmodel"]
    others = ", ".join(f"{value} for {name}" for name, value in DEFAULT_MIN_AGREEMENT.items()
                       if value != usual)
    return f"{usual}; {others}" if others else str(usual)


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    export = subparsers.add_parser(
        "export", formatter_class=HelpFormatter,
        help="export a run as a SavedModel, TFLite (fp32, fp16, int8) or ONNX model (uint8 "
        "images in, label maps out), checked against the Keras model",
        description="The artefact takes a uint8 batch [B, H, W, C] and returns {'labels': "
        "[B, H, W]} (argmax, resizing and normalisation inside); class names ship with it "
        "(SavedModel: assets/class_names.txt, a 'class_names' signature; TFLite and ONNX: "
        "class_names.txt beside the model file). onnx needs the optional extra: "
        "pip install -e \".[export]\".\n\n"
        f"Every export is run in its own runtime beside the Keras model on --parity-images "
        f"images of the run's validation split (noise images for a model without a dataset); "
        f"{PARITY_REPORT_NAME} next to the artefact holds their pixel agreement, both mean "
        f"IoUs and median latencies. Below --min-agreement the export is not written to "
        f"--out: it goes to OUT.FAILED for inspection, and the command exits with status 2.\n\n"
        "Examples:\n"
        "  pixelwise export --run runs/camvid --format tflite --out export/camvid-tflite\n"
        "  pixelwise export --run runs/camvid --format tflite-int8 --out runs/camvid/exports/int8",
    )
    add_model_options(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0],
                        help="savedmodel: a TensorFlow SavedModel folder (TF Serving, "
                        "tf.saved_model.load); tflite: model.tflite, float32, for phones and "
                        "edge devices; tflite-fp16: float16 weights (half the size); "
                        "tflite-int8: full-integer quantization calibrated on the training "
                        "split (a quarter of the size; for integer-only accelerators too); onnx: "
                        "model.onnx for onnxruntime and other ONNX runtimes")
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    size = export.add_argument(
        "--input-size", type=parse_image_size, default=None, metavar=SIZE_METAVAR,
        help="size the model sees: the graph resizes each image to it, its probabilities back "
        "(default: the model's fixed input, else the run's training --image-size, else "
        f"{DEFAULT_EXPORT_SIZE})")
    size.python_name = "model_size"  # export_model's argument
    add_hidden_alias(export, "--size", size)  # pixelwise 0.1.0's spelling
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    check = export.add_argument_group("calibration and parity check")
    check.add_argument("--parity-images", type=int, default=DEFAULT_PARITY_IMAGES, metavar="N",
                       help=f"validation images (the run's validation split, else {DEFAULT_SPLIT}) "
                       "the artefact and the Keras model are compared on")
    check.add_argument("--min-agreement", type=float, default=None, metavar="SHARE",
                       help="least share of pixels whose class the artefact and the Keras "
                       f"model agree on (default: {_thresholds()})")
    check.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                       metavar="N", help="tflite-int8: training-split images the quantization "
                       "ranges are measured on")
    check.add_argument("--dataset", metavar="NAME|PATH", help="TFDS dataset name or the PATH of "
                       "a folder or .zip export, for those images (default: the run's)")
    check.add_argument("--data-dir", metavar="DIR",
                       help="TFDS data directory (default: the run's, else TFDS's)")
    check.add_argument("--manual-dir", metavar="DIR",
                       help="downloaded data to build the dataset from if it is not built "
                       "(default: the run's)")
    export.set_defaults(func=run_export)
