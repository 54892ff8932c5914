"""Tests of pixelwise.metrics: Keras metrics and NumPy helpers vs independent NumPy counts."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from pixelwise.class_sets import ClassSet
from pixelwise.metrics import (
    MeanIoU, PixelAccuracy, class_accuracy_from_confusion, confusion_matrix, dice_from_confusion,
    frequency_weighted_iou_from_confusion, iou_from_confusion, mean_class_accuracy_from_confusion,
    mean_dice_from_confusion, mean_iou_from_confusion, pixel_accuracy_from_confusion,
    precision_from_confusion, recall_from_confusion, segmentation_metrics,
)

VOID = 255
K = 5


def random_batch(seed, shape=(3, 8, 9), num_classes=K, absent=()):
    rng = np.random.default_rng(seed)
    classes = [c for c in range(num_classes) if c not in absent]
    labels = rng.choice(classes, shape)
    labels[rng.random(shape) < 0.2] = VOID
    logits = rng.normal(size=shape + (num_classes,)).astype(np.float32)
    # Make predictions agree with the labels often, so IoUs are far from 0.
    agree = (rng.random(shape) < 0.6) & (labels != VOID)
    logits[agree, labels[agree]] += 5.0
    for c in absent:  # never predicted either
        logits[..., c] = -50.0
    return labels[..., None].astype(np.int32), logits


def reference_scores(labels, logits, num_classes=K):
    """Per-class IoU, mean IoU and pixel accuracy from explicit per-class pixel sets."""
    labels = labels[..., 0]
    predictions = logits.argmax(-1)
    valid = labels != VOID
    ious = []
    for c in range(num_classes):
        truth = valid & (labels == c)
        predicted = valid & (predictions == c)
        union = (truth | predicted).sum()
        ious.append((truth & predicted).sum() / union if union else math.nan)
    ious = np.array(ious)
    accuracy = (predictions[valid] == labels[valid]).mean()
    return ious, np.nanmean(ious), accuracy


# --------------------------------------------------------------------------- Keras metrics


@pytest.mark.parametrize("seed, absent", [(0, ()), (1, (3,)), (2, (0, 4))])
def test_keras_metrics_equal_numpy_over_several_batches(seed, absent):
    batches = [random_batch(seed * 10 + i, absent=absent) for i in range(3)]
    mean_iou, accuracy = MeanIoU(K), PixelAccuracy()
    for labels, logits in batches:
        mean_iou.update_state(labels, logits)
        accuracy.update_state(labels, logits)
    all_labels = np.concatenate([b[0] for b in batches])
    all_logits = np.concatenate([b[1] for b in batches])
    ious, expected_mean, expected_accuracy = reference_scores(all_labels, all_logits)
    assert float(mean_iou.result()) == pytest.approx(expected_mean, rel=1e-6)
    np.testing.assert_allclose(mean_iou.per_class_iou(), ious, rtol=1e-6)  # NaN where absent
    assert np.isnan(mean_iou.per_class_iou()[list(absent)]).all()
    assert float(accuracy.result()) == pytest.approx(expected_accuracy, rel=1e-6)


def test_void_pixels_are_ignored_whatever_is_predicted_there():
    labels, logits = random_batch(5)
    void = labels[..., 0] == VOID
    changed = logits.copy()
    changed[void] = np.random.default_rng(1).normal(scale=9, size=changed[void].shape)
    scores = []
    for values in (logits, changed):
        mean_iou, accuracy = MeanIoU(K), PixelAccuracy()
        mean_iou.update_state(labels, values)
        accuracy.update_state(labels, values)
        scores.append((float(mean_iou.result()), float(accuracy.result())))
    assert scores[0] == scores[1]


def test_hand_computed_scores():
    # 2x3 labels with one void; predictions: two right of class 0, one 1 -> 0, one 2 right, one 2 -> 1.
    labels = np.array([[0, 0, 1], [2, 2, VOID]]).reshape(1, 2, 3, 1)
    predicted = np.array([[0, 0, 0], [2, 1, 1]])
    logits = np.eye(3, dtype=np.float32)[predicted][None]
    # IoU0 = 2/3, IoU1 = 0/2, IoU2 = 1/2; accuracy 3/5.
    mean_iou, accuracy = MeanIoU(3), PixelAccuracy()
    mean_iou.update_state(labels, logits)
    accuracy.update_state(labels, logits)
    np.testing.assert_allclose(mean_iou.per_class_iou(), [2 / 3, 0, 1 / 2])
    assert float(mean_iou.result()) == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    assert float(accuracy.result()) == pytest.approx(3 / 5)
    cm = confusion_matrix(labels, predicted[None], 3)
    np.testing.assert_array_equal(cm, [[2, 0, 0], [1, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(mean_iou.confusion_matrix(), cm)


def test_metrics_in_fit_are_logged_as_mean_iou_and_pixel_accuracy_and_reload(tmp_path):
    class_set = ClassSet("three", ("a", "b", "c"), ((0, 0, 0),) * 3)
    rng = np.random.default_rng(0)
    images = rng.random((4, 8, 8, 3)).astype(np.float32)
    labels = rng.choice([0, 1, 2, VOID], (4, 8, 8, 1)).astype(np.int32)
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=VOID),
        metrics=segmentation_metrics(class_set),
    )
    history = model.fit(images, labels, validation_data=(images, labels), epochs=1, verbose=0)
    assert {"mean_iou", "val_mean_iou", "pixel_accuracy", "val_pixel_accuracy"} <= set(history.history)
    logits = model.predict(images, verbose=0)
    _, expected_mean, expected_accuracy = reference_scores(labels, logits, 3)
    results = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert results["mean_iou"] == pytest.approx(expected_mean, rel=1e-5)
    assert results["pixel_accuracy"] == pytest.approx(expected_accuracy, rel=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    again = reloaded.evaluate(images, labels, verbose=0, return_dict=True)
    assert again["mean_iou"] == pytest.approx(results["mean_iou"], rel=1e-6)
    assert again["pixel_accuracy"] == pytest.approx(results["pixel_accuracy"], rel=1e-6)


def test_metric_configs_round_trip():
    mean_iou = MeanIoU.from_class_set(ClassSet("x", ("a", "b"), ((0, 0, 0),) * 2, ignore_label=9))
    restored = MeanIoU.from_config(mean_iou.get_config())
    assert (restored.name, restored.num_classes, restored.ignore_class) == ("mean_iou", 2, 9)
    accuracy = PixelAccuracy.from_config(PixelAccuracy(ignore_class=9, num_classes=2).get_config())
    assert (accuracy.name, accuracy.ignore_class, accuracy.num_classes) == ("pixel_accuracy", 9, 2)


def test_reset_state_starts_over():
    labels, logits = random_batch(7)
    accuracy = PixelAccuracy()
    accuracy.update_state(labels, logits)
    accuracy.reset_state()
    accuracy.update_state(labels[:1], logits[:1])
    assert float(accuracy.result()) == pytest.approx(reference_scores(labels[:1], logits[:1])[2], rel=1e-6)


# --------------------------------------------------------------------------- NumPy helpers


def test_confusion_matrix_accumulates_and_matches_explicit_counts():
    total = np.zeros((K, K), np.int64)
    expected = np.zeros((K, K), np.int64)
    for seed in range(3):
        labels, logits = random_batch(seed)
        predictions = logits.argmax(-1)
        total += confusion_matrix(labels, predictions, K, ignore_label=VOID)
        for t, p in zip(labels[..., 0].ravel(), predictions.ravel()):
            if t != VOID:
                expected[t, p] += 1
    np.testing.assert_array_equal(total, expected)


@pytest.mark.parametrize("seed, absent", [(3, ()), (4, (2,))])
def test_scores_from_confusion_equal_the_keras_metrics(seed, absent):
    labels, logits = random_batch(seed, absent=absent)
    cm = confusion_matrix(labels, logits.argmax(-1), K)
    ious, expected_mean, expected_accuracy = reference_scores(labels, logits)
    np.testing.assert_allclose(iou_from_confusion(cm), ious)
    assert mean_iou_from_confusion(cm) == pytest.approx(expected_mean)
    assert pixel_accuracy_from_confusion(cm) == pytest.approx(expected_accuracy)
    mean_iou = MeanIoU(K)
    mean_iou.update_state(labels, logits)
    assert float(mean_iou.result()) == pytest.approx(mean_iou_from_confusion(cm), rel=1e-6)


def test_class_accuracy_and_empty_matrices():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    np.testing.assert_allclose(class_accuracy_from_confusion(cm), [0.75, np.nan, 0.5])
    assert mean_class_accuracy_from_confusion(cm) == pytest.approx(0.625)
    empty = np.zeros((3, 3), np.int64)
    assert math.isnan(mean_iou_from_confusion(empty)) and math.isnan(pixel_accuracy_from_confusion(empty))


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((2, 3, 4)), 4)
    with pytest.raises(ValueError, match=r"labels in 0..3 or 255 \(void\), received values in 0..7"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 4)
    with pytest.raises(ValueError, match="predictions in 0..3"):
        confusion_matrix(np.array([0, 1]), np.array([0, 4]), 4)


@pytest.mark.parametrize("seed, absent", [(5, ()), (6, (1,)), (7, (0, 3))])
def test_precision_recall_dice_and_frequency_weighted_iou_equal_numpy(seed, absent):
    """Each score from explicit per-class pixel sets, never from a confusion matrix."""
    labels, logits = random_batch(seed, absent=absent)
    truth_map, predicted_map = labels[..., 0], logits.argmax(-1)
    # A class predicted somewhere but never in the labels: precision 0, recall NaN.
    stray = (truth_map == 2) & (predicted_map == 2)
    if 3 in absent:
        predicted_map = np.where(stray, 3, predicted_map)
    cm = confusion_matrix(truth_map, predicted_map, K)
    valid = truth_map != VOID
    precision, recall, dice, iou, support = [], [], [], [], []
    for c in range(K):
        truth, predicted = valid & (truth_map == c), valid & (predicted_map == c)
        both = (truth & predicted).sum()
        precision.append(both / predicted.sum() if predicted.sum() else math.nan)
        recall.append(both / truth.sum() if truth.sum() else math.nan)
        sizes = truth.sum() + predicted.sum()
        dice.append(2 * both / sizes if sizes else math.nan)
        union = (truth | predicted).sum()
        iou.append(both / union if union else math.nan)
        support.append(truth.sum())
    np.testing.assert_allclose(precision_from_confusion(cm), precision)
    np.testing.assert_allclose(recall_from_confusion(cm), recall)
    np.testing.assert_allclose(dice_from_confusion(cm), dice)
    assert mean_dice_from_confusion(cm) == pytest.approx(np.nanmean(dice))
    weights = np.array(support) / valid.sum()
    expected_fw = sum(w * v for w, v in zip(weights, iou) if w > 0)
    assert frequency_weighted_iou_from_confusion(cm) == pytest.approx(expected_fw)
    # Dice and IoU of one class are tied: D = 2 IoU / (1 + IoU).
    iou = np.array(iou)
    np.testing.assert_allclose(dice_from_confusion(cm), 2 * iou / (1 + iou))
    if 3 in absent and stray.any():
        assert precision_from_confusion(cm)[3] == 0 and math.isnan(recall_from_confusion(cm)[3])


def test_scores_of_an_empty_matrix_are_nan():
    empty = np.zeros((3, 3), np.int64)
    assert math.isnan(frequency_weighted_iou_from_confusion(empty))
    assert math.isnan(mean_dice_from_confusion(empty))
    assert np.isnan(precision_from_confusion(empty)).all() and np.isnan(dice_from_confusion(empty)).all()
