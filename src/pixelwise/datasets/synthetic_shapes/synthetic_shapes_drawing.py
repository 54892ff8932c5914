"""Procedural segmentation scenes: textured shapes and thin lines on a textured background.

NumPy and SciPy only, deterministic for a given seed. Used by the ``synthetic_shapes``
builder, which gives a first result with nothing to download; it shows that the whole loop
works and says nothing about real images.

Classes (:data:`pixelwise.class_sets.SYNTHETIC_SHAPES`): 0 background, 1 disc, 2 box,
3 triangle, 4 line. Each shape has a 1-pixel void ring (label 255) around it, like VOC's
object boundaries, so the void handling of losses and metrics is exercised too. A shape's
class is its geometry; its colour leans toward a hue band per class but is jittered, and
half the shapes carry a stripe or checker texture, so colour alone does not decide the
class.

Example:
    >>> image, label = draw_scene(seed=0, size=(64, 96))
    >>> image.shape, image.dtype, label.shape, label.dtype
    ((64, 96, 3), dtype('uint8'), (64, 96), dtype('uint8'))
    >>> sorted(set(label.ravel().tolist()) - {0, 1, 2, 3, 4, 255})
    []
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pixelwise.class_sets import SYNTHETIC_SHAPES

# Class ids, in the order of SYNTHETIC_SHAPES.class_names.
BACKGROUND, DISC, BOX, TRIANGLE, LINE = range(5)
# Centre hue (0..1) of each shape class's colours; jittered by +-0.12 per shape.
_HUES = {DISC: 0.02, BOX: 0.35, TRIANGLE: 0.62}


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def _smooth_noise(rng: np.random.Generator, size, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    zoomed = ndimage.zoom(grid, (size[0] / (cells + 1), size[1] / (cells + 1)), order=1)
    return zoomed[: size[0], : size[1]]


def _background(rng, size) -> np.ndarray:
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    base = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.75))
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / size[1] + np.sin(angle) * yy / size[0])[..., None]
    noise = _smooth_noise(rng, size, 4)[..., None]
    return base + 40 * ramp + 30 * noise


def _texture(rng, size) -> np.ndarray:
    """A multiplicative texture in about [0.6, 1.0]: flat, stripes or checker."""
    kind = rng.integers(0, 4)
    if kind < 2:
        return np.ones(size, np.float32)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    period = rng.uniform(4, 10)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    if kind == 2:
        return 0.8 + 0.2 * np.sign(np.sin(2 * np.pi * u / period))
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    return 0.8 + 0.2 * np.sign(np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period))


def _shape_mask(rng, size, kind: int) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = min(h, w)
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    r = rng.uniform(0.08, 0.22) * scale
    if kind == DISC:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy)
    v = -np.sin(angle) * (xx - cx) + np.cos(angle) * (yy - cy)
    if kind == BOX:
        aspect = rng.uniform(0.6, 1.6)
        return (np.abs(u) <= r * aspect) & (np.abs(v) <= r / aspect)
    # Triangle: inside three half-planes of an equilateral triangle of circumradius 1.3 r.
    inside = np.ones(size, bool)
    for k in range(3):
        theta = angle + 2 * np.pi * k / 3
        inside &= np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy) <= 0.65 * r
    return inside


def _line_mask(rng, size) -> np.ndarray:
    """A thin (2-4 px) straight or gently curved line across the image."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.35, 0.35) * min(h, w)
    u = np.cos(angle) * (xx - w / 2) + np.sin(angle) * (yy - h / 2)
    v = -np.sin(angle) * (xx - w / 2) + np.cos(angle) * (yy - h / 2)
    bend = rng.uniform(-1, 1) * 0.004 * v**2
    return np.abs(u - offset - bend) <= rng.uniform(1.0, 2.0)


def draw_scene(seed, size=(128, 128), max_shapes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene.

    Args:
        seed: int or sequence of ints for ``numpy.random.default_rng``.
        size: (height, width) of the scene. Default (128, 128).
        max_shapes: int, most discs/boxes/triangles in one scene (at least 1). Default 5.

    Returns:
        ``(image, label)``: uint8 (H, W, 3) and uint8 (H, W) with ids 0..4 and 255 (void ring).
    """
    rng = np.random.default_rng(seed)
    size = (int(size[0]), int(size[1]))
    image = _background(rng, size)
    label = np.zeros(size, np.uint8)
    for _ in range(rng.integers(1, max_shapes + 1)):
        kind = int(rng.choice([DISC, BOX, TRIANGLE]))
        mask = _shape_mask(rng, size, kind)
        if not mask.any():
            continue
        hue = (_HUES[kind] + rng.uniform(-0.12, 0.12)) % 1.0
        colour = _hsv_to_rgb(hue, rng.uniform(0.45, 0.95), rng.uniform(0.45, 1.0))
        image[mask] = (colour * _texture(rng, size)[..., None])[mask]
        ring = ndimage.binary_dilation(mask) & ~mask
        label[mask] = kind
        label[ring] = SYNTHETIC_SHAPES.ignore_label
    for _ in range(rng.integers(0, 3)):
        mask = _line_mask(rng, size)
        image[mask] = rng.choice([rng.uniform(0, 40), rng.uniform(215, 255)])
        label[mask] = LINE
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), label
