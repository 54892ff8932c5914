"""benchmarks/camvid_screen.py: a tiny pack, one screened config, the NumPy augmentation, no TF under JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import camvid_screen  # noqa: E402
import camvid_screen_data  # noqa: E402
from pixelwise.class_sets import CAMVID  # noqa: E402


def _fake_pack(folder: Path) -> Path:
    """Six 40x48 examples: groups A (3 train, 1 validation) and B (2 train); blocks of classes."""
    rng = np.random.default_rng(0)
    examples = []
    names = [("A_001.png", "train"), ("A_002.png", "train"), ("B_001.png", "train"),
             ("A_003.png", "train"), ("B_002.png", "train"), ("A_004.png", "validation")]
    for number, (name, split) in enumerate(names):
        label = np.full((40, 48), number % 11, np.uint8)
        label[:, 24:] = (number + 3) % 11
        label[:4] = 255
        image = (CAMVID.lookup_table()[label] * 0.8 + rng.integers(0, 40, (40, 48, 3))).astype(np.uint8)
        examples.append((name, split, name.split("_")[0], image, label))
    camvid_screen_data.write_pack(folder, examples, CAMVID, r"^(.+?)_")
    return folder


def _config(folder: Path, **changes) -> Path:
    values = {"dataset": "camvid", "train_split": "train+validation", "validation_groups": ["B"],
              "image_size": [64, 64], "batch_size": 2, "model": "unet",
              "model_args": {"base_filters": 4}, "epochs": 1, "lr_schedule": "cosine",
              "class_weights": [1.0] * 11, "early_stopping_patience": 0, **changes}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_pack_round_trip_and_group_split(tmp_path):
    pack = _fake_pack(tmp_path / "pack")
    index, images, labels = camvid_screen_data.load_pack(pack)
    assert [e["group"] for e in index["examples"]] == ["A", "A", "B", "A", "B", "A"]
    assert images[0].shape == (40, 48, 3) and labels[0].dtype == np.uint8
    assert labels[2][0, 0] == 255 and labels[2][10, 30] == 5  # lossless labels, void kept
    config = camvid_screen.resolve_config(_config(tmp_path))
    train, validation = camvid_screen_data.split_examples(config, index)
    assert (train, validation) == ([0, 1, 3, 5], [2, 4])  # group B whole on one side
    config.validation_groups, config.train_split = None, "train"
    assert camvid_screen_data.split_examples(config, index) == ([0, 1, 2, 3, 4], [5])
    config.train_split = "train[:3]"
    with pytest.raises(ValueError, match="splits"):
        camvid_screen_data.split_examples(config, index)


def test_augment_pair_moves_image_and_label_together():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    label = rng.integers(0, 11, (40, 48), dtype=np.uint8)
    for seed in range(6):
        # Scale 1, no jitter: a crop of the image or of its mirror, the same one for the label.
        out_image, out_label = camvid_screen_data.augment_pair(
            image, label, np.random.default_rng(seed), (32, 32), scale_range=(1, 1),
            photometric=False)
        found = [(flip, top, left) for flip in (False, True) for top in range(9)
                 for left in range(17)
                 if np.array_equal((image[:, ::-1] if flip else image)[top:top + 32, left:left + 32],
                                   np.round(out_image * 255).astype(np.uint8))]
        assert len(found) == 1
        flip, top, left = found[0]
        assert np.array_equal((label[:, ::-1] if flip else label)[top:top + 32, left:left + 32],
                              out_label)
    # Scale 0.5 of a 40x48 pair into 64x64: void-padded label, zero-padded image, same place.
    out_image, out_label = camvid_screen_data.augment_pair(
        image, label, np.random.default_rng(0), (64, 64), scale_range=(0.5, 0.5))
    padded = out_label == 255
    assert padded.sum() == 64 * 64 - 20 * 24
    assert set(np.unique(out_label[~padded])) <= set(np.unique(label))
    assert out_image.dtype == np.float32 and 0 <= out_image.min() and out_image.max() <= 1


def test_numpy_pipeline_matches_pixelwise_transforms():
    """The port against the tf.data pipeline's own functions (TensorFlow is here, not on the GPU box)."""
    tf = pytest.importorskip("tensorflow")
    from pixelwise.data import transforms as transforms

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    label = rng.integers(0, 12, (90, 120, 1), dtype=np.uint8)
    for size in [(48, 64), (64, 64), (128, 160)]:
        assert np.array_equal(camvid_screen_data.resize_label(label[..., 0], size),
                              transforms.resize_label(label, size).numpy()[..., 0])
        reference = np.clip(np.round(transforms.resize_image(image, size).numpy()), 0, 255)
        difference = np.abs(camvid_screen_data.resize_image(image, size) - reference)
        assert difference.mean() < 1.0 and difference.max() <= 4  # Pillow vs TF bilinear
    seeds = tf.random.experimental.stateless_split(tf.constant([3, 4], tf.int64), num=4)
    draws = [float(tf.random.stateless_uniform([], seeds[i], low, high)) for i, (low, high) in
             enumerate([(-32 / 255, 32 / 255), (0.5, 1.5), (0.5, 1.5), (-0.05, 0.05)])]
    floats = image.astype(np.float32) / 255
    expected = transforms._photometric_jitter(tf.constant(floats), seeds, 3).numpy()
    np.testing.assert_allclose(camvid_screen_data.photometric_jitter(floats, *draws), expected,
                               atol=1e-5)


