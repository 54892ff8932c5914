"""The training configuration (pixelwise.training.config, no TensorFlow) and the committed recipes.

The recipes (configs/*.yaml, and the experiments in configs/*/) parse, validate and build
what they name.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pixelwise import models
from pixelwise.class_sets import get_class_set
from pixelwise.training.config import DropoutRates, TrainConfig
from pixelwise.training.config_files import load_config_file
from pixelwise.runs.checks import check_resume
from pixelwise.datasets import api as datasets_api
from pixelwise.runs.folder import RunFolder

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))
# Dataset name -> class-set name, for the datasets the recipes use.
CLASS_SETS = {"camvid": "camvid", "voc2007_semantic": "voc", "voc2012_semantic": "voc",
              "isbi2012_membranes": "isbi2012", "synthetic_shapes": "synthetic_shapes"}


def test_the_camvid_recipes_are_committed():
    names = {str(path.relative_to(CONFIG_DIR)) for path in CONFIGS}
    assert {"camvid.yaml", "camvid-scratch.yaml", "camvid-long.yaml"} <= names


def _name(path: Path) -> str:
    return str(path.relative_to(CONFIG_DIR))


@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_config_parses_and_validates(path):
    values = load_config_file(path)
    unknown = set(values) - set(TrainConfig.fields())
    assert not unknown, f"{path.name} has keys TrainConfig does not know: {unknown}"
    config = TrainConfig.from_dict(values).validated()
    assert config.dataset in datasets_api.available()
    assert config.model in models.available()
    assert config.validation_groups or config.train_split != config.validation_split


@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_config_model_builds_at_its_image_size(path):
    config = TrainConfig.from_dict(load_config_file(path))
    class_set = get_class_set(CLASS_SETS[config.dataset])
    model = models.build(config.model, input_size=(*config.image_size, 3),
                         num_classes=class_set.num_classes, **config.model_args)
    # Training needs logits at the input size, one channel per class.
    assert tuple(model.output_shape) == (None, *config.image_size, class_set.num_classes)


def test_camvid_recipe_starts_from_imagenet_and_trains_on_all_labelled_images():
    # Issue 20: EfficientNet-Lite0 with its ImageNet weights, the design chosen on held-out
    # 0006R0 (experiment F, whose config differs only in its split); all of train + val.
    values = load_config_file(CONFIG_DIR / "camvid.yaml")
    config = TrainConfig.from_dict(values).validated()
    assert (config.dataset, config.train_split, config.validation_split) == (
        "camvid", "train+validation", "none")
    assert not config.validation_groups
    assert config.model_args["encoder"] == "efficientnet_lite0"
    assert config.model_args["encoder_weights"] == "imagenet"
    # TF's XLA runs the depthwise gradients 3-4x slower on CPU (BENCHMARKS.md).
    assert config.jit_compile is False
    design = load_config_file(CONFIG_DIR / "camvid-experiments" / "f-unet-lite0-heldout.yaml")
    split_keys = {"train_split", "validation_split", "validation_groups"}
    assert {k: v for k, v in design.items() if k not in split_keys} == \
        {k: v for k, v in values.items() if k not in split_keys}


def test_camvid_scratch_recipe_trains_from_scratch_on_all_labelled_images():
    # Issue 15: the design is selected on a held-out sequence (the experiments below); the
    # final recipe trains on all of train + val, with no validation (its last epoch).
    values = load_config_file(CONFIG_DIR / "camvid-scratch.yaml")
    config = TrainConfig.from_dict(values)
    assert (config.dataset, config.train_split, config.validation_split) == (
        "camvid", "train+validation", "none")
    assert not config.validation_groups
    # No key anywhere in the recipe names pretrained weights.
    assert not any("weight" in key and key not in ("class_weights", "weight_decay")
                   for key in values)
    assert not any("pretrain" in str(v).lower() or "imagenet" in str(v).lower()
                   for v in values.values())


@pytest.mark.parametrize("path", [CONFIG_DIR / "camvid-long.yaml",
                                  *sorted((CONFIG_DIR / "camvid-experiments").glob("*.yaml"))],
                         ids=_name)
def test_camvid_designs_are_selected_on_a_sequence_they_never_train_on(path):
    config = TrainConfig.from_dict(load_config_file(path))
    assert config.train_split == "train+validation" and config.validation_groups == ["0006R0"]


def test_config_resolution_and_resume_checks_need_no_tensorflow(tmp_path):
    """Resolving a config, checking a resume and parsing ``pixelwise train`` flags load no TF."""
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    stored = TrainConfig(dataset="camvid", epochs=5, dropout_schedule=[0.5, 0.1, 0.9],
                         out=str(run)).validated().to_dict()
    (run / "config.json").write_text(json.dumps(stored))
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 3}')
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    script = textwrap.dedent("""
        import sys
        from pixelwise.cli import build_parser
        from pixelwise.cli.train import overrides_from_args
        from pixelwise.runs.checks import check_resume
        from pixelwise.training.config_files import resolve_config
        from pixelwise.runs.folder import RunFolder
        args = build_parser().parse_args(["train", "--resume", "--out", sys.argv[1],
                                          "--epochs", "8",
                                          "--dropout-schedule", "0.5,0.1,0.9"])
        config = resolve_config(None, overrides_from_args(args), resume=True)
        print(config.dataset, config.epochs, check_resume(RunFolder(sys.argv[1]), config))
        print(sorted(m for m in ("tensorflow", "keras", "tensorflow_datasets") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(run)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["camvid 8 3", "[]"]


def test_check_resume_refuses_changed_options_and_finished_runs(tmp_path):
    run = RunFolder(tmp_path / "run")
    (run.backup_dir).mkdir(parents=True)
    config = TrainConfig(epochs=4, out=str(run.path)).validated()
    run.config_path.write_text(json.dumps(config.to_dict()))
    (run.backup_dir / "training_metadata.json").write_text('{"epoch": 2}')
    assert check_resume(run, config) == 2
    # epochs and batch size may change on resume; the loss may not.
    more = TrainConfig(epochs=9, batch_size=8, out=str(run.path)).validated()
    assert check_resume(run, more) == 2
    with pytest.raises(ValueError, match=r"loss: 'ce' -> 'ce\+dice'"):
        check_resume(run, TrainConfig(epochs=4, loss="ce+dice", out=str(run.path)).validated())
    (run.backup_dir / "training_metadata.json").write_text('{"epoch": 4}')
    with pytest.raises(ValueError, match="already finished 4 of 4"):
        check_resume(run, config)
    (run.backup_dir / "training_metadata.json").unlink()
    run.history_path.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(FileNotFoundError, match="BackupAndRestore state"):
        check_resume(run, config)


def test_dropout_schedule_is_parsed_and_checked_by_the_config():
    rates = DropoutRates.parse("0.5, 0.1, 0.9")
    assert rates == DropoutRates(0.5, 0.1, 0.9) == DropoutRates.parse([0.5, 0.1, 0.9])
    assert [rates.rate(epoch) for epoch in (0, 2, 4, 10)] == pytest.approx([0.5, 0.7, 0.9, 0.9])
    # A negative step lowers the rate, never below 0.
    assert DropoutRates(0.2, -0.15, 0.5).rate(3) == 0.0
    config = TrainConfig(dropout_schedule="0.5,0.1,0.9").validated()
    assert config.dropout_schedule == [0.5, 0.1, 0.9] and config.dropout_rates == rates
    assert TrainConfig().validated().dropout_rates is None
    for bad, match in (([0.5, 0.1, 1.0], "start <= cap < 1"), ("0.6,0.1,0.5", "start <= cap"),
                       ("0.5,0.1", "start,step,cap"), ("a,b,c", "start,step,cap")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(dropout_schedule=bad).validated()


@pytest.mark.parametrize("written, value", [
    ("1e-3", 1e-3), ("1E-3", 1e-3), ("1.0e-3", 1e-3), ("1e+3", 1e3), ("+1e3", 1e3), (".5", 0.5),
    ("5.", 5.0), ("-.5e-2", -0.005), ("1_000", 1000), ("-2", -2),
])
def test_yaml_reads_numbers_as_a_person_writes_them(tmp_path, written, value):
    """PyYAML alone (YAML 1.1) reads 1e-3 and +1e3 as strings; config files read them as numbers."""
    path = tmp_path / "c.yaml"
    path.write_text(f"weight_decay: {written}\nmodel_args: {{dropout_rate: {written}}}\n")
    values = load_config_file(path)
    assert values["weight_decay"] == value and values["model_args"]["dropout_rate"] == value
    assert type(values["weight_decay"]) is type(value)
    if value > 0:
        config = TrainConfig.from_dict({**values, "learning_rate": values["weight_decay"]})
        assert config.learning_rate == value and isinstance(config.learning_rate, float)


def test_a_quoted_number_is_read_as_the_number_it_spells(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: '1e-3'\nepochs: \"20\"\n")
    config = TrainConfig.from_dict(load_config_file(path))
    assert (config.learning_rate, config.epochs) == (0.001, 20)


def test_numbers_of_yaml_and_json_files_validate(tmp_path):
    yaml_file, json_file = tmp_path / "c.yaml", tmp_path / "c.json"
    yaml_file.write_text("learning_rate: 1e-3\nbatch_size: 1e1\nepochs: 2_0\nseed: +7\n"
                         "class_weights: [1e-1, .5, 2]\ndropout_schedule: [5e-1, 1e-1, 9e-1]\n")
    json_file.write_text('{"learning_rate": 1E-3, "batch_size": 10, "epochs": 20, "seed": 7, '
                         '"class_weights": [0.1, 0.5, 2], "dropout_schedule": [0.5, 0.1, 0.9]}')
    from_yaml = TrainConfig.from_dict(load_config_file(yaml_file))
    from_json = TrainConfig.from_dict(load_config_file(json_file))
    assert from_yaml == from_json
    assert (from_yaml.learning_rate, from_yaml.batch_size, from_yaml.epochs, from_yaml.seed) == (
        0.001, 10, 20, 7)
    assert type(from_yaml.batch_size) is int and from_yaml.class_weights == [0.1, 0.5, 2.0]


@pytest.mark.parametrize("line, message", [
    ("learning_rate: fast", "Expected learning_rate a number, e.g. 1e-3 or 0.001; received 'fast'"),
    ("learning_rate: 1e-3x", "received '1e-3x'"),
    ("learning_rate: .nan", "Expected learning_rate a number"),
    ("learning_rate: true", "Expected learning_rate a number"),
    ("batch_size: 2.5", "Expected batch_size an integer, e.g. 32 or 1e3; received 2.5"),
    ("epochs: ten", "Expected epochs an integer"),
    ("class_weights: [1, heavy]", "Expected class_weights a number"),
])
def test_a_value_that_is_not_a_number_is_a_clear_error(tmp_path, line, message):
    path = tmp_path / "c.yaml"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.from_dict(load_config_file(path))
