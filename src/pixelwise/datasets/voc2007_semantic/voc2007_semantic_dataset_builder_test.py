"""TFDS' standard builder test for voc2007_semantic on dummy_data/ (an extracted VOCdevkit/).

dummy_data/ was written by tests/voc_fixture.py (extracted=True): per split the
good examples counted below plus broken ones (missing label, foreign colour,
undecodable image/label, size mismatch) that the builder must skip.
"""

import tensorflow_datasets as tfds

from pixelwise.datasets.voc2007_semantic import voc2007_semantic_dataset_builder


class Voc2007SemanticTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = voc2007_semantic_dataset_builder.Builder
    SPLITS = {"train": 4, "validation": 3, "test": 2}
    # dummy_data/ is the manual directory, so nothing is downloaded.
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
