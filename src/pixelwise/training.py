"""Training: the chapter's ``compile``/``fit`` loop, with the exercises' losses, metrics and callbacks.

One function, :func:`train`, turns a :class:`TrainConfig` into a run folder
(layout: :mod:`pixelwise.runs`)::

    runs/NAME/config.json        this TrainConfig, resolved (a valid --config file)
    runs/NAME/class_set.json     the class set trained on
    runs/NAME/checkpoints/       best.keras (by val_mean_iou) and last.keras
    runs/NAME/backup/            BackupAndRestore state: --resume continues from here
    runs/NAME/tensorboard/       scalars, per-class IoU, validation image panels
    runs/NAME/history.csv        one row per epoch
    runs/NAME/curves.png         loss / pixel accuracy / mean IoU, train and validation
    runs/NAME/metrics.json       final and best epoch

The chapter's defaults (voc2007_semantic, unet, 256 px, batch 32, 50 epochs, Adam)
live in :class:`TrainConfig` and nowhere else.

Example:
    >>> from pixelwise.training import TrainConfig, train
    >>> config = TrainConfig(dataset="camvid", manual_dir="../shared/datasets/CamVid",
    ...                      image_size=(192, 256), batch_size=8, epochs=2,
    ...                      model_args={"base_filters": 16}, out="runs/camvid-try")
    >>> result = train(config)                                  # doctest: +SKIP
    >>> result.best["val_mean_iou"]                             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pixelwise.distribute import MIXED_PRECISION, STRATEGIES, dtype_policy, is_chief, make_strategy
from pixelwise.runs import RunFolder

LR_SCHEDULES = ("constant", "cosine", "poly")
CLASS_WEIGHTS = ("none", "median-frequency")
OPTIMIZERS = ("adam", "adamw", "sgd")

#: Config keys that may change when a run is resumed; all others must match config.json.
RESUMABLE_CHANGES = frozenset({
    "epochs", "early_stopping_patience", "strategy", "batch_size", "data_dir", "manual_dir",
    "verbose", "image_summaries", "jit_compile",
})


@dataclasses.dataclass
class TrainConfig:
    """Everything ``pixelwise train`` needs; the defaults are the chapter's.

    Args:
        dataset: TFDS name of a pixelwise dataset (default ``"voc2007_semantic"``).
        data_dir: TFDS data directory (default: TFDS's).
        manual_dir: Manually downloaded data, used to build the dataset if it is not built.
        train_split: Training split or TFDS slice (default ``"train"``).
        validation_split: Split that selects the best epoch (default ``"validation"``).
        image_size: Training size, int or ``[height, width]`` (default 256).
        batch_size: Global batch size, split across replicas (default 32).
        augment: Flip, scale + crop and photometric jitter while training (default True).
        model: Registry name of the model (default ``"unet"``).
        model_args: Extra keyword arguments of the model builder, e.g.
            ``{"base_filters": 16, "batch_norm": True}``.
        epochs: Number of epochs (default 50).
        optimizer: ``"adam"`` (default, the chapter's), ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        learning_rate: Initial learning rate (default 1e-3, Adam's default).
        lr_schedule: ``"constant"`` (default), ``"cosine"`` (to 0) or ``"poly"``
            (power 0.9 to 0, DeepLab's), stepped per batch.
        weight_decay: Decoupled weight decay of ``adamw`` (default 1e-4); ignored otherwise.
        loss: ``"ce"`` (default), ``"ce+dice"`` or ``"ce+l2"`` (exercise 16).
        reconstruction_weight: Weight of the Dice / L2 term (default 1.0).
        class_weights: ``"none"`` (default), ``"median-frequency"`` (computed from the
            training split) or an explicit list of per-class weights.
        dropout_schedule: None (default) or ``[start, step, cap]``, e.g. ``[0.5, 0.1, 0.9]``
            (exercise 19). Adds encoder dropout to the model if it has none.
        early_stopping_patience: Epochs without a better ``val_mean_iou`` before stopping
            (default 10); 0 disables early stopping.
        mixed_precision: ``"none"`` (default) or ``"bf16"`` (``mixed_bfloat16`` policy).
        strategy: ``"default"``, ``"mirrored"`` or ``"multi-worker"`` (cluster from TF_CONFIG).
        jit_compile: ``"auto"`` (Keras: XLA on GPU without tf.distribute), True or False.
        seed: Seed of weights, shuffling and augmentation (default 0); None: unseeded.
        image_summaries: Validation images drawn to TensorBoard each epoch (default 4).
        out: Run folder (default ``runs/<dataset>-<model>``).
        verbose: Keras ``fit`` verbosity (default ``"auto"``: a progress bar).
    """

    dataset: str = "voc2007_semantic"
    data_dir: str | None = None
    manual_dir: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    image_size: Any = 256
    batch_size: int = 32
    augment: bool = True
    model: str = "unet"
    model_args: dict = dataclasses.field(default_factory=dict)
    epochs: int = 50
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 1e-4
    loss: str = "ce"
    reconstruction_weight: float = 1.0
    class_weights: Any = "none"
    dropout_schedule: Any = None
    early_stopping_patience: int = 10
    mixed_precision: str = "none"
    strategy: str = "default"
    jit_compile: Any = "auto"
    seed: int | None = 0
    image_summaries: int = 4
    out: str | None = None
    verbose: Any = "auto"

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config from a dict, rejecting unknown keys (a typo must not pass silently)."""
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            raise ValueError(
                f"Unknown training option(s) {unknown}; expected keys among {cls.fields()}."
            )
        return cls(**values).validated()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def run_folder(self) -> RunFolder:
        return RunFolder(self.out or f"runs/{self.dataset}-{self.model}")

    def validated(self) -> "TrainConfig":
        """Check every value and normalise types; raise ValueError naming the option."""
        from pixelwise.data import normalize_image_size

        def choice(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Expected {name} one of {list(allowed)}, received {value!r}.")

        def positive_int(name, minimum=1):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"Expected {name} an integer >= {minimum}, received {value!r}.")

        size = normalize_image_size(self.image_size)
        if size is None:
            raise ValueError("Expected an image_size for training, received None; e.g. 256.")
        self.image_size = list(size)
        positive_int("batch_size")
        positive_int("epochs")
        positive_int("early_stopping_patience", 0)
        positive_int("image_summaries", 0)
        choice("optimizer", OPTIMIZERS)
        choice("lr_schedule", LR_SCHEDULES)
        choice("mixed_precision", MIXED_PRECISION)
        choice("strategy", STRATEGIES)
        from pixelwise.losses import LOSS_KINDS

        choice("loss", LOSS_KINDS)
        for name in ("learning_rate", "reconstruction_weight", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0
            ) or (name == "learning_rate" and value <= 0):
                raise ValueError(f"Expected {name} a finite number >= 0 (> 0 for the learning "
                                 f"rate), received {value!r}.")
            setattr(self, name, float(value))
        if not isinstance(self.class_weights, (list, tuple)):
            choice("class_weights", CLASS_WEIGHTS)
        else:
            self.class_weights = [float(w) for w in self.class_weights]
        if not isinstance(self.model_args, dict):
            raise ValueError(f"Expected model_args a mapping, received {self.model_args!r}.")
        if self.jit_compile not in ("auto", True, False):
            raise ValueError(f"Expected jit_compile 'auto', true or false, received {self.jit_compile!r}.")
        if self.dropout_schedule is not None:
            schedule = self.dropout_schedule
            if isinstance(schedule, str):
                schedule = schedule.split(",")
            try:
                schedule = [float(v) for v in schedule]
            except (TypeError, ValueError):
                schedule = []
            if len(schedule) != 3:
                raise ValueError(
                    f"Expected dropout_schedule as start,step,cap (e.g. 0.5,0.1,0.9), received "
                    f"{self.dropout_schedule!r}."
                )
            from pixelwise.callbacks import DropoutSchedule

            DropoutSchedule(*schedule)  # raises with the rule when out of range
            self.dropout_schedule = schedule
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"Expected seed an integer or null, received {self.seed!r}.")
        for name in ("dataset", "model", "train_split", "validation_split"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Expected {name} a non-empty string, received {getattr(self, name)!r}.")
        self.out = str(self.out or f"runs/{self.dataset}-{self.model}")
        return self


def load_config_file(path) -> dict:
    """Read a YAML or JSON training config into a dict (keys as in :class:`TrainConfig`).

    Dashes in keys are accepted for underscores (``batch-size`` = ``batch_size``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist; pass --config FILE.yaml.")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as error:  # yaml and json raise different types
        raise ValueError(f"Config file {str(path)!r} is not valid YAML/JSON: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(
            f"Expected config file {str(path)!r} to hold a mapping of options, received "
            f"{type(values).__name__}."
        )
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def resolve_config(config_file=None, overrides: dict | None = None, resume: bool = False) -> TrainConfig:
    """Defaults < the run folder's config.json (with ``resume``) < ``config_file`` < ``overrides``.

    ``model_args`` are merged key by key rather than replaced.
    """
    overrides = dict(overrides or {})
    layers = []
    if config_file is not None:
        layers.append(load_config_file(config_file))
    layers.append(overrides)
    values: dict = {}
    if resume:
        out = next((layer["out"] for layer in reversed(layers) if layer.get("out")), None)
        if out is None:
            raise ValueError("--resume needs the run folder to continue: pass --out runs/NAME.")
        stored = RunFolder(out).config_path
        if not stored.exists():
            raise FileNotFoundError(
                f"Cannot resume: {str(stored)!r} does not exist, so {out!r} holds no run to "
                "continue. Drop --resume to start a new run there."
            )
        values.update(json.loads(stored.read_text()))
    for layer in layers:
        for key, value in layer.items():
            if key == "model_args" and isinstance(value, dict):
                values["model_args"] = {**values.get("model_args", {}), **value}
            else:
                values[key] = value
    return TrainConfig.from_dict(values)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run: The run folder written.
        history: ``history.csv`` rows (all epochs of the run, resumed ones included).
        final: Logs of the last finished epoch.
        best: Logs of the epoch with the best ``val_mean_iou``.
        model: The trained Keras model (weights of the last epoch).
        num_replicas: Replicas the global batch was split across (all workers).
    """

    run: RunFolder
    history: list
    final: dict | None
    best: dict | None
    model: Any = None
    num_replicas: int = 1


# --------------------------------------------------------------------------- helpers


def _check_writable(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"Run folder {str(path)!r} exists and is not a folder; pass another --out."
        )
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        what = "is not writable" if ancestor.is_dir() else "is a file, not a folder"
        raise PermissionError(
            f"Cannot write the run folder {str(path)!r}: {str(ancestor)!r} {what}; "
            "pass --out to a folder you can write."
        )


def _check_new_run(run: RunFolder) -> None:
    if run.path.is_dir() and any(run.path.iterdir()):
        raise FileExistsError(
            f"Run folder {str(run.path)!r} already holds a run; pass --resume to continue it, or "
            "--out runs/NEW_NAME to start another (nothing there was changed)."
        )


def _check_resume(run: RunFolder, config: TrainConfig) -> int:
    """Validate a resume; return the epoch training continues from (0-based)."""
    if not run.config_path.exists():
        raise FileNotFoundError(
            f"Cannot resume: {str(run.config_path)!r} does not exist, so {str(run.path)!r} holds "
            "no run to continue. Drop --resume to start a new run there."
        )
    stored = json.loads(run.config_path.read_text())
    current = config.to_dict()
    differs = sorted(k for k in current if k not in RESUMABLE_CHANGES and k in stored
                     and json.dumps(stored[k]) != json.dumps(current[k]))
    if differs:
        detail = ", ".join(f"{k}: {stored[k]!r} -> {current[k]!r}" for k in differs)
        raise ValueError(
            f"Cannot resume {str(run.path)!r} with a different configuration ({detail}); only "
            f"{sorted(RESUMABLE_CHANGES)} may change. Drop those options, or start a new run "
            "with --out runs/NEW_NAME."
        )
    metadata = run.backup_dir / "training_metadata.json"
    from pixelwise.callbacks import read_history

    finished = json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0
    if not metadata.exists() and read_history(run.history_path):
        raise FileNotFoundError(
            f"Cannot resume {str(run.path)!r}: history.csv records finished epochs but the "
            f"BackupAndRestore state {str(metadata)!r} is missing. Start a new run with --out."
        )
    if finished >= config.epochs:
        raise ValueError(
            f"Run {str(run.path)!r} already finished {finished} of {config.epochs} epochs; pass "
            f"--epochs N with N > {finished} together with --resume to train further."
        )
    return finished


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total)
    if config.lr_schedule == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate, decay_steps=total, end_learning_rate=0.0, power=0.9
        )
    return config.learning_rate


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    learning_rate = _learning_rate(config, steps_per_epoch)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.Adam(learning_rate)


