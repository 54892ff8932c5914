"""Your own data: an exported folder or ``.zip`` as a TFDS dataset (docs/own-data.md).

``prepare(folder_builder(PATH))`` builds it (or reuses the prepared copy while the export
is unchanged); :mod:`pixelwise.datasets.api` does this for any dataset argument that is
a path.
"""

from pixelwise.datasets.folder.folder_dataset_builder import SOURCE_KEY, Builder, FolderSource, builder_class, folder_builder, read_class_set, stored_source  # noqa: F401
from pixelwise.datasets.folder.prepared import prepare, prepared_builder  # noqa: F401
