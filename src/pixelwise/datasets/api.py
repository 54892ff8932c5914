"""Public functions over pixelwise's dataset builders: list, check, build, describe.

Example:
    >>> import pixelwise.datasets as pd
    >>> "voc2007_semantic" in pd.available()
    True
    >>> builder = pd.build("voc2007_semantic", manual_dir="~/voc")  # doctest: +SKIP
    >>> builder.info.splits["train"].num_examples  # doctest: +SKIP
    209
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

from pixelwise.data.paths import dataset_path
from pixelwise.datasets import folder
from pixelwise.datasets.beam import LostExamplesError, download_config
from pixelwise.datasets.output_dirs import building, make_folder, tidied
from pixelwise.datasets.segmentation_builder import SegmentationBuilder
from pixelwise.datasets.split_plan import skipped_examples
from pixelwise.datasets.tfds_adapters import ADAPTERS, adapter_for


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
    """The (not necessarily prepared) builder ``name``.

    Args:
        name: One of :func:`available`; an adapted TFDS dataset
            (:data:`~pixelwise.datasets.tfds_adapters.ADAPTERS`: ``oxford_iiit_pet``,
            ``cityscapes``); another registered TFDS name; the path of a folder or
            ``.zip`` export (:mod:`pixelwise.data.paths` says which values are
            paths), or the name an export was prepared under in ``data_dir``.
        data_dir: TFDS data directory (default None: TFDS' own,
            :func:`pixelwise.defaults.tfds_data_dir`).

    Raises:
        ValueError: ``name`` is none of these, or a bad export.
        FileNotFoundError: a path that does not exist.
    """
    path = dataset_path(name)
    if path is not None:
        return folder.folder_builder(path, _expand(data_dir))
    adapter = adapter_for(name)
    if adapter is not None:
        return adapter.builder(_expand(data_dir))
    classes = _builder_classes()
    if name in classes:
        return classes[name](data_dir=_expand(data_dir))
    # Before TFDS, which would read a prepared export as it is, never checking its source.
    prepared = folder.prepared_builder(name, _expand(data_dir))
    if prepared is not None:
        return prepared
    try:
        return tfds.builder(name, data_dir=_expand(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        pass
    if Path(name).exists():  # a bare folder name that is no dataset's
        return folder.folder_builder(name, _expand(data_dir))
    raise ValueError(
        f"Unknown dataset {name!r}; expected one of {sorted(classes)} (see `pixelwise datasets "
        f"list`), {sorted(ADAPTERS)}, another registered TFDS dataset name, or the path of a "
        "folder or .zip export (e.g. ./my_export)."
    )


#: The features a TFDS dataset that pixelwise did not build needs for pixelwise to read it.
READABLE_FEATURES = (
    "'image' (a uint8 Image with 1 or 3 channels) and 'label' (class ids: a uint8 Image with "
    "1 channel, or an integer Tensor of shape (H, W) or (H, W, 1))"
)


def _label_map(feature) -> bool:
    if isinstance(feature, tfds.features.Image):
        return feature.shape[-1] == 1 and feature.np_dtype == np.uint8
    if isinstance(feature, tfds.features.Tensor):  # ClassLabel too, whose shape is ()
        shape = tuple(feature.shape)
        return (np.issubdtype(feature.np_dtype, np.integer)
                and (len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1)))
    return False


def _features_problem(features) -> str | None:
    """Why ``features`` are not pixelwise's ``image`` + ``label``, or None when they are."""
    if not isinstance(features, tfds.features.FeaturesDict):
        return f"its features are {features!r}"
    names = sorted(features.keys())
    image = features["image"] if "image" in names else None
    label = features["label"] if "label" in names else None
    if image is None or label is None:
        return f"it has features {names}, no {'image' if image is None else 'label'!r}"
    if not (isinstance(image, tfds.features.Image) and image.shape[-1] in (1, 3)
            and image.np_dtype == np.uint8):
        return f"its 'image' is {image!r}"
    if not _label_map(label):
        return f"its 'label' is {label!r}, not a map of class ids"
    return None


