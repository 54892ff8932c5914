"""TFLite conversion of an export's serving function: float32, float16 weights, or int8.

:func:`convert_tflite` turns the serving function of :mod:`pixelwise.export.serving` (uint8
images in, ``{"labels"}`` out) into a flatbuffer; :func:`tflite_labels` runs one in the
TFLite interpreter, as the parity check does.

* ``fp32``: the graph as it is.
* ``fp16``: weights stored as float16 (half the file), computed in float32 on CPUs
  without float16 arithmetic.
* ``int8``: full-integer post-training quantization, calibrated on real images (the
  training split's): every op runs on int8 tensors, the input resize, convolutions, the
  softmax, the resize of the probabilities and the argmax (mirror padding and cropping
  too). It is converted from the float-input twin of the serving graph (``images / 255``
  in [0, 1]) with the converter's uint8 input: a full-range calibration image pins the
  input's scale to exactly 1/255 (zero point 0), so the artefact still takes the uint8
  pixels themselves and reads them exactly. Converting the uint8 graph instead (cast,
  ``/ 255`` inside) gave the tensor between that division and a model whose first layer
  rescales (EfficientNet-Lite's ``* 255``) the scale of the rescaled one, 1.0: the model
  saw a two-level image, and the CamVid recipe agreed with Keras on 45-60 % of pixels.

Example:
    >>> tflite = convert_tflite(module, "int8", calibration_images=images)  # doctest: +SKIP
    >>> tflite_labels("model.tflite")(batch)                                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

#: The precision of each TFLite export format.
TFLITE_PRECISIONS = {"tflite": "fp32", "tflite-fp16": "fp16", "tflite-int8": "int8"}

# Lines the converter and the interpreter print straight to file descriptors 1 and 2 whatever
# TF_CPP_MIN_LOG_LEVEL says. The first even reads "input_inference_type: FLOAT32" for a uint8
# model (it describes the quantizer's internal pass), which would mislead more than inform.
_NATIVE_NOTICES = re.compile(
    r"^fully_quantize: \d+, inference_type|^INFO: Created TensorFlow Lite XNNPACK delegate")


def convert_tflite(module, precision: str = "fp32", calibration_images=None) -> bytes:
    """TFLite flatbuffer of ``module.serve``, weights frozen into constants.

    ``TFLiteConverter.from_saved_model`` on a ``tf.Module`` holding a Keras 3 model keeps
    the weights as resource variables the interpreter never initialises (TF 2.21: the
    model then outputs garbage or fails in READ_VARIABLE), so the concrete function is
    frozen first and converted with ``from_concrete_functions``.

    Args:
        module: A ``tf.Module`` whose ``serve`` tf.function takes ``images`` (uint8
            ``[B, H, W, C]``; for ``int8`` float32 in [0, 1], see the module docstring) and
            returns ``{"labels": ...}``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        calibration_images: ``int8`` only: uint8 ``(H, W, C)`` arrays (any sizes) the
            quantization ranges are measured on.

    Returns:
        The ``.tflite`` file's bytes.

    Raises:
        ValueError: An unknown precision, or ``int8`` without calibration images or with
            a uint8-input module.
    """
    if precision not in TFLITE_PRECISIONS.values():
        raise ValueError(f"Expected a precision in {sorted(set(TFLITE_PRECISIONS.values()))}, "
                         f"received {precision!r}.")
    frozen = convert_variables_to_constants_v2(module.serve.get_concrete_function())

    # Freezing flattens the outputs; restore the "labels" name of the signature.
    @tf.function(input_signature=module.serve.input_signature)
    def serve(images):
        return {"labels": frozen(images)[0]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        images = list(calibration_images or ())
        if not images:
            raise ValueError("Expected calibration images for an int8 export, received none; "
                             "pass calibration_images=N (at least 1).")
        if module.serve.input_signature[0].dtype != tf.float32:
            raise ValueError("Expected the float-input serving graph for an int8 export "
                             "(serving_module(..., float_input=True)), received a uint8 one.")
        # First a full-range image: the input's range is then exactly [0, 1], its uint8 scale 1/255.
        channels = images[0].shape[-1]
        full_range = np.zeros((8, 8, channels), np.uint8)
        full_range[::2] = 255
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            {"images": (image[None] / 255.0).astype(np.float32)}
            for image in [full_range, *images])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    with _no_interpreter_deprecation_warning(), _native_notices_filtered():
        return converter.convert()  # int8 calibration runs an interpreter


def tflite_labels(path, num_threads: int | None = None):
    """A function ``images -> labels`` running the ``.tflite`` file in the TFLite interpreter.

    Args:
        path: The ``model.tflite`` file.
        num_threads: Interpreter threads; default: the CPUs this process may use.
    """
    with _no_interpreter_deprecation_warning(), _native_notices_filtered():
        interpreter = tf.lite.Interpreter(model_path=str(path),
                                          num_threads=num_threads or available_cpus())
        interpreter.allocate_tensors()  # applies the XNNPACK delegate, which announces itself
        runner = interpreter.get_signature_runner("serving_default")
    return lambda images: np.asarray(runner(images=images)["labels"])


@contextlib.contextmanager
def _no_interpreter_deprecation_warning():
    # tf.lite.Interpreter warns (TF 2.21) that it moves to the ai-edge-litert package; it is
    # the same interpreter, and six lines about it are no news to a user of pixelwise export.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated",
                                category=UserWarning)
        yield


@contextlib.contextmanager
def _native_notices_filtered():
    """Run the block with file descriptors 1 and 2 captured; pass on all but :data:`_NATIVE_NOTICES`."""
    try:
        libc = ctypes.CDLL(None)  # the C library of this process (Linux, macOS)
    except OSError:
        libc = None
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        for fd in saved:
            os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            if libc is not None:
                libc.fflush(None)  # C++ output still in the C library's buffer belongs here too
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip() and not _NATIVE_NOTICES.search(line):
                    print(line, file=sys.stderr)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
