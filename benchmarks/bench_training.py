"""Training-throughput benchmark: images/s and achieved GFLOP/s against a measured matmul peak.

For each variant a model is built and compiled, then ``train_on_batch`` is timed on one fixed
in-memory batch (so the input pipeline is not part of it; see ``bench_input_pipeline.py``).
Variants of one group are measured *interleaved*, round by round, together with the matmul
peak (``tf.linalg.matmul`` of two large square matrices, fp32 and bf16): on a shared machine,
ratios within a group compare like with like. Figures are medians over the rounds.

Achieved FLOP/s = images/s x 3 x forward FLOPs (2 x multiply-adds of the convolutions, from
``pixelwise.models.summary.count_flops``), as a fraction of the matmul peak in the same
precision (bf16 peak for ``mixed_bfloat16``). Variants measured for inference too also time
``predict_on_batch`` on the same batch in every round: images/s x 1 x forward FLOPs.

Groups:

* ``chapter256_b8``: the chapter's U-Net at 256x256, batch 8: the chapter's code as written
  (``chapter_reference``: its model and ``compile``; Keras 3 turns XLA on by default) and
  pixelwise (``models.build("unet")``, void-aware loss, mean IoU + pixel accuracy metrics):
  fp32 with XLA on / off, ``mixed_bfloat16`` with XLA on / off.
* ``chapter256_b32``: pixelwise at batch 32 (the chapter's batch size), fp32 and bf16, XLA on.
* ``compact``: the model and training size of ``configs/camvid.yaml`` at its batch size, fp32
  and bf16, XLA on.
* ``long`` (not run by default): the same for ``configs/camvid-long.yaml``, fp32 only.
* ``encoders`` (not run by default): training *and* inference throughput of the encoder models
  (``models.build(name, encoder=..., encoder_weights=None)``: LR-ASPP, FPN, DeepLabV3+ and U-Net
  on MobileNetV3-Large, FPN on EfficientNetV2-B0, U-Net on ResNet-50) beside the recipe's U-Net
  (the reference), at ``configs/camvid.yaml``'s training size, batch and ``jit_compile`` (``auto``:
  Keras' choice, XLA off on a CPU-only machine; the JSON records the resolved ``xla``), fp32.

Usage::

    python benchmarks/bench_training.py                 # all groups, 5 rounds
    python benchmarks/bench_training.py --groups compact --rounds 3
    python benchmarks/bench_training.py --quick         # tiny models, 2 rounds: a smoke run
    python benchmarks/bench_training.py --groups encoders \
        --out benchmarks/results/training_encoders.json  # report.py renders that file too
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

import numpy as np  # noqa: E402

import harness  # noqa: E402

MATMUL_N = 2048


class MatmulPeak:
    """Times one ``n x n @ n x n`` product per call in a dtype; ``2 n^3`` FLOPs."""

    def __init__(self, dtype_name: str, n: int = MATMUL_N):
        import tensorflow as tf

        dtype = getattr(tf, dtype_name)
        self.name = f"matmul_{dtype_name}"
        self.flops = 2.0 * n**3
        self.a = tf.cast(tf.random.normal((n, n), seed=1), dtype)
        self.b = tf.cast(tf.random.normal((n, n), seed=2), dtype)
        self.fn = tf.function(tf.linalg.matmul)
        self.fn(self.a, self.b).numpy()

    def step(self) -> float:
        start = time.perf_counter()
        # Three products per sample: a single 0.1 s product is too short on a busy machine.
        for _ in range(3):
            self.fn(self.a, self.b).numpy()
        return (time.perf_counter() - start) / 3


class TrainVariant:
    """One compiled model and a fixed batch; ``step()`` times one ``train_on_batch``.

    With ``inference=True``, ``infer_step()`` times one ``predict_on_batch`` of the same batch.
    ``details`` (a dict, e.g. the model and encoder names) is copied into the results.
    """

    def __init__(self, name, build_model, compile_model, batch_size, size, num_classes,
                 precision="float32", jit_compile=True, void_rows=True, inference=False,
                 details=None):
        import keras

        from pixelwise.models.summary import count_flops

        self.name = name
        self.batch_size = batch_size
        self.precision = precision
        self.jit_compile = jit_compile
        self.inference = inference
        self.details = dict(details or {})
        previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy(precision)
        try:
            self.model = build_model()
        finally:
            keras.mixed_precision.set_global_policy(previous)
        compile_model(self.model, jit_compile)
        self.xla = bool(self.model.jit_compile)  # "auto" resolved by Keras
        self.forward_flops = float(count_flops(self.model))
        rng = np.random.default_rng(0)
        height, width = size
        self.x = rng.random((batch_size, height, width, 3), dtype=np.float32)
        labels = rng.integers(0, num_classes, (batch_size, height, width, 1)).astype(np.int32)
        if void_rows:  # some void rows, as real labels have (the chapter's loss has no void)
            labels[:, ::17] = 255
        self.y = labels
        start = time.perf_counter()
        self.model.train_on_batch(self.x, self.y)  # tracing / XLA compilation
        self.first_step_s = time.perf_counter() - start
        self.first_predict_s = self.infer_step() if inference else None  # tracing

    def step(self) -> float:
        start = time.perf_counter()
        self.model.train_on_batch(self.x, self.y)
        return time.perf_counter() - start

    def infer_step(self) -> float:
        start = time.perf_counter()
        self.model.predict_on_batch(self.x)
        return time.perf_counter() - start


def _pixelwise_compile(class_set, class_weights=None):
    def compile_model(model, jit_compile):
        import keras

        from pixelwise.losses import segmentation_loss
        from pixelwise.metrics import segmentation_metrics

        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=segmentation_loss(class_set, class_weights=class_weights),
            metrics=segmentation_metrics(class_set),
            jit_compile=jit_compile,
        )
    return compile_model


def _chapter_compile(model, jit_compile):
    from chapter_reference import chapter_compile

    chapter_compile(model)  # as written: Keras 3 default jit_compile="auto" (XLA on)


def _chapter_variants(batch_sizes, size, base_filters, precisions_xla, include_chapter):
    from chapter_reference import get_unet as chapter_get_unet
    from pixelwise import models
    from pixelwise.class_sets import VOC

    compile_ours = _pixelwise_compile(VOC)
    for batch_size in batch_sizes:
        if include_chapter:
            yield dict(
                name=f"chapter_as_written_b{batch_size}_fp32_xla-auto",
                build_model=lambda: chapter_get_unet((*size, 3), 21) if base_filters == 128
                else models.build("unet", input_size=(*size, 3), num_classes=21,
                                  base_filters=base_filters),
                compile_model=_chapter_compile, batch_size=batch_size, size=size,
                num_classes=21, precision="float32", jit_compile="auto", void_rows=False)
        for precision, jit in precisions_xla:
            short = "bf16" if precision == "mixed_bfloat16" else "fp32"
            yield dict(
                name=f"pixelwise_unet_b{batch_size}_{short}_xla-{'on' if jit else 'off'}",
                build_model=lambda: models.build("unet", input_size=(*size, 3), num_classes=21,
                                                 base_filters=base_filters),
                compile_model=compile_ours, batch_size=batch_size, size=size, num_classes=21,
                precision=precision, jit_compile=jit)


def _recipe_variants(config_path: Path, quick: bool, precisions=("float32", "mixed_bfloat16")):
    """The model, training size and batch of a CamVid recipe, XLA on."""
    from pixelwise import models
    from pixelwise.class_sets import CAMVID

    recipe = harness.load_recipe(config_path)
    model_options = dict(recipe.get("model_args") or {})
    size = harness.recipe_image_size(recipe)
    batch_size = int(recipe.get("batch_size", 8))
    if quick:
        size, batch_size = (64, 64), 2
    compile_ours = _pixelwise_compile(CAMVID, class_weights=[1.0] * CAMVID.num_classes)
    for precision in precisions:
        short = "bf16" if precision == "mixed_bfloat16" else "fp32"
        yield dict(
            name=f"{config_path.stem}_{recipe['model']}_b{batch_size}_{size[0]}x{size[1]}_{short}_xla-on",
            build_model=lambda: models.build(recipe["model"], input_size=(*size, 3),
                                             num_classes=CAMVID.num_classes, **model_options),
            compile_model=compile_ours, batch_size=batch_size, size=size,
            num_classes=CAMVID.num_classes, precision=precision, jit_compile=True)


#: (decoder, encoder) pairs of the ``encoders`` group, cheapest decoder first.
ENCODER_MODELS = (
    ("lraspp", "mobilenetv3large"),
    ("fpn", "mobilenetv3large"),
    ("deeplabv3plus", "mobilenetv3large"),
    ("encoder_unet", "mobilenetv3large"),
    ("fpn", "efficientnetv2b0"),
    ("encoder_unet", "resnet50"),
)
#: ``--quick``: two of them (two decoders, two encoder families); building and tracing a model
#: takes 20-40 s here whatever its input size, so all six would not make a smoke run.
QUICK_ENCODER_MODELS = (("lraspp", "mobilenetv3large"), ("encoder_unet", "resnet50"))


def _encoder_variants(config_path: Path, quick: bool):
    """The recipe's model (the reference) and ``ENCODER_MODELS`` at the recipe's size and batch.

    fp32 and the recipe's ``jit_compile`` (default ``"auto"``), training and inference timed;
    ``quick``: 64x64, batch 2, ``QUICK_ENCODER_MODELS``.
    """
    from pixelwise import models
    from pixelwise.class_sets import CAMVID

    recipe = harness.load_recipe(config_path)
    size = harness.recipe_image_size(recipe)
    batch_size = int(recipe.get("batch_size", 8))
    if quick:
        size, batch_size = (64, 64), 2
    common = dict(compile_model=_pixelwise_compile(CAMVID, [1.0] * CAMVID.num_classes),
                  batch_size=batch_size, size=size, num_classes=CAMVID.num_classes,
                  precision="float32", jit_compile=recipe.get("jit_compile", "auto"),
                  inference=True)
    model_options = dict(recipe.get("model_args") or {})
    yield dict(
        name=f"{config_path.stem}_{recipe['model']}_b{batch_size}_{size[0]}x{size[1]}_fp32",
        build_model=lambda: models.build(recipe["model"], input_size=(*size, 3),
                                         num_classes=CAMVID.num_classes, **model_options),
        details={"model": recipe["model"], "encoder": None, "reference": True, **model_options},
        **common)
    for decoder, encoder in QUICK_ENCODER_MODELS if quick else ENCODER_MODELS:
        yield dict(
            name=f"{decoder}_{encoder}_b{batch_size}_{size[0]}x{size[1]}_fp32",
            build_model=lambda decoder=decoder, encoder=encoder: models.build(
                decoder, input_size=(*size, 3), num_classes=CAMVID.num_classes,
                encoder=encoder, encoder_weights=None),
            details={"model": decoder, "encoder": encoder, "reference": False}, **common)


def throughput(batch_size: int, step_times, flops_per_image: float, passes: int,
               peak_gflops: float) -> dict:
    """images/s from the median step time, achieved GFLOP/s (``passes`` x forward) and its share
    of the matmul peak."""
    images_per_s = batch_size / statistics.median(step_times)
    achieved = images_per_s * passes * flops_per_image / 1e9
    return {"images_per_s": images_per_s, "achieved_gflops": achieved,
            "fraction_of_matmul_peak": achieved / peak_gflops}


def run_group(name: str, specs, rounds: int) -> dict:
    peaks = {"float32": MatmulPeak("float32"), "mixed_bfloat16": MatmulPeak("bfloat16")}
    variants = []
    for spec in specs:
        print(f"[{name}] building {spec['name']}", file=sys.stderr, flush=True)
        variants.append(TrainVariant(**spec))
    times = {v.name: [] for v in variants}
    infer_times = {v.name: [] for v in variants if v.inference}
    peak_times = {k: [] for k in peaks}
    for round_index in range(rounds):
        for precision, peak in peaks.items():
            peak_times[precision].append(peak.step())
        for variant in variants:
            times[variant.name].append(variant.step())
            if variant.inference:
                infer_times[variant.name].append(variant.infer_step())
        print(f"[{name}] round {round_index + 1}/{rounds}: "
              + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in times.items()), file=sys.stderr,
              flush=True)
    peak_gflops = {
        precision: peak.flops / statistics.median(peak_times[precision]) / 1e9
        for precision, peak in peaks.items()
    }
    results = {"matmul_peak_gflops": {"float32": peak_gflops["float32"],
                                      "bfloat16": peak_gflops["mixed_bfloat16"],
                                      "n": MATMUL_N},
               "variants": {}}
    for variant in variants:
        peak = peak_gflops[variant.precision]
        row = {
            **variant.details,
            "batch_size": variant.batch_size,
            "precision": variant.precision,
            "jit_compile": variant.jit_compile,
            "xla": variant.xla,
            "params": variant.model.count_params(),
            "forward_gflops_per_image": variant.forward_flops / 1e9,
            "step_s": harness.summary(times[variant.name]),
            "first_step_s": variant.first_step_s,
            **throughput(variant.batch_size, times[variant.name], variant.forward_flops, 3, peak),
        }
        if variant.inference:
            inference = throughput(variant.batch_size, infer_times[variant.name],
                                   variant.forward_flops, 1, peak)
            row.update({"inference_step_s": harness.summary(infer_times[variant.name]),
                        "first_predict_s": variant.first_predict_s,
                        **{f"inference_{key}": value for key, value in inference.items()}})
        results["variants"][variant.name] = row
    return results


def add_ratios(group: dict) -> None:
    """bf16/fp32 and XLA on/off speed ratios between variants of one group."""
    variants = group["variants"]
    ratios = {}
    for name, figures in variants.items():
        if "_fp32_xla-on" in name:
            for other, label in (("_bf16_xla-on", "bf16_over_fp32_xla-on"),
                                 ("_fp32_xla-off", "xla_on_over_off_fp32")):
                partner = name.replace("_fp32_xla-on", other)
                if partner in variants:
                    a, b = figures["images_per_s"], variants[partner]["images_per_s"]
                    ratios[f"{name}:{label}"] = b / a if "bf16" in label else a / b
        if "_bf16_xla-on" in name:
            partner = name.replace("_bf16_xla-on", "_bf16_xla-off")
            if partner in variants:
                ratios[f"{name}:xla_on_over_off_bf16"] = (
                    figures["images_per_s"] / variants[partner]["images_per_s"])
        if name.startswith("chapter_as_written"):
            partner = name.replace("chapter_as_written", "pixelwise_unet").replace(
                "xla-auto", "xla-on")
            if partner in variants:
                ratios[f"{partner}:over_chapter_as_written"] = (
                    variants[partner]["images_per_s"] / figures["images_per_s"])
    references = [name for name, figures in variants.items() if figures.get("reference")]
    for reference in references:
        base = variants[reference]
        for name, figures in variants.items():
            figures["images_per_s_over_reference"] = figures["images_per_s"] / base["images_per_s"]
            if "inference_images_per_s" in figures and "inference_images_per_s" in base:
                figures["inference_images_per_s_over_reference"] = (
                    figures["inference_images_per_s"] / base["inference_images_per_s"])
        group["reference"] = reference
    group["ratios"] = ratios


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64x64 inputs, base_filters 8 (recipe groups: batch 2; "
                             "encoders: 2 of the 6 models), 2 rounds")
    parser.add_argument("--groups", nargs="+",
                        default=["chapter256_b8", "chapter256_b32", "compact"],
                        choices=["chapter256_b8", "chapter256_b32", "compact", "long",
                                 "encoders"])
    parser.add_argument("--no-bf16-xla-off", action="store_true",
                        help="skip the bf16 XLA-off variant of chapter256_b8 (the slowest)")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--config", default=str(harness.PROJECT_ROOT / "configs" / "camvid.yaml"),
                        help="recipe whose model/crop/batch the 'compact' and 'encoders' "
                             "groups measure")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    size, base, rounds = ((64, 64), 8, 2) if args.quick else ((256, 256), 128, args.rounds)
    all_precisions = [("float32", True), ("float32", False),
                      ("mixed_bfloat16", True), ("mixed_bfloat16", False)]
    group_specs = {
        "chapter256_b8": lambda: _chapter_variants([2 if args.quick else 8], size, base,
                                                   all_precisions, include_chapter=True),
        "chapter256_b32": lambda: _chapter_variants(
            [4 if args.quick else 32], size, base,
            [("float32", True), ("mixed_bfloat16", True)], include_chapter=False),
        "compact": lambda: _recipe_variants(Path(args.config), args.quick),
        "long": lambda: _recipe_variants(Path(args.config).with_name("camvid-long.yaml"),
                                         args.quick, precisions=("float32",)),
        "encoders": lambda: _encoder_variants(Path(args.config), args.quick),
    }
    if args.no_bf16_xla_off:
        all_precisions.remove(("mixed_bfloat16", False))
    results = {"machine": harness.machine_info(), "groups": {}}
    for group in args.groups:
        if group in ("compact", "long", "encoders") and not Path(args.config).is_file():
            results["groups"][group] = {"not_measured": f"no recipe at {args.config}"}
            continue
        results["groups"][group] = run_group(group, list(group_specs[group]()), rounds)
        add_ratios(results["groups"][group])
    harness.report("training", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
