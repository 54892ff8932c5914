"""Decoding the files of a segmentation dataset: images, and labels to class ids.

Label decoding is vectorised (:func:`decode_label`): palette PNGs give their
indices, 8-bit grayscale PNGs their values, RGB PNGs their colours looked up in
the class palette (plus the void colour). Whatever makes an example unusable
(missing file, undecodable, values outside the class set) raises
:class:`InvalidExampleError`, whose message is the reason a builder reports
when it skips the example (:mod:`pixelwise.datasets.segmentation_builder`).

Example:
    >>> from pixelwise.class_sets import VOC
    >>> rgb_to_ids(np.array([[[0, 0, 0], [128, 0, 0]]], np.uint8), VOC).tolist()
    [[0, 1]]
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from pixelwise.class_sets import ClassSet


class InvalidExampleError(ValueError):
    """An example that cannot be used (missing file, undecodable, size mismatch, bad colours).

    Builders catch it and turn it into a skipped example; its message is the reason.
    """


def read_bytes(path_or_bytes) -> bytes:
    """The bytes of a file given as bytes, a path (``tf.io.gfile``/``epath``) or a file object."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    if hasattr(path_or_bytes, "read"):
        return path_or_bytes.read()
    path = os.fspath(path_or_bytes)
    if not tf.io.gfile.exists(path):
        raise InvalidExampleError(f"file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def short_path(path) -> str:
    """The last two components of a path (``SegmentationClass/x.png``), for messages."""
    return "/".join(os.fspath(path).replace(os.sep, "/").split("/")[-2:])


def open_image(data: bytes, what: str) -> Image.Image:
    """Decode ``data`` with PIL; ``what`` ("image", "label") names it in the error.

    An image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (89 megapixels unless
    changed) is refused from its header, before it is decoded: a dataset example that size
    is a decompression bomb or a scan to tile first, and Pillow itself only refuses twice
    that.

    Raises:
        InvalidExampleError: the bytes are not a decodable image, or too many pixels.
    """
    try:
        image = Image.open(io.BytesIO(data))
        limit = Image.MAX_IMAGE_PIXELS
        if limit and image.width * image.height > limit:
            raise InvalidExampleError(
                f"{what} of {image.width}x{image.height} pixels is over the limit of "
                f"{limit / 1e6:.0f} megapixels (PIL.Image.MAX_IMAGE_PIXELS) for a dataset "
                "example; expected a photo-sized image. Downscale or tile it first.")
        image.load()
    except InvalidExampleError:
        raise
    except UnidentifiedImageError:
        raise InvalidExampleError(f"cannot decode {what}: not a recognised image file") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise InvalidExampleError(f"cannot decode {what}: {type(exc).__name__}: {exc}") from None
    return image


def decode_image(path_or_bytes, channels: int = 3) -> tuple[np.ndarray, Image.Image]:
    """Decode an image file to a ``(H, W, channels)`` uint8 array.

    Args:
        path_or_bytes: Encoded image (bytes), a path, or a file object.
        channels: 3 for RGB (grayscale/CMYK/palette images are converted), 1 for
            grayscale.

    Returns:
        ``(array, pil_image)``; the PIL image tells its original ``mode``/``format``.

    Raises:
        InvalidExampleError: the file is missing or cannot be decoded.

    Example:
        >>> array, _ = decode_image("VOCdevkit/VOC2007/JPEGImages/000032.jpg")  # doctest: +SKIP
    """
    if channels not in (1, 3):
        raise ValueError(f"Expected channels 1 or 3, received {channels}.")
    pil = open_image(read_bytes(path_or_bytes), "image")
    target = "RGB" if channels == 3 else "L"
    array = np.asarray(pil if pil.mode == target else pil.convert(target), dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels), pil


def _check_ids(ids: np.ndarray, class_set: ClassSet, source: str) -> np.ndarray:
    valid = np.zeros(256, dtype=bool)
    valid[: class_set.num_classes] = True
    if 0 <= class_set.ignore_label < 256:
        valid[class_set.ignore_label] = True
    bad = ~valid[ids]
    if bad.any():
        values, counts = np.unique(ids[bad], return_counts=True)
        listed = ", ".join(f"{v} ({c} px)" for v, c in list(zip(values, counts))[:5])
        raise InvalidExampleError(
            f"{source} label holds values outside the class set {class_set.name!r} "
            f"(expected 0..{class_set.num_classes - 1} or {class_set.ignore_label}): {listed}"
        )
    return ids


@functools.lru_cache(maxsize=8)
def _color_lookup(colors: tuple, ids: tuple) -> tuple[np.ndarray, int]:
    """A table over all 2**24 packed RGB colours -> id, and the value marking unknown colours.

    16 MiB, built once per class set: one gather per label instead of a search.
    """
    free = sorted(set(range(256)) - set(ids))
    dtype, unknown = (np.uint8, free[0]) if free else (np.uint16, 256)
    table = np.full(1 << 24, unknown, dtype=dtype)
    codes = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], dtype=np.uint32)
    table[codes] = np.asarray(ids, dtype=dtype)
    table.setflags(write=False)
    return table, unknown