@pytest.mark.slow  # ~6 s: a tiny screening run
def test_run_writes_results(tmp_path):
    pack = _fake_pack(tmp_path / "pack")
    out = tmp_path / "results.json"
    config = str(_config(tmp_path))
    results = camvid_screen.run(pack, [config + "@model_args.batch_norm=true",
                                       config + "@model_args.no_such_option=1"],
                                sets=["learning_rate=1e-3"], names=["tiny", "broken"],
                                out=str(out), workers=2)
    entry, broken = json.loads(out.read_text())
    assert entry == json.loads(json.dumps(results[0]))
    assert broken["name"] == "broken" and "no_such_option" in broken["error"]  # recorded, not fatal
    assert entry["name"] == "tiny" and entry["config"]["model_args"] == {
        "base_filters": 4, "batch_norm": True}
    assert (entry["num_train"], entry["num_validation"], entry["steps_per_epoch"]) == (4, 2, 2)
    assert [row["epoch"] for row in entry["history"]] == [1] and entry["best_epoch"] == 1
    for which in ("best", "last"):
        native = entry["native"][which]
        per_class = [v for v in native["per_class_iou"].values() if v is not None]
        assert list(native["per_class_iou"]) == list(CAMVID.class_names)
        assert native["mean_iou"] == pytest.approx(np.mean(per_class))
    assert entry["train_images_per_second"] > 0 and entry["wall_seconds"] > 0


@pytest.mark.slow  # ~25 s on 2 busy cores: JAX starts and compiles the U-Net in a fresh process
def test_run_under_jax_imports_no_tensorflow(tmp_path):
    pack = _fake_pack(tmp_path / "pack")
    out = tmp_path / "results.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    process = subprocess.run(
        [sys.executable, str(BENCHMARKS / "camvid_screen.py"), "run", "--pack", str(pack),
         "--config", str(_config(tmp_path)), "--set", "augment=false", "--out", str(out),
         "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    [entry] = json.loads(out.read_text())
    assert entry["backend"] == "jax" and entry["tensorflow_imported"] is False
    assert "best epoch 1/1" in process.stdout


def test_a_missing_pack_or_config_is_one_line_and_exit_status_2(tmp_path, capsys):
    config = Path(__file__).resolve().parents[1] / "configs/camvid-experiments/a-baseline-heldout.yaml"
    with pytest.raises(SystemExit) as exited:
        camvid_screen.main(["run", "--pack", str(tmp_path / "none"), "--config", str(config)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("camvid_screen.py: error: Expected a pack") and "Traceback" not in err
    assert not (tmp_path / "none").exists()
