"""A small but real PASCAL VOC-layout dataset for tests.

``write_voc_fixture(root, year)`` writes real JPEG images, real palette PNG labels
(VOC colour map, index = class id, void borders of index 255), one RGB-encoded
label, the ``ImageSets/Segmentation`` lists and the official tar archives
(``VOCtrainval_06-Nov-2007.tar`` + ``VOCtest_06-Nov-2007.tar`` for 2007,
``VOCtrainval_11-May-2012.tar`` for 2012), each holding ``VOCdevkit/VOC{year}/...``
exactly like the real ones. Images are 40–72 px.

Each split also lists broken examples, one of each kind a builder must skip:

==============  ==========================================  ====================
kind            what is wrong                               2007 split (2012)
==============  ==========================================  ====================
missing_label   no ``SegmentationClass/<id>.png``           train (train)
bad_colors      RGB label with a colour outside the palette train (train)
bad_image       ``JPEGImages/<id>.jpg`` is not an image     validation (validation)
bad_label       label PNG is truncated                      validation (validation)
size_mismatch   label is 8 px wider than the image          test (validation)
==============  ==========================================  ====================

Usage::

    from voc_fixture import write_voc_fixture
    fixture = write_voc_fixture(tmp_path / "manual", year=2007)
    fixture.tars            # {"trainval": Path(".../VOCtrainval_06-Nov-2007.tar"), "test": ...}
    fixture.devkit          # Path(".../VOCdevkit") (extracted copy, when extracted=True)
    fixture.labels["train"]["2007_000001"]   # (H, W, 1) uint8 expected class ids, 255 = void
    fixture.skipped["train"]                 # {"2007_000901": "missing_label", ...}
    fixture.num_examples                     # {"train": 4, "validation": 3, "test": 2}

Labels are generated from NumPy and written through PIL, so they are an
independent ground truth for whatever decodes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

#: Official archive names, per year and part.
TAR_NAMES = {
    2007: {"trainval": "VOCtrainval_06-Nov-2007.tar", "test": "VOCtest_06-Nov-2007.tar"},
    2012: {"trainval": "VOCtrainval_11-May-2012.tar"},
}

#: VOC's void colour (palette index 255).
VOID_COLOR = (224, 224, 192)

# split name in the builder -> (VOC list name, archive part)
_SPLITS = {
    2007: {"train": ("train", "trainval"), "validation": ("val", "trainval"), "test": ("test", "test")},
    2012: {"train": ("train", "trainval"), "validation": ("val", "trainval")},
}
# good examples per split: (height, width, rgb_label)
_GOOD = {
    2007: {
        "train": [(40, 56, False), (48, 64, True), (64, 48, False), (44, 44, False)],
        "validation": [(48, 72, False), (56, 40, False), (40, 40, False)],
        "test": [(52, 60, False), (40, 64, False)],
    },
    2012: {
        "train": [(48, 56, False), (40, 64, True), (56, 48, False)],
        "validation": [(44, 52, False), (64, 40, False)],
    },
}
_BROKEN = {
    2007: {"train": ["missing_label", "bad_colors"], "validation": ["bad_image", "bad_label"],
           "test": ["size_mismatch"]},
    2012: {"train": ["missing_label", "bad_colors"],
           "validation": ["bad_image", "bad_label", "size_mismatch"]},
}


@dataclasses.dataclass
class VocFixture:
    """What :func:`write_voc_fixture` wrote and what a correct builder must produce.

    Attributes:
        root: The folder written to (use it as ``manual_dir``).
        year: 2007 or 2012.
        tars: ``{"trainval": path, "test": path}`` (2012: only ``trainval``), the
            archives with their official names, directly in ``root``.
        devkit: ``root / "VOCdevkit"`` when ``extracted=True``, else ``None``.
        labels: ``{split: {id: (H, W, 1) uint8}}`` expected label of every good
            example (class ids 0..20, 255 = void).
        image_shapes: ``{split: {id: (H, W)}}`` of the good examples.
        skipped: ``{split: {id: kind}}`` of the broken examples (kinds above).
        sha256: ``{tar name: hex digest}``; ``sizes``: ``{tar name: bytes}``.
    """

    root: Path
    year: int
    tars: dict[str, Path]
    devkit: Path | None
    labels: dict[str, dict[str, np.ndarray]]
    image_shapes: dict[str, dict[str, tuple[int, int]]]
    skipped: dict[str, dict[str, str]]
    sha256: dict[str, str]
    sizes: dict[str, int]

    @property
    def splits(self) -> list[str]:
        return list(self.labels)

    @property
    def num_examples(self) -> dict[str, int]:
        """Good examples per split: what the built dataset must hold."""
        return {split: len(ids) for split, ids in self.labels.items()}

    def checksums_tsv(self, base_url: str) -> str:
        """TFDS ``checksums.tsv`` lines for the tars served under ``base_url``."""
        return "".join(
            f"{base_url.rstrip('/')}/{name}\t{self.sizes[name]}\t{self.sha256[name]}\t{name}\n"
            for name in self.sha256
        )


def voc_colormap(n: int = 256) -> np.ndarray:
    """VOCdevkit's ``labelcolormap(n)`` as an ``(n, 3)`` uint8 array."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def _make_label(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Background with 2–3 rectangles of random classes, each with a 1–2 px void border."""
    label = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(2, 4)):
        h, w = rng.integers(8, height // 2), rng.integers(8, width // 2)
        y, x = rng.integers(2, height - h - 2), rng.integers(2, width - w - 2)
        border = int(rng.integers(1, 3))
        label[y - border: y + h + border, x - border: x + w + border] = 255
        label[y: y + h, x: x + w] = rng.integers(1, 21)
    return label


def _make_image(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """A smooth-ish RGB image loosely following the label (so models can learn a little)."""
    base = voc_colormap()[label].astype(np.float32)
    noise = rng.normal(0, 20, size=base.shape)
    return np.clip(base * 0.7 + 40 + noise, 0, 255).astype(np.uint8)


def _save_palette_png(path: Path, label: np.ndarray) -> None:
    image = Image.fromarray(label, mode="P")
    image.putpalette(voc_colormap().flatten().tolist())
    image.save(path, format="PNG")


def _save_rgb_png(path: Path, label: np.ndarray) -> None:
    colors = voc_colormap()
    colors[255] = VOID_COLOR
    Image.fromarray(colors[label], mode="RGB").save(path, format="PNG")


def _save_jpeg(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image, mode="RGB").save(path, format="JPEG", quality=90)


def write_voc_fixture(root, year: int = 2007, *, tars: bool = True, extracted: bool = False,
                      seed: int = 0) -> VocFixture:
    """Write a tiny VOC ``year`` segmentation dataset under ``root``.

    Args:
        root: Output folder (created). Tars go directly inside it; the extracted
            tree (``extracted=True``) goes to ``root/VOCdevkit``.
        year: 2007 (train/validation/test) or 2012 (train/validation).
        tars: Write the official tar archives (default True).
        extracted: Also leave the extracted ``VOCdevkit/`` folder (default False).
        seed: Random seed; the same seed writes the same labels.

    Returns:
        A :class:`VocFixture` describing the files and the expected build result.
    """
    if year not in TAR_NAMES:
        raise ValueError(f"Expected year 2007 or 2012, received {year!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + year)
    staging = {part: root / f".staging-{part}" for part in TAR_NAMES[year]}
    labels: dict[str, dict[str, np.ndarray]] = {}
    shapes: dict[str, dict[str, tuple[int, int]]] = {}
    skipped: dict[str, dict[str, str]] = {}
    lists: dict[tuple[str, str], list[str]] = {}
    counter = 0

    def voc_dir(part: str) -> Path:
        path = staging[part] / "VOCdevkit" / f"VOC{year}"
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path

    for split, (list_name, part) in _SPLITS[year].items():
        base = voc_dir(part)
        ids = lists.setdefault((part, list_name), [])
        labels[split], shapes[split], skipped[split] = {}, {}, {}
        for height, width, rgb_label in _GOOD[year][split]:
            counter += 1
            example_id = f"{year}_{counter:06d}"
            label = _make_label(rng, height, width)
            _save_jpeg(base / "JPEGImages" / f"{example_id}.jpg", _make_image(rng, label))
            save = _save_rgb_png if rgb_label else _save_palette_png
            save(base / "SegmentationClass" / f"{example_id}.png", label)
            labels[split][example_id] = label[..., np.newaxis]
            shapes[split][example_id] = (height, width)
            ids.append(example_id)
        for kind in _BROKEN[year][split]:
            counter += 1
            example_id = f"{year}_{900 + counter:06d}"
            label = _make_label(rng, 40, 48)
            image_path = base / "JPEGImages" / f"{example_id}.jpg"
            label_path = base / "SegmentationClass" / f"{example_id}.png"
            _save_jpeg(image_path, _make_image(rng, label))
            if kind == "missing_label":
                pass
            elif kind == "bad_colors":
                colors = voc_colormap()
                colors[255] = VOID_COLOR
                rgb = colors[label]
                rgb[:3, :3] = (255, 255, 255)  # the chapter's "undefined" colour is not VOC's
                Image.fromarray(rgb, mode="RGB").save(label_path, format="PNG")
            elif kind == "bad_image":
                _save_palette_png(label_path, label)
                image_path.write_bytes(b"this is not a JPEG file\n" * 4)
            elif kind == "bad_label":
                buffer = io.BytesIO()
                image = Image.fromarray(label, mode="P")
                image.putpalette(voc_colormap().flatten().tolist())
                image.save(buffer, format="PNG")
                label_path.write_bytes(buffer.getvalue()[:60])
            elif kind == "size_mismatch":
                _save_palette_png(label_path, np.pad(label, ((0, 0), (0, 8))))
            skipped[split][example_id] = kind
            ids.append(example_id)
        # Real lists are sorted; keep broken ids interleaved with good ones.
        ids.sort()

    for (part, list_name), ids in lists.items():
        path = voc_dir(part) / "ImageSets" / "Segmentation" / f"{list_name}.txt"
        path.write_text("".join(f"{i}\n" for i in ids))
    if year == 2007:
        # The trainval archive also lists trainval.txt, as the real one does.
        both = sorted(lists[("trainval", "train")] + lists[("trainval", "val")])
        (voc_dir("trainval") / "ImageSets" / "Segmentation" / "trainval.txt").write_text(
            "".join(f"{i}\n" for i in both)
        )

    tar_paths: dict[str, Path] = {}
    sha256: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for part, name in TAR_NAMES[year].items():
        if tars:
            path = root / name
            with tarfile.open(path, "w") as tar:
                tar.add(staging[part] / "VOCdevkit", arcname="VOCdevkit")
            data = path.read_bytes()
            tar_paths[part] = path
            sha256[name] = hashlib.sha256(data).hexdigest()
            sizes[name] = len(data)
    devkit = None
    if extracted:
        devkit = root / "VOCdevkit"
        for part in TAR_NAMES[year]:
            shutil.copytree(staging[part] / "VOCdevkit", devkit, dirs_exist_ok=True)
    for path in staging.values():
        shutil.rmtree(path)
    return VocFixture(root=root, year=year, tars=tar_paths, devkit=devkit, labels=labels,
                      image_shapes=shapes, skipped=skipped, sha256=sha256, sizes=sizes)
