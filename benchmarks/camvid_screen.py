"""Screen CamVid recipe designs on a machine with JAX but no TensorFlow (indicative rankings only).

Every CamVid recipe experiment costs 30-60 min on the 2-core CPU. This script trains many
designs quickly on an accelerator that has Keras, JAX, NumPy and Pillow but no TensorFlow
or TFDS, so that only the promising ones are then trained for real with ``pixelwise train``.
It follows ``pixelwise train`` as closely as is cheap -- the same split rules, model
registry, loss, optimizer and cosine schedule, metric definitions -- but its input pipeline
is NumPy + Pillow (a port of ``pixelwise.data.transforms.augment_pair``), not tf.data: its
figures rank designs, they are not results to report as pixelwise's.

Two commands::

    # here (TensorFlow + TFDS): the built dataset -> a small folder of JPEG/PNG + index.json
    python benchmarks/camvid_screen.py pack --data-dir /tmp/camvid/tfds --out /tmp/camvid/pack

    # on the accelerator (no TensorFlow imported): train and score each config (+ variants)
    KERAS_BACKEND=jax python benchmarks/camvid_screen.py run --pack /tmp/camvid/pack \\
        --config configs/camvid-experiments/a-baseline-heldout.yaml \\
        'configs/camvid-experiments/a-baseline-heldout.yaml@optimizer=adamw@weight_decay=0.05' \\
        --name baseline adamw-wd0.05 --epochs 20 --out screen.json

``--set KEY=VALUE`` overrides every config (YAML values: ``image_size=[64,64]``,
``model_args.base_filters=16``); ``CONFIG@KEY=VALUE@...`` overrides one. Each config gets,
per epoch, the validation mean IoU at its training size and, for its best and its last
epoch, the mean and per-class IoU at CamVid's native 360x480 (probabilities resized back
bilinearly before the argmax, as ``pixelwise evaluate`` does); results are written after
every config, so a run cut short keeps what finished, and a design that fails (out of
memory, say) is recorded with its error while the next one runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

import keras
import numpy as np
import yaml

from camvid_screen_data import (
    load_pack, resize_image, resize_label, split_examples, training_batches, write_pack,
)
from pixelwise import models
from pixelwise.class_sets import ClassSet, class_set_from_info
from pixelwise.training.config_files import resolve_config
from pixelwise.data.groups import GroupRule
from pixelwise.losses import median_frequency_weights, segmentation_loss
from pixelwise.metrics import confusion_matrix, iou_from_confusion, mean_iou_from_confusion
from pixelwise.training.optimizers import learning_rate_schedule, make_optimizer

#: Options of pixelwise train that this screen does not reproduce (an error, not a silent change).
UNSUPPORTED = {"freeze_encoder_epochs": 0, "encoder_lr_multiplier": 1.0, "dropout_schedule": None,
               "strategy": "default"}


# =========================================================================== pack (TensorFlow side)


def pack(data_dir, out, dataset="camvid", splits=("train", "validation")) -> int:
    """Pack the built ``dataset``'s ``splits`` from the TFDS ``data_dir`` into ``out``."""
    # Imported here, not at the top: `run` must work where TensorFlow is not installed.
    from pixelwise.data.pipeline import load_split
    from pixelwise.datasets.api import get_builder, group_rule

    spec = group_rule(get_builder(dataset, data_dir))
    rule = GroupRule.parse(spec)

    def examples():
        for split in splits:
            found, _ = load_split(dataset, split, data_dir, download=False)
            for ex in found.as_numpy_iterator():
                name = ex["image/filename"].decode()
                yield name, split, rule.group_of(name) or name, ex["image"], ex["label"]

    info = get_builder(dataset, data_dir).info
    return write_pack(out, examples(), class_set_from_info(info), spec, dataset)


# =========================================================================== training and scoring


class Validation(keras.callbacks.Callback):
    """Per epoch: training time, validation mean IoU at the training size; keeps the best weights."""

    def __init__(self, images, labels, class_set, batch_size, patience=0):
        super().__init__()
        self.images, self.labels, self.class_set = images, labels, class_set
        self.batch_size, self.patience = batch_size, patience
        self.history, self.best_weights, self.best = [], None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        cm = confusion_for(self.model, self.images, self.labels, self.class_set, self.batch_size)
        row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)), "train_seconds": seconds,
               "val_mean_iou": mean_iou_from_confusion(cm)}
        self.history.append(row)
        if self.best is None or row["val_mean_iou"] > self.best["val_mean_iou"]:
            self.best, self.best_weights = row, self.model.get_weights()
        print(f"  epoch {row['epoch']}: loss {row['loss']:.4f}, val_mean_iou "
              f"{100 * row['val_mean_iou']:.1f} %, {seconds:.1f} s", flush=True)
        if self.patience and row["epoch"] - self.best["epoch"] >= self.patience:
            self.model.stop_training = True


