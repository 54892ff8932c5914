"""``pixelwise report``: a thin layer over :func:`pixelwise.report.collect.build_report`.

Example (also in ``pixelwise report --help``)::

    pixelwise report --run runs/camvid --out runs/camvid/report.html
"""

from __future__ import annotations

from pixelwise.cli import HelpFormatter
from pixelwise.defaults import DEFAULT_REPORT_EXAMPLES, DEFAULT_SPLIT, PARITY_REPORT_NAME, REPORT_EXPORTS_DIR


def run_report(args) -> int:
    from pixelwise.report.collect import build_report

    path = build_report(args.run, args.out, split=args.split, data_dir=args.data_dir,
                        manual_dir=args.manual_dir, num_examples=args.num_examples,
                        exports=args.exports)
    print(f"wrote {path} (one file; open it in a browser)")
    return 0


def register(subparsers) -> None:
    """Add the ``report`` subcommand."""
    report = subparsers.add_parser(
        "report", formatter_class=HelpFormatter,
        help="one self-contained HTML page about a run: config, curves, metrics, worst and best "
        "images, exports",
        description="Writes one HTML file with everything inside it (pictures embedded, no "
        "script, nothing fetched): the run's config.json, its training curves, the metrics of "
        "eval-SPLIT.json with the bootstrap interval of mean IoU, per-class IoU as a bar chart, "
        "the confusion matrix, the worst and best images of the split (image | truth | "
        f"prediction, with their mean IoU) and the {PARITY_REPORT_NAME} reports of the run's "
        "exports.\n\n"
        "The metrics are the run's eval-SPLIT.json: if it does not exist, the report runs "
        "'pixelwise evaluate --run RUN --split SPLIT' first (default options) and writes it. "
        "To report on other options (--mode slide, --tta flip, --checkpoint last), run that "
        "evaluate first; the report predicts the images it shows with the options the file "
        "records.\n\n"
        "Example:\n"
        "  pixelwise report --run runs/camvid --out runs/camvid/report.html",
    )
    report.add_argument("--run", metavar="runs/NAME", required=True,
                        help="run folder written by 'pixelwise train'")
    report.add_argument("--out", metavar="FILE.html", required=True, help="the HTML file to write")
    report.add_argument("--split", metavar="SPLIT", help="split or slice (default: what 'pixelwise "
                        "evaluate --run' scores, the run's validation: its held-out groups or "
                        f"validation split, else {DEFAULT_SPLIT})")
    report.add_argument("--data-dir", metavar="DIR",
                        help="TFDS data directory of the built dataset (default: the run's)")
    report.add_argument("--manual-dir", metavar="DIR",
                        help="downloaded data to build the dataset from if it is not built "
                        "(default: the run's)")
    report.add_argument("-n", "--num-examples", metavar="N", type=int,
                        default=DEFAULT_REPORT_EXAMPLES,
                        help="show the N worst and the N best images by mean IoU")
    report.add_argument("--exports", metavar="PATH", action="append",
                        help=f"a {PARITY_REPORT_NAME} file, or a folder searched for them at any "
                        f"depth; repeat for more (default: RUN/{REPORT_EXPORTS_DIR})")
    report.set_defaults(func=run_report)
