"""Transforms of one ``(image, label)`` pair: resizing rules and training augmentation.

* Images are resized **bilinearly** (antialiased when shrinking); labels with
  **nearest neighbour only**, so no label value is ever invented and void pixels
  keep the ignore label.
* :func:`augment_pair` applies the *same* geometry to image and label (random
  horizontal flip, random scale, random crop back to the training size, padding
  labels with the ignore label) and photometric jitter to the image only. It uses
  stateless random ops driven by a per-example seed, so a pipeline is reproducible
  under parallel ``map``.

:func:`pixelwise.data.pipeline.make_pipeline` applies them to a whole split.

Example:
    >>> image = tf.zeros((48, 64, 3), tf.uint8)
    >>> label = tf.ones((48, 64, 1), tf.uint8)
    >>> resize_label(label, (24, 32)).shape
    TensorShape([24, 32, 1])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Default range of the random scale factor of training augmentation.
DEFAULT_SCALE_RANGE = (0.5, 2.0)


def resize_image(image: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize (antialiased when shrinking) of a uint8 or float image; returns float32.

    Values keep their range (0..255 stays 0..255).
    """
    return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)


def resize_label(label: tf.Tensor, size) -> tf.Tensor:
    """Nearest-neighbour resize of an ``(H, W, 1)`` label map; dtype and values preserved."""
    return tf.image.resize(label, size, method="nearest")



def _random_int(seed, maxval_inclusive):
    return tf.random.stateless_uniform(
        [], seed, minval=0, maxval=maxval_inclusive + 1, dtype=tf.int32
    )