def _predict_probabilities(model, batch):
    return keras.ops.softmax(keras.ops.cast(model.predict_on_batch(batch), "float32"), axis=-1)


def confusion_for(model, images, labels, class_set, batch_size, native_labels=None):
    """Confusion matrix of ``images`` (uint8 at the model's size) against ``labels``.

    With ``native_labels``, probabilities are resized to each native label's size
    (bilinear) before the argmax, as ``pixelwise evaluate``'s native mode does.
    """
    cm = np.zeros((class_set.num_classes,) * 2, np.int64)
    for start in range(0, len(images), batch_size):
        batch = np.stack(images[start:start + batch_size]).astype(np.float32) / 255.0
        probabilities = _predict_probabilities(model, batch)
        truth = (labels if native_labels is None else native_labels)[start:start + batch_size]
        if native_labels is not None:
            probabilities = keras.ops.image.resize(probabilities, truth[0].shape[:2],
                                                   interpolation="bilinear")
        predicted = keras.ops.convert_to_numpy(keras.ops.argmax(probabilities, axis=-1))
        cm += confusion_matrix(np.stack(truth), predicted, class_set.num_classes,
                               class_set.ignore_label)
    return cm


def _iou_entry(cm, class_set):
    per_class = iou_from_confusion(cm)
    return {"mean_iou": mean_iou_from_confusion(cm),
            "per_class_iou": {n: (None if np.isnan(v) else float(v))
                              for n, v in zip(class_set.class_names, per_class)}}


