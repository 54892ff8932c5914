"""``synthetic_shapes``: drawn discs, boxes, triangles and thin lines; nothing to download.

The quickstart's dataset (``configs/quickstart.yaml``): a result in minutes on a fresh
machine with no network. It is synthetic and shows only that the loop (build, train,
evaluate, predict) works; it says nothing about real images.

Features as every pixelwise dataset: ``image`` (None, None, 3) uint8 (128×128 RGB),
``image/filename``, ``label`` (None, None, 1) uint8 with ids 0..4
(:data:`~pixelwise.class_sets.SYNTHETIC_SHAPES`: background, disc, box, triangle,
line) and 255 on the 1-pixel ring around each shape. Splits: ``train`` (512),
``validation`` (64), ``test`` (64). Example ``i`` of split ``s`` is drawn by
:func:`~pixelwise.datasets.synthetic_shapes.synthetic_shapes_drawing.draw_scene` with the
seed ``(SEED, SPLIT_IDS[s], i)``, so every build gives the same examples and no two
splits share one.

Sizes (and why): 128×128 is the smallest side at which the thinnest shapes (radius
10 px) and 2–4 px lines stay distinct, and a multiple of 64, which the chapter's U-Net
(six stride-2 levels) needs. 512 training scenes are enough for a small U-Net to
reach a high validation mean IoU in a couple of minutes on 2 CPU cores; the whole
build takes a few seconds (about 6 ms to draw a scene).

Example:
    >>> import pixelwise.datasets  # registers "synthetic_shapes"
    >>> builder = pixelwise.datasets.build("synthetic_shapes", "/tmp/tfds")  # doctest: +SKIP
    >>> builder.info.splits["train"].num_examples  # doctest: +SKIP
    512
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from pixelwise.class_sets import SYNTHETIC_SHAPES
from pixelwise.datasets.segmentation_builder import SegmentationBuilder
from pixelwise.datasets.split_plan import ExamplePair, SplitPlan
from pixelwise.datasets.synthetic_shapes.synthetic_shapes_drawing import draw_scene

#: Examples per split.
SPLIT_SIZES = {"train": 512, "validation": 64, "test": 64}
#: Second seed component of each split, so no two splits draw the same scene.
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
#: First seed component: the dataset's. Changing it (or the drawing) is a new version.
SEED = 14
#: (height, width) of every scene.
IMAGE_SIZE = (128, 128)


@dataclasses.dataclass(frozen=True)
class DrawnPair(ExamplePair):
    """A planned example that is drawn, not read: ``seed`` is the scene's seed."""

    seed: tuple[int, ...] = ()


def plan_split(split: str, num_examples: int | None = None) -> SplitPlan:
    """The drawn examples of ``split``: keys ``0000``, ``0001``, ...; nothing is drawn yet.

    Args:
        split: One of :data:`SPLIT_SIZES`.
        num_examples: Examples to plan (default None: ``SPLIT_SIZES[split]``).

    Example:
        >>> plan = plan_split("validation", 2)
        >>> [(pair.key, pair.filename, pair.seed) for pair in plan.pairs()]
        [('0000', 'validation_0000.png', (14, 1, 0)), ('0001', 'validation_0001.png', (14, 1, 1))]
    """
    count = SPLIT_SIZES[split] if num_examples is None else num_examples
    where = f"drawn ({split})"
    pairs = [
        DrawnPair(f"{index:04d}", where, where, f"{split}_{index:04d}.png",
                  seed=(SEED, SPLIT_IDS[split], index))
        for index in range(count)
    ]
    return SplitPlan(pairs, source=f"synthetic_shapes {split} seeds")


class Builder(SegmentationBuilder):
    """Drawn shapes and thin lines (5 classes, 128×128); built offline in seconds."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 512/64/64 drawn 128x128 scenes, seed 14."}
    CLASS_SET = SYNTHETIC_SHAPES

    def _info(self) -> tfds.core.DatasetInfo:
        return self._segmentation_info()

    def expected_manual_files(self) -> str:
        return "nothing (the scenes are drawn; no manual directory is needed)"

    def _plan_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, SplitPlan]:
        return {split: plan_split(split) for split in SPLIT_SIZES}

    def _load_pair(self, pair: DrawnPair) -> dict:
        image, label = draw_scene(pair.seed, size=IMAGE_SIZE)
        return {"image": image, "image/filename": pair.filename, "label": label[..., None]}