def augment_pair(
    image,
    label,
    seed,
    *,
    crop_size=None,
    scale_range=DEFAULT_SCALE_RANGE,
    photometric: bool = True,
    ignore_label: int = 255,
):
    """Random flip, scale and crop (same geometry for both), photometric jitter (image only).

    The image is scaled by a random factor ``s`` and a random ``crop_size`` window is
    cut from it; where the scaled image is smaller than the window it is padded at a
    random place (image with 0, label with ``ignore_label``). Only the source window
    that ends up in the crop is resized, so the cost does not grow with ``s``.

    Args:
        image: ``(H, W, C)`` uint8 image.
        label: ``(H, W, 1)`` integer label map.
        seed: ``(2,)`` integer tensor for the stateless random ops.
        crop_size: ``(height, width)`` of the output; None keeps ``(H, W)``.
        scale_range: ``(min, max)`` of the uniform random scale factor; ``(1, 1)``
            disables scaling.
        photometric: Jitter brightness and contrast, plus saturation and hue for RGB.
        ignore_label: Label value of pixels padded in when the scaled image is smaller
            than the crop.

    Returns:
        ``(image, label)``: float32 image in ``[0, 1]`` and label with ``label``'s dtype.

    Example:
        >>> image = tf.zeros((48, 64, 3), tf.uint8)
        >>> label = tf.ones((48, 64, 1), tf.uint8)
        >>> image, label = augment_pair(image, label, tf.constant([1, 2]), crop_size=(32, 32))
        >>> image.shape, image.dtype.name, label.shape, label.dtype.name
        (TensorShape([32, 32, 3]), 'float32', TensorShape([32, 32, 1]), 'uint8')
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=10)
    num_channels = image.shape[-1]
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    crop_h, crop_w = (height, width) if crop_size is None else crop_size

    # Flip: one coin for both tensors.
    flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    label = tf.cond(flip, lambda: tf.reverse(label, axis=[1]), lambda: label)

    low, high = float(scale_range[0]), float(scale_range[1])
    scale = tf.random.stateless_uniform([], seeds[1], minval=low, maxval=high)
    # Per axis: the source window whose scaled size fills the crop (or the whole axis,
    # when the scaled image is smaller than the crop), one random offset for both.
    window_h, out_h = _window(height, crop_h, scale)
    window_w, out_w = _window(width, crop_w, scale)
    top = _random_int(seeds[2], height - window_h)
    left = _random_int(seeds[3], width - window_w)
    image = image[top : top + window_h, left : left + window_w]
    label = label[top : top + window_h, left : left + window_w]
    out_size = tf.stack([out_h, out_w])
    shrinking = tf.logical_or(out_h < window_h, out_w < window_w)
    image = tf.cast(image, tf.float32)
    # Antialiasing only matters (and only pays its cost) when shrinking.
    image = tf.cond(
        shrinking,
        lambda: tf.image.resize(image, out_size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, out_size, method="bilinear"),
    )
    label = tf.image.resize(label, out_size, method="nearest")

    # Pad at a random place up to the crop size: image with 0, label with the ignore
    # label, so padding never teaches the model a class.
    pad_h, pad_w = crop_h - out_h, crop_w - out_w
    pad_top = _random_int(seeds[4], pad_h)
    pad_left = _random_int(seeds[5], pad_w)
    paddings = [[pad_top, pad_h - pad_top], [pad_left, pad_w - pad_left], [0, 0]]
    image = tf.pad(image, paddings, constant_values=0.0)
    label = tf.pad(label, paddings, constant_values=tf.cast(ignore_label, label.dtype))

    image = image / 255.0
    if photometric:
        image = _photometric_jitter(image, seeds[6:], num_channels)
    static = crop_size if crop_size is not None else (None, None)
    image.set_shape([*static, num_channels])
    label.set_shape([*static, 1])
    return image, label


def _window(size, crop, scale):
    """Source window length along one axis, and its length once scaled (at most ``crop``)."""
    window = tf.cast(tf.round(tf.cast(crop, tf.float32) / scale), tf.int32)
    window = tf.clip_by_value(window, 1, size)
    scaled = tf.cast(tf.round(tf.cast(window, tf.float32) * scale), tf.int32)
    # A window inside the axis fills the crop exactly; a whole axis may come out shorter.
    scaled = tf.where(window < size, crop, tf.clip_by_value(scaled, 1, crop))
    return window, scaled


# ITU-R 601 luma and the YIQ transform: saturation is a blend with the grey image and
# hue a rotation of the (I, Q) chroma plane, both linear in RGB, so one 3x3 matrix
# applies them together (much cheaper than an RGB -> HSV -> RGB round trip).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def _photometric_jitter(image, seeds, num_channels):
    # Magnitudes of mmsegmentation's PhotoMetricDistortion: brightness ±32/255,
    # contrast and saturation 0.5..1.5, hue ±18° (0.05 of a turn). Brightness, contrast
    # (around each channel's mean), saturation and hue are all affine in RGB, so they are
    # composed into one matrix and offset and applied in a single pass, clipped once.
    brightness = tf.random.stateless_uniform([], seeds[0], -32.0 / 255.0, 32.0 / 255.0)
    contrast = tf.random.stateless_uniform([], seeds[1], 0.5, 1.5)
    matrix = tf.eye(num_channels)
    if num_channels == 3:
        saturation = tf.random.stateless_uniform([], seeds[2], 0.5, 1.5)
        angle = tf.random.stateless_uniform([], seeds[3], -0.05, 0.05) * 2.0 * np.pi
        cos, sin = tf.cos(angle), tf.sin(angle)
        rotation = tf.stack([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
        saturate = saturation * tf.eye(3) + (1.0 - saturation) * np.tile(_LUMA, (3, 1))
        matrix = _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ @ saturate
    # x -> M (c x + (1 - c) mean + b)
    mean = tf.reduce_mean(image, axis=[0, 1])
    offset = tf.linalg.matvec(matrix, (1.0 - contrast) * mean + brightness)
    shape = tf.shape(image)
    flat = tf.reshape(image, [-1, num_channels]) @ tf.transpose(contrast * matrix) + offset
    return tf.clip_by_value(tf.reshape(flat, shape), 0.0, 1.0)