def screen(config, pack_data, workers=None, name="screen") -> dict:
    """Train ``config`` on the pack as ``pixelwise train`` would; returns the result entry."""
    index, native_images, native_labels = pack_data
    if config.dataset != index["dataset"]:
        raise ValueError(f"Expected a {index['dataset']!r} config for this pack, received "
                         f"dataset {config.dataset!r}.")
    for option, default in UNSUPPORTED.items():
        if getattr(config, option) != default:
            raise ValueError(f"The screen does not reproduce {option} (received "
                             f"{getattr(config, option)!r}); remove it or use pixelwise train.")
    class_set = ClassSet.from_json(json.dumps(index["class_set"]))
    train, validation = split_examples(config, index)
    if len(train) < config.batch_size:
        raise ValueError(f"Batch size {config.batch_size} is larger than the {len(train)} training "
                         f"examples; pass --set batch_size={len(train)} or less.")
    started = time.perf_counter()
    size = tuple(config.image_size)
    # As pixelwise.data.pipeline: each pair is resized to the training size once, then augmented.
    train_images = [resize_image(native_images[i], size) for i in train]
    train_labels = [resize_label(native_labels[i], size) for i in train]
    val_images = [resize_image(native_images[i], size) for i in validation]
    val_labels = [resize_label(native_labels[i], size) for i in validation]
    if isinstance(config.class_weights, list):
        class_weights = config.class_weights
    elif config.class_weights == "median-frequency":
        class_weights = [float(w) for w in median_frequency_weights(
            [native_labels[i] for i in train], class_set)]
    else:
        class_weights = None

    # keras.utils.set_random_seed would import TensorFlow wherever it is installed.
    if config.seed is not None:
        random.seed(config.seed)
        np.random.seed(config.seed)
    keras.backend.clear_session()
    steps = len(train) // config.batch_size
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if config.mixed_precision == "bf16" else "float32")
    try:
        model = models.build(config.model, input_size=(*size, native_images[0].shape[-1]),
                             num_classes=class_set.num_classes, **config.model_args)
    finally:
        keras.config.set_dtype_policy(policy)
    if tuple(model.output_shape[1:3]) != size:
        raise ValueError(f"Model {config.model!r} maps {size} inputs to {model.output_shape[1:3]}; "
                         "training needs outputs of the input size.")
    learning_rate = learning_rate_schedule(config.learning_rate, config.lr_schedule,
                                           config.epochs * steps)
    model.compile(optimizer=make_optimizer(config.optimizer, learning_rate, config.weight_decay),
                  loss=segmentation_loss(class_set, config.loss, config.reconstruction_weight,
                                         class_weights=class_weights),
                  jit_compile=config.jit_compile)
    validation_callback = Validation(val_images, val_labels, class_set, config.batch_size,
                                     config.early_stopping_patience)
    batches = training_batches(train_images, train_labels, config, steps, class_set.ignore_label,
                               workers or os.cpu_count())
    model.fit(batches, steps_per_epoch=steps, epochs=config.epochs, verbose=0, shuffle=False,
              callbacks=[validation_callback])
    batches.close()
    last_weights = model.get_weights()
    native = {}
    natives = [native_labels[i] for i in validation]
    for which, weights in (("best", validation_callback.best_weights), ("last", last_weights)):
        model.set_weights(weights)
        cm = confusion_for(model, val_images, val_labels, class_set, config.batch_size, natives)
        native[which] = _iou_entry(cm, class_set)
    history = validation_callback.history
    # The first epoch includes compilation: throughput from the others when there are any.
    timed = history[1:] or history
    return {
        "name": name, "config": config.to_dict(), "class_weights": class_weights,
        "pipeline": "numpy + Pillow port of pixelwise.data.pipeline (indicative, not tf.data)",
        "num_train": len(train),
        "num_validation": len(validation), "steps_per_epoch": steps, "history": history,
        "best_epoch": validation_callback.best["epoch"],
        "best_val_mean_iou": validation_callback.best["val_mean_iou"],
        "last_val_mean_iou": history[-1]["val_mean_iou"], "native": native,
        "train_images_per_second": steps * config.batch_size * len(timed)
        / sum(r["train_seconds"] for r in timed),
        "wall_seconds": time.perf_counter() - started, "backend": keras.backend.backend(),
        "devices": keras.distribution.list_devices(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


# =========================================================================== command line


def parse_overrides(pairs) -> dict:
    """``["lr=1e-3", "model_args.base_filters=16"]`` -> ``{"lr": 0.001, "model_args": {...}}``."""
    overrides: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"Expected an override KEY=VALUE (e.g. weight_decay=0.05), "
                             f"received {pair!r}.")
        value = yaml.safe_load(value)
        if key.startswith("model_args."):  # merged key by key, as resolve_config does
            overrides.setdefault("model_args", {})[key.split(".", 1)[1]] = value
        else:
            overrides[key.replace("-", "_")] = value
    return overrides


def run(pack_dir, configs, sets=(), names=None, epochs=None, out="camvid_screen.json",
        workers=None) -> list[dict]:
    """Screen each ``CONFIG[@KEY=VALUE...]`` with the shared ``sets`` overrides; writes ``out``."""
    if names and len(names) != len(configs):
        raise ValueError(f"Expected one --name per config ({len(configs)}), received {len(names)}.")
    planned = []  # every config is resolved (and so checked) before any training starts
    for position, spec in enumerate(configs):
        path, *own = spec.split("@")
        overrides = parse_overrides([*sets, *own])  # the config's own ones win
        if epochs is not None:
            overrides["epochs"] = epochs
        name = names[position] if names else Path(path).stem + "".join(f"@{o}" for o in own)
        planned.append((name, path, overrides, resolve_config(path, overrides)))
    pack_data = load_pack(pack_dir)
    results = []
    for name, path, overrides, config in planned:
        print(f"{name}: {config.model} {config.image_size}, {config.epochs} epochs", flush=True)
        try:
            entry = screen(config, pack_data, workers, name)
        except Exception as error:  # e.g. out of memory: record it, screen the next design
            traceback.print_exc()
            entry = {"name": name, "config": config.to_dict(), "error": repr(error)}
        entry["config_file"], entry["overrides"] = path, overrides
        results.append(entry)
        Path(out).write_text(json.dumps(results, indent=1) + "\n")  # after each: keep partial runs
        if "error" not in entry:
            print(f"{name}: best epoch {entry['best_epoch']}/{len(entry['history'])} val "
                  f"{100 * entry['best_val_mean_iou']:.1f} % at {config.image_size[0]}x"
                  f"{config.image_size[1]}; native best "
                  f"{100 * entry['native']['best']['mean_iou']:.1f} %, last "
                  f"{100 * entry['native']['last']['mean_iou']:.1f} %; "
                  f"{entry['train_images_per_second']:.1f} img/s; {entry['wall_seconds']:.0f} s",
                  flush=True)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packer = commands.add_parser("pack", help="pack a built TFDS dataset (needs TensorFlow)")
    packer.add_argument("--data-dir", required=True, help="TFDS data directory holding the build")
    packer.add_argument("--out", required=True, help="pack folder to write")
    packer.add_argument("--dataset", default="camvid", help="TFDS name (default: %(default)s)")
    runner = commands.add_parser("run", help="screen configs on a pack (no TensorFlow)")
    runner.add_argument("--pack", required=True, help="pack folder written by `pack`")
    runner.add_argument("--config", nargs="+", required=True, metavar="CONFIG[@KEY=VALUE...]",
                        help="TrainConfig YAML files, each with optional own overrides")
    runner.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every config (YAML value; model_args.KEY too)")
    runner.add_argument("--name", nargs="+", help="one label per config (default: file stem)")
    runner.add_argument("--epochs", type=int, help="override every config's epochs")
    runner.add_argument("--workers", type=int, help="augmentation threads (default: all cores)")
    runner.add_argument("--out", default="camvid_screen.json", help="results (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            size = pack(args.data_dir, args.out, args.dataset)
            print(f"pack {args.out}: {size / 2**20:.1f} MiB")
        else:
            run(args.pack, args.config, args.set, args.name, args.epochs, args.out, args.workers)
    except (FileNotFoundError, ValueError) as error:  # bad input: one line, non-zero exit
        parser.exit(2, f"camvid_screen.py: error: {error}\n")


if __name__ == "__main__":
    main()
