"""The prepared copy of an export: reused while the export is unchanged, rebuilt (old copy kept until the new one is written) when it changed, built by one process at a time."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import tensorflow_datasets as tfds

from pixelwise.datasets.folder.folder_dataset_builder import (
    Builder, folder_builder, stored_source, version_dir,
)
from pixelwise.datasets.output_dirs import building

logger = logging.getLogger(__name__)


def prepared_builder(name: str, data_dir=None):
    """The builder of an export already prepared as ``name`` in ``data_dir``, or None.

    Its export is checked for changes as with a path; when the export is gone, the
    prepared copy is read as it is (``tfds.builder_from_directory``).
    """
    stored = stored_source(name, data_dir)
    if stored is None:
        return None
    if Path(stored["path"]).exists():
        return folder_builder(stored["path"], data_dir, name=name)
    logger.warning("%s: its export %s is gone; reading the copy prepared in %s.", name,
                   stored["path"], version_dir(data_dir, name))
    return tfds.builder_from_directory(os.fspath(version_dir(data_dir, name)))



def prepare(builder: Builder, download_config=None) -> Builder:
    """``builder``'s dataset, prepared from the export as it is now; rebuilt if it changed.

    An unchanged export is never rebuilt. A changed one is rebuilt by a new builder; the
    old copy is set aside and restored if the build fails. While another process builds
    it, this one waits, then reads what that one built
    (:func:`~pixelwise.datasets.output_dirs.building`).

    Args:
        builder: The export's builder (:func:`folder_builder`).
        download_config: How to build when a build is needed (default None: a plain
            build; :func:`pixelwise.datasets.beam.download_config` makes a Beam one).

    Returns:
        A prepared builder (``builder`` itself, or a new one after a rebuild).
    """
    if builder.is_prepared():
        return builder
    with building(builder.data_dir_root, builder.name):
        if builder.is_prepared():  # by another process, while this one waited
            return type(builder)(source=builder.source, data_dir=builder.data_dir_root)
        return _prepare(builder, download_config)



def _prepare(builder: Builder, download_config) -> Builder:
    reason = builder.stale_reason()
    if reason is None:
        _build(builder, download_config)
        return builder
    logger.warning("%s: the export changed since it was built (%s); rebuilding from %s.",
                   builder.name, reason, builder.source.tree.root)
    data_path = Path(builder.data_path)
    aside = data_path.with_name(f".{data_path.name}.replaced")
    shutil.rmtree(aside, ignore_errors=True)
    data_path.rename(aside)
    try:
        fresh = type(builder)(source=builder.source, data_dir=builder.data_dir_root)
        _build(fresh, download_config)
    except BaseException:
        shutil.rmtree(data_path, ignore_errors=True)
        aside.rename(data_path)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return fresh



def _build(builder: Builder, download_config) -> None:
    logger.info("%s: building from %s.", builder.name, builder.source.tree.root)
    # The skip report is logged by the shared base when the build ends.
    builder.download_and_prepare(
        download_config=download_config or tfds.download.DownloadConfig(try_download_gcs=False))
