"""An export (folder or ``.zip``) as a real TFDS dataset named after it, rebuilt when it changes.

A dataset whose name is only known at run time becomes a TFDS builder through
:func:`builder_class`: one subclass of :class:`Builder` per name, made with
``skip_registration=True`` (and cached), so the prepared dataset lives where a built-in
one would, ``<data_dir>/<name>/1.0.0/``, ``builder.name`` is the export's name in run
folders, browse pictures and messages, and ``tfds.builder_from_directory`` reads it.
A ``BuilderConfig`` per export was the alternative; but configs are variants of one
dataset, fixed in the code, and would file every export under one name
(``own_data/<name>``). Registering the classes is avoided: the registry is process-wide
and refuses a name twice, and a name must not shadow a TFDS dataset.

The builder's features and metadata are the built-in datasets' (``image``, ``label``
(H, W, 1) uint8, ``image/filename``; ``class_names``, ``palette``, ``ignore_label`` 255,
``skipped``), plus ``metadata["source"]``: the export's path, layout, split rule,
validation fraction, seed, group rule (``groups``, :mod:`pixelwise.data.groups`) and fingerprint
(:func:`~.source_tree.fingerprint`). The
prepared copy counts as prepared only while the fingerprint matches
(:meth:`Builder.is_prepared`); :func:`pixelwise.datasets.folder.prepared.prepare` rebuilds
a stale one, keeping the old copy until the new one is written.

Example:
    >>> from pixelwise.datasets.folder import prepare  # doctest: +SKIP
    >>> builder = prepare(folder_builder("exports/cvat_task.zip"))  # doctest: +SKIP
    >>> builder.name, sorted(builder.info.splits)  # doctest: +SKIP
    ('cvat_task', ['default'])
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import types
from pathlib import Path

import tensorflow_datasets as tfds

from pixelwise.data.paths import (
    DEFAULT_SPLIT_SEED, DEFAULT_VALIDATION_FRACTION, check_dataset_name, dataset_name_for,
)
from pixelwise.datasets.decoding import InvalidExampleError, decode_image
from pixelwise.datasets.folder.layouts import FolderLayout, FolderPair, read_layout
from pixelwise.datasets.folder.masks import decode_mask
from pixelwise.datasets.folder.source_tree import SourceTree, UnreadableFileError, fingerprint
from pixelwise.datasets.segmentation_builder import SegmentationBuilder
from pixelwise.datasets.split_plan import SplitPlan
from pixelwise.defaults import tfds_data_dir
from pixelwise.data.groups import AUTO, NONE

logger = logging.getLogger(__name__)

#: Key of the source's description in ``DatasetInfo.metadata``.
SOURCE_KEY = "source"


@dataclasses.dataclass
class FolderSource:
    """An opened export: its files, layout, and the options of its split.

    Use :meth:`open`.
    """

    path: Path
    name: str
    validation_fraction: float
    seed: int
    tree: SourceTree
    layout: FolderLayout
    groups: str | None = None

    @classmethod
    def open(cls, path, name: str | None = None,
             validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
             seed: int = DEFAULT_SPLIT_SEED, groups: str | None = None) -> "FolderSource":
        """List and plan the export at ``path`` (nothing is decoded).

        Args:
            groups: A group rule (:meth:`pixelwise.data.groups.GroupRule.parse`) that keeps
                groups whole in the seeded validation share (default None, or ``"none"``:
                no groups). A ``.csv`` path is stored absolute.

        Raises:
            FileNotFoundError: no such path, or no such group ``.csv``.
            ValueError: not a folder or zip, an unrecognised layout, a bad class file,
                nothing usable, a bad name, validation fraction or group rule.
        """
        tree = SourceTree.open(path)
        name = check_dataset_name(name) if name is not None else dataset_name_for(tree.path)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"Expected an integer split seed, received {seed!r}.")
        validation_fraction = float(validation_fraction)
        groups = _group_spec(groups)
        layout = read_layout(tree, name, validation_fraction, seed, groups)
        return cls(tree.path, name, validation_fraction, seed, tree, layout, groups)

    @functools.cached_property
    def fingerprint(self) -> str:
        options = {"validation_fraction": self.validation_fraction, "seed": self.seed}
        if self.groups is not None:  # only then: copies built before groups existed stay fresh
            options["groups"] = self.groups
            if self.groups_table_sha256 is not None:
                options["groups_table"] = self.groups_table_sha256
        return fingerprint(self.tree, self.layout.used_files, options)

    @functools.cached_property
    def groups_table_sha256(self) -> str | None:
        """SHA-256 of a CSV rule's rows (an edited CSV is another split), else None."""
        rule = self.layout.groups
        if rule is None or rule.table is None:
            return None
        return hashlib.sha256(json.dumps(sorted(rule.table.items())).encode()).hexdigest()

    def metadata(self) -> dict:
        """What ``metadata["source"]`` records of the export."""
        used = self.layout.used_files
        return {
            "path": str(self.path),
            "kind": self.tree.kind,
            "layout": self.layout.kind,
            "class_file": self.layout.class_spec.source,
            "mask_encoding": self.layout.class_spec.encoding,
            "split_rule": self.layout.split_rule,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
            "groups": self.groups,
            "groups_table_sha256": self.groups_table_sha256,
            "fingerprint": self.fingerprint,
            "num_files": len(set(used)),
            "num_bytes": sum(self.tree.files[rel].size for rel in set(used)),
        }


