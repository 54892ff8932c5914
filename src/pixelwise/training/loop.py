"""Training: the chapter's ``compile``/``fit`` loop, with the exercises' losses, metrics and callbacks.

One function, :func:`train`, turns a :class:`~pixelwise.training.config.TrainConfig` into a run
folder (layout: :mod:`pixelwise.runs`)::

    runs/NAME/config.json        this TrainConfig, resolved (a valid --config file)
    runs/NAME/class_set.json     the class set trained on
    runs/NAME/checkpoints/       best.keras (by val_mean_iou) and last.keras
    runs/NAME/backup/            BackupAndRestore state: --resume continues from here
    runs/NAME/tensorboard/       scalars, per-class IoU, validation image panels
    runs/NAME/history.csv        one row per epoch (epochs count from 1, as everywhere)
    runs/NAME/curves.png         loss / pixel accuracy / mean IoU, train and validation
    runs/NAME/metrics.json       final and best epoch

The configuration — :class:`~pixelwise.training.config.TrainConfig` with the chapter's defaults —
lives in :mod:`pixelwise.training.config`, config files and precedence in
:mod:`pixelwise.training.config_files`, the run-folder checks in :mod:`pixelwise.runs.checks`
(all importable without TensorFlow). The callbacks are in :mod:`pixelwise.training.callbacks`,
the ``history.csv`` helpers in :mod:`pixelwise.training.history`.

Example:
    >>> from pixelwise.training import TrainConfig, train
    >>> config = TrainConfig(dataset="camvid", manual_dir="../shared/datasets/CamVid",
    ...                      image_size=(192, 256), batch_size=8, epochs=2,
    ...                      model_args={"base_filters": 16}, out="runs/camvid-try")
    >>> result = train(config)                                  # doctest: +SKIP
    >>> result.best["val_mean_iou"]                             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pixelwise.training import callbacks as cb
from pixelwise import models
from pixelwise.class_sets import ClassSet, class_set_from_info
from pixelwise.training.config import TrainConfig
from pixelwise.runs.checks import check_new_run, check_resume, check_writable
from pixelwise.data.pipeline import make_pipeline, void_padding
from pixelwise.training.distribute import dtype_policy, fit_scope, is_chief, make_strategy
from pixelwise.training.history import MONITOR, best_row, read_history, truncate_history
from pixelwise.losses import median_frequency_weights, segmentation_loss
from pixelwise.metrics import MeanIoU, segmentation_metrics
from pixelwise.training.optimizers import learning_rate_schedule, make_optimizer
from pixelwise.training.precision import choose_mixed_precision
from pixelwise.onednn import onednn_enabled
from pixelwise.runs.folder import RunFolder
from pixelwise.data.selection import select_examples
from pixelwise.data.splits import SplitOptions


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


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """The data side of a run, as model and callback construction need it.

    Attributes:
        train: Batched, augmented ``(image, label)`` training pipeline.
        validation: Batched ``(image, label)`` validation pipeline; None without validation.
        class_set: The dataset's class set.
        input_size: ``(height, width, channels)`` of the model input.
        steps_per_epoch: Training batches per epoch.
        class_weights: Per-class loss weights, or None (unweighted).
        summary_images: ``(images, labels)`` arrays drawn to TensorBoard each epoch, or None.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_set: ClassSet
    input_size: tuple[int, int, int]
    steps_per_epoch: int
    class_weights: list[float] | None = None
    summary_images: tuple[np.ndarray, np.ndarray] | None = None
    num_validation: int = 0
    validation_padding: int = 0


