"""Export benchmark: latency of Keras fp32 vs TFLite fp32/fp16/int8 vs ONNX, and what int8 costs.

For each model (the chapter's U-Net, ``models.build("unet")`` at its default 64 base filters;
the CamVid recipe's model, ``configs/camvid.yaml``; and each ``--run`` given) and each input
size (512x512 and CamVid's 360x480), the serving graph of :mod:`pixelwise.export.serving` (uint8
image in, label map out: resize, mirror padding where the model needs it, softmax, resize
back, argmax) is converted to every format and timed on one uint8 image of that size, batch
1, in its own runtime with every CPU this process may use:

* ``keras``: that graph run by TensorFlow (float32), the reference of the parity check;
* ``keras_forward``: the bare ``model.predict_on_batch`` at the size the model sees (no
  pre/post-processing), for scale;
* ``tflite``, ``tflite-fp16``, ``tflite-int8``: the TFLite interpreter (XNNPACK);
* ``onnx``: onnxruntime (when the ``export`` extra is installed).

Medians over ``--repeats`` calls after two warm-up calls; ``speedup`` is keras / format.

With ``--run RUN`` (a run trained on CamVid: the recipe's), the run's model is measured too,
int8 is calibrated on ``--calibration-images`` images of its training split, and every format
is compared with the Keras model on the whole validation split (pixelwise's parity check):
mean IoU of both and pixel agreement, at each size and at the run's own training size (the
size ``pixelwise export`` uses by default). Without a run the weights are random: latency only,
int8 calibrated on seeded noise (time does not depend on the weights or the ranges).

The issue's goal: int8 TFLite >= 3x faster than Keras fp32, <= 1 point of mean IoU lost.

Usage::

    python benchmarks/bench_export.py --run runs/camvid         # the full benchmark (alone!)
    python benchmarks/bench_export.py --quick                   # 4-filter models at 64 px, smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import harness  # noqa: E402

TFLITE_FORMATS = ("tflite", "tflite-fp16", "tflite-int8")


def _models(quick: bool, runs: list[str]) -> dict:
    """``{name: (LoadedRun-like tuple (model, class_set, config), description)}``."""
    import yaml

    from pixelwise import models
    from pixelwise.class_sets import CAMVID
    from pixelwise.runs.loading import load_run

    recipe = yaml.safe_load((harness.PROJECT_ROOT / "configs" / "camvid.yaml").read_text())
    chapter_args = {"base_filters": 4} if quick else {}
    recipe_args = {**(recipe.get("model_args") or {}), **({"base_filters": 4} if quick else {})}
    found = {
        "chapter_unet": (models.build("unet", input_size=(None, None, 3), num_classes=11,
                                      **chapter_args), CAMVID, None,
                         f"unet {chapter_args or '(defaults)'}, random weights"),
        "recipe": (models.build(recipe["model"], input_size=(None, None, 3), num_classes=11,
                                **recipe_args), CAMVID, None,
                   f"configs/camvid.yaml model ({recipe['model']}, {recipe_args}), random weights"),
    }
    for run in runs:
        loaded = load_run(run)
        found[f"run:{Path(run).name}"] = (loaded.model, loaded.class_set, loaded.config,
                                          f"{loaded.checkpoint_path} (trained)")
    return found


def _graph_input(model, size) -> list[int]:
    """The size the model itself sees inside the serving graph (mirror-padded when it must)."""
    from pixelwise.inference import tiling as tiling

    if tiling.output_shape(model, *size) == tuple(size):
        return list(size)
    tile, _ = tiling.covering_tile(model, tuple(size))
    return list(tile)


def _artefacts(module, tflite_module, int8_module, class_set, folder: Path, calibration,
               formats) -> dict:
    """Write each format's artefact into ``folder``; ``{format: (path, label function)}``."""
    from pixelwise.export.onnx import (
        MissingExtraError, convert_onnx, onnx_labels, require_export_extra,
    )
    from pixelwise.export.tflite import TFLITE_PRECISIONS, convert_tflite, tflite_labels

    made = {}
    for format in formats:
        if format == "onnx":
            try:
                require_export_extra()
            except MissingExtraError as exc:
                print(f"skipping onnx: {exc}", file=sys.stderr)
                continue
            path = folder / "model.onnx"
            path.write_bytes(convert_onnx(module, class_set.class_names))
            made[format] = (path, onnx_labels(path))
        else:
            path = folder / f"{format}.tflite"
            int8 = format == "tflite-int8"  # converted from the float-input twin, as export does
            path.write_bytes(convert_tflite(int8_module if int8 else tflite_module,
                                            TFLITE_PRECISIONS[format], calibration if int8 else None))
            made[format] = (path, tflite_labels(path))
    return made


