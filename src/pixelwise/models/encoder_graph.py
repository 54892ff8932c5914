"""Graph surgery on a ``keras.applications`` backbone: stable layer names and atrous strides.

A pixelwise encoder is a copy of a Keras application's graph (``keras.models.clone_model``)
with two changes, made layer by layer on the layer's config:

- **Stable names.** Some application layers are named by Keras' global counters
  (``re_lu_14``, ``activation_37``, ``layer_normalization``): their names, and the paths
  of their weights, would change with everything built before them in the process. They
  are renamed ``<class>_<k>``, ``k`` counting that class's counter-named layers in graph
  order, so a model has the same layer names and weight paths in every process.
- **Named weights.** Keras' ConvNeXt ``LayerScale`` creates its weight without a name
  (``variable_18``); the copy uses :class:`LayerScale`, the same layer with the weight
  named ``gamma``.
- **Output stride** (DeepLab's atrous convolution, Chen et al. 2017). For an output stride
  ``OS`` < 32, every layer that sees its input at stride ``s >= OS`` keeps that
  resolution: a strided convolution gets stride 1, and every spatial convolution gets
  dilation ``s / OS``, so its kernel spans the same image extent as in the original
  network. Explicit ``ZeroPadding2D`` layers there become no-ops and valid convolutions
  become "same" ones, so the feature maps stay ``1/OS`` of the input. Kernel shapes do
  not change: the ImageNet weights load as they are.
- **BatchNorm momentum** at most :data:`MAX_BN_MOMENTUM` (Keras' default, 0.99).
  MobileNetV3 ships 0.999: its moving statistics then take thousands of steps to leave
  their initial values, so a MobileNetV3 model trained from scratch on a small dataset
  predicts one class in inference mode for tens of epochs (seen on CamVid: LR-ASPP's
  validation mean IoU stayed at 1 % for 12 epochs while its training mean IoU reached
  54 %). 0.99 follows the data within a few hundred steps; fine-tuning pretrained
  weights uses 0.9 in PyTorch's and segmentation_models' defaults, so 0.99 costs a
  pretrained encoder nothing. EfficientNetV2 (0.9) and ResNet50 (0.99) are unchanged.

Example:
    >>> import keras
    >>> app = keras.applications.MobileNetV3Small(include_top=False, weights=None,
    ...                                           input_shape=(224, 224, 3))
    >>> copy = rebuild(app, keras.Input((None, None, 3)), output_stride=16)
    >>> copy.compute_output_shape((1, 224, 224, 3))
    (1, 14, 14, 576)
"""

from __future__ import annotations

import math
import re

import keras
from keras.src.applications import convnext

#: Upper bound of the copy's BatchNormalization momentum (see the module docstring).
MAX_BN_MOMENTUM = 0.99

_SPATIAL_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                  keras.layers.SeparableConv2D)
_POOLINGS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _first_image_input(layer):
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    for tensor in inputs:
        if len(tensor.shape) == 4:
            return tensor
    return None


@keras.saving.register_keras_serializable(package="pixelwise")
class LayerScale(convnext.LayerScale):
    """Keras' ConvNeXt ``LayerScale`` (x * gamma, per channel) with its weight named ``gamma``."""

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
            trainable=True, name="gamma",
        )


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Sequential):  # ConvNeXt's stem and downsampling blocks
            yield from _all_layers(layer)


def input_strides(model, side: int) -> dict[str, int | None]:
    """Stride (input side / feature side) at which each layer of ``model`` sees its input.

    Strides are powers of two: a map padded before a strided convolution (17 px at
    stride 16 of a 224 px input) counts as the map it pads.

    Args:
        model: Functional model built for a square ``side x side`` input.
        side: int. That side.

    Returns:
        Layer name -> stride, nested ``Sequential`` blocks' layers included; None for
        layers without an image input and for globally pooled (1x1) maps
        (squeeze-and-excitation branches), whose stride is not spatial.
    """
    strides = {}
    for layer in _all_layers(model):
        tensor = _first_image_input(layer)
        if tensor is None or tensor.shape[1] in (None, 1):
            strides[layer.name] = None
        else:
            strides[layer.name] = 2 ** round(math.log2(side / int(tensor.shape[1])))
    return strides


