"""Reading the ISBI 2012 training volume, as TIFF stacks or as PNG slices.

The challenge distributes 30 serial sections (512×512, 8-bit grayscale) as two
30-page TIFF stacks, ``train-volume.tif`` and ``train-labels.tif``; copies of it
often come as one PNG per slice, ``image/N.png`` and ``label/N.png``. In both,
labels are 0 for membrane and 255 for cell interior; pixelwise stores
1 = membrane, 0 = cell interior (:data:`ISBI2012`).

Example:
    >>> source = find_isbi_source(epath.Path("../shared/datasets/isbi2012"))
    >>> source.layout, source.num_slices()
    ('png', 30)
"""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
from etils import epath
from PIL import Image, ImageSequence

from pixelwise.datasets.common import InvalidExampleError, decode_image, read_bytes

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


def read_tiff_stack(path: epath.Path) -> list[np.ndarray]:
    """All pages of a multi-page TIFF as 8-bit grayscale ``(H, W)`` arrays.

    Raises:
        ValueError: the file cannot be decoded as a TIFF stack.
    """
    try:
        with Image.open(io.BytesIO(read_bytes(path))) as stack:
            return [_gray_page(page, f"{path.name} page {i}")
                    for i, page in enumerate(ImageSequence.Iterator(stack))]
    except InvalidExampleError as exc:
        raise ValueError(f"Cannot read {path}: {exc}.") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ValueError(
            f"Expected {path} to be a multi-page 8-bit grayscale TIFF stack; could not decode it "
            f"({type(exc).__name__}: {exc}). Replace it with the challenge's original file."
        ) from None


@dataclasses.dataclass(frozen=True)
class IsbiSource:
    """Where the training volume lives: ``layout`` is ``"tiff"`` or ``"png"``."""

    root: epath.Path
    layout: str

    def num_slices(self) -> int:
        """Slices available: pages of the image stack, or the highest ``image/N.png`` + 1."""
        if self.layout == "tiff":
            with Image.open(io.BytesIO(read_bytes(self.root / TIFF_IMAGES))) as stack:
                return getattr(stack, "n_frames", 1)
        indices = [int(p.stem) for p in (self.root / "image").glob("*.png")
                   if re.fullmatch(r"\d+", p.stem)]
        return max(indices) + 1 if indices else 0

    def examples(self, indices):
        """Yield ``(index, filename, image (H, W, 1), label (H, W, 1)  or InvalidExampleError)``.

        The error is yielded, not raised, so the builder can skip that slice and go on.
        """
        if self.layout == "tiff":
            images = read_tiff_stack(self.root / TIFF_IMAGES)
            labels = read_tiff_stack(self.root / TIFF_LABELS)
        for index in indices:
            try:
                if self.layout == "tiff":
                    filename = f"{TIFF_IMAGES}:{index}"
                    if index >= len(images):
                        raise InvalidExampleError(f"{TIFF_IMAGES} has no page {index} ({len(images)} pages)")
                    if index >= len(labels):
                        raise InvalidExampleError(f"{TIFF_LABELS} has no page {index} ({len(labels)} pages)")
                    image = images[index][..., np.newaxis]
                    label = label_from_challenge(labels[index], f"{TIFF_LABELS} page {index}")
                else:
                    filename = f"{index}.png"
                    label_path = self.root / "label" / filename
                    image, _ = decode_image(self.root / "image" / filename, channels=1)
                    raw = Image.open(io.BytesIO(read_bytes(label_path)))
                    label = label_from_challenge(_gray_page(raw, f"label/{filename}"), f"label/{filename}")
                if image.shape[:2] != label.shape[:2]:
                    raise InvalidExampleError(
                        f"image is {image.shape[1]}x{image.shape[0]} (WxH) but label is "
                        f"{label.shape[1]}x{label.shape[0]}"
                    )
            except InvalidExampleError as exc:
                yield index, None, None, exc
                continue
            yield index, filename, image, label


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
