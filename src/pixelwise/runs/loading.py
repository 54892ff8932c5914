"""Loading a trained model for use: the one way evaluate, predict and export get one.

:func:`load_run` takes a run folder, a ``.keras`` file or a ``keras.Model`` and returns the
model with its class set and the size it was trained at (a :class:`LoadedRun`).

Example:
    >>> loaded = load_run("runs/voc")            # doctest: +SKIP
    >>> loaded.class_set.class_names[:2], loaded.image_size   # doctest: +SKIP
    (('background', 'aeroplane'), (256, 256))
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pixelwise.class_sets import ClassSet, resolve_class_set
from pixelwise.data.paths import dataset_path
from pixelwise.defaults import DEFAULT_CHECKPOINT
from pixelwise.runs.folder import RunFolder


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
            f"found no class_set.json in {str(folder)!r}; pass class_set= voc|camvid|"
            "isbi2012|FILE.json."
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
