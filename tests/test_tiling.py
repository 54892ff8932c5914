"""Overlap-tile inference: mirrored borders, valid centres, equality with whole-image prediction.

Tiles are square (``N``) or rectangular (``(height, width)``); the expected probabilities come
from ``run_fixture.reference_overlap_tile``, the same strategy written out in NumPy.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pixelwise.inference.options import PredictOptions
from run_fixture import reference_overlap_tile, tiny_conv_model, tiny_unet

#: Receptive-field radius of tiny_conv_model (two 3x3 convolutions).
RADIUS = 2


def test_reflect_indices_equal_numpy_reflect_padding():
    from pixelwise.inference.tiling import reflect_indices

    for n in (1, 2, 5):
        row = np.arange(n)
        expected = np.pad(row, (13, 13), mode="reflect") if n > 1 else np.zeros(27, int)
        np.testing.assert_array_equal(reflect_indices(np.arange(-13, n + 13), n), expected)


@pytest.mark.parametrize("tile, overlap", [(32, 2 * RADIUS), ((24, 40), (2 * RADIUS, 12))])
def test_tiled_equals_whole_image_except_a_border_ring_of_the_receptive_radius(tile, overlap, random_image):
    """Same-padding model: whole-image prediction zero-pads at the image border, tiles
    mirror it, so predictions may differ only within RADIUS pixels of the border; inside,
    tiles whose crop (overlap / 2) covers the receptive radius give identical results,
    square or not."""
    from pixelwise.inference.tiling import predict_tiled

    model = tiny_conv_model()
    image = random_image(83, 101)
    logits = np.asarray(model(image[None].astype(np.float32) / 255.0, training=False))[0]
    whole = logits.argmax(-1)
    tiled = predict_tiled(model, image, tile=tile, overlap=overlap)
    differ = tiled.labels != whole
    interior = np.zeros_like(differ)
    interior[RADIUS:-RADIUS, RADIUS:-RADIUS] = True
    assert not np.any(differ & interior)
    border_fraction = differ.mean()
    print(f"border effect: {differ.sum()} of {differ.size} pixels differ ({100 * border_fraction:.2f}%),"
          f" all within {RADIUS} px of the image border")
    assert border_fraction < 0.1
    # Without overlap, tile seams inside the image differ too: the overlap is what fixes them.
    seams = predict_tiled(model, image, tile=tile, overlap=0).labels != whole
    assert np.any(seams & interior)


def test_tiled_confidence_and_probabilities_match_softmax(random_image):
    from pixelwise.inference.tiling import predict_tiled

    model = tiny_conv_model()
    image = random_image(40, 50)
    result = predict_tiled(model, image, tile=24, overlap=8, return_probabilities=True)
    np.testing.assert_allclose(result.probabilities.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.labels, result.probabilities.argmax(-1))
    np.testing.assert_allclose(result.confidence, result.probabilities.max(-1))


@pytest.mark.parametrize("tile, cores", [pytest.param(204, (16, 16), marks=pytest.mark.slow),  # ~3 s
                                         ((204, 220), (16, 32))])
def test_valid_unet_tiles_equal_one_mirrored_tile_exactly(tile, cores, random_image):
    """The original U-Net (valid padding): stitched tiles, square or not, equal the model run
    once on the whole image mirror-padded with NumPy (independent of the tiling code)."""
    from pixelwise import models
    from pixelwise.inference.tiling import predict_tiled, tile_geometry

    model = models.build("original_unet", input_size=(None, None, 1), num_classes=2, base_filters=2)
    image = random_image(70, 90, channels=1, seed=3)
    rows, cols = tile_geometry(model, tile)  # outputs 20 (36), default overlap 4: cores of 16 (32)
    assert (rows.output, rows.crop, rows.core) == (20, 2, 16) and (rows.core, cols.core) == cores
    assert (rows.margin, cols.margin) == (94, 94)  # 92 px of model border + 2 px crop, per side
    tiled = predict_tiled(model, image, tile=tile, batch_size=8)

    margin, crop = rows.margin, rows.crop
    side = models.valid_input_size(96 + 2 * crop)  # one tile covering 96 >= 90 px
    pad_after = side - margin
    padded = np.pad(image, ((margin, pad_after - 70), (margin, pad_after - 90), (0, 0)), mode="reflect")
    logits = np.asarray(model(padded[None].astype(np.float32) / 255.0, training=False))[0]
    reference = logits[crop:crop + 70, crop:crop + 90].argmax(-1)
    np.testing.assert_array_equal(tiled.labels, reference)


def test_fixed_rectangular_unet_slides_its_own_input_over_an_image_like_numpy(random_image):
    """A U-Net built for 64x128 inputs only (as the CamVid recipe's 192x256 checkpoint): mode
    slide tiles a 100x150 image with 64x128 tiles by default (overlap 16x32: cores of 48x96,
    3 x 2 tiles), and the stitched probabilities equal the NumPy overlap-tile."""
    from pixelwise.inference.prediction import default_tile, predict_probabilities
    from pixelwise.inference.tiling import tile_geometry

    model = tiny_unet(input_size=(64, 128))
    image = random_image(100, 150, seed=7)
    assert default_tile(model, model_size=512) == (64, 128)
    rows, cols = tile_geometry(model, (64, 128))
    assert (rows.crop, rows.core, cols.crop, cols.core) == (8, 48, 16, 96)
    probs = predict_probabilities(model, image, PredictOptions(mode="slide"))
    expected = reference_overlap_tile(model, image, (64, 128), (16, 32))
    assert probs.shape == (100, 150, 3)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)


def test_square_tiles_are_pairs_of_equal_sides_and_match_numpy(random_image):
    """``tile=N`` is ``(N, N)``: the same stitched result as before rectangular tiles, and as
    the NumPy overlap-tile, for a same-padding chapter U-Net and a plain conv model."""
    from pixelwise.inference.tiling import predict_tiled

    for model, image, tile, overlap in ((tiny_unet(), random_image(100, 150, seed=2), 64, 16),
                                        (tiny_conv_model(), random_image(40, 50), 24, 8)):
        square = predict_tiled(model, image, tile, overlap, return_probabilities=True)
        pair = predict_tiled(model, image, (tile, tile), (overlap, overlap), return_probabilities=True)
        np.testing.assert_array_equal(square.probabilities, pair.probabilities)
        expected = reference_overlap_tile(model, image, tile, overlap)
        np.testing.assert_allclose(square.probabilities, expected, atol=1e-5)


def test_covering_tile_is_rectangular_and_mirrors_only_what_it_must(random_image):
    """Whole-image prediction of a 100x150 image with a U-Net whose sides are multiples of
    64 mirrors it out to 128x192 (not 192x192), and the kept output covers the image."""
    from pixelwise import models
    from pixelwise.inference.prediction import predict_probabilities
    from pixelwise.inference.tiling import covering_tile

    unet = tiny_unet()
    assert covering_tile(unet, (100, 150)) == ((128, 192), (0, 0))
    assert covering_tile(unet, 90) == ((128, 128), (0, 0))
    image = random_image(100, 150, seed=4)
    probs = predict_probabilities(unet, image, PredictOptions(model_size="native"))
    padded = np.pad(image, ((0, 28), (0, 42), (0, 0)), mode="reflect")
    logits = np.asarray(unet(padded[None].astype(np.float32) / 255.0, training=False), np.float64)[0]
    expected = np.exp(logits - logits.max(-1, keepdims=True))[:100, :150]
    np.testing.assert_allclose(probs, expected / expected.sum(-1, keepdims=True), atol=1e-5)
    valid = models.build("original_unet", input_size=(None, None, 1), num_classes=2, base_filters=2)
    # Valid padding: the default overlap (4) keeps the kept centre on the 16-px pooling grid.
    assert covering_tile(valid, (70, 90)) == ((284, 300), (4, 4))
    assert (models.valid_output_size(284) - 4, models.valid_output_size(300) - 4) == (96, 112)
    fixed = tiny_unet(input_size=(64, 128))
    assert covering_tile(fixed, (50, 100)) == ((64, 128), (0, 0))
    with pytest.raises(ValueError, match=r"only takes 64x128 inputs, whose output does not cover "
                                         r"80x160; predict in tiles of its input"):
        covering_tile(fixed, (80, 160))


def test_chapter_unet_tiles_quantified_border_effects(random_image):
    """The chapter's U-Net (stride-2 convs, zero padding) sees the whole tile: tiles of 128
    px agree with whole-image prediction of 256 px on most, not all, pixels."""
    from pixelwise.inference.tiling import predict_tiled

    model = tiny_unet()
    image = random_image(256, 256, seed=5)
    whole = np.asarray(model(image[None].astype(np.float32) / 255.0, training=False))[0].argmax(-1)
    tiled = predict_tiled(model, image, tile=128, overlap=64).labels
    agreement = (tiled == whole).mean()
    print(f"chapter U-Net, 128-px tiles with 64-px overlap vs whole 256-px image: "
          f"{100 * agreement:.1f}% of labels agree")
    assert agreement > 0.6


def test_tile_sizes_the_model_cannot_take_are_explained(random_image):
    from pixelwise import models
    from pixelwise.inference.tiling import predict_tiled, tile_geometry

    unet = tiny_unet()
    with pytest.raises(ValueError, match=r"cannot take 100x100 tiles; sizes near it that work: \[64, 128"):
        tile_geometry(unet, 100)
    with pytest.raises(ValueError, match=r"cannot take 100x128 tiles; heights near 100 that work: "
                                         r"\[64, 128, 192\], widths near 128 that work: \[64, 128"):
        tile_geometry(unet, (100, 128))
    valid = models.build("original_unet", input_size=(None, None, 1), num_classes=2, base_filters=2)
    with pytest.raises(ValueError, match=r"sizes near it that work: \[188, 204, 220\]; "
                                         r"its input sides are 188 \+ 16k"):
        tile_geometry(valid, 190)
    with pytest.raises(ValueError, match="overlap in 0..63"):
        tile_geometry(unet, 64, overlap=64)
    with pytest.raises(ValueError, match=r"overlap in 0..127 for 64x128px tiles \(model output "
                                         r"128px along the width\), received 32x128"):
        tile_geometry(unet, (64, 128), overlap=(32, 128))
    # A fixed-size model takes its input and nothing else, larger or smaller.
    fixed = tiny_unet(input_size=(64, 128))
    for tile in (128, (128, 256), 64):
        with pytest.raises(ValueError, match=r"only takes 64x128; pass tile=\(64, 128\)"):
            predict_tiled(fixed, random_image(100, 150), tile)
    for tile, overlap in ((0, None), ((64, 128, 3), None), ("64", None), (64, -2), (64, (1, 2, 3))):
        with pytest.raises(ValueError, match=r"\(height, width\) pair"):
            tile_geometry(unet, tile, overlap)


_MEMORY_SCRIPT = textwrap.dedent("""
    import sys, threading
    import numpy as np, psutil
    sys.path.insert(0, {tests!r})
    from run_fixture import tiny_conv_model
    from pixelwise.inference.prediction import predict_array
    model = tiny_conv_model(num_classes=21)
    side, mode = int(sys.argv[1]), sys.argv[2]
    tile = 256 if mode == "tiled" else None
    # Warm up at a small size with the same tile shapes, so tracing is not counted.
    from pixelwise.inference.options import PredictOptions
    options = PredictOptions(model_size="native", tile=tile, overlap=32 if tile else None)
    predict_array(model, np.zeros((512, 512, 3), np.uint8), options)
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    # Sample the resident set while predicting: ru_maxrss is a high-water mark that the
    # import and warm-up may already have set above what prediction needs, hiding its growth.
    process = psutil.Process()
    before = peak = process.memory_info().rss
    done = threading.Event()
    def sample():
        global peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.002)
    sampler = threading.Thread(target=sample)
    sampler.start()
    labels, confidence, _ = predict_array(model, image, options)
    done.set()
    sampler.join()
    peak = max(peak, process.memory_info().rss)
    print(before // 1024, peak // 1024, int(labels.max()))
""")


def _peak_rss_growth_mb(tmp_path, side, mode):
    from pathlib import Path

    script = tmp_path / "memory.py"
    script.write_text(_MEMORY_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = subprocess.run([sys.executable, str(script), str(side), mode], capture_output=True,
                         text=True, check=True, timeout=300).stdout.split()
    return int(out[0]) / 1024, int(out[1]) / 1024


@pytest.mark.slow
def test_peak_memory_of_tiling_is_bounded_by_the_tile_not_the_image(tmp_path):
    """2048x2048 image, 21 classes. Whole-image prediction holds full float32 logits and
    probabilities (2048*2048*21*4 B = 336 MiB each); tiled prediction only the uint8 image,
    the label map, the confidence map and one batch of tiles."""
    probabilities_mb = 2048 * 2048 * 21 * 4 / 2**20
    before, after = _peak_rss_growth_mb(tmp_path, 2048, "tiled")
    tiled_growth = after - before
    whole_before, whole_after = _peak_rss_growth_mb(tmp_path, 2048, "whole")
    whole_growth = whole_after - whole_before
    print(f"2048x2048, 21 classes: peak RSS growth tiled {tiled_growth:.0f} MiB (peak {after:.0f}), "
          f"whole-image {whole_growth:.0f} MiB (peak {whole_after:.0f}); one float32 probability "
          f"map is {probabilities_mb:.0f} MiB")
    # image 12 MiB + labels 4 MiB + confidence 16 MiB + a batch of 4 tiles and TF's allocator
    # pools (measured 140-190 MiB): below one map, where whole-image needs at least two.
    assert tiled_growth < probabilities_mb
    assert whole_growth > probabilities_mb
