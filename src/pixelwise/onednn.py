"""oneDNN for TensorFlow on every x86 CPU: turned on when pixelwise is imported first.

TensorFlow 2.21's x86 Linux wheels carry oneDNN kernels but use them by default only on
CPUs with AVX-512 VNNI/BF16 or AMX. On others (AVX2 + FMA: Zen 3 EPYC here) convolutions
and their gradients fall back to Eigen's. Measured on a Zen 3 EPYC (AVX2 + FMA), 2 threads,
alone (``python benchmarks/bench_onednn.py``, BENCHMARKS.md "oneDNN on AVX2"), a U-Net
train step at 192x256, batch 8, is 1.21x (ResNet50), 1.43x (MobileNetV3-Large) and 1.26x
(EfficientNet-Lite0) faster with oneDNN; inference at batch 4 1.16-1.40x.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported. So ``import pixelwise``
sets it to ``1`` (on x86-64 only, and only when neither the variable is set nor TensorFlow
already imported): the ``pixelwise`` command, and a script that imports pixelwise before
TensorFlow, get oneDNN. ``TF_ENABLE_ONEDNN_OPTS=0`` keeps TensorFlow's own choice off;
:func:`onednn_enabled` says what this process has (a run's ``metrics.json`` records it).

oneDNN pays at batch 4. At batch 1 it is slower than Eigen (1.37-1.72x, same machine,
U-Nets at 384x480), so ``pixelwise predict`` of whole images, one at a time, keeps Eigen
(:func:`prefer_eigen_for_batch_one`); a script serving single images can set
``TF_ENABLE_ONEDNN_OPTS=0`` itself, or serve the TFLite export.

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


_set_by_pixelwise = False


def enable_onednn() -> bool:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` if it takes effect and is not the user's choice.

    Returns True if it was set now; False when the variable was already set, TensorFlow is
    already imported (it read the variable then), or the CPU is not x86-64.
    """
    global _set_by_pixelwise
    if VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ[VARIABLE] = "1"
    _set_by_pixelwise = True
    return True


def prefer_eigen_for_batch_one() -> bool:
    """Undo :func:`enable_onednn` for a process that will run the model one image at a time.

    oneDNN's kernels pay at batch 4; at batch 1 TensorFlow's Eigen kernels are faster
    (measured on a Zen 3 EPYC, AVX2, 2 threads, U-Nets at 384x480, ``python
    benchmarks/bench_onednn.py``: Eigen 1.37-1.72x faster at batch 1, oneDNN 1.16-1.40x
    faster at batch 4). ``pixelwise predict`` without ``--tile`` calls this before TensorFlow loads.
    Returns True if it changed the setting: not when the user set the variable, nor once
    TensorFlow is imported.
    """
    global _set_by_pixelwise
    if not _set_by_pixelwise or "tensorflow" in sys.modules:
        return False
    os.environ[VARIABLE] = "0"
    _set_by_pixelwise = False
    return True


def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow uses oneDNN; None if TensorFlow cannot tell."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


__all__ = ["VARIABLE", "enable_onednn", "onednn_enabled", "prefer_eigen_for_batch_one"]
