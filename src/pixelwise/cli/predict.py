"""``pixelwise predict``: a thin layer over :func:`pixelwise.inference.files.predict_files`.

Examples (also in ``pixelwise predict --help``)::

    pixelwise predict photo.jpg street.png --run runs/camvid --out predictions/
    pixelwise predict big.png --run runs/isbi --tile 572 --out predictions/
    pixelwise predict --beam "photos/*.jpg" --run runs/camvid --out predictions/
"""

from __future__ import annotations

import sys

from pixelwise.cli import HelpFormatter
from pixelwise.cli.options import (
    SIZE_METAVAR, TILE_METAVAR, add_beam_options, add_hidden_alias, add_mode_and_tta,
    add_model_options, model_source,
    parse_input_size_or_native, parse_tile,
)
from pixelwise.defaults import DEFAULT_MIN_AREA, DEFAULT_PREDICT_SIZE, DEFAULT_TILE_BATCH


def _report(result) -> None:
    """One line per image as soon as it is done: its size, pixel counts, boxes, outputs."""
    if result.error is not None:
        print(f"pixelwise predict: error: {result.error}", file=sys.stderr)
        return
    prediction = result.prediction
    height, width = prediction.labels.shape
    counts = sorted(((n, c) for n, c in prediction.counts.items() if c), key=lambda nc: -nc[1])
    listed = ", ".join(f"{name} {count}" for name, count in counts)
    print(f"{result.path} ({width}x{height}): {listed}; {len(prediction.boxes)} boxes -> "
          f"{result.outputs['json'].parent}/{result.outputs['json'].stem}_*")


def run_predict(args) -> int:
    from pixelwise.inference.options import PredictOptions

    # Refused once, before the model is loaded, not once per image.
    options = PredictOptions(model_size=args.input_size, mode=args.mode, tile=args.tile,
                             overlap=args.overlap, tta=args.tta)
    model_or_run, class_set, checkpoint = model_source(args)
    if args.beam or args.beam_options:
        return _run_beam(args, model_or_run, class_set, checkpoint, options)
    from pixelwise.inference.files import predict_files, read_file_list

    images = list(args.images) + read_file_list(args.file_list)
    if not images:
        raise ValueError("Expected IMAGE arguments or --file-list PATH, received neither.")
    results = predict_files(
        model_or_run, images, args.out, class_set=class_set, checkpoint=checkpoint,
        options=options, min_area=args.min_area, batch_size=args.batch_size, on_result=_report,
    )
    failed = [r for r in results if r.error is not None]
    if failed:
        print(f"pixelwise predict: {len(failed)} of {len(results)} images failed: "
              + ", ".join(str(r.path) for r in failed), file=sys.stderr)
        return 2
    return 0


def _run_beam(args, model_or_run, class_set, checkpoint, options) -> int:
    from pixelwise.inference.beam import predict_beam

    summary = predict_beam(
        model_or_run, args.images, args.out, file_list=args.file_list, class_set=class_set,
        checkpoint=checkpoint, options=options, min_area=args.min_area, batch_size=args.batch_size,
        beam_options=args.beam_options or "",
    )
    print(f"{summary.images} images: {summary.predicted} predicted, {summary.skipped} already "
          f"complete, {summary.failed} failed; counts in {summary.counts_path}")
    if summary.failed:
        print(f"pixelwise predict: {summary.failed} of {summary.images} images failed; their "
              f"reasons are in {summary.dead_letter_path}", file=sys.stderr)
        return 2
    return 0


def register(subparsers) -> None:
    """Add the ``predict`` subcommand."""
    predict = subparsers.add_parser(
        "predict", formatter_class=HelpFormatter,
        help="segment images: colour mask, overlay, boxes and per-class pixel counts",
        description="For each IMAGE writes NAME_mask.png, NAME_overlay.png, NAME_boxes.png and "
        "NAME.json (pixel counts by class name, boxes of connected regions with area and mean "
        "confidence), all at the image's own size. A bad image is reported and skipped; the "
        "others are still processed and the exit status is 2.\n\n"
        "With --beam the images go through an Apache Beam pipeline (RunInference; the run "
        "loaded once per worker): IMAGE may be a quoted glob, images whose four outputs exist "
        "are skipped (a killed job resumes), and OUT gets counts.jsonl (pixel counts per "
        "image) and dead-letter.jsonl (each failed image with its reason).\n\n"
        "Examples:\n"
        "  pixelwise predict photo.jpg street.png --run runs/camvid --out predictions/\n"
        "  pixelwise predict big.png --run runs/isbi --tile 572 --out predictions/\n"
        "  pixelwise predict --beam 'photos/*.jpg' --run runs/camvid --out predictions/",
    )
    predict.add_argument("images", nargs="*", metavar="IMAGE",
                         help="JPEG, PNG, BMP, GIF (first frame) or WebP files; with --beam also "
                         "glob patterns (quoted), local, gs:// or s3://")
    predict.add_argument("--file-list", default=None, metavar="PATH",
                         help="text file naming one image per line (blank lines and # comments "
                         "skipped), added to the IMAGE arguments")
    add_model_options(predict)
    options = predict.add_argument_group("prediction")
    options.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_mode_and_tta(options)
    size = options.add_argument(
        "--input-size", type=parse_input_size_or_native, default=DEFAULT_PREDICT_SIZE,
        metavar=f"{SIZE_METAVAR}|native",
        help="size the model sees in a whole-image prediction; native: each image's own size "
        "(ignored with a fixed-size model or --tile)")
    size.python_name = "model_size"  # PredictOptions' field
    add_hidden_alias(options, "--size", size)  # pixelwise 0.1.0's spelling
    options.add_argument("--tile", type=parse_tile, default=None, metavar=TILE_METAVAR,
                         help="predict at native resolution in overlapping NxN or HxW tiles, for "
                         "large images (default: off, one whole-image prediction)")
    options.add_argument("--overlap", type=int, default=None, metavar="PX",
                         help="tile overlap (default: tile/4 for same-padding models, the model's "
                         "own border for the valid-padding original U-Net)")
    options.add_argument("--min-area", type=int, default=DEFAULT_MIN_AREA, metavar="PX",
                         help="connected regions smaller than this get no box")
    options.add_argument("--batch-size", type=int, default=DEFAULT_TILE_BATCH, metavar="N",
                         help="tiles per forward pass")
    beam = predict.add_argument_group("Apache Beam (pip install \"pixelwise[beam]\")")
    add_beam_options(beam, "predict in an Apache Beam pipeline with RunInference, the run "
                     "loaded once per worker")
    predict.set_defaults(func=run_predict)