def _data(config: TrainConfig, global_batch: int, multi_worker: bool):
    """Load the splits and build the pipelines; return what train() needs of the data."""
    import tensorflow as tf

    from pixelwise.data import load_split, make_pipeline
    from pixelwise.class_sets import class_set_from_info

    train_examples, info = load_split(
        config.dataset, config.train_split, config.data_dir, config.manual_dir, shuffle_files=True
    )
    val_examples, _ = load_split(
        config.dataset, config.validation_split, config.data_dir, config.manual_dir
    )
    class_set = class_set_from_info(info)
    num_train = info.splits[config.train_split].num_examples
    num_val = info.splits[config.validation_split].num_examples
    if num_val == 0:
        raise ValueError(
            f"Validation split {config.validation_split!r} of {config.dataset!r} is empty; pass "
            "--validation-split with a split that has examples."
        )
    if num_train < global_batch:
        raise ValueError(
            f"Batch size {global_batch} is larger than the {num_train} examples of the training "
            f"split {config.train_split!r}; pass --batch-size {num_train} or less."
        )
    channels = info.features["image"].shape[-1]
    train = make_pipeline(
        train_examples, class_set, config.image_size, global_batch, training=True,
        augment=config.augment, seed=config.seed,
    )
    validation = make_pipeline(
        val_examples, class_set, config.image_size, global_batch, training=False,
    )
    if multi_worker:
        # TFDS splits can have fewer files than workers: shard examples, not files.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train, validation = train.with_options(options), validation.with_options(options)
    summary_images = None
    if config.image_summaries:
        sample = make_pipeline(
            val_examples.take(config.image_summaries), class_set, config.image_size,
            config.image_summaries, training=False, cache=False,
        )
        summary_images = next(iter(sample.as_numpy_iterator()))
    return {
        "train": train, "validation": validation, "class_set": class_set,
        "train_examples": train_examples, "num_train": num_train, "channels": channels,
        "steps_per_epoch": num_train // global_batch, "summary_images": summary_images,
    }


