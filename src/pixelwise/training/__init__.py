"""Training a model: the configuration, the compile/fit loop, callbacks, history and curves,
optimizers, and where it runs (tf.distribute, mixed precision).

``config`` and ``history`` import no TensorFlow (the CLI reads them); ``optimizers`` imports
Keras only. Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "train": "loop", "TrainResult": "loop",
    "TrainConfig": "config", "resolve_config": "config_files", "load_config_file": "config_files",
    "read_history": "history",
    "make_optimizer": "optimizers",
})
