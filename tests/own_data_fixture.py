"""Small but real annotation-tool exports for tests: a CVAT "Segmentation mask 1.1" export and
images/ + masks/ folders, each with broken examples of every kind a build must skip.

Labels are drawn with NumPy first and then written through PIL in the export's encoding
(RGB colours, palette or grayscale indices), so ``export.labels`` is an independent ground
truth of what the dataset must hold: ``export.labels[filename]`` is ``(H, W)`` uint8 class
ids, 255 = void. ``export.broken`` maps each broken example's id to a word of its skip
reason (a substring of the reason the build reports).

Usage::

    export = write_images_masks(tmp_path / "cells", encoding="index")
    export = write_cvat(tmp_path / "task", zipped=True)
    export.path, export.class_names, export.labels, export.broken, export.splits
"""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ("background", "cell", "nucleus")
COLOURS = ((0, 0, 0), (250, 50, 83), (36, 120, 255))
#: Colour of the void row of class_dict.csv (Kaggle CamVid writes one in the middle).
VOID_ROW_COLOUR = (128, 128, 128)


@dataclasses.dataclass
class Export:
    """What a test knows of an export it wrote."""

    path: Path
    class_names: tuple[str, ...]
    labels: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    broken: dict[str, str] = dataclasses.field(default_factory=dict)
    #: {split: [example id, ...]} of the good examples where the export fixes the split.
    splits: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _ids(rng: np.random.Generator, height: int, width: int, num_classes: int) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    for class_id in range(1, num_classes):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        ids[y:y + rng.integers(4, 12), x:x + rng.integers(4, 12)] = class_id
    ids[:, 0] = 255  # a void column, as a tool's "ignore" brush
    return ids


