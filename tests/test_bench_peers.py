"""benchmarks/bench_peers.py --quick: pixelwise and segmentation_models.pytorch side by side.

The peers (torch, torchvision, segmentation_models_pytorch, timm) are the ``peers`` extra,
not ``dev``: without them the test skips, naming the install command.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_peers  # noqa: E402

MISSING = [m for m in ("torch", "torchvision", "segmentation_models_pytorch", "timm")
           if importlib.util.find_spec(m) is None]


def test_ratios_and_recommendation_follow_the_figures():
    figures = {"pixelwise-tensorflow": {"train_images_per_s": 2.0, "latency_s": 0.2,
                                        "params": {"encoder": 10, "decoder_and_head": 5}},
               "pixelwise-jax": {"train_images_per_s": 4.0, "latency_s": 0.1,
                                 "params": {"encoder": 10, "decoder_and_head": 5}},
               "smp-torch": {"train_images_per_s": 2.5, "latency_s": 0.15,
                             "params": {"encoder": 9, "decoder_and_head": 5}}}
    bench_peers.add_ratios(figures)
    assert figures["pixelwise-jax"]["train_over_smp"] == pytest.approx(1.6)
    assert figures["pixelwise-tensorflow"]["latency_smp_over_pixelwise"] == pytest.approx(0.75)
    assert figures["pixelwise-jax"]["params_minus_smp"] == {"encoder": 1, "decoder_and_head": 0}
    assert figures["recommended_training_backend"] == "pixelwise-jax"
    table = "\n".join(bench_peers.markdown_table({"p": figures}))
    assert "pixelwise-jax (recommended)" in table and "1.60×" in table


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: the peers "
                    'extra is not in dev (pip install -e ".[peers]")')
def test_quick_run_measures_every_framework(tmp_path):
    out = tmp_path / "peers.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_peers.py"), "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=1200,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    figures = results["pairs"]["unet_mobilenetv3large"]
    for framework in bench_peers.FRAMEWORKS:
        assert figures[framework]["train_images_per_s"] > 0, framework
        assert figures[framework]["latency_s"] > 0, framework
    # The same architecture: MobileNetV3-Large U-Net has the same trainable parameters in both.
    assert figures["pixelwise-tensorflow"]["params"] == figures["smp-torch"]["params"]
    assert figures["recommended_training_backend"] in (
        "pixelwise-tensorflow", "pixelwise-tensorflow-eigen", "pixelwise-jax")
    # pixelwise's TensorFlow worker has oneDNN on; the "-eigen" one has TensorFlow's default off.
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert results["versions"]["pixelwise-tensorflow"]["onednn"] is True
    assert results["versions"]["pixelwise-tensorflow-eigen"]["onednn"] is False
    assert "| unet_mobilenetv3large | smp-torch |" in run.stdout
