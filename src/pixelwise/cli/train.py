"""``pixelwise train``: a thin layer over :func:`pixelwise.training.loop.train`.

Precedence: :class:`~pixelwise.training.config.TrainConfig` defaults (the chapter's) <
the run folder's ``config.json`` (with ``--resume``) < ``--config FILE`` < flags.
Only flags given on the command line override; ``--help`` shows the defaults, read
from ``TrainConfig`` (this module holds none of its own). Parsing imports
:mod:`pixelwise.training.config` only, so ``pixelwise --help`` does not load TensorFlow.
"""

from __future__ import annotations

import argparse

from pixelwise.cli import HelpFormatter, parse_model_args
from pixelwise.cli.next_steps import report as next_steps_report
from pixelwise.cli.options import SIZE_METAVAR
from pixelwise.defaults import LOSS_KINDS, tfds_data_dir
from pixelwise.training.config import (
    CLASS_WEIGHTS, LR_SCHEDULES, MIXED_PRECISION, OPTIMIZERS, STRATEGIES, TrainConfig,
)
from pixelwise.training.config_files import resolve_config

_DEFAULTS = TrainConfig()


def _dropout_schedule(text: str):
    if text.strip().lower() in ("none", "off"):
        return "none"
    return text


def _default(name, none: str = "none") -> str:
    """The help's closing default statement, read from TrainConfig; ``none``: what None means."""
    value = getattr(_DEFAULTS, name)
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return f" (default: {none if value is None else value})"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a segmentation model and write a run folder",
        description=(
            "Train a model with Keras compile/fit and write runs/NAME/: config.json, "
            "class_set.json, checkpoints/{best,last}.keras, backup/, tensorboard/, history.csv, "
            "curves.png, metrics.json.\n\n"
            "Defaults are the chapter's. Precedence: defaults < the run's config.json (--resume) "
            "< --config FILE < flags.\n\n"
            "Example:\n"
            "  pixelwise train --dataset camvid --manual-dir ../shared/datasets/CamVid \\\n"
            "      --image-size 256x320 --batch-size 8 --model-arg base_filters=16 \\\n"
            "      --mixed-precision bf16 --out runs/camvid"
        ),
        formatter_class=HelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="YAML or JSON file of options (keys as the flags, "
        "with underscores: learning_rate: 1e-3); flags override it"
        ).python_name = "config_file"  # resolve_config's argument
    add("--resume", action="store_true", default=False,
        help="continue the run in --out from its last finished epoch")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", metavar="NAME|PATH",
                      help="TFDS dataset name (pixelwise datasets list), oxford_iiit_pet, "
                      "cityscapes, or the PATH of a folder or .zip export (built, or rebuilt if "
                      "it changed)"
                      + _default("dataset"))
    data.add_argument("--data-dir", metavar="DIR", help="TFDS data directory"
                      + _default("data_dir", none=f"TFDS', {tfds_data_dir()}"))
    data.add_argument("--manual-dir", metavar="DIR", help="manually downloaded data, to build the "
                      "dataset if it is not built yet" + _default("manual_dir", none="download"))
    data.add_argument("--train-split", metavar="SPLIT",
                      help="training split or slice" + _default("train_split"))
    data.add_argument("--validation-split", metavar="SPLIT",
                      help="split that selects the best epoch; none: no validation, keep the "
                      "last epoch" + _default("validation_split"))
    data.add_argument("--groups", metavar="RULE",
                      help="how examples group (frames of one video): auto (the dataset's), none, "
                      "a regex whose first group names the group, or a filename,group CSV; "
                      "training warns when validation shares groups with training"
                      + _default("groups"))
    data.add_argument("--validation-groups", metavar="G1,G2",
                      help="hold these groups of the training split out, whole, as validation "
                      "(CamVid: 0006R0)" + _default("validation_groups", none="validation_split"))
    data.add_argument("--image-size", metavar=SIZE_METAVAR,
                      help="size images and labels are resized to for training and validation; "
                      "the model's input size" + _default("image_size"))
    data.add_argument("--batch-size", type=int, metavar="N",
                      help="global batch size, split across replicas" + _default("batch_size"))
    data.add_argument("--augment", action=argparse.BooleanOptionalAction,
                      help="flip, scale+crop, photometric jitter" + _default("augment"))
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME",
                       help="model name (pixelwise models list)" + _default("model"))
    model.add_argument("--model-arg", action="append", metavar="KEY=VALUE", dest="model_arg",
                       help="model option, repeatable; values typed as int/float/bool/none, "
                       "e.g. --model-arg base_filters=16 --model-arg batch_norm=true"
                       ).python_name = "model_args"  # TrainConfig's field
    fit = parser.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=int, metavar="N", help="epochs" + _default("epochs"))
    fit.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer" + _default("optimizer"))
    fit.add_argument("--learning-rate", "--lr", type=float, metavar="LR",
                     help="initial learning rate" + _default("learning_rate"))
    fit.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                     help="learning-rate schedule, per step" + _default("lr_schedule"))
    fit.add_argument("--weight-decay", type=float, metavar="WD",
                     help="adamw weight decay" + _default("weight_decay"))
    fit.add_argument("--freeze-encoder-epochs", type=int, metavar="N",
                     help="epochs a pretrained encoder (--model-arg encoder=NAME) stays frozen, "
                     "BatchNorm statistics included, before it trains too"
                     + _default("freeze_encoder_epochs"))
    fit.add_argument("--encoder-lr-multiplier", type=float, metavar="M",
                     help="the encoder's learning rate relative to the decoder's once it trains"
                     + _default("encoder_lr_multiplier"))
    fit.add_argument("--loss", choices=LOSS_KINDS, help="loss (exercise 16: +dice, +l2)"
                     + _default("loss"))
    fit.add_argument("--reconstruction-weight", type=float, metavar="W",
                     help="weight of the dice/l2 term" + _default("reconstruction_weight"))
    fit.add_argument("--class-weights", choices=CLASS_WEIGHTS,
                     help="per-class loss weights" + _default("class_weights"))
    fit.add_argument("--dropout-schedule", metavar="START,STEP,CAP", type=_dropout_schedule,
                     help="encoder dropout schedule (exercise 19), e.g. 0.5,0.1,0.9; 'none' off"
                     + _default("dropout_schedule", none="none"))
    fit.add_argument("--early-stopping-patience", type=int, metavar="EPOCHS",
                     help="epochs without better val_mean_iou before stopping; 0 off"
                     + _default("early_stopping_patience"))
    fit.add_argument("--seed", type=int, metavar="N", help="random seed"
                     + _default("seed", none="unseeded"))
    run = parser.add_argument_group("execution")
    run.add_argument("--mixed-precision", choices=MIXED_PRECISION,
                     help="bf16: mixed_bfloat16 policy; auto: bf16 where the CPU or GPU has "
                          "bf16 units, else none (metrics.json says which and why)"
                     + _default("mixed_precision"))
    run.add_argument("--strategy", choices=STRATEGIES,
                     help="tf.distribute strategy (mirrored under KERAS_BACKEND=jax: "
                          "keras.distribution.DataParallel); multi-worker reads TF_CONFIG"
                     + _default("strategy"))
    run.add_argument("--jit-compile", choices=("auto", "true", "false"),
                     help="XLA compilation" + _default("jit_compile"))
    run.add_argument("--image-summaries", type=int, metavar="N",
                     help="validation images drawn to TensorBoard" + _default("image_summaries"))
    run.add_argument("--out", metavar="runs/NAME",
                     help="run folder" + _default("out", none="runs/DATASET-MODEL"))
    run.add_argument("--verbose", type=int, choices=(0, 1, 2),
                     help="Keras fit verbosity: 0 silent, 1 a progress bar, 2 one line per "
                     "epoch; auto: 1 on a terminal, else 2 (a log gets no bar redraws)" + _default("verbose"))
    parser.set_defaults(func=run_train)


