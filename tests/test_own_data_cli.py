"""Your own data from the command line: build, info, browse, train, evaluate and predict by PATH.

Real exports (``own_data_fixture``), real TFDS builds, a 4-filter U-Net at 64 px for one
epoch. The run names its export by absolute path, so ``evaluate --run`` works from
another folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
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


def _readme_own_data_commands() -> list[list[str]]:
    """The commands of the README's "Train on your own data", as written there."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Train on your own data", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0] for line in section.splitlines()]
    lines += re.findall(r"`(pixelwise datasets browse [^`]+)`", section)
    return [shlex.split(line)[1:] for line in lines if line.startswith("pixelwise ")]


@pytest.mark.slow  # about 30 s on 2 shared cores: a tiny training, a prediction, an evaluation
def test_readme_own_data_commands_on_a_default_only_cvat_export(tmp_path, capsys, monkeypatch):
    """A plain CVAT export has one subset, ``default``: no train, no validation. The README's
    commands, verbatim, build it, train with a seeded validation share the run makes itself,
    predict and browse."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    export = write_cvat(tmp_path / "exports" / "task_12", zipped=True, only_default=True)
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "photo.jpg")
    commands = {tuple(argv[:2]): argv for argv in _readme_own_data_commands()}
    assert set(commands) == {("datasets", "build"), ("train", "--dataset"),
                             ("predict", "photo.jpg"), ("datasets", "browse")}

    code, out, err = _main(commands["datasets", "build"], capsys)
    assert code == 0, err
    assert "default: 12 examples" in out and all(word in out for word in export.broken)
    tiny = ["--image-size", "64", "--batch-size", "2", "--epochs", "1", "--model-arg",
            "base_filters=4", "--image-summaries", "0", "--verbose", "0"]
    from pixelwise.data.splits import ValidationShareWarning

    with pytest.warns(ValidationShareWarning, match="task_12 has no 'train' or 'validation' split:"
                      r" validating on a seeded share of 'default' \(1 of 12 examples, fraction "
                      r"0.1, seed 0\) and training on the other 11\."):
        code, out, err = _main(commands["train", "--dataset"] + tiny, capsys)
    assert code == 0, err
    # The share, computed independently: the name ranked first by SHA-256 of "<seed>:<name>".
    names = sorted(export.labels)
    held_out = min(names, key=lambda n: hashlib.sha256(f"0:{n}".encode()).hexdigest())
    examples = sorted(p.name for p in (tmp_path / "runs" / "task_12" / "examples").iterdir())
    assert examples == [Path(held_out).with_suffix(".png").name]
    assert "(no example images" not in out

    code, out, err = _main(["evaluate", "--run", "runs/task_12"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "runs" / "task_12" / "eval-validation-share.json").read_text())
    assert result["num_images"] == 1
    for class_id, name in enumerate(CLASS_NAMES):
        expected = int((export.labels[held_out] == class_id).sum())
        assert result["per_class"][name]["label_pixels"] == expected

    code, out, err = _main(commands["predict", "photo.jpg"], capsys)
    assert code == 0, err
    counts = json.loads((tmp_path / "predictions" / "photo.json").read_text())["counts"]
    assert sum(counts.values()) == 30 * 40

    code, out, err = _main(commands["datasets", "browse"], capsys)
    assert code == 0, err
    drawn = sorted(p.name for p in (tmp_path / "browse").iterdir())
    assert len(drawn) == 8 and all(n.startswith("task_12_default_") for n in drawn)


def test_example_images_of_a_split_smaller_than_asked(tmp_path):
    """A split of 3 examples gives 3 images when 4 are asked for (TFDS refuses "[:4]")."""
    from pixelwise.datasets import api
    from pixelwise.datasets.samples import write_images

    export = write_cvat(tmp_path / "task")
    api.build(str(export.path), data_dir=tmp_path / "data")
    paths = write_images(str(export.path), "validation", tmp_path / "out", num_images=4,
                         data_dir=tmp_path / "data")
    assert sorted(p.stem for p in paths) == sorted(export.splits["validation"])