def load_training_data(config: TrainConfig, multi_worker: bool = False,
                       replicas: int = 1) -> TrainingData:
    """Load ``config``'s splits, check their sizes and build the pipelines.

    Validation is ``config.validation_groups`` held out, whole, from the training split;
    else ``config.validation_split`` (none when it is ``"none"``), and a
    :class:`~pixelwise.data.groups.GroupOverlapWarning` when it shares groups with training.

    Args:
        config: A validated :class:`~pixelwise.training.config.TrainConfig`; its ``batch_size``
            is the global batch.
        multi_worker: Shard by example for ``MultiWorkerMirroredStrategy`` (default False).
        replicas: The strategy's replicas in sync. Above 1, the validation split is padded
            with all-void examples to a multiple of it (``validation_padding`` of them), so
            that no replica gets an empty batch (:func:`pixelwise.data.pipeline.void_padding`).

    Raises:
        ValueError: the validation split is empty, or the training split is smaller
            than one batch; unknown validation groups.
        FileNotFoundError: the dataset is not built and cannot be.
    """
    splits = select_examples(SplitOptions.from_mapping(config.to_dict()))
    train_examples, val_examples, info = splits.train, splits.validation, splits.info
    num_train, num_val = splits.num_train, splits.num_validation
    class_set = class_set_from_info(info)
    if num_val == 0 and config.validates:
        raise ValueError(
            f"Validation split {config.validation_split!r} of {config.dataset!r} is empty; pass "
            "validation_split= a split that has examples."
        )
    if num_train < config.batch_size:
        raise ValueError(
            f"Batch size {config.batch_size} is larger than the {num_train} examples of the "
            f"training split {config.train_split!r}; pass batch_size={num_train} or less."
        )
    train = make_pipeline(
        train_examples, class_set, config.image_size, config.batch_size, training=True,
        augment=config.augment, seed=config.seed,
    )
    validation = None if val_examples is None else make_pipeline(
        val_examples, class_set, config.image_size, config.batch_size, training=False,
        pad_to_multiple=replicas,
    )
    if multi_worker:
        # TFDS splits can have fewer files than workers: shard examples, not files.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train = train.with_options(options)
        validation = validation and validation.with_options(options)
    summary_images = None
    if config.image_summaries and val_examples is not None:
        sample = make_pipeline(
            val_examples.take(config.image_summaries), class_set, config.image_size,
            config.image_summaries, training=False, cache=False,
        )
        summary_images = next(iter(sample.as_numpy_iterator()))
    if isinstance(config.class_weights, list):
        class_weights = config.class_weights
    elif config.class_weights == "median-frequency":
        class_weights = [float(w) for w in median_frequency_weights(train_examples, class_set)]
    else:
        class_weights = None
    return TrainingData(
        train=train, validation=validation, class_set=class_set,
        input_size=(*config.image_size, info.features["image"].shape[-1]),
        steps_per_epoch=num_train // config.batch_size, class_weights=class_weights,
        summary_images=summary_images, num_validation=num_val,
        validation_padding=void_padding(num_val, replicas) if val_examples is not None else 0,
    )


# --------------------------------------------------------------------------- model and callbacks


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    return learning_rate_schedule(config.learning_rate, config.lr_schedule,
                                  config.epochs * steps_per_epoch)


def _fine_tunes(config: TrainConfig) -> bool:
    return config.freeze_encoder_epochs > 0 or config.encoder_lr_multiplier != 1.0


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    # pixelwise's optimizers: Keras' with per-variable learning-rate multipliers (which
    # FreezeEncoder sets when fine-tuning) and, on TensorFlow, Adam fused into one op per
    # variable (pixelwise.training.optimizers.FusedAdamStep).
    return make_optimizer(config.optimizer, _learning_rate(config, steps_per_epoch),
                          config.weight_decay)


