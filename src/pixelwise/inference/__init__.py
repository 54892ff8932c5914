"""Predicting with a trained model: on arrays (whole, tiled or with TTA), on image files, and
drawing the results (colour masks, overlays, boxes).

Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "predict": "files", "predict_files": "files",
    "read_image": "images",
    "Prediction": "prediction", "predict_array": "prediction",
    "predict_probabilities": "prediction",
    "PredictOptions": "options",
    "TTA": "tta",
    "colorize": "drawing", "overlay": "drawing",
})
