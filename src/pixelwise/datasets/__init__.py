"""pixelwise datasets: TFDS builders registered on import, and their class sets.

Importing this package registers ``voc2007_semantic``, ``voc2012_semantic``,
``camvid`` and ``isbi2012_membranes`` with TFDS, so the chapter's code works::

    import pixelwise.datasets  # noqa: F401
    dataset, info = tfds.load("voc2007_semantic", with_info=True)
"""

from pixelwise.datasets.class_sets import (  # noqa: F401
    CAMVID, ISBI2012, VOC, ClassSet, class_set_from_info, get_class_set,
)
from pixelwise.datasets.camvid import camvid_dataset_builder  # noqa: F401,E402  (registers "camvid")
