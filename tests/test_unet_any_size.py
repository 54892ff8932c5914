"""The chapter U-Net built with (None, None, C) on images whose sides are not multiples of 64.

Called directly, such a model fails inside Keras (its six stride-2 levels need sides that
are multiples of 64). Every entry point that feeds it arbitrary images mirrors them out to
the next size it takes and crops the result back, or refuses with a clear ``ValueError``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.inference.options import PredictOptions
from run_fixture import TINY_CLASSES

SIZES = [(50, 90), (100, 130), (65, 64)]


def _reference_labels(model, image):
    """Written out: reflect-pad each side to its next multiple of 64, predict, crop, argmax."""
    height, width = image.shape[:2]
    rows, columns = (-(-side // 64) * 64 for side in (height, width))
    padded = np.pad(image, ((0, rows - height), (0, columns - width), (0, 0)), mode="reflect")
    logits = np.asarray(model(padded[None].astype(np.float32) / 255.0, training=False))[0]
    return logits[:height, :width].argmax(-1)


def test_the_model_itself_cannot_take_these_sizes(unet_model):
    with pytest.raises(Exception):  # noqa: B017 - whatever Keras raises; the point of this file
        unet_model(np.zeros((1, 100, 130, 3), np.float32))


@pytest.mark.parametrize("size", SIZES)
def test_predict_at_native_size_mirrors_to_a_multiple_of_64(unet_model, size, random_image):
    from pixelwise.inference.files import predict

    image = random_image(*size)
    prediction = predict(unet_model, image, PredictOptions(model_size="native"), class_set=TINY_CLASSES)
    assert prediction.labels.shape == size
    np.testing.assert_array_equal(prediction.labels, _reference_labels(unet_model, image))


def test_predict_resizes_to_sizes_that_are_not_multiples_of_64(unet_model, random_image):
    from pixelwise.inference.files import predict
    from pixelwise.inference.prediction import resize_image_uint8

    image = random_image(77, 91, seed=1)
    prediction = predict(unet_model, image, PredictOptions(model_size=100), class_set=TINY_CLASSES,
                         return_probabilities=True)
    assert prediction.labels.shape == (77, 91)
    # The 100x100 resized image is itself predicted by mirroring out to 128.
    resized = resize_image_uint8(image, (100, 100))
    direct = predict(unet_model, resized, PredictOptions(model_size="native"), class_set=TINY_CLASSES)
    np.testing.assert_array_equal(direct.labels, _reference_labels(unet_model, resized))


def test_evaluate_at_native_and_odd_fixed_sizes_equals_numpy(unet_model, random_image):
    from pixelwise.evaluation.evaluator import evaluate

    rng = np.random.default_rng(2)
    examples = [(random_image(h, w, seed=i), rng.integers(0, 3, (h, w, 1)).astype(np.uint8))
                for i, (h, w) in enumerate(SIZES)]
    confusion = np.zeros((3, 3), np.int64)
    for image, label in examples:
        np.add.at(confusion, (label[..., 0].ravel(), _reference_labels(unet_model, image).ravel()), 1)
    result = evaluate(unet_model, examples, class_set=TINY_CLASSES)
    np.testing.assert_array_equal(result.confusion, confusion)
    fixed = evaluate(unet_model, examples, class_set=TINY_CLASSES, image_size=(100, 130))
    assert fixed.image_size == (100, 130) and fixed.confusion.sum() == 3 * 100 * 130


def test_tiles_that_are_not_multiples_of_64_are_refused_clearly(unet_model, random_image):
    from pixelwise.inference.prediction import predict_array

    with pytest.raises(ValueError, match=r"cannot take 100x100 tiles; sizes near it that work: \[64, 128"):
        predict_array(unet_model, random_image(100, 130), PredictOptions(tile=100))
    labels, _, _ = predict_array(unet_model, random_image(100, 130), PredictOptions(tile=64, overlap=16))
    assert labels.shape == (100, 130)


def test_fixed_size_unet_refuses_other_sizes_at_build(unet_model):
    from pixelwise.models import get_unet

    with pytest.raises(ValueError, match="multiple"):
        get_unet((100, 130, 3), num_classes=3, base_filters=4)


@pytest.mark.slow  # ~8 s: a SavedModel export
def test_savedmodel_export_at_a_non_square_odd_size_matches_predict(tmp_path, unet_model, random_image):
    import tensorflow as tf

    from pixelwise.export.serving import export_model
    from pixelwise.inference.prediction import predict_array

    path = export_model(unet_model, tmp_path / "sm", "savedmodel", class_set=TINY_CLASSES,
                        model_size=(100, 130))
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    image = random_image(100, 130, seed=3)
    labels = serve(images=tf.constant(image[None]))["labels"].numpy()[0]
    expected, _, _ = predict_array(unet_model, image, PredictOptions(model_size=(100, 130)))
    np.testing.assert_array_equal(expected, _reference_labels(unet_model, image))
    assert np.mean(labels == expected) > 0.999
