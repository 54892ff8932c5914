"""The tf.data input pipeline: from a pixelwise TFDS split to ``(image, label)`` batches.

The chapter's ``resize_and_scale`` + ``to_pair``, done right:

* images are resized **bilinearly** (with antialiasing when shrinking) and scaled
  to ``[0, 1]`` float32; labels are resized with **nearest neighbour only**, so
  no label value is ever invented, and void pixels keep the ignore label (255);
* channel count, class count and ignore label come from the dataset, never
  hard-coded (ISBI 2012 is grayscale, VOC and CamVid are RGB);
* training augmentation applies the *same* geometry to image and label (random
  horizontal flip, random scale, random crop back to the training size, padding
  labels with the ignore label) and photometric jitter to the image only;
* parallel ``map``, an in-memory cache of the decoded, resized uint8 examples,
  shuffle, batch, ``prefetch(AUTOTUNE)``; a ``seed`` makes it deterministic.

Example:
    >>> from pixelwise.data import load_split, make_pipeline
    >>> from pixelwise.datasets import class_set_from_info
    >>> examples, info = load_split("camvid", "train", manual_dir="../shared/datasets/CamVid")  # doctest: +SKIP
    >>> train = make_pipeline(examples, class_set_from_info(info), image_size=(352, 480),
    ...                       batch_size=8, training=True)  # doctest: +SKIP
    >>> images, labels = next(iter(train))  # doctest: +SKIP
    >>> images.shape, images.dtype.name, labels.shape, labels.dtype.name  # doctest: +SKIP
    (TensorShape([8, 352, 480, 3]), 'float32', TensorShape([8, 352, 480, 1]), 'int32')
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from pixelwise.class_sets import ClassSet
from pixelwise.config import normalize_image_size
from pixelwise.datasets import api as datasets_api

AUTOTUNE = tf.data.AUTOTUNE

#: Default range of the random scale factor of training augmentation.
DEFAULT_SCALE_RANGE = (0.5, 2.0)
#: Default shuffle buffer (in examples); the pipeline never uses more than the split size.
DEFAULT_SHUFFLE_BUFFER = 1024


def load_split(
    name: str,
    split: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    *,
    shuffle_files: bool = False,
    download: bool = True,
):
    """Load one split of a TFDS dataset as a ``tf.data.Dataset`` of example dicts.

    A dataset that is not built yet is built first by
    :func:`pixelwise.datasets.api.build`: from ``manual_dir`` when given (offline),
    otherwise by the builder's own download (when ``download`` is True).

    Args:
        name: TFDS dataset name, e.g. ``"voc2007_semantic"`` or ``"camvid"``.
        split: Split name or TFDS slice, e.g. ``"train"``, ``"validation[:10]"``.
        data_dir: TFDS data directory (default: TFDS's, ``~/tensorflow_datasets``).
        manual_dir: Folder holding the manually downloaded data, used to build the
            dataset when it is not built yet.
        shuffle_files: Shuffle the order of the TFRecord shards (training).
        download: Whether a dataset that is not built may be built (downloading
            what ``manual_dir`` does not provide). False: fail instead.

    Returns:
        ``(examples, info)``: a dataset of dicts with ``image`` ``(H, W, C)`` uint8 and
        ``label`` ``(H, W, 1)`` uint8 (plus ``image/filename``), and the
        ``tfds.core.DatasetInfo`` holding the class set in its metadata.

    Raises:
        ValueError: unknown dataset or split, or a broken archive.
        FileNotFoundError: the dataset is not built and could not be built.

    Example:
        >>> examples, info = load_split("isbi2012_membranes", "validation",
        ...                             manual_dir="../shared/datasets/isbi2012")  # doctest: +SKIP
        >>> info.features["image"].shape  # doctest: +SKIP
        (None, None, 1)
    """
    builder = datasets_api.build(name, data_dir, manual_dir, download=download)
    info = builder.info
    available = sorted(info.splits.keys())
    base_splits = {s.split("[")[0].strip() for s in re.split(r"\+", split)}
    unknown = sorted(s for s in base_splits if s not in available)
    if unknown:
        raise ValueError(
            f"Dataset {name!r} has no split {unknown[0]!r}; expected one of {available}."
        )
    examples = builder.as_dataset(split=split, shuffle_files=shuffle_files)
    return examples, info


# --------------------------------------------------------------------------- preparation


def _num_channels_of(examples: tf.data.Dataset) -> int | None:
    spec = examples.element_spec
    if not isinstance(spec, dict) or "image" not in spec or "label" not in spec:
        raise ValueError(
            f"Expected a dataset of dicts with 'image' and 'label' (as load_split returns), "
            f"received elements {spec!r}."
        )
    shape = spec["image"].shape
    if shape.rank != 3:
        raise ValueError(f"Expected images of shape (H, W, C), received {shape}.")
    return shape[-1]


def _match_channels(image: tf.Tensor, source: int, target: int) -> tf.Tensor:
    if source == target:
        return image
    if source == 1 and target == 3:
        return tf.image.grayscale_to_rgb(image)
    if source == 3 and target == 1:
        return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
    raise ValueError(
        f"Expected images with {target} channel(s), received {source}; only 1 <-> 3 conversion "
        f"is supported. Pass num_channels={source} or None."
    )


def resize_image(image: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize (antialiased when shrinking) of a uint8 or float image; returns float32.

    Values keep their range (0..255 stays 0..255).
    """
    return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)


