"""pixelwise: semantic segmentation on TensorFlow 2 / Keras 3 / TensorFlow Datasets."""

__version__ = "0.1.0"

import importlib.abc
import importlib.machinery
import sys

# Public API loaded on first use, so `import pixelwise` does not import TensorFlow.
_LAZY = {
    "predict": "pixelwise.inference.files",
    "colorize": "pixelwise.inference.drawing",
    "Prediction": "pixelwise.inference.prediction",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelwise' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


# === Keras registration ===
# A `.keras` file names pixelwise's classes ("pixelwise>UNet"); Keras finds them only once
# the modules defining them are imported. `import pixelwise` must be enough to load any
# file pixelwise wrote (as `import keras_hub` is for keras-hub), yet must not import
# TensorFlow by itself (`pixelwise --help` stays fast). So the modules are imported now if
# Keras already is, and otherwise right after the first `import keras` (TensorFlow's own
# import of Keras included).
_KERAS_MODULES = ("pixelwise.models", "pixelwise.losses", "pixelwise.metrics",
                  "pixelwise.training.optimizers")


def register_keras_objects() -> None:
    """Register pixelwise's Keras classes (models, layers, losses, metrics) with Keras.

    Called for you by ``import pixelwise``; safe to call again.
    """
    for name in _KERAS_MODULES:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds Keras as the path finder would, and registers pixelwise once Keras has loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # TensorFlow also *looks* for Keras (find_spec without importing): only the
        # import that executes the module removes this hook.
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_keras = spec.loader.exec_module

        def exec_module(module):
            exec_keras(module)
            _remove_hook()
            register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterKeras)]


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
