"""TFDS's own segmentation datasets read as pixelwise's: small declarative adapters.

TFDS' ``oxford_iiit_pet`` stores its labels as ``segmentation_mask`` (a trimap: 1 pet,
2 background, 3 border) and ``cityscapes`` as ``segmentation_label`` (34 label ids);
pixelwise's pipeline reads ``image``, ``label`` (class ids, 255 void) and
``image/filename``, and a class set in the metadata. A :class:`TfdsAdapter` states the
difference as data: the source feature keys, a label lookup table (values it does not
list become void) and the class set. :class:`AdaptedBuilder` wraps TFDS' real builder
(downloads, manual directories, checksums and preparation stay TFDS') and maps each
example as it is read, so ``load_split``, training, evaluation and ``browse`` use it
unchanged. Adding a dataset is one more adapter, e.g. ``lost_and_found``::

    TfdsAdapter(name="lost_and_found", tfds_name="lost_and_found/semantic_segmentation",
                image_key="image_left", label_key="segmentation_label",
                filename_key="image_id", label_map={1: 0, 2: 1}, class_set=LOST_AND_FOUND)

Example:
    >>> builder = ADAPTERS["oxford_iiit_pet"].builder(data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare()  # doctest: +SKIP
    >>> sorted(next(iter(builder.as_dataset(split="train"))))  # doctest: +SKIP
    ['image', 'image/filename', 'label']
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from pixelwise.class_sets import CITYSCAPES, IGNORE_LABEL, OXFORD_IIIT_PET, ClassSet
from pixelwise.datasets.split_plan import SKIPPED_KEY

#: Key of the adapter's description in the adapted ``info.metadata``.
ADAPTER_KEY = "tfds_adapter"


@dataclasses.dataclass(frozen=True)
class TfdsAdapter:
    """How one TFDS dataset's examples become pixelwise's ``(image, label, image/filename)``.

    Attributes:
        name: What users pass as the dataset (``"oxford_iiit_pet"``).
        tfds_name: The TFDS builder, with its config (``"cityscapes/semantic_segmentation"``).
        image_key: The source's image feature.
        label_key: The source's label feature (its first channel is read).
        filename_key: A text feature naming the example (stored as ``image/filename``).
        label_map: ``{source label value: class id}``; values not listed become void (255).
        class_set: The class set the mapped labels use.
        manual_files: Files a manual-download dataset needs in its manual directory
            (checked before TFDS builds, so a missing one is named); empty for downloads.
    """

    name: str
    tfds_name: str
    image_key: str
    label_key: str
    filename_key: str
    label_map: Mapping[int, int]
    class_set: ClassSet
    manual_files: tuple[str, ...] = ()

    def __post_init__(self):
        num_classes = self.class_set.num_classes
        bad = {v: i for v, i in self.label_map.items()
               if not 0 <= v < 256 or not (0 <= i < num_classes or i == IGNORE_LABEL)}
        if bad:
            raise ValueError(
                f"Adapter {self.name!r}: expected label_map values 0..255 mapped to class ids of "
                f"{self.class_set.name!r} or {IGNORE_LABEL}, received {bad}.")

    def lookup_table(self) -> np.ndarray:
        """The ``(256,)`` uint8 table from source label values to class ids (255 elsewhere)."""
        table = np.full(256, IGNORE_LABEL, dtype=np.uint8)
        for value, class_id in self.label_map.items():
            table[value] = class_id
        return table

    def to_example(self, example: dict) -> dict:
        """A decoded source example as pixelwise's ``{"image", "label", "image/filename"}``."""
        label = tf.cast(example[self.label_key][..., :1], tf.int32)
        return {
            "image": example[self.image_key],
            "image/filename": example[self.filename_key],
            "label": tf.gather(tf.constant(self.lookup_table()), label),
        }

    def builder(self, data_dir=None) -> "AdaptedBuilder":
        """TFDS' builder of this dataset, wrapped (not necessarily prepared)."""
        return AdaptedBuilder(self, tfds.builder(self.tfds_name, data_dir=data_dir))


class AdaptedInfo:
    """A TFDS ``DatasetInfo`` as pixelwise's: its features and metadata are the adapted ones.

    Everything else (``splits``, ``full_name``, ``citation``...) is the source's.
    """

    def __init__(self, adapter: TfdsAdapter, info: tfds.core.DatasetInfo):
        self._adapter, self._info = adapter, info

    @property
    def metadata(self) -> dict:
        adapter = self._adapter
        return {
            **adapter.class_set.to_metadata(),
            SKIPPED_KEY: {},
            ADAPTER_KEY: {"dataset": self._info.full_name, "image": adapter.image_key,
                          "label": adapter.label_key,
                          "label_map": {str(k): v for k, v in sorted(adapter.label_map.items())}},
        }

    @property
    def features(self) -> tfds.features.FeaturesDict:
        source = self._info.features[self._adapter.image_key].shape
        return tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=source, dtype=np.uint8),
            "image/filename": tfds.features.Text(),
            "label": tfds.features.Image(shape=(*source[:2], 1), dtype=np.uint8),
        })

    def __getattr__(self, name):
        return getattr(self._info, name)


