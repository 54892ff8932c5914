"""``pixelwise datasets``: list, build, describe and browse pixelwise's TFDS datasets.

Each subcommand is one ``_add_<name>(subparsers)`` function listed in
``SUBCOMMANDS``; to add one, write such a function and append it there.
Handlers only parse arguments and call :mod:`pixelwise.datasets.api` (imported
inside them: it loads TensorFlow); ``list`` prints :data:`pixelwise.defaults.DATASET_NAMES`
and starts without TensorFlow. Defaults come from the API: folders default to
None as in :func:`pixelwise.datasets.api.build`, the others are read from
:mod:`pixelwise.defaults`, which ``browse`` uses too.
"""

from __future__ import annotations

import argparse
import logging

from pixelwise.class_sets import class_set_from_info
from pixelwise.cli import HelpFormatter, without_tensorflow
from pixelwise.cli.options import add_beam_options
from pixelwise.data.paths import DEFAULT_VALIDATION_FRACTION
from pixelwise.defaults import (
    ADAPTED_DATASET_NAMES, BROWSE_ALPHA, BROWSE_NUM_EXAMPLES, BROWSE_SPLIT, DATASET_NAMES,
    tfds_data_dir,
)

_NAME_HELP = ("dataset name: " + ", ".join(DATASET_NAMES) + "; TFDS' "
              + ", ".join(ADAPTED_DATASET_NAMES) + "; or the PATH of a folder or .zip export "
              "(CVAT 'Segmentation mask 1.1', or "
              "images/ + masks/; see docs/own-data.md)")


def _data_dir_help(what: str) -> str:
    return f"{what} (default: TFDS' data directory, {tfds_data_dir()})"


# -- list -------------------------------------------------------------------------------

@without_tensorflow
def run_list(args: argparse.Namespace) -> int:
    for name in DATASET_NAMES:
        print(name)
    return 0


def _add_list(subparsers) -> None:
    parser = subparsers.add_parser(
        "list", help="list the datasets pixelwise provides", formatter_class=HelpFormatter,
        description="List the TFDS builders pixelwise registers (usable with tfds.load after "
        "'import pixelwise.datasets').",
    )
    parser.set_defaults(func=run_list)


# -- build ------------------------------------------------------------------------------

def format_build_summary(summary: dict) -> str:
    """The text ``pixelwise datasets build`` prints after a build."""
    lines = [f"{summary['name']} {summary['version']} written to {summary['data_dir']}"]
    if "source" in summary:
        lines.append(format_source(summary["source"]))
    for split, count in summary["splits"].items():
        skipped = len(summary["skipped"].get(split, []))
        lines.append(f"  {split}: {count} examples" + (f" ({skipped} skipped)" if skipped else ""))
    entries = [(split, e) for split, es in summary["skipped"].items() for e in es]
    if entries:
        lines.append(f"Skipped {len(entries)} example(s):")
        lines.extend(f"  {split}/{e['id']}: {e['reason']}" for split, e in entries)
    else:
        lines.append("No examples were skipped.")
    return "\n".join(lines)


