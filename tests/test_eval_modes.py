"""Evaluation and prediction modes (whole | slide) and test-time augmentation, against NumPy.

Every expected number here is computed step by step without pixelwise: tiles cut from a
``np.pad(mode="reflect")`` copy, the Keras model called on each, softmax in NumPy,
views averaged, metrics from per-class pixel sets, boundary bands from distance
transforms, the bootstrap as a loop over resamples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from pixelwise.inference.options import PredictOptions
from run_fixture import TINY_CLASSES, reference_overlap_tile, tiny_conv_model, tiny_unet

VOID = TINY_CLASSES.ignore_label
K = TINY_CLASSES.num_classes


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def model_probs(model, image_uint8):
    """Softmax of the model on one float image in [0, 1]."""
    x = image_uint8.astype(np.float32)[None] / 255.0
    return softmax(np.asarray(model(x, training=False), np.float64)[0])


def reference_slide(model, image, tile, overlap):
    """Overlap-tile: mirror-pad, cut, predict, keep each tile's centre (``N`` or (H, W) tiles)."""
    return reference_overlap_tile(model, image, tile, overlap)


def resize_uint8(image, size):
    import tensorflow as tf

    resized = tf.image.resize(image.astype(np.float32), size, antialias=True).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def resize_probs(probs, size):
    import tensorflow as tf

    return tf.image.resize(probs.astype(np.float32), size, method="bilinear").numpy()


def reference_tta(model, image, views, predict_view):
    """Average over (scale, flipped) views of ``predict_view(image, scale)``, at the image's size."""
    height, width = image.shape[:2]
    total = 0
    for scale, flipped in views:
        view = image[:, ::-1] if flipped else image
        probs = predict_view(view, scale)
        if probs.shape[:2] != (height, width):
            probs = resize_probs(probs, (height, width))
        total = total + (probs[:, ::-1] if flipped else probs)
    return total / len(views)


def scaled(size, scale):
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def examples(seed=0, sizes=((30, 40), (36, 28), (25, 50), (33, 33))):
    """Blocky labels (classes 0 and 1, never 2) with a void frame, random images."""
    rng = np.random.default_rng(seed)
    pairs = []
    for height, width in sizes:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        blocks = rng.integers(0, 2, (math.ceil(height / 6), math.ceil(width / 6)))
        label = np.kron(blocks, np.ones((6, 6), int))[:height, :width].astype(np.uint8)
        label[:2] = VOID
        pairs.append((image, label[..., None]))
    return pairs


# ----------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("tta", ["none", "flip", "flip,scales=0.5,1,1.5"])
def test_whole_image_probabilities_equal_numpy(conv_model, tta):
    from pixelwise.inference.prediction import predict_probabilities
    from pixelwise.inference.tta import TTA

    image = examples()[0][0]

    def whole(view, scale):  # the model sees 24x32 times the scale
        return model_probs(conv_model, resize_uint8(view, scaled((24, 32), scale)))

    expected = reference_tta(conv_model, image, TTA.parse(tta).views, whole)
    probs = predict_probabilities(conv_model, image, PredictOptions(model_size=(24, 32), tta=tta))
    assert probs.shape == (30, 40, K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=2e-6)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)


@pytest.mark.parametrize("tta", ["none", "flip", "scales=0.75,1.25"])
def test_slide_probabilities_equal_numpy(conv_model, tta):
    from pixelwise.inference.prediction import predict_probabilities
    from pixelwise.inference.tta import TTA

    image = examples()[0][0]

    def slide(view, scale):  # native resolution times the scale, in 16px tiles
        if scale != 1:
            view = resize_uint8(view, scaled(view.shape[:2], scale))
        return reference_slide(conv_model, view, tile=16, overlap=8)

    expected = reference_tta(conv_model, image, TTA.parse(tta).views, slide)
    probs = predict_probabilities(conv_model, image,
                                  PredictOptions(mode="slide", tile=16, overlap=8, tta=tta))
    np.testing.assert_allclose(probs, expected, atol=2e-6)


