"""The tf.data input pipeline: from a pixelwise TFDS split to ``(image, label)`` batches.

:func:`load_split` gives a split (building the dataset first if needed, through
:func:`pixelwise.datasets.api.build`); :func:`make_pipeline` turns it into batches.
The chapter's ``resize_and_scale`` + ``to_pair``, done right:

* images are resized **bilinearly** (with antialiasing when shrinking) and scaled
  to ``[0, 1]`` float32; labels are resized with **nearest neighbour only**, so
  no label value is ever invented, and void pixels keep the ignore label (255)
  (the rules and the augmentation of one pair live in :mod:`pixelwise.data.transforms`);
* channel count, class count and ignore label come from the dataset, never
  hard-coded (ISBI 2012 is grayscale, VOC and CamVid are RGB);
* training augmentation applies the *same* geometry to image and label (random
  horizontal flip, random scale, random crop back to the training size, padding
  labels with the ignore label) and photometric jitter to the image only;
* parallel ``map``, an in-memory cache of the decoded, resized uint8 examples,
  shuffle, batch, ``prefetch(AUTOTUNE)``; a ``seed`` makes it deterministic.

Example:
    >>> from pixelwise.data.pipeline import load_split, make_pipeline
    >>> from pixelwise.class_sets import class_set_from_info
    >>> examples, info = load_split("camvid", "train", manual_dir="../shared/datasets/CamVid")  # doctest: +SKIP
    >>> train = make_pipeline(examples, class_set_from_info(info), image_size=(352, 480),
    ...                       batch_size=8, training=True)  # doctest: +SKIP
    >>> images, labels = next(iter(train))  # doctest: +SKIP
    >>> images.shape, images.dtype.name, labels.shape, labels.dtype.name  # doctest: +SKIP
    (TensorShape([8, 352, 480, 3]), 'float32', TensorShape([8, 352, 480, 1]), 'int32')
"""

from __future__ import annotations

import re

import tensorflow as tf
import tensorflow_datasets as tfds

from pixelwise.class_sets import ClassSet
from pixelwise.sizes import normalize_image_size
from pixelwise.datasets import api as datasets_api
from pixelwise.data.transforms import DEFAULT_SCALE_RANGE, augment_pair, resize_image, resize_label

AUTOTUNE = tf.data.AUTOTUNE

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
        ValueError: unknown dataset or split, a dataset that is not segmentation data
            pixelwise reads (:func:`pixelwise.datasets.api.check_readable`, before any
            download), or a broken archive.
        FileNotFoundError: the dataset is not built and could not be built.
        OSError: ``data_dir`` cannot be written, or the download failed
            (``ConnectionError``).

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


def split_filenames(name: str, split: str, data_dir: str | None = None) -> list[str]:
    """The ``image/filename`` of every example of a built split, in its stored order.

    Reads that one feature (no image is decoded), for group rules (:mod:`pixelwise.data.groups`).

    Raises:
        ValueError: the dataset stores no ``image/filename``.
    """
    builder = datasets_api.get_builder(name, data_dir)
    if "image/filename" not in builder.info.features:
        raise ValueError(
            f"Dataset {name!r} stores no image/filename, so its examples cannot be grouped; "
            "pass groups='none' and a validation_split=."
        )
    names = builder.as_dataset(
        split=split, decoders=tfds.decode.PartialDecoding({"image/filename": True})
    )
    return [bytes(ex["image/filename"]).decode() for ex in names.as_numpy_iterator()]


def keep_filenames(examples: tf.data.Dataset, filenames) -> tf.data.Dataset:
    """The examples whose ``image/filename`` is one of ``filenames`` (a hash-table lookup).

    ``filenames`` must be names the split holds (e.g. from :func:`split_filenames`): the
    result's cardinality is set to their number, as Keras needs to size an epoch.
    """
    names = sorted(set(filenames))
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(names, tf.string),
                                            tf.ones(len(names), tf.int32)),
        default_value=0,
    )
    kept = examples.filter(lambda example: table.lookup(example["image/filename"]) > 0)
    return kept.apply(tf.data.experimental.assert_cardinality(len(names)))


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
    pad_to_multiple: int = 1,
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
        pad_to_multiple: Evaluation only: append all-void examples (black image, every
            label pixel ``class_set.ignore_label``) until the number of examples is a
            multiple of this, so that no replica of a distribution strategy gets an empty
            share of the last batch (:func:`void_padding`). The last batch then holds
            exactly ``pad_to_multiple`` examples, one per replica, so void examples share no
            replica's batch with real ones. Void pixels count in no metric; the loss of a
            void-only share is 0, with weight 1 in Keras' ``val_loss``.

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
    if pad_to_multiple != 1:
        if training or image_size is None:
            raise ValueError(
                f"pad_to_multiple={pad_to_multiple} pads evaluation batches of a fixed image size; "
                f"received training={training}, image_size={image_size}. Pass pad_to_multiple=1."
            )
        if size < 0:
            size = int(examples.reduce(0, lambda count, _: count + 1))
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
        padding = void_padding(size, pad_to_multiple)
        if padding:
            # Batches of batch_size, the last holding a multiple of pad_to_multiple, then one
            # batch of pad_to_multiple: the last real examples and the void ones, one per
            # replica, so that no replica's share mixes real and void examples.
            whole = size - size % pad_to_multiple
            image = tf.zeros((*image_size, num_channels), tf.float32)
            label = tf.fill((*image_size, 1), tf.constant(class_set.ignore_label, tf.int32))
            tail = dataset.skip(whole).concatenate(
                tf.data.Dataset.from_tensors((image, label)).repeat(padding))
            dataset = dataset.take(whole).batch(batch_size).concatenate(
                tail.batch(pad_to_multiple))
            return dataset.prefetch(AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(AUTOTUNE)


def void_padding(num_examples: int, multiple: int) -> int:
    """All-void examples to append so that ``num_examples`` becomes a multiple of ``multiple``.

    Why: a distribution strategy splits each batch across its replicas, and the last,
    incomplete batch of an evaluation split can leave a replica an *empty* share. With
    oneDNN on (TensorFlow's default on AVX-512 VNNI/BF16 and AMX CPUs, and pixelwise's on
    all x86 CPUs, :mod:`pixelwise.onednn`), TensorFlow 2.21's convolution of an
    empty batch returns its input unchanged (shape ``(0, H, W, C_in)``), so the next
    convolution fails with "input depth must be evenly divisible by filter depth" (issue 24).
    A split whose size is a multiple of the replica count gives every replica at least one
    example in every batch, as long as the global batch size is a multiple of it too.

    Example:
        >>> void_padding(101, 2), void_padding(100, 2), void_padding(5, 4), void_padding(7, 1)
        (1, 0, 3, 0)
    """
    if multiple < 1:
        raise ValueError(f"Expected pad_to_multiple >= 1, received {multiple}.")
    return -num_examples % multiple


__all__ = [
    "AUTOTUNE", "DEFAULT_SHUFFLE_BUFFER", "load_split", "split_filenames", "keep_filenames",
    "make_pipeline", "void_padding",
]
