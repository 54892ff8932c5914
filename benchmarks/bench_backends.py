"""Backend benchmark: training and inference images/s on TensorFlow, TensorFlow + XLA and JAX.

Each backend runs in its own worker process (``KERAS_BACKEND`` has to be set before Keras is
imported): ``tensorflow`` (``jit_compile=False``), ``tensorflow-xla`` (``jit_compile=True``)
and ``jax`` (Keras always compiles JAX's steps with XLA). Every worker builds and compiles
the same models on the same fixed in-memory batch (random images, random labels with void
rows), runs untimed warm-up steps (tracing / compiling), then waits. The parent then measures
round by round, interleaved: in each round, each model on TensorFlow, then TensorFlow + XLA,
then JAX; the other workers idle meanwhile, so on a shared machine the three backends see the
same conditions. Figures are medians over the rounds.

A training step is ``train_on_batch``: forward, backward and the optimizer's update, with the
recipe's loss (``pixelwise.losses.segmentation_loss``: its kind and class weights) and its
optimizer (``pixelwise.training.optimizers.make_optimizer``: AdamW, weight decay, the learning-rate
schedule), as ``pixelwise train`` compiles them; no metrics (they are the same work on every
backend and not part of the step). Inference is ``predict_on_batch``. fp32; the encoders
start from random weights (the same speed as ImageNet's, without the wheels).

Models (``--models``, default all):

* the recipe's model (``configs/camvid-scratch.yaml`` if it exists, else ``configs/camvid.yaml``:
  the CamVid from-scratch U-Net), at the recipe's image size and batch;
* ``unet_efficientnet_lite0_light``: U-Net on EfficientNet-Lite0, decoder_filters
  (128, 64, 48, 32, 16) (experiment F's lighter decoder);
* ``unet_efficientnet_lite0``: the same with the default decoder.

Usage::

    python benchmarks/bench_backends.py                 # 5 rounds of 5 steps, 192x256, batch 8
    python benchmarks/bench_backends.py --models unet_efficientnet_lite0_light --rounds 3
    python benchmarks/bench_backends.py --quick --out /tmp/backends.json  # a smoke run

Writes ``benchmarks/results/backends.json`` (``--quick``: only to ``--out``, if given) and
prints a markdown table: model, backend, train img/s, infer img/s, ratio to TensorFlow
without XLA.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import harness  # noqa: E402

from pixelwise.class_sets import CAMVID  # noqa: E402

#: Backend label -> (KERAS_BACKEND, jit_compile); the first is the reference of the ratios.
BACKENDS = {"tensorflow": ("tensorflow", False),
            "tensorflow-xla": ("tensorflow", True),
            "jax": ("jax", True)}
REFERENCE_BACKEND = "tensorflow"
CONFIGS = harness.PROJECT_ROOT / "configs"
#: The CamVid from-scratch recipe (camvid.yaml held it before camvid-scratch.yaml existed).
DEFAULT_RECIPE = (CONFIGS / "camvid-scratch.yaml" if (CONFIGS / "camvid-scratch.yaml").is_file()
                  else CONFIGS / "camvid.yaml")
LITE_LIGHT_DECODER = [128, 64, 48, 32, 16]
#: Cosine schedules decay over this many steps: the rate stays positive through any run here.
SCHEDULE_STEPS = 100_000


# --------------------------------------------------------------------------- what is measured

def model_specs(recipe: dict, recipe_name: str) -> dict[str, dict]:
    """Name -> ``{"model": registry name, "model_args": {...}}`` of the models measured."""
    return {
        f"{recipe_name}_{recipe['model']}": {"model": recipe["model"],
                                             "model_args": dict(recipe.get("model_args") or {})},
        "unet_efficientnet_lite0_light": {"model": "encoder_unet", "model_args": {
            "encoder": "efficientnet_lite0", "encoder_weights": None,
            "decoder_filters": LITE_LIGHT_DECODER}},
        "unet_efficientnet_lite0": {"model": "encoder_unet", "model_args": {
            "encoder": "efficientnet_lite0", "encoder_weights": None}},
    }


def training_step(recipe: dict, num_classes: int) -> dict:
    """The recipe's loss and optimizer settings, as plain JSON for the workers."""
    weights = recipe.get("class_weights")
    if weights is not None and not isinstance(weights, list):
        weights = [1.0] * num_classes  # data-derived ("median-frequency"): the same work
    return {"loss": recipe.get("loss", "ce"),
            "reconstruction_weight": float(recipe.get("reconstruction_weight", 1.0)),
            "class_weights": weights,
            "optimizer": recipe.get("optimizer", "adam"),
            "learning_rate": float(recipe.get("learning_rate", 1e-3)),
            "weight_decay": float(recipe.get("weight_decay", 0.0)),
            "lr_schedule": recipe.get("lr_schedule", "constant")}