def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(array: np.ndarray, path: Path, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


def _save_palette(ids: np.ndarray, path: Path) -> None:
    pil = Image.fromarray(ids, mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(COLOURS)] = COLOURS
    pil.putpalette(palette.reshape(-1).tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path)


def _colour(ids: np.ndarray, colours, void=(224, 224, 192)) -> np.ndarray:
    table = np.zeros((256, 3), np.uint8)
    table[: len(colours)] = colours
    table[255] = void
    return table[ids]


def write_images_masks(root: Path, encoding: str = "index", split_folders: bool = False,
                       num_good: int = 10, seed: int = 0, zipped: bool = False,
                       broken: bool = True) -> Export:
    """An images/ + masks/ export: ``encoding`` "index" (classes.txt, grayscale and palette
    PNGs), or "color" (class_dict.csv with a void row, RGB PNGs); with ``broken``, one
    example of each kind a build skips in the training folder."""
    rng = np.random.default_rng(seed)
    export = Export(root, CLASS_NAMES)
    void = VOID_ROW_COLOUR if encoding == "color" else (224, 224, 192)
    if encoding == "index":
        (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
    else:
        rows = [f"{n},{r},{g},{b}" for n, (r, g, b) in zip(CLASS_NAMES, COLOURS)]
        rows.insert(1, "Void,{},{},{}".format(*VOID_ROW_COLOUR))  # ids after it move up
        root.mkdir(parents=True, exist_ok=True)
        (root / "class_dict.csv").write_text("name,r,g,b\n" + "\n".join(rows) + "\n")
    folders = {"train": "train", "val": "validation"} if split_folders else {"": None}

    def write_mask(ids, path, index):
        if encoding == "color":
            _save(_colour(ids, COLOURS, void), path)
        elif index % 2:
            _save_palette(ids, path)
        else:
            _save(ids, path)  # 8-bit grayscale

    for folder, split in folders.items():
        base = root / folder if folder else root
        count = num_good if split != "validation" else max(2, num_good // 3)
        for index in range(count):
            stem = f"{folder or 'img'}_{index:03d}"
            height, width = 32 + 2 * index, 40 + index
            ids = _ids(rng, height, width, len(CLASS_NAMES))
            image = _image(rng, height, width)
            if index % 3 == 0:
                _save(image, base / "images" / f"{stem}.png")
                export.images[f"{stem}.png"] = image
                name = f"{stem}.png"
            else:
                _save(image, base / "images" / f"{stem}.jpg", quality=95)
                name = f"{stem}.jpg"
            write_mask(ids, base / "masks" / f"{stem}.png", index)
            export.labels[name] = ids
            if split:
                export.splits.setdefault(split, []).append(stem)
        if split == "validation" or not broken:
            continue
        # Broken examples, one of each kind, in the training folder.
        ids = _ids(rng, 32, 40, len(CLASS_NAMES))
        _save(_image(rng, 32, 40), base / "images" / "no_mask.jpg")
        export.broken["no_mask"] = "image without a mask"
        write_mask(ids, base / "masks" / "no_image.png", 0)
        export.broken["no_image"] = "mask without an image"
        _save(_image(rng, 32, 40), base / "images" / "wide.jpg")
        write_mask(np.zeros((32, 48), np.uint8), base / "masks" / "wide.png", 0)
        export.broken["wide"] = "is 40x32 (WxH) but mask"
        (base / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        write_mask(ids, base / "masks" / "corrupt.png", 0)
        export.broken["corrupt"] = "cannot decode image"
        _save(_image(rng, 32, 40), base / "images" / "twice.jpg")
        _save(_image(rng, 32, 40), base / "images" / "twice.png")
        write_mask(ids, base / "masks" / "twice.png", 0)
        export.broken["twice"] = "duplicate stem"
        _save(_image(rng, 32, 40), base / "images" / "bad_value.jpg")
        if encoding == "color":
            odd = _colour(ids, COLOURS, void)
            odd[3:5, 3:5] = (7, 7, 7)
            _save(odd, base / "masks" / "bad_value.png")
            export.broken["bad_value"] = "colour(s) outside"
        else:
            odd = ids.copy()
            odd[3:5, 3:5] = 7
            _save(odd, base / "masks" / "bad_value.png")
            export.broken["bad_value"] = "mask holds class index 7 (4 px)"
    if zipped:
        export.path = _zip(root)
    return export


def write_cvat(root: Path, zipped: bool = False, labelmap: bool = True, seed: int = 1,
               index_masks: bool = False, only_default: bool = False) -> Export:
    """A CVAT "Segmentation mask 1.1" export: subsets train, val and default; RGB masks in the
    labelmap colours (VOC's without labelmap.txt), or with ``index_masks`` the good examples'
    masks as 1-channel indices (palette and grayscale PNGs); broken examples in ``default``.
    With ``only_default``, every example is in ``default`` (a task whose images were never
    assigned a subset, CVAT's plain export)."""
    rng = np.random.default_rng(seed)
    class_names = CLASS_NAMES if labelmap else ("background", "aeroplane", "bicycle")
    colours = COLOURS if labelmap else ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    export = Export(root, class_names)
    if labelmap:
        lines = ["# label:color_rgb:parts:actions"]
        lines += [f"{n}:{r},{g},{b}::" for n, (r, g, b) in zip(class_names, colours)]
        root.mkdir(parents=True, exist_ok=True)
        (root / "labelmap.txt").write_text("\n".join(lines) + "\n")
    lists = {"train": [], "val": [], "default": []}
    for subset, count in (("train", 6), ("val", 3), ("default", 3)):
        split = "default" if only_default else {"val": "validation"}.get(subset, subset)
        for index in range(count):
            stem = f"{subset}_frame_{index:06d}"
            height, width = 30 + index, 44 - index
            ids = _ids(rng, height, width, 3)
            _save(_image(rng, height, width), root / "JPEGImages" / f"{stem}.jpg", quality=95)
            mask = root / "SegmentationClass" / f"{stem}.png"
            if not index_masks:
                _save(_colour(ids, colours), mask)
            elif index % 2:
                _save_palette(ids, mask)
            else:
                _save(ids, mask)
            export.labels[f"{stem}.jpg"] = ids
            export.splits.setdefault(split, []).append(stem)
            lists["default" if only_default else subset].append(stem)
    ids = _ids(rng, 30, 40, 3)
    odd = _colour(ids, colours)
    odd[0, 5] = (1, 2, 3)
    _save(_image(rng, 30, 40), root / "JPEGImages" / "odd_colour.jpg")
    _save(odd, root / "SegmentationClass" / "odd_colour.png")
    export.broken["odd_colour"] = "colour(s) outside"
    _save(_image(rng, 30, 40), root / "JPEGImages" / "unlabelled.jpg")
    export.broken["unlabelled"] = "image without a mask"
    _save(_colour(ids, colours), root / "SegmentationClass" / "imageless.png")
    export.broken["imageless"] = "mask without an image"
    _save(_image(rng, 30, 40), root / "JPEGImages" / "tall.jpg")
    _save(_colour(np.zeros((36, 40), np.uint8), colours), root / "SegmentationClass" / "tall.png")
    export.broken["tall"] = "is 40x30 (WxH) but mask"
    _save(_image(rng, 30, 40), root / "JPEGImages" / "truncated.jpg")
    data = _encoded(_colour(ids, colours))
    (root / "SegmentationClass" / "truncated.png").write_bytes(data[: len(data) // 2])
    export.broken["truncated"] = "cannot decode mask"
    _save(_image(rng, 30, 40), root / "JPEGImages" / "double.jpg")
    _save(_image(rng, 30, 40), root / "JPEGImages" / "double.png")
    _save(_colour(ids, colours), root / "SegmentationClass" / "double.png")
    export.broken["double"] = "duplicate stem"
    lists["default"] += list(export.broken) + [lists["default"][0]]  # and one stem listed twice
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    for subset, stems in lists.items():
        if stems:
            (sets / f"{subset}.txt").write_text("".join(f"{s}\n" for s in stems))
    (root / "SegmentationObject").mkdir()  # CVAT writes instance masks too; unused
    if zipped:
        export.path = _zip(root)
    return export


def _encoded(rgb: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(root: Path) -> Path:
    """Zip ``root``'s contents at the archive's top level (as CVAT does); remove the folder."""
    path = root.with_suffix(".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(root).as_posix())
    shutil.rmtree(root)
    return path
