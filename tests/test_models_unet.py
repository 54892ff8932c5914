"""The chapter's U-Net: layers, order, shapes, parameter count, sizes, GFLOPs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pixelwise.models import get_unet
from pixelwise.models.summary import count_flops, model_summary
from pixelwise.models.unet import downsample, encoder_filters, upsample


@pytest.fixture(scope="module")
def chapter_unet():
    return get_unet(num_classes=21)


def _chapter_layers(input_side=256, channels=3, num_classes=21):
    """(kind, kernel in, kernel out, output side) of the chapter's layers, written from its code."""
    enc_depths = [min(2 ** (i + 5), 512) for i in range(2, 8)]
    dec_depths = [max(min(2 ** (i + 5), 512), 32) for i in reversed(range(2, 8))]
    layers, side, c_in, skips = [], input_side, channels, []
    for depth in enc_depths:
        side //= 2
        layers.append(("down", c_in, depth, side))
        skips.append((depth, side))
        c_in = depth
    for depth, (skip_depth, skip_side) in zip(dec_depths, reversed(skips[:-1])):  # 5 used
        side *= 2
        layers.append(("up", c_in, depth, side))
        assert side == skip_side
        c_in = depth + skip_depth
    layers.append(("last", c_in, num_classes, side * 2))
    return layers


def test_chapter_defaults_have_26917781_parameters(chapter_unet):
    expected = sum(9 * c_in * c_out + c_out for _, c_in, c_out, _ in _chapter_layers())
    assert expected == 26_917_781
    assert chapter_unet.count_params() == 26_917_781


def test_same_layers_same_order_same_shapes_as_the_chapter(chapter_unet):
    blocks = [layer for layer in chapter_unet.layers
              if isinstance(layer, (keras.Sequential, keras.layers.Conv2DTranspose))]
    expected = _chapter_layers()
    assert len(blocks) == len(expected) == 12  # 6 down, 5 up (no unused sixth decoder), last
    for block, (kind, c_in, c_out, side) in zip(blocks, expected):
        assert block.output.shape == (None, side, side, c_out), block.name
        assert block.input.shape[-1] == c_in, block.name
        conv = block.layers[0] if kind != "last" else block
        if kind == "down":
            assert isinstance(conv, keras.layers.Conv2D)
            assert not isinstance(conv, keras.layers.Conv2DTranspose)
            assert isinstance(block.layers[1], keras.layers.LeakyReLU)
        else:
            assert isinstance(conv, keras.layers.Conv2DTranspose)
        if kind == "up":
            assert isinstance(block.layers[1], keras.layers.ReLU)
        assert conv.kernel_size == (3, 3) and conv.strides == (2, 2) and conv.padding == "same"
        assert isinstance(conv.kernel_initializer, keras.initializers.HeNormal)
    assert chapter_unet.output_shape == (None, 256, 256, 21)
    assert chapter_unet.layers[-1].activation is keras.activations.linear  # logits


def test_blocks_are_sequential_models_used_as_layers():
    down, up = downsample(8), upsample(4)
    assert isinstance(down, keras.Sequential) and isinstance(up, keras.Sequential)
    x = np.zeros((2, 16, 16, 3), "float32")
    assert down(x).shape == (2, 8, 8, 8)
    assert up(down(x)).shape == (2, 16, 16, 4)


def test_base_filters_scales_every_block():
    assert encoder_filters(128) == [128, 256, 512, 512, 512, 512]
    assert encoder_filters(16) == [16, 32, 64, 64, 64, 64]
    model = get_unet((64, 64, 3), num_classes=12, base_filters=16)
    expected = sum(9 * c_in * c_out + c_out
                   for _, c_in, c_out, _ in _scaled_layers(16, channels=3, num_classes=12))
    assert model.count_params() == expected


def _scaled_layers(base, channels, num_classes):
    depths = encoder_filters(base)
    layers, c_in = [], channels
    for depth in depths:
        layers.append(("down", c_in, depth, None))
        c_in = depth
    for level in reversed(range(5)):
        layers.append(("up", c_in, depths[level + 1], None))
        c_in = depths[level + 1] + depths[level]
    layers.append(("last", c_in, num_classes, None))
    return layers


@pytest.mark.parametrize("size", [(64, 64), (128, 192), (320, 64)])
def test_any_multiple_of_64_and_fully_convolutional(size):
    fixed = get_unet((*size, 3), num_classes=4, base_filters=4)
    assert fixed.output_shape == (None, *size, 4)
    free = get_unet((None, None, 3), num_classes=4, base_filters=4)
    assert free.output_shape == (None, None, None, 4)
    assert free(np.zeros((1, *size, 3), "float32")).shape == (1, *size, 4)


@pytest.mark.parametrize("bad, hint", [
    ((250, 250, 3), "192 or 256"),
    ((32, 64, 3), "64"),
    ((256, 100, 3), "64 or 128"),
    ((0, 64, 3), "multiples of 64"),
    ((256, 256), "(height, width, channels)"),
    ((256, 256, 0), "channels"),
    ("256", "(height, width, channels)"),
])
def test_unsupported_sizes_are_rejected_naming_valid_ones(bad, hint):
    with pytest.raises(ValueError) as error:
        get_unet(bad, num_classes=21)
    assert hint in str(error.value)


def test_batch_norm_adds_normalisation_and_drops_conv_bias():
    model = get_unet((64, 64, 3), num_classes=2, base_filters=4, batch_norm=True)
    blocks = [layer for layer in model.layers if isinstance(layer, keras.Sequential)]
    assert len(blocks) == 11
    for block in blocks:
        assert isinstance(block.layers[1], keras.layers.BatchNormalization)
        assert not block.layers[0].use_bias
    assert model.layers[-1].use_bias  # the logits layer keeps its bias


def test_gflops_of_the_chapter_model_is_36_2(chapter_unet):
    # Independent count: conv MACs = out pixels * k*k*c_in*c_out; transposed conv MACs =
    # in pixels * k*k*c_in*c_out (every input pixel scatters one kernel).
    macs, side = 0, 256
    for kind, c_in, c_out, out_side in _chapter_layers():
        in_side = side
        macs += (out_side**2 if kind == "down" else in_side**2) * 9 * c_in * c_out
        side = out_side
    assert count_flops(chapter_unet) == 2 * macs
    assert round(2 * macs / 1e9, 1) == 36.2
    info = model_summary(chapter_unet)
    assert info["params"] == 26_917_781 and info["output_shape"] == (None, 256, 256, 21)


def test_gflops_needs_a_concrete_size():
    model = get_unet((None, None, 3), num_classes=2, base_filters=4)
    with pytest.raises(ValueError, match="concrete input size"):
        count_flops(model)
    assert model_summary(model)["gflops"] is None
