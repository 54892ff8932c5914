"""Peak-memory benchmark: training the chapter's U-Net at its batch size 32, fp32 and bf16.

Each measurement runs in a fresh process (so one cannot inherit the other's high-water
mark): build ``models.build("unet")`` at 256x256 (21 classes) under the dtype policy,
compile it as pixelwise does (Adam, void-aware cross-entropy, mean IoU + pixel accuracy,
XLA as Keras decides: ``jit_compile="auto"``), then run training steps on one fixed
batch. Reported: peak RSS (``ru_maxrss``) after importing TensorFlow and building the
model, and after the steps; their difference is what training itself needs.

Usage::

    python benchmarks/bench_memory.py                  # batch 32, fp32 and bf16, first step + 1 each
    python benchmarks/bench_memory.py --steps 0        # only the first step (bf16 is slow here)
    python benchmarks/bench_memory.py --quick          # batch 4 at 64x64
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

import harness  # noqa: E402


def _child(precision: str, batch_size: int, size: int, steps: int) -> None:
    from bench_training import TrainVariant, _pixelwise_compile
    from pixelwise import models
    from pixelwise.class_sets import VOC

    import keras

    # Peak RSS before any training step: TensorFlow, Keras and the model's weights.
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    probe = models.build("unet", input_size=(size, size, 3), num_classes=21)
    keras.mixed_precision.set_global_policy(previous)
    params = probe.count_params()
    del probe
    rss_built = harness.peak_rss_mb()
    start = time.perf_counter()
    variant = TrainVariant(
        "memory", lambda: models.build("unet", input_size=(size, size, 3), num_classes=21),
        _pixelwise_compile(VOC), batch_size, (size, size), 21, precision=precision,
        jit_compile="auto")
    step_times = [variant.step() for _ in range(steps)]
    print(json.dumps({
        "precision": precision, "batch_size": batch_size, "image": f"{size}x{size}",
        "params": params,
        "peak_rss_mb_after_build": rss_built,
        "peak_rss_mb": harness.peak_rss_mb(),
        "training_overhead_mb": harness.peak_rss_mb() - rss_built,
        "first_step_s": variant.first_step_s,
        "step_s": step_times,
        "total_s": time.perf_counter() - start,
        "input_batch_mb": (variant.x.nbytes + variant.y.nbytes) / 2**20,
        "note": "first_step_s includes tracing/XLA compilation; step_s are the steps after it",
    }))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 4 at 64x64")
    parser.add_argument("--steps", type=int, default=1,
                        help="timed training steps after the first (which compiles and allocates "
                             "the optimizer state)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.child:
        precision, batch, size, steps = args.child
        _child(precision, int(batch), int(size), int(steps))
        return
    batch, size = (4, 64) if args.quick else (32, 256)
    results = {"machine": harness.machine_info(), "runs": {}}
    for precision in args.precisions:
        print(f"measuring {precision} ...", file=sys.stderr, flush=True)
        results["runs"][precision] = harness.run_isolated(
            [__file__, "--child", precision, str(batch), str(size), str(args.steps)],
            timeout=3600)
    harness.report("memory", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
