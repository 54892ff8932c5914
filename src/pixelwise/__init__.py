"""pixelwise: semantic segmentation on TensorFlow 2 / Keras 3 / TensorFlow Datasets."""

__version__ = "0.1.0"

# Public API loaded on first use, so `import pixelwise` does not import TensorFlow.
_LAZY = {
    "predict": "pixelwise.inference",
    "colorize": "pixelwise.inference",
    "Prediction": "pixelwise.inference",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelwise' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