def _snake_case(class_name: str) -> str:
    # As Keras turns a class name into a default layer name (keras.src.utils.naming).
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _counter_named(layer) -> bool:
    # Keras names an unnamed layer after its class, plus "_<n>" from a process-wide counter.
    return re.fullmatch(re.escape(_snake_case(type(layer).__name__)) + r"(_\d+)?",
                        layer.name) is not None


def stable_names(model) -> dict[str, str]:
    """New names for the counter-named layers of ``model`` (others keep theirs)."""
    layers = list(_all_layers(model))
    taken = {layer.name for layer in layers if not _counter_named(layer)}
    counts: dict[str, int] = {}
    names = {}
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer) or not _counter_named(layer):
            continue
        base = _snake_case(type(layer).__name__)
        while True:
            index = counts.get(base, 0)
            counts[base] = index + 1
            candidate = f"{base}_{index}"
            if candidate not in taken:
                break
        names[layer.name] = candidate
        taken.add(candidate)
    return names


def _atrous_config(layer, config: dict, stride: int, output_stride: int) -> dict:
    rate = stride // output_stride
    if isinstance(layer, keras.layers.ZeroPadding2D):
        config["padding"] = ((0, 0), (0, 0))
    elif isinstance(layer, _SPATIAL_CONVS):
        if max(config["kernel_size"]) > 1:
            config["dilation_rate"] = (rate, rate)
            config["padding"] = "same"
        config["strides"] = (1, 1)
    elif isinstance(layer, _POOLINGS) and max(config["strides"] or config["pool_size"]) > 1:
        raise ValueError(
            f"Layer {layer.name!r} pools with a stride at stride {stride}, which an atrous "
            f"output stride of {output_stride} cannot replace; use output_stride=32."
        )
    return config


def rebuild(model, input_tensor, output_stride: int = 32, side: int = 224):
    """Copy ``model``'s graph onto ``input_tensor`` with stable names and an output stride.

    The copy has new, freshly initialised weights; copy them over with
    :func:`copy_weights`.

    Args:
        model: Functional ``keras.applications`` model built for ``side x side`` inputs.
        input_tensor: ``keras.Input`` of the copy (any height and width).
        output_stride: int, default 32. 32 keeps the network as it is; 16 or 8 make the
            layers beyond that stride atrous (see the module docstring).
        side: int, default 224. The side ``model`` was built for (to read its strides).

    Returns:
        The copy, a functional ``keras.Model``.
    """
    names = stable_names(model)
    strides = input_strides(model, side)

    def clone(layer):
        if isinstance(layer, keras.Sequential):
            # Rebuilt without its input shape, so that it takes any size.
            return keras.Sequential([clone(inner) for inner in layer.layers],
                                    name=names.get(layer.name, layer.name))
        config = layer.get_config()
        config["name"] = names.get(layer.name, layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            config["momentum"] = min(config["momentum"], MAX_BN_MOMENTUM)
        stride = strides.get(layer.name)
        if output_stride < 32 and stride is not None and stride >= output_stride:
            config = _atrous_config(layer, config, stride, output_stride)
        kind = LayerScale if type(layer) is convnext.LayerScale else type(layer)
        return kind.from_config(config)

    return keras.models.clone_model(model, input_tensors=input_tensor, clone_function=clone)


def copy_weights(source, target) -> None:
    """Copy every layer's weights from ``source`` to its renamed copy in ``target``."""
    names = stable_names(source)
    for layer in source.layers:
        if layer.weights:
            target.get_layer(names.get(layer.name, layer.name)).set_weights(layer.get_weights())
