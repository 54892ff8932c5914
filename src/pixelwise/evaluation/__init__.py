"""Measuring a model on data it never saw: the confusion matrix of a split, the metrics derived
from it, boundary IoU and bootstrap intervals.

Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "evaluate": "evaluator", "evaluate_run": "evaluator",
    "EvaluationResult": "result",
    "bootstrap_mean_iou": "bootstrap",
})
