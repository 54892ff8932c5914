"""Reading the ISBI 2012 training volume, as TIFF stacks or as PNG slices.

The challenge distributes 30 serial sections (512×512, 8-bit grayscale) as two
30-page TIFF stacks, ``train-volume.tif`` and ``train-labels.tif``; copies of it
often come as one PNG per slice, ``image/N.png`` and ``label/N.png``. In both,
labels are 0 for membrane and 255 for cell interior; pixelwise stores
1 = membrane, 0 = cell interior (:data:`ISBI2012`).

Each slice is one :class:`~pixelwise.datasets.split_plan.ExamplePair` (for the
stacks: both stack files and the page), read by :func:`load_slice`.

Example (reads ``../shared/datasets/isbi2012``; skipped where it is absent):
    >>> source = find_isbi_source(shared_dataset("isbi2012"))
    >>> source.layout, source.num_slices()
    ('png', 30)
    >>> source.pair(3).filename
    '3.png'
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from etils import epath
from PIL import Image

from pixelwise.datasets.decoding import (
    InvalidExampleError, decode_image, open_image, read_bytes,
)
from pixelwise.datasets.split_plan import ExamplePair

TIFF_IMAGES = "train-volume.tif"
TIFF_LABELS = "train-labels.tif"
#: Challenge label values: 0 = membrane, 255 = cell interior.
SOURCE_MEMBRANE, SOURCE_INTERIOR = 0, 255
#: pixelwise split → slice indices. The challenge's test labels were never published,
#: so validation is the last five training slices.
SPLIT_SLICES: dict[str, range] = {"train": range(0, 25), "validation": range(25, 30)}
NUM_SLICES = 30


def label_from_challenge(raw: np.ndarray, source: str) -> np.ndarray:
    """Challenge label (0 membrane, 255 interior) → pixelwise ids (1 membrane, 0 interior).

    Args:
        raw: uint8 array ``(H, W)``.
        source: Where the label came from, for the error message.

    Returns:
        uint8 array ``(H, W, 1)``.

    Raises:
        InvalidExampleError: values other than 0 and 255 (e.g. a label saved as JPEG).

    Example:
        >>> label_from_challenge(np.array([[0, 255]], np.uint8), "x")[..., 0].tolist()
        [[1, 0]]
    """
    raw = np.asarray(raw)
    bad = (raw != SOURCE_MEMBRANE) & (raw != SOURCE_INTERIOR)
    if bad.any():
        values, counts = np.unique(raw[bad], return_counts=True)
        listed = ", ".join(f"{v} ({c} px)" for v, c in list(zip(values.tolist(), counts.tolist()))[:5])
        raise InvalidExampleError(
            f"{source}: expected label values 0 (membrane) and 255 (interior) only, received "
            f"{listed}; re-export the label losslessly (PNG/TIFF, not JPEG)"
        )
    return (raw == SOURCE_MEMBRANE).astype(np.uint8)[..., np.newaxis]


def _gray_page(page: Image.Image, source: str) -> np.ndarray:
    """An 8-bit grayscale (H, W) array from a PIL image or TIFF page."""
    if page.mode == "L":
        return np.asarray(page, dtype=np.uint8)
    if page.mode in ("1", "P", "RGB"):
        return np.asarray(page.convert("L"), dtype=np.uint8)
    raise InvalidExampleError(
        f"{source}: unsupported image mode {page.mode!r}; expected 8-bit grayscale"
    )


def _open_stack(path: epath.Path):
    """``(file, PIL image)`` of a TIFF stack, as ValueError when it cannot be decoded."""
    stream = epath.Path(path).open("rb")
    try:
        return stream, Image.open(stream)
    except Exception as exc:  # PIL raises many types for corrupt files
        stream.close()
        raise ValueError(
            f"Expected {path} to be a multi-page 8-bit grayscale TIFF stack; could not decode it "
            f"({type(exc).__name__}: {exc}). Replace it with the challenge's original file."
        ) from None


def count_pages(path: epath.Path) -> int:
    """Pages of a TIFF stack.

    Raises:
        ValueError: the file cannot be decoded as a TIFF stack.
    """
    stream, stack = _open_stack(path)
    with stream, stack:
        return getattr(stack, "n_frames", 1)


def read_tiff_page(path: epath.Path, page: int) -> np.ndarray:
    """Page ``page`` of a multi-page TIFF as an 8-bit grayscale ``(H, W)`` array.

    Only that page is decoded (PIL seeks to it).

    Raises:
        InvalidExampleError: the stack has no such page, or the page cannot be decoded.
    """
    name = epath.Path(path).name
    try:
        stream, stack = _open_stack(path)
    except ValueError as exc:
        raise InvalidExampleError(str(exc)) from None
    with stream, stack:
        pages = getattr(stack, "n_frames", 1)
        if page >= pages:
            raise InvalidExampleError(f"{name} has no page {page} ({pages} pages)")
        try:
            stack.seek(page)
            stack.load()
        except Exception as exc:  # PIL raises many types for corrupt files
            raise InvalidExampleError(
                f"cannot decode {name} page {page}: {type(exc).__name__}: {exc}") from None
        return _gray_page(stack, f"{name} page {page}")


@dataclasses.dataclass(frozen=True)
class IsbiSource:
    """Where the training volume lives: ``layout`` is ``"tiff"`` or ``"png"``."""

    root: epath.Path
    layout: str

    def num_slices(self) -> int:
        """Slices available: pages of the image stack, or the highest ``image/N.png`` + 1.

        Raises:
            ValueError: a TIFF stack (images or labels) cannot be decoded.
        """
        if self.layout == "tiff":
            count_pages(self.root / TIFF_LABELS)  # a broken label stack fails the build here
            return count_pages(self.root / TIFF_IMAGES)
        indices = [int(p.stem) for p in (self.root / "image").glob("*.png")
                   if re.fullmatch(r"\d+", p.stem)]
        return max(indices) + 1 if indices else 0

    def pair(self, index: int) -> ExamplePair:
        """Slice ``index`` as a pair; its key is the slice index, so both layouts give the same keys."""
        key = f"{index:02d}"
        if self.layout == "tiff":
            return ExamplePair(key, self.root / TIFF_IMAGES, self.root / TIFF_LABELS,
                               f"{TIFF_IMAGES}:{index}", page=index)
        filename = f"{index}.png"
        return ExamplePair(key, self.root / "image" / filename, self.root / "label" / filename,
                           filename)


def load_slice(pair: ExamplePair) -> tuple[np.ndarray, np.ndarray]:
    """``(image (H, W, 1), label (H, W, 1))`` of one slice, labels in pixelwise's ids.

    Raises:
        InvalidExampleError: a file or page is missing or undecodable, the label holds
            values other than 0 and 255, or the sizes differ.
    """
    if pair.page is not None:
        image = read_tiff_page(pair.image_path, pair.page)[..., np.newaxis]
        where = f"{TIFF_LABELS} page {pair.page}"
        raw = read_tiff_page(pair.label_path, pair.page)
    else:
        image, _ = decode_image(pair.image_path, channels=1)
        where = f"label/{pair.filename}"
        raw = _gray_page(open_image(read_bytes(pair.label_path), where), where)
    label = label_from_challenge(raw, where)
    if image.shape[:2] != label.shape[:2]:
        raise InvalidExampleError(
            f"image is {image.shape[1]}x{image.shape[0]} (WxH) but label is "
            f"{label.shape[1]}x{label.shape[0]}"
        )
    return image, label


def find_isbi_source(manual_dir: epath.PathLike) -> IsbiSource:
    """Find the training volume in ``manual_dir`` (or its ``isbi2012/`` subfolder).

    TIFF stacks are preferred when both forms are present (they are the
    challenge's original files).

    Raises:
        FileNotFoundError: neither ``train-volume.tif`` + ``train-labels.tif`` nor
            ``image/`` + ``label/`` is found, or only one TIFF of the pair is.
    """
    manual_dir = epath.Path(manual_dir)
    for root in (manual_dir, manual_dir / "isbi2012"):
        has_volume, has_labels = (root / TIFF_IMAGES).exists(), (root / TIFF_LABELS).exists()
        if has_volume and has_labels:
            return IsbiSource(root, "tiff")
        if has_volume != has_labels:
            present, missing = (TIFF_IMAGES, TIFF_LABELS) if has_volume else (TIFF_LABELS, TIFF_IMAGES)
            raise FileNotFoundError(
                f"Found {root / present} but not {root / missing}; put both challenge TIFF stacks "
                "in the manual directory."
            )
        if (root / "image").is_dir() and (root / "label").is_dir():
            return IsbiSource(root, "png")
    raise FileNotFoundError(
        f"Expected the ISBI 2012 training volume in {manual_dir}: either the challenge's TIFF "
        f"stacks {TIFF_IMAGES} + {TIFF_LABELS}, or PNG slices image/0.png..image/29.png + "
        "label/0.png..label/29.png; found neither. See the builder's MANUAL_DOWNLOAD_INSTRUCTIONS."
    )
