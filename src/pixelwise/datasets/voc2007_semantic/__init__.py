"""``voc2007_semantic``: PASCAL VOC 2007 semantic segmentation (train / validation / test)."""

from pixelwise.datasets.voc2007_semantic.voc2007_semantic_dataset_builder import Builder  # noqa: F401