def check_readable(name: str, data_dir=None) -> tfds.core.DatasetBuilder:
    """The builder of ``name`` if pixelwise can read it as segmentation data, else a ValueError.

    Decided from the builder's declared features, before anything is downloaded or
    built, so ``train``, ``evaluate`` and ``datasets build|browse`` refuse a name
    such as ``mnist`` at once. Readable are pixelwise's own builders
    (:func:`available`) and TFDS datasets whose features already are
    :data:`READABLE_FEATURES`, which the adapted ones (``oxford_iiit_pet``,
    ``cityscapes``) and exports (a folder or ``.zip`` path) are.

    Args:
        name: A dataset name.
        data_dir: TFDS data directory (default None: TFDS' own).

    Returns:
        The builder (not necessarily prepared).

    Raises:
        ValueError: ``name`` is unknown, or not segmentation data pixelwise reads;
            the message lists what is accepted.

    Example:
        >>> check_readable("mnist")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: Dataset 'mnist' is not segmentation data pixelwise can read: its 'label' is ClassLabel...
    """
    builder = get_builder(name, data_dir)
    if isinstance(builder, SegmentationBuilder):
        return builder
    try:
        problem = _features_problem(builder.info.features)
    except Exception as error:  # a TFDS builder whose info cannot be made here
        problem = f"its features cannot be read ({type(error).__name__}: {_first_line(error)})"
    if problem is None:
        return builder
    raise ValueError(
        f"Dataset {name!r} is not segmentation data pixelwise can read: {problem}. Expected one "
        f"of pixelwise's datasets ({', '.join(available())}; see `pixelwise datasets list`), "
        f"an adapted TFDS dataset ({', '.join(sorted(ADAPTERS))}), a folder or .zip export, "
        f"or a TFDS dataset with the features {READABLE_FEATURES}."
    )


def _how_to_build(name: str, data_dir) -> str:
    data_dir_option = f" --data-dir {data_dir}" if data_dir else ""
    return (f"build it first with `pixelwise datasets build {name} --manual-dir DIR{data_dir_option}`"
            " or pass manual_dir=DIR")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def build(name: str, data_dir=None, manual_dir=None, download_dir=None, *,
          download: bool = True, dataset_name: str | None = None,
          validation_fraction: float | None = None,
          groups: str | None = None, beam: bool = False,
          beam_options: str | list[str] | None = None) -> tfds.core.DatasetBuilder:
    """Dataset ``name``, prepared: built first (downloaded, or read from ``manual_dir``) if missing.

    The one place pixelwise builds a dataset that is not there yet
    (:func:`pixelwise.data.pipeline.load_split` calls it). An already prepared dataset is
    reused as it is; a folder or ``.zip`` export is built from its files (never
    downloaded) and rebuilt when they changed (:func:`pixelwise.datasets.folder.prepare`).
    TFDS shows a progress bar per split; skipped examples are
    logged and kept in ``builder.info.metadata["skipped"]`` (see
    :func:`~pixelwise.datasets.split_plan.skipped_examples`). While another process builds
    the same dataset into ``data_dir``, this one waits (saying so in one line, with that
    process's pid), then uses what it built.

    Args:
        name: One of :func:`available`, e.g. ``"voc2007_semantic"`` (or another
            registered TFDS dataset).
        data_dir: Where the prepared dataset is or goes (default None: TFDS' own,
            ``~/tensorflow_datasets``).
        manual_dir: Folder holding the original archives (or their extracted
            contents) for offline builds; nothing is downloaded when it has them.
        download_dir: Where downloads and extractions go (default None:
            ``<data_dir>/downloads``).
        download: Whether a dataset that is not prepared may be built when no
            ``manual_dir`` is given (downloading it); False raises instead.
        dataset_name: An export's dataset name (default None: its folder's or zip's).
        validation_fraction: An export's share of ``validation`` when it has no
            validation split (default None: as last built, else 0.1).
        groups: An export's group rule (:mod:`pixelwise.data.groups`: a regular expression
            whose first group names an example's group, e.g. ``'^(.+?)_frame'``, or a
            ``filename,group`` CSV): that share is then made of whole groups;
            ``"none"`` for no groups (default None: as last built, else none).
        beam: Build on Apache Beam through TFDS' Beam support (default False): the
            same examples and skip report as a plain build, decoded by worker processes
            (DirectRunner, one per core; :mod:`pixelwise.datasets.beam`). Needs the
            ``beam`` extra. A dataset already prepared is not rebuilt.
        beam_options: Beam pipeline options as on a command line, e.g.
            ``"--direct_num_workers=2"`` or ``"--runner=DataflowRunner --project=P
            --region=R --temp_location=gs://B/tmp"`` (default None: DirectRunner with one
            worker per core); given, they mean ``beam=True``.

    Returns:
        The prepared ``tfds.core.DatasetBuilder``; ``builder.as_dataset(split=...)``
        gives the data.

    Raises:
        ValueError: unknown name, a dataset pixelwise cannot read
            (:func:`check_readable`, checked before anything else), or a broken archive.
        FileNotFoundError: the dataset is not prepared and may not be built, or
            ``manual_dir`` does not exist or lacks an archive.
        ConnectionError: the download failed from every mirror (each is tried once
            for a connection first, so an offline machine hears it in seconds).
        OSError: ``data_dir`` or ``download_dir`` cannot be written (checked before
            the build), or the system refused a write during it. A failed build
            leaves no temporary or empty folders behind.

    Example:
        >>> builder = build("voc2007_semantic", data_dir="/tmp/tfds", manual_dir="~/voc")  # doctest: +SKIP
        >>> ds = builder.as_dataset(split="train")  # doctest: +SKIP
    """
    # Made first, so that a Beam build without apache-beam fails before any work.
    config = download_config(beam=beam, beam_options=beam_options, try_download_gcs=False)
    if dataset_name is not None or validation_fraction is not None or groups is not None:
        if dataset_path(name) is None and not Path(name).exists():
            raise ValueError(
                f"dataset_name, validation_fraction and groups apply to a folder or .zip export; "
                f"{name!r} is not a path. Pass the export's path, e.g. ./{name}.")
        return folder.prepare(folder.folder_builder(
            name, _expand(data_dir), name=dataset_name, validation_fraction=validation_fraction,
            groups=groups), config)
    builder = check_readable(name, data_dir)
    if isinstance(builder, folder.Builder):
        # Built from its own files, never downloaded; rebuilt when they changed.
        return folder.prepare(builder, config)
    if builder.is_prepared():
        return builder
    where, how = builder.data_dir, _how_to_build(name, data_dir)
    manual_dir = _expand(manual_dir)
    if manual_dir is None and not download:
        raise FileNotFoundError(
            f"Dataset {name!r} is not built in {where} and building it was not allowed; {how}."
        )
    if manual_dir is not None and not Path(manual_dir).is_dir():
        expected = (builder.expected_manual_files() if hasattr(builder, "expected_manual_files")
                    else "its source files")
        raise FileNotFoundError(
            f"Dataset {name!r} is not built in {where}, and the manual directory {manual_dir} "
            f"does not exist; expected a folder holding {expected}. Create it and put the files "
            "there, or leave out manual_dir to download."
        )
    config = dataclasses.replace(config, manual_dir=manual_dir)
    context = f"Dataset {name!r} is not built in {where} and could not be built"
    root = Path(builder.data_dir_root)
    downloads = Path(_expand(download_dir)) if download_dir is not None else root / "downloads"
    with building(root, builder.name):
        if builder.is_prepared():  # by another process, while this one waited
            return check_readable(name, data_dir)  # a builder that has read what it wrote
        # Empty folders made for a build that fails are removed again (folders.tidied).
        with tidied([root / name, downloads]):
            make_folder(downloads, "downloads", "download_dir")
            _download_and_prepare(builder, downloads, config, context, how)
    return builder


