"""Tiny archives with the real file layout of TFDS' ``oxford_iiit_pet`` and ``cityscapes``.

Built from NumPy arrays (the ground truth) and written through PIL, so tests build TFDS'
real builders from them: ``oxford_iiit_pet`` downloads ``images.tar.gz`` and
``annotations.tar.gz`` (served from 127.0.0.1 by the test), ``cityscapes`` reads
``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` from its manual dir.

Usage::

    pets = write_oxford_pet_archives(tmp_path / "pets")
    pets.trimaps["train"]["beagle_21.jpg"]      # (H, W) uint8 trimap: 1 pet, 2 background, 3 border
    pets.sha256["images.tar.gz"], pets.sizes["images.tar.gz"]
    city = write_cityscapes_zips(tmp_path / "manual")
    city.label_ids["val"]["lindau_000001_000019"]  # (1024, 2048) uint8 label ids
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

#: (image name, class id 1..37, species 1 cat / 2 dog) per split, as in trainval.txt / test.txt.
PET_LISTS = {
    "train": [("Abyssinian_101", 1, 1), ("beagle_21", 11, 2), ("pug_52", 26, 2)],
    "test": [("Bengal_44", 6, 1), ("samoyed_7", 30, 2)],
}
#: Cityscapes' images are 1024x2048 (the TFDS feature's fixed shape).
CITYSCAPES_SHAPE = (1024, 2048)
CITYSCAPES_IMAGES = {"train": ["aachen_000000_000019"], "val": ["lindau_000001_000019"],
                     "test": ["berlin_000002_000019"]}


def _encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@dataclasses.dataclass
class PetArchives:
    root: Path
    trimaps: dict[str, dict[str, np.ndarray]]
    sha256: dict[str, str]
    sizes: dict[str, int]


def _trimap(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    trimap = np.full((height, width), 2, np.uint8)
    y, x = rng.integers(4, height // 2), rng.integers(4, width // 2)
    trimap[y - 2:y + 14, x - 2:x + 14] = 3  # the border around the pet
    trimap[y:y + 12, x:x + 12] = 1
    return trimap


def write_oxford_pet_archives(root: Path, seed: int = 0) -> PetArchives:
    """``images.tar.gz`` (``images/*.jpg``) and ``annotations.tar.gz`` (``annotations/``
    ``trainval.txt``, ``test.txt``, ``trimaps/*.png``, ``xmls/*.xml`` for trainval) in ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    trimaps: dict[str, dict[str, np.ndarray]] = {}
    with tarfile.open(root / "images.tar.gz", "w:gz") as images, \
            tarfile.open(root / "annotations.tar.gz", "w:gz") as annotations:
        for split, entries in PET_LISTS.items():
            lines = []
            for index, (name, class_id, species) in enumerate(entries):
                height, width = 40 + 4 * index, 48 + 2 * index
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                _add(images, f"images/{name}.jpg", _encoded(image, "JPEG", quality=95))
                trimap = _trimap(rng, height, width)
                _add(annotations, f"annotations/trimaps/{name}.png", _encoded(trimap, "PNG"))
                trimaps.setdefault(split, {})[f"{name}.jpg"] = trimap
                lines.append(f"{name} {class_id} {species} 1")
                if split == "train":  # only trainval images have head boxes
                    _add(annotations, f"annotations/xmls/{name}.xml", (
                        f"<annotation><size><width>{width}</width><height>{height}</height></size>"
                        "<object><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>21</ymax>"
                        "</bndbox></object></annotation>").encode())
            list_name = "trainval.txt" if split == "train" else "test.txt"
            _add(annotations, f"annotations/{list_name}", "\n".join(lines).encode() + b"\n")
    names = ("images.tar.gz", "annotations.tar.gz")
    return PetArchives(
        root, trimaps,
        sha256={n: hashlib.sha256((root / n).read_bytes()).hexdigest() for n in names},
        sizes={n: (root / n).stat().st_size for n in names},
    )


@dataclasses.dataclass
class CityscapesZips:
    manual_dir: Path
    label_ids: dict[str, dict[str, np.ndarray]]


def write_cityscapes_zips(manual_dir: Path, seed: int = 0) -> CityscapesZips:
    """The two zips of ``cityscapes/semantic_segmentation`` in ``manual_dir``: one 1024x2048
    image per split; its labelIds PNG holds every label id 0..33 in bands, plus 255 (the
    licence plate's -1 as written by cityscapesScripts)."""
    rng = np.random.default_rng(seed)
    manual_dir.mkdir(parents=True, exist_ok=True)
    label_ids: dict[str, dict[str, np.ndarray]] = {}
    height, width = CITYSCAPES_SHAPE
    with zipfile.ZipFile(manual_dir / "leftImg8bit_trainvaltest.zip", "w") as images, \
            zipfile.ZipFile(manual_dir / "gtFine_trainvaltest.zip", "w") as labels:
        for split, ids in CITYSCAPES_IMAGES.items():
            for image_id in ids:
                city = image_id.split("_")[0]
                values = np.append(np.arange(34), 255).astype(np.uint8)
                band = rng.permutation(values)
                # Bands of constant ids compress to a few KiB even at 1024x2048.
                row = np.repeat(band, -(-width // len(band)))[:width]
                label = np.tile(row, (height, 1))
                image = np.zeros((height, width, 3), np.uint8)
                image[..., 0] = label
                images.writestr(f"leftImg8bit/{split}/{city}/{image_id}_leftImg8bit.png",
                                _encoded(image, "PNG"))
                labels.writestr(f"gtFine/{split}/{city}/{image_id}_gtFine_labelIds.png",
                                _encoded(label, "PNG"))
                label_ids.setdefault(split, {})[image_id] = label
    return CityscapesZips(manual_dir, label_ids)
