"""A few images of a built split, as plain image files: something to run ``predict`` on.

``pixelwise train`` writes the first images of the validation split into the run
folder (``examples/``) so that its closing "next steps" can name a ``pixelwise predict``
command that works on any machine, network or not (the quickstart's dataset exists
only as TFDS records). The images are written as they are stored, without their labels.

Example:
    >>> paths = write_images("synthetic_shapes", "validation", "/tmp/examples")  # doctest: +SKIP
    >>> [path.name for path in paths]  # doctest: +SKIP
    ['validation_0035.png', 'validation_0007.png', 'validation_0045.png', 'validation_0041.png']
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from pixelwise.datasets import api
from pixelwise.files import write_all_atomic

#: Images :func:`write_images` writes by default.
DEFAULT_NUM_IMAGES = 4


def _png_bytes(image: np.ndarray) -> bytes:
    # (H, W, 1) grayscale is stored by PIL as mode "L", which needs (H, W).
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_images(name: str, split: str, folder, num_images: int = DEFAULT_NUM_IMAGES,
                 data_dir=None, filenames=None) -> list[Path]:
    """Write the first ``num_images`` images of a built split as PNG files in ``folder``.

    "First" in the split's stored order (TFDS shuffles examples by key when it builds),
    the same on every call. Each file is named after the example's ``image/filename``
    (extension ``.png``), so the name says where the image came from. Files are written
    atomically (:func:`pixelwise.files.write_all_atomic`); an existing file of the same
    name is replaced.

    Args:
        name: A pixelwise dataset, already built (nothing is downloaded).
        split: Split name, e.g. ``"validation"``.
        folder: Where the files go (created if missing).
        num_images: int, default 4. Fewer are written when the split is smaller.
        data_dir: TFDS data directory (default None: TFDS' own).
        filenames: Only examples with one of these ``image/filename`` values (default
            None: any), e.g. a run's validation share of the split.

    Returns:
        The paths written, in the split's order.

    Raises:
        FileNotFoundError: the dataset is not built in ``data_dir``.
        ValueError: ``num_images`` is not a positive int, or an unknown dataset or split.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"Expected num_images a positive int, received {num_images!r}.")
    builder = api.build(name, data_dir, download=False)
    if split not in builder.info.splits:
        raise ValueError(
            f"Dataset {name!r} has no split {split!r}; expected one of "
            f"{sorted(builder.info.splits)}."
        )
    # Not a "[:N]" slice: TFDS refuses one longer than the split.
    examples = builder.as_dataset(split=split, shuffle_files=False)
    wanted = None if filenames is None else set(filenames)
    files = {}
    for example in tfds.as_numpy(examples):
        filename = example["image/filename"].decode()
        if wanted is not None and filename not in wanted:
            continue
        files[Path(folder) / f"{PurePosixPath(filename).stem}.png"] = _png_bytes(example["image"])
        if len(files) == num_images:
            break
    return write_all_atomic(files)
