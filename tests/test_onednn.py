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
