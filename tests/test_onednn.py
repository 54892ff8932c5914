"""``import pixelwise`` turns TensorFlow's oneDNN kernels on for x86 CPUs (pixelwise.onednn)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from pixelwise import onednn

PROBE = ("import {first}, {second}\n"
         "from tensorflow.python.util import _pywrap_util_port\n"
         "print('ONEDNN', _pywrap_util_port.IsMklEnabled())")

x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                         reason="pixelwise turns oneDNN on on x86-64 CPUs only")


def _probe(first: str, second: str, **env) -> bool:
    environment = {k: v for k, v in os.environ.items() if k != onednn.VARIABLE}
    done = subprocess.run([sys.executable, "-c", PROBE.format(first=first, second=second)],
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split("ONEDNN ")[-1].strip() == "True"


@x86
def test_importing_pixelwise_first_turns_onednn_on():
    assert _probe("pixelwise", "tensorflow")


def test_the_users_setting_wins():
    assert not _probe("pixelwise", "tensorflow", TF_ENABLE_ONEDNN_OPTS="0")


def test_enable_onednn_leaves_a_set_variable_and_an_imported_tensorflow_alone(monkeypatch):
    monkeypatch.setenv(onednn.VARIABLE, "0")
    assert onednn.enable_onednn() is False and os.environ[onednn.VARIABLE] == "0"
    monkeypatch.delenv(onednn.VARIABLE)
    import tensorflow  # noqa: F401  (imported: the variable would come too late)

    assert onednn.enable_onednn() is False and onednn.VARIABLE not in os.environ


@x86
def test_prefer_eigen_for_batch_one_undoes_only_pixelwises_own_setting():
    code = ("import pixelwise\nfrom pixelwise.onednn import prefer_eigen_for_batch_one\n"
            "print('CHANGED', prefer_eigen_for_batch_one())\n" + PROBE.format(
                first="tensorflow", second="pixelwise"))
    for env, changed, enabled in (({}, True, False), ({"TF_ENABLE_ONEDNN_OPTS": "1"}, False, True)):
        environment = {k: v for k, v in os.environ.items() if k != onednn.VARIABLE}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3", **env}, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"CHANGED {changed}" in done.stdout
        assert f"ONEDNN {enabled}" in done.stdout


@pytest.mark.parametrize("tile, eigen", [([], True), (["--tile", "64"], False)])
def test_predict_of_whole_images_asks_for_eigen_and_tiled_predict_does_not(monkeypatch, tmp_path,
                                                                          tile, eigen):
    from pixelwise import cli

    calls = []
    monkeypatch.setattr(cli, "prefer_eigen_for_batch_one", lambda: calls.append(True))
    monkeypatch.setattr(cli, "load_tensorflow_quietly", lambda: None)
    code = cli.main(["predict", "--run", str(tmp_path / "no-run"), "--out", str(tmp_path / "out"),
                     *tile, str(tmp_path / "image.png")])
    assert code == 2  # the missing run folder, after the choice was made
    assert bool(calls) is eigen
