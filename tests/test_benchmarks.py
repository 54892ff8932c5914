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