def overrides_from_args(args) -> dict:
    """The TrainConfig values given on the command line (and only those)."""
    values = {k: v for k, v in vars(args).items() if k in TrainConfig.fields()}
    if "model_arg" in vars(args):
        values["model_args"] = parse_model_args(args.model_arg)
    if values.get("dropout_schedule") == "none":
        values["dropout_schedule"] = None
    if "jit_compile" in values:
        values["jit_compile"] = {"auto": "auto", "true": True, "false": False}[values["jit_compile"]]
    return values


def run_train(args) -> int:
    from pixelwise.training.loop import train  # TensorFlow: loaded only when training runs

    config = resolve_config(getattr(args, "config", None), overrides_from_args(args),
                            resume=args.resume)
    result = train(config, resume=args.resume)
    best = result.best or {}
    print(f"Run folder: {result.run.path} ({result.num_replicas} replica(s))")
    if best:
        print(f"Best epoch {best['epoch']}: val_mean_iou {best['val_mean_iou']:.4f}, "
              f"checkpoint {result.run.checkpoint_path('best')}")
    elif result.final:
        print(f"No validation: the model is the last epoch ({result.final['epoch']}), "
              f"checkpoint {result.run.checkpoint_path('last')}")
    if best or result.final:
        print(next_steps_report(result, config))
    return 0