def _class_weights(config: TrainConfig, data) -> list | None:
    if isinstance(config.class_weights, list):
        return config.class_weights
    if config.class_weights == "median-frequency":
        from pixelwise.losses import median_frequency_weights

        return [float(w) for w in median_frequency_weights(data["train_examples"], data["class_set"])]
    return None


def _build_model(config: TrainConfig, data, steps_per_epoch: int):
    """Build and compile the model (inside the strategy scope and dtype policy)."""
    from pixelwise import models
    from pixelwise.losses import segmentation_loss
    from pixelwise.metrics import MeanIoU, PixelAccuracy

    class_set = data["class_set"]
    options = dict(config.model_args)
    if config.dropout_schedule is not None and options.get("dropout_rate") is None:
        options["dropout_rate"] = config.dropout_schedule[0]
    input_size = (*config.image_size, data["channels"])
    model = models.build(config.model, input_size=input_size, num_classes=class_set.num_classes,
                         **options)
    if tuple(model.output_shape[1:3]) != tuple(config.image_size):
        raise ValueError(
            f"Model {config.model!r} maps {tuple(config.image_size)} inputs to "
            f"{tuple(model.output_shape[1:3])} outputs; training needs outputs of the input size "
            "(for original_unet pass --model-arg padding=same)."
        )
    mean_iou = MeanIoU.from_class_set(class_set)
    model.compile(
        optimizer=_optimizer(config, steps_per_epoch),
        loss=segmentation_loss(class_set, config.loss, config.reconstruction_weight,
                               class_weights=data["class_weights"]),
        metrics=[PixelAccuracy.from_class_set(class_set), mean_iou],
        jit_compile=config.jit_compile,
    )
    return model, mean_iou


