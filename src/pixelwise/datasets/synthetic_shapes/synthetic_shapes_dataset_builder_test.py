"""TFDS-style test of the ``synthetic_shapes`` builder: a full build of the drawn scenes."""

from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from pixelwise.datasets.synthetic_shapes import synthetic_shapes_dataset_builder

pytestmark = pytest.mark.slow  # builds and reads all 640 scenes: 24 s on 2 shared cores (load 6-8)


class SyntheticShapesTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = synthetic_shapes_dataset_builder.Builder
    # The scenes are drawn: the builder downloads and reads nothing, so there is no
    # dummy_data/; TFDS' test case only needs the folder to exist.
    EXAMPLE_DIR = str(Path(__file__).parent)
    SPLITS = {"train": 512, "validation": 64, "test": 64}


if __name__ == "__main__":
    tfds.testing.test_main()