def test_flip_changes_the_prediction_and_labels_are_the_argmax(conv_model):
    from pixelwise.inference.prediction import predict_array, predict_probabilities

    image = examples()[1][0]
    plain = predict_probabilities(conv_model, image, PredictOptions(model_size="native"))
    flipped = predict_probabilities(conv_model, image, PredictOptions(model_size="native", tta="flip"))
    assert not np.allclose(plain, flipped)  # the model is not mirror-symmetric: TTA does something
    labels, confidence, probs = predict_array(conv_model, image,
                                              PredictOptions(model_size="native", tta="flip"),
                                              return_probabilities=True)
    np.testing.assert_array_equal(labels, flipped.argmax(-1))
    np.testing.assert_allclose(confidence, flipped.max(-1))


def test_mode_and_tta_errors_say_what_to_do(conv_model):
    from pixelwise.inference.prediction import predict_array

    image = examples()[0][0]
    with pytest.raises(ValueError, match="pass mode='slide'"):
        PredictOptions(mode="whole", tile=16)
    with pytest.raises(ValueError, match="whole"):
        PredictOptions(mode="sliding")
    with pytest.raises(ValueError, match="pass tile=N"):
        predict_array(conv_model, image, PredictOptions(mode="slide", model_size="native"))
    with pytest.raises(ValueError, match="flip,scales=0.75,1,1.25"):
        PredictOptions(tta="mirror")
    with pytest.raises(ValueError, match=r"only takes 64x128; pass tile=\(64, 128\)"):
        predict_array(tiny_unet(input_size=(64, 128)), image, PredictOptions(mode="slide", tile=64))


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_tta_scales_on_a_fixed_size_model_equal_numpy(mode):
    """A model built for 64x128 only (the CamVid recipe's checkpoint is 192x256) takes TTA
    scales in both modes. Mode whole: scale s shows the model the image at s times 64x128,
    in tiles of its 64x128 input: at 0.75 one tile (48x96 mirrored out to 64x128), at 1.25
    (80x160) overlapping tiles; never resized back to 64x128, which would make every scale
    the same view. Mode slide: the image at s times its own size, in 64x128 tiles."""
    from pixelwise.inference.prediction import predict_probabilities

    model = tiny_unet(input_size=(64, 128))
    image = np.random.default_rng(5).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    tta = "flip,scales=0.75,1,1.25"

    def view_probs(view, scale):
        size = scaled((64, 128) if mode == "whole" else view.shape[:2], scale)
        resized = resize_uint8(view, size) if size != view.shape[:2] else view
        if size == (64, 128):
            return model_probs(model, resized)
        if mode == "whole" and size[0] <= 64 and size[1] <= 128:
            padded = np.pad(resized, ((0, 64 - size[0]), (0, 128 - size[1]), (0, 0)), mode="reflect")
            return model_probs(model, padded)[:size[0], :size[1]]
        return reference_slide(model, resized, (64, 128), (16, 32))

    from pixelwise.inference.tta import TTA

    expected = reference_tta(model, image, TTA.parse(tta).views, view_probs)
    probs = predict_probabilities(model, image, PredictOptions(mode=mode, tta=tta))
    assert probs.shape == (100, 150, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    plain = predict_probabilities(model, image, PredictOptions(mode=mode))
    assert not np.allclose(plain, probs, atol=1e-3)  # the scales are real, different views


# ----------------------------------------------------------------------------- evaluate


def reference_evaluation(pairs, ratio, resamples, seed, num_classes=K):
    """Every metric of evaluate() from (label, predicted) maps, by per-class pixel sets."""
    K = num_classes  # noqa: N806
    per_image = []
    intersection, union = np.zeros(K), np.zeros(K)
    for label, predicted in pairs:
        valid = label != VOID
        matrix = np.zeros((K, K), np.int64)
        for t in range(K):
            for p in range(K):
                matrix[t, p] = np.sum(valid & (label == t) & (predicted == p))
        per_image.append(matrix)
        d = max(1, round(ratio * math.hypot(*label.shape)))
        for c in range(K):
            bands = []
            for mask in (label == c, predicted == c):
                distance = ndimage.distance_transform_cdt(np.pad(mask, 1), metric="chessboard")
                bands.append(mask & (distance[1:-1, 1:-1] <= d) & valid)
            intersection[c] += np.sum(bands[0] & bands[1])
            union[c] += np.sum(bands[0] | bands[1])
    true = np.concatenate([label[label != VOID] for label, _ in pairs])
    pred = np.concatenate([p[label != VOID] for label, p in pairs])
    scores = {"iou": [], "precision": [], "recall": [], "dice": []}
    for c in range(K):
        t, p = true == c, pred == c
        both = np.sum(t & p)
        scores["iou"].append(both / np.sum(t | p) if np.any(t | p) else np.nan)
        scores["precision"].append(both / p.sum() if p.any() else np.nan)
        scores["recall"].append(both / t.sum() if t.any() else np.nan)
        scores["dice"].append(2 * both / (t.sum() + p.sum()) if np.any(t | p) else np.nan)
    scores = {k: np.array(v) for k, v in scores.items()}
    weights = np.array([np.mean(true == c) for c in range(K)])
    scores["fw_iou"] = np.sum(weights * np.nan_to_num(scores["iou"]))
    present = union > 0
    scores["boundary_iou"] = np.where(present, intersection / np.maximum(union, 1), np.nan)

    per_image = np.stack(per_image)
    drawn = np.random.default_rng(seed).integers(0, len(pairs), (resamples, len(pairs)))
    means = [mean_iou(per_image[row].sum(0)) for row in drawn]
    scores["interval"] = np.percentile(means, [2.5, 97.5])
    scores["per_image"] = per_image
    return scores


def mean_iou(matrix):
    """Mean IoU over the classes with a non-empty union, from a confusion matrix."""
    tp = np.diag(matrix)
    u = matrix.sum(0) + matrix.sum(1) - tp
    return np.mean(tp[u > 0] / u[u > 0])


def test_evaluate_slide_with_flip_equals_numpy(conv_model):
    from pixelwise.evaluation.evaluator import evaluate

    pairs = examples()
    result = evaluate(conv_model, pairs, TINY_CLASSES,
                      options=PredictOptions(mode="slide", tile=16, overlap=8, tta="flip"),
                      boundary_ratio=0.1, bootstrap_resamples=200, bootstrap_seed=3)

    def slide(view, scale):
        return reference_slide(conv_model, view, tile=16, overlap=8)

    predicted = [(label[..., 0], reference_tta(conv_model, image, [(1, False), (1, True)], slide).argmax(-1))
                 for image, label in pairs]
    expected = reference_evaluation(predicted, ratio=0.1, resamples=200, seed=3)
    np.testing.assert_array_equal(result.per_image_confusion, expected["per_image"])
    np.testing.assert_array_equal(result.confusion, expected["per_image"].sum(0))
    for name in ("iou", "precision", "recall", "dice", "boundary_iou"):
        np.testing.assert_allclose(getattr(result, name), expected[name], rtol=1e-12, err_msg=name)
    assert result.mean_iou == pytest.approx(np.nanmean(expected["iou"]), rel=1e-12)
    assert result.mean_dice == pytest.approx(np.nanmean(expected["dice"]), rel=1e-12)
    assert result.frequency_weighted_iou == pytest.approx(expected["fw_iou"], rel=1e-12)
    assert result.mean_boundary_iou == pytest.approx(np.nanmean(expected["boundary_iou"]), rel=1e-12)
    assert 0 < result.mean_boundary_iou < result.mean_iou  # edges are harder than interiors
    np.testing.assert_allclose([result.interval.low, result.interval.high], expected["interval"])
    assert result.interval.low <= result.mean_iou <= result.interval.high

    data = result.to_json()
    assert data["predict_options"] == {"model_size": None, "mode": "slide", "tile": 16, "overlap": 8,
                                       "tta": {"flip": True, "scales": [1.0]}}
    assert data["mean_iou_interval"]["resamples"] == 200 and data["mean_iou_interval"]["seed"] == 3
    assert data["boundary_ratio"] == 0.1
    assert data["per_class"]["disc"]["precision"] == pytest.approx(expected["precision"][1], abs=1e-6)
    assert data["per_class"]["square"]["recall"] is None  # never in the labels
    assert data["frequency_weighted_iou"] == pytest.approx(expected["fw_iou"], abs=1e-6)
    assert data["seconds_per_image"] > 0
    expected_per_image = [mean_iou(m) for m in expected["per_image"]]
    assert data["per_image_mean_iou"] == pytest.approx(expected_per_image, abs=1e-6)
    table = result.table()
    assert "16px tiles, overlap 8, TTA flip" in table and "200 bootstrap resamples" in table


def test_evaluate_whole_mode_without_tta_is_unchanged_and_bootstrap_can_be_off(conv_model):
    from pixelwise.evaluation.evaluator import evaluate

    pairs = examples(1)
    result = evaluate(conv_model, pairs, TINY_CLASSES, options=PredictOptions(model_size=(24, 32)),
                      bootstrap_resamples=0)
    predicted = [(label[..., 0], model_probs(conv_model, resize_uint8(image, (24, 32))))
                 for image, label in pairs]
    predicted = [(label, resize_probs(p, label.shape).argmax(-1)) for label, p in predicted]
    expected = reference_evaluation(predicted, ratio=0.02, resamples=1, seed=0)
    np.testing.assert_array_equal(result.confusion, expected["per_image"].sum(0))
    np.testing.assert_allclose(result.boundary_iou, expected["boundary_iou"])
    assert result.interval is None and result.to_json()["mean_iou_interval"] is None
    assert result.options == PredictOptions(model_size=(24, 32), mode="whole", tta="none")


def test_evaluate_refuses_bad_options_before_predicting(conv_model):
    from pixelwise.evaluation.evaluator import evaluate

    pairs = examples()
    for options, message in (({"options": PredictOptions(tile=16, overlap=16)}, "overlap"),
                             ({"options": {"tile": 16}}, "Expected the prediction options as a "
                              "PredictOptions or None, received dict"),
                             ({"boundary_ratio": 0}, "boundary ratio"),
                             ({"bootstrap_resamples": -1}, "bootstrap resamples")):
        with pytest.raises(ValueError, match=message):
            evaluate(conv_model, pairs, TINY_CLASSES, **options)


# ----------------------------------------------------------------------------- the commands


def _main(argv, capsys):
    from pixelwise.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_cli_slide_with_flip_equals_numpy(voc2007, voc2007_built, tmp_path, capsys):
    """`pixelwise evaluate --mode slide --tta flip` on a real TFDS build of the VOC fixture,
    against the fixture's own label arrays and the NumPy overlap-tile above."""
    import json

    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import load_split
    from run_fixture import write_run

    model = tiny_conv_model(num_classes=21)
    run = write_run(tmp_path / "run", model, class_set=VOC,
                    config={"dataset": "voc2007_semantic", "image_size": 32, **voc2007_built})
    code, stdout, stderr = _main(["evaluate", "--run", run, "--mode", "slide", "--tile", "24",
                                  "--overlap", "8", "--tta", "flip", "--boundary-ratio", "0.05",
                                  "--bootstrap-resamples", "100"], capsys)
    assert code == 0, stderr
    assert "24px tiles, overlap 8, TTA flip" in stdout and "100 bootstrap resamples" in stdout

    examples, _ = load_split("voc2007_semantic", "validation", **voc2007_built)
    pairs = []
    for example in examples.as_numpy_iterator():
        image_id = example["image/filename"].decode().rsplit(".", 1)[0]
        label = voc2007.labels["validation"][image_id][..., 0]
        probs = reference_tta(model, example["image"], [(1, False), (1, True)],
                              lambda view, scale: reference_slide(model, view, tile=24, overlap=8))
        pairs.append((label, probs.argmax(-1)))
    expected = reference_evaluation(pairs, ratio=0.05, resamples=100, seed=0, num_classes=21)
    metrics = json.loads((run / "eval-validation.json").read_text())
    confusion = json.loads((run / "confusion-validation.json").read_text())["matrix"]
    assert confusion == expected["per_image"].sum(0).tolist()
    assert metrics["mean_iou"] == pytest.approx(np.nanmean(expected["iou"]), abs=1e-6)
    assert metrics["mean_dice"] == pytest.approx(np.nanmean(expected["dice"]), abs=1e-6)
    assert metrics["frequency_weighted_iou"] == pytest.approx(expected["fw_iou"], abs=1e-6)
    assert metrics["boundary_iou"] == pytest.approx(np.nanmean(expected["boundary_iou"]), abs=1e-6)
    interval = metrics["mean_iou_interval"]
    assert [interval["low"], interval["high"]] == pytest.approx(expected["interval"], abs=1e-6)
    assert (interval["resamples"], interval["seed"]) == (100, 0)
    for i, name in enumerate(VOC.class_names):
        for key in ("precision", "recall", "dice", "boundary_iou"):
            value = expected[key][i]
            assert metrics["per_class"][name][key] == (
                None if np.isnan(value) else pytest.approx(value, abs=1e-6)), (name, key)
    assert PredictOptions.from_dict(metrics["predict_options"]) == PredictOptions(
        mode="slide", tile=24, overlap=8, tta="flip")


def test_cli_refuses_a_bad_mode_or_tta_in_one_line_before_any_work(tmp_path, capsys):
    from run_fixture import write_run

    run = write_run(tmp_path / "run", tiny_conv_model(), config={
        "dataset": "voc2007_semantic", "data_dir": str(tmp_path / "tfds")})
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(examples()[0][0]).save(image)
    for argv, expected in (
        (["evaluate", "--run", run, "--tta", "mirror"], "'mirror' is not understood"),
        (["evaluate", "--run", run, "--mode", "whole", "--tile", "16"], "--mode for mode="),
        (["predict", image, "--run", run, "--out", tmp_path / "o", "--tta", "scales=0"], "(0, 8]"),
    ):
        code, _, stderr = _main(argv, capsys)
        assert code == 2 and expected in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "tfds").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("tile_option, tile", [("16", 16), ("12x20", (12, 20))])
