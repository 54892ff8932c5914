"""evaluate(): split-wide confusion matrix and metrics, checked against an independent NumPy computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.inference.options import PredictOptions
from run_fixture import TINY_CLASSES, write_run

VOID = TINY_CLASSES.ignore_label


def _examples(seed=0):
    """Images of different sizes; labels with void borders; class 2 never in the labels."""
    rng = np.random.default_rng(seed)
    examples = []
    for height, width in ((30, 40), (36, 28), (25, 50)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        label = rng.integers(0, 2, (height, width, 1)).astype(np.uint8)
        label[:2] = VOID
        examples.append((image, label))
    return examples


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference_predictions(model, examples, model_size=None, fixed=None):
    """Predicted label maps, computed step by step without pixelwise.inference.files."""
    import tensorflow as tf

    pairs = []
    for image, label in examples:
        if fixed is not None:
            image = np.clip(np.round(tf.image.resize(image.astype(np.float32), fixed, antialias=True)
                                     .numpy()), 0, 255).astype(np.uint8)
            label = tf.image.resize(label, fixed, method="nearest").numpy()
        x = image.astype(np.float32)
        if model_size is not None:
            x = np.clip(np.round(tf.image.resize(x, model_size, antialias=True).numpy()), 0, 255)
        probs = _softmax(np.asarray(model(x[None] / 255.0, training=False))[0])
        probs = tf.image.resize(probs, label.shape[:2], method="bilinear").numpy()
        pairs.append((label[..., 0], probs.argmax(-1)))
    return pairs


def _numpy_metrics(pairs, num_classes):
    """IoU from set operations per class, over all pixels of all images, void excluded."""
    true = np.concatenate([t.ravel() for t, _ in pairs])
    pred = np.concatenate([p.ravel() for _, p in pairs])
    keep = true != VOID
    true, pred = true[keep], pred[keep]
    iou = []
    for c in range(num_classes):
        union = np.sum((true == c) | (pred == c))
        iou.append(np.sum((true == c) & (pred == c)) / union if union else np.nan)
    iou = np.array(iou)
    return iou, np.nanmean(iou), np.mean(true == pred), len(true)


@pytest.mark.parametrize("mode", ["native", "native-model-size", "fixed"])
def test_metrics_equal_numpy(conv_model, mode):
    from pixelwise.evaluation.evaluator import evaluate

    examples = _examples()
    kwargs, reference = {}, {}
    if mode == "native-model-size":
        kwargs, reference = {"options": PredictOptions(model_size=32)}, {"model_size": (32, 32)}
    elif mode == "fixed":
        kwargs, reference = {"image_size": 24}, {"fixed": (24, 24)}
    result = evaluate(conv_model, examples, TINY_CLASSES, **kwargs)
    iou, mean_iou, accuracy, counted = _numpy_metrics(
        _reference_predictions(conv_model, examples, **reference), 3)
    np.testing.assert_allclose(result.iou, iou, rtol=1e-12)
    assert result.mean_iou == pytest.approx(mean_iou, rel=1e-12)
    assert result.pixel_accuracy == pytest.approx(accuracy, rel=1e-12)
    assert result.confusion.sum() == counted  # void excluded
    assert result.num_images == 3
    assert result.image_size == ((24, 24) if mode == "fixed" else None)
    # The fixed size is also the size the model sees, unless options say otherwise.
    assert result.options.model_size == ((24, 24) if mode == "fixed" else
                                         (32, 32) if mode == "native-model-size" else "native")


def test_class_absent_everywhere_is_left_out_of_the_mean():
    from pixelwise.evaluation.evaluator import EvaluationResult

    confusion = np.array([[5, 1, 0], [2, 2, 0], [0, 0, 0]])
    result = EvaluationResult(confusion, TINY_CLASSES, 1)
    assert np.isnan(result.iou[2])
    assert result.mean_iou == pytest.approx((5 / 8 + 2 / 5) / 2)
    data = result.to_json()
    assert data["per_class"]["square"]["iou"] is None
    assert data["classes_in_mean"] == ["background", "disc"]
    table = result.table()
    assert "square" in table and "62.50" in table and "void excluded" in table


def test_run_folder_uses_its_training_size_and_writes_results(tmp_path, conv_model):
    from pixelwise.evaluation.evaluator import evaluate, write_evaluation

    run = write_run(tmp_path / "run", conv_model, config={"image_size": 32})
    examples = _examples(1)
    result = evaluate(run, examples)
    assert result.options.model_size == (32, 32)
    iou, *_ = _numpy_metrics(_reference_predictions(conv_model, examples, model_size=(32, 32)), 3)
    np.testing.assert_allclose(result.iou, iou)

    paths = write_evaluation(result, run, "validation", extra={"dataset": "tiny"})
    metrics = json.loads(paths["metrics"].read_text())
    assert paths["metrics"].name == "eval-validation.json"
    assert metrics["dataset"] == "tiny" and metrics["mean_iou"] == pytest.approx(result.mean_iou, abs=1e-6)
    confusion = json.loads(paths["confusion"].read_text())
    assert confusion["matrix"] == result.confusion.tolist()
    assert confusion["class_names"] == list(TINY_CLASSES.class_names)
    assert metrics["predict_options"]["model_size"] == [32, 32] and metrics["image_size"] is None
    assert Image.open(paths["heatmap"]).format == "PNG"
    assert not list(run.glob(".*.tmp"))


def test_normalised_confusion_rows_sum_to_one():
    from pixelwise.evaluation.confusion_plot import normalised_confusion

    matrix = normalised_confusion([[3, 1], [0, 0]])
    np.testing.assert_allclose(matrix, [[0.75, 0.25], [0.0, 0.0]])


def test_bad_labels_and_mismatch_are_clear_errors(conv_model):
    from pixelwise.class_sets import VOC
    from pixelwise.evaluation.evaluator import evaluate

    image, label = _examples()[0]
    with pytest.raises(ValueError, match="labels in 0..2 or 255"):
        evaluate(conv_model, [(image, np.full_like(label, 7))], TINY_CLASSES)
    with pytest.raises(ValueError, match="same size"):
        evaluate(conv_model, [(image, label[:-1])], TINY_CLASSES)
    with pytest.raises(ValueError, match="mismatch"):
        evaluate(conv_model, [(image, label)], VOC)
    with pytest.raises(ValueError, match="empty"):
        evaluate(conv_model, [], TINY_CLASSES)


def test_results_get_the_umask_mode_and_an_unwritable_folder_is_one_clear_error(tmp_path, conv_model):
    import os
    import stat

    from pixelwise.evaluation.evaluator import evaluate, write_evaluation

    result = evaluate(conv_model, _examples(1), class_set=TINY_CLASSES)
    for mask, expected in ((0o022, 0o644), (0o077, 0o600)):
        previous = os.umask(mask)
        try:
            paths = write_evaluation(result, tmp_path / f"umask{mask:03o}", "validation")
        finally:
            os.umask(previous)
        assert {stat.S_IMODE(p.stat().st_mode) for p in paths.values()} == {expected}

    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(NotADirectoryError) as raised:
        write_evaluation(result, tmp_path / "afile" / "eval", "validation")
    message = str(raised.value)
    assert message.startswith(f"Cannot write {str(tmp_path / 'afile' / 'eval' / 'eval-validation.json')!r}")
    assert "is a file, not a folder; choose another --out" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "umask022", "umask077"]


def test_an_unwritable_out_fails_before_the_dataset_is_loaded(tmp_path, conv_model):
    from pixelwise.evaluation.evaluator import evaluate_model_file, evaluate_run

    conv_model.save(tmp_path / "model.keras")
    run = write_run(tmp_path / "run", conv_model, config={"dataset": "no_such_dataset"})
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "eval"
    with pytest.raises(NotADirectoryError, match="is a file, not a folder; choose another --out"):
        evaluate_model_file(tmp_path / "model.keras", "no_such_dataset", out=out)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder; choose another --out"):
        evaluate_run(run, out=out)
