"""Options several commands share, with one name and one syntax each.

Sizes and old spellings (below); ``--tile N|HxW`` of evaluate and predict (:func:`parse_tile`);
``--run``/``--checkpoint``/``--class-set`` of evaluate, predict and export
(:func:`add_model_options`, :func:`model_source`); ``--mode``/``--tta`` of evaluate and predict
(:func:`add_mode_and_tta`).

Two ideas of a size, never spelled any other way (docs/architecture.md, "One meaning per name"):

``--image-size N|HxW``
    The size images *and labels* are resized to, as the training pipeline does (``train``;
    ``evaluate`` at a fixed size). ``N`` is ``NxN``.
``--input-size N|HxW``
    The spatial size the model sees; its output is resized back to each image's own size
    (``evaluate`` at native resolution, ``predict``, ``export``). ``models summary|plot``
    also take ``HxWxC``, the model's whole ``input_size=(H, W, C)``.

Sides are separated by ``x`` (a comma also works). Parsing imports no TensorFlow.
Spellings of pixelwise 0.1.0 (``predict --size``, ``export --size``) still parse, hidden
from ``--help``, through :func:`add_hidden_alias`; they go away in the next release.

Example:
    >>> parse_image_size("256"), parse_image_size("360x480")
    ((256, 256), (360, 480))
    >>> parse_model_input_size("None,None,3"), parse_model_input_size("64")
    ((None, None, 3), (64, 64))
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pixelwise.sizes import normalize_image_size
from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_TTA, PREDICTION_MODES
from pixelwise.runs.folder import CHECKPOINT_NAMES, RunFolder
from pixelwise.runs.loading import resolve_model_class_set

#: Metavar of ``--image-size`` and ``--input-size`` wherever they appear.
SIZE_METAVAR = "N|HxW"
#: Metavar of ``--tile`` (evaluate and predict).
TILE_METAVAR = "N|HxW"
#: Metavar of ``models summary|plot --input-size`` (a model's whole input size).
MODEL_INPUT_METAVAR = "N|HxW|HxWxC"


def parse_image_size(text: str) -> tuple[int, int]:
    """``"256"`` -> ``(256, 256)``, ``"360x480"`` -> ``(360, 480)``; an argparse ``type``.

    Raises:
        argparse.ArgumentTypeError: not a positive ``N`` or ``HxW`` (argparse shows the message).
    """
    try:
        return normalize_image_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N or HxW (positive integers, e.g. 256 or 360x480), received {text!r}"
        ) from None


def parse_input_size_or_native(text: str) -> tuple[int, int] | str:
    """Like :func:`parse_image_size`, and ``"native"`` -> ``"native"`` (each image's own size:
    :data:`pixelwise.inference.options.NATIVE`, a ``model_size``)."""
    if text.strip().lower() == "native":
        return "native"
    try:
        return normalize_image_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N, HxW or native (e.g. 512, 360x480), received {text!r}"
        ) from None


def parse_tile(text: str) -> int | tuple[int, int]:
    """``--tile``: ``"256"`` -> ``256`` (256x256), ``"192x256"`` -> ``(192, 256)``; an argparse ``type``.

    A square stays one number, as ``eval-SPLIT.json`` records it.

    Example:
        >>> parse_tile("256"), parse_tile("192x256"), parse_tile("64x64")
        (256, (192, 256), 64)

    Raises:
        argparse.ArgumentTypeError: not a positive ``N`` or ``HxW`` (argparse shows the message).
    """
    try:
        height, width = normalize_image_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a tile N or HxW (positive integers, e.g. 256 or 192x256), received {text!r}"
        ) from None
    return height if height == width else (height, width)


def parse_model_input_size(text: str) -> tuple:
    """A model's input size: ``N``, ``HxW`` or ``HxWxC``; ``None`` (or ``?``) for a free side.

    Returns 2 values (the caller adds the model's channel count) or 3.

    Example:
        >>> parse_model_input_size("572x572x1"), parse_model_input_size("128x96")
        ((572, 572, 1), (128, 96))

    Raises:
        ValueError: anything else, saying what is expected.
    """
    parts = [p for p in re.split(r"[x×,\s]+", str(text).strip().lower()) if p]
    values = []
    for part in parts:
        if part in ("none", "?"):
            values.append(None)
        elif part.isdigit() and int(part) > 0:
            values.append(int(part))
        else:
            values = []
            break
    if len(values) == 1 and values[0] is not None:
        values = values * 2
    if len(values) not in (2, 3) or (len(values) == 3 and values[2] is None):
        raise ValueError(
            f"Expected --input-size N, HxW or HxWxC (HEIGHTxWIDTHxCHANNELS; None for a free "
            f"side), received {text!r}; e.g. --input-size 256, 256x320 or 572x572x1."
        )
    return tuple(values)


class JoinedSizeTokens(argparse.Action):
    """``--input-size 256x256x3``, and 0.1.0's ``--input-size 256 256 3``, stored as one string.

    ``nargs="+"`` keeps the old, space-separated spelling working;
    :class:`~pixelwise.cli.HelpFormatter` shows the option with its one documented syntax
    (``show_single_metavar``).
    """

    show_single_metavar = True

    def __init__(self, option_strings, dest, nargs="+", **kwargs):
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, "x".join(str(v) for v in values))


def add_hidden_alias(group, old: str, action: argparse.Action) -> argparse.Action:
    """Accept ``old`` (a 0.1.0 spelling) for ``action``'s option, hidden from ``--help``.

    The alias stores into the same ``dest`` with the same ``type``; it has no default of its
    own, so the documented option's default applies when neither is given.
    """
    return group.add_argument(old, dest=action.dest, type=action.type, metavar=action.metavar,
                              default=argparse.SUPPRESS, help=argparse.SUPPRESS)


__all__ = [
    "SIZE_METAVAR", "TILE_METAVAR", "MODEL_INPUT_METAVAR", "parse_image_size",
    "parse_input_size_or_native", "parse_tile", "parse_model_input_size", "JoinedSizeTokens",
    "add_hidden_alias",
]


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


def add_mode_and_tta(group) -> None:
    """Add ``--mode whole|slide`` and ``--tta SPEC`` to an argparse parser or group."""
    group.add_argument(
        "--mode", choices=PREDICTION_MODES, default=None,
        help="whole: one pass over the image resized to --input-size; slide: overlapping --tile "
        "tiles at the image's own resolution (default: whole, or slide when --tile is given)")
    group.add_argument(
        "--tta", default=DEFAULT_TTA, metavar="SPEC",
        help="test-time augmentation: none, flip, scales=S,S,... or both, e.g. "
        "flip,scales=0.75,1,1.25; the softmax of every view is resized back to the image's "
        "size and averaged before the argmax (each view costs one more pass)")


def add_beam_options(parser, what: str) -> None:
    """``--beam`` (``what`` it does on Beam) and ``--beam-options``, as the commands share them."""
    parser.add_argument("--beam", action="store_true",
                        help=f"{what}; needs pip install \"pixelwise[beam]\" (see docs/scale.md)")
    parser.add_argument("--beam-options", default=None, metavar="OPTIONS",
                        help="Beam pipeline options passed to the runner, as one string after "
                        "'=', e.g. --beam-options=\"--direct_num_workers=2\" or "
                        "--beam-options=\"--runner=DataflowRunner --project=P --region=R "
                        "--temp_location=gs://B/tmp\"; implies --beam (default: DirectRunner, "
                        "multi-processing, one worker per core)")
