"""Shipping a model: the serving graph as SavedModel, TFLite or ONNX, and the parity check that
each artefact predicts what the Keras model predicts.

Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "export_model": "serving",
    "measure_parity": "parity",
})