def _download_and_prepare(builder, download_dir: Path, config, context: str, how: str) -> None:
    try:
        builder.download_and_prepare(download_dir=download_dir, download_config=config)
    except (NonMatchingChecksumError, LostExamplesError):
        raise
    except Exception as error:  # tfds raises many types here (network, asserts, IO)
        if isinstance(error, OSError) and error.errno is not None:
            # The system refused a file operation (disk full, read-only, no permission).
            raise type(error)(f"{context}: {error.strerror}: {error.filename}") from error
        if type(error) in (FileNotFoundError, ValueError, ConnectionError):
            # pixelwise's builders already say what was expected and how to fix it.
            raise type(error)(f"{context}: {error}") from error
        raise FileNotFoundError(
            f"{context} ({type(error).__name__}: {_first_line(error)}); {how}."
        ) from error


def group_rule(builder: tfds.core.DatasetBuilder) -> str | None:
    """How the dataset's examples group (:mod:`pixelwise.data.groups`), or None when they do not.

    An export's rule is the one it was built with (``metadata["source"]["groups"]``); a
    pixelwise builder's is its class's ``GROUP_RULE`` (CamVid: the video sequence).
    """
    source = (builder.info.metadata or {}).get(folder.SOURCE_KEY) or {}
    return source.get("groups") or getattr(type(builder), "GROUP_RULE", None)


def describe(builder: tfds.core.DatasetBuilder) -> dict:
    """A plain summary of a prepared builder: where, splits with counts, skipped examples.

    Returns:
        ``{"name", "version", "data_dir", "splits": {split: n}, "skipped": {split: [...]}}``,
        and ``"source"`` (its path, layout, split rule, fingerprint) for an export.
    """
    info = builder.info
    return {
        "name": builder.name,
        "version": str(builder.version),
        "data_dir": os.fspath(builder.data_dir),
        "splits": {name: split.num_examples for name, split in info.splits.items()},
        "skipped": skipped_examples(info),
        **({"source": dict(info.metadata[folder.SOURCE_KEY])}
           if folder.SOURCE_KEY in (info.metadata or {}) else {}),
    }