def images_per_s(batch_size: int, round_times: list[list[float]]) -> dict:
    """Median over rounds of each round's images/s (``batch_size`` x steps / the round's time)."""
    per_round = [batch_size * len(times) / sum(times) for times in round_times]
    return {"images_per_s": statistics.median(per_round), "images_per_s_rounds": per_round}


def add_ratios(model_results: dict) -> None:
    """Each backend's train and inference images/s over TensorFlow's without XLA."""
    reference = model_results.get(REFERENCE_BACKEND, {})
    for figures in model_results.values():
        for key in ("train", "inference"):
            if key in figures and key in reference:
                figures[key]["over_tensorflow"] = (figures[key]["images_per_s"]
                                                   / reference[key]["images_per_s"])


def markdown_table(models: dict) -> list[str]:
    """model | backend | train img/s | infer img/s | ratio to TF without XLA (train / infer)."""
    lines = ["| model | backend | train img/s | infer img/s | ratio to TF no-XLA (train / infer) |",
             "|---|---|---:|---:|---:|"]
    for model, backends in models.items():
        for backend, figures in backends.items():
            if "train" not in figures:
                reason = figures.get("not_measured", "")
                lines.append(f"| {model} | {backend} | – | – | {reason} |")
                continue
            train, infer = figures["train"], figures["inference"]
            ratio = (f"{train['over_tensorflow']:.2f}× / {infer['over_tensorflow']:.2f}×"
                     if "over_tensorflow" in train else "–")
            lines.append(f"| {model} | {backend} | {train['images_per_s']:.2f} | "
                         f"{infer['images_per_s']:.2f} | {ratio} |")
    return lines


# --------------------------------------------------------------------------- the worker

class Worker(harness.WorkerProcess):
    """One backend's process: builds the models once, then times them on request.

    Protocol (JSON lines): the parent writes the setup, the worker answers what it built;
    then each ``{"measure": model}`` is answered with that model's step times; end of input
    ends the worker.
    """

    def __init__(self, label: str):
        keras_backend, self.jit_compile = BACKENDS[label]
        super().__init__(__file__, label, {"KERAS_BACKEND": keras_backend})


def _compile(model, step: dict, jit_compile: bool) -> bool:
    """Compile as ``pixelwise train`` does (loss, optimizer), without metrics; True if XLA."""
    from pixelwise.losses import segmentation_loss
    from pixelwise.training.optimizers import learning_rate_schedule, make_optimizer

    optimizer = make_optimizer(step["optimizer"], learning_rate_schedule(
        step["learning_rate"], step["lr_schedule"], SCHEDULE_STEPS), step["weight_decay"])
    model.compile(optimizer=optimizer,
                  loss=segmentation_loss(CAMVID, step["loss"], step["reconstruction_weight"],
                                         class_weights=step["class_weights"]),
                  jit_compile=jit_compile)
    return bool(model.jit_compile)


