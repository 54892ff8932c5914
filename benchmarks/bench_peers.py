"""Peer benchmark: the same architectures in pixelwise (TensorFlow, JAX) and segmentation_models.pytorch.

For each pair of one encoder and one decoder, the model is built in pixelwise (Keras 3, on
TensorFlow without XLA, the ``pixelwise train`` default on CPU, with oneDNN's kernels as
``import pixelwise`` turns them on (:mod:`pixelwise.onednn`), again without them
(``pixelwise-tensorflow-eigen``, TensorFlow's default on CPUs without AVX-512 VNNI/BF16), and
on JAX) and in
segmentation_models.pytorch (smp, on PyTorch), from random weights:

==============================  ======================================  ===================================
pair                            pixelwise                               smp
==============================  ======================================  ===================================
unet_resnet50                   ``encoder_unet``, encoder resnet50      ``Unet("resnet50")``
fpn_resnet50                    ``fpn``, encoder resnet50               ``FPN("resnet50")``
deeplabv3plus_resnet50          ``deeplabv3plus``, output_stride 16,    ``DeepLabV3Plus("resnet50", encoder_output_stride=16)``
                                separable
unet_mobilenetv3large           ``encoder_unet``, mobilenetv3large      ``Unet("tu-mobilenetv3_large_100")``
unet_efficientnet_lite0         ``encoder_unet``, efficientnet_lite0    ``Unet("tu-tf_efficientnet_lite0")``
==============================  ======================================  ===================================

Both libraries' defaults are the same decoders (U-Net blocks of 256, 128, 64, 32, 16
channels; FPN pyramid 256 and segmentation 128; DeepLabV3+ ASPP 256, low-level 48,
decoder 256; smp's DeepLabV3+ is given the paper's rates at output stride 16, 6/12/18, which
pixelwise uses, instead of its default 12/24/36). The trainable parameters are counted per
part (encoder, decoder + head) and set side by side; BENCHMARKS.md explains each difference
layer by layer (Keras' ResNet50 convolutions carry biases; timm's EfficientNet-Lite0
features end at its last block, Keras-style pixelwise's at the 1280-channel head conv).
pixelwise's DeepLabV3+ is built ``separable=True``, smp's default (depthwise-separable 3x3s
in ASPP and decoder): same parameters, but pixelwise's second separable 3x3 runs at stride
4 as in the paper, smp's at stride 16 (after ASPP).

Measured, per pair and framework, each in its own worker process (one per framework, 2
threads each, all built and warmed up before any timing), interleaved round by round so
that every framework sees the same machine:

* training images/s: forward, backward and an Adam step (lr 1e-3; pixelwise's ``Adam``, as
  ``pixelwise train`` uses it, fused on TensorFlow) with sparse cross-entropy
  ignoring label 255, at the CamVid recipe's 192x256, batch 8, fp32;
* inference latency: one 360x480 CamVid frame, padded to the stride-32 multiple 384x480 as
  both libraries' prediction paths do, batch 1, fp32 (Keras ``predict_on_batch``; torch
  ``eval()`` under ``inference_mode``).

Figures are medians over rounds. The ratios are pixelwise/smp (above 1: pixelwise is faster;
for latency, smp's latency over pixelwise's, so above 1 is also pixelwise faster).

torch for this benchmark: the ``peers`` extra (``pip install -e ".[peers]"``) pins
``torch==2.13.0``, the CPU build this machine carries on disk. On an index that has only the
CUDA build of torchvision, its compiled ops cannot load beside a CPU torch and importing it
fails ("operator torchvision::nms does not exist"); smp's models use none of those ops, so the
torch worker declares the two op schemas torchvision registers fake kernels for (``nms``,
``qnms``) and imports it again (:func:`import_smp`). Nothing else of torchvision is changed.

Usage::

    python benchmarks/bench_peers.py                    # all pairs, 3 rounds of 3 steps
    python benchmarks/bench_peers.py --pairs unet_mobilenetv3large --rounds 2
    python benchmarks/bench_peers.py --quick --out /tmp/peers.json   # smoke run, 64x64

Writes ``benchmarks/results/peers.json`` (``--quick``: only to ``--out``) and prints a
markdown table.
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

NUM_CLASSES = 12  # CamVid's 11 classes + the recipe's void as 255: 12 logits as in pixelwise
IGNORE = 255
THREADS = 2

#: pair -> (pixelwise model, its arguments, smp architecture, smp arguments)
PAIRS = {
    "unet_resnet50": ("encoder_unet", {"encoder": "resnet50"}, "Unet",
                      {"encoder_name": "resnet50"}),
    "fpn_resnet50": ("fpn", {"encoder": "resnet50"}, "FPN", {"encoder_name": "resnet50"}),
    "deeplabv3plus_resnet50": ("deeplabv3plus", {"encoder": "resnet50", "output_stride": 16,
                                                 "separable": True},
                               "DeepLabV3Plus",
                               {"encoder_name": "resnet50", "encoder_output_stride": 16,
                                "decoder_atrous_rates": (6, 12, 18)}),
    "unet_mobilenetv3large": ("encoder_unet", {"encoder": "mobilenetv3large"}, "Unet",
                              {"encoder_name": "tu-mobilenetv3_large_100"}),
    "unet_efficientnet_lite0": ("encoder_unet", {"encoder": "efficientnet_lite0"}, "Unet",
                                {"encoder_name": "tu-tf_efficientnet_lite0"}),
}
#: framework -> KERAS_BACKEND of its worker (None: the torch worker)
FRAMEWORKS = {"pixelwise-tensorflow": "tensorflow", "pixelwise-tensorflow-eigen": "tensorflow",
              "pixelwise-jax": "jax", "smp-torch": None}
#: framework -> environment of its worker beyond KERAS_BACKEND. pixelwise turns TensorFlow's
#: oneDNN kernels on (pixelwise.onednn); "-eigen" is TensorFlow's own default on CPUs without
#: AVX-512 VNNI/BF16 or AMX, kept to measure what that choice is worth.
FRAMEWORK_ENV = {"pixelwise-tensorflow-eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
PEER = "smp-torch"


# --------------------------------------------------------------------------- smp and torch

_TORCHVISION_STUBS = None


def import_smp():
    """``segmentation_models_pytorch``, importing torchvision past a CUDA-only wheel if need be.

    A torchvision wheel built for CUDA cannot load its ``_C`` ops beside the CPU torch; its
    ``__init__`` then fails registering fake kernels for ``torchvision::nms`` and ``qnms``,
    which no longer exist. Declaring those two schemas (without kernels) lets it import;
    smp's encoders and decoders call none of torchvision's compiled ops.
    """
    global _TORCHVISION_STUBS
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        _TORCHVISION_STUBS = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _TORCHVISION_STUBS.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision  # noqa: F401
    import segmentation_models_pytorch as smp

    return smp


def unavailable(framework: str) -> str | None:
    """Why a framework cannot run here, or None."""
    if framework == PEER:
        missing = [m for m in ("torch", "segmentation_models_pytorch", "timm", "torchvision")
                   if importlib.util.find_spec(m) is None]
        if missing:
            return (f"{', '.join(missing)} not installed; the peers extra installs them: "
                    'pip install -e ".[peers]"')
    elif FRAMEWORKS[framework] == "jax" and importlib.util.find_spec("jax") is None:
        return 'jax is not installed (pip install -e ".[jax]")'
    return None


# --------------------------------------------------------------------------- the workers

def _batch(batch_size: int, size, channels_first: bool):
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *size, 3), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, (batch_size, *size)).astype(np.int64)
    y[:, ::17] = IGNORE  # void rows, as real labels have
    if channels_first:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x, y


class KerasRunner:
    """pixelwise models on this worker's Keras backend."""

    def __init__(self, setup: dict):
        import pixelwise  # noqa: F401  (first, as the pixelwise command does: oneDNN on)
        import keras

        self.keras = keras
        self.backend = keras.backend.backend()
        if self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(THREADS)
            tf.config.threading.set_inter_op_parallelism_threads(THREADS)
        self.setup = setup
        self.train_x, train_y = _batch(setup["batch_size"], setup["image_size"], False)
        self.train_y = train_y[..., None].astype(np.int32)
        self.infer_x, _ = _batch(1, setup["latency_size"], False)
        self.models = {}

    def versions(self) -> dict:
        versions = {"keras": self.keras.__version__, "keras_backend": self.backend}
        if self.backend == "jax":
            import jax

            versions["jax"] = jax.__version__
        else:
            import tensorflow as tf

            from pixelwise.onednn import onednn_enabled

            versions["tensorflow"] = tf.__version__
            versions["onednn"] = onednn_enabled()
        return versions

    def build(self, pair: str) -> dict:
        from pixelwise import models
        from pixelwise.training.optimizers import make_optimizer

        name, arguments = PAIRS[pair][:2]
        keras = self.keras
        keras.utils.set_random_seed(0)
        model = models.build(name, input_size=(*self.setup["image_size"], 3),
                             num_classes=NUM_CLASSES, encoder_weights=None, **arguments)
        model.compile(optimizer=make_optimizer("adam", 1e-3),  # as pixelwise train has it
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      ignore_class=IGNORE),
                      jit_compile=self.backend == "jax")
        infer = models.build(name, input_size=(*self.setup["latency_size"], 3),
                             num_classes=NUM_CLASSES, encoder_weights=None, **arguments)
        self.models[pair] = (model, infer)
        return {"params": _keras_params(model), "jit_compile": bool(model.jit_compile)}

    def train_step(self, pair: str) -> None:
        self.models[pair][0].train_on_batch(self.train_x, self.train_y)

    def infer(self, pair: str) -> None:
        self.models[pair][1].predict_on_batch(self.infer_x)


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _keras_params(model) -> dict:
    encoder = _count(model.encoder.trainable_weights)
    total = _count(model.trainable_weights)
    return {"encoder": encoder, "decoder_and_head": total - encoder, "total": total}


