"""``strategy="mirrored"`` under JAX: ``keras.distribution.DataParallel`` over 2 virtual CPUs.

JAX fixes its device count when it starts, so each check runs this file as a script in a
fresh process with ``KERAS_BACKEND=jax`` and ``XLA_FLAGS=--xla_force_host_platform_device_count=2``;
the script writes what it measured to JSON and the tests read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BATCH, SIZE, CLASSES = 4, 64, 3


def one_step_on_one_and_two_devices(folder: Path) -> None:
    """One SGD step of a small U-Net (BatchNorm on) on one device and with DataParallel on all.

    Both models start from the same weights and see the same batch; the 2-device model is
    built in the strategy's scope and trained in :func:`fit_scope`, as ``train()`` does.
    """
    import jax
    import keras
    import numpy as np

    from pixelwise import models
    from pixelwise.training.distribute import DataParallelStrategy, fit_scope, make_strategy

    shard_shapes = []

    class ShardingProbe(keras.layers.Layer):
        """Identity that records, when ``fit`` compiles its step, how the batch is sharded."""

        def call(self, x):
            if isinstance(x, jax.core.Tracer):
                jax.debug.inspect_array_sharding(
                    x, callback=lambda s: shard_shapes.append(list(s.shard_shape(x.shape))))
            return x

    def build():
        inputs = keras.Input((SIZE, SIZE, 3))
        unet = models.build("unet", input_size=(SIZE, SIZE, 3), num_classes=CLASSES,
                            base_filters=4, batch_norm=True)
        model = keras.Model(inputs, unet(ShardingProbe()(inputs)))
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.default_rng(0)
    images = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
    labels = rng.integers(0, CLASSES, (BATCH, SIZE, SIZE)).astype(np.int32)

    keras.utils.set_random_seed(0)
    single = build()
    initial = single.get_weights()
    single.fit(images, labels, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    single_shards = list(shard_shapes)

    strategy = make_strategy("mirrored")
    with fit_scope(strategy):
        with strategy.scope():
            parallel = build()
        parallel.set_weights(initial)
        parallel.fit(images, labels, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    parallel_shards = shard_shapes[len(single_shards):]

    after_single, after_parallel = single.get_weights(), parallel.get_weights()
    (folder / "step.json").write_text(json.dumps({
        "backend": keras.backend.backend(),
        "strategy": type(strategy).__name__ if isinstance(strategy, DataParallelStrategy) else None,
        "devices": [str(d) for d in keras.distribution.list_devices()],
        "num_replicas": strategy.num_replicas_in_sync,
        "single_shards": single_shards,
        "parallel_shards": parallel_shards,
        "weight_devices": sorted({len(v.value.sharding.device_set)
                                  for v in parallel.trainable_variables}),
        "max_difference": max(float(np.abs(a - b).max())
                              for a, b in zip(after_single, after_parallel)),
        "max_change": max(float(np.abs(a - b).max()) for a, b in zip(after_single, initial)),
        "distribution_after": repr(keras.distribution.distribution()),
    }))


@pytest.fixture(scope="module")
def step(tmp_path_factory) -> dict:
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("data_parallel")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, __file__, str(folder)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((folder / "step.json").read_text())


def test_mirrored_under_jax_is_data_parallel_over_both_devices(step):
    assert step["backend"] == "jax"
    assert step["strategy"] == "DataParallelStrategy"
    assert len(step["devices"]) == 2 and step["num_replicas"] == 2
    # The batch of 4 reaches the model as 2 shards of 2 images; one device sees all 4.
    assert step["parallel_shards"] and all(s == [BATCH // 2, SIZE, SIZE, 3]
                                           for s in step["parallel_shards"])
    assert step["single_shards"] and all(s == [BATCH, SIZE, SIZE, 3]
                                         for s in step["single_shards"])
    # Every weight lives on both devices (replicated).
    assert step["weight_devices"] == [2]
    # The distribution is current only inside the scopes.
    assert step["distribution_after"] == "None"


def test_one_data_parallel_step_matches_one_device(step):
    assert step["max_change"] > 1e-3  # the step moved the weights
    assert step["max_difference"] < 1e-5


def test_train_with_strategy_mirrored_under_jax_splits_the_batch_over_two_devices(tmp_path):
    """``train()`` end to end: 1 epoch of synthetic_shapes (4 images, global batch 2)."""
    import numpy as np
    import tensorflow_datasets as tfds

    from pixelwise.datasets.synthetic_shapes.synthetic_shapes_dataset_builder import Builder
    from pixelwise.runs.folder import RunFolder
    from pixelwise.training.history import read_history

    data_dir = tmp_path / "tfds"
    Builder(data_dir=str(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(max_examples_per_split=4))
    config = {"dataset": "synthetic_shapes", "data_dir": str(data_dir), "image_size": 64,
              "batch_size": 2, "epochs": 1, "model_args": {"base_filters": 4},
              "image_summaries": 2, "strategy": "mirrored", "out": str(tmp_path / "run"),
              "verbose": 0}
    code = ("import json, sys; from pixelwise.training import TrainConfig, train; "
            f"result = train(TrainConfig(**json.loads({json.dumps(config)!r}))); "
            "print('replicas', result.num_replicas, result.model.optimizer.iterations.numpy())")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    # 4 images at a *global* batch of 2: 2 steps, each split over the 2 devices.
    assert result.stdout.split()[-3:] == ["replicas", "2", "2"]
    rows = read_history(RunFolder(tmp_path / "run").history_path)
    assert [row["epoch"] for row in rows] == [1] and np.isfinite(rows[0]["loss"])


if __name__ == "__main__":
    one_step_on_one_and_two_devices(Path(sys.argv[1]))
