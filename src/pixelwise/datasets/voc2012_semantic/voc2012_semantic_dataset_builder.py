"""voc2012_semantic: PASCAL VOC 2012, semantic segmentation.

Splits (from ``VOCdevkit/VOC2012/ImageSets/Segmentation``): ``train`` (train.txt,
1464 images), ``validation`` (val.txt, 1449). The 2012 test labels are not
public, so there is no test split.

Example:
    >>> import tensorflow_datasets as tfds
    >>> import pixelwise.datasets  # noqa: F401
    >>> dataset, info = tfds.load("voc2012_semantic", with_info=True)  # doctest: +SKIP
"""

import tensorflow_datasets as tfds

from pixelwise.datasets.voc_semantic import VOC2012, VocSemanticBuilder


class Builder(VocSemanticBuilder):
    """PASCAL VOC 2012 semantic segmentation: image, image/filename, label (255 = void)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: palette indices as labels, void kept as 255."}
    RELEASE = VOC2012
    MANUAL_DOWNLOAD_INSTRUCTIONS = VOC2012.manual_instructions()
