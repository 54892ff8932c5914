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

:func:`load_run` is the one way evaluate, predict and export get a model ready for use
(from a run folder, a ``.keras`` file or a ``keras.Model``), with its class set and the
size it was trained at. This module imports TensorFlow/Keras only inside
:meth:`RunFolder.load_model`, so the CLI can read the defaults below without it.

Example:
    >>> loaded = load_run("runs/voc")            # doctest: +SKIP
    >>> loaded.class_set.class_names[:2], loaded.image_size   # doctest: +SKIP
    (('background', 'aeroplane'), (256, 256))
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixelwise.class_sets import ClassSet, resolve_class_set
from pixelwise.data.paths import dataset_path
from pixelwise.defaults import DEFAULT_CHECKPOINT
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
                "wait for that training to end, or pass --out runs/NEW_NAME.", exc.holder
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
                    "Train at least one epoch, or pass --checkpoint FILE.keras."
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
        fix = (f"pass --checkpoint {others[0]} to use {str(self.checkpoint_path(others[0]))!r}"
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


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A model ready for use, with what evaluate, predict and export need around it.

    Attributes:
        model: The ``keras.Model``.
        class_set: The :class:`~pixelwise.class_sets.ClassSet` its output channels are.
        config: The run folder's ``config.json`` as a dict; ``None`` for a ``keras.Model``
            or a ``.keras`` file (even one inside a run folder, whose class set is used).
        image_size: ``(height, width)`` the model was trained at: its fixed input size, else
            the run's ``image_size``; ``None`` when neither says.
        checkpoint_path: The ``.keras`` file loaded; ``None`` for a ``keras.Model``.
    """

    model: Any
    class_set: ClassSet
    config: dict | None
    image_size: tuple[int, int] | None
    checkpoint_path: Path | None


def resolve_model_class_set(value) -> ClassSet | None:
    """What ``--class-set`` accepts: :func:`~pixelwise.class_sets.resolve_class_set`'s values,
    or the path of a folder or ``.zip`` export (its class file's classes, as its dataset has them).

    Raises:
        FileNotFoundError: A ``.json`` file or export path that does not exist.
        ValueError: An unknown name, or an export whose class file cannot be read.
    """
    if value is None or isinstance(value, ClassSet) or os.fspath(value).endswith(".json"):
        return resolve_class_set(value)
    path = dataset_path(value)
    if path is None:
        return resolve_class_set(value)
    # Reading an export's class file imports pixelwise.datasets (TFDS): only here.
    from pixelwise.datasets.folder import read_class_set

    return read_class_set(path)


def load_run(run_or_model, class_set=None, checkpoint: str = DEFAULT_CHECKPOINT) -> LoadedRun:
    """Load a model for use from a run folder, a ``.keras`` file or a ``keras.Model``.

    Args:
        run_or_model: A run folder (path or :class:`RunFolder`), a ``.keras`` file, a
            ``keras.Model``, or a :class:`LoadedRun` (returned as is, or with ``class_set``).
            A ``.keras`` file inside a run folder (``runs/x/checkpoints/best.keras``) brings
            the run's class set along.
        class_set: A :class:`~pixelwise.class_sets.ClassSet`, a built-in name (``voc``,
            ``camvid``, ``isbi2012``, ``oxford_iiit_pet``...), a ``class_set.json`` path, or
            the path of a folder or ``.zip`` export (its class file's classes, as its dataset
            has them). Required with a ``keras.Model`` or a ``.keras`` file outside a run
            folder; overrides the run's.
        checkpoint: ``best``, ``last`` or a ``.keras`` path, for run folders (default ``best``).

    Returns:
        :class:`LoadedRun`.

    Raises:
        FileNotFoundError: No such run folder, checkpoint or class set file.
        ValueError: No class set, or the model's output channels differ from its class count.

    Example:
        >>> loaded = load_run("runs/camvid", checkpoint="last")     # doctest: +SKIP
        >>> loaded.model.output_shape[-1] == loaded.class_set.num_classes   # doctest: +SKIP
        True
    """
    class_set = resolve_model_class_set(class_set)
    if isinstance(run_or_model, LoadedRun):
        if class_set is None:
            return run_or_model
        _check_outputs_match(run_or_model.model, class_set)
        return dataclasses.replace(run_or_model, class_set=class_set)

    model, run, config, checkpoint_path = run_or_model, None, None, None
    if isinstance(run_or_model, RunFolder):
        run = run_or_model
        config = run.config()
    elif isinstance(run_or_model, (str, os.PathLike)):
        path = Path(run_or_model)
        if path.suffix == ".keras" and not path.is_dir():
            run, checkpoint = _run_of_model_file(path, class_set), str(path)
        else:
            run = RunFolder(path)
            config = run.config()
    if run is not None:
        checkpoint_path = run.resolve_checkpoint(checkpoint)
        if class_set is None:
            class_set = run.class_set()
        model = run.load_model(str(checkpoint_path))
    if class_set is None:
        raise ValueError(
            "Expected a class set with a bare model, received none; pass class_set= "
            "(e.g. pixelwise.class_sets.VOC) or a run folder that has class_set.json."
        )
    _check_outputs_match(model, class_set)
    return LoadedRun(model=model, class_set=class_set, config=config,
                     image_size=_trained_image_size(model, config, run), checkpoint_path=checkpoint_path)


def _run_of_model_file(path: Path, class_set: ClassSet | None) -> RunFolder:
    """The run folder a ``.keras`` file belongs to (``checkpoints/``' parent, else its own folder)."""
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    run = RunFolder(folder)
    if class_set is None and not run.class_set_path.exists():
        raise ValueError(
            f"Expected a class set with the model file {str(path)!r}, received none and "
            f"found no class_set.json in {str(folder)!r}; pass --class-set voc|camvid|"
            "isbi2012|FILE.json (Python: class_set=...)."
        )
    return run


def _check_outputs_match(model, class_set: ClassSet) -> None:
    out_channels = model.output_shape[-1]
    if out_channels != class_set.num_classes:
        raise ValueError(
            f"Model/class-set mismatch: the model outputs {out_channels} channels, the class set "
            f"{class_set.name!r} has {class_set.num_classes} classes; use the class set the model "
            "was trained with (the run folder's class_set.json)."
        )


def _trained_image_size(model, config: dict | None, run: RunFolder | None) -> tuple[int, int] | None:
    shape = tuple(model.input_shape)
    if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    stored = (config or {}).get("image_size")
    if stored is None:
        return None
    # config.json holds the validated [height, width] (an int in hand-written ones). Parsed
    # here, not with pixelwise.sizes.normalize_image_size: pixelwise.training.config imports this module.
    if isinstance(stored, int) and not isinstance(stored, bool) and stored > 0:
        return stored, stored
    if (isinstance(stored, list) and len(stored) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in stored)):
        return stored[0], stored[1]
    raise ValueError(
        f"Expected image_size as [height, width] in {str(run.config_path)!r}, received {stored!r}; "
        "write it as 'pixelwise train' does, e.g. [256, 256]."
    )
