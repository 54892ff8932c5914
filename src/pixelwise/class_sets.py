"""Class sets: the names, colours and ignore label of each dataset, kept as data.

Every pixelwise dataset stores its class set in ``DatasetInfo.metadata`` (keys
``class_names``, ``palette``, ``ignore_label``), and every run folder stores the
class set it was trained with, so losses, metrics, colourising and plots never
hard-code them.

Example:
    >>> from pixelwise.class_sets import VOC
    >>> VOC.num_classes, VOC.ignore_label, VOC.class_names[15]
    (21, 255, 'person')
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: The label value every pixelwise dataset uses for "don't care" pixels.
IGNORE_LABEL = 255
#: Colour used to draw ignored pixels (VOC's void colour).
VOID_COLOR = (224, 224, 192)


@dataclasses.dataclass(frozen=True)
class ClassSet:
    """Names, palette and ignore label of a segmentation dataset.

    Args:
        name: Short identifier, e.g. ``"voc"``.
        class_names: One name per class id, ``class_names[i]`` is class ``i``.
        palette: One RGB triple per class id.
        ignore_label: Label value of pixels excluded from losses and metrics
            (default 255).
        void_color: RGB colour used to draw ignored pixels.
    """

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_label: int = IGNORE_LABEL
    void_color: tuple[int, int, int] = VOID_COLOR

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(
            self, "palette", tuple(tuple(int(c) for c in rgb) for rgb in self.palette)
        )
        object.__setattr__(self, "void_color", tuple(int(c) for c in self.void_color))
        if len(self.class_names) != len(self.palette):
            raise ValueError(
                f"Class set {self.name!r}: expected one palette colour per class, received "
                f"{len(self.class_names)} names and {len(self.palette)} colours."
            )
        if any(len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb) for rgb in self.palette):
            raise ValueError(f"Class set {self.name!r}: palette entries must be RGB triples in 0..255.")
        if 0 <= self.ignore_label < len(self.class_names):
            raise ValueError(
                f"Class set {self.name!r}: ignore_label {self.ignore_label} collides with a class id "
                f"(0..{len(self.class_names) - 1}); use a value >= {len(self.class_names)}, e.g. 255."
            )

    @property
    def num_classes(self) -> int:
        """Number of real classes (ignore label excluded)."""
        return len(self.class_names)

    def lookup_table(self) -> np.ndarray:
        """A (256, 3) uint8 colour table: class ids → palette, ignore label → void colour.

        Values that are neither a class nor the ignore label map to black.
        """
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)
        if 0 <= self.ignore_label < 256:
            table[self.ignore_label] = self.void_color
        return table

    def colorize(self, labels) -> np.ndarray:
        """Colour a label map by palette lookup.

        Args:
            labels: Integer array ``(..., H, W)`` or ``(..., H, W, 1)`` of class ids.

        Returns:
            uint8 array ``(..., H, W, 3)``.
        """
        labels = np.asarray(labels)
        if labels.ndim >= 3 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError(
                f"Expected class ids in 0..255, received values in {labels.min()}..{labels.max()}."
            )
        return self.lookup_table()[labels.astype(np.uint8)]

    def to_metadata(self) -> dict:
        """The dict stored in ``DatasetInfo.metadata`` and in run folders."""
        return {
            "class_set": self.name,
            "class_names": list(self.class_names),
            "palette": [list(rgb) for rgb in self.palette],
            "ignore_label": int(self.ignore_label),
            "void_color": list(self.void_color),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping) -> "ClassSet":
        """Rebuild a class set from ``DatasetInfo.metadata`` or a run folder's JSON."""
        if not isinstance(metadata, Mapping):
            raise ValueError(f"Expected class set metadata as a JSON object, received "
                             f"{type(metadata).__name__}. Was it written by pixelwise?")
        missing = [k for k in ("class_names", "palette", "ignore_label") if k not in metadata]
        if missing:
            raise ValueError(
                f"Expected dataset metadata with class_names, palette and ignore_label; "
                f"missing {missing}. Was the dataset built by pixelwise?"
            )
        names, palette = metadata["class_names"], metadata["palette"]
        void_color, ignore = metadata.get("void_color", VOID_COLOR), metadata["ignore_label"]
        if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)
                and isinstance(palette, (list, tuple)) and all(_is_rgb(c) for c in palette)
                and _is_rgb(void_color) and _is_int(ignore)):
            raise ValueError(
                "Expected class set metadata with class_names a list of strings, palette a "
                "list of [r, g, b] integers, ignore_label an integer and void_color [r, g, b], "
                f"received {json.dumps(dict(metadata), default=str)[:200]}. Was it written by "
                "pixelwise?")
        return cls(
            name=str(metadata.get("class_set", "custom")),
            class_names=tuple(metadata["class_names"]),
            palette=tuple(tuple(c) for c in metadata["palette"]),
            ignore_label=int(metadata["ignore_label"]),
            void_color=tuple(metadata.get("void_color", VOID_COLOR)),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_metadata(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ClassSet":
        return cls.from_metadata(json.loads(text))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rgb(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(map(_is_int, value))


def voc_palette(n: int) -> list[tuple[int, int, int]]:
    """The first ``n`` colours of PASCAL VOC's bit-interleaved colour map (VOCdevkit's ``labelcolormap``).

    Also the colours of datasets whose class file gives none (``classes.txt``).
    """
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette


#: PASCAL VOC (2007 and 2012): background + 20 classes in the chapter's order.
VOC = ClassSet(
    name="voc",
    class_names=(
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
        "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
        "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ),
    palette=tuple(voc_palette(21)),
)

#: CamVid, 11-class SegNet version; annotation value 11 ("Unlabelled") becomes 255.
CAMVID = ClassSet(
    name="camvid",
    class_names=(
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
        "Car", "Pedestrian", "Bicyclist",
    ),
    # The customary CamVid colours (SegNet-tutorial / CamVid's label_colors.txt).
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
        (0, 128, 192),
    ),
    void_color=(0, 0, 0),
)

#: ISBI 2012 EM membranes: 0 = cell interior, 1 = membrane.
ISBI2012 = ClassSet(
    name="isbi2012",
    class_names=("cell interior", "membrane"),
    palette=((0, 0, 0), (255, 255, 255)),
    void_color=(255, 0, 0),
)

#: ``synthetic_shapes``, the drawn quickstart dataset: shapes and thin lines on a textured
#: background; a 1-pixel void ring (255) surrounds each shape.
SYNTHETIC_SHAPES = ClassSet(
    name="synthetic_shapes",
    class_names=("background", "disc", "box", "triangle", "line"),
    palette=((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25)),
)

#: Oxford-IIIT Pet trimaps as two classes: 1 (pet) -> 1, 2 (background) -> 0, 3 (border) -> 255.
OXFORD_IIIT_PET = ClassSet(
    name="oxford_iiit_pet",
    class_names=("background", "pet"),
    palette=((0, 0, 0), (128, 0, 0)),
)

#: Cityscapes' 19 evaluation classes (train ids 0..18, cityscapesScripts' labels.py), its colours.
CITYSCAPES = ClassSet(
    name="cityscapes",
    class_names=(
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
        "motorcycle", "bicycle",
    ),
    palette=(
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
        (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
        (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
        (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ),
    void_color=(0, 0, 0),
)

CLASS_SETS: dict[str, ClassSet] = {
    c.name: c for c in (VOC, CAMVID, ISBI2012, SYNTHETIC_SHAPES, OXFORD_IIIT_PET, CITYSCAPES)
}


def get_class_set(name: str) -> ClassSet:
    """Return a built-in class set by name (``voc``, ``camvid``, ``isbi2012``,
    ``synthetic_shapes``, ``oxford_iiit_pet``, ``cityscapes``)."""
    try:
        return CLASS_SETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown class set {name!r}; expected one of {sorted(CLASS_SETS)}."
        ) from None


def resolve_class_set(value) -> ClassSet | None:
    """A class set from a :class:`ClassSet`, a built-in name or a ``class_set.json`` file.

    What ``--class-set NAME|FILE.json`` accepts; ``None`` stays ``None``.

    Raises:
        FileNotFoundError: A ``.json`` path that does not exist.
        ValueError: An unknown name.

    Example:
        >>> resolve_class_set("camvid").num_classes
        11
    """
    if value is None or isinstance(value, ClassSet):
        return value
    value = os.fspath(value)
    if value.endswith(".json"):
        path = Path(value)
        if not path.exists():
            raise FileNotFoundError(f"Class set file {value!r} does not exist.")
        try:
            return ClassSet.from_json(path.read_bytes().decode("utf-8"))
        except ValueError as exc:  # not UTF-8, not JSON, not a class set
            raise ValueError(f"Class set file {value!r} cannot be read ({exc}); expected "
                             "the class_set.json a run folder holds.") from None
    return get_class_set(value)


def class_set_from_info(info) -> ClassSet:
    """The class set of a pixelwise ``tfds.core.DatasetInfo``."""
    return ClassSet.from_metadata(info.metadata or {})


__all__: Sequence[str] = [
    "ClassSet", "VOC", "CAMVID", "ISBI2012", "SYNTHETIC_SHAPES", "OXFORD_IIIT_PET", "CITYSCAPES",
    "IGNORE_LABEL", "VOID_COLOR", "voc_palette", "CLASS_SETS", "get_class_set", "resolve_class_set",
    "class_set_from_info",
]