class TorchRunner:
    """smp models on PyTorch (CPU)."""

    def __init__(self, setup: dict):
        import torch

        torch.set_num_threads(THREADS)
        self.torch = torch
        self.smp = import_smp()
        self.setup = setup
        x, y = _batch(setup["batch_size"], setup["image_size"], True)
        self.train_x, self.train_y = torch.from_numpy(x), torch.from_numpy(y)
        self.infer_x = torch.from_numpy(_batch(1, setup["latency_size"], True)[0])
        self.models = {}

    def versions(self) -> dict:
        import timm
        import torchvision

        return {"torch": self.torch.__version__, "smp": self.smp.__version__,
                "timm": timm.__version__, "torchvision": torchvision.__version__,
                "torch_threads": self.torch.get_num_threads()}

    def build(self, pair: str) -> dict:
        architecture, arguments = PAIRS[pair][2:]
        self.torch.manual_seed(0)
        model = getattr(self.smp, architecture)(encoder_weights=None, classes=NUM_CLASSES,
                                                **arguments)
        optimizer = self.torch.optim.Adam(model.parameters(), lr=1e-3)
        self.models[pair] = (model, optimizer)

        def count(module):
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        encoder, total = count(model.encoder), count(model)
        return {"params": {"encoder": encoder, "decoder_and_head": total - encoder,
                           "total": total}}

    def train_step(self, pair: str) -> None:
        model, optimizer = self.models[pair]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(model(self.train_x), self.train_y,
                                                      ignore_index=IGNORE)
        loss.backward()
        optimizer.step()

    def infer(self, pair: str) -> None:
        model = self.models[pair][0]
        model.eval()
        with self.torch.inference_mode():
            model(self.infer_x)


