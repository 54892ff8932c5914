"""PredictOptions: one object for how an image is predicted, checked once, written to JSON and
read back (by the report) as an equal object."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixelwise.inference.options import NATIVE, PredictOptions, as_options
from pixelwise.inference.tta import TTA


@pytest.mark.parametrize("kwargs, message", [
    ({"model_size": "big"}, r"Expected model_size as N, \(height, width\), 'native' or None, "
                            r"received 'big'; e.g. model_size=512"),
    ({"model_size": (0, 32)}, r"Expected model_size as N, .* received \(0, 32\)"),
    ({"mode": "sliding"}, r"Expected a mode in \('whole', 'slide'\), received 'sliding'"),
    ({"mode": "whole", "tile": 64}, r"Expected no tile size with mode 'whole', received tile 64; "
                                    r"pass mode='slide' to predict in tiles, or tile=None"),
    ({"overlap": 8}, r"Expected no overlap with mode 'whole', received overlap 8; pass "
                     r"mode='slide'"),
    ({"tile": 0}, r"Expected the tile as an int >= 1 \(N for NxN\) or a \(height, width\) pair "
                  r"of them, received 0"),
    ({"tile": (64, 64, 3)}, r"Expected the tile as .* received \(64, 64, 3\)"),
    ({"tile": 64, "overlap": -2}, r"Expected the overlap as an int >= 0 .* received -2"),
    ({"tta": "mirror"}, r"Expected a TTA spec none, flip, .* received 'mirror', in which 'mirror' "
                        r"is not understood"),
    ({"tta": "scales=0"}, r"Expected TTA scales in \(0, 8\]"),
])
def test_each_bad_option_is_refused_with_one_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        PredictOptions(**kwargs)
    assert "\n" not in str(raised.value)


def test_options_are_normalised_when_made():
    """Sizes as pairs (a square tile or overlap as N), the mode resolved, the TTA parsed: two
    ways of writing the same options give equal objects."""
    assert PredictOptions(model_size=256).model_size == (256, 256)
    assert PredictOptions(model_size="360x480").model_size == (360, 480)
    assert PredictOptions(model_size=" Native ").model_size == NATIVE
    assert PredictOptions(tile=(64, 64), overlap=[8, 8]) == PredictOptions(tile=64, overlap=8)
    options = PredictOptions(tile=(192, 256), tta="flip,scales=0.75,1")
    assert (options.mode, options.tile, options.overlap) == ("slide", (192, 256), None)
    assert options.tta == TTA(flip=True, scales=(0.75, 1.0))
    default = PredictOptions()
    assert (default.model_size, default.mode, default.tile, default.tta) == (None, "whole", None, TTA())


@pytest.mark.parametrize("options", [
    PredictOptions(),
    PredictOptions(model_size=(24, 32), tta="flip"),
    PredictOptions(model_size=NATIVE, tta="scales=0.5,1,1.5"),
    PredictOptions(mode="slide", tile=(12, 20), overlap=(2, 4), tta="flip,scales=0.75,1.25"),
    PredictOptions(mode="slide", model_size=64),
])
def test_to_dict_from_dict_round_trip_through_json(options):
    written = json.loads(json.dumps(options.to_dict()))
    assert PredictOptions.from_dict(written) == options
    assert set(written) == {"model_size", "mode", "tile", "overlap", "tta"}
    # The TTA is its fields, not a spec string to parse again.
    assert written["tta"] == {"flip": options.tta.flip, "scales": list(options.tta.scales)}


def test_from_dict_refuses_what_to_dict_never_writes():
    with pytest.raises(ValueError, match=r"unknown keys \['input_size'\]"):
        PredictOptions.from_dict({"input_size": [32, 32]})
    with pytest.raises(ValueError, match=r"Expected 'tta' as \{'flip': bool, 'scales': \[...\]\}"):
        PredictOptions.from_dict({"tta": "flip"})
    with pytest.raises(ValueError, match="as a JSON object .* received list"):
        PredictOptions.from_dict([1, 2])


def test_functions_refuse_options_that_are_not_predict_options():
    """predict(run, image, 256) was 0.2's size; now it says what to pass instead."""
    assert as_options(None) == PredictOptions()
    with pytest.raises(ValueError, match=r"Expected the prediction options as a PredictOptions or "
                                         r"None, received int 256; e.g. PredictOptions\(model_size=256\)"):
        as_options(256)


def test_recorded_options_read_the_file_and_older_files():
    """The report reads eval-SPLIT.json's predict_options; a file written before them (top-level
    mode/tile/overlap/tta, "input_size", "resolution") gives the same options."""
    from pixelwise.evaluation.result import recorded_options

    options = PredictOptions(model_size=(24, 32), tta="flip")
    assert recorded_options({"image_size": [48, 64], "predict_options": options.to_dict()}) == (
        (48, 64), options)
    old_whole = {"resolution": "48x64", "input_size": [24, 32], "mode": "whole", "tile": None,
                 "overlap": None, "tta": "flip"}
    assert recorded_options(old_whole) == ((48, 64), options)
    old_slide = {"resolution": "native", "input_size": None, "mode": "slide", "tile": [12, 20],
                 "overlap": 4, "tta": "none"}
    assert recorded_options(old_slide) == (None, PredictOptions(tile=(12, 20), overlap=4))
    old_native = {"resolution": "native", "input_size": None, "mode": "whole", "tta": "none"}
    assert recorded_options(old_native) == (None, PredictOptions(model_size=NATIVE))


@pytest.mark.parametrize("options", [PredictOptions(tta="flip"),
                                     PredictOptions(tile=(12, 20), tta="scales=0.75,1")])
def test_evaluate_writes_the_options_in_effect_and_the_report_reads_back_equal_ones(tmp_path, options):
    """The defaults evaluate filled in (the run's size, the tile's overlap) are what it wrote,
    and what the report reads back is the same object."""
    from pixelwise.evaluation.evaluator import evaluate, write_evaluation
    from pixelwise.evaluation.result import recorded_options
    from run_fixture import TINY_CLASSES, tiny_conv_model, write_run

    model = tiny_conv_model()
    run = write_run(tmp_path / "run", model, config={"image_size": [24, 32]})
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
              rng.integers(0, 3, (30, 40, 1), dtype=np.uint8))]
    result = evaluate(run, pairs, TINY_CLASSES, options=options, bootstrap_resamples=0)
    if options.mode == "whole":
        assert result.options == PredictOptions(model_size=(24, 32), tta="flip")
    else:  # a quarter of each side of the tile overlaps
        assert result.options == PredictOptions(tile=(12, 20), overlap=(2, 4), tta="scales=0.75,1")
    paths = write_evaluation(result, tmp_path / "out", "validation")
    written = json.loads(paths["metrics"].read_text())
    assert recorded_options(written) == (None, result.options)
