"""pixelwise: semantic segmentation on TensorFlow 2 / Keras 3 / TensorFlow Datasets.

The public API, each imported on first use (so ``import pixelwise`` does not import
TensorFlow):

- ``train(config)``: train a model into a run folder (:mod:`pixelwise.training`);
- ``evaluate(run, examples)``: the metrics of a model on a split (:mod:`pixelwise.evaluation`);
- ``predict(run, image)``: a :class:`~pixelwise.inference.Prediction` of one image
  (:mod:`pixelwise.inference`), ``colorize(labels, palette)`` its colour mask;
- ``export_model(run, out)``: SavedModel, TFLite or ONNX (:mod:`pixelwise.export`);
- ``load_run(run)``: a run folder's model, class set and configuration (:mod:`pixelwise.runs`);
- ``models`` and ``datasets``: the model registry and the TFDS builders (subpackages).

Example:
    >>> import pixelwise
    >>> pixelwise.models.available()[:2]
    ['deeplabv3plus', 'encoder_unet']
"""

__version__ = "0.1.0"

# Before anything imports TensorFlow: oneDNN's kernels on every x86 CPU (see pixelwise.onednn).
from pixelwise.onednn import enable_onednn as _enable_onednn  # noqa: E402

_enable_onednn()

# Public name -> (module, attribute in it; None: the module itself). Functions are read
# from their package's own lazy exports, so a move inside a package changes nothing here.
_PUBLIC = {
    "train": ("pixelwise.training", "train"),
    "evaluate": ("pixelwise.evaluation", "evaluate"),
    "predict": ("pixelwise.inference", "predict"),
    "colorize": ("pixelwise.inference", "colorize"),
    "export_model": ("pixelwise.export", "export_model"),
    "load_run": ("pixelwise.runs", "load_run"),
    "models": ("pixelwise.models", None),
    "datasets": ("pixelwise.datasets", None),
}


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pixelwise' has no attribute {name!r}; its public names "
                             f"are {sorted(_PUBLIC)}.")
    import importlib

    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted([*_PUBLIC, "__version__"])


# === Keras registration ===
# A `.keras` file names pixelwise's classes ("pixelwise>UNet"); Keras finds them only once
# the modules defining them are imported. `import pixelwise` must be enough to load any
# file pixelwise wrote (as `import keras_hub` is for keras-hub), yet must not import
# TensorFlow by itself (`pixelwise --help` stays fast). So the modules are imported now if
# Keras already is, and otherwise right after the first `import keras` (TensorFlow's own
# import of Keras included).
_KERAS_MODULES = ("pixelwise.models", "pixelwise.losses", "pixelwise.metrics",
                  "pixelwise.training.optimizers")


def _register_keras_objects() -> None:
    """Register pixelwise's Keras classes (models, layers, losses, metrics) with Keras."""
    import importlib

    for name in _KERAS_MODULES:
        importlib.import_module(name)


class _RegisterAfterKeras:
    """A ``sys.meta_path`` finder: finds Keras as the path finder would, and registers
    pixelwise's classes once Keras has loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        import importlib.machinery

        # TensorFlow also *looks* for Keras (find_spec without importing): only the
        # import that executes the module removes this hook.
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_keras = spec.loader.exec_module

        def exec_module(module):
            exec_keras(module)
            _remove_hook()
            _register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


def _remove_hook() -> None:
    import sys

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterKeras)]


def _install_hook() -> None:
    import sys

    if "keras" in sys.modules:
        _register_keras_objects()
    elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKeras())


_install_hook()
del _install_hook