def run_worker(framework: str) -> None:
    """A worker (``--worker FRAMEWORK``): builds and warms up every pair, then times on request."""
    protocol = os.fdopen(os.dup(1), "w")  # the protocol gets stdout; all else goes to stderr
    os.dup2(2, 1)
    setup = json.loads(sys.stdin.readline())
    runner = TorchRunner(setup) if framework == PEER else KerasRunner(setup)
    facts = {}
    for pair in setup["pairs"]:
        print(f"[{framework}] building and warming up {pair}", file=sys.stderr, flush=True)
        facts[pair] = runner.build(pair)
        facts[pair]["warmup_train_step_s"] = harness.repeat(
            lambda p=pair: runner.train_step(p), repeats=setup["warmup"], warmup=0)
        facts[pair]["warmup_infer_s"] = harness.repeat(
            lambda p=pair: runner.infer(p), repeats=setup["warmup"], warmup=0)
    protocol.write(json.dumps({"pairs": facts, "versions": runner.versions()}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        pair = json.loads(line)["measure"]
        train = harness.repeat(lambda: runner.train_step(pair), setup["steps"], warmup=0)
        infer = harness.repeat(lambda: runner.infer(pair), setup["latency_repeats"], warmup=0)
        protocol.write(json.dumps({"train_s": train, "infer_s": infer}) + "\n")
        protocol.flush()


class Worker(harness.WorkerProcess):
    """The parent's handle on one framework's worker process (JSON lines over pipes)."""

    def __init__(self, framework: str):
        self.framework = framework
        backend = FRAMEWORKS[framework]
        env = {"KERAS_BACKEND": backend} if backend else {}
        super().__init__(__file__, framework, {**env, **FRAMEWORK_ENV.get(framework, {})})


# --------------------------------------------------------------------------- the parent

def measure(setup: dict, rounds: int, frameworks: list[str]) -> dict:
    """Start one worker per framework, then time every pair on each, ``rounds`` times interleaved."""
    results = {pair: {} for pair in setup["pairs"]}
    versions, workers = {}, []
    try:
        for framework in frameworks:
            reason = unavailable(framework)
            if reason:
                versions[framework] = {"not_measured": reason}
                for pair in results:
                    results[pair][framework] = {"not_measured": reason}
                continue
            worker = Worker(framework)
            worker.send(setup)
            workers.append(worker)
        for worker in workers:
            ready = worker.receive()
            versions[worker.framework] = ready["versions"]
            for pair, facts in ready["pairs"].items():
                results[pair][worker.framework] = dict(facts)
        times = {(pair, w.framework): {"train": [], "infer": []} for pair in results
                 for w in workers}
        for index in range(rounds):
            for pair in results:
                for worker in workers:
                    worker.send({"measure": pair})
                    answer = worker.receive()
                    times[pair, worker.framework]["train"].append(answer["train_s"])
                    times[pair, worker.framework]["infer"].append(answer["infer_s"])
            print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    for worker in workers:
        worker.close()
    for (pair, framework), kinds in times.items():
        figures = results[pair][framework]
        per_round = [setup["batch_size"] * len(t) / sum(t) for t in kinds["train"]]
        figures["train_images_per_s"] = statistics.median(per_round)
        figures["train_images_per_s_rounds"] = per_round
        latencies = [statistics.median(t) for t in kinds["infer"]]
        figures["latency_s"] = statistics.median(latencies)
        figures["latency_s_rounds"] = latencies
    for figures in results.values():
        add_ratios(figures)
    return {"versions": versions, "pairs": results}


def add_ratios(figures: dict) -> None:
    """pixelwise/smp per framework (train images/s; smp latency / pixelwise latency), and the
    recommended backend: the pixelwise framework that trains faster."""
    peer = figures.get(PEER, {})
    ours = [f for f in figures if f != PEER and "train_images_per_s" in figures[f]]
    for framework in ours:
        mine = figures[framework]
        if "train_images_per_s" in peer:
            mine["train_over_smp"] = mine["train_images_per_s"] / peer["train_images_per_s"]
            mine["latency_smp_over_pixelwise"] = peer["latency_s"] / mine["latency_s"]
        if PEER in figures and "params" in peer and "params" in mine:
            mine["params_minus_smp"] = {part: mine["params"][part] - peer["params"][part]
                                        for part in mine["params"]}
    if ours:
        best = max(ours, key=lambda f: figures[f]["train_images_per_s"])
        figures["recommended_training_backend"] = best


def markdown_table(pairs: dict) -> list[str]:
    lines = ["| pair | framework | train img/s | latency ms | train ×smp | latency ×smp | "
             "trainable params (encoder + decoder/head) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for pair, figures in pairs.items():
        for framework, row in figures.items():
            if not isinstance(row, dict):
                continue
            if "train_images_per_s" not in row:
                lines.append(f"| {pair} | {framework} | – | – | – | – | "
                             f"{row.get('not_measured', '')} |")
                continue
            params = row.get("params", {})
            ratio = (f"{row['train_over_smp']:.2f}× | {row['latency_smp_over_pixelwise']:.2f}×"
                     if "train_over_smp" in row else "– | –")
            star = " (recommended)" if figures.get("recommended_training_backend") == framework \
                else ""
            lines.append(
                f"| {pair} | {framework}{star} | {row['train_images_per_s']:.2f} | "
                f"{row['latency_s'] * 1000:.0f} | {ratio} | "
                f"{params.get('encoder', 0):,} + {params.get('decoder_and_head', 0):,} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="+", default=None, choices=list(PAIRS),
                        help="pairs to measure (default: all)")
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS),
                        choices=list(FRAMEWORKS), help="default: all four")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed training steps per pair per round (default 3)")
    parser.add_argument("--latency-repeats", type=int, default=5,
                        help="timed batch-1 predictions per pair per round (default 5)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed training steps and predictions per pair first (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: unet_mobilenetv3large at 64x64, batch 2, one round of "
                             "one step; writes only to --out")
    parser.add_argument("--out", default=None,
                        help="JSON output (default benchmarks/results/peers.json; --quick: none)")
    parser.add_argument("--worker", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker)
        return
    setup = {"pairs": args.pairs or list(PAIRS), "image_size": [192, 256], "batch_size": 8,
             "latency_size": [384, 480], "steps": args.steps,
             "latency_repeats": args.latency_repeats, "warmup": args.warmup}
    rounds = args.rounds
    if args.quick:
        setup.update(pairs=args.pairs or ["unet_mobilenetv3large"], image_size=[64, 64],
                     batch_size=2, latency_size=[64, 64], steps=1, latency_repeats=1, warmup=1)
        rounds = 1
    results = {"machine": harness.machine_info(), "precision": "float32", "threads": THREADS,
               "rounds": rounds, **{k: v for k, v in setup.items()},
               "note": "latency at 384x480: a 360x480 CamVid frame padded to a multiple of 32",
               **measure(setup, rounds, args.frameworks)}
    if args.quick and not args.out:
        print(json.dumps(results, indent=2, default=float))
    else:
        harness.report("peers", results, quick=args.quick, out=args.out)
    print("\n".join(markdown_table(results["pairs"])))


if __name__ == "__main__":
    main()
