"""How much memory this machine has for an image: cgroup limit or free RAM, and a check before decoding."""

from __future__ import annotations

import os
from pathlib import Path


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