def _callbacks(config: TrainConfig, run: RunFolder, backup_dir: Path, data, mean_iou,
               resume_rows: list, chief: bool):
    import keras

    from pixelwise import callbacks as cb

    best = cb.best_row(resume_rows)
    listed = []
    if config.dropout_schedule is not None:
        listed.append(cb.DropoutSchedule(*config.dropout_schedule))
    listed += [
        cb.PerClassIoU(mean_iou, data["class_set"]),
        cb.LearningRateLogger(),
        cb.TerminateOnNonFinite(),
        keras.callbacks.ModelCheckpoint(
            str(run.checkpoint_path("best")), monitor=cb.MONITOR, mode="max",
            save_best_only=True,
            initial_value_threshold=best[cb.MONITOR] if best else None,
        ),
        keras.callbacks.ModelCheckpoint(str(run.checkpoint_path("last"))),
        keras.callbacks.CSVLogger(str(run.history_path), append=True),
        keras.callbacks.TensorBoard(str(run.tensorboard_dir)),
    ]
    if chief and data["summary_images"] is not None:
        images, labels = data["summary_images"]
        listed.append(cb.ValidationImages(run.tensorboard_dir / "images", images, labels,
                                          data["class_set"]))
    listed.append(cb.RunSummary(run.history_path, run.curves_path, run.metrics_path))
    if config.early_stopping_patience:
        listed.append(cb.ResumableEarlyStopping(resume_rows, config.early_stopping_patience,
                                                verbose=1))
    # Last, so a backup (from which --resume continues) exists only for epochs whose
    # checkpoints, history row and summaries were all written.
    listed.append(keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False))
    return listed


