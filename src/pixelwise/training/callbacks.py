"""Keras callbacks of ``pixelwise train``: the chapter's and the exercises' extras.

- :class:`DropoutSchedule` — exercise 19: encoder dropout starts at 0.5 and
  grows by 0.1 after every epoch (a :class:`~pixelwise.training.config.DropoutRates`,
  cap < 1); the rate in effect is added to the epoch logs as ``dropout_rate``.
- :class:`PerClassIoU` — exercise 17: the IoU of every class on the validation
  split at the end of each epoch, added to the logs as ``val_iou_<class>`` (so
  CSVLogger and TensorBoard record it).
- :class:`LearningRateLogger` — the learning rate in effect, as ``learning_rate``.
- :class:`ValidationImages` — TensorBoard image summaries of a fixed set of
  validation images: input | true colour mask | predicted colour mask.
- :class:`RunSummary` — rewrites ``curves.png`` and ``metrics.json`` from
  ``history.csv`` after every epoch, so even an interrupted run has them.
- :class:`ResumableEarlyStopping` — EarlyStopping whose best value and patience
  counter continue from an earlier, interrupted part of the same run.
- :class:`TerminateOnNonFinite` — Keras' TerminateOnNaN, made safe for the run
  folder: it raises, so the diverged epoch is never checkpointed, backed up or logged.
- :class:`FreezeEncoder` — fine-tuning a pretrained encoder: frozen for the first epochs
  (BatchNorm statistics kept), then trained at a multiple of the learning rate; whether
  it was frozen is added to the logs as ``encoder_frozen``.
- :class:`HistoryLogger`, :class:`EpochTensorBoard` — Keras' CSVLogger and TensorBoard,
  numbering epochs from 1 as the console does (Keras' callbacks count from 0).

Epochs a person reads count from 1 everywhere: the console, ``history.csv``,
``metrics.json``, ``curves.png`` and TensorBoard's step axis (see :mod:`pixelwise.training.history`).

Callbacks that add keys to the logs must come before ``HistoryLogger`` and
``EpochTensorBoard`` in the callback list (Keras hands every callback the same dict).

The history.csv helpers (``read_history``, ``best_row``, ...) live in the TF-free
:mod:`pixelwise.training.history`, ``curves.png`` in :mod:`pixelwise.training.curves`; the dropout
schedule's values in :class:`pixelwise.training.config.DropoutRates`.

Example:
    >>> callback = DropoutSchedule(DropoutRates.parse("0.5,0.1,0.9"))
    >>> [round(callback.schedule.rate(epoch), 2) for epoch in range(6)]
    [0.5, 0.6, 0.7, 0.8, 0.9, 0.9]
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pixelwise.class_sets import ClassSet
from pixelwise.training.config import DropoutRates
from pixelwise.training.curves import plot_curves
from pixelwise.training.history import MONITOR, read_history, summarize_history
from pixelwise.metrics import iou_from_confusion
from pixelwise.models import encoders_in, set_dropout_rate


def iou_key(class_name: str) -> str:
    """Log key of one class's validation IoU: ``val_iou_<name>`` with spaces as underscores."""
    return "val_iou_" + re.sub(r"\W+", "_", class_name).strip("_")


