"""Input-pipeline benchmark: training batches/s of ``pixelwise.data.pipeline.make_pipeline`` vs the model.

Builds (or reuses) the ``camvid`` TFDS dataset, makes the training pipeline of the CamVid
recipe (``configs/camvid.yaml``: its image size and batch size, with augmentation: flip,
scale 0.5-2 + crop, photometric jitter) and iterates it without a model: the first pass
fills the in-memory cache (decoding), later passes are what every further epoch costs.
In the same process, the recipe's model is trained on one fixed batch for a few steps to
measure how many images/s it consumes. Target: pipeline >= 10x the model's consumption,
i.e. the pipeline needs at most a tenth of the CPU that training leaves it.

Usage::

    python benchmarks/bench_input_pipeline.py --data-dir ~/tensorflow_datasets
    python benchmarks/bench_input_pipeline.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def _recipe() -> dict:
    import yaml

    return yaml.safe_load((harness.PROJECT_ROOT / "configs" / "camvid.yaml").read_text())


def bench_pipeline(data_dir, image_size, batch_size, passes: int, max_batches=None) -> dict:
    from pixelwise.data.pipeline import load_split, make_pipeline
    from pixelwise.class_sets import class_set_from_info

    manual_dir = harness.SHARED_DATASETS / "CamVid"
    examples, info = load_split("camvid", "train", data_dir, str(manual_dir), shuffle_files=True)
    class_set = class_set_from_info(info)
    pipeline = make_pipeline(examples, class_set, image_size, batch_size, training=True,
                             augment=True, seed=0)
    if max_batches:
        pipeline = pipeline.take(max_batches)
    pass_times, images = [], 0
    for _ in range(passes):
        start = time.perf_counter()
        images = 0
        for batch_images, _labels in pipeline:
            images += int(batch_images.shape[0])
        pass_times.append(time.perf_counter() - start)
    warm = pass_times[1:] or pass_times
    return {
        "dataset": f"camvid train ({info.splits['train'].num_examples} examples)",
        "image_size": list(image_size), "batch_size": batch_size,
        "images_per_pass": images,
        "first_pass_s (decode + fill cache)": pass_times[0],
        "warm_pass_s": harness.summary(warm),
        "images_per_s": images / statistics.median(warm),
        "first_pass_images_per_s": images / pass_times[0],
    }


def bench_model(image_size, batch_size, steps: int, recipe: dict) -> dict:
    from bench_training import TrainVariant, _pixelwise_compile
    from pixelwise import models
    from pixelwise.class_sets import CAMVID

    variant = TrainVariant(
        "recipe", lambda: models.build(recipe["model"], input_size=(*image_size, 3),
                                       num_classes=CAMVID.num_classes,
                                       **(recipe.get("model_args") or {})),
        _pixelwise_compile(CAMVID, class_weights=[1.0] * CAMVID.num_classes),
        batch_size, tuple(image_size), CAMVID.num_classes,
        precision="mixed_bfloat16" if recipe.get("mixed_precision") == "bf16" else "float32",
        jit_compile=recipe.get("jit_compile", "auto"))
    times = [variant.step() for _ in range(steps)]
    return {"model": f"{recipe['model']} {recipe.get('model_args')}",
            "step_s": harness.summary(times),
            "images_per_s": batch_size / statistics.median(times)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data dir holding (or to receive) the camvid build")
    parser.add_argument("--passes", type=int, default=4, help="passes over the split (1st fills the cache)")
    parser.add_argument("--steps", type=int, default=5, help="timed model training steps")
    parser.add_argument("--quick", action="store_true", help="10 batches, 2 passes, 2 steps, 64 px")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    recipe = _recipe()
    image_size = tuple(recipe["image_size"])
    batch_size = int(recipe["batch_size"])
    passes, steps, max_batches = args.passes, args.steps, None
    if args.quick:
        image_size, passes, steps, max_batches = (64, 64), 2, 2, 10
    results = {"machine": harness.machine_info()}
    results["pipeline"] = bench_pipeline(args.data_dir, image_size, batch_size, passes, max_batches)
    results["model"] = bench_model(image_size, batch_size, steps, recipe)
    results["pipeline_over_model"] = (results["pipeline"]["images_per_s"]
                                      / results["model"]["images_per_s"])
    results["target_ratio"] = 10
    harness.report("input_pipeline", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
