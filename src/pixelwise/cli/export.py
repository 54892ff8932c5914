"""``pixelwise export``: a thin layer over :func:`pixelwise.export.export_model`.

Example::

    pixelwise export --run runs/camvid --format tflite --out export/camvid-tflite
"""

from __future__ import annotations

from pixelwise.cli import HelpFormatter
from pixelwise.cli.model_options import add_model_options, model_source
from pixelwise.defaults import DEFAULT_EXPORT_SIZE, EXPORT_FORMATS


def run_export(args) -> int:
    from pixelwise.export import export_model

    model_or_run, class_set, checkpoint = model_source(args)
    path = export_model(model_or_run, args.out, args.format, class_set=class_set,
                        checkpoint=checkpoint, size=args.size, overwrite=args.overwrite)
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
        "class_names.txt beside model.tflite).",
    )
    add_model_options(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0])
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument("--size", default=None, metavar="N|HxW",
                        help="size the graph resizes images to (default: the model's fixed input, "
                        f"else the run's training image_size, else {DEFAULT_EXPORT_SIZE})")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    export.set_defaults(func=run_export)