class Builder(SegmentationBuilder, skip_registration=True):
    """The base of each export's builder (:func:`builder_class`); build with :func:`prepare`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Exports read as CVAT 'Segmentation mask 1.1' or images/ + masks/."}

    def __init__(self, *, source: FolderSource, data_dir=None, **kwargs):
        if source.name != self.name:
            raise ValueError(f"Expected a source named {self.name!r}, received {source.name!r}.")
        self.source = source
        self.CLASS_SET = source.layout.class_spec.class_set
        super().__init__(data_dir=data_dir, **kwargs)
        self._original_state["source"] = source  # TFDS re-creates builders from this state

    def __reduce__(self):
        # The class is made at run time (builder_class): pickle (Beam sends the builder to
        # its workers) names it by the export's name, never copies it by value, which would
        # register a second class of that name.
        return _reopen_builder, (self.name, dict(self._original_state))

    def _info(self) -> tfds.core.DatasetInfo:
        info = self._segmentation_info()
        info.metadata[SOURCE_KEY] = self.source.metadata()
        return info

    def expected_manual_files(self) -> str:
        return "nothing: the dataset is built from its export folder or zip"

    def _plan_splits(self, dl_manager) -> dict[str, SplitPlan]:
        return self.source.layout.plans

    def _load_pair(self, pair: FolderPair) -> dict:
        """Decode and check one (image, mask) pair of the export.

        Raises:
            InvalidExampleError: the pair's planned problem, an undecodable file, a mask
                value outside the class file, or image and mask sizes that differ.
        """
        if pair.problem:
            raise InvalidExampleError(pair.problem)
        tree = self.source.tree
        try:
            image_bytes, mask_bytes = tree.read(pair.image_path), tree.read(pair.label_path)
        except OSError as exc:  # removed or unreadable since it was listed
            raise InvalidExampleError(f"cannot read: {exc}") from None
        except UnreadableFileError as exc:  # past the size limit, or a corrupt zip entry
            raise InvalidExampleError(str(exc)) from None
        image, pil = decode_image(image_bytes, self.IMAGE_CHANNELS)
        label = decode_mask(mask_bytes, self.source.layout.class_spec)
        if image.shape[:2] != label.shape[:2]:
            raise InvalidExampleError(
                f"image {pair.image_path} is {image.shape[1]}x{image.shape[0]} (WxH) but mask "
                f"{pair.label_path} is {label.shape[1]}x{label.shape[0]}"
            )
        # JPEG and RGB PNG bytes are stored as they are (no re-encoding); others as pixels.
        keep_bytes = pil.format in ("JPEG", "PNG") and pil.mode == "RGB"
        return {"image": image_bytes if keep_bytes else image, "image/filename": pair.filename,
                "label": label}

    def _download_and_prepare(self, dl_manager, download_config=None):
        super()._download_and_prepare(dl_manager, download_config)
        # A builder made over a stale copy holds the old metadata; write the new source's.
        self.info.metadata.update(self.CLASS_SET.to_metadata())
        self.info.metadata[SOURCE_KEY] = self.source.metadata()

    # -- is the prepared copy the source's? ---------------------------------------------------

    def stale_reason(self) -> str | None:
        """Why the prepared copy no longer matches the export; None if it does or none exists."""
        if not super().is_prepared():
            return None
        stored = dict((self.info.metadata or {}).get(SOURCE_KEY) or {})
        current = self.source.metadata()
        if stored.get("fingerprint") == current["fingerprint"]:
            return None
        changed = [f"{key} {stored.get(key)} -> {current[key]}"
                   for key in ("validation_fraction", "seed", "groups")
                   if stored.get(key) != current[key]]
        if (stored.get("groups") == current["groups"]
                and stored.get("groups_table_sha256") != current["groups_table_sha256"]):
            changed.append(f"the rows of the group file {current['groups']} changed")
        if stored.get("path") != current["path"]:
            changed.append(f"it was built from {stored.get('path')}")
        changed.append(f"{stored.get('num_files')} files, {stored.get('num_bytes')} bytes when "
                       f"built; {current['num_files']} files, {current['num_bytes']} bytes now")
        return "; ".join(changed)

    def is_prepared(self) -> bool:
        """Prepared, and from the export as it is now (same fingerprint and options)."""
        return super().is_prepared() and self.stale_reason() is None


@functools.lru_cache(maxsize=None)
def builder_class(name: str) -> type[Builder]:
    """The builder class of the export named ``name`` (one per name, made once)."""
    check_dataset_name(name)
    return types.new_class(
        f"FolderBuilder_{name}", (Builder,), {"skip_registration": True},
        lambda namespace: namespace.update({
            "name": name, "__module__": __name__,
            "__doc__": f"The export {name!r} read by pixelwise (folder or zip).",
        }),
    )


def _reopen_builder(name: str, state: dict) -> Builder:
    return builder_class(name)(**state)


def version_dir(data_dir, name: str) -> Path:
    root = Path(os.path.expanduser(os.fspath(data_dir or tfds_data_dir())))
    return root / name / str(Builder.VERSION)


def stored_source(name: str, data_dir=None) -> dict | None:
    """``metadata["source"]`` of the prepared export ``name`` in ``data_dir``, or None."""
    path = version_dir(data_dir, name) / "metadata.json"
    try:
        source = json.loads(path.read_text()).get(SOURCE_KEY)
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) else None


def _group_spec(groups: str | None) -> str | None:
    """The rule as stored: None for no rule (None, ``"none"``), a ``.csv`` path made absolute."""
    if groups is None or (isinstance(groups, str) and groups.strip().lower() == NONE):
        return None
    if isinstance(groups, str) and groups.lower().endswith(".csv"):
        return os.path.abspath(os.path.expanduser(groups))
    return groups


def folder_builder(path, data_dir=None, *, name: str | None = None,
                   validation_fraction: float | None = None, seed: int | None = None,
                   groups: str | None = None) -> Builder:
    """The builder of the export at ``path`` (not necessarily prepared; see :func:`prepare`).

    Args:
        path: A folder or ``.zip`` export.
        data_dir: TFDS data directory (default None: TFDS' own).
        name: The dataset's name (default: the folder's or zip's, snake case).
        validation_fraction: Share of examples for ``validation`` when the export has no
            validation split (default: as the prepared copy of this export was built, else
            :data:`~pixelwise.data.paths.DEFAULT_VALIDATION_FRACTION`).
        seed: Seed of that choice (default: as built, else 0).
        groups: A group rule (:mod:`pixelwise.data.groups`: a regular expression whose first
            group names an example's group, e.g. ``'^(.+?)_frame'``, or a ``filename,group``
            CSV) that keeps groups whole in that choice; ``"none"`` for no groups (default
            None or ``"auto"``: as built, else none).

    Raises:
        FileNotFoundError: no such path.
        ValueError: a bad export or group rule (see :func:`~.layouts.read_layout`), or a
            name that is a registered TFDS dataset's.
    """
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    name = check_dataset_name(name) if name is not None else dataset_name_for(path)
    try:
        tfds.builder_cls(name)
    except tfds.core.registered.DatasetNotFoundError:
        pass
    else:
        raise ValueError(f"The export {str(path)!r} would be named {name!r}, which is a registered "
                         "TFDS dataset; pass another name=NAME.")
    stored = stored_source(name, data_dir) or {}
    if stored.get("path") == str(path):  # options not given: as this export was last built
        if validation_fraction is None:
            validation_fraction = stored["validation_fraction"]
        if seed is None:
            seed = stored["seed"]
        if groups is None or (isinstance(groups, str) and groups.strip().lower() == AUTO):
            groups = stored.get("groups")
    elif isinstance(groups, str) and groups.strip().lower() == AUTO:
        groups = None
    source = FolderSource.open(
        path, name,
        DEFAULT_VALIDATION_FRACTION if validation_fraction is None else validation_fraction,
        DEFAULT_SPLIT_SEED if seed is None else seed,
        groups,
    )
    return builder_class(name)(source=source, data_dir=data_dir)


def read_class_set(path):
    """The class set of the export at ``path``, as its dataset will have it (no build)."""
    return FolderSource.open(path).layout.class_spec.class_set


__all__ = ["Builder", "FolderSource", "SOURCE_KEY", "builder_class", "folder_builder",
           "read_class_set", "stored_source", "version_dir"]
