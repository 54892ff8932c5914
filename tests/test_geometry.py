"""Models state their geometry (valid sides, output side, grid); tiling asks it, never the class.

The stated geometries are checked against real forward passes, which fail exactly for the
sides a model cannot take (its decoder concatenates maps of different sizes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

from pixelwise import models

from pixelwise.inference import tiling as tiling
from pixelwise.models import Geometry, ProbedGeometry, geometry_of
from pixelwise.models.original_unet import valid_input_size, valid_output_size
from run_fixture import tiny_conv_model

#: (registry name, options, input channels, sides to try: valid and not).
MODELS = {
    "unet": ("unet", {"base_filters": 2}, 3, [32, 48, 64, 96, 100, 128, 192]),
    "original_valid": ("original_unet", {"base_filters": 1}, 1, list(range(184, 222, 2)) + [189]),
    "original_same": ("original_unet", {"base_filters": 1, "padding": "same"}, 1,
                      list(range(8, 70, 4)) + [17]),
}


def _build(key):
    name, options, channels, _ = MODELS[key]
    keras.utils.set_random_seed(0)
    return models.build(name, input_size=(None, None, channels), num_classes=2, **options)


def _forward_side(model, side: int) -> int | None:
    """Output side of a real forward pass on a side x side image; None when the model fails."""
    channels = model.input_shape[-1]
    try:
        output = model(np.zeros((1, side, side, channels), "float32"), training=False)
    except Exception:  # noqa: BLE001 - TF/Keras raise several types for maps that do not line up
        return None
    return int(output.shape[1])


@pytest.mark.parametrize("key", sorted(MODELS))
def test_stated_geometry_equals_real_forward_passes(key):
    model = _build(key)
    geometry = geometry_of(model)
    assert isinstance(geometry, Geometry)
    sides = MODELS[key][3]
    forward = {side: _forward_side(model, side) for side in sides}
    assert any(v is None for v in forward.values()) and any(v for v in forward.values())
    assert {side: geometry.output_side(side) for side in sides} == forward
    assert {side: tiling.output_size(model, side) for side in sides} == forward


def test_stated_geometries():
    assert geometry_of(_build("unet")) == Geometry(min_side=64, step=64, border=0, grid=64)
    assert geometry_of(_build("original_valid")) == Geometry(min_side=188, step=16, border=92, grid=16)
    assert geometry_of(_build("original_same")) == Geometry(min_side=16, step=16, border=0, grid=16)


def test_valid_unet_geometry_agrees_with_its_size_helpers():
    geometry = geometry_of(_build("original_valid"))
    assert geometry.output_side(572) == 388 and geometry.input_side(388) == 572  # the paper's tile
    for side in range(1, 1200):
        try:
            expected = valid_output_size(side)
        except ValueError:
            expected = None
        assert geometry.output_side(side) == expected, side
    for output in range(1, 600):
        assert geometry.input_side(output) == valid_input_size(output), output


@pytest.mark.parametrize("geometry", [
    Geometry(min_side=64, step=64), Geometry(min_side=188, step=16, border=92, grid=16),
    Geometry(min_side=5, step=3, border=2),
])
def test_input_side_is_the_smallest_valid_side_whose_output_covers(geometry):
    sides = [s for s in range(1, 3000) if geometry.output_side(s) is not None]
    for wanted in range(1, 700):
        expected = min(s for s in sides if geometry.output_side(s) >= wanted)
        assert geometry.input_side(wanted) == expected, wanted


@pytest.mark.parametrize("fields, message", [
    ({"min_side": 0, "step": 8}, "positive int min_side"),
    ({"min_side": 8, "step": 2.5}, "positive int step"),
    ({"min_side": 8, "step": 8, "grid": 0}, "positive int grid"),
    ({"min_side": 8, "step": 8, "border": 4}, "2 \\* border < min_side"),
])
def test_inconsistent_geometry_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Geometry(**fields)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_a_model_reloaded_from_a_keras_file_states_the_same_geometry(key, tmp_path):
    model = _build(key)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert type(restored) is type(model)
    assert geometry_of(restored) == geometry_of(model)
    tile = geometry_of(model).input_side(40)
    assert tiling.tile_geometry(restored, tile) == tiling.tile_geometry(model, tile)
    assert tiling.covering_tile(restored, 90) == tiling.covering_tile(model, 90)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_the_covering_tile_is_one_the_model_really_takes(key):
    """Whole-image prediction mirrors the image out to this tile; a real forward pass must
    take it and its kept centre must cover the image (the same-padding original U-Net was
    once given 90 px, which its decoder cannot concatenate)."""
    model = _build(key)
    for side in (5, 64, 90, 101):
        (tile, tile_w), (overlap, _) = tiling.covering_tile(model, side)
        assert tile == tile_w  # a square image gets a square tile
        output = _forward_side(model, tile)
        assert output is not None, (side, tile)
        assert output - 2 * (overlap // 2) >= side


def test_other_keras_models_are_probed_with_compute_output_shape():
    same = tiny_conv_model(channels=1)
    assert isinstance(geometry_of(same), ProbedGeometry)
    assert tiling.output_shape(same, 37, 50) == (37, 50)
    assert tiling.default_overlap(same, 40, 40) == 10

    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(2, 3, padding="valid")(inputs)
    valid = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="valid")(x))
    geometry = geometry_of(valid)
    assert isinstance(geometry, ProbedGeometry) and geometry.grid == 1 and geometry.rule is None
    for side in (5, 20, 33):
        assert geometry.output_side(side) == _forward_side(valid, side) == side - 4
    assert tiling.default_overlap(valid, 20, 16) == 0
    assert tiling.covering_tile(valid, 30) == ((34, 34), (0, 0))


class _PooledModel(keras.Model):
    """A stride-8 model (8x8 pooling, then 8x upsampling) that states its own geometry."""

    def __init__(self):
        inputs = keras.Input((None, None, 1))
        x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
        x = keras.layers.UpSampling2D(8)(keras.layers.MaxPooling2D(8)(x))
        super().__init__(inputs, keras.layers.Conv2D(2, 1)(x), name="pooled")

    def geometry(self) -> Geometry:
        return Geometry(min_side=8, step=8, grid=8)


def test_tiling_follows_a_geometry_that_a_new_model_states():
    """No change to tiling for a new model: it states its sides and tiling obeys them. At 12 px
    Keras computes an 8-px output (pooling floors 12 to 1), which probing would take for a
    valid-padding border; the model's own geometry says 12 does not fit."""
    model = _PooledModel()
    assert ProbedGeometry(model).output_side(12) == 8
    assert tiling.output_size(model, 12) is None and tiling.output_size(model, 16) == 16
    with pytest.raises(ValueError, match=r"cannot take 12x12 tiles; sizes near it that work: "
                                         r"\[8, 16, 24\]; its input sides are multiples of 8"):
        tiling.tile_geometry(model, 12)
    assert tiling.tile_geometry(model, 16) == (tiling.TileGeometry(tile=16, output=16, crop=2),) * 2
    assert tiling.covering_tile(model, 30) == ((32, 32), (0, 0))
    image = np.random.default_rng(0).integers(0, 256, (30, 45, 1), dtype=np.uint8)
    assert tiling.predict_tiled(model, image, tile=16).labels.shape == (30, 45)


def test_tiling_does_not_check_model_classes():
    source = Path(tiling.__file__).read_text()
    tree = ast.parse(source)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "type")]
    assert not [ast.unparse(call) for call in calls if "model" in ast.unparse(call.args[0])]
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not [name for name in names if "unet" in name.lower() or "padding" in name.lower()]
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    # Geometry from the model, sizes parsed by the one size parser: nothing model-specific.
    assert imported <= {"__future__", "pixelwise.models.geometry", "pixelwise.sizes"}
