"""pixelwise datasets: TFDS builders, registered on import (their class sets: :mod:`pixelwise.class_sets`).

Importing this package registers ``voc2007_semantic``, ``voc2012_semantic``,
``camvid``, ``isbi2012_membranes`` and ``synthetic_shapes`` with TFDS, so the
chapter's code works::

    import pixelwise.datasets  # noqa: F401
    dataset, info = tfds.load("voc2007_semantic", with_info=True)
"""

from pixelwise.datasets.camvid import camvid_dataset_builder  # noqa: F401  (registers)
from pixelwise.datasets.isbi2012_membranes import isbi2012_membranes_dataset_builder  # noqa: F401  (registers)
from pixelwise.datasets.synthetic_shapes import synthetic_shapes_dataset_builder  # noqa: F401  (registers)
from pixelwise.datasets.voc2007_semantic import voc2007_semantic_dataset_builder  # noqa: F401  (registers)
from pixelwise.datasets.voc2012_semantic import voc2012_semantic_dataset_builder  # noqa: F401  (registers)
from pixelwise.datasets.split_plan import skipped_examples
from pixelwise.datasets.api import available, build

__all__ = ["available", "build", "skipped_examples"]