def bench_model(model, class_set, config, size, args, folder: Path) -> dict:
    """Latency of every format at ``size``; with a run's config, IoU on its validation split."""
    from pixelwise.export.serving import TFLITE_BATCH_SIZE, serving_module
    from pixelwise.export.parity import measure_parity, noise_sample, split_sample

    # As pixelwise export makes them: TFLite takes one image per call, the others any batch.
    module = serving_module(model, class_set, size, antialias=False)
    tflite_module = serving_module(model, class_set, size, antialias=False,
                                   batch_size=TFLITE_BATCH_SIZE)
    int8_module = serving_module(model, class_set, size, antialias=False,
                                 batch_size=TFLITE_BATCH_SIZE, float_input=True)
    channels = int(model.input_shape[-1])
    source = None
    if config and config.get("dataset"):
        source = {"dataset": config["dataset"], "data_dir": args.data_dir or config.get("data_dir"),
                  "manual_dir": args.manual_dir or config.get("manual_dir")}
        calibration = split_sample(source["dataset"], config.get("train_split") or "train",
                                   args.calibration_images, channels, class_set,
                                   data_dir=source["data_dir"], manual_dir=source["manual_dir"])
    else:
        calibration = noise_sample(args.calibration_images, size, channels)
    made = _artefacts(module, tflite_module, int8_module, class_set, folder, calibration.images,
                      args.formats)

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, *size, channels), dtype=np.uint8)
    graph_input = _graph_input(model, size)
    batch = rng.random((1, *graph_input, channels), dtype=np.float32)
    functions = {"keras": lambda x: module.serve(x)["labels"].numpy(),
                 **{name: labels for name, (_, labels) in made.items()}}
    timings = {name: harness.summary(harness.repeat(lambda f=f: f(image), args.repeats, warmup=2))
               for name, f in functions.items()}
    timings["keras_forward"] = harness.summary(
        harness.repeat(lambda: model.predict_on_batch(batch), args.repeats, warmup=2))
    keras_ms = 1000 * timings["keras"]["median_s"]
    formats = {}
    for name, summary in timings.items():
        entry = {"median_ms": round(1000 * summary["median_s"], 2),
                 "p95_ms": round(1000 * summary["p95_s"], 2), "repeats": summary["repeats"],
                 "speedup": round(keras_ms / (1000 * summary["median_s"]), 2)}
        if name in made:
            entry["bytes"] = made[name][0].stat().st_size
        formats[name] = entry
    result = {"graph_input": graph_input, "calibration": calibration.source, "formats": formats}
    if source is not None:
        sample = split_sample(source["dataset"], config.get("validation_split") or "validation",
                              args.parity_images, channels, class_set,
                              data_dir=source["data_dir"], manual_dir=source["manual_dir"])
        result["validation"] = {}
        for name, (_, labels) in made.items():
            parity = measure_parity(functions["keras"], labels, sample, class_set)
            result["validation"][name] = {
                "images": parity["images"], "pixel_agreement": round(parity["pixel_agreement"], 5),
                "mean_iou_keras": parity["mean_iou"]["keras"],
                "mean_iou_export": parity["mean_iou"]["export"],
                "mean_iou_lost_points": round(100 * (parity["mean_iou"]["keras"]
                                                     - parity["mean_iou"]["export"]), 2),
            }
    return result


def main(argv=None) -> None:
    from pixelwise.export.tflite import available_cpus

    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="4-filter models at 64x64 and 48x64, 3 repeats: a smoke run")
    parser.add_argument("--run", nargs="*", default=[], metavar="RUN",
                        help="trained run folders (CamVid: the recipe's) for mean IoU and agreement")
    parser.add_argument("--models", nargs="*", default=["chapter_unet", "recipe"],
                        help="random-weight models to time (chapter_unet, recipe); none: only --run")
    parser.add_argument("--sizes", nargs="+", default=None, metavar="HxW",
                        help="input sizes (default 512x512 360x480)")
    parser.add_argument("--formats", nargs="+", default=[*TFLITE_FORMATS, "onnx"])
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 20)")
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--parity-images", type=int, default=1000,
                        help="validation images for IoU (default: all of CamVid's 101)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    parser.add_argument("--manual-dir", default=None, help="CamVid folder (default: the run's)")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    sizes = args.sizes or (["64x64", "48x64"] if args.quick else ["512x512", "360x480"])
    sizes = [tuple(int(s) for s in size.lower().split("x")) for size in sizes]
    args.repeats = args.repeats or (3 if args.quick else 20)
    if args.quick:
        args.calibration_images = min(args.calibration_images, 4)

    available = _models(args.quick, args.run)
    names = [*args.models, *(f"run:{Path(run).name}" for run in args.run)]
    chosen = {name: available[name] for name in names}
    results = {"machine": harness.machine_info(), "threads": available_cpus(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, class_set, config, description) in chosen.items():
            entry = {"description": description, "params": int(model.count_params()), "sizes": {}}
            trained = [tuple(config["image_size"])] if config and config.get("image_size") else []
            for size in dict.fromkeys([*trained, *sizes]):
                label = f"{size[0]}x{size[1]}"
                folder = Path(tmp) / name.replace(":", "_") / label
                folder.mkdir(parents=True)
                print(f"{name} at {label}...", file=sys.stderr)
                try:
                    entry["sizes"][label] = bench_model(model, class_set, config, size, args, folder)
                except ValueError as exc:  # e.g. a fixed-input checkpoint at another size
                    print(f"  skipped: {exc}", file=sys.stderr)
                    entry["sizes"][label] = {"skipped": str(exc)}
            results["models"][name] = entry
    harness.report("export", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
