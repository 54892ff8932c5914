"""The quickstart: the drawn ``synthetic_shapes`` dataset, ``configs/quickstart.yaml``, and the
closing lines of ``pixelwise train`` (every path they name exists; the commands they name run).

The builds here keep 8 examples per split (TFDS' ``max_examples_per_split``); the full
build (512/64/64) is checked by the builder folder's ``DatasetBuilderTestCase``.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pixelwise.class_sets import SYNTHETIC_SHAPES, class_set_from_info, get_class_set
from pixelwise.cli import build_parser, main
from pixelwise.training.config import TrainConfig
from pixelwise.training.config_files import load_config_file
from pixelwise.datasets import skipped_examples
from pixelwise.datasets.synthetic_shapes.synthetic_shapes_dataset_builder import (
    IMAGE_SIZE, SEED, SPLIT_IDS, SPLIT_SIZES, Builder,
)
from pixelwise.datasets.synthetic_shapes.synthetic_shapes_drawing import draw_scene

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
PER_SPLIT = 8


def _build(data_dir) -> Builder:
    builder = Builder(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(max_examples_per_split=PER_SPLIT))
    return builder


def _examples(builder, split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{image/filename: (image, label (H, W))}`` of a built split."""
    return {example["image/filename"].decode(): (example["image"], example["label"][..., 0])
            for example in tfds.as_numpy(builder.as_dataset(split=split))}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A TFDS data folder with synthetic_shapes built (8 examples per split), once per module."""
    folder = tmp_path_factory.mktemp("tfds")
    _build(folder)
    return folder


@pytest.fixture(scope="module")
def built(data_dir):
    builder = Builder(data_dir=str(data_dir))
    return builder, {split: _examples(builder, split) for split in SPLIT_SIZES}


def test_the_build_has_three_splits_the_features_and_the_class_set(built):
    builder, examples = built
    info = builder.info
    assert {name: split.num_examples for name, split in info.splits.items()} == {
        "train": PER_SPLIT, "validation": PER_SPLIT, "test": PER_SPLIT}
    assert SPLIT_SIZES == {"train": 512, "validation": 64, "test": 64}
    assert info.features["image"].shape == (None, None, 3)
    assert info.features["label"].shape == (None, None, 1)
    assert class_set_from_info(info) == SYNTHETIC_SHAPES == get_class_set("synthetic_shapes")
    assert info.metadata["ignore_label"] == 255
    assert skipped_examples(info) == {}
    for split_examples in examples.values():
        for image, label in split_examples.values():
            assert image.shape == (*IMAGE_SIZE, 3) and image.dtype == np.uint8
            assert label.shape == IMAGE_SIZE


def test_labels_hold_class_ids_and_void_only_and_every_class_occurs(built):
    _, examples = built
    labels = np.stack([label for split in examples.values() for _, label in split.values()])
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3, 4, 255}


def test_a_void_ring_separates_every_shape_from_the_background(built):
    # A disc, box or triangle pixel never touches a background pixel (4-neighbours): the
    # 1-pixel ring around each shape is void, like VOC's object boundaries.
    _, examples = built
    for split_examples in examples.values():
        for name, (_, label) in split_examples.items():
            shape = (label >= 1) & (label <= 3)
            background = np.pad(label == 0, 1)
            touches = (background[:-2, 1:-1] | background[2:, 1:-1]
                       | background[1:-1, :-2] | background[1:-1, 2:])
            assert not (shape & touches).any(), name


def test_each_example_is_the_scene_drawn_with_its_split_and_index_seed(built):
    _, examples = built
    for split, split_examples in examples.items():
        for filename, (image, label) in split_examples.items():
            index = int(re.fullmatch(rf"{split}_(\d{{4}})\.png", filename).group(1))
            drawn_image, drawn_label = draw_scene((SEED, SPLIT_IDS[split], index), IMAGE_SIZE)
            # Stored losslessly (PNG): the same pixels as drawn.
            np.testing.assert_array_equal(image, drawn_image)
            np.testing.assert_array_equal(label, drawn_label)


def test_two_builds_are_identical_and_no_scene_is_in_two_splits(built, tmp_path):
    _, examples = built
    again = _build(tmp_path)
    for split, split_examples in examples.items():
        rebuilt = _examples(again, split)
        assert sorted(rebuilt) == sorted(split_examples)
        for filename, (image, label) in split_examples.items():
            np.testing.assert_array_equal(rebuilt[filename][0], image)
            np.testing.assert_array_equal(rebuilt[filename][1], label)
    images = [image.tobytes() for split in examples.values() for image, _ in split.values()]
    assert len(set(images)) == len(images)


def test_the_quickstart_config_says_it_is_synthetic_and_trains_on_synthetic_shapes():
    config = TrainConfig.from_dict(load_config_file(CONFIG))
    assert config.dataset == "synthetic_shapes" and config.data_dir is None
    assert config.manual_dir is None  # nothing to download or provide
    assert "SYNTHETIC" in CONFIG.read_text()


def _results_block(text: str) -> str:
    return text.split("Results in ", 1)[1].split("\nNext:", 1)[0]


def _command(text: str, name: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.strip().startswith(f"pixelwise {name} ")]
    return shlex.split(line)[1:]


@pytest.mark.slow  # 20-30 s on 2 shared cores (load 6-8): one tiny epoch, then predict
def test_quickstart_trains_and_its_closing_lines_name_files_that_exist(data_dir, tmp_path, capsys):
    run = tmp_path / "runs" / "quickstart"
    code = main(["train", "--config", str(CONFIG), "--data-dir", str(data_dir),
                 "--image-size", "64", "--epochs", "1", "--batch-size", "4",
                 "--model-arg", "base_filters=4", "--image-summaries", "0", "--verbose", "0",
                 "--out", str(run)])
    out = capsys.readouterr().out
    assert code == 0, out
    results = _results_block(out)
    named = re.findall(re.escape(str(run)) + r"[^\s,():]*", results)
    for expected in ("curves.png", "metrics.json", "history.csv", "tensorboard/", "examples/"):
        assert str(run / expected).rstrip("/") in {p.rstrip("/") for p in named}, results
    for path in named:
        assert Path(path).exists(), path
    assert "best.keras, last.keras" in results
    assert (run / "checkpoints" / "best.keras").exists()
    examples = sorted((run / "examples").glob("*.png"))
    assert len(examples) == 4

    # The predict command runs as printed (its glob expanded, as a shell would).
    predict = _command(out, "predict")
    assert predict[predict.index("--input-size") + 1] == "64x64"
    argv = [match for arg in predict for match in (sorted(glob.glob(arg)) if "*" in arg else [arg])]
    assert main(argv) == 0
    predictions = Path(predict[predict.index("--out") + 1])
    for image in examples:
        assert (predictions / f"{image.stem}_overlay.png").exists()
        assert (predictions / f"{image.stem}_mask.png").exists()

    # The evaluate command names this run and parses.
    evaluate = _command(out, "evaluate")
    assert evaluate == ["evaluate", "--run", str(run)]
    assert build_parser().parse_args(evaluate).run == str(run)
