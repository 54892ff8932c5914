"""TFDS-style test of the ``camvid`` builder on ``dummy_data/`` (a tiny SegNet-layout copy)."""

import tensorflow_datasets as tfds

from pixelwise.datasets.camvid import camvid_dataset_builder


class CamvidTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = camvid_dataset_builder.Builder
    # dummy_data is the manual directory: 3 train, 2 val, 1 test 12x8 images whose labels
    # hold all values 0..11.
    SPLITS = {"train": 3, "validation": 2, "test": 1}


if __name__ == "__main__":
    tfds.testing.test_main()
