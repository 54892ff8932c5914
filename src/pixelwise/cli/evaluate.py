"""``pixelwise evaluate | predict | export``: use a trained run folder.

Examples::

    pixelwise evaluate --run runs/camvid --split validation
    pixelwise evaluate --checkpoint model.keras --dataset camvid --split test --out eval/
    pixelwise predict photo.jpg street.png --run runs/camvid --out predictions/
    pixelwise predict big.tif.png --run runs/isbi --tile 572 --out predictions/
    pixelwise export --run runs/camvid --format tflite --out export/camvid-tflite
"""

from __future__ import annotations

import sys
from pathlib import Path

from pixelwise.cli import HelpFormatter

#: Defaults, in one place (the Python API has the same ones).
DEFAULTS = {"checkpoint": "best", "size": 512, "min_area": 100, "batch_size": 4, "split": "validation"}


def _add_model_source(parser) -> None:
    source = parser.add_argument_group("model")
    source.add_argument("--run", metavar="runs/NAME",
                        help="run folder written by 'pixelwise train' (class set, checkpoints, config)")
    source.add_argument("--checkpoint", default=DEFAULTS["checkpoint"], metavar="best|last|FILE.keras",
                        help="checkpoint of the run, or any .keras file")
    source.add_argument("--class-set", metavar="NAME|FILE.json",
                        help="class set for a .keras file outside a run folder: voc, camvid, "
                        "isbi2012, or a class_set.json (default: the run's)")


def _model_source(args):
    """``(model_or_run, class_set, checkpoint)`` from --run/--checkpoint/--class-set."""
    from pixelwise.runs import CHECKPOINT_NAMES, RunFolder

    class_set = _class_set(args.class_set) if args.class_set else None
    if args.run:
        return RunFolder(args.run), class_set, args.checkpoint
    if args.checkpoint in CHECKPOINT_NAMES:
        raise ValueError(
            f"Expected --run runs/NAME, or --checkpoint FILE.keras with --class-set; received "
            f"--checkpoint {args.checkpoint} and no --run."
        )
    return Path(args.checkpoint), class_set, args.checkpoint


def _class_set(value: str):
    from pixelwise.class_sets import ClassSet, get_class_set

    if value.endswith(".json"):
        path = Path(value)
        if not path.exists():
            raise FileNotFoundError(f"Class set file {value!r} does not exist.")
        return ClassSet.from_json(path.read_text())
    return get_class_set(value)


def _size(value: str):
    if value.lower() == "native":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise ValueError(f"Expected --size N (pixels) or 'native', received {value!r}.")
    return size


# ----------------------------------------------------------------------------- evaluate


def run_evaluate(args) -> int:
    from pixelwise.evaluation import evaluate_model_file, evaluate_run
    from pixelwise.runs import CHECKPOINT_NAMES

    if args.run:
        result, paths, meta = evaluate_run(
            args.run, args.dataset, args.split, data_dir=args.data_dir, manual_dir=args.manual_dir,
            image_size=args.image_size, input_size=args.input_size, checkpoint=args.checkpoint,
            out=args.out,
        )
    else:
        if args.checkpoint in CHECKPOINT_NAMES:
            raise ValueError(
                f"Expected --run runs/NAME, or --checkpoint FILE.keras with --dataset and --out; "
                f"received --checkpoint {args.checkpoint} and no --run."
            )
        missing = [flag for flag, value in (("--dataset D", args.dataset), ("--out DIR", args.out))
                   if not value]
        if missing:
            raise ValueError(
                f"Expected {' and '.join(missing)} with --checkpoint {args.checkpoint} (no run "
                "folder to take them from), received none; e.g. --dataset camvid --out eval/."
            )
        result, paths, meta = evaluate_model_file(
            args.checkpoint, args.dataset, args.split, out=args.out,
            class_set=_class_set(args.class_set) if args.class_set else None,
            data_dir=args.data_dir, manual_dir=args.manual_dir, image_size=args.image_size,
            input_size=args.input_size,
        )
    print(f"{meta['dataset']} {meta['split']}, checkpoint {args.checkpoint}")
    print(result.table())
    print(f"wrote {paths['metrics']}, {paths['confusion']}, {paths['heatmap']}")
    return 0


# ----------------------------------------------------------------------------- predict


def run_predict(args) -> int:
    from pixelwise.inference import predict_files

    model_or_run, class_set, checkpoint = _model_source(args)

    def report(result):
        if result.error is not None:
            print(f"pixelwise predict: error: {result.error}", file=sys.stderr)
            return
        prediction = result.prediction
        height, width = prediction.labels.shape
        counts = sorted(((n, c) for n, c in prediction.counts.items() if c), key=lambda nc: -nc[1])
        listed = ", ".join(f"{name} {count}" for name, count in counts)
        print(f"{result.path} ({width}x{height}): {listed}; {len(prediction.boxes)} boxes -> "
              f"{result.outputs['json'].parent}/{result.outputs['json'].stem}_*")

    results = predict_files(
        model_or_run, args.images, args.out, class_set=class_set, checkpoint=checkpoint,
        on_result=report, size=args.size, tile=args.tile, overlap=args.overlap,
        min_area=args.min_area, batch_size=args.batch_size,
    )
    failed = [r for r in results if r.error is not None]
    if failed:
        print(f"pixelwise predict: {len(failed)} of {len(results)} images failed: "
              + ", ".join(str(r.path) for r in failed), file=sys.stderr)
        return 2
    return 0


