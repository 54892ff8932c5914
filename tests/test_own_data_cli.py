"""Your own data from the command line: build, info, browse, train, evaluate and predict by PATH.

Real exports (``own_data_fixture``), real TFDS builds, a 4-filter U-Net at 64 px for one
epoch. The run names its export by absolute path, so ``evaluate --run`` works from
another folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from own_data_fixture import CLASS_NAMES, write_cvat, write_images_masks


def _main(argv, capsys):
    from pixelwise.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_datasets_build_info_browse_by_path(tmp_path, capsys):
    export = write_images_masks(tmp_path / "cells", encoding="index", num_good=8)
    data = tmp_path / "data"
    code, out, err = _main(["datasets", "build", export.path, "--data-dir", data, "--name",
                            "my_cells", "--validation-fraction", "0.3"], capsys)
    assert code == 0, err
    assert str(data / "my_cells" / "1.0.0") in out
    assert f"From {export.path} (images + masks, classes from classes.txt); splits: validation " \
           "fraction 0.3 (seed 0)" in out
    for example_id, words in export.broken.items():
        assert f"train/{example_id}: " in out and words in out
    code, out, err = _main(["datasets", "info", "my_cells", "--data-dir", data], capsys)
    assert code == 0, err
    assert "Classes (3, ignore label 255" in out and "  train: " in out
    assert all(name in out for name in CLASS_NAMES)
    pictures = tmp_path / "pictures"
    code, out, err = _main(["datasets", "browse", "my_cells", "--data-dir", data, "--out",
                            pictures, "-n", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name.split("_0")[0] for p in pictures.iterdir()) == ["my_cells_train"] * 2
    # Options only make sense for a path.
    code, _, err = _main(["datasets", "build", "camvid", "--name", "x"], capsys)
    assert code == 2 and "not a path" in err


def test_unrecognised_folder_is_one_line_naming_the_layouts(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.md").write_text("#")
    code, _, err = _main(["datasets", "build", tmp_path / "stuff", "--data-dir", tmp_path], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "CVAT / Datumaro 'Segmentation mask 1.1'" in err and "Found: readme.md." in err


@pytest.mark.slow  # about 25 s on 2 shared cores: two tiny trainings, evaluations, predictions
@pytest.mark.parametrize("layout", ["cvat_zip", "images_masks"])
def test_train_evaluate_predict_on_an_export(tmp_path, capsys, monkeypatch, layout):
    if layout == "cvat_zip":
        export = write_cvat(tmp_path / "task", zipped=True)
    else:
        export = write_images_masks(tmp_path / "cells", encoding="color", num_good=8)
    data, run = tmp_path / "data", tmp_path / "runs" / "own"
    monkeypatch.chdir(tmp_path)
    relative = Path(export.path).relative_to(tmp_path)
    code, out, err = _main(["train", "--dataset", f"./{relative}", "--data-dir", data,
                            "--image-size", "64", "--batch-size", "2", "--epochs", "1",
                            "--model-arg", "base_filters=4", "--image-summaries", "0",
                            "--verbose", "0", "--out", run], capsys)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == str(export.path)  # absolute
    assert json.loads((run / "class_set.json").read_text())["class_names"] == list(CLASS_NAMES)

    monkeypatch.chdir(tmp_path / "runs")  # the run finds its export from anywhere
    code, out, err = _main(["evaluate", "--run", run], capsys)
    assert code == 0, err
    result = json.loads((run / "eval-validation.json").read_text())
    assert result["dataset"] == str(export.path)
    # Evaluated at native resolution on exactly the source's validation labels.
    from pixelwise.datasets import api

    builder = api.build(str(export.path), data_dir=data)
    names = [e["image/filename"].decode()
             for e in tfds.as_numpy(builder.as_dataset(split="validation"))]
    assert result["num_images"] == len(names) > 0
    labels = np.concatenate([export.labels[name].reshape(-1) for name in names])
    for class_id, name in enumerate(CLASS_NAMES):
        assert result["per_class"][name]["label_pixels"] == int((labels == class_id).sum())

    image = tmp_path / "photo.png"
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(image)
    code, out, err = _main(["predict", image, "--checkpoint", run / "checkpoints" / "best.keras",
                            "--class-set", export.path, "--out", tmp_path / "predicted"], capsys)
    assert code == 0, err
    counts = json.loads((tmp_path / "predicted" / "photo.json").read_text())["counts"]
    assert set(counts) == set(CLASS_NAMES) and sum(counts.values()) == 30 * 40
