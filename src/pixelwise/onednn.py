"""oneDNN for TensorFlow on every x86 CPU: turned on when pixelwise is imported first.

TensorFlow 2.21's x86 Linux wheels carry oneDNN kernels but use them by default only on
CPUs with AVX-512 VNNI/BF16 or AMX. On others (AVX2 + FMA: Zen 3 EPYC here) convolutions
and their gradients fall back to Eigen's. Measured on a Zen 3 EPYC (AVX2 + FMA), alone,
one train step at 192x256, batch 8 (``benchmarks/train_step_variants.py base r50|mnv3``,
BENCHMARKS.md "oneDNN on AVX2"): U-Net on ResNet50 4.93 -> 3.48 s (1.42x), on
MobileNetV3-Large 1.83 -> 1.44 s (1.27x).

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported. So ``import pixelwise``
sets it to ``1`` (on x86-64 only, and only when neither the variable is set nor TensorFlow
already imported): the ``pixelwise`` command, and a script that imports pixelwise before
TensorFlow, get oneDNN. ``TF_ENABLE_ONEDNN_OPTS=0`` keeps TensorFlow's own choice off;
:func:`onednn_enabled` says what this process has (a run's ``metrics.json`` records it).

oneDNN's convolution of an *empty* batch is wrong in TensorFlow 2.21: it returns its input,
so the next convolution fails ("input depth must be evenly divisible by filter depth").
Distribution strategies hand replicas empty shares of a short last batch; the training
loop pads validation so that none is empty (:func:`pixelwise.data.pipeline.void_padding`).

Example:
    >>> onednn_enabled() in (True, False, None)
    True
"""

from __future__ import annotations

import os
import platform
import sys

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def enable_onednn() -> bool:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` if it takes effect and is not the user's choice.

    Returns True if it was set now; False when the variable was already set, TensorFlow is
    already imported (it read the variable then), or the CPU is not x86-64.
    """
    if VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ[VARIABLE] = "1"
    return True


def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow uses oneDNN; None if TensorFlow cannot tell."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


__all__ = ["VARIABLE", "enable_onednn", "onednn_enabled"]
