"""The chapter's code, as written, kept only as the baseline the benchmarks compare against.

Nothing in pixelwise imports this module. Each function reproduces one snippet of the chapter
("第九章：语义分割与自定义数据集构建器") with the smallest changes needed to run on
TensorFlow 2.21 / Keras 3, including its known bugs (they are part of what is measured):

* :func:`chapter_decode_label`: the per-colour ``tf.Variable`` loop of ``_generate_examples``
  (its LUT lacks VOC's real void colour (224, 224, 192), so void pixels become background).
* :func:`chapter_colorize`: the ``REV_LUT`` ``tf.Variable`` loop of the inference section.
* :func:`get_unet`: the chapter's U-Net (strided conv encoder, transposed-conv decoder).
* :func:`chapter_compile`: Adam + ``SparseCategoricalCrossentropy(from_logits=True)`` + accuracy.
* :func:`chapter_resize_and_scale`: its preprocessing (image resized with *nearest neighbour*).
"""

from __future__ import annotations

import math

import tensorflow as tf

LUT = {
    (0, 0, 0): 0, (128, 0, 0): 1, (0, 128, 0): 2, (128, 128, 0): 3, (0, 0, 128): 4,
    (128, 0, 128): 5, (0, 128, 128): 6, (128, 128, 128): 7, (64, 0, 0): 8, (192, 0, 0): 9,
    (64, 128, 0): 10, (192, 128, 0): 11, (64, 0, 128): 12, (192, 0, 128): 13,
    (64, 128, 128): 14, (192, 128, 128): 15, (0, 64, 0): 16, (128, 64, 0): 17,
    (0, 192, 0): 18, (128, 192, 0): 19, (0, 64, 128): 20, (255, 255, 255): 21,
}
REV_LUT = {value: key for key, value in LUT.items()}


def chapter_decode_label(png_bytes: bytes):
    """The chapter's label conversion: decode to RGB, then one ``tf.Variable`` pass per colour.

    Returns the ``(H, W, 1)`` uint8 label, or ``None`` where the chapter skips the file
    (all pixels background).
    """
    label_rgb = tf.image.decode_image(png_bytes, channels=3)
    label = tf.Variable(
        tf.expand_dims(tf.zeros(shape=tf.shape(label_rgb)[:-1], dtype=tf.uint8), -1)
    )
    for color, label_id in LUT.items():
        match = tf.reduce_all(tf.equal(label_rgb, color), axis=[2])
        labeled = tf.expand_dims(tf.cast(match, tf.uint8), axis=-1)
        label.assign_add(labeled * label_id)
    colored = tf.not_equal(tf.reduce_sum(label), tf.constant(0, tf.uint8))
    if not colored.numpy():
        return None
    return label.numpy()


def chapter_colorize(pred_image):
    """The chapter's ``REV_LUT`` loop: a ``tf.Variable`` colour image built one class at a time."""
    height, width = pred_image.shape[:2]
    color_image = tf.Variable(tf.zeros((height, width, 3), dtype=tf.uint8))
    pixels_per_label = []
    for label, color in REV_LUT.items():
        match = tf.equal(pred_image, label)
        labeled = tf.expand_dims(tf.cast(match, tf.uint8), axis=-1)
        pixels_per_label.append((label, tf.math.count_nonzero(labeled)))
        labeled = tf.tile(labeled, [1, 1, 3])
        color_image.assign_add(labeled * color)
    return color_image.numpy()


def downsample(depth):
    return tf.keras.Sequential([
        tf.keras.layers.Conv2D(depth, 3, strides=2, padding="same", kernel_initializer="he_normal"),
        tf.keras.layers.LeakyReLU(),
    ])


def upsample(depth):
    return tf.keras.Sequential([
        tf.keras.layers.Conv2DTranspose(
            depth, 3, strides=2, padding="same", kernel_initializer="he_normal"
        ),
        tf.keras.layers.ReLU(),
    ])


def get_unet(input_size=(256, 256, 3), num_classes=21):
    """The chapter's ``get_unet``, verbatim apart from whitespace."""
    encoders = []
    for i in range(2, int(math.log2(256))):
        depth = 2 ** (i + 5)
        if depth > 512:
            depth = 512
        encoders.append(downsample(depth=depth))
    decoders = []
    for i in reversed(range(2, int(math.log2(256)))):
        depth = 2 ** (i + 5)
        if depth < 32:
            depth = 32
        if depth > 512:
            depth = 512
        decoders.append(upsample(depth=depth))
    inputs = tf.keras.layers.Input(input_size)
    x = inputs
    skips = []
    for conv in encoders:
        x = conv(x)
        skips.append(x)
    skips = reversed(skips[:-1])
    for deconv, skip in zip(decoders, skips):
        x = deconv(x)
        x = tf.keras.layers.Concatenate()([x, skip])
    last = tf.keras.layers.Conv2DTranspose(
        num_classes, 3, strides=2, padding="same", kernel_initializer="he_normal"
    )
    outputs = last(x)
    return tf.keras.Model(inputs=inputs, outputs=outputs)


def chapter_compile(model):
    """The chapter's ``compile`` call."""
    model.compile(
        optimizer=tf.optimizers.Adam(),
        loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def chapter_resize_and_scale(row, size=(256, 256)):
    """The chapter's preprocessing (note: the *image* is resized with nearest neighbour)."""
    row["image"] = tf.image.convert_image_dtype(
        tf.image.resize(row["image"], size, method=tf.image.ResizeMethod.NEAREST_NEIGHBOR),
        tf.float32,
    )
    row["label"] = tf.cast(
        tf.image.resize(row["label"], size, method=tf.image.ResizeMethod.NEAREST_NEIGHBOR),
        tf.int64,
    )
    return row


def chapter_to_pair(row):
    return row["image"], row["label"]
