"""The benchmarks compare like with like: their baselines and statistics are checked here.

The chapter baselines in ``benchmarks/chapter_reference.py`` must compute what pixelwise
computes (else a speed-up would compare different work), and the harness' percentiles
must match NumPy's.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import chapter_reference  # noqa: E402
import harness  # noqa: E402

from pixelwise.class_sets import VOC  # noqa: E402
from pixelwise.datasets.common import decode_label  # noqa: E402


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
