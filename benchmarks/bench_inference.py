"""Inference benchmark: 512x512 latency, colourising vs the chapter's loop, overlap-tile memory.

1. **Latency** of one 512x512 image through the chapter's U-Net (``models.build("unet")``,
   21 classes, random weights: time does not depend on them), p50/p95 over repeats, for
   ``pixelwise.inference.prediction.predict_array`` (resize, forward, softmax, argmax: the public
   path) and for the bare forward pass ``model.predict_on_batch``.
2. **Colourising** a 512x512 label map: ``ClassSet.colorize`` (one palette lookup) vs the
   chapter's ``REV_LUT`` ``tf.Variable`` loop (``chapter_reference.chapter_colorize``),
   interleaved repeats. Target: >= 20x.
3. **Overlap-tile prediction** of a 4096x4096 RGB image with ``pixelwise.inference.tiling.predict_tiled``
   in a separate process: wall time and peak RSS (``ru_maxrss``), and the RSS before the
   prediction (TensorFlow + model). Model: the CamVid recipe's (configs/camvid.yaml),
   512 px tiles, default overlap (128 px); ``--tiled-model chapter`` uses the chapter's
   U-Net instead (~15x the arithmetic). Target: peak RSS < 3 GB.

Usage::

    python benchmarks/bench_inference.py              # all three
    python benchmarks/bench_inference.py --quick      # small sizes, smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import harness  # noqa: E402


def bench_latency(size: int, repeats: int) -> dict:
    from pixelwise import models
    from pixelwise.inference.options import PredictOptions
    from pixelwise.inference.prediction import predict_array

    model = models.build("unet", input_size=(None, None, 3), num_classes=21)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    batch = image[None].astype(np.float32) / 255.0

    def forward():
        model.predict_on_batch(batch)

    def public():
        predict_array(model, image, PredictOptions(model_size=size))

    forward(), forward(), public()  # tracing
    forward_times, public_times = [], []
    for _ in range(repeats):  # interleaved: both see the same machine load
        for fn, times in ((forward, forward_times), (public, public_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    # Each repeat is one image; report p50/p95 in milliseconds.
    to_ms = lambda ts: {"p50_ms": harness.percentile(ts, 50) * 1e3,  # noqa: E731
                        "p95_ms": harness.percentile(ts, 95) * 1e3,
                        "min_ms": min(ts) * 1e3, "repeats": len(ts)}
    return {
        "model": "chapter U-Net (models.build('unet')), 21 classes, fp32",
        "image": f"{size}x{size}x3",
        "forward_only": to_ms(forward_times),
        "predict_array": to_ms(public_times),
    }


def bench_colorize(size: int, repeats: int) -> dict:
    from chapter_reference import chapter_colorize
    from pixelwise.class_sets import VOC

    rng = np.random.default_rng(0)
    # Blocky label maps (as predictions are), all 21 classes present.
    blocks = rng.integers(0, 21, (size // 16, size // 16), dtype=np.uint8)
    labels = np.kron(blocks, np.ones((16, 16), np.uint8))
    ours = VOC.colorize(labels)
    theirs = chapter_colorize(labels.astype(np.int64))
    identical = bool(np.array_equal(ours, theirs))
    chapter_times, ours_times = [], []
    chapter_colorize(labels.astype(np.int64))
    for _ in range(repeats):  # interleaved: both see the same machine load
        start = time.perf_counter()
        chapter_colorize(labels.astype(np.int64))
        chapter_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        VOC.colorize(labels)
        ours_times.append(time.perf_counter() - start)
    chapter = harness.summary(chapter_times)
    pixelwise = harness.summary(ours_times)
    return {
        "labels": f"{size}x{size}, 21 VOC classes",
        "outputs_identical": identical,
        "chapter_rev_lut_loop_ms": chapter["median_s"] * 1e3,
        "pixelwise_classset_colorize_ms": pixelwise["median_s"] * 1e3,
        "speedup": chapter["median_s"] / pixelwise["median_s"],
        "target_speedup": 20,
        "timings": {"chapter": chapter, "pixelwise": pixelwise},
    }


def _tiled_child(side: int, tile: int, which: str) -> None:
    """Runs in its own process: build the model, predict one side x side image, print JSON."""
    import yaml

    from pixelwise import models
    from pixelwise.inference.tiling import predict_tiled, tile_geometry

    if which == "chapter":
        model = models.build("unet", input_size=(None, None, 3), num_classes=21)
        description = "chapter U-Net, 21 classes"
    else:
        recipe = yaml.safe_load((harness.PROJECT_ROOT / "configs" / "camvid.yaml").read_text())
        model = models.build(recipe["model"], input_size=(None, None, 3), num_classes=11,
                             **(recipe.get("model_args") or {}))
        description = f"configs/camvid.yaml model ({recipe['model']}, {recipe.get('model_args')})"
    geometry, _ = tile_geometry(model, tile)  # (rows, columns) of a square tile: the same
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    model.predict_on_batch(np.zeros((4, tile, tile, 3), np.float32))  # warm-up / tracing
    rss_before = harness.peak_rss_mb()
    start = time.perf_counter()
    result = predict_tiled(model, image, tile)
    seconds = time.perf_counter() - start
    tiles = int(np.ceil(side / geometry.core)) ** 2
    print(json.dumps({
        "model": description,
        "image": f"{side}x{side}x3 uint8",
        "tile": tile, "overlap": geometry.crop * 2, "tiles": tiles,
        "seconds": seconds,
        "megapixels_per_s": side * side / 1e6 / seconds,
        "peak_rss_mb_before_prediction": rss_before,
        "peak_rss_mb": harness.peak_rss_mb(),
        "labels_shape": list(result.labels.shape),
        "target_peak_rss_mb": 3000,
    }))


def bench_tiled(side: int, tile: int, which: str) -> dict:
    return harness.run_isolated(
        [__file__, "--child-tiled", str(side), str(tile), which], timeout=3600
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--parts", nargs="+", default=["latency", "colorize", "tiled"],
                        choices=["latency", "colorize", "tiled"])
    parser.add_argument("--repeats", type=int, default=20, help="latency/colourising repeats")
    parser.add_argument("--tiled-model", choices=["recipe", "chapter"], default="recipe")
    parser.add_argument("--child-tiled", nargs=3, metavar=("SIDE", "TILE", "MODEL"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.child_tiled:
        side, tile, which = args.child_tiled
        _tiled_child(int(side), int(tile), which)
        return

    size, repeats = (128, 3) if args.quick else (512, args.repeats)
    side, tile = (512, 128) if args.quick else (4096, 512)
    results = {"machine": harness.machine_info()}
    if "latency" in args.parts:
        results["latency"] = bench_latency(size, repeats)
    if "colorize" in args.parts:
        results["colorize"] = bench_colorize(size, max(repeats, 5))
    if "tiled" in args.parts:
        results["tiled"] = bench_tiled(side, tile, args.tiled_model)
    harness.report("inference", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