def run_worker(label: str) -> None:
    """The worker's side of :class:`Worker` (``--worker LABEL``; ``KERAS_BACKEND`` set)."""
    # The protocol gets the real stdout; anything else printing goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    setup = json.loads(sys.stdin.readline())

    # Keras in the workers only: each one's KERAS_BACKEND, set by the parent, picks its backend.
    import keras

    from pixelwise import models

    jit_compile = BACKENDS[label][1]
    height, width = setup["image_size"]
    batch_size, num_classes = setup["batch_size"], CAMVID.num_classes
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, height, width, 3), dtype=np.float32)
    y = rng.integers(0, num_classes, (batch_size, height, width, 1)).astype(np.int32)
    y[:, ::17] = CAMVID.ignore_label  # void rows, as real labels have
    built, facts = {}, {}
    for name, spec in setup["models"].items():
        print(f"[{label}] building {name}", file=sys.stderr, flush=True)
        keras.utils.set_random_seed(0)
        model = models.build(spec["model"], input_size=(height, width, 3),
                             num_classes=num_classes, **spec["model_args"])
        xla = _compile(model, setup["step"], jit_compile)
        first_train = harness.repeat(lambda m=model: m.train_on_batch(x, y),
                                     repeats=setup["warmup"], warmup=0)
        first_predict = harness.repeat(lambda m=model: m.predict_on_batch(x),
                                       repeats=setup["warmup"], warmup=0)
        built[name] = model
        facts[name] = {"params": model.count_params(), "xla": xla,
                       "warmup_train_step_s": first_train, "warmup_predict_s": first_predict}
    versions = {"keras_backend": keras.backend.backend(), "keras": keras.__version__}
    if versions["keras_backend"] == "jax":
        import jax

        versions.update(jax=jax.__version__, jax_devices=[str(d) for d in jax.devices()])
    else:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    protocol.write(json.dumps({"models": facts, "versions": versions}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        model = built[json.loads(line)["measure"]]
        train = harness.repeat(lambda: model.train_on_batch(x, y), setup["steps"], warmup=0)
        predict = harness.repeat(lambda: model.predict_on_batch(x), setup["steps"], warmup=0)
        protocol.write(json.dumps({"train_s": train, "predict_s": predict}) + "\n")
        protocol.flush()


# --------------------------------------------------------------------------- the parent

def _unavailable(label: str) -> str | None:
    if BACKENDS[label][0] == "jax" and importlib.util.find_spec("jax") is None:
        return 'jax is not installed (pip install -e ".[jax]")'
    return None


def measure(setup: dict, rounds: int) -> dict:
    """Start a worker per backend, then time every model on each, ``rounds`` times interleaved."""
    results = {name: {} for name in setup["models"]}
    workers, backends = [], {}
    try:
        for label in BACKENDS:
            reason = _unavailable(label)
            if reason:
                backends[label] = {"not_measured": reason}
                for name in results:
                    results[name][label] = {"not_measured": reason}
                continue
            worker = Worker(label)
            worker.send(setup)  # all build and compile at once; timing starts when all are ready
            workers.append(worker)
        for worker in workers:
            ready = worker.receive()
            backends[worker.label] = {"jit_compile": worker.jit_compile, **ready["versions"]}
            for name, facts in ready["models"].items():
                results[name][worker.label] = dict(facts)
        times = {(name, w.label): {"train": [], "inference": []} for name in results
                 for w in workers}
        for round_index in range(rounds):
            for name in results:
                for worker in workers:
                    worker.send({"measure": name})
                    answer = worker.receive()
                    times[name, worker.label]["train"].append(answer["train_s"])
                    times[name, worker.label]["inference"].append(answer["predict_s"])
            print(f"round {round_index + 1}/{rounds} done", file=sys.stderr, flush=True)
    except BaseException:
        for worker in workers:  # a worker may be minutes into compiling: do not wait for it
            worker.kill()
        raise
    for worker in workers:
        worker.close()
    for (name, label), kinds in times.items():
        for kind, round_times in kinds.items():
            results[name][label][kind] = {
                **images_per_s(setup["batch_size"], round_times),
                "step_s": harness.summary([t for steps in round_times for t in steps])}
    for figures in results.values():
        add_ratios(figures)
    return {"backends": backends, "models": results}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_RECIPE),
                        help="recipe whose model, image size, batch, loss and optimizer are "
                             f"used (default: {DEFAULT_RECIPE.relative_to(harness.PROJECT_ROOT)})")
    parser.add_argument("--models", nargs="+", default=None,
                        help="names of the models to measure (default: all: the recipe's, "
                             "unet_efficientnet_lite0_light, unet_efficientnet_lite0)")
    parser.add_argument("--batch-size", type=int, default=8, help="default 8")
    parser.add_argument("--image-size", type=int, nargs=2, default=None,
                        metavar=("HEIGHT", "WIDTH"), help="default: the recipe's (192 256)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the backends "
                        "(default 5); figures are medians over them")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed train steps and predict calls per model per round (default 5)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed train steps and predict calls per model first (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64x64, batch 2, 1 round of 2 steps, 1 warm-up step; "
                             "writes only to --out")
    parser.add_argument("--out", default=None,
                        help="JSON output path (default benchmarks/results/backends.json; "
                             "--quick: none)")
    parser.add_argument("--worker", choices=list(BACKENDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker)
        return

    recipe_path = Path(args.config)
    recipe = harness.load_recipe(recipe_path)
    specs = model_specs(recipe, recipe_path.stem)
    chosen = args.models or list(specs)
    unknown = sorted(set(chosen) - set(specs))
    if unknown:
        parser.error(f"unknown --models {unknown}; expected some of {list(specs)}")
    size = args.image_size or harness.recipe_image_size(recipe)
    batch_size, rounds, steps, warmup = args.batch_size, args.rounds, args.steps, args.warmup
    if args.quick:
        size, batch_size, rounds, steps, warmup = (64, 64), 2, 1, 2, 1
    setup = {"models": {name: specs[name] for name in chosen}, "image_size": list(size),
             "batch_size": batch_size, "steps": steps, "warmup": warmup,
             "step": training_step(recipe, CAMVID.num_classes)}
    results = {"machine": harness.machine_info(), "recipe": str(recipe_path),
               "image_size": list(size), "batch_size": batch_size, "precision": "float32",
               "rounds": rounds, "steps_per_round": steps, "warmup_steps": warmup,
               "training_step": setup["step"], "model_specs": setup["models"],
               "xla_flags": os.environ.get("XLA_FLAGS", ""), **measure(setup, rounds)}
    if args.quick and not args.out:
        print(json.dumps(results, indent=2, default=float))
    else:
        harness.report("backends", results, quick=args.quick, out=args.out)
    print("\n".join(markdown_table(results["models"])))


if __name__ == "__main__":
    main()
