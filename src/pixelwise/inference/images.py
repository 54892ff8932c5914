"""Reading images for prediction: formats, EXIF orientation, channels, and a size check before decoding."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from pixelwise.inference.memory import check_fits_in_memory


#: Formats ``predict`` reads (Pillow format names).
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")



#: Memory per pixel that decoding alone takes: Pillow's 4-byte pixels, a converted copy
#: and the array (:func:`read_image`'s default; prediction needs more, see
#: :func:`pixelwise.inference.prediction.memory_per_pixel`).
DECODE_BYTES_PER_PIXEL = 12



def read_image(path, channels: int = 3, bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL) -> np.ndarray:
    """Read an image file as a uint8 (H, W, channels) array.

    Args:
        path: JPEG, PNG, BMP, GIF (first frame) or WebP file.
        channels: 1 (luminance), 3 (RGB; grayscale replicated, alpha dropped) or 4.
        bytes_per_pixel: Memory the caller needs per pixel of this image, decoding
            included (default: decoding alone). An image whose need exceeds the memory
            available is refused before it is decoded (:func:`check_fits_in_memory`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a readable image of a supported format (truncated, wrong format),
            or too large for the memory available.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Expected an image file, received {str(path)!r}, which does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"Expected an image file, received the directory {str(path)!r}.")
    try:
        with open_image(path) as image:
            if image.format not in IMAGE_FORMATS:
                raise ValueError(
                    f"Expected one of {', '.join(IMAGE_FORMATS)}, received a {image.format} image "
                    f"{str(path)!r}; convert it to PNG first."
                )
            check_fits_in_memory(*image.size, bytes_per_pixel, source=str(path))
            image.seek(0)  # GIF / animated WebP: first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_channels(image, channels, source=str(path))
    except UnidentifiedImageError:
        raise ValueError(
            f"Expected an image ({', '.join(IMAGE_FORMATS)}), received {str(path)!r}, which is "
            "not an image Pillow can identify."
        ) from None
    except Image.DecompressionBombError as exc:  # a GIF frame larger than its header says
        raise ValueError(
            f"Expected an image whose frames fit its stated size, received {str(path)!r} ({exc}); "
            "convert it to PNG first."
        ) from None
    except (OSError, SyntaxError) as exc:  # Pillow reports truncated/corrupt data as OSError
        raise ValueError(
            f"Expected a complete image, received {str(path)!r} that cannot be decoded ({exc}); "
            "the file is probably truncated or corrupt."
        ) from None



def open_image(path) -> ImageFile.ImageFile:
    """Open an image file lazily (its header only), without Pillow's fixed pixel cap.

    ``PIL.Image.open`` refuses anything over 179 megapixels (a global setting,
    ``Image.MAX_IMAGE_PIXELS``, that pixelwise leaves alone); :func:`read_image` applies
    a limit from the memory available instead, so the formats it reads are opened with
    their own Pillow readers, which do only the header. Other files go through
    ``Image.open`` (for the error that names their format).
    """
    with open(path, "rb") as file:
        prefix = file.read(16)
    Image.init()  # registers every reader (WebP's is not among those loaded up front)
    for name in IMAGE_FORMATS:
        factory, accept = Image.OPEN[name]
        if accept(prefix) is True:
            try:
                return factory(os.fspath(path))
            except (SyntaxError, IndexError, TypeError, struct.error):
                break  # Image.open's error says what is wrong with it
    return Image.open(path)



def to_channels(image, channels: int, source: str = "image") -> np.ndarray:
    """Convert a PIL image or array to a uint8 (H, W, channels) array.

    Grayscale becomes RGB by replication, RGB becomes grayscale by luminance
    (ITU-R 601-2, Pillow's ``convert("L")``), alpha is dropped (transparent pixels keep
    their stored colour), palette images are expanded, 16-bit images scaled to 8 bits.
    """
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 image array, received dtype {array.dtype} from {source}.")
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"Expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image array, received shape "
                f"{array.shape} from {source}."
            )
        image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(wide / (257.0 if wide.max() > 255 else 1.0), 0, 255).astype(np.uint8))
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if channels not in modes:
        raise ValueError(
            f"Expected a model taking 1, 3 or 4 input channels, received one taking {channels}."
        )
    array = np.asarray(image.convert(modes[channels]), dtype=np.uint8)
    return array[..., None] if channels == 1 else array
