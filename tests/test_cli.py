"""The `pixelwise` entry point as a user meets it: a fast --help, one line per error."""

import os
import re
import subprocess
import sys

import pytest
from own_data_fixture import write_images_masks

#: What TensorFlow's C++ libraries print while they load, before any log level applies.
TF_LOAD_NOTICES = re.compile(r"oneDNN|cuInit|cpu_feature_guard|cudart_stub|absl::InitializeLog")


def _pixelwise(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pixelwise.cli", *args],
                          capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def test_help_lists_every_command_without_loading_tensorflow():
    code = ("import sys; from pixelwise.cli import build_parser; "
            "build_parser().format_help(); print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
    help_text = _pixelwise("--help").stdout
    for command in ("datasets", "models", "train", "evaluate", "predict", "export"):
        assert command in help_text


@pytest.mark.slow  # ~6 s: CLI runs in fresh processes
def test_user_error_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    result = _pixelwise("predict", str(tmp_path / "missing.jpg"), "--run", str(tmp_path / "no-run"),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # TensorFlow's load-time CUDA/CPU notices are filtered: only the error remains.
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pixelwise predict: error:") and "no-run" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # ~6 s: CLI runs in fresh processes
def test_tensorflow_load_notices_are_silenced_in_every_command_group(tmp_path):
    """No CUDA, CPU-feature or oneDNN notice on a CPU-only machine, `datasets` commands included.

    ``TF_ENABLE_ONEDNN_OPTS=1`` makes TensorFlow print the notice it prints by itself on
    CPUs with AVX-512 VNNI/BF16 or AMX, so this test sees it on any x86 machine.
    """
    result = _pixelwise("datasets", "info", "synthetic_shapes", "--data-dir", str(tmp_path),
                        env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert result.returncode == 0, result.stderr
    assert "Not prepared in" in result.stdout
    noise = [line for line in result.stderr.splitlines() if TF_LOAD_NOTICES.search(line)]
    assert not noise, result.stderr


@pytest.mark.slow  # ~4 s: a CLI run in a fresh process
def test_a_keras_backend_that_is_not_installed_is_one_line_naming_the_extra(tmp_path):
    """`KERAS_BACKEND=jax` on the plain install was a 38-line traceback."""
    (tmp_path / "jax").mkdir()  # an `import jax` that fails as on a machine without it
    (tmp_path / "jax" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = _pixelwise("models", "list", env={"KERAS_BACKEND": "jax", "PYTHONPATH": path})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pixelwise: error: KERAS_BACKEND=jax")
    assert 'pip install "pixelwise[jax]"' in lines[0]


@pytest.mark.slow  # about 20 s on 2 shared cores: a build and a one-epoch training
def test_output_to_a_pipe_has_no_progress_bar_codes(tmp_path):
    """A log (stdout a pipe, not a terminal) gets plain lines: no ANSI codes or carriage
    returns from Keras' bar or TFDS' build bars; the epoch is still one line."""
    export = write_images_masks(tmp_path / "cells", num_good=6, broken=False)
    result = subprocess.run(
        [sys.executable, "-m", "pixelwise.cli", "train", "--dataset", str(export.path),
         "--data-dir", str(tmp_path / "data"), "--image-size", "64", "--batch-size", "2",
         "--epochs", "1", "--model-arg", "base_filters=4", "--image-summaries", "0",
         "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output
    assert "Generating" not in output  # TFDS' build bars are off
    assert "\x1b[" not in output and "\r" not in output, repr(output[-2000:])
    assert re.search(r"^\d+/\d+ - \d+s .*val_mean_iou", output, re.M), output