def run_build(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    from pixelwise.datasets import api

    try:
        builder = api.build(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir,
                            download_dir=args.download_dir, dataset_name=args.dataset_name,
                            validation_fraction=args.validation_fraction, groups=args.groups,
                            beam=args.beam, beam_options=args.beam_options)
    except (ConnectionError, NonMatchingChecksumError) as exc:
        # The CLI reports user-fixable errors as one line (see pixelwise.cli.main).
        raise ValueError(" ".join(str(exc).split())) from exc
    print(format_build_summary(api.describe(builder)))
    return 0


def _add_build(subparsers) -> None:
    parser = subparsers.add_parser(
        "build", help="download (or read offline) and prepare a dataset",
        formatter_class=HelpFormatter,
        description="Prepare a dataset with TFDS (progress bars per split), then print the "
        "examples per split, every skipped example with its reason, and where it was written.\n"
        "Offline: --manual-dir DIR with the original archives (e.g. VOCtrainval_06-Nov-2007.tar "
        "and VOCtest_06-Nov-2007.tar, or their extracted VOCdevkit/).\n"
        "Your own data: PATH of a folder or .zip export; the dataset is named after it (or "
        "--name) and rebuilt whenever its files change.",
    )
    parser.add_argument("name", metavar="NAME|PATH", help=_NAME_HELP)
    parser.add_argument("--name", dest="dataset_name", default=None, metavar="NAME",
                        help="an export's dataset name (default: its folder's or zip's name, "
                        "snake case)").python_name = "name"  # the positional holds dest "name"
    parser.add_argument("--validation-fraction", type=float, default=None, metavar="F",
                        help="share of an export's examples that becomes the validation split "
                        "when it has none, chosen by a fixed seed (default: as last built, else "
                        f"{DEFAULT_VALIDATION_FRACTION})")
    parser.add_argument("--groups", default=None, metavar="RULE",
                        help="keep groups (frames of one video, slices of one volume) whole in "
                        "that validation share: a regular expression whose first group names "
                        "an example's group, e.g. '^(.+?)_frame', or a CSV file with columns "
                        "filename,group; 'none' for no groups (default: as last built, else "
                        "none)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=_data_dir_help("where the prepared dataset goes"))
    parser.add_argument("--manual-dir", default=None, metavar="DIR",
                        help="folder with the source archives for offline builds (default: "
                        "DATA_DIR/downloads/manual if it holds them, else download)")
    parser.add_argument("--download-dir", default=None, metavar="DIR",
                        help="where downloads and extracted archives go (default: "
                        "DATA_DIR/downloads)")
    add_beam_options(parser, "build on Apache Beam through TFDS (DirectRunner, one worker "
                     "process per core): the same examples and skip report as a plain build")
    parser.set_defaults(func=run_build)


# -- info -------------------------------------------------------------------------------

def _fraction(rule: dict) -> str:
    text = f"validation fraction {rule['validation_fraction']} (seed {rule['seed']})"
    return text + (f", whole groups by {rule['groups']}" if rule.get("groups") else "")


def format_source(source: dict) -> str:
    """One line on where an export's dataset comes from and how its splits were made."""
    rule = source.get("split_rule", {})
    how = rule.get("rule", "?")
    if how == "validation fraction":
        how = _fraction(rule)
    elif how == "subsets":
        how = "subsets " + ", ".join(f"{k} -> {v}" for k, v in rule.get("subsets", {}).items())
    elif how == "split folders":
        folders = rule.get("folders", {})
        how = "split folders " + ", ".join(f"{k}/ -> {v}" for k, v in folders.items())
        if "validation_from_train" in rule:
            how += f"; validation from train: {_fraction(rule['validation_from_train'])}"
    if source.get("groups") and "whole groups" not in how:
        how += f"; groups by {source['groups']}"
    return (f"From {source['path']} ({source['layout'].replace('_', ' + ')}, classes from "
            f"{source['class_file']}); splits: {how}")


def format_info(builder) -> str:
    """The text ``pixelwise datasets info`` prints."""
    from pixelwise.datasets.split_plan import skipped_examples

    info = builder.info
    lines = [f"{builder.name} {builder.version}", f"Features: {info.features}"]
    source = getattr(builder, "source", None)
    stale = builder.stale_reason() if hasattr(builder, "stale_reason") else None
    if source is not None:
        lines.append(format_source(source.metadata()))
    if stale:
        lines.append(f"Prepared in {builder.data_dir}, but the export changed since ({stale}); "
                     "the next use rebuilds it.")
    elif builder.is_prepared():
        lines.append(f"Prepared in {builder.data_dir}")
        skipped = skipped_examples(info)
        for split, split_info in info.splits.items():
            lines.append(f"  {split}: {split_info.num_examples} examples "
                         f"({len(skipped.get(split, []))} skipped at build time)")
    else:
        target = source.path if source is not None else builder.name
        lines.append(f"Not prepared in {builder.data_dir}; run `pixelwise datasets build {target}`.")
    class_set = class_set_from_info(info)
    lines.append(f"Classes ({class_set.num_classes}, ignore label {class_set.ignore_label} "
                 f"drawn as {class_set.void_color}):")
    lines.extend(f"  {i:3d} {name:<16} {tuple(rgb)}"
                 for i, (name, rgb) in enumerate(zip(class_set.class_names, class_set.palette)))
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    from pixelwise.datasets import api

    print(format_info(api.get_builder(args.name, data_dir=args.data_dir)))
    return 0


def _add_info(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="features, splits with counts, class names with colours",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("name", metavar="NAME|PATH", help=_NAME_HELP)
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=_data_dir_help("where the prepared dataset is"))
    parser.set_defaults(func=run_info)


# -- browse -----------------------------------------------------------------------------

def run_browse(args: argparse.Namespace) -> int:
    from pixelwise.datasets.browse import browse

    paths = browse(args.name, args.split, args.out, num_examples=args.num_examples,
                   data_dir=args.data_dir, manual_dir=args.manual_dir, alpha=args.alpha)
    print(f"Wrote {len(paths)} picture(s) (image | label | overlay) to {args.out}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


def _add_browse(subparsers) -> None:
    parser = subparsers.add_parser(
        "browse", help="write image | colour label | overlay PNGs to look at a split",
        formatter_class=HelpFormatter,
        description="Write one PNG per example (the first N of the split): the image, its label "
        "in the class colours, and the label over the image, with a legend of the classes "
        "present and their pixel share. An export (PATH) is built first if needed.",
    )
    parser.add_argument("name", metavar="NAME|PATH", help=_NAME_HELP)
    parser.add_argument("--split", default=None, metavar="SPLIT",
                        help=f"split to look at (default: {BROWSE_SPLIT}, or the dataset's "
                        "'default' or only split when it has no train, as a CVAT export with "
                        "one subset)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the PNGs (created if needed)").python_name = "out_dir"
    parser.add_argument("-n", "--num-examples", type=int, default=BROWSE_NUM_EXAMPLES, metavar="N",
                        help="how many examples")
    parser.add_argument("--alpha", type=float, default=BROWSE_ALPHA,
                        help="opacity of the colour label in the overlay")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=_data_dir_help("where the prepared dataset is"))
    parser.add_argument("--manual-dir", default=None, metavar="DIR",
                        help="build the dataset from this folder first if it is not built "
                        "(default: none; the dataset must be built)")
    parser.set_defaults(func=run_browse)


#: Subcommands of `pixelwise datasets`, in --help order.
SUBCOMMANDS = [_add_list, _add_build, _add_info, _add_browse]


def register(subparsers) -> None:
    """Add ``pixelwise datasets ...`` to the top-level parser's subparsers."""
    parser = subparsers.add_parser(
        "datasets", help="list, build and describe datasets", formatter_class=HelpFormatter,
        description="Datasets pixelwise provides as TensorFlow Datasets builders.",
    )
    commands = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(commands)
    parser.set_defaults(func=without_tensorflow(lambda args: parser.print_help() or 2))
