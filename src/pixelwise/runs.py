"""The run folder: what ``pixelwise train`` writes and evaluate/predict/export read.

Layout of ``runs/NAME/``::

    config.json          resolved training configuration (defaults + config file + flags)
    class_set.json       the class set trained on (ClassSet.to_metadata())
    checkpoints/best.keras   best epoch by val_mean_iou
    checkpoints/last.keras   last finished epoch
    backup/              BackupAndRestore state (resume after interruption)
    tensorboard/         TensorBoard logs (scalars, per-class IoU, image summaries)
    history.csv          CSVLogger output, one row per epoch
    curves.png           loss / accuracy / mean IoU, train and validation
    metrics.json         final and best metrics

Example:
    >>> run = RunFolder("runs/voc")            # doctest: +SKIP
    >>> model = run.load_model("best")          # doctest: +SKIP
    >>> run.class_set().class_names[:2]         # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_NAMES = ("best", "last")


class RunFolder:
    """Paths of one training run, and loaders for what it holds.

    Args:
        path: The run folder (``--out`` of ``pixelwise train``).
    """

    def __init__(self, path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    class_set_path = property(lambda self: self.path / "class_set.json")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    backup_dir = property(lambda self: self.path / "backup")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    history_path = property(lambda self: self.path / "history.csv")
    curves_path = property(lambda self: self.path / "curves.png")
    metrics_path = property(lambda self: self.path / "metrics.json")

    def checkpoint_path(self, checkpoint: str = "best") -> Path:
        """Path of ``best``/``last`` in this run, or of an explicit ``.keras`` file."""
        if checkpoint in CHECKPOINT_NAMES:
            return self.checkpoint_dir / f"{checkpoint}.keras"
        return Path(checkpoint)

    def _require_dir(self):
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"Expected a run folder written by 'pixelwise train', received {str(self.path)!r}, "
                "which does not exist; pass --run runs/NAME."
            )

    def config(self) -> dict:
        self._require_dir()
        return json.loads(self.config_path.read_text()) if self.config_path.exists() else {}

    def class_set(self):
        """The run's :class:`~pixelwise.class_sets.ClassSet`."""
        # Imported here: importing pixelwise.datasets registers the TFDS builders (and
        # TensorFlow), which `pixelwise --help` must not pay for.
        from pixelwise.class_sets import ClassSet

        self._require_dir()
        if not self.class_set_path.exists():
            raise FileNotFoundError(
                f"Run folder {str(self.path)!r} has no class_set.json; it was not written by "
                "'pixelwise train' (or the run never started)."
            )
        return ClassSet.from_json(self.class_set_path.read_text())

    def resolve_checkpoint(self, checkpoint: str = "best") -> Path:
        """The checkpoint file to load, with a clear error when there is none."""
        path = self.checkpoint_path(checkpoint)
        if checkpoint in CHECKPOINT_NAMES:
            self._require_dir()
            if not path.exists():
                have = sorted(p.name for p in self.checkpoint_dir.glob("*.keras")) if self.checkpoint_dir.exists() else []
                raise FileNotFoundError(
                    f"Run folder {str(self.path)!r} has no {checkpoint} checkpoint "
                    f"(expected {str(path)!r}; found {have or 'no checkpoints'}). "
                    "Train at least one epoch, or pass --checkpoint FILE.keras."
                )
        elif not path.exists():
            raise FileNotFoundError(f"Checkpoint file {str(path)!r} does not exist.")
        return path

    def load_model(self, checkpoint: str = "best"):
        """Load a checkpoint as a Keras model (``compile=False``)."""
        import keras

        import pixelwise.models  # noqa: F401  (registers custom layers for deserialisation)

        return keras.models.load_model(self.resolve_checkpoint(checkpoint), compile=False)
