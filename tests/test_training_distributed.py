"""``--strategy mirrored`` over 2 logical CPUs and ``--strategy multi-worker`` with 2 local workers.

Each runs in fresh processes: logical devices and collective ops must be configured
before TensorFlow initialises, which the test process has already done.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pixelwise.training.callbacks import iou_key
from pixelwise.class_sets import VOC
from pixelwise.training.history import read_history
from pixelwise.runs.folder import RunFolder
from training_fixture import TINY

pytestmark = pytest.mark.slow

TIMEOUT = 420


@pytest.fixture
def voc(voc2007_built):
    return voc2007_built


def _env(tmp_path, **extra):
    # oneDNN on, as TensorFlow has it on AVX-512 VNNI/BF16 CPUs and pixelwise on every x86
    # one: there, a replica's empty share of the last validation batch failed (issue 24).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp_path / "scratch"),
           "TF_ENABLE_ONEDNN_OPTS": "1", **extra}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return env


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _steps_trained(run: RunFolder) -> int:
    """Optimizer steps stored in last.keras (loaded with its optimizer)."""
    import keras

    import pixelwise.losses  # noqa: F401  (registers the loss for deserialisation)
    import pixelwise.metrics  # noqa: F401
    import pixelwise.models  # noqa: F401

    model = keras.models.load_model(run.checkpoint_path("last"))
    return int(model.optimizer.iterations.numpy())


def _check_one_epoch(run: RunFolder):
    rows = read_history(run.history_path)
    assert [r["epoch"] for r in rows] == [1]
    row = rows[0]
    assert np.isfinite(row["loss"]) and 0.0 <= row["val_mean_iou"] <= 1.0
    per_class = np.array([row[iou_key(n)] for n in VOC.class_names], dtype=float)
    assert np.nanmean(per_class) == pytest.approx(row["val_mean_iou"], abs=1e-6)
    # The fixture's 4 training images at a *global* batch of 2 are 2 steps, whatever
    # the number of replicas the batch is split across.
    assert _steps_trained(run) == 2


def test_mirrored_over_two_logical_cpus(voc, tmp_path):
    out = tmp_path / "run"
    config = {**TINY, **voc, "epochs": 1, "strategy": "mirrored", "out": str(out)}
    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        from pixelwise.training.loop import TrainConfig, train
        result = train(TrainConfig.from_dict(json.loads(sys.argv[1])))
        print("REPLICAS", result.num_replicas)
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(config)], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REPLICAS 2" in done.stdout
    _check_one_epoch(RunFolder(out))


def test_multi_worker_two_local_workers(voc, tmp_path):
    out = tmp_path / "run"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    command = [
        sys.executable, "-m", "pixelwise.cli", "train", "--strategy", "multi-worker",
        "--data-dir", voc["data_dir"], "--image-size", "64", "--batch-size", "2",
        "--model-arg", "base_filters=4", "--epochs", "1", "--verbose", "0",
        "--image-summaries", "1", "--out", str(out),
    ]
    workers = [
        subprocess.Popen(
            command, env=_env(tmp_path, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}})),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=TIMEOUT))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    assert "(2 replica(s))" in outputs[0][0]
    run = RunFolder(out)
    _check_one_epoch(run)
    # The chief wrote the run folder; the other worker only its backup, and its scratch
    # folder is gone.
    assert (run.backup_dir / "worker-1" / "training_metadata.json").is_file()
    assert not list((tmp_path / "scratch").glob("pixelwise-worker*"))
