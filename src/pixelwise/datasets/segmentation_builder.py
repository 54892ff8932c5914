"""The base of pixelwise's segmentation builders: features, planned splits, the skip report.

Every pixelwise dataset has the same three features as the chapter's
``voc2007_semantic``::

    image           (None, None, C) uint8   C = IMAGE_CHANNELS (3 by default)
    image/filename  text
    label           (None, None, 1) uint8   class ids, ignore_label (255) = void

and stores its class set (``class_names``, ``palette``, ``ignore_label``) in
``DatasetInfo.metadata``.

One path turns listed pairs into examples for every builder. A builder plans its
splits (:meth:`SegmentationBuilder._plan_splits`: a
:class:`~pixelwise.datasets.split_plan.SplitPlan` of
:class:`~pixelwise.datasets.split_plan.ExamplePair` per split, found before
anything is decoded) and, when its files are not one image and one label file per
example, says how a pair becomes an example (:meth:`SegmentationBuilder._load_pair`,
raising :class:`~pixelwise.datasets.decoding.InvalidExampleError` for an unusable
pair). One per-example step, :meth:`SegmentationBuilder.example_or_skip`, turns a pair
into an example or a skip reason; the shared ``_generate_examples`` yields the pairs
that load and leaves out the others, with no side effect. A build given Beam options
(``DownloadConfig(beam_options=...)``) runs the same step as a Beam ``PTransform``
(:mod:`pixelwise.datasets.beam`) and writes the same examples. Bad examples never abort
a build: after it, plain or Beam, the
skip report (keys listed twice, and every planned pair missing from the written
split with the reason its loading gives) goes to ``info.metadata["skipped"]``,
which TFDS writes next to the dataset (``metadata.json``;
:func:`~pixelwise.datasets.split_plan.skipped_examples` reads it back), and one
summary is logged.

A builder for a new dataset::

    class Builder(SegmentationBuilder):
        VERSION = tfds.core.Version("1.0.0")
        CLASS_SET = CAMVID

        def _info(self):
            return self._segmentation_info(homepage="https://...")

        def _plan_splits(self, dl_manager):
            root = epath.Path(require_manual_dir(dl_manager))
            pairs = [ExamplePair(p.stem, p, root / "labels" / p.name, p.name)
                     for p in sorted((root / "images").glob("*.png"))]
            return {"train": SplitPlan(pairs, source="images/")}
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from pixelwise.class_sets import ClassSet
from pixelwise.datasets.beam import examples_transform, is_beam_build, lost_examples_error
from pixelwise.datasets.decoding import (
    InvalidExampleError, decode_image, decode_label, read_bytes, short_path,
)
from pixelwise.datasets.output_dirs import tidied
from pixelwise.datasets.split_plan import (
    LOADS_NOW, SKIPPED_KEY, ExamplePair, SplitPlan, format_skip_summary, plan_skip_report,
    skipped_examples,
)

logger = logging.getLogger(__name__)


def require_manual_dir(dl_manager: tfds.download.DownloadManager):
    """``dl_manager.manual_dir`` for manual-only builders, as ``FileNotFoundError`` when missing.

    TFDS raises ``AssertionError`` (with the builder's instructions) when the manual
    directory is absent or empty; users should get one clear error instead.
    """
    try:
        return dl_manager.manual_dir
    except AssertionError as exc:
        raise FileNotFoundError(
            f"{exc} Pass the folder as manual_dir=DIR (pixelwise.datasets.build(manual_dir=DIR), "
            "or TFDS' DownloadConfig(manual_dir=DIR))."
        ) from None


class SegmentationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of pixelwise's semantic-segmentation builders.

    Subclasses set ``VERSION``, ``CLASS_SET`` (and ``IMAGE_CHANNELS`` when not 3,
    ``LABEL_VALUE_MAP`` when label files store other values), return
    :meth:`_segmentation_info` from ``_info`` and implement :meth:`_plan_splits`;
    they override :meth:`_load_pair` only when an example is not one image file
    and one label file.
    """

    #: The dataset's class set, stored in ``info.metadata``.
    CLASS_SET: ClassSet
    #: Channels of the ``image`` feature (3 = RGB, 1 = grayscale).
    IMAGE_CHANNELS: int = 3
    #: ``{stored label value: class id}`` applied when decoding labels (CamVid: ``{11: 255}``).
    LABEL_VALUE_MAP: Mapping[int, int] | None = None
    #: How examples group (frames of one video...), as a :class:`pixelwise.data.groups.GroupRule`
    #: string applied to ``image/filename``; None when the examples are independent.
    GROUP_RULE: str | None = None
    #: Whether the running build is a Beam one (set from its DownloadConfig when it starts).
    _beam_build: bool = False

    def _segmentation_info(self, homepage: str | None = None, **kwargs) -> tfds.core.DatasetInfo:
        """``DatasetInfo`` with pixelwise's features and the class set as metadata.

        Description and citation come from the builder folder's ``README.md`` and
        ``CITATIONS.bib`` (TFDS convention); ``kwargs`` go to ``DatasetInfo``.
        """
        metadata = tfds.core.MetadataDict(self.CLASS_SET.to_metadata())
        metadata[SKIPPED_KEY] = {}
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, self.IMAGE_CHANNELS), dtype=np.uint8),
                "image/filename": tfds.features.Text(),
                # Labels are always given as decoded id arrays and stored losslessly as PNG.
                "label": tfds.features.Image(
                    shape=(None, None, 1), dtype=np.uint8, encoding_format="png"
                ),
            }),
            supervised_keys=("image", "label"),
            homepage=homepage,
            metadata=metadata,
            **kwargs,
        )

    def expected_manual_files(self) -> str:
        """What a manual directory for this dataset holds, in a few words (for error messages)."""
        return "the files its MANUAL_DOWNLOAD_INSTRUCTIONS name"

    # -- planning and generating ------------------------------------------------------------

    def _plan_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, SplitPlan]:
        """``{split: SplitPlan}``: find the data and list each split's pairs; decode nothing."""
        raise NotImplementedError(f"{type(self).__name__} must implement _plan_splits")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        plans = self._plan_splits(dl_manager)
        # Kept for the skip report that _download_and_prepare computes after the build.
        self._split_plans = plans
        if self._beam_build:
            return {split: examples_transform(self, plan) for split, plan in plans.items()}
        return {split: self._generate_examples(plan) for split, plan in plans.items()}

    def example_or_skip(self, pair: ExamplePair) -> tuple[str, dict | None, str | None]:
        """The one per-example step of every build, plain or Beam, and of the skip report.

        Returns:
            ``(key, example, None)`` when the pair loads, ``(key, None, reason)`` when
            :meth:`_load_pair` refuses it (:class:`InvalidExampleError`).
        """
        try:
            return pair.key, self._load_pair(pair), None
        except InvalidExampleError as exc:
            return pair.key, None, str(exc)

    def _generate_examples(self, plan: SplitPlan):
        """Yields ``(key, example)`` for each planned pair that loads; the others are left out.

        Which pairs were left out, and why, is worked out after the build
        (:func:`~pixelwise.datasets.split_plan.plan_skip_report`).

        Raises:
            ValueError: no pair of the split loads (TFDS would only say that no
                example was yielded; this names the first pair's reason).
        """
        pairs, loaded, first_error = plan.pairs(), 0, None
        for pair in pairs:
            key, example, reason = self.example_or_skip(pair)
            if example is None:
                first_error = first_error or f"{key}: {reason}"
                continue
            loaded += 1
            yield key, example
        if pairs and not loaded:
            raise self._nothing_loads(plan, first_error)

    def _nothing_loads(self, plan: SplitPlan, first_error: str | None) -> ValueError:
        return ValueError(
            f"{self.name}: none of the {len(plan.pairs())} example(s) listed in {plan.source} can "
            f"be used; the first: {first_error}. Check the files named there."
        )

    def _load_pair(self, pair: ExamplePair) -> dict:
        """Decode and check one image file and its label file.

        Raises:
            InvalidExampleError: a file is missing or undecodable, the label holds
                values outside the class set, or the sizes differ.
        """
        if not tf.io.gfile.exists(os.fspath(pair.label_path)):
            raise InvalidExampleError(f"label file not found: {short_path(pair.label_path)}")
        if not tf.io.gfile.exists(os.fspath(pair.image_path)):
            raise InvalidExampleError(f"image file not found: {short_path(pair.image_path)}")
        image_bytes = read_bytes(pair.image_path)
        image, pil = decode_image(image_bytes, self.IMAGE_CHANNELS)
        label = decode_label(pair.label_path, self.CLASS_SET, value_map=self.LABEL_VALUE_MAP)
        if image.shape[:2] != label.shape[:2]:
            raise InvalidExampleError(
                f"image is {image.shape[1]}x{image.shape[0]} (WxH) but label is "
                f"{label.shape[1]}x{label.shape[0]}"
            )
        # Keep the original encoded bytes (no JPEG re-encoding) when they already decode
        # to the feature's channels; otherwise store the converted array.
        keep_bytes = pil.format in ("JPEG", "PNG") and pil.mode == ("RGB" if self.IMAGE_CHANNELS == 3 else "L")
        return {
            "image": image_bytes if keep_bytes else image,
            "image/filename": pair.filename,
            "label": label,
        }

    # -- after the build: the skip report ---------------------------------------------------

    def _skip_reason(self, pair: ExamplePair) -> str | None:
        return self.example_or_skip(pair)[2]

    def _raise_if_a_split_has_nothing_to_load(self, error: Exception) -> None:
        """The plain build's error for a split none of whose pairs loads, if there is one."""
        for plan in self._split_plans.values():
            first_error = None
            for pair in plan.pairs():
                reason = self._skip_reason(pair)
                if reason is None:
                    break
                first_error = first_error or f"{pair.key}: {reason}"
            else:
                if plan.pairs():
                    raise self._nothing_loads(plan, first_error) from error

    def _written_filenames(self, split: str) -> list[str]:
        only_filenames = tfds.decode.PartialDecoding({"image/filename": True})
        dataset = self.as_dataset(split=split, decoders=only_filenames)
        return [example["image/filename"].decode() for example in tfds.as_numpy(dataset)]

    def _skip_report(self, plans: Mapping[str, SplitPlan], max_examples: int | None):
        """``{split: entries}`` of :func:`plan_skip_report`; a Beam build that lost examples raises.

        Raises:
            pixelwise.datasets.beam.LostExamplesError: Beam builds only: a pair that loads
                was not written, or a shard file the runner reported is missing.
        """
        report = {}
        for split, plan in plans.items():
            try:
                entries = plan_skip_report(
                    plan, self.info.splits[split].num_examples,
                    functools.partial(self._written_filenames, split), self._skip_reason,
                    max_examples,
                )
            except tf.errors.NotFoundError as exc:
                if not self._beam_build:
                    raise
                raise lost_examples_error(
                    self.name, split, [],
                    f"a shard file it reported is missing ({exc.message.strip()[-200:]})",
                ) from None
            lost = [entry["id"] for entry in entries if entry["reason"] == LOADS_NOW]
            if lost and self._beam_build:
                raise lost_examples_error(self.name, split, lost)
            if entries:
                report[split] = entries
        return report

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        """TFDS' ``download_and_prepare`` without the GCS lookup, leaving no debris when it fails.

        pixelwise datasets are not on GCS; the lookup would make every offline build
        wait on the network. TFDS' temporary download folders are removed, and when
        the build fails, so are the empty dataset and download folders it made
        (:func:`~pixelwise.datasets.output_dirs.tidied`); downloaded archives are kept.
        """
        config = download_config or tfds.download.DownloadConfig()
        if config.try_download_gcs:
            config = dataclasses.replace(config, try_download_gcs=False)
        root = Path(self.data_dir_root)
        written = [root / self.name, Path(download_dir or root / "downloads")]
        if config.extract_dir:
            written.append(Path(config.extract_dir))
        with tidied(written):
            return super().download_and_prepare(
                download_dir=download_dir, download_config=config, **kwargs
            )

    def _download_and_prepare(self, dl_manager, download_config=None):
        self._split_plans = {}
        self._beam_build = is_beam_build(download_config)
        try:
            super()._download_and_prepare(dl_manager, download_config)
        except Exception as exc:
            if self._beam_build:  # TFDS' Beam writer only says that a split is empty
                self._raise_if_a_split_has_nothing_to_load(exc)
            raise
        max_examples = download_config.max_examples_per_split if download_config else None
        # TFDS writes info.metadata after this returns.
        self.info.metadata[SKIPPED_KEY] = self._skip_report(self._split_plans, max_examples)
        skipped = skipped_examples(self.info)
        log = logger.warning if skipped else logger.info
        log("%s: build finished. %s", self.name, format_skip_summary(skipped))
