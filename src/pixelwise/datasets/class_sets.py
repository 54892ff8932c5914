"""Old import path of :mod:`pixelwise.class_sets`, kept so 0.1.0 code keeps working.

Class sets need only NumPy; they live in ``pixelwise.class_sets`` so that importing
a colour table does not load TensorFlow and every dataset builder.
"""

from pixelwise.class_sets import *  # noqa: F401,F403
from pixelwise.class_sets import (  # noqa: F401
    CAMVID, IGNORE_LABEL, ISBI2012, VOC, VOID_COLOR, ClassSet, class_set_from_info, get_class_set,
)
