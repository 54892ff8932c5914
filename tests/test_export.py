"""Export round trips: load each artefact and compare it with the Keras model on the same inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixelwise.inference.options import PredictOptions
from run_fixture import TINY_CLASSES, write_run

#: Each test exports a SavedModel or a TFLite file (3-5 s each on 2 shared cores).
pytestmark = pytest.mark.slow


def _keras_reference(model, images, size, antialias):
    """Label maps from the Keras model, preprocessing written out step by step."""
    import tensorflow as tf

    x = tf.image.resize(images.astype(np.float32), size, antialias=antialias).numpy()
    x = np.clip(np.round(x), 0, 255) / 255.0
    logits = np.asarray(model(x.astype(np.float32), training=False))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    probs = tf.image.resize(probs, images.shape[1:3], method="bilinear").numpy()
    return probs.argmax(-1)


def test_savedmodel_round_trip(tmp_path, unet_model, unet_run_dir, random_image):
    import tensorflow as tf

    from pixelwise.export.serving import export_model, load_class_names

    out = export_model(unet_run_dir, tmp_path / "savedmodel", "savedmodel")
    serving = tf.saved_model.load(str(out))
    serve = serving.signatures["serving_default"]
    # At the model's size, and resized inside.
    for images in (random_image(64, 64, batch=2), random_image(80, 110, seed=1, batch=2)):
        labels = serve(images=tf.constant(images))["labels"].numpy()
        assert labels.dtype == np.uint8 and labels.shape == images.shape[:3]
        np.testing.assert_array_equal(labels, _keras_reference(unet_model, images, (64, 64), antialias=True))
    names = serving.signatures["class_names"]()["class_names"].numpy().tolist()
    assert [n.decode() for n in names] == list(TINY_CLASSES.class_names)
    assert [n.decode() for n in serving.class_names.numpy()] == list(TINY_CLASSES.class_names)
    assert load_class_names(out) == list(TINY_CLASSES.class_names)
    assert json.loads((out / "assets" / "class_set.json").read_text())["class_names"] == list(
        TINY_CLASSES.class_names)
    _check_noise_parity(out / "parity.json", "savedmodel", 1.0)
    assert json.loads((out / "parity.json").read_text())["artefact"] == "this folder"


def test_tflite_round_trip(tmp_path, unet_model, unet_run_dir, random_image):
    import tensorflow as tf

    from pixelwise.export.serving import export_model, load_class_names

    path = export_model(unet_run_dir, tmp_path / "tflite", "tflite")
    assert path.name == "model.tflite"
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    # One image per call (a fixed batch keeps the int8 graph on XNNPACK), any size.
    assert runner.get_input_details()["images"]["shape_signature"].tolist() == [1, -1, -1, 3]
    for images in (random_image(64, 64, batch=1), random_image(80, 110, seed=1, batch=1)):
        labels = runner(images=images)["labels"]
        reference = _keras_reference(unet_model, images, (64, 64), antialias=False)
        assert labels.shape == images.shape[:3]
        # TFLite kernels round differently from TF's; allow a rare flipped near-tie.
        assert np.mean(labels == reference) > 0.999
    assert load_class_names(path) == list(TINY_CLASSES.class_names)
    _check_noise_parity(path.parent / "parity.json", "tflite", 0.999)


def _check_noise_parity(path, format, least):
    """A run with no dataset is checked on noise images: agreement, no IoU."""
    from pixelwise.defaults import DEFAULT_PARITY_IMAGES

    report = json.loads(path.read_text())
    assert report["format"] == format and report["passed"] and report["pixel_agreement"] >= least
    assert report["num_images"] == DEFAULT_PARITY_IMAGES and "noise" in report["images"]
    assert report["mean_iou"] is None and report["model_size"] == [64, 64]


def test_tflite_valid_unet_mirrors_like_predict(tmp_path, random_image):
    import tensorflow as tf

    from pixelwise import models
    from pixelwise.class_sets import ISBI2012
    from pixelwise.export.serving import export_model
    from pixelwise.inference.files import predict

    unet = models.build("original_unet", input_size=(None, None, 1), num_classes=2, base_filters=2)
    path = export_model(unet, tmp_path / "valid", "tflite", class_set=ISBI2012, model_size=120)
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    images = random_image(120, 120, 1, batch=1)
    labels = runner(images=images)["labels"][0]
    expected = predict(unet, images[0], PredictOptions(model_size="native"), class_set=ISBI2012).labels
    assert np.mean(labels == expected) > 0.999


def test_existing_output_is_kept_and_bad_runs_write_nothing(tmp_path, unet_model, unet_run_dir):
    from pixelwise.export.serving import export_model

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="choose another out= or pass overwrite=True"):
        export_model(unet_run_dir, out, "savedmodel")
    assert (out / "keep.txt").read_text() == "mine"

    empty = write_run(tmp_path / "empty", unet_model, checkpoints=())
    with pytest.raises(FileNotFoundError, match="no best checkpoint"):
        export_model(empty, tmp_path / "never", "savedmodel")
    assert not (tmp_path / "never").exists()
    with pytest.raises(ValueError, match="savedmodel"):
        export_model(unet_run_dir, tmp_path / "x", "coreml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]


@pytest.mark.parametrize(("mask", "format"), [(0o022, "tflite"), (0o077, "savedmodel")])
def test_exported_files_get_the_umask_mode(tmp_path, unet_run_dir, mask, format):
    import os
    import stat

    from pixelwise.export.serving import export_model

    previous = os.umask(mask)
    try:
        out = tmp_path / "export"
        export_model(unet_run_dir, out, format)
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    expected = {name: (0o777 if (out / name).is_dir() else 0o666) & ~mask for name in modes}
    assert "class_names.txt" in modes or "assets/class_names.txt" in modes
    assert modes == expected


def test_an_unwritable_out_is_one_line_exit_2_and_leaves_nothing(tmp_path, unet_run_dir, capsys):
    from pixelwise.cli import main

    (tmp_path / "afile").write_text("not a folder")
    for out in (tmp_path / "afile" / "export", "/proc/pixelwise-export"):
        assert main(["export", "--run", str(unet_run_dir), "--out", str(out), "--format", "tflite"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"pixelwise export: error: Cannot write {str(out)!r}: ")
        assert "--out" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