class DropoutSchedule(keras.callbacks.Callback):
    """Exercise 19: applies a :class:`~pixelwise.training.config.DropoutRates` schedule to the encoder.

    The rate is set before each epoch through
    :func:`pixelwise.models.set_dropout_rate` (no rebuild, no recompile) and added
    to the epoch logs as ``dropout_rate``. Because the rate is a function of the
    epoch number only, a resumed run continues the schedule where it stopped.

    Args:
        schedule: :class:`~pixelwise.training.config.DropoutRates`, default ``DropoutRates()``
            (start 0.5, step 0.1, cap 0.9); parsed and checked by the config.
    """

    def __init__(self, schedule: DropoutRates = DropoutRates()):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        set_dropout_rate(self.model, self.schedule.rate(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["dropout_rate"] = self.schedule.rate(epoch)


class FreezeEncoder(keras.callbacks.Callback):
    """Fine-tuning: freeze the pretrained encoder for ``epochs`` epochs, then let it train.

    While frozen (epochs ``1..epochs``), the encoder runs in inference mode in the train
    step (BatchNorm normalises with its moving statistics and keeps them), no gradient
    flows into it and the optimizer leaves its weights and slots alone (multiplier 0);
    then it trains at ``learning_rate * learning_rate_multiplier``. Each change is printed
    and rebuilds the train step once; the state depends on the epoch only, so a resumed
    run continues it. No variable changes trainability during ``fit``, so it works on
    every backend (:mod:`pixelwise.training.optimizers`).

    Args:
        epochs: int >= 0, default 0. Epochs with a frozen encoder.
        learning_rate_multiplier: float > 0, default 1.0. The encoder's learning rate
            relative to the decoder's once it trains.

    Raises (on_train_begin):
        ValueError: the model has no :class:`~pixelwise.models.Encoder`, or its optimizer
            has no per-variable multipliers (use :func:`pixelwise.training.optimizers.make_optimizer`).
    """

    def __init__(self, epochs: int = 0, learning_rate_multiplier: float = 1.0):
        super().__init__()
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"Expected a number of frozen epochs >= 0, received {epochs!r}.")
        if not float(learning_rate_multiplier) > 0:
            raise ValueError(
                "Expected an encoder learning-rate multiplier > 0, received "
                f"{learning_rate_multiplier!r}; freeze the encoder with epochs= instead."
            )
        self.epochs = epochs
        self.learning_rate_multiplier = float(learning_rate_multiplier)
        self.frozen: bool | None = None

    def _optimizer(self):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        if not hasattr(optimizer, "set_learning_rate_multiplier"):
            raise ValueError(
                f"FreezeEncoder needs an optimizer with per-variable learning-rate multipliers, "
                f"received {type(optimizer).__name__}; compile with "
                "pixelwise.training.optimizers.make_optimizer(...)."
            )
        return optimizer

    def on_train_begin(self, logs=None):
        if not encoders_in(self.model):
            raise ValueError(
                f"Model {self.model.name!r} has no pretrained encoder to freeze or to train at "
                "another learning rate; build it with an encoder (e.g. model='deeplabv3plus', "
                "model_args={'encoder': 'resnet50'})."
            )
        self._optimizer()
        self.frozen = None

    def on_epoch_begin(self, epoch, logs=None):
        frozen = epoch < self.epochs
        if frozen == self.frozen:
            return
        multiplier = 0.0 if frozen else self.learning_rate_multiplier
        optimizer = self._optimizer()
        for encoder in encoders_in(self.model):
            encoder.frozen = frozen
            optimizer.set_learning_rate_multiplier(encoder.trainable_variables, multiplier)
        self.model.make_train_function(force=True)
        self.frozen = frozen
        if frozen:
            print(f"Epoch {epoch + 1}: encoder frozen until epoch {self.epochs} (inference-mode "
                  "BatchNorm, no updates)")
        else:
            print(f"Epoch {epoch + 1}: encoder trains, learning rate x {multiplier:g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["encoder_frozen"] = float(epoch < self.epochs)


class ScaleLogs(keras.callbacks.Callback):
    """Multiplies one logged value by a constant at the end of each epoch, for the callbacks after it.

    The training loop puts it first, to undo the share of padding examples in ``val_loss``
    (see ``loop._unpadded_validation_loss``).

    Example:
        >>> logs = {"val_loss": 0.5}
        >>> ScaleLogs("val_loss", 1.5).on_epoch_end(0, logs)
        >>> logs
        {'val_loss': 0.75}
    """

    def __init__(self, key: str, factor: float):
        super().__init__()
        self.key, self.factor = key, float(factor)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.key in logs:
            logs[self.key] = float(logs[self.key]) * self.factor


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's learning rate at the end of the epoch as ``learning_rate``."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class PerClassIoU(keras.callbacks.Callback):
    """Exercise 17: per-class IoU of the validation split, every epoch.

    Reads the confusion matrix that the compiled ``MeanIoU`` metric accumulated
    during the epoch's validation pass (Keras resets metrics before validation and
    leaves their state in place until the next epoch starts), so it costs no
    extra pass over the data. The mean of the per-class values over the classes
    present equals ``val_mean_iou``; the tests check both against NumPy.

    Args:
        metric: The ``keras.metrics.MeanIoU`` (or subclass with ``total_cm``) the
            model was compiled with.
        class_set: Names used in the log keys (``val_iou_<name>``).
    """

    def __init__(self, metric, class_set: ClassSet):
        super().__init__()
        if not hasattr(metric, "total_cm"):
            raise ValueError(
                f"PerClassIoU needs a MeanIoU-like metric with a 'total_cm' confusion matrix, "
                f"received {type(metric).__name__}."
            )
        self.metric = metric
        self.class_set = class_set
        self.last_iou: np.ndarray | None = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or MONITOR not in logs:
            return  # no validation this epoch
        self.last_iou = iou_from_confusion(keras.ops.convert_to_numpy(self.metric.total_cm))
        for name, value in zip(self.class_set.class_names, self.last_iou):
            logs[iou_key(name)] = float(value)


class ValidationImages(keras.callbacks.Callback):
    """TensorBoard image summaries: input | true mask | predicted mask, each epoch.

    The same ``images``/``labels`` are drawn every epoch (taken once from the
    unshuffled validation split), so the panels show how one prediction evolves.
    Ignored pixels are drawn in the class set's void colour.

    Args:
        log_dir: Folder of the summary writer (``tensorboard/images``).
        images: float array (N, H, W, C) in [0, 1].
        labels: int array (N, H, W) or (N, H, W, 1).
        class_set: Palette for the masks.
    """

    def __init__(self, log_dir, images, labels, class_set: ClassSet):
        super().__init__()
        self.log_dir = str(log_dir)
        self.images = np.asarray(images, dtype=np.float32)
        self.labels = np.asarray(labels)
        self.class_set = class_set
        self._writer = None

    def panels(self) -> np.ndarray:
        """uint8 (N, H, 3W, 3): input, true and predicted colour masks side by side."""
        logits = keras.ops.convert_to_numpy(self.model(self.images, training=False))
        predicted = np.argmax(logits, axis=-1)
        images = np.clip(self.images * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        images = images[..., :3]
        return np.concatenate(
            [images, self.class_set.colorize(self.labels), self.class_set.colorize(predicted)],
            axis=2,
        )

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.image(
                "validation/input_true_predicted", self.panels(), step=epoch + 1,
                max_outputs=len(self.images),
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class HistoryLogger(keras.callbacks.CSVLogger):
    """Keras' ``CSVLogger`` writing the epoch column from 1 (Keras passes 0 for the first epoch)."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` with the epoch summaries at steps 1, 2, ... like ``history.csv``."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class RunSummary(keras.callbacks.Callback):
    """Rewrites ``curves.png`` and ``metrics.json`` from ``history.csv`` after every epoch.

    Must come after ``HistoryLogger`` in the callback list. Reading the CSV (rather
    than this process's logs) makes a resumed run's figures cover all its epochs.

    Args:
        history_path, curves_path, metrics_path: Files of the run folder.
        extra: dict, default None. Further keys of ``metrics.json`` (the precision chosen).
    """

    def __init__(self, history_path, curves_path, metrics_path, extra=None):
        super().__init__()
        self.extra = dict(extra or {})
        self.history_path = Path(history_path)
        self.curves_path = Path(curves_path)
        self.metrics_path = Path(metrics_path)

    def write(self) -> dict:
        rows = read_history(self.history_path)
        summary = {**summarize_history(rows), **self.extra}
        self.metrics_path.write_text(json.dumps(summary, indent=2) + "\n")
        plot_curves(rows, self.curves_path)
        return summary

    def on_epoch_end(self, epoch, logs=None):
        self.write()


class TrainingDiverged(FloatingPointError, ValueError):
    """The loss became NaN or infinite; the run folder keeps the last good epoch."""


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stop at the first non-finite batch loss, before that epoch reaches the run folder.

    Keras' ``TerminateOnNaN`` only sets ``stop_training``, after which ``fit`` still runs
    validation and every ``on_epoch_end`` — so ``last.keras``, the BackupAndRestore
    state and ``history.csv`` would receive the diverged weights. This one raises
    :class:`TrainingDiverged` at once, so nothing of the diverged epoch is written
    and ``--resume`` continues from the last finite epoch.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            epoch = getattr(self, "epoch", 0)
            raise TrainingDiverged(
                f"The training loss became {float(loss)} at epoch {epoch + 1}, batch {batch + 1}; "
                f"that epoch was not saved and the run folder keeps epochs 1..{epoch}. Lower "
                "learning_rate=, or train in float32 (mixed_precision='none'), then resume=True."
            )


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` on ``val_mean_iou`` that remembers an interrupted run's epochs.

    Keras' EarlyStopping forgets its best value and patience counter when ``fit``
    starts again; seeded with the rows already in ``history.csv`` it continues
    counting as if training had never stopped.

    Args:
        history: Rows of the epochs finished before this ``fit`` (``read_history``).
        patience: int. Epochs without improvement before stopping.
        **kwargs: Passed to ``keras.callbacks.EarlyStopping``.
    """

    def __init__(self, history: list[dict] = (), patience: int = 10, monitor: str = MONITOR,
                 **kwargs):
        super().__init__(monitor=monitor, mode="max", patience=patience, **kwargs)
        self.history_rows = list(history)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        best = None
        for row in self.history_rows:
            value = row.get(self.monitor)
            if not isinstance(value, float) or not math.isfinite(value):
                continue
            self.wait += 1
            if best is None or value > best + self.min_delta:
                # history.csv counts from 1, Keras' best_epoch from 0
                best, self.best_epoch, self.wait = value, row["epoch"] - 1, 0
        self.best = best
