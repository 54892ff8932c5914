"""Every ``--help`` of every subcommand, read as a person reads it.

The test walks the real parser (``pixelwise``, then each subcommand, recursively) and checks
each option: it has help, states its default once (never "(default: None)"), a required
option says it is required, no reStructuredText or Markdown markup shows, and one idea has
one name: a table below gives every option's meaning, each meaning has exactly one option,
and the sizes are ``--image-size N|HxW`` or ``--input-size N|HxW...`` with one meaning each.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from pixelwise.cli import build_parser

#: Every visible option of every command -> what it means. A new option needs a line here,
#: and a meaning no other option has: that is how "one idea, one name" is kept.
MEANINGS = {
    "--help": "show the help",
    "--version": "print the version",
    # datasets
    "--data-dir": "TFDS data directory of prepared datasets",
    "--manual-dir": "folder of manually downloaded source files to build a dataset from",
    "--download-dir": "where TFDS downloads and extracts",
    "--split": "the one split (or slice) a command reads",
    "--num-examples": "how many examples to show",
    "--alpha": "opacity of a label drawn over its image",
    "--name": "the dataset name of an export (folder or .zip)",
    "--validation-fraction": "share of an export's examples that becomes its validation split",
    # datasets build, predict: Apache Beam
    "--beam": "run the command's work as an Apache Beam pipeline",
    "--beam-options": "Apache Beam pipeline options passed to the runner",
    # train
    "--config": "YAML/JSON file of training options",
    "--resume": "continue the run in --out",
    "--dataset": "dataset name, or the path of an export",
    "--train-split": "split trained on",
    "--validation-split": "split that selects the best epoch",
    "--groups": "rule naming each example's group (frames of one video), kept on one side of a split",
    "--validation-groups": "groups of the training split held out as validation",
    "--image-size": "size images and labels are resized to (the training pipeline's)",
    "--batch-size": "examples (images or tiles) per forward pass",
    "--augment": "training augmentation on/off",
    "--model": "registered model name",
    "--model-arg": "a model builder option KEY=VALUE",
    "--epochs": "number of epochs",
    "--optimizer": "optimizer",
    "--learning-rate": "initial learning rate",
    "--lr-schedule": "learning-rate schedule",
    "--weight-decay": "AdamW weight decay",
    "--freeze-encoder-epochs": "epochs the pretrained encoder stays frozen",
    "--encoder-lr-multiplier": "the encoder's learning rate relative to the decoder's",
    "--loss": "loss kind",
    "--reconstruction-weight": "weight of the Dice/L2 loss term",
    "--class-weights": "per-class loss weights",
    "--dropout-schedule": "encoder dropout per epoch",
    "--early-stopping-patience": "epochs without improvement before stopping",
    "--seed": "random seed",
    "--mixed-precision": "dtype policy",
    "--strategy": "tf.distribute strategy",
    "--jit-compile": "XLA",
    "--image-summaries": "validation images drawn to TensorBoard",
    "--verbose": "Keras fit verbosity",
    "--out": "where the command writes its output",
    # evaluate, predict, export: the model
    "--run": "a run folder written by train",
    "--checkpoint": "which checkpoint (or .keras file)",
    "--class-set": "class set of a .keras file outside a run",
    "--input-size": "the size the model sees (models: its whole input_size)",
    "--mode": "whole-image or sliding-window (tiled) prediction",
    "--tta": "test-time augmentation",
    "--tile": "tile side of overlap-tile prediction",
    "--overlap": "tile overlap",
    "--min-area": "smallest region that gets a box",
    "--file-list": "text file naming the input images, one per line",
    "--boundary-ratio": "band width of boundary IoU",
    "--bootstrap-resamples": "resamples of the mean-IoU interval",
    "--format": "export format",
    "--parity-images": "validation images an export is checked against the Keras model on",
    "--min-agreement": "least pixel agreement with the Keras model an export must reach",
    "--calibration-images": "training images an int8 export is calibrated on",
    "--exports": "parity files (or folders of them) of exported models",
    "--overwrite": "replace existing output",
    # models
    "--num-classes": "output channels of a built model",
    "--layers": "print Keras' layer summary",
    "--expand-nested": "draw nested layers",
    "--no-shapes": "omit tensor shapes in a drawing",
    "--dpi": "resolution of a raster drawing",
}
#: Second spellings on the *same* option (argparse aliases shown in --help).
SHORT_FORMS = {"-h": "--help", "-n": "--num-examples", "--lr": "--learning-rate",
               "--no-augment": "--augment"}
#: pixelwise 0.1.0's spellings, hidden from --help for one release: (command, old) -> new.
HIDDEN_ALIASES = {("predict", "--size"): "--input-size", ("export", "--size"): "--input-size"}
#: Options whose value names different kinds of things per command (all "where output goes").
METAVAR_MAY_DIFFER = {"--out", "--input-size"}
MARKUP = re.compile(r"``|`|::|:func:|:class:|:mod:|:meth:|:attr:")


def _parsers(parser=None, command=""):
    parser = parser or build_parser()
    yield command, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{command} {name}".strip())


PARSERS = list(_parsers())


def _options(parser):
    return [a for a in parser._actions if a.option_strings]


def _visible(parser):
    return [a for a in _options(parser) if a.help != argparse.SUPPRESS]


def _help(parser, action) -> str:
    """The help text of ``action`` exactly as ``--help`` prints it (one line)."""
    return " ".join(parser._get_formatter()._expand_help(action).split())


def test_every_command_is_walked():
    commands = {command for command, _ in PARSERS}
    assert {"", "datasets", "datasets list", "datasets build", "datasets info", "datasets browse",
            "models", "models list", "models summary", "models plot", "train", "evaluate",
            "predict", "export"} <= commands


@pytest.mark.parametrize("command, parser", PARSERS, ids=[c or "pixelwise" for c, _ in PARSERS])
def test_help_states_each_default_once_and_marks_required_options(command, parser):
    for action in _visible(parser):
        text = _help(parser, action)
        name = "/".join(action.option_strings)
        assert text, f"pixelwise {command} {name} has no help"
        assert "(default: None)" not in text, (command, name, text)
        assert text.count("(default") <= 1, (command, name, text)
        if action.required:
            assert text.endswith("(required)") and "(default" not in text, (command, name, text)
        elif action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
            # A real default is stated (train's are, through argument_default=SUPPRESS + help).
            assert "(default" in text, (command, name, text)
    for action in parser._actions:  # positionals too
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)


@pytest.mark.parametrize("command, parser", PARSERS, ids=[c or "pixelwise" for c, _ in PARSERS])
def test_help_shows_no_markup(command, parser):
    text = parser.format_help()
    assert not MARKUP.search(text), (command, MARKUP.findall(text))
    assert "(default: None)" not in text


def test_one_idea_one_name():
    meanings = {}
    seen = {}  # option -> [(command, dest, metavar)]
    for command, parser in PARSERS:
        for action in _visible(parser):
            first = next(o for o in action.option_strings if o not in SHORT_FORMS)
            for option in action.option_strings:
                assert option in MEANINGS or SHORT_FORMS.get(option) == first, (
                    f"pixelwise {command} {option}: add its meaning to MEANINGS (a meaning no "
                    "other option has), or use the option that already means it")
            seen.setdefault(first, []).append((command, action.dest, action.metavar))
    for option in seen:
        meanings.setdefault(MEANINGS[option], []).append(option)
    assert all(len(options) == 1 for options in meanings.values()), meanings
    for option, uses in seen.items():
        # The same option stores the same value everywhere, under the same syntax.
        assert len({dest for _, dest, _ in uses}) == 1, (option, uses)
        if option not in METAVAR_MAY_DIFFER:
            assert len({metavar for _, _, metavar in uses}) == 1, (option, uses)
    # Sizes: two names, each one syntax (N|HxW, extended only by native / xC).
    sizes = {option for option in seen if "size" in option and option != "--batch-size"}
    assert sizes == {"--image-size", "--input-size"}
    for option in sizes:
        assert all(metavar.startswith("N|HxW") for _, _, metavar in seen[option]), seen[option]


def test_hidden_aliases_parse_to_the_same_value_and_stay_hidden():
    parser = build_parser()
    hidden = {(command, option) for command, sub in PARSERS for action in _options(sub)
              if action.help == argparse.SUPPRESS for option in action.option_strings}
    assert hidden == set(HIDDEN_ALIASES)
    required = {"predict": ["a.png", "--run", "runs/x", "--out", "o"],
                "export": ["--run", "runs/x", "--out", "o"]}
    for (command, old), new in HIDDEN_ALIASES.items():
        for value in ("32", "48x64"):
            given_old = parser.parse_args([command, *required[command], old, value])
            given_new = parser.parse_args([command, *required[command], new, value])
            assert vars(given_old) == vars(given_new)
            assert given_new.input_size == ((32, 32) if value == "32" else (48, 64))
        assert old not in build_parser()._subparsers._group_actions[0].choices[command].format_help()
    # Without either spelling, the documented default applies.
    assert parser.parse_args(["predict", *required["predict"]]).input_size == 512
    assert parser.parse_args(["predict", *required["predict"], "--size", "native"]).input_size == "native"


def test_learning_rate_is_the_config_files_key():
    """--learning-rate is the flag of TrainConfig.learning_rate (the YAML key); --lr a short form."""
    parser = build_parser()
    assert parser.parse_args(["train", "--lr", "3e-3"]).learning_rate == 3e-3
    assert parser.parse_args(["train", "--learning-rate", "1e-3"]).learning_rate == 1e-3


def test_datasets_list_starts_without_tensorflow():
    """`pixelwise datasets list` prints the names without importing TensorFlow (it took ~9 s)."""
    code = ("import sys; from pixelwise.cli import main; code = main(['datasets', 'list']); "
            "print(code, sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *names, last = done.stdout.splitlines()
    assert last == "0 []"
    from pixelwise.defaults import DATASET_NAMES

    assert names == list(DATASET_NAMES)


def test_dataset_names_are_the_registered_builders():
    from pixelwise.datasets import api
    from pixelwise.defaults import DATASET_NAMES

    assert list(DATASET_NAMES) == api.available()


@pytest.mark.parametrize("command, parser", PARSERS, ids=[c or "pixelwise" for c, _ in PARSERS])
def test_no_parser_accepts_abbreviated_options(command, parser):
    assert parser.allow_abbrev is False, f"`pixelwise {command}` accepts abbreviated options"


def test_an_abbreviation_is_refused_not_taken_for_a_longer_option(capsys):
    """`--encoder mobilenetv3small` was read as `--encoder-lr-multiplier mobilenetv3small`."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", "--encoder-lr", "0.1"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --encoder-lr 0.1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", "--encoder", "mobilenetv3small"])
    assert exited.value.code == 2


@pytest.mark.parametrize("argv", [["export", "--run", "r", "--out", "o"], ["evaluate", "--run", "r"],
                                  ["predict", "--run", "r", "--out", "o", "x.png"]])
def test_a_message_naming_model_size_gets_the_input_size_flag(argv):
    # The Python name of "the size the model sees" is model_size (PredictOptions,
    # export_model); its flag is --input-size, so the CLI must map one to the other.
    from pixelwise.cli import build_parser, command_flags, with_flags

    parser = build_parser()
    flags = command_flags(parser, parser.parse_args(argv))
    assert with_flags("Expected model_size=256.", flags).endswith(
        "(command line: --input-size for model_size=)")
