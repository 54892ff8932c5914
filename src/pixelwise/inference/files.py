"""Inference on image files: read them, predict, write masks, overlays, boxes and counts.

The chapter's last section, corrected, plus exercise 20:

* :func:`read_image` reads JPEG, PNG, BMP, GIF (first frame) or WebP, applies the EXIF
  orientation and converts to the channel count the model takes; an image too large for
  the memory available is refused from its header, before it is decoded
  (:func:`check_fits_in_memory`; Pillow's fixed 179-megapixel cap does not apply, since
  tiled prediction exists for large images);
* :func:`predict` segments one image and describes it (a :class:`Prediction`: labels,
  confidence, pixel counts by class name, boxes), computed by :mod:`pixelwise.inference.prediction`;
* :func:`save_prediction` and :func:`predict_files` write ``NAME_mask.png``,
  ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json`` per image.

Models come from :func:`pixelwise.runs.load_run` (a run folder, a ``.keras`` file or a
``keras.Model``).

Example:
    >>> import pixelwise                                     # doctest: +SKIP
    >>> p = pixelwise.predict("runs/voc", "author.jpg")       # doctest: +SKIP
    >>> p.counts["person"], p.boxes[0].class_name              # doctest: +SKIP
    (42285, 'person')
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from pixelwise.class_sets import ClassSet
from pixelwise.inference.drawing import colorize, draw_boxes, overlay
from pixelwise.files import make_dirs, write_all_atomic
# 0.1.0 defined these here; they stay importable from pixelwise.inference.files.
from pixelwise.inference.prediction import (  # noqa: F401
    Box, Prediction, count_pixels, find_boxes, memory_per_pixel, predict_array, resize_image_uint8,
)
from pixelwise.runs import load_run
from pixelwise.defaults import DEFAULT_CHECKPOINT, DEFAULT_MIN_AREA, DEFAULT_PREDICT_SIZE, DEFAULT_TILE_BATCH

#: Formats ``predict`` reads (Pillow format names).
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")

#: Memory per pixel that decoding alone takes: Pillow's 4-byte pixels, a converted copy
#: and the array (:func:`read_image`'s default; prediction needs more, see
#: :func:`pixelwise.inference.prediction.memory_per_pixel`).
DECODE_BYTES_PER_PIXEL = 12


# ----------------------------------------------------------------------------- images


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


# ----------------------------------------------------------------------------- memory


def available_memory() -> int | None:
    """Bytes of memory this process can still take, or ``None`` when the system does not say.

    Linux's ``MemAvailable`` (free memory plus what the page cache can give back), lowered
    to a container's cgroup limit less its usage when there is one; elsewhere the free
    physical pages.
    """
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for limit, usage in (("memory.max", "memory.current"),  # cgroup v2, then v1
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            cap = Path("/sys/fs/cgroup", limit).read_text().strip()
            if cap != "max" and int(cap) < 2**60:
                found.append(int(cap) - int(Path("/sys/fs/cgroup", usage).read_text()))
                break
        except (OSError, ValueError):
            pass
    return max(0, min(found)) if found else None


def check_fits_in_memory(width: int, height: int, bytes_per_pixel: int, source: str = "image",
                         available: int | None = None) -> None:
    """Refuse an image whose processing needs more memory than there is, before decoding it.

    Args:
        width, height: The image's size, from its header.
        bytes_per_pixel: Memory needed per pixel, decoding included
            (:func:`pixelwise.inference.prediction.memory_per_pixel` for a prediction).
        source: Names the image in the error.
        available: Bytes available; default :func:`available_memory` (no limit when unknown).

    Raises:
        ValueError: Naming the image's size, the memory it needs, the memory available
            and the largest image that fits.

    Example:
        >>> check_fits_in_memory(20000, 20000, 72, available=40 * 2**30)  # 400 MP fits in 40 GiB
        >>> check_fits_in_memory(50000, 50000, 72, "bomb.png", available=40 * 2**30)
        Traceback (most recent call last):
        ValueError: Expected an image that fits in memory, received 'bomb.png' of 50000x50000 pixels (2500 megapixels), which needs about 168 GiB to decode and predict; 40 GiB are available, enough for about 597 megapixels. Downscale or crop it first.
    """
    available = available_memory() if available is None else available
    need = width * height * bytes_per_pixel
    if available is None or need <= available:
        return
    raise ValueError(
        f"Expected an image that fits in memory, received {source!r} of {width}x{height} pixels "
        f"({width * height / 1e6:.0f} megapixels), which needs about {_gib(need)} GiB to decode "
        f"and predict; {_gib(available)} GiB are available, enough for about "
        f"{available / bytes_per_pixel / 1e6:.0f} megapixels. Downscale or crop it first."
    )


def _gib(size: int) -> str:
    gib = size / 2**30
    return f"{gib:.0f}" if gib >= 10 else f"{gib:.1f}"


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


# ----------------------------------------------------------------------------- prediction


def predict(
    model_or_run,
    image,
    size: int | None = DEFAULT_PREDICT_SIZE,
    tile: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    min_area: int = DEFAULT_MIN_AREA,
    return_probabilities: bool = False,
    *,
    class_set: ClassSet | str | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    batch_size: int = DEFAULT_TILE_BATCH,
    mode: str | None = None,
    tta=None,
) -> Prediction:
    """Segment one image and describe what is in it.

    Args:
        model_or_run: ``keras.Model`` (pass ``class_set``), a ``RunFolder``, a path to a
            run folder or ``.keras`` file, or a :class:`~pixelwise.runs.LoadedRun`.
        image: Path, PIL image, or uint8 array (H, W[, C]).
        size: Side the image is resized to for a whole-image prediction (default 512, the
            chapter's). A model with a fixed input size uses that size instead. ``None``:
            the image's native size (the smallest size the model takes that covers it, with
            mirrored borders).
        tile: Predict at native resolution in overlapping tiles of this size, ``N`` or
            ``(height, width)`` (:mod:`pixelwise.inference.tiling`); ``size`` is then unused.
        overlap: Tile overlap in pixels; default depends on the model, see
            :func:`pixelwise.inference.tiling.tile_geometry`.
        min_area: Regions with fewer pixels get no box (default 100).
        return_probabilities: Also return the (H, W, K) softmax (memory: H*W*K*4 bytes).
        class_set: Class set (or its name, or a ``class_set.json`` path) for a bare model;
            run folders bring their own.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders (default ``best``).
        batch_size: Tiles per forward pass in tiled mode (default 4).
        mode: ``whole`` or ``slide`` (default: ``slide`` if ``tile`` is given, else ``whole``;
            see :func:`pixelwise.inference.prediction.predict_probabilities`).
        tta: Test-time augmentation, e.g. ``"flip,scales=0.75,1,1.25"`` (default none).

    Returns:
        :class:`Prediction` at the input's original size.

    Example:
        >>> p = predict(model, "cat.png", class_set=VOC)     # doctest: +SKIP
        >>> sum(p.counts.values()) == p.labels.size          # doctest: +SKIP
        True
    """
    loaded = load_run(model_or_run, class_set, checkpoint)
    channels = loaded.model.input_shape[-1]
    if isinstance(image, (str, os.PathLike)):
        need = memory_per_pixel(loaded.class_set.num_classes, mode=mode, tile=tile, tta=tta,
                                probabilities=return_probabilities)
        array = read_image(image, channels, bytes_per_pixel=need)
    else:
        array = to_channels(image, channels)
    labels, confidence, probabilities = predict_array(
        loaded.model, array, size=size, tile=tile, overlap=overlap,
        return_probabilities=return_probabilities, batch_size=batch_size, mode=mode, tta=tta,
    )
    return Prediction.from_labels(labels, confidence, loaded.class_set, min_area=min_area,
                                  probabilities=probabilities)


# ----------------------------------------------------------------------------- files


def save_prediction(prediction: Prediction, image: np.ndarray, out_dir, name: str) -> dict[str, Path]:
    """Write ``NAME_mask.png``, ``NAME_overlay.png``, ``NAME_boxes.png`` and ``NAME.json``.

    All four are encoded in memory, written under temporary names and only then renamed,
    so a failure leaves none of them half-written.

    Args:
        prediction: From :func:`predict`.
        image: The input as uint8 (H, W, C), same size as the prediction.
        out_dir: Output folder (created).
        name: Base name of the files, usually the input's stem.

    Returns:
        The paths written, by kind (``mask``, ``overlay``, ``boxes``, ``json``).
    """
    out_dir = Path(out_dir)
    mask = colorize(prediction.labels, prediction.class_set)
    contents = {
        "mask": (f"{name}_mask.png", _png(mask)),
        "overlay": (f"{name}_overlay.png", _png(overlay(image, mask))),
        "boxes": (f"{name}_boxes.png", _png(draw_boxes(image, prediction.boxes, prediction.class_set))),
        "json": (f"{name}.json", json.dumps(prediction.to_json(), indent=2)),
    }
    paths = {kind: out_dir / filename for kind, (filename, _) in contents.items()}
    write_all_atomic({paths[kind]: data for kind, (_, data) in contents.items()})
    return paths


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclasses.dataclass
class FileResult:
    """Outcome of one input of :func:`predict_files`: ``prediction`` or ``error`` is set."""

    path: Path
    prediction: Prediction | None = None
    outputs: dict[str, Path] | None = None
    error: str | None = None


def predict_files(model_or_run, paths, out_dir, *, class_set: ClassSet | str | None = None,
                  checkpoint: str = DEFAULT_CHECKPOINT, on_result=None, **options) -> list[FileResult]:
    """Predict every image file and save its outputs; a bad file never stops the others.

    Args:
        model_or_run: As for :func:`predict`; loaded once.
        paths: Image files.
        out_dir: Where the outputs go (see :func:`save_prediction`).
        class_set: For a bare model / ``.keras`` file.
        checkpoint: ``best``, ``last`` or a ``.keras`` file, for run folders.
        on_result: Called with each :class:`FileResult` as soon as it is done.
        **options: ``size``, ``tile``, ``overlap``, ``min_area``, ``batch_size``, ``mode``,
            ``tta`` of :func:`predict`.

    Returns:
        One :class:`FileResult` per path, in order.

    Raises:
        OSError: ``out_dir`` cannot be created (one error, not one per image).
    """
    loaded = load_run(model_or_run, class_set, checkpoint)
    make_dirs(out_dir)
    channels = loaded.model.input_shape[-1]
    need = memory_per_pixel(loaded.class_set.num_classes, mode=options.get("mode"),
                            tile=options.get("tile"), tta=options.get("tta"))
    names = _output_names([Path(p) for p in paths])
    results = []
    for path, name in zip(map(Path, paths), names):
        try:
            display = read_image(path, 3, bytes_per_pixel=need)
            array = display if channels == 3 else read_image(path, channels, bytes_per_pixel=need)
            prediction = predict(loaded, array, **options)
            outputs = save_prediction(prediction, display, out_dir, name)
            result = FileResult(path=path, prediction=prediction, outputs=outputs)
        except (ValueError, OSError) as exc:
            result = FileResult(path=path, error=str(exc))
        except MemoryError:  # the estimate of memory_per_pixel fell short: the next image may fit
            result = FileResult(path=path, error=f"Ran out of memory predicting {str(path)!r}; "
                                "downscale or crop it, or pass --tile.")
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _output_names(paths: list[Path]) -> list[str]:
    """Input stems, made unique (``a/x.png`` and ``b/x.jpg`` -> ``x``, ``x-2``)."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names
