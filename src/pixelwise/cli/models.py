"""``pixelwise models list | summary | plot``: inspect the registered models.

Examples::

    pixelwise models list
    pixelwise models summary unet --input-size 256 256 3 --num-classes 21
    pixelwise models summary original_unet --model-arg padding=same --input-size 512,512,1
    pixelwise models plot unet --out unet.png
"""

from __future__ import annotations

import inspect
import sys

from pixelwise.cli import HelpFormatter, parse_model_args


def parse_input_size(tokens) -> tuple | None:
    """``["256", "256", "3"]`` or ``["256,256,3"]`` (``None`` for a free side) to a tuple.

    >>> parse_input_size(["256,256,3"]), parse_input_size(["None", "None", "1"])
    ((256, 256, 3), (None, None, 1))
    """
    if not tokens:
        return None
    parts = [part for token in tokens for part in str(token).replace("x", ",").split(",") if part]
    values = []
    for part in parts:
        if part.lower() in ("none", "?"):
            values.append(None)
            continue
        try:
            values.append(int(part))
        except ValueError:
            values = None
            break
    if values is None or len(values) != 3:
        raise ValueError(
            f"Expected --input-size HEIGHT WIDTH CHANNELS (or H,W,C; None for a free side), "
            f"received {' '.join(map(str, tokens))!r}; e.g. --input-size 256 256 3."
        )
    return tuple(values)


def _build(args):
    from pixelwise.models import build

    return build(args.name, input_size=parse_input_size(args.input_size),
                 num_classes=args.num_classes, **parse_model_args(args.model_arg))


def run_list(args) -> int:
    """Print each registered model with its builder's options and their defaults."""
    from pixelwise.models import available, builder

    for name in available():
        function = builder(name)
        summary = (inspect.getdoc(function) or "").splitlines()[0]
        print(f"{name:<15} {summary}")
        defaults = ", ".join(
            f"{p.name}={p.default!r}" for p in inspect.signature(function).parameters.values()
        )
        print(f"{'':<15} options: {defaults}")
    return 0


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
    parser.add_argument("--input-size", nargs="+", metavar="SIZE", default=None,
                        help="HEIGHT WIDTH CHANNELS or H,W,C (None for a free side); None: the "
                             "builder's input_size (see 'pixelwise models list')")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="output channels; None: the builder's num_classes "
                             "(see 'pixelwise models list')")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", default=None,
                        help="builder option, repeatable: base_filters=16, batch_norm=true, "
                             "dropout_rate=0.5, padding=same (original_unet); None: the "
                             "builder's defaults (see 'pixelwise models list')")


def register(subparsers) -> None:
    """Add ``pixelwise models`` and its subcommands."""
    parser = subparsers.add_parser(
        "models", help="list, summarise and plot the segmentation models",
        description=__doc__, formatter_class=HelpFormatter)
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
    plot.add_argument("--out", required=True, help="output image (.png, .svg, .pdf, .dot)")
    plot.add_argument("--expand-nested", action="store_true",
                      help="draw the layers inside the downsample/upsample blocks")
    plot.add_argument("--no-shapes", action="store_true", help="omit tensor shapes")
    plot.add_argument("--dpi", type=int, default=None,
                      help="resolution of raster output; None: plot_model_graph's default")
    plot.set_defaults(func=run_plot)
