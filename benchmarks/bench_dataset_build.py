"""Dataset-build benchmark: label conversion vs the chapter's loop, and a full VOC-layout build.

1. **Label conversion** on the same label PNGs: the chapter's per-colour ``tf.Variable`` loop
   (``chapter_reference.chapter_decode_label``) vs ``pixelwise.datasets.common.decode_label``.
   The PNGs are VOC-style labels made from real CamVid annotations (``trainannot/``): class id
   ``i`` -> VOC palette index ``i``, CamVid void (11) -> VOC void (255). They are written twice,
   as palette PNGs (VOC's real format) and as RGB PNGs (what the chapter assumes), so both of
   pixelwise's decoding paths are timed. Without CamVid, synthetic blob labels are used.
   Both sides include PNG decoding. Target: >= 100x.
2. **Full build**: ``download_and_prepare`` of ``voc2007_semantic`` from a manual directory
   holding a VOC-layout archive (made with ``tests/voc_fixture.write_voc_fixture``), at roughly
   VOC's image size; examples/s over all splits. Target: >= 50 examples/s.

Usage::

    python benchmarks/bench_dataset_build.py            # full: 40 labels x 5 repeats, 200 examples
    python benchmarks/bench_dataset_build.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/voc_fixture.py

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import harness  # noqa: E402

CAMVID_VOID = 11


def _voc_palette_bytes() -> list[int]:
    from pixelwise.datasets.class_sets import VOC

    table = VOC.lookup_table()  # ids -> palette, 255 -> void colour
    return table.reshape(-1).tolist()


def _synthetic_ids(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(20, height // 2), rng.integers(20, width // 2)
        ids[y:y + h, x:x + w] = rng.integers(1, 21)
    ids[::37, :] = 255  # thin void lines, as VOC's object borders
    return ids


def make_label_pngs(count: int) -> tuple[list[bytes], list[bytes], str]:
    """``count`` VOC-style labels as (palette PNG bytes, RGB PNG bytes, source description)."""
    camvid = harness.SHARED_DATASETS / "CamVid" / "trainannot"
    palette = _voc_palette_bytes()
    id_maps = []
    if camvid.is_dir():
        for path in sorted(camvid.glob("*.png"))[:count]:
            ids = np.asarray(Image.open(path), dtype=np.uint8).copy()
            ids[ids == CAMVID_VOID] = 255
            id_maps.append(ids)
        source = f"{len(id_maps)} CamVid trainannot labels (480x360) re-encoded VOC-style"
    else:
        rng = np.random.default_rng(0)
        id_maps = [_synthetic_ids(rng, 375, 500) for _ in range(count)]
        source = f"{count} synthetic 500x375 labels (CamVid not found at {camvid})"
    palette_pngs, rgb_pngs = [], []
    for ids in id_maps:
        pil = Image.fromarray(ids, mode="P")
        pil.putpalette(palette)
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        palette_pngs.append(buffer.getvalue())
        buffer = io.BytesIO()
        pil.convert("RGB").save(buffer, format="PNG")
        rgb_pngs.append(buffer.getvalue())
    return palette_pngs, rgb_pngs, source


def bench_label_conversion(count: int, repeats: int) -> dict:
    from chapter_reference import chapter_decode_label
    from pixelwise.datasets.class_sets import VOC
    from pixelwise.datasets.common import decode_label

    palette_pngs, rgb_pngs, source = make_label_pngs(count)

    # Correctness first: where the chapter's LUT knows the colour (all but void), both agree.
    mismatched = 0
    for data in palette_pngs[:5]:
        ours = decode_label(data, VOC)[..., 0]
        theirs = chapter_decode_label(data)
        if theirs is not None:
            known = ours != 255
            mismatched += int((ours[known] != theirs[..., 0][known]).sum())

    def run_chapter(pngs):
        return lambda: [chapter_decode_label(p) for p in pngs]

    def run_ours(pngs):
        return lambda: [decode_label(p, VOC) for p in pngs]

    chapter = harness.summary(harness.repeat(run_chapter(palette_pngs), repeats))
    ours_palette = harness.summary(harness.repeat(run_ours(palette_pngs), repeats))
    ours_rgb = harness.summary(harness.repeat(run_ours(rgb_pngs), repeats))
    per_label = lambda s: s["median_s"] / count * 1e3  # noqa: E731
    return {
        "labels": source,
        "labels_per_repeat": count,
        "pixels_disagreeing_outside_void": mismatched,
        "chapter_tf_variable_loop_ms_per_label": per_label(chapter),
        "pixelwise_palette_png_ms_per_label": per_label(ours_palette),
        "pixelwise_rgb_png_ms_per_label": per_label(ours_rgb),
        "speedup_palette_png": chapter["median_s"] / ours_palette["median_s"],
        "speedup_rgb_png": chapter["median_s"] / ours_rgb["median_s"],
        "target_speedup": 100,
        "timings": {"chapter": chapter, "pixelwise_palette": ours_palette,
                    "pixelwise_rgb": ours_rgb},
    }


def bench_full_build(num_examples: int, size: tuple[int, int], repeats: int) -> dict:
    import tensorflow_datasets as tfds

    from pixelwise.datasets.voc2007_semantic.voc2007_semantic_dataset_builder import Builder
    from tests.voc_fixture import write_voc_fixture

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        manual_dir = Path(tmp) / "manual"
        start = time.perf_counter()
        fixture = write_voc_fixture(manual_dir, num_examples=num_examples, image_size=size)
        fixture_s = time.perf_counter() - start
        for attempt in range(repeats):
            data_dir = Path(tmp) / f"data{attempt}"
            builder = Builder(data_dir=str(data_dir))
            start = time.perf_counter()
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
            )
            results.append(time.perf_counter() - start)
        built = sum(split.num_examples for split in builder.info.splits.values())
    timing = harness.summary(results)
    return {
        "fixture": repr(fixture) if not isinstance(fixture, (dict, list, str)) else fixture,
        "fixture_write_s": fixture_s,
        "image_size_wh": list(size),
        "examples_built": built,
        "build_s": timing,
        "examples_per_s": built / timing["median_s"],
        "target_examples_per_s": 50,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few labels, tiny build")
    parser.add_argument("--skip-build", action="store_true", help="only the label conversion")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    results = {"machine": harness.machine_info()}
    count, repeats = (4, 2) if args.quick else (40, 5)
    results["label_conversion"] = bench_label_conversion(count, repeats)
    if not args.skip_build:
        num, size, build_repeats = (10, (500, 375), 1) if args.quick else (200, (500, 375), 3)
        try:
            results["full_build"] = bench_full_build(num, size, build_repeats)
        except ImportError as exc:
            results["full_build"] = {"not_measured": f"{type(exc).__name__}: {exc}"}
    harness.report("dataset_build", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
