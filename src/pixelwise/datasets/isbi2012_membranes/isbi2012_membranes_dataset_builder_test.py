"""TFDS-style test of the ``isbi2012_membranes`` builder on ``dummy_data/`` (30-page TIFF stacks)."""

import tensorflow_datasets as tfds

from pixelwise.datasets.isbi2012_membranes import isbi2012_membranes_dataset_builder


class Isbi2012MembranesTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = isbi2012_membranes_dataset_builder.Builder
    # dummy_data is the manual directory: train-volume.tif + train-labels.tif, 30 pages of 16x16.
    SPLITS = {"train": 25, "validation": 5}


if __name__ == "__main__":
    tfds.testing.test_main()
