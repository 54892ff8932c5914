"""Ronneberger et al.'s U-Net: 572 -> 388, 31,030,658 parameters, crops, size helpers."""

from __future__ import annotations

from fractions import Fraction

import keras
import numpy as np
import pytest

from pixelwise.models import original_unet, valid_input_size, valid_output_size
from pixelwise.models.original_unet import skip_crops


def _paper_parameters(channels=1, num_classes=2, base=64):
    total, c_in = 0, channels
    for level in range(5):  # two 3x3 convs per level, bottom included
        filters = base * 2**level
        total += 9 * c_in * filters + filters + 9 * filters * filters + filters
        c_in = filters
    for level in reversed(range(4)):
        filters = base * 2**level
        total += 4 * c_in * filters + filters                    # 2x2 up-convolution
        total += 9 * 2 * filters * filters + filters             # after concatenation
        total += 9 * filters * filters + filters
        c_in = filters
    return total + c_in * num_classes + num_classes              # final 1x1 conv


def test_paper_model_maps_572_to_388_with_31030658_parameters():
    model = original_unet(num_classes=2)
    assert _paper_parameters() == 31_030_658
    assert model.count_params() == 31_030_658
    assert model.input_shape == (None, 572, 572, 1)
    assert model.output_shape == (None, 388, 388, 2)
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    # The paper's figure: 568x568x64 and 32x32x1024 maps, 392x392 crop of the first level.
    assert shapes["encoder_0_relu2"] == (568, 568, 64)
    assert shapes["encoder_4_relu2"] == (28, 28, 1024)
    assert shapes["decoder_0_crop"] == (392, 392, 64)
    assert model.layers[-1].kernel_size == (1, 1)
    assert model.layers[-1].activation is keras.activations.linear


def _map_to_input(model):
    """For each layer output: (step, offset) with input coordinate = step * index + offset.

    Written from the definition of each operation, not from the model code: a valid
    3x3 conv output i is centred on input i + 1; 2x2 pooling output i covers 2i, 2i + 1;
    a 2x2 stride-2 up-convolution writes input i to outputs 2i, 2i + 1; a crop of c drops c.
    """
    coords = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            coords[layer.output.name] = (Fraction(1), Fraction(0))
            continue
        inbound = [coords[t.name] for t in keras.tree.flatten(layer.input)]
        step, offset = inbound[0]
        if isinstance(layer, keras.layers.Concatenate):
            assert all(c == inbound[0] for c in inbound), (layer.name, inbound)
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            step, offset = step / 2, offset - step / 4
        elif isinstance(layer, keras.layers.Conv2D):
            offset += step * (layer.kernel_size[0] // 2 if layer.padding == "valid" else 0)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            step, offset = step * 2, offset + step / 2
        elif isinstance(layer, keras.layers.Cropping2D):
            offset += step * layer.cropping[0][0]
        coords[layer.output.name] = (step, offset)
    return coords


def test_crop_alignment_skip_centre_lands_on_decoder_centre():
    model = original_unet((188, 188, 1), num_classes=2, base_filters=2)
    coords = _map_to_input(model)  # asserts equal grids at every concatenation
    concats = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concats) == 4
    for layer in concats:
        skip, up = layer.input
        assert skip.shape == up.shape
        assert coords[skip.name] == coords[up.name]
    step, offset = coords[model.output.name]
    # The output is the centre of the tile: 92 pixels of context on each side.
    assert (step, offset) == (1, 92) and 188 - 2 * 92 == model.output_shape[1]
    assert skip_crops() == [88, 40, 16, 4]


def test_crops_are_centred_mirror_symmetric_weights_give_mirrored_output():
    # With every kernel equal to its own left-right mirror the network commutes with a
    # horizontal flip, unless a crop (or anything else) is off-centre.
    # Seeded: with unseeded weights at base_filters=2 every ReLU died in one fresh-clone run
    # (an all-zero output), and the output's scale, and so its rounding, varied by run.
    keras.utils.set_random_seed(0)
    model = original_unet((188, 188, 1), num_classes=2, base_filters=2)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kernel = layer.kernel.numpy()
            layer.kernel.assign((kernel + kernel[:, ::-1]) / 2)
    image = np.random.default_rng(0).normal(size=(1, 188, 188, 1)).astype("float32")
    output = np.asarray(model(image))
    mirrored = np.asarray(model(image[:, :, ::-1]))
    assert output.std() > 0
    # float32 sums in another order on the mirrored image: a tolerance relative to the scale.
    np.testing.assert_allclose(mirrored, output[:, :, ::-1], atol=1e-5 * max(1.0, np.abs(output).max()))


def test_size_helpers_are_inverse_and_match_the_model():
    assert valid_output_size(572) == 388 and valid_input_size(388) == 572
    valid_inputs = [16 * k + 124 for k in range(4, 40)]
    for side in valid_inputs:
        assert valid_input_size(valid_output_size(side)) == side
    for wanted in range(1, 400):
        side = valid_input_size(wanted)
        assert side in valid_inputs and valid_output_size(side) >= wanted
        smaller = [s for s in valid_inputs if s < side]
        assert not smaller or valid_output_size(smaller[-1]) < wanted
    for side in (188, 236):
        model = original_unet((side, side, 1), num_classes=2, base_filters=1)
        assert model.output_shape[1] == valid_output_size(side)


@pytest.mark.parametrize("side, nearest", [(570, "556 or 572"), (100, "188"), (189, "188 or 204")])
def test_sizes_valid_padding_cannot_take_are_rejected(side, nearest):
    with pytest.raises(ValueError, match=nearest):
        valid_output_size(side)
    with pytest.raises(ValueError, match=nearest):
        original_unet((side, 572, 1), num_classes=2)


def test_same_padding_keeps_the_size_for_multiples_of_16():
    model = original_unet((48, 80, 3), num_classes=5, padding="same", base_filters=2)
    assert model.output_shape == (None, 48, 80, 5)
    free = original_unet((None, None, 1), num_classes=2, padding="same", base_filters=2)
    assert free(np.zeros((1, 32, 64, 1), "float32")).shape == (1, 32, 64, 2)
    with pytest.raises(ValueError, match="multiples of 16"):
        original_unet((50, 64, 1), num_classes=2, padding="same")
    with pytest.raises(ValueError, match="'valid' or 'same'"):
        original_unet(num_classes=2, padding="reflect")


def test_valid_padding_runs_fully_convolutional():
    model = original_unet((None, None, 1), num_classes=2, base_filters=1)
    assert model(np.zeros((1, 204, 220, 1), "float32")).shape == (1, 20, 36, 2)
