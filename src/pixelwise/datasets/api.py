"""Public functions over pixelwise's dataset builders: list, build, describe.

Example:
    >>> import pixelwise.datasets as pd
    >>> "voc2007_semantic" in pd.available()
    True
    >>> builder = pd.build("voc2007_semantic", manual_dir="~/voc")  # doctest: +SKIP
    >>> builder.info.splits["train"].num_examples  # doctest: +SKIP
    209
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from pixelwise.datasets.common import SegmentationBuilder, skipped_examples


def _builder_classes() -> dict[str, type]:
    classes, stack = {}, list(SegmentationBuilder.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not cls.__module__.startswith("pixelwise.datasets."):
            continue
        try:
            if tfds.builder_cls(cls.name) is cls:
                classes[cls.name] = cls
        except Exception:  # abstract / unregistered helper classes
            continue
    return classes


def available() -> list[str]:
    """Names of the TFDS builders pixelwise provides (registered by ``import pixelwise.datasets``).

    Example:
        >>> import pixelwise.datasets as pd
        >>> pd.available()  # doctest: +SKIP
        ['camvid', 'isbi2012_membranes', 'voc2007_semantic', 'voc2012_semantic']
    """
    return sorted(_builder_classes())


def _expand(path) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(os.fspath(path)))


def get_builder(name: str, data_dir=None) -> tfds.core.DatasetBuilder:
    """The (not necessarily prepared) builder ``name`` of pixelwise.

    Args:
        name: One of :func:`available`.
        data_dir: TFDS data directory (default: TFDS' own, ``~/tensorflow_datasets``).

    Raises:
        ValueError: ``name`` is not a pixelwise dataset.
    """
    classes = _builder_classes()
    if name not in classes:
        raise ValueError(
            f"Unknown dataset {name!r}; expected one of {sorted(classes)} "
            "(see `pixelwise datasets list`)."
        )
    return classes[name](data_dir=_expand(data_dir))


def build(name: str, data_dir=None, manual_dir=None, download_dir=None) -> tfds.core.DatasetBuilder:
    """Download (or read from ``manual_dir``) and prepare dataset ``name``; return its builder.

    Building twice is cheap: an already prepared dataset is reused. TFDS shows a
    progress bar per split; skipped examples are logged and kept in
    ``builder.info.metadata["skipped"]`` (see :func:`skipped_examples`).

    Args:
        name: One of :func:`available`, e.g. ``"voc2007_semantic"``.
        data_dir: Where the prepared dataset goes (default ``~/tensorflow_datasets``).
        manual_dir: Folder holding the original archives (or their extracted
            contents) for offline builds; nothing is downloaded when it has them.
        download_dir: Where downloads and extractions go (default
            ``<data_dir>/downloads``).

    Returns:
        The prepared ``tfds.core.DatasetBuilder``; ``builder.as_dataset(split=...)``
        gives the data.

    Raises:
        ValueError: unknown name or broken archive.
        FileNotFoundError: ``manual_dir`` does not exist, or lacks an archive.

    Example:
        >>> builder = build("voc2007_semantic", data_dir="/tmp/tfds", manual_dir="~/voc")  # doctest: +SKIP
        >>> ds = builder.as_dataset(split="train")  # doctest: +SKIP
    """
    builder = get_builder(name, data_dir)
    manual_dir = _expand(manual_dir)
    if manual_dir is not None and not Path(manual_dir).is_dir():
        expected = ", ".join(getattr(builder, "TAR_NAMES", {}).values()) or "its source files"
        raise FileNotFoundError(
            f"Manual directory {manual_dir} does not exist; expected a folder holding {expected} "
            f"for {name}. Create it and put the files there, or leave out manual_dir to download."
        )
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    builder.download_and_prepare(download_dir=_expand(download_dir), download_config=config)
    return builder


def describe(builder: tfds.core.DatasetBuilder) -> dict:
    """A plain summary of a prepared builder: where, splits with counts, skipped examples.

    Returns:
        ``{"name", "version", "data_dir", "splits": {split: n}, "skipped": {split: [...]}}``.
    """
    info = builder.info
    return {
        "name": builder.name,
        "version": str(builder.version),
        "data_dir": os.fspath(builder.data_dir),
        "splits": {name: split.num_examples for name, split in info.splits.items()},
        "skipped": skipped_examples(info),
    }
