"""``pixelwise train``: flags, typed --model-arg, precedence, and one-line errors before training."""

from __future__ import annotations

import argparse
import ast
import json
import os
from pathlib import Path

import pytest

import pixelwise.cli.train as cli_train
from pixelwise.cli import build_parser, main
from pixelwise.cli import parse_model_args, parse_value
from pixelwise.cli.train import overrides_from_args
from pixelwise.training.config import TrainConfig
from pixelwise.training.config_files import resolve_config


def parse(argv):
    args = build_parser().parse_args(["train", *argv])
    return resolve_config(getattr(args, "config", None), overrides_from_args(args),
                          resume=args.resume)


def test_help_states_the_chapters_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("(default: voc2007_semantic)", "(default: unet)", "(default: 256)",
                     "(default: 32)", "(default: 50)", "(default: adam)", "--mixed-precision",
                     "--strategy", "--resume", "--model-arg", "--dropout-schedule"):
        assert expected in text


def test_every_flag_default_is_read_from_train_config():
    subparsers = next(a for a in build_parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in subparsers.choices["train"]._actions}
    defaults = TrainConfig()
    # Every option has a flag (model_args: the repeatable --model-arg, default {}).
    assert set(TrainConfig.fields()) - set(actions) == {"model_args"}
    for name in TrainConfig.fields():
        if name == "model_args":
            continue
        value = getattr(defaults, name)
        if value is None:  # the help says what no value means, e.g. "(default: download)"
            assert actions[name].help.endswith(")") and "(default: None)" not in actions[name].help
            assert actions[name].help.count("(default: ") == 1, (name, actions[name].help)
        else:
            assert actions[name].help.endswith(f"(default: {value})"), (name, actions[name].help)
    # The module spells no default of its own: the only `default=` is --resume's flag off.
    tree = ast.parse(Path(cli_train.__file__).read_text())
    given = [(call.args[0].value if call.args else None)
             for call in ast.walk(tree) if isinstance(call, ast.Call)
             for keyword in call.keywords if keyword.arg == "default"]
    assert given == ["--resume"]
    # ... and no help text states one: "(default: " is written once, by the helper that reads
    # TrainConfig.
    stated = [node.value for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and "default:" in str(node.value)]
    assert stated == [" (default: "]


def test_model_args_are_typed():
    assert [parse_value(v) for v in ("16", "-2", "0.5", "1e-3", "True", "no", "null", "same")] == [
        16, -2, 0.5, 1e-3, True, False, None, "same"]
    assert parse_model_args(["base_filters=16", "batch-norm=true", "padding=same"]) == {
        "base_filters": 16, "batch_norm": True, "padding": "same"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_model_args(["base_filters"])


def test_only_given_flags_override_the_config_file(tmp_path):
    path = tmp_path / "camvid.yaml"
    path.write_text("dataset: camvid\nbatch_size: 8\nepochs: 30\naugment: false\n"
                    "model_args: {base_filters: 16}\n")
    config = parse(["--config", str(path), "--epochs", "3", "--model-arg", "batch_norm=true",
                    "--mixed-precision", "bf16", "--dropout-schedule", "0.5,0.1,0.9"])
    assert (config.dataset, config.batch_size, config.epochs, config.augment) == (
        "camvid", 8, 3, False)
    assert config.model_args == {"base_filters": 16, "batch_norm": True}
    assert config.mixed_precision == "bf16" and config.dropout_schedule == [0.5, 0.1, 0.9]
    assert parse(["--config", str(path), "--augment"]).augment is True
    assert parse([]) == TrainConfig().validated()
    assert parse(["--image-size", "192x256"]).image_size == [192, 256]


def test_resume_reads_the_run_folder_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stored = TrainConfig(dataset="camvid", epochs=5, out=str(run)).validated().to_dict()
    (run / "config.json").write_text(json.dumps(stored))
    config = parse(["--resume", "--out", str(run), "--epochs", "8"])
    assert (config.dataset, config.epochs) == ("camvid", 8)


def _error(capsys, argv) -> str:
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path):
    run = tmp_path / "existing"
    run.mkdir()
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    exists = _error(capsys, ["--out", str(run)])
    # The library names the Python arguments; the CLI adds the flag of each.
    assert "already holds a run; pass resume=True to continue it, or out='runs/NEW_NAME'" in exists
    assert exists.endswith("(command line: --resume for resume=, --out for out=)")
    assert (run / "history.csv").read_text() == "epoch,loss\n0,1.0\n"
    assert "holds no run" in _error(capsys, ["--resume", "--out", str(tmp_path / "none")])
    assert "pass out='runs/NAME'" in _error(capsys, ["--resume"])
    assert "KEY=VALUE" in _error(capsys, ["--model-arg", "oops", "--out", str(tmp_path / "a")])
    assert "image size" in _error(capsys, ["--image-size", "big", "--out", str(tmp_path / "b")])
    assert "start <= cap < 1" in _error(capsys, ["--dropout-schedule", "0.5,0.1,1.5"])
    assert "TF_CONFIG" in _error(capsys, ["--strategy", "multi-worker", "--out",
                                          str(tmp_path / "c")])
    missing = _error(capsys, ["--config", str(tmp_path / "nope.yaml")])
    assert "nope.yaml" in missing and "(command line: --config for config_file=)" in missing
    assert not any((tmp_path / name).exists() for name in "abc")


def test_run_folder_below_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in _error(capsys, ["--out", str(tmp_path / "file" / "run")])
    assert "is not a folder" in _error(capsys, ["--out", str(tmp_path / "file")])


def test_resume_with_another_config_names_the_python_argument_and_the_flag(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stored = TrainConfig(dataset="synthetic_shapes", model="unet", epochs=2,
                         out=str(run)).validated().to_dict()
    (run / "config.json").write_text(json.dumps(stored))
    message = _error(capsys, ["--resume", "--out", str(run), "--model-arg", "base_filters=4",
                              "--learning-rate", "0.5"])
    assert f"Cannot resume {str(run)!r} with a different configuration (" in message
    assert "learning_rate: " in message and "-> 0.5" in message and "model_args: " in message
    assert "start a new run with out='runs/NEW_NAME'." in message
    assert message.endswith("(command line: --out for out=)")
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]  # nothing written


def test_model_arg_maps_to_model_args_for_the_flag_hint():
    from pixelwise.cli import command_flags, with_flags

    parser = build_parser()
    flags = command_flags(parser, parser.parse_args(["train"]))
    # Every TrainConfig field a message may name has its flag (--model-arg's dest differs).
    assert set(TrainConfig.fields()) <= set(flags)
    assert flags["model_args"] == "--model-arg" and flags["learning_rate"] == "--learning-rate"
    assert with_flags("pass model_args={'encoder': NAME}.", flags) == \
        "pass model_args={'encoder': NAME}. (command line: --model-arg for model_args=)"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux' /proc")
def test_run_folder_where_no_folder_can_be_made(capsys):
    """/proc passes every permission check, as root too, and refuses mkdir with a bare [Errno 2]."""
    message = _error(capsys, ["--out", "/proc/pixelwise-run"])
    assert "Cannot write the run folder '/proc/pixelwise-run' (out=)" in message
    assert "pass out= a folder you can write" in message and "--out for out=" in message
    assert "[Errno" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_run_folder(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert "not writable" in _error(capsys, ["--out", str(locked / "run")])
    finally:
        locked.chmod(0o700)


def test_committed_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.y*ml"))
    assert configs, "configs/ holds example training configs"
    for path in configs:
        resolve_config(path)  # raises ValueError naming any unknown or bad option