def _build_model(config: TrainConfig, data: TrainingData) -> tuple[keras.Model, MeanIoU]:
    """Build and compile the model (inside the strategy scope and dtype policy)."""
    options = dict(config.model_args)
    if config.dropout_rates is not None and options.get("dropout_rate") is None:
        options["dropout_rate"] = config.dropout_rates.start
    model = models.build(config.model, input_size=data.input_size,
                         num_classes=data.class_set.num_classes, **options)
    if tuple(model.output_shape[1:3]) != tuple(config.image_size):
        raise ValueError(
            f"Model {config.model!r} maps {tuple(config.image_size)} inputs to "
            f"{tuple(model.output_shape[1:3])} outputs; training needs outputs of the input size "
            "(for original_unet pass model_args={'padding': 'same'})."
        )
    if _fine_tunes(config) and not models.encoders_in(model):
        raise ValueError(
            f"freeze_encoder_epochs and encoder_lr_multiplier fine-tune a pretrained encoder, "
            f"but model {config.model!r} was built without one; pass model_args={{'encoder': NAME}} "
            f"(NAME one of {models.available_encoders()})."
        )
    pixel_accuracy, mean_iou = segmentation_metrics(data.class_set)
    model.compile(
        optimizer=_optimizer(config, data.steps_per_epoch),
        loss=segmentation_loss(data.class_set, config.loss, config.reconstruction_weight,
                               class_weights=data.class_weights),
        metrics=[pixel_accuracy, mean_iou],
        jit_compile=config.jit_compile,
    )
    return model, mean_iou


def _unpadded_validation_loss(data: TrainingData) -> list[keras.callbacks.Callback]:
    """The callback that undoes the void padding's share of ``val_loss`` (first of all).

    Keras' ``val_loss`` is the mean of each replica's share of each batch (its loss over
    the share's non-void pixels), weighted by the share's examples. The padded pipeline
    puts each void example alone in its share, whose loss is 0 and weight 1, so padding N
    examples with P void ones scales ``val_loss`` by N / (N + P) exactly, against the same
    shares without them. Metrics ignore void pixels and need no correction.
    """
    if not data.validation_padding:
        return []
    return [cb.ScaleLogs("val_loss", (data.num_validation + data.validation_padding)
                         / data.num_validation)]


def _callbacks(config: TrainConfig, run: RunFolder, backup_dir: Path, data: TrainingData,
               mean_iou: MeanIoU, resume_rows: list, chief: bool, summary_extra: dict) -> list:
    best = best_row(resume_rows)
    listed = []
    if config.dropout_rates is not None:
        listed.append(cb.DropoutSchedule(config.dropout_rates))
    if _fine_tunes(config):
        listed.append(cb.FreezeEncoder(config.freeze_encoder_epochs,
                                       config.encoder_lr_multiplier))
    listed += [
        cb.PerClassIoU(mean_iou, data.class_set),
        cb.LearningRateLogger(),
        cb.TerminateOnNonFinite(),
    ]
    if config.validates:
        listed.append(keras.callbacks.ModelCheckpoint(
            str(run.checkpoint_path("best")), monitor=MONITOR, mode="max",
            save_best_only=True,
            initial_value_threshold=best[MONITOR] if best else None,
        ))
    listed += [
        keras.callbacks.ModelCheckpoint(str(run.checkpoint_path("last"))),
        cb.HistoryLogger(str(run.history_path), append=True),
        cb.EpochTensorBoard(str(run.tensorboard_dir)),
    ]
    if chief and data.summary_images is not None:
        images, labels = data.summary_images
        listed.append(cb.ValidationImages(run.tensorboard_dir / "images", images, labels,
                                          data.class_set))
    listed.append(cb.RunSummary(run.history_path, run.curves_path, run.metrics_path,
                                summary_extra))
    if config.early_stopping_patience:
        listed.append(cb.ResumableEarlyStopping(resume_rows, config.early_stopping_patience,
                                                verbose=1))
    # Last, so a backup (from which --resume continues) exists only for epochs whose
    # checkpoints, history row and summaries were all written.
    listed.append(keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False))
    return listed


# --------------------------------------------------------------------------- the training flow


