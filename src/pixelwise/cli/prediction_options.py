"""``--mode`` and ``--tta``: how ``evaluate`` and ``predict`` predict an image, spelled once.

Both commands end in :func:`pixelwise.prediction.predict_probabilities`; these options are
its ``mode`` and ``tta``. The TTA spec is read by the API (:class:`pixelwise.tta.TTA`),
which refuses a bad one before a model or dataset is loaded.

Examples::

    pixelwise evaluate --run runs/camvid --mode slide --tta flip
    pixelwise predict street.png --run runs/camvid --out p/ --tta flip,scales=0.75,1,1.25
"""

from __future__ import annotations

from pixelwise.defaults import DEFAULT_TTA, PREDICTION_MODES


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