def rgb_to_ids(rgb: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """Map an RGB label ``(H, W, 3)`` to class ids ``(H, W)`` by exact colour match.

    Palette colours give their class id, the void colour gives ``ignore_label``.
    Vectorised: colours are packed into one uint32 and looked up in a table over
    all 2**24 colours (cached per class set).

    Raises:
        InvalidExampleError: some pixels have a colour that is neither in the
            palette nor the void colour (the message lists up to five of them).

    Example:
        >>> from pixelwise.class_sets import VOC
        >>> rgb_to_ids(np.array([[[128, 0, 0], [224, 224, 192]]], np.uint8), VOC).tolist()
        [[1, 255]]
    """
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"Expected an RGB array (H, W, 3), received shape {rgb.shape}.")
    # The void colour goes first so that a class sharing it wins.
    colors = (tuple(class_set.void_color),) + tuple(class_set.palette)
    ids = (class_set.ignore_label,) + tuple(range(class_set.num_classes))
    table, unknown = _color_lookup(colors, ids)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    result = table[packed]
    found = result != unknown
    if not found.all():
        unknown_colors, counts = np.unique(packed[~found], return_counts=True)
        listed = ", ".join(
            f"({u >> 16 & 255}, {u >> 8 & 255}, {u & 255}) {c} px"
            for u, c in list(zip(unknown_colors.tolist(), counts.tolist()))[:5]
        )
        raise InvalidExampleError(
            f"RGB label holds {len(unknown_colors)} colour(s) outside the {class_set.name!r} "
            f"palette and void colour {class_set.void_color}: {listed}"
        )
    return result.astype(np.uint8)


def decode_label(
    path_or_bytes,
    class_set: ClassSet,
    value_map: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Decode a label image to a ``(H, W, 1)`` uint8 array of class ids.

    * palette PNG (PIL mode ``"P"``): its indices, as-is (VOC's format: index =
      class id, 255 = void). Never its colours and never its luminance.
    * 8-bit grayscale (``"L"``) or 1-bit (``"1"``): its values, as-is.
    * RGB / RGBA (alpha ignored): colours looked up by :func:`rgb_to_ids`.

    Args:
        path_or_bytes: Encoded label image (bytes), a path, or a file object.
        class_set: The dataset's class set; every id must be a class or its
            ``ignore_label``.
        value_map: Optional ``{stored value: class id}`` applied to palette /
            grayscale values before validation (e.g. CamVid ``{11: 255}``).
            Values not in the map are kept.

    Returns:
        uint8 array ``(H, W, 1)``.

    Raises:
        InvalidExampleError: missing/undecodable file, unsupported image mode,
            or values/colours outside the class set.

    Example:
        >>> from pixelwise.class_sets import VOC
        >>> label = decode_label("SegmentationClass/000032.png", VOC)  # doctest: +SKIP
        >>> label.shape, label.dtype  # doctest: +SKIP
        ((281, 500, 1), dtype('uint8'))
    """
    pil = open_image(read_bytes(path_or_bytes), "label")
    if pil.mode in ("P", "L", "1"):
        ids = np.asarray(pil if pil.mode != "1" else pil.convert("L"), dtype=np.uint8)
        if pil.mode == "1":
            ids = (ids > 0).astype(np.uint8)
        if value_map:
            table = np.arange(256, dtype=np.uint8)
            for stored, class_id in value_map.items():
                table[int(stored)] = int(class_id)
            ids = table[ids]
        ids = _check_ids(ids, class_set, {"P": "palette", "L": "grayscale", "1": "1-bit"}[pil.mode])
    elif pil.mode in ("RGB", "RGBA"):
        ids = rgb_to_ids(np.asarray(pil, dtype=np.uint8)[..., :3], class_set)
    else:
        raise InvalidExampleError(
            f"unsupported label image mode {pil.mode!r}; expected a palette, 8-bit grayscale "
            "or RGB PNG"
        )
    return ids[..., np.newaxis]