class AdaptedBuilder:
    """TFDS' builder of an adapted dataset; its splits read as pixelwise examples.

    Preparing (``download_and_prepare``, ``is_prepared``), ``data_dir`` and ``version``
    are TFDS' builder's; ``name`` is the adapter's and ``info`` / ``as_dataset`` are adapted.
    """

    def __init__(self, adapter: TfdsAdapter, builder: tfds.core.DatasetBuilder):
        self.adapter, self.source_builder = adapter, builder

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def info(self) -> AdaptedInfo:
        return AdaptedInfo(self.adapter, self.source_builder.info)

    def expected_manual_files(self) -> str:
        """What the manual directory must hold, for messages."""
        files = " and ".join(self.adapter.manual_files)
        return files or "nothing (the dataset downloads its files)"

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        """TFDS' own preparation, after checking that a manual download's files are there.

        Raises:
            FileNotFoundError: a file of ``manual_files`` is missing from the manual directory.
        """
        if self.adapter.manual_files and not self.source_builder.is_prepared():
            config = download_config or tfds.download.DownloadConfig()
            downloads = download_dir or os.path.join(self.source_builder.data_dir_root, "downloads")
            manual_dir = config.manual_dir or os.path.join(downloads, "manual")
            missing = [f for f in self.adapter.manual_files
                       if not os.path.isfile(os.path.join(os.fspath(manual_dir), f))]
            if missing:
                raise FileNotFoundError(
                    f"{self.name} is a manual download: expected {self.expected_manual_files()} in "
                    f"the manual directory {manual_dir}, missing {missing}. Download them from "
                    f"{self.source_builder.info.homepage} and pass their folder as manual_dir=DIR."
                )
        return self.source_builder.download_and_prepare(
            download_dir=download_dir, download_config=download_config, **kwargs)

    def as_dataset(self, split, *, shuffle_files: bool = False, read_config=None, **kwargs):
        """The split as a ``tf.data.Dataset`` of ``{"image", "label", "image/filename"}``.

        Only the three source features are decoded.
        """
        adapter = self.adapter
        keys = (adapter.image_key, adapter.label_key, adapter.filename_key)
        decoders = tfds.decode.PartialDecoding({key: True for key in keys})
        dataset = self.source_builder.as_dataset(
            split=split, shuffle_files=shuffle_files, decoders=decoders, read_config=read_config,
            **kwargs)
        if isinstance(dataset, dict):  # split=None: every split
            return {name: d.map(adapter.to_example, num_parallel_calls=tf.data.AUTOTUNE)
                    for name, d in dataset.items()}
        return dataset.map(adapter.to_example, num_parallel_calls=tf.data.AUTOTUNE)

    def __getattr__(self, name):
        return getattr(self.source_builder, name)


#: Oxford-IIIT Pet (TFDS ``oxford_iiit_pet``): trimap 1 pet, 2 background, 3 border (void).
OXFORD_IIIT_PET_ADAPTER = TfdsAdapter(
    name="oxford_iiit_pet", tfds_name="oxford_iiit_pet", image_key="image",
    label_key="segmentation_mask", filename_key="file_name",
    label_map={1: 1, 2: 0, 3: IGNORE_LABEL}, class_set=OXFORD_IIIT_PET,
)

#: Cityscapes' label ids to its 19 train ids (cityscapesScripts' labels.py); the rest void.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                        24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}

#: Cityscapes (TFDS ``cityscapes/semantic_segmentation``, manual download), fine labels.
CITYSCAPES_ADAPTER = TfdsAdapter(
    name="cityscapes", tfds_name="cityscapes/semantic_segmentation", image_key="image_left",
    label_key="segmentation_label", filename_key="image_id", label_map=CITYSCAPES_TRAIN_IDS,
    class_set=CITYSCAPES, manual_files=("leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip"),
)

#: The adapted datasets by the name users pass.
ADAPTERS: dict[str, TfdsAdapter] = {
    a.name: a for a in (OXFORD_IIIT_PET_ADAPTER, CITYSCAPES_ADAPTER)
}


def adapter_for(name: str) -> TfdsAdapter | None:
    """The adapter of ``name`` (its own name or its TFDS name), or None."""
    for adapter in ADAPTERS.values():
        if name in (adapter.name, adapter.tfds_name):
            return adapter
    return None
