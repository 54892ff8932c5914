"""Fine-tuning a pretrained encoder: per-variable learning rates and FreezeEncoder.

Backend-agnostic: ``tests/test_backends.py`` runs the fast tests here under JAX too.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pixelwise import models
from pixelwise.training.callbacks import FreezeEncoder
from pixelwise.training.config import TrainConfig
from pixelwise.training.optimizers import make_optimizer


def numpy_adam(start, grads, lr, steps, weight_decay=0.0, decay_lr=0.0, beta_1=0.9,
               beta_2=0.999, epsilon=1e-7):
    """Keras' Adam (AdamW: decoupled decay ``x -= x * wd * decay_lr`` first), written out."""
    x, m, v = start.astype(np.float64), 0.0, 0.0
    for step in range(1, steps + 1):
        x = x - x * weight_decay * decay_lr
        m = beta_1 * m + (1 - beta_1) * grads
        v = beta_2 * v + (1 - beta_2) * grads ** 2
        alpha = lr * np.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
        x = x - alpha * m / (np.sqrt(v) + epsilon)
    return x


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_learning_rate_multipliers_scale_or_stop_each_variables_update(name):
    start = np.array([1.0, -2.0, 0.5], "float32")
    grads = np.array([0.3, -0.1, 2.0], "float32")
    variables = [keras.Variable(start.copy(), name=f"v{i}") for i in range(3)]
    optimizer = make_optimizer(name, 0.1, weight_decay=0.05)
    optimizer.build(variables)
    optimizer.set_learning_rate_multiplier(variables[1:2], 0.25)
    optimizer.set_learning_rate_multiplier(variables[2:], 0.0)
    for _ in range(3):
        optimizer.apply([keras.ops.convert_to_tensor(grads)] * 3, variables)
    full, quarter, frozen = (keras.ops.convert_to_numpy(v) for v in variables)
    np.testing.assert_array_equal(frozen, start)  # no update, no weight decay
    if name == "sgd":  # momentum 0.9 is linear in the rate: a quarter of the step
        np.testing.assert_allclose(start - quarter, (start - full) / 4, rtol=1e-5)
    else:  # AdamW's decoupled decay follows the variable's rate, as in PyTorch's groups
        decay = 0.05 if name == "adamw" else 0.0
        for lr, actual in ((0.1, full), (0.025, quarter)):
            expected = numpy_adam(start, grads, lr, 3, weight_decay=decay, decay_lr=lr)
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="multiplier >= 0"):
        optimizer.set_learning_rate_multiplier(variables, -1)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_on_tensorflow_is_one_fused_op_per_variable_and_keras_adam_exactly(name):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused update is TensorFlow's ResourceApplyAdam")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = [rng.normal(size=shape).astype("float32") for shape in ((3, 4), (4,))]
    ours = [keras.Variable(value.copy()) for value in start]
    theirs = [keras.Variable(value.copy()) for value in start]
    optimizer = make_optimizer(name, 1e-2, weight_decay=0.01)
    reference = (keras.optimizers.AdamW(1e-2, weight_decay=0.01) if name == "adamw"
                 else keras.optimizers.Adam(1e-2))
    optimizer.build(ours)
    reference.build(theirs)
    step = tf.function(lambda grads: optimizer.apply(grads, ours))
    graph = step.get_concrete_function([tf.TensorSpec(v.shape) for v in start]).graph
    assert [op.type for op in graph.get_operations()].count("ResourceApplyAdam") == 2
    for _ in range(5):
        grads = [tf.constant(rng.normal(size=value.shape).astype("float32")) for value in start]
        step(grads)
        reference.apply(grads, theirs)
    for mine, keras_one in zip(ours, theirs):
        np.testing.assert_allclose(mine.numpy(), keras_one.numpy(), rtol=1e-6, atol=1e-7)


def test_a_slow_pretrained_encoder_is_not_eaten_by_weight_decay():
    """With no gradient, AdamW shrinks a x0.1 variable at a tenth of the full-rate decay.

    At the full rate, CamVid's weight decay 0.5 shrank EfficientNet-Lite0's ImageNet weights
    by 16 % in 8 epochs (multiplier 0.1) and the held-out mean IoU fell.
    """
    variables = [keras.Variable(np.ones(2, "float32"), name=f"w{i}") for i in range(2)]
    optimizer = make_optimizer("adamw", 1e-3, weight_decay=0.5)
    optimizer.build(variables)
    optimizer.set_learning_rate_multiplier(variables[1:], 0.1)
    for _ in range(100):
        optimizer.apply([keras.ops.zeros(2)] * 2, variables)
    decoder, encoder = (keras.ops.convert_to_numpy(v)[0] for v in variables)
    assert decoder == pytest.approx((1 - 0.5 * 1e-3) ** 100, rel=1e-5)
    assert encoder == pytest.approx((1 - 0.5 * 1e-4) ** 100, rel=1e-5)


def _snapshot(model):
    encoder = model.encoder
    return ({w.path: w.numpy().copy() for w in encoder.weights},
            {w.path: w.numpy().copy() for w in model.weights if w.path.startswith("head")})


def _changed(before: dict, after: dict) -> set[str]:
    return {path for path in before if not np.array_equal(before[path], after[path])}


@pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")
@pytest.mark.parametrize("traced", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_frozen_encoder_keeps_weights_and_batchnorm_statistics_then_trains(traced, capsys):
    """Epochs 1-2 frozen, epoch 3 trains; traced, the train step is rebuilt once (~30-70 s).

    Untraced means eager under TensorFlow; JAX's train step is always compiled here (its
    eager mode is slower than compiling).
    """
    run_eagerly = not traced and keras.backend.backend() == "tensorflow"
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(4, 32, 32, 1)).astype("int32")
    model = models.build("lraspp", input_size=(32, 32, 3), num_classes=3,
                         encoder="mobilenetv3small", head_filters=8)
    model.compile(make_optimizer("adamw", 1e-2, weight_decay=1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=run_eagerly, jit_compile=False)
    snapshots = [_snapshot(model)]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(_snapshot(model)))
    history = model.fit(images, labels, batch_size=2, epochs=3, verbose=0,
                        callbacks=[FreezeEncoder(epochs=2, learning_rate_multiplier=0.5), record])

    statistics = {p for p in snapshots[0][0] if "moving_" in p}
    assert len(statistics) > 50
    for epoch in (1, 2):
        assert not _changed(snapshots[epoch - 1][0], snapshots[epoch][0]), epoch
        assert _changed(snapshots[epoch - 1][1], snapshots[epoch][1])  # the head trains
    thawed = _changed(snapshots[2][0], snapshots[3][0])
    assert thawed == set(snapshots[0][0])  # every weight and every BatchNorm statistic
    assert history.history["encoder_frozen"] == [1.0, 1.0, 0.0]
    assert model.encoder.frozen is False
    out = capsys.readouterr().out
    assert "Epoch 1: encoder frozen until epoch 2" in out
    assert "Epoch 3: encoder trains, learning rate x 0.5" in out


def test_freeze_encoder_needs_an_encoder_and_a_multiplier_optimizer():
    images = np.zeros((2, 64, 64, 3), "float32")
    labels = np.zeros((2, 64, 64, 1), "int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    chapter = models.build("unet", input_size=(64, 64, 3), num_classes=2, base_filters=4)
    chapter.compile(make_optimizer("adam", 1e-3), loss, run_eagerly=True)
    with pytest.raises(ValueError, match="no pretrained encoder.*model_args={'encoder': 'resnet50'}"):
        chapter.fit(images, labels, epochs=1, verbose=0, callbacks=[FreezeEncoder(1)])
    model = models.build("lraspp", input_size=(64, 64, 3), num_classes=2,
                         encoder="mobilenetv3small", head_filters=8)
    model.compile(keras.optimizers.Adam(1e-3), loss, run_eagerly=True)
    with pytest.raises(ValueError, match="per-variable learning-rate multipliers"):
        model.fit(images, labels, epochs=1, verbose=0, callbacks=[FreezeEncoder(1)])
    with pytest.raises(ValueError, match="frozen epochs >= 0"):
        FreezeEncoder(-1)
    with pytest.raises(ValueError, match="multiplier > 0"):
        FreezeEncoder(1, learning_rate_multiplier=0)


def test_train_config_checks_the_fine_tuning_options():
    config = TrainConfig.from_dict({"freeze_encoder_epochs": "3", "encoder_lr_multiplier": "1e-1"})
    assert (config.freeze_encoder_epochs, config.encoder_lr_multiplier) == (3, 0.1)
    assert (TrainConfig().freeze_encoder_epochs, TrainConfig().encoder_lr_multiplier) == (0, 1.0)
    with pytest.raises(ValueError, match="freeze_encoder_epochs an integer >= 0"):
        TrainConfig.from_dict({"freeze_encoder_epochs": -1})
    with pytest.raises(ValueError, match="encoder_lr_multiplier"):
        TrainConfig.from_dict({"encoder_lr_multiplier": 0})


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    """synthetic_shapes built with 4 examples per split (drawn, nothing downloaded)."""
    import tensorflow_datasets as tfds

    from pixelwise.datasets.synthetic_shapes.synthetic_shapes_dataset_builder import Builder

    folder = tmp_path_factory.mktemp("tfds")
    Builder(data_dir=str(folder)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(max_examples_per_split=4))
    return str(folder)


def _config(shapes_dir, out, **options):
    return TrainConfig.from_dict({
        "dataset": "synthetic_shapes", "data_dir": shapes_dir, "image_size": 64,
        "batch_size": 2, "epochs": 2, "image_summaries": 0, "verbose": 0,
        "jit_compile": False, "out": str(out), **options})


def test_fine_tuning_a_model_without_encoder_fails_before_the_run_folder(shapes_dir, tmp_path):
    from pixelwise.training.loop import train

    config = _config(shapes_dir, tmp_path / "run", model_args={"base_filters": 4},
                     freeze_encoder_epochs=1)
    with pytest.raises(ValueError, match=r"built without one; pass model_args=\{'encoder': NAME\}"):
        train(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")
def test_train_freezes_then_thaws_the_encoder_and_logs_it(shapes_dir, tmp_path):
    """2 epochs of LR-ASPP on MobileNetV3-Small, the first frozen (~60 s, traced)."""
    from pixelwise.training.history import read_history
    from pixelwise.training.loop import train

    config = _config(shapes_dir, tmp_path / "run", model="lraspp",
                     model_args={"encoder": "mobilenetv3small", "head_filters": 8},
                     freeze_encoder_epochs=1, encoder_lr_multiplier=0.1, optimizer="adamw")
    result = train(config)
    assert [row["encoder_frozen"] for row in read_history(result.run.history_path)] == [1.0, 0.0]
    optimizer = result.model.optimizer
    encoder = result.model.encoder
    assert {optimizer.learning_rate_multiplier(w) for w in encoder.trainable_weights} == {0.1}
    assert optimizer.learning_rate_multiplier(result.model.get_layer("head_conv").kernel) == 1.0
    reloaded = result.run.load_model("last")
    np.testing.assert_array_equal(reloaded.encoder.weights[0].numpy(), encoder.weights[0].numpy())
