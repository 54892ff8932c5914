"""Dataset arguments that name a folder or a ``.zip`` instead of a dataset; imports no TensorFlow.

``--dataset`` (and ``pixelwise datasets build|info|browse``) accept a registered name
(``camvid``, ``oxford_iiit_pet``, ``cityscapes/semantic_segmentation``) or the path of
an annotation tool's export. A value is a path when it ends with ``.zip``, starts with
``/``, ``./``, ``../`` or ``~``, or contains a path separator and exists; anything else
is a name first (``pixelwise.datasets.api`` then tries an existing folder of that name).
Registered names keep their meaning even when a folder of the same name sits in the
working directory; write ``./camvid`` to mean the folder.

The prepared dataset of a path is named after it (:func:`dataset_name_for`): the folder's
name, or the zip's without ``.zip``, as a TFDS name (lower case, ``[a-z0-9_]``).

Example:
    >>> dataset_path("camvid") is None
    True
    >>> dataset_path("./exports/cvat_task.zip").name
    'cvat_task.zip'
    >>> dataset_name_for("exports/My Task-7.zip")
    'my_task_7'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Suffix of a zipped export.
ZIP_SUFFIX = ".zip"
_PATH_PREFIXES = ("/", "./", "../", "~", "." + os.sep, ".." + os.sep)
#: A name the prepared dataset of a folder may have (TFDS dataset names, snake case).
DATASET_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def dataset_path(value) -> Path | None:
    """The absolute folder or ``.zip`` path a dataset argument names, or None for a name.

    Args:
        value: What was passed as the dataset (a string or ``os.PathLike``).

    Returns:
        The absolute path (whether or not it exists) when ``value`` is a path by the
        rules of this module, else None.
    """
    if isinstance(value, Path):
        return Path(os.path.abspath(value.expanduser()))
    text = os.fspath(value)
    separated = os.sep in text or "/" in text
    is_path = (text.lower().endswith(ZIP_SUFFIX) or text.startswith(_PATH_PREFIXES)
               or text in (".", "..") or (separated and os.path.exists(os.path.expanduser(text))))
    return Path(os.path.abspath(os.path.expanduser(text))) if is_path else None


def dataset_name_for(path) -> str:
    """The name of the prepared dataset built from ``path``: its folder or zip name, snake case.

    Raises:
        ValueError: nothing of the name is left (e.g. ``"---"``); pass a name instead.
    """
    base = Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).name
    if base.lower().endswith(ZIP_SUFFIX):
        base = base[: -len(ZIP_SUFFIX)]
    name = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_")
    if not name:
        raise ValueError(
            f"Cannot make a dataset name from {os.fspath(path)!r}; expected a folder or zip name "
            "with letters or digits. Pass one as name=NAME."
        )
    return name if name[0].isalpha() else f"data_{name}"


def check_dataset_name(name: str) -> str:
    """``name`` when it is a valid name for a prepared dataset, else ValueError saying why."""
    if not isinstance(name, str) or not DATASET_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"Expected a dataset name of lower-case letters, digits and underscores starting "
            f"with a letter (a TFDS name), received {name!r}; e.g. name='my_cells'."
        )
    return name


def dataset_label(value: str) -> str:
    """How a run folder names its dataset: a path's dataset name, else the value itself.

    Example:
        >>> dataset_label("/data/Cell Export.zip"), dataset_label("camvid")
        ('cell_export', 'camvid')
    """
    path = dataset_path(value)
    return value if path is None else dataset_name_for(path)


# Defaults of building a dataset from a path (pixelwise.datasets.folder, `datasets build`).
#: Share of an export's examples that becomes ``validation`` when it has no validation split.
DEFAULT_VALIDATION_FRACTION = 0.1
#: Seed of that choice.
DEFAULT_SPLIT_SEED = 0
