"""The run folder: what ``pixelwise train`` writes and evaluate/predict/export read.

Layout of ``runs/NAME/``::

    config.json          resolved training configuration (defaults + config file + flags)
    class_set.json       the class set trained on (ClassSet.to_metadata())
    checkpoints/best.keras   best epoch by val_mean_iou (absent without validation:
                             ``best`` then means ``last``)
    checkpoints/last.keras   last finished epoch
    backup/              BackupAndRestore state (resume after interruption)
    tensorboard/         TensorBoard logs (scalars, per-class IoU, image summaries)
    history.csv          CSVLogger output, one row per epoch
    curves.png           loss / accuracy / mean IoU, train and validation
    metrics.json         final and best metrics
    train.lock           present while a training writes the folder: its pid and host

:class:`RunFolder` names these paths and reads what is in them. This module imports
TensorFlow/Keras only inside :meth:`RunFolder.load_model`, so the CLI can read the defaults
below without it.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pixelwise.locks import FileLock, LockedError

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
    lock_path = property(lambda self: self.path / "train.lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run folder for one training (made if missing, removed again if left empty).

        Raises:
            LockedError: another training holds it; the message names its pid and host.
        """
        lock = FileLock(self.lock_path, f"pixelwise train into {self.path}")
        try:
            lock.acquire()
        except LockedError as exc:
            raise LockedError(
                f"Run folder {str(self.path)!r} is in use by {exc.holder or 'another process'}; "
                "wait for that training to end, or pass out='runs/NEW_NAME'.", exc.holder
            ) from None
        try:
            yield
        finally:
            lock.release()

    def checkpoint_path(self, checkpoint: str = "best") -> Path:
        """Path of ``best``/``last`` in this run, or of an explicit ``.keras`` file."""
        if checkpoint in CHECKPOINT_NAMES:
            return self.checkpoint_dir / f"{checkpoint}.keras"
        return Path(checkpoint)

    def _require_dir(self):
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"Expected a run folder written by 'pixelwise train', received {str(self.path)!r}, "
                "which does not exist; pass run= an existing run folder (e.g. 'runs/NAME')."
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

    def trained_without_validation(self) -> bool:
        """Whether the run's config says it had no validation (``validation_split: none``)."""
        try:
            config = self.config()
        except (OSError, ValueError):
            return False
        return config.get("validation_split") == "none" and not config.get("validation_groups")

    def resolve_checkpoint(self, checkpoint: str = "best") -> Path:
        """The checkpoint file to load, with a clear error when there is none.

        ``best`` of a run trained without validation is its ``last`` checkpoint: there
        was nothing to select on.
        """
        if checkpoint == "best" and self.trained_without_validation():
            checkpoint = "last"
        path = self.checkpoint_path(checkpoint)
        if checkpoint in CHECKPOINT_NAMES:
            self._require_dir()
            if not path.exists():
                have = sorted(p.name for p in self.checkpoint_dir.glob("*.keras")) if self.checkpoint_dir.exists() else []
                raise FileNotFoundError(
                    f"Run folder {str(self.path)!r} has no {checkpoint} checkpoint "
                    f"(expected {str(path)!r}; found {have or 'no checkpoints'}). "
                    "Train at least one epoch, or pass checkpoint='FILE.keras'."
                )
        elif not path.exists():
            raise FileNotFoundError(f"Checkpoint file {str(path)!r} does not exist.")
        return path

    def load_model(self, checkpoint: str = "best"):
        """Load a checkpoint as a Keras model (``compile=False``).

        Raises:
            FileNotFoundError: No such checkpoint (see :meth:`resolve_checkpoint`).
            ValueError: The file is corrupt (not a complete ``.keras`` zip: truncated by an
                interrupted save or copy); the message names the run's other checkpoint
                when that one is sound.
        """
        path = self.resolve_checkpoint(checkpoint)
        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            raise ValueError(self._corrupt(path, "not a complete .keras zip file"))
        # The only TensorFlow import of this module: `pixelwise --help` must not pay for it.
        import keras

        import pixelwise.models  # noqa: F401  (registers custom layers for deserialisation)

        try:
            # safe_mode (Keras' default, stated here on purpose): a Lambda layer's Python
            # code, a TFSMLayer's SavedModel and non-modelling functions are refused.
            return keras.models.load_model(path, compile=False, safe_mode=True)
        except PermissionError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError) as exc:  # h5py: "truncated file: eof = ..."
            raise ValueError(self._corrupt(path, " ".join(str(exc).split()))) from exc
        except Exception as exc:  # noqa: BLE001 - whatever a crafted config.json makes Keras raise
            raise ValueError(_unloadable(path, exc)) from None

    def _corrupt(self, path: Path, reason: str) -> str:
        """Error message for an unreadable checkpoint, naming a sound one to use instead."""
        others = [name for name in CHECKPOINT_NAMES
                  if self.checkpoint_path(name).resolve() != path.resolve()
                  and zipfile.is_zipfile(self.checkpoint_path(name))]
        fix = (f"pass checkpoint={others[0]!r} to use {str(self.checkpoint_path(others[0]))!r}"
               if others else "train again, or restore the file from a copy")
        return (f"Checkpoint {str(path)!r} is corrupt ({reason}; probably truncated by an "
                f"interrupted save or copy); {fix}.")


def _unloadable(path: Path, exc: Exception) -> str:
    """The one-line error for a ``.keras`` file Keras refuses or cannot deserialise."""
    reason = " ".join(str(exc).split())
    if "safe_mode" in reason or "Non-modeling" in reason:
        return (f"Model file {str(path)!r} holds code (a Lambda layer, a TFSMLayer or a Python "
                "function), which pixelwise refuses to run: it loads .keras files in Keras' "
                "safe mode. Expected a model of pixelwise's own layers; retrain it with "
                "pixelwise, or re-save it without Lambda layers.")
    return (f"Model file {str(path)!r} cannot be loaded as a pixelwise model "
            f"({type(exc).__name__}: {reason[:300]}); expected a .keras file saved by "
            "pixelwise train. Pass a run's checkpoint, or retrain.")
