"""ONNX conversion of an export's serving function (tf2onnx), and running it (onnxruntime).

tf2onnx, onnx and onnxruntime are pixelwise's optional ``export`` extra
(``pip install -e ".[export]"``): they are imported when an ONNX export is asked for,
and their absence is one :class:`~pixelwise.extras.MissingExtraError` naming the extra. The graph is
converted at opset :data:`ONNX_OPSET`; the class names travel in the model's
``metadata_props`` (key ``class_names``, a JSON list) and in ``class_names.txt``.

Example:
    >>> (out / "model.onnx").write_bytes(convert_onnx(module, class_set.class_names))  # doctest: +SKIP
    >>> onnx_labels(out / "model.onnx")(batch)                                          # doctest: +SKIP
"""

from __future__ import annotations

import json

import numpy as np

from pixelwise import extras
from pixelwise.export.tflite import available_cpus

#: ONNX opset of the exported graph: ONNX 1.12+ and onnxruntime 1.12+ run it, and tf2onnx
#: 1.16+ converts every op of the serving graph at it (Resize, ArgMax, Softmax, Pad reflect).
ONNX_OPSET = 17


def import_extra(module: str):
    """Import ``module`` of the ``export`` extra, or raise :class:`~pixelwise.extras.MissingExtraError`."""
    return extras.import_extra(module, extra="export", needed_for="format='onnx'")


def require_export_extra() -> None:
    """Check, before any work, that the converter and the runtime can be imported."""
    for module in ("tf2onnx", "onnx", "onnxruntime"):
        import_extra(module)


def convert_onnx(module, class_names) -> bytes:
    """The ONNX model of ``module.serve`` (uint8 ``images`` in, ``labels`` out) as bytes.

    Args:
        module: A ``tf.Module`` whose ``serve`` tf.function has an input signature.
        class_names: Stored in the model's metadata (``class_names``, a JSON list).
    """
    tf2onnx = import_extra("tf2onnx")
    proto, _ = tf2onnx.convert.from_function(
        module.serve, input_signature=module.serve.input_signature, opset=ONNX_OPSET)
    proto.metadata_props.add(key="class_names", value=json.dumps(list(class_names)))
    proto.producer_name = "pixelwise"
    return proto.SerializeToString()


def onnx_labels(path, num_threads: int | None = None):
    """A function ``images -> labels`` running the ``.onnx`` file in onnxruntime on the CPU.

    Args:
        path: The ``model.onnx`` file.
        num_threads: Intra-op threads; default: the CPUs this process may use.
    """
    onnxruntime = import_extra("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads or available_cpus()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: np.asarray(session.run(["labels"], {name: images})[0])
