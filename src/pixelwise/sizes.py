"""Image sizes as people write them and as code uses them: ``256``, ``"360x480"``, ``(H, W)``.

One parser for every size argument (image size, input size, tile, overlap) and one way to print
one, so an error message and a table say a size the same way. Imports no TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def normalize_image_size(image_size) -> tuple[int, int] | None:
    """Turn ``256``, ``(256, 320)``, ``"256"`` or ``"256x320"`` into ``(height, width)``.

    Args:
        image_size: An int (square), a ``(height, width)`` pair, a string ``"H"`` or
            ``"HxW"``, or None (keep each image's native size).

    Returns:
        ``(height, width)`` as ints, or None.

    Example:
        >>> normalize_image_size("360x480")
        (360, 480)
    """
    if image_size is None:
        return None
    received = image_size
    if isinstance(image_size, str):
        parts = re.split(r"[x,×\s]+", image_size.strip().lower())
        try:
            image_size = tuple(int(p) for p in parts if p)
        except ValueError:
            image_size = ()
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        isinstance(image_size, Sequence)
        and len(image_size) == 1
        and isinstance(image_size[0], int)
    ):
        image_size = (image_size[0], image_size[0])
    if (
        not isinstance(image_size, Sequence)
        or len(image_size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)
    ):
        raise ValueError(
            f"Expected an image size as a positive int, (height, width) or 'HxW', "
            f"received {received!r}; e.g. 256 or '360x480'."
        )
    return int(image_size[0]), int(image_size[1])


def as_pair(value, name: str = "tile", minimum: int = 1) -> tuple[int, int]:
    """``N`` -> ``(N, N)``; a ``(height, width)`` pair (tuple or list) -> ``(height, width)``.

    Args:
        value: An int or a pair of ints.
        name: What the value is, for the error message (default ``tile``).
        minimum: Smallest value allowed on each side (default 1; 0 for an overlap).

    Example:
        >>> as_pair(256), as_pair([192, 256]), as_pair(0, "overlap", minimum=0)
        ((256, 256), (192, 256), (0, 0))
    """
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    whole = (isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    if len(pair) != 2 or not all(whole) or min(pair) < minimum:
        raise ValueError(
            f"Expected the {name} as an int >= {minimum} (N for NxN) or a (height, width) pair "
            f"of them, received {value!r}; e.g. 256 or (192, 256)."
        )
    return int(pair[0]), int(pair[1])



def square_or_pair(pair) -> int | tuple[int, int]:
    """``(N, N)`` -> ``N``, any other ``(height, width)`` unchanged: how tiles are written back.

    Example:
        >>> square_or_pair((64, 64)), square_or_pair((192, 256))
        (64, (192, 256))
    """
    height, width = as_pair(pair, "size", minimum=0)
    return height if height == width else (height, width)



def pair_text(value) -> str:
    """``64`` -> ``"64"``, ``(192, 256)`` -> ``"192x256"`` (for messages and tables)."""
    height, width = as_pair(value, "size", minimum=0)
    return str(height) if height == width else f"{height}x{width}"
