"""Model size and cost: parameters, output shape and GFLOPs, computed from layer shapes.

FLOPs count 2 x multiply-adds of convolutions, transposed convolutions and dense
layers (the usual convention; bias adds, normalisation, activations, pooling and
concatenation are left out, they are well under 1% of a U-Net's cost). They are
derived from each layer's kernel and its input/output shapes, so they need a model
built at a concrete input size (no profiler, no forward pass).

- Conv2D: ``H_out * W_out * C_out * kh * kw * C_in / groups`` multiply-adds.
- DepthwiseConv2D: ``H_out * W_out * C_in * multiplier * kh * kw``; SeparableConv2D: that
  plus its pointwise 1x1 conv (MobileNetV3 and EfficientNetV2 encoders).
- Conv2DTranspose: every input pixel scatters a ``kh x kw x C_out`` kernel:
  ``H_in * W_in * C_in * kh * kw * C_out``.

Checked against published multiply-adds at 224x224 (pixelwise's encoders, without their
classifiers): ResNet-50 3.86 G (He et al.: 3.8 G), ConvNeXt-T 4.45 G (Liu et al.: 4.5 G).

Example:
    >>> from pixelwise.models import build
    >>> from pixelwise.models.summary import model_summary
    >>> info = model_summary(build("unet", num_classes=21))
    >>> info["params"], round(info["gflops"], 1)
    (26917781, 36.2)
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import keras

from pixelwise.files import atomic_path


def _walk(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _walk(child)


def _spatial(shape) -> int:
    dims = shape[1:-1]
    if any(d is None for d in dims):
        raise ValueError(
            f"GFLOPs need a concrete input size, but a layer has shape {tuple(shape)}; build the "
            "model with e.g. input_size=(256, 256, 3)."
        )
    return math.prod(dims)


def layer_macs(layer) -> int:
    """Multiply-adds of one layer for one image (0 for layers without a kernel)."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel_h, kernel_w, out_channels, in_channels = layer.kernel.shape
        return _spatial(layer.input.shape) * in_channels * kernel_h * kernel_w * out_channels
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, in_per_group, out_channels = layer.kernel.shape
        return _spatial(layer.output.shape) * out_channels * kernel_h * kernel_w * in_per_group
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel_h, kernel_w, in_channels, multiplier = layer.kernel.shape
        return _spatial(layer.output.shape) * in_channels * multiplier * kernel_h * kernel_w
    if isinstance(layer, keras.layers.SeparableConv2D):
        kernel_h, kernel_w, in_channels, multiplier = layer.depthwise_kernel.shape
        out_channels = layer.pointwise_kernel.shape[-1]
        return _spatial(layer.output.shape) * in_channels * multiplier * (
            kernel_h * kernel_w + out_channels)
    if isinstance(layer, keras.layers.Dense):
        rows = math.prod(d for d in layer.input.shape[1:-1] if d is not None) or 1
        return rows * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 0


def count_flops(model) -> int:
    """FLOPs (2 x multiply-adds) of ``model`` for one image at its built input size."""
    return 2 * sum(layer_macs(layer) for layer in _walk(model))


def model_summary(model) -> dict:
    """Parameters, shapes and GFLOPs per image of a built model.

    Returns:
        dict with ``name``, ``params``, ``trainable_params``, ``input_shape``,
        ``output_shape`` and ``gflops`` (None when the input size is not concrete).
    """
    try:
        gflops = count_flops(model) / 1e9
    except ValueError:
        gflops = None
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return {
        "name": model.name,
        "params": model.count_params(),
        "trainable_params": int(trainable),
        "input_shape": tuple(model.input_shape),
        "output_shape": tuple(model.output_shape),
        "gflops": gflops,
    }


PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "dot")


def check_plot_output(path):
    """Check that ``path`` has a plot format and that pydot and Graphviz are installed.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ImportError: pydot is not installed (``pip install pydot``).
        FileNotFoundError: Graphviz's ``dot`` program is not on PATH.
        ValueError: unsupported extension.
    """
    path = Path(path)
    extension = path.suffix.lstrip(".").lower()
    if extension not in PLOT_FORMATS:
        raise ValueError(
            f"Expected an output file ending in one of {', '.join('.' + f for f in PLOT_FORMATS)}, "
            f"received {str(path)!r}; e.g. 'unet.png'."
        )
    if importlib.util.find_spec("pydot") is None:
        raise ImportError(
            "Plotting needs the Python package pydot, which is not installed; install it with "
            "'pip install pydot' (it is a dependency of pixelwise: 'pip install -e .')."
        )
    if shutil.which("dot") is None:
        raise FileNotFoundError(
            "Plotting needs Graphviz's 'dot' program, which is not on PATH; install Graphviz "
            "('apt-get install graphviz', 'brew install graphviz' or 'conda install graphviz')."
        )
    return path


def plot_model_graph(model, path, show_shapes: bool = True, expand_nested: bool = False,
                     dpi: int = 96):
    """Draw ``model`` with ``keras.utils.plot_model`` (the chapter's ``unet.png``).

    Args:
        model: keras.Model.
        path: str or Path. Output file; its extension picks the format
            (png, svg, pdf, jpg, dot). Parent folders are created. Written under a
            temporary name and renamed when complete (:func:`pixelwise.files.atomic_path`).
        show_shapes: bool, default True. Print tensor shapes on the edges.
        expand_nested: bool, default False. Draw the layers inside the
            ``downsample``/``upsample`` blocks.
        dpi: int, default 96.

    Raises:
        ImportError: pydot is not installed (``pip install pydot``).
        FileNotFoundError: Graphviz's ``dot`` program is not on PATH.
        ValueError: unsupported extension.
        OSError: ``path`` cannot be written (the message names it and the cause).

    Example:
        >>> plot_model_graph(build("unet", num_classes=21), "unet.png")  # doctest: +SKIP
    """
    path = check_plot_output(path)
    with atomic_path(path) as temp:
        keras.utils.plot_model(model, to_file=str(temp), show_shapes=show_shapes,
                               show_layer_names=True, expand_nested=expand_nested, dpi=dpi)
    return path