# ----------------------------------------------------------------------------- export


def run_export(args) -> int:
    from pixelwise.export import export_model

    model_or_run, class_set, checkpoint = _model_source(args)
    path = export_model(model_or_run, args.out, args.format, class_set=class_set,
                        checkpoint=checkpoint, size=args.size, overwrite=args.overwrite)
    print(f"wrote {args.format} to {path}")
    return 0


# ----------------------------------------------------------------------------- parsers


def register(subparsers) -> None:
    """Add the ``evaluate``, ``predict`` and ``export`` subcommands."""
    evaluate = subparsers.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="pixel accuracy, mean and per-class IoU of a run on a dataset split",
        description="One confusion matrix over the whole split (void excluded): per-class IoU, "
        "mean IoU over the classes present, pixel accuracy. By default metrics are computed at "
        "each label's native resolution (the model sees --input-size; its probabilities are "
        "resized back bilinearly before the argmax); --image-size evaluates at a fixed size "
        "instead. Writes eval-SPLIT.json, confusion-SPLIT.json and confusion-SPLIT.png. Without "
        "--run, evaluates any --checkpoint FILE.keras with the class set of --dataset (or "
        "--class-set) and writes to --out.",
    )
    _add_model_source(evaluate)
    data = evaluate.add_argument_group("data")
    data.add_argument("--dataset", help="TFDS dataset (default: the run's; required with "
                      "--checkpoint FILE.keras and no --run)")
    data.add_argument("--split", help="split or slice (default: the run's validation split, "
                      f"else {DEFAULTS['split']})")
    data.add_argument("--data-dir", help="TFDS data directory (default: the run's, else TFDS's)")
    data.add_argument("--manual-dir", help="downloaded data to build the dataset from if needed")
    data.add_argument("--image-size", metavar="N|HxW", default=None,
                      help="evaluate at this fixed size (labels resized nearest) instead of native")
    data.add_argument("--input-size", metavar="N|HxW", default=None,
                      help="native mode: size the model sees (default: the model's fixed input, "
                      "else the run's training image_size, else each image's own size)")
    evaluate.add_argument("--out", metavar="DIR", help="where the results go (default: the run "
                          "folder; required with --checkpoint FILE.keras and no --run)")
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser(
        "predict", formatter_class=HelpFormatter,
        help="segment images: colour mask, overlay, boxes and per-class pixel counts",
        description="For each IMAGE writes NAME_mask.png, NAME_overlay.png, NAME_boxes.png and "
        "NAME.json (pixel counts by class name, boxes of connected regions with area and mean "
        "confidence), all at the image's own size. A bad image is reported and skipped; the "
        "others are still processed and the exit status is 2.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="JPEG, PNG, BMP, GIF (first frame) or WebP files")
    _add_model_source(predict)
    options = predict.add_argument_group("prediction")
    options.add_argument("--out", required=True, metavar="DIR", help="output folder")
    options.add_argument("--size", type=_size, default=DEFAULTS["size"], metavar="N|native",
                         help="side the image is resized to for a whole-image prediction (ignored "
                         "with a fixed-size model or --tile)")
    options.add_argument("--tile", type=int, default=None, metavar="N",
                         help="predict at native resolution in overlapping NxN tiles (large images)")
    options.add_argument("--overlap", type=int, default=None, metavar="PX",
                         help="tile overlap (default: tile/4 for same-padding models, the model's "
                         "own border for the valid-padding original U-Net)")
    options.add_argument("--min-area", type=int, default=DEFAULTS["min_area"], metavar="PX",
                         help="connected regions smaller than this get no box")
    options.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                         help="tiles per forward pass")
    predict.set_defaults(func=run_predict)

    export = subparsers.add_parser(
        "export", formatter_class=HelpFormatter,
        help="export a run as a SavedModel or TFLite model (uint8 images in, label maps out)",
        description="The artefact takes a uint8 batch [B, H, W, C] and returns {'labels': "
        "[B, H, W]} (argmax, resizing and normalisation inside); class names ship with it "
        "(SavedModel: assets/class_names.txt, a 'class_names' signature; TFLite: "
        "class_names.txt beside model.tflite).",
    )
    _add_model_source(export)
    export.add_argument("--format", choices=("savedmodel", "tflite"), default="savedmodel")
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument("--size", default=None, metavar="N|HxW",
                        help="size the graph resizes images to (default: the model's fixed input, "
                        "else the run's training image_size, else 512)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    export.set_defaults(func=run_export)