def train(config: TrainConfig, resume: bool = False, callbacks=()) -> TrainResult:
    """Train a model as ``config`` says and write a run folder.

    Every check that can fail (options, run folder, dataset, model and image size)
    runs before training starts and before anything but ``train.lock`` is written in the
    run folder (a folder made for the lock alone is removed again).

    Args:
        config: The resolved configuration (:func:`~pixelwise.training.config_files.resolve_config`).
        resume: Continue the run in ``config.out`` from its last finished epoch
            (BackupAndRestore); without it an existing, non-empty run folder is an error.
        callbacks: Extra Keras callbacks (tests use one to interrupt training).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError, FileNotFoundError, FileExistsError, PermissionError: bad input, with
            what was expected and how to fix it.
        ~pixelwise.locks.LockedError: another training writes the run folder (its pid and
            host named).
    """
    config = TrainConfig.from_dict(config.to_dict())
    # MultiWorkerMirroredStrategy must exist before TF initialises its runtime.
    strategy = make_strategy(config.strategy)
    chief, task_id = is_chief(strategy)
    run = config.run_folder
    check_writable(run.path)
    # One training writes a run folder; a second one is refused before it reads anything
    # there. The chief holds it for all workers of a multi-worker run.
    with run.locked() if chief else contextlib.nullcontext():
        finished = 0
        if resume:
            finished = check_resume(run, config)
        elif chief:
            check_new_run(run)
        return _fit(config, strategy, run, finished, callbacks, chief, task_id)


def fit_verbosity(verbose, stream=None) -> int | str:
    """Keras ``fit``'s verbosity for ``verbose``: ``"auto"`` is a progress bar (1) only when
    ``stream`` (default ``sys.stdout``) is a terminal, else one line per epoch (2).

    Keras draws its bar with ANSI colours and carriage returns whenever ``posix`` is
    imported, terminal or not, which fills a log file with escape codes.
    """
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def _fit(config: TrainConfig, strategy, run: RunFolder, finished: int, callbacks,
         chief: bool, task_id: int) -> TrainResult:
    """:func:`train` once its run folder is checked and held: data, model, ``fit``, summary."""
    multi_worker = config.strategy == "multi-worker"
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size {config.batch_size} must split evenly across the {replicas} "
            f"replicas of strategy={config.strategy!r}; pass batch_size= a multiple of {replicas}."
        )
    data = load_training_data(config, multi_worker, replicas)
    precision, reason = choose_mixed_precision(config.mixed_precision)
    if config.mixed_precision == "auto":
        print(f"mixed_precision auto: {precision} ({reason})")
    # config.json keeps "auto", as asked; metrics.json says what it became on this machine.
    summary_extra = {"mixed_precision_chosen": precision, "mixed_precision_reason": reason,
                     "onednn": onednn_enabled() if keras.backend.backend() == "tensorflow" else None}

    # Non-chief workers train in lock step with the chief but write to a scratch
    # folder (TF's multi-worker recipe), except their backup, which --resume needs.
    workdir = run if chief else RunFolder(tempfile.mkdtemp(prefix=f"pixelwise-worker{task_id}-"))
    backup_dir = run.backup_dir if chief else run.backup_dir / f"worker-{task_id}"
    try:
        with dtype_policy(precision), fit_scope(strategy):
            with strategy.scope():
                model, mean_iou = _build_model(config, data)
            # All checks passed: now, and only now, write to the run folder.
            workdir.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            if chief:
                workdir.config_path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
                workdir.class_set_path.write_text(data.class_set.to_json() + "\n")
                # Rows of epochs after the backup will be trained again: drop them.
                truncate_history(workdir.history_path, finished)
            resume_rows = read_history(workdir.history_path) if chief else []
            listed = _callbacks(config, workdir, backup_dir, data, mean_iou, resume_rows, chief,
                                summary_extra)
            with warnings.catch_warnings():
                # A frozen encoder has no gradients on purpose (FreezeEncoder).
                warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
                model.fit(
                    data.train, validation_data=data.validation, epochs=config.epochs,
                    callbacks=[*_unpadded_validation_loss(data), *callbacks, *listed],
                    verbose=fit_verbosity(config.verbose),
                    shuffle=False,
                )
    finally:
        if not chief:
            shutil.rmtree(workdir.path, ignore_errors=True)
    rows = read_history(run.history_path) if chief else []
    summary = (cb.RunSummary(run.history_path, run.curves_path, run.metrics_path, summary_extra)
               .write() if chief else {})
    return TrainResult(run=run, history=rows, final=summary.get("final"),
                       best=summary.get("best"), model=model, num_replicas=replicas)
