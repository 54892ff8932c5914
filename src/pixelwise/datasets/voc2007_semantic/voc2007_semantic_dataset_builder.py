"""voc2007_semantic: PASCAL VOC 2007, semantic segmentation (the chapter's dataset).

Splits (from ``VOCdevkit/VOC2007/ImageSets/Segmentation``): ``train`` (train.txt,
209 images), ``validation`` (val.txt, 213), ``test`` (test.txt, 210; the 2007
test archive has segmentation labels).

Example:
    >>> import tensorflow_datasets as tfds
    >>> import pixelwise.datasets  # noqa: F401
    >>> dataset, info = tfds.load("voc2007_semantic", with_info=True)  # doctest: +SKIP
"""

import tensorflow_datasets as tfds

from pixelwise.datasets.voc_semantic import VOC2007, VocSemanticBuilder


class Builder(VocSemanticBuilder):
    """PASCAL VOC 2007 semantic segmentation: image, image/filename, label (255 = void)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: palette indices as labels, void kept as 255."}
    RELEASE = VOC2007
    MANUAL_DOWNLOAD_INSTRUCTIONS = VOC2007.manual_instructions()