def resize_label(label: tf.Tensor, size) -> tf.Tensor:
    """Nearest-neighbour resize of an ``(H, W, 1)`` label map; dtype and values preserved."""
    return tf.image.resize(label, size, method="nearest")


def _prepare(example, image_size, source_channels, num_channels):
    """Decoded example -> uint8 image (H, W, C) and uint8 label (H, W, 1) at ``image_size``."""
    image = _match_channels(example["image"], source_channels, num_channels)
    label = example["label"]
    if label.shape.rank == 2:
        label = label[..., tf.newaxis]
    label = tf.cast(label, tf.uint8)
    if image_size is not None:
        image = tf.cast(tf.clip_by_value(tf.round(resize_image(image, image_size)), 0, 255), tf.uint8)
        label = resize_label(label, image_size)
    image.set_shape([*(image_size or (None, None)), num_channels])
    label.set_shape([*(image_size or (None, None)), 1])
    return image, label


def _to_float_pair(image, label):
    return tf.cast(image, tf.float32) / 255.0, tf.cast(label, tf.int32)


# --------------------------------------------------------------------------- augmentation


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


# --------------------------------------------------------------------------- pipeline


def make_pipeline(
    examples: tf.data.Dataset,
    class_set: ClassSet,
    image_size,
    batch_size: int,
    *,
    training: bool,
    augment: bool = True,
    num_channels: int | None = None,
    cache: bool | str = True,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    seed: int | None = None,
    deterministic: bool | None = None,
    drop_remainder: bool | None = None,
    scale_range=DEFAULT_SCALE_RANGE,
    photometric: bool = True,
) -> tf.data.Dataset:
    """Batches of ``(image, label)`` ready for ``model.fit``/``evaluate``.

    Args:
        examples: Dataset of dicts with ``image`` ``(H, W, C)`` uint8 and ``label``
            ``(H, W, 1)`` integers, e.g. from :func:`load_split`.
        class_set: The dataset's class set (``class_set_from_info(info)``); its
            ``ignore_label`` fills padded label pixels.
        image_size: Output size, int or ``(height, width)`` (see
            :func:`normalize_image_size`). None keeps native sizes, which needs
            ``batch_size == 1`` unless all images share a size.
        batch_size: Examples per batch.
        training: Shuffle and (with ``augment``) augment; off for evaluation.
        augment: Apply training augmentation (flip, scale + crop, photometric jitter).
        num_channels: Channels of the output images; None (default) keeps the dataset's
            (``info.features["image"].shape[-1]``). 1 <-> 3 conversion is supported.
        cache: True caches the decoded, resized uint8 examples in memory; a path caches
            them on disk; False disables caching (datasets larger than memory).
        shuffle_buffer: Shuffle buffer size in examples (training only).
        seed: Seed of shuffling and augmentation. Given a seed, the pipeline is
            deterministic (the same batches on every run).
        deterministic: Keep element order through parallel maps. Default: True for
            evaluation or when ``seed`` is given, else False (faster).
        drop_remainder: Drop the last incomplete batch. Default: ``training``.
        scale_range: ``(min, max)`` random scale factor of augmentation.
        photometric: Jitter brightness/contrast (and saturation/hue for RGB) when
            augmenting.

    Returns:
        A dataset of ``(image, label)``: float32 ``(B, H, W, C)`` in ``[0, 1]`` and int32
        ``(B, H, W, 1)`` holding class ids and ``class_set.ignore_label`` for void.

    Example:
        >>> from pixelwise.class_sets import VOC
        >>> examples = tf.data.Dataset.from_tensor_slices({
        ...     "image": tf.zeros((3, 48, 64, 3), tf.uint8),
        ...     "label": tf.zeros((3, 48, 64, 1), tf.uint8)})
        >>> val = make_pipeline(examples, VOC, 32, batch_size=2, training=False)
        >>> [tuple(images.shape) + tuple(labels.shape[-1:]) for images, labels in val]
        [(2, 32, 32, 3, 1), (1, 32, 32, 3, 1)]
        >>> val.element_spec[1].dtype.name
        'int32'
    """
    image_size = normalize_image_size(image_size)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch size, received {batch_size!r}.")
    if image_size is None and batch_size != 1:
        raise ValueError(
            f"image_size=None keeps each image's native size, which can only be batched with "
            f"batch_size=1; received batch_size={batch_size}. Pass an image size, e.g. 256."
        )
    low, high = (float(s) for s in scale_range)
    if not 0 < low <= high:
        raise ValueError(
            f"Expected scale_range=(min, max) with 0 < min <= max, received {scale_range!r}."
        )
    if training and shuffle_buffer < 1:
        raise ValueError(f"Expected shuffle_buffer >= 1, received {shuffle_buffer}.")
    source_channels = _num_channels_of(examples)
    if source_channels is None and num_channels is None:
        raise ValueError(
            "The images' channel count is not static in the dataset's element_spec; pass "
            "num_channels=info.features['image'].shape[-1]."
        )
    source_channels = source_channels or num_channels
    num_channels = num_channels or source_channels
    if drop_remainder is None:
        drop_remainder = training
    if deterministic is None:
        # Evaluation keeps the dataset's order (predictions line up with file names);
        # unseeded training may let parallel maps reorder elements, which is faster.
        deterministic = seed is not None or not training

    size = int(examples.cardinality())
    if drop_remainder and 0 <= size < batch_size:
        raise ValueError(
            f"The split has {size} examples, fewer than the batch size {batch_size}, so dropping "
            f"the incomplete batch would leave no batch at all; lower the batch size to at most "
            f"{size} or pass drop_remainder=False."
        )

    options = tf.data.Options()
    options.deterministic = deterministic
    dataset = examples.with_options(options)
    dataset = dataset.map(
        lambda example: _prepare(example, image_size, source_channels, num_channels),
        num_parallel_calls=AUTOTUNE,
    )
    if cache:
        dataset = dataset.cache("" if cache is True else str(cache))
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training and augment:
        # Per-example seeds for the stateless ops: reproducible under parallel map, new
        # every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ignore_label = class_set.ignore_label
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda pair, pair_seed: augment_pair(
                pair[0], pair[1], pair_seed, crop_size=image_size, scale_range=(low, high),
                photometric=photometric, ignore_label=ignore_label,
            ),
            num_parallel_calls=AUTOTUNE,
        )
        dataset = dataset.map(lambda image, label: (image, tf.cast(label, tf.int32)))
    else:
        dataset = dataset.map(_to_float_pair, num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(AUTOTUNE)


__all__ = [
    "AUTOTUNE", "DEFAULT_SCALE_RANGE", "DEFAULT_SHUFFLE_BUFFER", "normalize_image_size",
    "load_split", "make_pipeline", "augment_pair", "resize_image", "resize_label",
]
