"""``voc2012_semantic``: PASCAL VOC 2012 semantic segmentation (train / validation)."""

from pixelwise.datasets.voc2012_semantic.voc2012_semantic_dataset_builder import Builder  # noqa: F401
