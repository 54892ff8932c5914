"""Defaults of pixelwise's public functions, in one module that imports no TensorFlow.

Training defaults are the fields of :class:`pixelwise.training.config.TrainConfig`; the others are here.

:mod:`pixelwise.datasets` imports TFDS (it registers the builders), so the defaults that
``pixelwise datasets --help`` shows live here: :func:`pixelwise.datasets.browse.browse`
takes its defaults from these constants, and :mod:`pixelwise.cli.datasets` reads them
from here too, so the two cannot drift apart. Folders default to None everywhere
(``data_dir=None`` is TFDS' own data directory, :func:`tfds_data_dir`).

Example:
    >>> BROWSE_NUM_EXAMPLES, BROWSE_ALPHA
    (8, 0.5)
"""

from __future__ import annotations

import os

#: The split ``pixelwise datasets browse`` shows when none is given (a dataset without it:
#: its ``default`` or only split).
BROWSE_SPLIT = "train"
#: Examples :func:`pixelwise.datasets.browse.browse` writes by default.
BROWSE_NUM_EXAMPLES = 8
#: Opacity of the colour label in the overlay panel of a browse picture.
BROWSE_ALPHA = 0.5


def tfds_data_dir() -> str:
    """TFDS' default data directory: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets`` (expanded).

    The same rule as ``tfds.core.constants.get_default_data_dir()``, without importing TFDS;
    it is where ``data_dir=None`` puts and finds prepared datasets.
    """
    return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


#: Names of the TFDS builders pixelwise registers (``import pixelwise.datasets``), as data so
#: ``pixelwise datasets list`` needs no TensorFlow; a test checks it against the registry.
DATASET_NAMES = (
    "camvid", "isbi2012_membranes", "synthetic_shapes", "voc2007_semantic", "voc2012_semantic",
)
#: TFDS' own datasets pixelwise reads through adapters (:mod:`pixelwise.datasets.tfds_adapters`);
#: a test checks it against the adapters.
ADAPTED_DATASET_NAMES = ("cityscapes", "oxford_iiit_pet")


# Using a trained model (evaluate, predict, export).
#: The checkpoint of a run folder that is loaded unless another is named.
DEFAULT_CHECKPOINT = "best"
#: The split evaluated when neither the caller nor the run names one.
DEFAULT_SPLIT = "validation"
#: Side an image is resized to for a whole-image prediction (the chapter predicts at 512x512).
DEFAULT_PREDICT_SIZE = 512
#: Connected regions smaller than this many pixels get no box.
DEFAULT_MIN_AREA = 100
#: Tiles per forward pass in tiled prediction.
DEFAULT_TILE_BATCH = 4
#: Export formats, the first being the default. ``tflite`` is float32; ``onnx`` needs the
#: optional ``export`` extra (``pip install -e ".[export]"``).
EXPORT_FORMATS = ("savedmodel", "tflite", "tflite-fp16", "tflite-int8", "onnx")
#: Export size when neither the model nor the run fixes one.
DEFAULT_EXPORT_SIZE = 512
#: Training images a ``tflite-int8`` export is calibrated on (post-training quantization).
DEFAULT_CALIBRATION_IMAGES = 100
#: Validation images an export's parity check compares the artefact and the Keras model on.
DEFAULT_PARITY_IMAGES = 50
#: Pixel agreement with the Keras model below which an export fails, per format.
DEFAULT_MIN_AGREEMENT = {"savedmodel": 0.98, "tflite": 0.98, "tflite-fp16": 0.98,
                         "tflite-int8": 0.95, "onnx": 0.98}

# Evaluation and prediction modes, test-time augmentation, extra metrics.
#: How an image is predicted: ``whole`` (resized to one size, one pass) or ``slide`` (native
#: resolution in overlapping tiles, :mod:`pixelwise.inference.tiling`); the first is the default.
PREDICTION_MODES = ("whole", "slide")
#: Test-time augmentation spec: ``none``, ``flip``, ``scales=0.75,1,1.25`` or both, comma-joined.
DEFAULT_TTA = "none"
#: Boundary IoU band width as a fraction of the image diagonal (Cheng et al. 2021).
DEFAULT_BOUNDARY_RATIO = 0.02
#: Bootstrap resamples for the interval of mean IoU (0: no interval).
DEFAULT_BOOTSTRAP_RESAMPLES = 1000
#: Seed of the bootstrap resampling, so the interval is reproducible.
DEFAULT_BOOTSTRAP_SEED = 0
#: Coverage of the bootstrap interval (percentiles 2.5 and 97.5).
DEFAULT_CONFIDENCE = 0.95

# The HTML report (pixelwise report).
#: Images the report shows among the worst, and as many among the best, by per-image mean IoU.
DEFAULT_REPORT_EXAMPLES = 4
#: Folder of a run searched for export parity reports when no other is named.
REPORT_EXPORTS_DIR = "exports"
#: File name of the parity report an export writes next to its artefact.
PARITY_REPORT_NAME = "parity.json"


#: Loss kinds of :func:`pixelwise.losses.segmentation_loss` (``--loss``; here so that the TF-free
#: config checks them without importing Keras).
LOSS_KINDS = ("ce", "ce+dice", "ce+l2")
