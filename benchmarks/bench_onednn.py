"""oneDNN on or off, and Keras' Adam or pixelwise's fused one, for training and inference on TensorFlow.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import, so each setting runs in its own
process (``--worker``), one after another, in alternating order round by round. Each
worker builds a U-Net on one encoder and measures, with 2 threads:

* a training step (192x256, batch 8, sparse cross-entropy ignoring 255) with Keras'
  ``keras.optimizers.Adam`` and with pixelwise's ``Adam`` (one ``ResourceApplyAdam`` per
  variable, :class:`pixelwise.training.optimizers.FusedAdamStep`), interleaved;
* inference at 384x480 (a CamVid frame padded to a multiple of 32), batch 1 and batch 4.

Usage::

    python benchmarks/bench_onednn.py                                  # 3 encoders, 2 rounds
    python benchmarks/bench_onednn.py --encoders mobilenetv3large --rounds 1
    python benchmarks/bench_onednn.py --quick --out /tmp/onednn.json  # smoke run, 64x64

Writes ``benchmarks/results/onednn.json`` (``--quick``: only ``--out``) and prints a table of
medians over rounds and the ratios oneDNN/Eigen (above 1: oneDNN faster) and fused/Keras Adam.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

ENCODERS = ("resnet50", "mobilenetv3large", "efficientnet_lite0")
SETTINGS = {"onednn": "1", "eigen": "0"}
THREADS = 2


def run_worker(encoder: str, setup: dict) -> dict:
    """One process, one oneDNN setting: training steps (two optimizers) and inference."""
    import pixelwise  # noqa: F401  (first: the variable is already set by the parent)
    import keras
    import numpy as np
    import tensorflow as tf

    from pixelwise import models
    from pixelwise.onednn import onednn_enabled
    from pixelwise.training.optimizers import Adam

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    rng = np.random.default_rng(0)
    height, width = setup["train_size"]
    x = rng.random((setup["batch_size"], height, width, 3), dtype=np.float32)
    y = rng.integers(0, 12, (setup["batch_size"], height, width, 1)).astype("int32")
    trained = {}
    for label, optimizer in (("keras_adam", keras.optimizers.Adam), ("fused_adam", Adam)):
        keras.utils.set_random_seed(0)
        model = models.build("encoder_unet", input_size=(height, width, 3), num_classes=12,
                             encoder=encoder)
        model.compile(optimizer=optimizer(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=255))
        trained[label] = model
    times = {label: [] for label in trained}
    for label, model in trained.items():
        harness.repeat(lambda m=model: m.train_on_batch(x, y), repeats=setup["warmup"], warmup=0)
    for _ in range(setup["steps"]):
        for label, model in trained.items():
            times[label] += harness.repeat(lambda m=model: m.train_on_batch(x, y), repeats=1,
                                           warmup=0)
    figures = {"onednn": onednn_enabled()}
    for label, seconds in times.items():
        figures[f"train_step_s_{label}"] = statistics.median(seconds)
    del trained
    model = models.build("encoder_unet", input_size=(*setup["infer_size"], 3), num_classes=12,
                         encoder=encoder)
    for batch in setup["infer_batches"]:
        images = rng.random((batch, *setup["infer_size"], 3), dtype=np.float32)
        seconds = harness.repeat(lambda: model.predict_on_batch(images),
                                 repeats=setup["infer_repeats"], warmup=setup["warmup"])
        figures[f"infer_batch{batch}_s"] = statistics.median(seconds)
    return figures


def measure(encoder: str, setting: str, setup: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": SETTINGS[setting]}
    done = subprocess.run([sys.executable, __file__, "--worker", encoder, json.dumps(setup)],
                          env=env, capture_output=True, text=True, cwd=harness.PROJECT_ROOT)
    if done.returncode:
        raise RuntimeError(f"the {encoder}/{setting} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(rounds: dict) -> dict:
    """Medians over rounds per encoder and setting, and the ratios."""
    summary = {}
    for encoder, by_setting in rounds.items():
        medians = {setting: {key: statistics.median(r[key] for r in runs)
                             for key in runs[0] if key != "onednn"}
                   for setting, runs in by_setting.items()}
        on, off = medians["onednn"], medians["eigen"]
        summary[encoder] = {
            "medians": medians,
            "train_onednn_over_eigen": off["train_step_s_keras_adam"] / on["train_step_s_keras_adam"],
            "fused_adam_over_keras_adam": {setting: m["train_step_s_keras_adam"]
                                           / m["train_step_s_fused_adam"]
                                           for setting, m in medians.items()},
            **{f"infer_{key.split('_')[1]}_onednn_over_eigen": off[key] / on[key]
               for key in on if key.startswith("infer_")},
        }
    return summary


def table(summary: dict) -> list[str]:
    lines = ["| encoder | train step s (Eigen / oneDNN) | oneDNN × | fused Adam × (oneDNN) | "
             "batch 1 ms (Eigen / oneDNN) | oneDNN × | batch 4 ms (Eigen / oneDNN) | oneDNN × |",
             "|---|---|---:|---:|---|---:|---|---:|"]
    for encoder, s in summary.items():
        off, on = s["medians"]["eigen"], s["medians"]["onednn"]
        cells = [encoder,
                 f"{off['train_step_s_keras_adam']:.2f} / {on['train_step_s_keras_adam']:.2f}",
                 f"{s['train_onednn_over_eigen']:.2f}×",
                 f"{s['fused_adam_over_keras_adam']['onednn']:.2f}×"]
        for batch in (1, 4):
            key = f"infer_batch{batch}_s"
            if key in on:
                cells += [f"{off[key] * 1e3:.0f} / {on[key] * 1e3:.0f}",
                          f"{s[f'infer_batch{batch}_onednn_over_eigen']:.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: mobilenetv3large at 64x64, one round; writes only --out")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("ENCODER", "SETUP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker[0], json.loads(args.worker[1]))))
        return
    setup = {"train_size": [192, 256], "batch_size": 8, "infer_size": [384, 480],
             "infer_batches": [1, 4], "steps": 4, "infer_repeats": 5, "warmup": 2}
    encoders, rounds = args.encoders, args.rounds
    if args.quick:
        setup.update(train_size=[64, 64], batch_size=2, infer_size=[64, 64], steps=1,
                     infer_repeats=1, warmup=1)
        encoders, rounds = args.encoders if args.encoders != list(ENCODERS) else ["mobilenetv3large"], 1
    runs = {encoder: {setting: [] for setting in SETTINGS} for encoder in encoders}
    for index in range(rounds):
        order = list(SETTINGS) if index % 2 == 0 else list(reversed(SETTINGS))
        for encoder in encoders:
            for setting in order:
                runs[encoder][setting].append(measure(encoder, setting, setup))
        print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    results = {"machine": harness.machine_info(), "threads": THREADS, "rounds": rounds,
               "setup": setup, "runs": runs, "summary": summarise(runs)}
    if args.quick and not args.out:
        print(json.dumps(results, indent=2, default=float))
    else:
        harness.report("onednn", results, quick=args.quick, out=args.out)
    print("\n".join(table(results["summary"])))


if __name__ == "__main__":
    main()
