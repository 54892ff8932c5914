"""Every Keras backend: the model, loss, metric and fine-tuning tests and a train, under JAX.

The test suite runs under TensorFlow (Keras' default backend here). These tests start a
fresh Python with ``KERAS_BACKEND=jax``: one runs the backend-agnostic test modules
again, one runs ``pixelwise train`` end to end (tf.data stays the input pipeline; Keras
feeds it to JAX) and reloads its checkpoint here, under TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from pixelwise.history import read_history
from pixelwise.runs import RunFolder

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


def _run_with_jax(args, timeout):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
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
