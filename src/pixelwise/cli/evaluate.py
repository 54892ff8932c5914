"""``pixelwise evaluate``: a thin layer over :mod:`pixelwise.evaluation.evaluator`.

Examples::

    pixelwise evaluate --run runs/camvid --split validation
    pixelwise evaluate --checkpoint model.keras --dataset camvid --split test --out eval/
"""

from __future__ import annotations

from pixelwise.cli import HelpFormatter
from pixelwise.cli.options import (
    SIZE_METAVAR, TILE_METAVAR, add_mode_and_tta, add_model_options, model_source,
    parse_image_size, parse_tile,
)
from pixelwise.defaults import DEFAULT_BOOTSTRAP_RESAMPLES, DEFAULT_BOUNDARY_RATIO, DEFAULT_SPLIT


def run_evaluate(args) -> int:
    from pixelwise.evaluation.evaluator import evaluate_model_file, evaluate_run
    from pixelwise.inference.options import PredictOptions

    # No --input-size: model_size None, evaluate's default (the run's training size).
    options = {"options": PredictOptions(model_size=args.input_size, mode=args.mode,
                                         tile=args.tile, overlap=args.overlap, tta=args.tta),
               "boundary_ratio": args.boundary_ratio,
               "bootstrap_resamples": args.bootstrap_resamples}
    if args.run:
        result, paths, meta = evaluate_run(
            args.run, args.dataset, args.split, data_dir=args.data_dir, manual_dir=args.manual_dir,
            image_size=args.image_size, checkpoint=args.checkpoint, out=args.out, **options,
        )
    else:
        _, class_set, _ = model_source(args, needs="--dataset and --out")
        missing = [flag for flag, value in (("--dataset D", args.dataset), ("--out DIR", args.out))
                   if not value]
        if missing:
            raise ValueError(
                f"Expected {' and '.join(missing)} with --checkpoint {args.checkpoint} (no run "
                "folder to take them from), received none; e.g. --dataset camvid --out eval/."
            )
        result, paths, meta = evaluate_model_file(
            args.checkpoint, args.dataset, args.split, out=args.out, class_set=class_set,
            data_dir=args.data_dir, manual_dir=args.manual_dir, image_size=args.image_size,
            **options,
        )
    print(f"{meta['dataset']} {meta['split']}, checkpoint {args.checkpoint}")
    print(result.table())
    print(f"wrote {paths['metrics']}, {paths['confusion']}, {paths['heatmap']}")
    return 0


def register(subparsers) -> None:
    """Add the ``evaluate`` subcommand."""
    evaluate = subparsers.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="pixel accuracy, mean and per-class IoU of a run on a dataset split",
        description="One confusion matrix over the whole split (void excluded): per-class IoU, "
        "mean IoU over the classes present, pixel accuracy. By default metrics are computed at "
        "each label's native resolution (the model sees --input-size; its probabilities are "
        "resized back bilinearly before the argmax); --image-size evaluates at a fixed size "
        "instead, as training's validation does. Writes eval-SPLIT.json, confusion-SPLIT.json "
        "and confusion-SPLIT.png. Without --run, evaluates any --checkpoint FILE.keras with the "
        "class set of --dataset (or --class-set) and writes to --out.\n\n"
        "Examples:\n"
        "  pixelwise evaluate --run runs/camvid --split validation\n"
        "  pixelwise evaluate --checkpoint model.keras --dataset camvid --split test --out eval/",
    )
    add_model_options(evaluate)
    data = evaluate.add_argument_group("data")
    data.add_argument("--dataset", metavar="NAME|PATH", help="TFDS dataset name or the PATH of "
                      "a folder or .zip export (default: the run's; required with --checkpoint "
                      "FILE.keras and no --run)")
    data.add_argument("--split", metavar="SPLIT", help="split or slice; a split sharing groups "
                      "(e.g. video sequences) with the run's training data is flagged (default: "
                      f"the run's validation: its held-out groups or validation split, else "
                      f"{DEFAULT_SPLIT})")
    data.add_argument("--data-dir", metavar="DIR",
                      help="TFDS data directory (default: the run's, else TFDS's)")
    data.add_argument("--manual-dir", metavar="DIR",
                      help="downloaded data to build the dataset from if it is not built "
                      "(default: the run's)")
    data.add_argument("--image-size", metavar=SIZE_METAVAR, type=parse_image_size, default=None,
                      help="evaluate at this fixed size: images and labels (nearest) resized to "
                      "it, as in training (default: native, each label's own size)")
    data.add_argument("--input-size", metavar=SIZE_METAVAR, type=parse_image_size, default=None,
                      help="size the model sees at native resolution (default: the model's fixed "
                      "input, else the run's training --image-size, else each image's own size)"
                      ).python_name = "model_size"  # PredictOptions' field
    prediction = evaluate.add_argument_group("prediction")
    add_mode_and_tta(prediction)
    prediction.add_argument("--tile", type=parse_tile, default=None, metavar=TILE_METAVAR,
                            help="tile of --mode slide, NxN or HxW (default: the model's fixed "
                            "input, else the size it sees, the run's training size)")
    prediction.add_argument("--overlap", type=int, default=None, metavar="PX",
                            help="tile overlap of --mode slide (default: tile/4 for same-padding "
                            "models, the model's own border for the valid-padding original U-Net)")
    metrics = evaluate.add_argument_group("metrics")
    metrics.add_argument("--boundary-ratio", type=float, default=DEFAULT_BOUNDARY_RATIO, metavar="F",
                         help="boundary IoU band width as a fraction of each image's diagonal "
                         "(Cheng et al. 2021)")
    metrics.add_argument("--bootstrap-resamples", type=int, default=DEFAULT_BOOTSTRAP_RESAMPLES,
                         metavar="N", help="resamples of the images for the 95%% interval of mean "
                         "IoU, seeded (0: no interval)")
    evaluate.add_argument("--out", metavar="DIR", help="where the results go (default: the run "
                          "folder; required with --checkpoint FILE.keras and no --run)")
    evaluate.set_defaults(func=run_evaluate)
