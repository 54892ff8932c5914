"""TFDS' standard builder test for voc2012_semantic on dummy_data/ (an extracted VOCdevkit/).

dummy_data/ was written by tests/voc_fixture.py (year=2012, extracted=True): per
split the good examples counted below plus broken ones the builder must skip.
"""

import tensorflow_datasets as tfds

from pixelwise.datasets.voc2012_semantic import voc2012_semantic_dataset_builder


class Voc2012SemanticTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = voc2012_semantic_dataset_builder.Builder
    SPLITS = {"train": 3, "validation": 2}
    # dummy_data/ is the manual directory, so nothing is downloaded.
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
