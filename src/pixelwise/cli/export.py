"""``pixelwise export``: a thin layer over :func:`pixelwise.export.export_model`.

Example (also in ``pixelwise export --help``)::

    pixelwise export --run runs/camvid --format tflite --out export/camvid-tflite
"""

from __future__ import annotations

from pixelwise.cli import HelpFormatter
from pixelwise.cli.model_options import add_model_options, model_source
from pixelwise.cli.options import SIZE_METAVAR, add_hidden_alias, parse_image_size
from pixelwise.defaults import DEFAULT_EXPORT_SIZE, EXPORT_FORMATS


def run_export(args) -> int:
    from pixelwise.export import export_model

    model_or_run, class_set, checkpoint = model_source(args)
    path = export_model(model_or_run, args.out, args.format, class_set=class_set,
                        checkpoint=checkpoint, size=args.input_size, overwrite=args.overwrite)
    print(f"wrote {args.format} to {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    export = subparsers.add_parser(
        "export", formatter_class=HelpFormatter,
        help="export a run as a SavedModel or TFLite model (uint8 images in, label maps out)",
        description="The artefact takes a uint8 batch [B, H, W, C] and returns {'labels': "
        "[B, H, W]} (argmax, resizing and normalisation inside); class names ship with it "
        "(SavedModel: assets/class_names.txt, a 'class_names' signature; TFLite: "
        "class_names.txt beside model.tflite).\n\n"
        "Example:\n"
        "  pixelwise export --run runs/camvid --format tflite --out export/camvid-tflite",
    )
    add_model_options(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0],
                        help="savedmodel: a TensorFlow SavedModel folder (TF Serving, "
                        "tf.saved_model.load); tflite: model.tflite for phones and edge devices")
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    size = export.add_argument(
        "--input-size", type=parse_image_size, default=None, metavar=SIZE_METAVAR,
        help="size the model sees: the graph resizes each image to it, its probabilities back "
        "(default: the model's fixed input, else the run's training --image-size, else "
        f"{DEFAULT_EXPORT_SIZE})")
    add_hidden_alias(export, "--size", size)  # pixelwise 0.1.0's spelling
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    export.set_defaults(func=run_export)
