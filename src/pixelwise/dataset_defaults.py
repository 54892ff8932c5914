"""Defaults of pixelwise's dataset functions, in a module that imports no TensorFlow.

:mod:`pixelwise.datasets` imports TFDS (it registers the builders), so the defaults that
``pixelwise datasets --help`` shows live here: :func:`pixelwise.datasets.browse.browse`
takes its defaults from these constants, and :mod:`pixelwise.cli.datasets` reads them
from here too, so the two cannot drift apart. Folders default to None everywhere
(``data_dir=None`` is TFDS' own data directory, :func:`tfds_data_dir`).

Example:
    >>> BROWSE_NUM_EXAMPLES, BROWSE_ALPHA
    (8, 0.5)
"""

from __future__ import annotations

import os

#: The split ``pixelwise datasets browse`` shows when none is given.
BROWSE_SPLIT = "train"
#: Examples :func:`pixelwise.datasets.browse.browse` writes by default.
BROWSE_NUM_EXAMPLES = 8
#: Opacity of the colour label in the overlay panel of a browse picture.
BROWSE_ALPHA = 0.5


def tfds_data_dir() -> str:
    """TFDS' default data directory: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets`` (expanded).

    The same rule as ``tfds.core.constants.get_default_data_dir()``, without importing TFDS;
    it is where ``data_dir=None`` puts and finds prepared datasets.
    """
    return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))
