"""``isbi2012_membranes``: the ISBI 2012 EM segmentation challenge (the U-Net paper's data).

Features: ``image`` (None, None, **1**) uint8 (grayscale, 512×512),
``image/filename``, ``label`` (None, None, 1) uint8 with 0 = cell interior and
1 = membrane (:data:`ISBI2012`). The challenge's labels are inverted (0 =
membrane, 255 = interior) and are converted here. Splits: ``train`` = slices
0–24, ``validation`` = slices 25–29 (the challenge's test labels were never
published). Example keys are the slice indices, so the TIFF and PNG forms give
the same examples.

Example:
    >>> import pixelwise.datasets  # registers "isbi2012_membranes"
    >>> builder = tfds.builder("isbi2012_membranes", data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
    ...     manual_dir="../shared/datasets/isbi2012"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import tensorflow_datasets as tfds

from pixelwise.class_sets import ISBI2012
from pixelwise.datasets.isbi2012_membranes.isbi2012_sources import (
    NUM_SLICES, SPLIT_SLICES, TIFF_IMAGES, TIFF_LABELS, find_isbi_source, load_slice,
)
from pixelwise.datasets.segmentation_builder import SegmentationBuilder, require_manual_dir
from pixelwise.datasets.split_plan import ExamplePair, SplitPlan

logger = logging.getLogger(__name__)

#: Metadata keys: splits absent from the source, and the form that was read.
ABSENT_SPLITS_KEY = "absent_splits"
SOURCE_LAYOUT_KEY = "source_layout"


class Builder(SegmentationBuilder):
    """ISBI 2012 membrane segmentation (30 training slices) as a TFDS builder."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: slices 0-24 train, 25-29 validation; 1 = membrane."}
    CLASS_SET = ISBI2012
    IMAGE_CHANNELS = 1
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    The ISBI 2012 EM segmentation challenge's training data (30 slices, 512x512) is
    distributed after registration at https://imagej.net/events/isbi-2012-segmentation-challenge
    (the original challenge site, http://brainiac2.mit.edu/isbi_challenge/, is often offline;
    the same files are mirrored by many U-Net repositories). Put in the manual directory
    (`--manual-dir` / `DownloadConfig(manual_dir=...)`), or in its `isbi2012/` subfolder,
    either the two 30-page TIFF stacks `train-volume.tif` and `train-labels.tif`, or PNG
    slices `image/0.png ... image/29.png` and `label/0.png ... label/29.png`. Labels must be
    0 = membrane, 255 = cell interior, as the challenge distributes them.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self._segmentation_info(
            homepage="https://imagej.net/events/isbi-2012-segmentation-challenge"
        )

    def expected_manual_files(self) -> str:
        return f"{TIFF_IMAGES} + {TIFF_LABELS}, or image/N.png + label/N.png"

    def _plan_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, SplitPlan]:
        source = find_isbi_source(require_manual_dir(dl_manager))
        num_slices = source.num_slices()
        logger.info("isbi2012_membranes: reading %d slices (%s) from %s",
                    num_slices, source.layout, source.root)
        if num_slices > NUM_SLICES:
            logger.warning("isbi2012_membranes: %d slices found; slices %d.. belong to no split "
                           "and are ignored.", num_slices, NUM_SLICES)
        present = [s for s, indices in SPLIT_SLICES.items() if indices.start < num_slices]
        absent = [s for s in SPLIT_SLICES if s not in present]
        if not present:
            raise FileNotFoundError(
                f"Expected {NUM_SLICES} slices in {source.root}, found none; see the builder's "
                "MANUAL_DOWNLOAD_INSTRUCTIONS."
            )
        if absent:
            logger.warning("isbi2012_membranes: only %d slices; split(s) %s absent.",
                           num_slices, ", ".join(absent))
        self.info.metadata[ABSENT_SPLITS_KEY] = absent
        self.info.metadata[SOURCE_LAYOUT_KEY] = source.layout
        # Every slice of a present split is planned: missing ones are reported as skipped.
        listing = TIFF_IMAGES if source.layout == "tiff" else "image/"
        return {
            split: SplitPlan([source.pair(i) for i in SPLIT_SLICES[split]], source=listing)
            for split in present
        }

    def _load_pair(self, pair: ExamplePair) -> dict:
        image, label = load_slice(pair)
        return {"image": image, "image/filename": pair.filename, "label": label}
