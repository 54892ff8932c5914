"""`pixelwise datasets list|build|info|browse` run in-process through pixelwise.cli.main."""

from __future__ import annotations

import inspect
import re

import pytest
import tensorflow_datasets as tfds

from pixelwise import defaults as dataset_defaults
from pixelwise.cli import build_parser, main
from pixelwise.datasets import api
from pixelwise.datasets.browse import browse


@pytest.fixture(scope="module")
def voc_manual(voc2007, tmp_path_factory):
    """(the session's VOC 2007 fixture, a folder for this module's data dir)."""
    return voc2007, tmp_path_factory.mktemp("cli_voc")


def test_list(capsys):
    assert main(["datasets", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert "voc2007_semantic" in names and "voc2012_semantic" in names


def test_build_prints_counts_skips_and_location(voc_manual, capsys):
    fixture, root = voc_manual
    data_dir = root / "data"
    assert main(["datasets", "build", "voc2007_semantic", "--data-dir", str(data_dir),
                 "--manual-dir", str(fixture.root)]) == 0
    out = capsys.readouterr().out
    assert str(data_dir / "voc2007_semantic" / "1.0.0") in out
    for split, count in fixture.num_examples.items():
        assert f"{split}: {count} examples ({len(fixture.skipped[split])} skipped)" in out
    for split, broken in fixture.skipped.items():
        for example_id in broken:
            assert f"{split}/{example_id}: " in out
    assert f"Skipped {sum(len(b) for b in fixture.skipped.values())} example(s)" in out


def test_info_after_build(voc_manual, capsys):
    fixture, root = voc_manual
    main(["datasets", "build", "voc2007_semantic", "--data-dir", str(root / "data"),
          "--manual-dir", str(fixture.root)])
    capsys.readouterr()
    assert main(["datasets", "info", "voc2007_semantic", "--data-dir", str(root / "data")]) == 0
    out = capsys.readouterr().out
    assert "'label': Image(shape=(None, None, 1), dtype=uint8)" in out
    assert f"train: {fixture.num_examples['train']} examples" in out
    assert " 15 person           (192, 128, 128)" in out
    assert "ignore label 255" in out


def test_info_not_prepared(tmp_path, capsys):
    assert main(["datasets", "info", "voc2012_semantic", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Not prepared" in out and "pixelwise datasets build voc2012_semantic" in out


def test_build_errors_are_one_line(tmp_path, capsys):
    code = main(["datasets", "build", "voc2007_semantic", "--data-dir", str(tmp_path / "data"),
                 "--manual-dir", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "VOCtrainval_06-Nov-2007.tar" in err and str(tmp_path / "missing") in err
    assert main(["datasets", "build", "no_such_dataset"]) == 2
    assert "voc2007_semantic" in capsys.readouterr().err


def _option_help(help_text: str, option: str) -> str:
    """The help of one option, whitespace normalised (argparse wraps it over lines)."""
    blocks = re.split(r"\n(?=  -)", help_text)
    matching = [b for b in blocks if re.match(rf"\s*(-\w \w+, )?{re.escape(option)}\b", b)]
    assert len(matching) == 1, (option, help_text)
    return " ".join(matching[0].split())


def _signature_defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


# command -> {option: (dest, the API's default for it)}
API_DEFAULTS = {
    "build": {"--data-dir": ("data_dir", _signature_defaults(api.build)["data_dir"]),
              "--manual-dir": ("manual_dir", _signature_defaults(api.build)["manual_dir"]),
              "--download-dir": ("download_dir", _signature_defaults(api.build)["download_dir"])},
    "info": {"--data-dir": ("data_dir", _signature_defaults(api.get_builder)["data_dir"])},
    # None: BROWSE_SPLIT, or a dataset's default or only split when it has no train.
    "browse": {"--split": ("split", None),
               "--num-examples": ("num_examples", _signature_defaults(browse)["num_examples"]),
               "--alpha": ("alpha", _signature_defaults(browse)["alpha"]),
               "--data-dir": ("data_dir", _signature_defaults(browse)["data_dir"]),
               "--manual-dir": ("manual_dir", _signature_defaults(browse)["manual_dir"])},
}


@pytest.mark.parametrize("command", sorted(API_DEFAULTS))
def test_help_states_the_api_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["datasets", command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option, (_, default) in API_DEFAULTS[command].items():
        text = _option_help(out, option)
        if default is None:  # the help says what None means, once: "(default: DATA_DIR/...)"
            assert text.count("(default: ") == 1 and "(default: None)" not in text, text
        else:
            assert text.endswith(f"(default: {default})"), option
    if "--data-dir" in API_DEFAULTS[command]:
        # None means TFDS' own folder; the help names it as TFDS resolves it.
        assert tfds.core.constants.get_default_data_dir() in _option_help(out, "--data-dir")


@pytest.mark.parametrize("command", sorted(API_DEFAULTS))
def test_parsed_defaults_are_the_api_defaults(command):
    args = build_parser().parse_args(["datasets", command, "voc2007_semantic"]
                                     + (["--out", "pictures"] if command == "browse" else []))
    for option, (dest, default) in API_DEFAULTS[command].items():
        assert getattr(args, dest) == default, option
    assert (dataset_defaults.BROWSE_NUM_EXAMPLES, dataset_defaults.BROWSE_ALPHA) == (8, 0.5)


def test_tfds_data_dir_follows_the_environment_like_tfds(monkeypatch, tmp_path):
    assert dataset_defaults.tfds_data_dir() == tfds.core.constants.get_default_data_dir()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert dataset_defaults.tfds_data_dir() == tfds.core.constants.get_default_data_dir() == str(tmp_path)
