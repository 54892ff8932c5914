"""Tests of pixelwise.losses against hand-computed and independent NumPy values."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelwise.class_sets import ClassSet
from pixelwise.losses import SegmentationLoss, median_frequency_weights, segmentation_loss

VOID = 255
THREE = ClassSet("three", ("a", "b", "c"), ((0, 0, 0), (1, 1, 1), (2, 2, 2)))
FOUR = ClassSet("four", ("a", "b", "c", "d"), ((0, 0, 0),) * 4)


def random_batch(num_classes=4, shape=(2, 6, 7), void_fraction=0.25, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, shape)
    labels[rng.random(shape) < void_fraction] = VOID
    logits = rng.normal(scale=2.0, size=shape + (num_classes,)).astype(np.float32)
    return labels[..., None].astype(np.int32), logits


def numpy_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)


def numpy_ce(labels, logits, weights=None):
    """Weighted mean of per-pixel cross-entropy over non-void pixels, by explicit loops."""
    total, weight_sum = 0.0, 0.0
    probs = numpy_softmax(logits.astype(np.float64))
    for index in np.ndindex(labels.shape[:-1]):
        label = labels[index][0]
        if label == VOID:
            continue
        weight = 1.0 if weights is None else weights[label]
        total += weight * -math.log(probs[index][label])
        weight_sum += weight
    return total / weight_sum


def numpy_dice(labels, logits, num_classes, smooth=1.0):
    probs = numpy_softmax(logits.astype(np.float64)).reshape(-1, num_classes)
    labels = labels.reshape(-1)
    valid = labels != VOID
    probs, labels = probs[valid], labels[valid]
    dice = []
    for c in range(num_classes):
        truth = (labels == c).astype(np.float64)
        dice.append((2 * (probs[:, c] * truth).sum() + smooth) / (probs[:, c].sum() + truth.sum() + smooth))
    return 1.0 - np.mean(dice)


def numpy_l2(labels, logits, num_classes):
    probs = numpy_softmax(logits.astype(np.float64)).reshape(-1, num_classes)
    labels = labels.reshape(-1)
    valid = labels != VOID
    one_hot = np.eye(num_classes)[labels[valid]]
    return ((probs[valid] - one_hot) ** 2).sum(-1).mean()


# --------------------------------------------------------------------------- cross-entropy


def test_uniform_logits_give_log_num_classes_whatever_the_void():
    labels = np.array([[[0], [1]], [[VOID], [2]]], np.int32)[None]  # (1, 2, 2, 1)
    logits = np.zeros((1, 2, 2, 3), np.float32)
    for loss in (segmentation_loss(THREE), SegmentationLoss(3)):
        assert float(loss(labels, logits)) == pytest.approx(math.log(3), rel=1e-6)


def test_hand_computed_ce_with_void_and_class_weights():
    # Two valid pixels: class 0 with p=e^2/(e^2+2), class 2 with p=1/3; one void pixel.
    labels = np.array([0, 2, VOID], np.int32).reshape(1, 1, 3, 1)
    logits = np.array([[2, 0, 0], [0, 0, 0], [9, -9, 9]], np.float32).reshape(1, 1, 3, 3)
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    ce2 = math.log(3)
    assert float(segmentation_loss(THREE)(labels, logits)) == pytest.approx((ce0 + ce2) / 2, rel=1e-6)
    weighted = segmentation_loss(THREE, class_weights=[3.0, 1.0, 0.5])
    assert float(weighted(labels, logits)) == pytest.approx((3 * ce0 + 0.5 * ce2) / 3.5, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ce_matches_numpy_on_random_batches(seed):
    labels, logits = random_batch(seed=seed)
    expected = numpy_ce(labels, logits)
    assert float(segmentation_loss(FOUR)(labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(SegmentationLoss(4)(labels, logits)) == pytest.approx(expected, rel=1e-5)
    weights = [0.2, 1.5, 3.0, 0.0]
    assert float(SegmentationLoss(4, class_weights=weights)(labels, logits)) == pytest.approx(
        numpy_ce(labels, logits, weights), rel=1e-5
    )


def test_void_pixels_do_not_change_the_loss_or_get_gradients():
    labels, logits = random_batch(seed=3)
    void = labels[..., 0] == VOID
    changed = logits.copy()
    changed[void] = np.random.default_rng(9).normal(scale=50, size=changed[void].shape)
    for kind in ("ce", "ce+dice", "ce+l2"):
        loss = SegmentationLoss(4, kind=kind, class_weights=[1, 2, 3, 4])
        assert float(loss(labels, logits)) == pytest.approx(float(loss(labels, changed)), rel=1e-6)
        variable = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = loss(labels, variable)
        gradient = tape.gradient(value, variable).numpy()
        assert np.all(gradient[void] == 0) and np.abs(gradient[~void]).sum() > 0


# --------------------------------------------------------------------------- reconstruction term


@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_dice_and_l2_terms_match_numpy(weight):
    labels, logits = random_batch(seed=4)
    ce = numpy_ce(labels, logits)
    dice = SegmentationLoss(4, kind="ce+dice", reconstruction_weight=weight)
    l2 = SegmentationLoss(4, kind="ce+l2", reconstruction_weight=weight)
    assert float(dice(labels, logits)) == pytest.approx(ce + weight * numpy_dice(labels, logits, 4), rel=1e-5)
    assert float(l2(labels, logits)) == pytest.approx(ce + weight * numpy_l2(labels, logits, 4), rel=1e-5)


def test_reconstruction_terms_by_hand():
    # One pixel of class 1 predicted with p = (0.25, 0.5, 0.25): L2 = 0.0625 + 0.25 + 0.0625.
    labels = np.array([1, VOID], np.int32).reshape(1, 1, 2, 1)
    logits = np.log(np.array([[0.25, 0.5, 0.25], [0.9, 0.05, 0.05]], np.float32)).reshape(1, 1, 2, 3)
    ce = math.log(2)
    l2 = SegmentationLoss(3, kind="ce+l2", reconstruction_weight=1.0)
    assert float(l2(labels, logits)) == pytest.approx(ce + 0.375, rel=1e-5)
    # Dice per class with smooth 1: c0 (0+1)/(0.25+1), c1 (1+1)/(1.5+1), c2 (0+1)/(0.25+1).
    dice = 1 - np.mean([1 / 1.25, 2 / 2.5, 1 / 1.25])
    loss = SegmentationLoss(3, kind="ce+dice", reconstruction_weight=1.0)
    assert float(loss(labels, logits)) == pytest.approx(ce + dice, rel=1e-5)


def test_perfect_prediction_has_near_zero_loss():
    labels, _ = random_batch(num_classes=3, seed=5, void_fraction=0.2)
    safe = np.where(labels[..., 0] == VOID, 0, labels[..., 0])
    logits = (np.eye(3)[safe] * 40.0).astype(np.float32)
    for kind in ("ce", "ce+dice", "ce+l2"):
        assert float(SegmentationLoss(3, kind=kind)(labels, logits)) < 1e-3


def test_zero_weight_reduces_to_cross_entropy():
    labels, logits = random_batch(seed=6)
    plain = float(SegmentationLoss(4)(labels, logits))
    for kind in ("ce+dice", "ce+l2"):
        assert float(SegmentationLoss(4, kind=kind, reconstruction_weight=0.0)(labels, logits)) \
            == pytest.approx(plain, rel=1e-6)


def test_bf16_logits_are_computed_in_float32():
    labels, logits = random_batch(seed=7)
    loss = SegmentationLoss(4, kind="ce+dice")
    value = loss(labels, tf.cast(logits, tf.bfloat16))
    rounded = tf.cast(logits, tf.bfloat16).numpy().astype(np.float32)
    expected = numpy_ce(labels, rounded) + numpy_dice(labels, rounded, 4)
    assert value.dtype == tf.float32
    assert float(value) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- serialisation, errors


def test_models_compiled_with_the_loss_reload_from_keras_files(tmp_path):
    labels, logits = random_batch(num_classes=3, seed=8)
    inputs = keras.Input((6, 7, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    images = np.random.default_rng(0).random((2, 6, 7, 3)).astype(np.float32)
    for loss in (segmentation_loss(THREE), segmentation_loss(THREE, "ce+l2", 0.3, [1.0, 2.0, 0.5])):
        model.compile(optimizer="adam", loss=loss)
        before = model.evaluate(images, labels, verbose=0)
        model.save(tmp_path / "model.keras")
        reloaded = keras.models.load_model(tmp_path / "model.keras")
        assert reloaded.evaluate(images, labels, verbose=0) == pytest.approx(before, rel=1e-6)
    restored = SegmentationLoss.from_config(segmentation_loss(THREE, "ce+dice", 0.3, [1, 2, 3]).get_config())
    assert (restored.kind, restored.reconstruction_weight, restored.class_weights) == ("ce+dice", 0.3, [1, 2, 3])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"kind": "focal"}, "Unknown loss 'focal'"),
     ({"class_weights": [1.0, 2.0]}, "Expected 3 finite non-negative class weights"),
     ({"class_weights": [1.0, -1.0, 1.0]}, "non-negative"),
     ({"class_weights": [0.0, 0.0, 0.0]}, "at least one positive"),
     ({"kind": "ce+l2", "reconstruction_weight": -1.0}, "non-negative reconstruction weight")],
)
def test_bad_loss_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        segmentation_loss(THREE, **kwargs)


# --------------------------------------------------------------------------- median frequency


def test_median_frequency_weights_by_hand():
    # Image A: 0 0 / 1 void -> 3 valid pixels; image B: all class 1 (4 pixels); class 2 absent.
    image_a = np.array([[0, 0], [1, VOID]])
    image_b = np.ones((2, 2), int)
    # freq0 = 2/3 (A only), freq1 = (1+4)/(3+4) = 5/7, median = 29/42.
    expected = [29 / 42 / (2 / 3), 29 / 42 / (5 / 7), 0.0]
    np.testing.assert_allclose(median_frequency_weights([image_a, image_b], THREE), expected, rtol=1e-6)
    # Same from one (B, H, W, 1) batch and from datasets of labels, pairs and dicts.
    batch = np.stack([image_a, image_b])[..., None].astype(np.uint8)
    np.testing.assert_allclose(median_frequency_weights([batch], THREE), expected, rtol=1e-6)
    labels = tf.data.Dataset.from_tensor_slices(batch)
    for dataset in (labels, labels.map(lambda l: (tf.zeros((2, 2, 3)), l)),
                    labels.map(lambda l: {"image": tf.zeros((2, 2, 3)), "label": l})):
        np.testing.assert_allclose(median_frequency_weights(dataset, THREE), expected, rtol=1e-6)


def test_median_frequency_weights_match_numpy_on_random_maps():
    rng = np.random.default_rng(10)
    maps = [rng.choice([0, 1, 1, 2, 3, 3, 3, VOID], (5 + i, 6)) for i in range(6)]
    maps[2][maps[2] == 3] = 0  # class 3 missing from one image
    count = np.zeros(4)
    pixels = np.zeros(4)
    for m in maps:
        valid = m[m != VOID]
        for c in range(4):
            if (valid == c).any():
                count[c] += (valid == c).sum()
                pixels[c] += valid.size
    frequency = count / pixels
    np.testing.assert_allclose(
        median_frequency_weights(maps, FOUR),
        np.median(frequency) / frequency, rtol=1e-6,
    )


def test_median_frequency_rejects_values_outside_the_class_set():
    with pytest.raises(ValueError, match="Expected label values in 0..2 or 255"):
        median_frequency_weights([np.array([[0, 7]])], THREE)
    with pytest.raises(ValueError, match="at least one non-void pixel"):
        median_frequency_weights([np.full((2, 2), VOID)], THREE)