def train(config: TrainConfig, resume: bool = False, callbacks=()) -> TrainResult:
    """Train a model as ``config`` says and write a run folder.

    Every check that can fail (options, run folder, dataset, model and image size)
    runs before the run folder is touched and before training starts.

    Args:
        config: The resolved configuration (:func:`resolve_config`).
        resume: Continue the run in ``config.out`` from its last finished epoch
            (BackupAndRestore); without it an existing, non-empty run folder is an error.
        callbacks: Extra Keras callbacks (tests use one to interrupt training).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError, FileNotFoundError, FileExistsError, PermissionError: bad input, with
            what was expected and how to fix it.
    """
    config = TrainConfig.from_dict(config.to_dict())
    # MultiWorkerMirroredStrategy must exist before TF initialises its runtime.
    strategy = make_strategy(config.strategy)
    multi_worker = config.strategy == "multi-worker"
    chief, task_id = is_chief(strategy)
    run = config.run_folder
    _check_writable(run.path)
    finished = 0
    if resume:
        finished = _check_resume(run, config)
    elif chief:
        _check_new_run(run)

    import keras

    from pixelwise.callbacks import read_history, truncate_history

    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size {config.batch_size} must split evenly across the {replicas} "
            f"replicas of --strategy {config.strategy}; pass a multiple of {replicas}."
        )
    data = _data(config, config.batch_size, multi_worker)
    data["class_weights"] = _class_weights(config, data)

    # Non-chief workers train in lock step with the chief but write to a scratch
    # folder (TF's multi-worker recipe), except their backup, which --resume needs.
    workdir = run if chief else RunFolder(tempfile.mkdtemp(prefix=f"pixelwise-worker{task_id}-"))
    backup_dir = run.backup_dir if chief else run.backup_dir / f"worker-{task_id}"
    try:
        with dtype_policy(config.mixed_precision):
            with strategy.scope():
                model, mean_iou = _build_model(config, data, data["steps_per_epoch"])
            # All checks passed: now, and only now, write to the run folder.
            workdir.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            if chief:
                workdir.config_path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
                workdir.class_set_path.write_text(data["class_set"].to_json() + "\n")
                # Rows of epochs after the backup will be trained again: drop them.
                truncate_history(workdir.history_path, finished)
            resume_rows = read_history(workdir.history_path) if chief else []
            listed = _callbacks(config, workdir, backup_dir, data, mean_iou, resume_rows, chief)
            model.fit(
                data["train"], validation_data=data["validation"], epochs=config.epochs,
                callbacks=[*callbacks, *listed], verbose=config.verbose, shuffle=False,
            )
    finally:
        if not chief:
            shutil.rmtree(workdir.path, ignore_errors=True)
    from pixelwise.callbacks import RunSummary

    rows = read_history(run.history_path) if chief else []
    summary = RunSummary(run.history_path, run.curves_path, run.metrics_path).write() if chief else {}
    return TrainResult(run=run, history=rows, final=summary.get("final"),
                       best=summary.get("best"), model=model, num_replicas=replicas)