def test_predict_cli_slide_with_flip_equals_numpy(tmp_path, capsys, tile_option, tile):
    import json

    from PIL import Image

    from run_fixture import write_run

    model = tiny_conv_model()
    run = write_run(tmp_path / "run", model)
    image = examples()[2][0]
    Image.fromarray(image).save(tmp_path / "street.png")
    code, _, stderr = _main(["predict", tmp_path / "street.png", "--run", run, "--out", tmp_path / "o",
                             "--mode", "slide", "--tile", tile_option, "--overlap", "8", "--tta", "flip"],
                            capsys)
    assert code == 0, stderr
    probs = reference_tta(model, image, [(1, False), (1, True)],
                          lambda view, scale: reference_slide(model, view, tile=tile, overlap=8))
    counts = np.bincount(probs.argmax(-1).ravel(), minlength=K)
    written = json.loads((tmp_path / "o" / "street.json").read_text())["counts"]
    assert [written[name] for name in TINY_CLASSES.class_names] == counts.tolist()


def test_tile_option_is_n_or_hxw_and_a_bad_one_is_refused_by_the_parser(capsys):
    from pixelwise.cli import build_parser

    parser = build_parser()
    for command in (["evaluate", "--run", "r"], ["predict", "a.png", "--run", "r", "--out", "o"]):
        assert parser.parse_args([*command, "--tile", "192x256"]).tile == (192, 256)
        assert parser.parse_args([*command, "--tile", "64"]).tile == 64
        assert parser.parse_args([*command, "--tile", "64x64"]).tile == 64
        for bad in ("12xq", "0", "12x0"):
            with pytest.raises(SystemExit) as exited:
                parser.parse_args([*command, "--tile", bad])
            assert exited.value.code == 2
            assert (f"argument --tile: expected a tile N or HxW (positive integers, e.g. 256 or "
                    f"192x256), received {bad!r}") in capsys.readouterr().err


def test_evaluate_records_a_rectangular_tile_and_its_overlap(conv_model):
    """The tile and overlap in effect go into eval-SPLIT.json as (height, width) when not square."""
    from pixelwise.evaluation.evaluator import evaluate

    pairs = examples()[:2]
    result = evaluate(conv_model, pairs, TINY_CLASSES, options=PredictOptions(tile=(12, 20)),
                      bootstrap_resamples=0)
    # The default overlap: a quarter of each side.
    assert (result.options.tile, result.options.overlap) == ((12, 20), (2, 4))
    assert "12x20px tiles, overlap 2x4" in result.table()
    recorded = result.to_json()["predict_options"]
    assert (recorded["tile"], recorded["overlap"]) == ([12, 20], [2, 4])
    predicted = [(label[..., 0], reference_slide(conv_model, image, (12, 20), (2, 4)).argmax(-1))
                 for image, label in pairs]
    expected = reference_evaluation(predicted, ratio=0.02, resamples=1, seed=0)
    np.testing.assert_array_equal(result.confusion, expected["per_image"].sum(0))
