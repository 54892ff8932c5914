"""The ``--run``/``--checkpoint``/``--class-set`` options of evaluate, predict and export.

Parsing only: the model is loaded by :func:`pixelwise.runs.load_run` inside the API
functions these commands call.
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.runs import CHECKPOINT_NAMES, RunFolder, resolve_model_class_set
from pixelwise.defaults import DEFAULT_CHECKPOINT


def add_model_options(parser) -> None:
    """Add the ``model`` argument group: ``--run``, ``--checkpoint``, ``--class-set``."""
    source = parser.add_argument_group("model")
    source.add_argument("--run", metavar="runs/NAME",
                        help="run folder written by 'pixelwise train' (class set, checkpoints, "
                        "config); without it, pass --checkpoint FILE.keras")
    source.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, metavar="best|last|FILE.keras",
                        help="checkpoint of the run, or any .keras file")
    source.add_argument("--class-set", metavar="NAME|FILE.json|PATH",
                        help="class set for a .keras file outside a run folder: voc, camvid, "
                        "isbi2012, oxford_iiit_pet, cityscapes, a class_set.json, or the folder "
                        "or .zip export it was trained on (default: the run's)")


def model_source(args, needs: str = "--class-set"):
    """``(run_or_model, class_set, checkpoint)`` for :func:`pixelwise.runs.load_run`.

    Args:
        args: Parsed arguments with ``run``, ``checkpoint`` and ``class_set``.
        needs: What a ``.keras`` file needs besides itself, for the error without ``--run``.

    Raises:
        ValueError: Neither ``--run`` nor ``--checkpoint FILE.keras``.
        FileNotFoundError, ValueError: An unknown ``--class-set``.
    """
    class_set = resolve_model_class_set(args.class_set)
    if args.run:
        return RunFolder(args.run), class_set, args.checkpoint
    if args.checkpoint in CHECKPOINT_NAMES:
        raise ValueError(
            f"Expected --run runs/NAME, or --checkpoint FILE.keras with {needs}; received "
            f"--checkpoint {args.checkpoint} and no --run."
        )
    return Path(args.checkpoint), class_set, args.checkpoint
