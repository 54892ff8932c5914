"""The benchmarks compare like with like: their baselines and statistics are checked here.

The chapter baselines in ``benchmarks/chapter_reference.py`` must compute what pixelwise
computes (else a speed-up would compare different work), and the harness' percentiles
must match NumPy's.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import chapter_reference  # noqa: E402
import harness  # noqa: E402

from pixelwise.class_sets import VOC  # noqa: E402
from pixelwise.datasets.decoding import decode_label  # noqa: E402


def _palette_png(ids: np.ndarray) -> bytes:
    image = Image.fromarray(ids, mode="P")
    image.putpalette(VOC.lookup_table().reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_chapter_label_loop_agrees_with_decode_label_outside_void():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 21, (24, 32)).astype(np.uint8)
    ids[::5] = 255  # VOC void, which the chapter's LUT does not know
    data = _palette_png(ids)
    ours = decode_label(data, VOC)[..., 0]
    theirs = chapter_reference.chapter_decode_label(data)[..., 0]
    assert np.array_equal(ours, ids)
    known = ids != 255
    assert np.array_equal(theirs[known], ids[known])
    # The chapter's bug, measured as it is: void becomes background (0).
    assert (theirs[~known] == 0).all()


def test_chapter_colorize_agrees_with_classset_colorize():
    labels = np.arange(21, dtype=np.int64).repeat(3).reshape(7, 9)
    expected = np.asarray(VOC.palette, np.uint8)[labels]
    assert np.array_equal(chapter_reference.chapter_colorize(labels), expected)
    assert np.array_equal(VOC.colorize(labels), expected)


def test_chapter_unet_matches_the_chapter_parameter_count_and_pixelwise_unet():
    from pixelwise import models

    chapter = chapter_reference.get_unet((64, 64, 3), num_classes=21)
    ours = models.build("unet", input_size=(64, 64, 3), num_classes=21)
    assert chapter.count_params() == ours.count_params() == 26_917_781


@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_matches_numpy(q):
    values = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4]
    assert harness.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_summary_reports_median_and_spread():
    stats = harness.summary([3.0, 1.0, 2.0, 10.0])
    assert stats["median_s"] == pytest.approx(2.5)
    assert (stats["min_s"], stats["max_s"], stats["repeats"]) == (1.0, 10.0, 4)


def test_throughput_and_reference_ratios_of_the_encoders_group():
    import bench_training
    import report

    # 8 images per 2 s step (median of 1, 2, 3 s), 1.5 GFLOP forward, 100 GFLOP/s peak.
    training = bench_training.throughput(8, [3.0, 1.0, 2.0], 1.5e9, 3, 100.0)
    assert training["images_per_s"] == pytest.approx(4.0)
    assert training["achieved_gflops"] == pytest.approx(4.0 * 3 * 1.5)
    assert training["fraction_of_matmul_peak"] == pytest.approx(0.18)
    inference = bench_training.throughput(8, [0.5], 1.5e9, 1, 100.0)
    assert inference["achieved_gflops"] == pytest.approx(16 * 1.5)

    def row(model, encoder, train, infer, reference=False):
        return {"model": model, "encoder": encoder, "reference": reference, "batch_size": 8,
                "precision": "float32", "xla": False, "params": 2_500_000,
                "forward_gflops_per_image": 1.5, "step_s": {"median_s": 8 / train, "repeats": 3},
                "images_per_s": train, "achieved_gflops": train * 4.5,
                "fraction_of_matmul_peak": train * 0.045, "inference_images_per_s": infer,
                "inference_achieved_gflops": infer * 1.5,
                "inference_fraction_of_matmul_peak": infer * 0.015}

    group = {"matmul_peak_gflops": {"float32": 100.0, "bfloat16": 50.0, "n": 2048},
             "variants": {"recipe": row("unet", None, 10.0, 40.0, reference=True),
                          "fpn_resnet50": row("fpn", "resnet50", 2.5, 30.0)}}
    bench_training.add_ratios(group)
    assert group["reference"] == "recipe"
    fpn = group["variants"]["fpn_resnet50"]
    assert fpn["images_per_s_over_reference"] == pytest.approx(0.25)
    assert fpn["inference_images_per_s_over_reference"] == pytest.approx(0.75)
    lines = report.training({"machine": {"date_utc": "now", "load_average_at_start": [0.0],
                                         "nproc": 2}, "command": "x", "groups": {"encoders": group}})
    table_row = next(line for line in lines if line.startswith("| fpn |"))
    assert table_row == ("| fpn | resnet50 | 2.50 | 1.50 | off | 2.50 | 11.2 | **11 %** | "
                         "30.00 | 45.0 | **45 %** | 0.25× / 0.75× |")


def test_backend_figures_are_medians_over_rounds_and_ratios_to_tensorflow():
    import bench_backends

    # Batch 8: rounds of 2 steps taking 2, 1 and 4 s in all -> 8, 16 and 4 images/s.
    figures = bench_backends.images_per_s(8, [[1.0, 1.0], [0.5, 0.5], [3.0, 1.0]])
    assert figures["images_per_s"] == pytest.approx(8.0)
    assert figures["images_per_s_rounds"] == pytest.approx([8.0, 16.0, 4.0])

    model = {"tensorflow": {"train": {"images_per_s": 4.0}, "inference": {"images_per_s": 20.0}},
             "tensorflow-xla": {"train": {"images_per_s": 6.0},
                                "inference": {"images_per_s": 10.0}},
             "jax": {"not_measured": "jax is not installed"}}
    bench_backends.add_ratios(model)
    assert model["tensorflow"]["train"]["over_tensorflow"] == 1.0
    assert model["tensorflow-xla"]["train"]["over_tensorflow"] == pytest.approx(1.5)
    assert model["tensorflow-xla"]["inference"]["over_tensorflow"] == pytest.approx(0.5)
    assert bench_backends.markdown_table({"unet": model})[2:] == [
        "| unet | tensorflow | 4.00 | 20.00 | 1.00× / 1.00× |",
        "| unet | tensorflow-xla | 6.00 | 10.00 | 1.50× / 0.50× |",
        "| unet | jax | – | – | jax is not installed |"]


@pytest.mark.slow
def test_bench_backends_quick_measures_every_backend(tmp_path, capfd):
    """``--quick`` with one model (the recipe's U-Net): three workers, each builds and compiles
    it once (~1-3 min on 2 busy cores; all three default models take ~3x that)."""
    import bench_backends

    recipe = harness.load_recipe(bench_backends.DEFAULT_RECIPE)
    model = next(iter(bench_backends.model_specs(recipe, bench_backends.DEFAULT_RECIPE.stem)))
    out = tmp_path / "backends.json"
    bench_backends.main(["--quick", "--models", model, "--out", str(out)])

    results = json.loads(out.read_text())
    assert results["quick"] and results["image_size"] == [64, 64] and results["batch_size"] == 2
    assert results["machine"]["cpu"] and "cpu_flags" in results["machine"]
    assert results["training_step"]["class_weights"] == recipe["class_weights"]
    figures = results["models"][model]
    assert list(figures) == list(bench_backends.BACKENDS)
    assert figures["tensorflow"]["xla"] is False and figures["tensorflow-xla"]["xla"] is True
    measured = [b for b, f in figures.items() if "train" in f]
    assert measured[:2] == ["tensorflow", "tensorflow-xla"]
    for backend in measured:
        for kind in ("train", "inference"):
            assert figures[backend][kind]["images_per_s"] > 0
            assert figures[backend][kind]["step_s"]["repeats"] == 2  # 1 round of 2 steps
    if "jax" in measured:
        assert results["backends"]["jax"]["keras_backend"] == "jax"
    table = capfd.readouterr().out
    assert f"| {model} | tensorflow | " in table and "1.00× / 1.00×" in table


@pytest.mark.slow
def test_bench_beam_build_quick_builds_plain_and_on_beam_with_the_same_skips(tmp_path):
    """``--quick``: 24 generated pairs (4 broken), built plainly and on 1 and 2 Beam workers."""
    pytest.importorskip("apache_beam")
    import bench_beam_build

    out = tmp_path / "beam_build.json"
    bench_beam_build.main(["--quick", "--out", str(out)])

    results = json.loads(out.read_text())
    assert results["quick"] and results["export"]["num_pairs"] == 24
    assert results["export"]["broken"] == 4
    for name in bench_beam_build.BUILDS:
        figures = results[name]
        assert figures["examples"] == 20, name
        assert figures["skip_report_names_every_broken_pair"], name
        assert figures["examples_per_s"] > 0 and figures["tree_peak_rss_mib"] > 0
    assert results["plain"]["speed_vs_plain"] == 1.0


@pytest.mark.slow
def test_bench_predict_beam_quick_completes_the_good_images_and_resumes_without_redoing(tmp_path):
    """``--quick``: 24 images (3 broken) through plain predict, Beam with 1 and 2 workers, and a
    2-worker job killed halfway then re-run (~2 min on 2 busy cores: five TensorFlow starts)."""
    pytest.importorskip("apache_beam")
    import bench_predict_beam

    out = tmp_path / "predict_beam.json"
    bench_predict_beam.main(["--quick", "--out", str(out)])

    results = json.loads(out.read_text())
    assert results["quick"] and results["inputs"]["num_images"] == 24
    for name in bench_predict_beam.MEASUREMENTS:
        assert results[name]["complete"] == 21, name
        assert results[name]["images_per_s"] > 0
    assert results["beam_1_worker"]["dead_letter_lines"] == 3
    assert results["beam_2_workers"]["dead_letter_lines"] == 3
    assert results["plain"]["speed_vs_plain"] == 1.0
    resumed = results["kill_and_resume"]
    assert resumed["redone_completed"] == 0 and resumed["complete_after_rerun"] == 21
    assert resumed["rerun"]["predicted"] + resumed["rerun"]["skipped"] == 21
    assert resumed["rerun"]["skipped"] == resumed["complete_at_kill"]
