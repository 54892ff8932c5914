"""Old home of the builders' shared pieces; kept so that old imports keep working.

Decoding lives in :mod:`pixelwise.datasets.decoding`, planned splits and the skip
report in :mod:`pixelwise.datasets.split_plan`, the builder base in
:mod:`pixelwise.datasets.segmentation_builder`. New code imports from there.
"""

from pixelwise.datasets.decoding import (  # noqa: F401
    InvalidExampleError, decode_image, decode_label, read_bytes, rgb_to_ids,
)
from pixelwise.datasets.segmentation_builder import (  # noqa: F401
    SegmentationBuilder, require_manual_dir,
)
from pixelwise.datasets.split_plan import (  # noqa: F401
    SKIPPED_KEY, ExamplePair, SplitPlan, format_skip_summary, skipped_examples,
)
