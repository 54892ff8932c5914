"""`pixelwise models list | summary | plot`."""

from __future__ import annotations

import shutil

import pytest

from pixelwise.cli import main
from pixelwise.cli.models import parse_input_size, parse_model_args


def test_list_names_every_registered_model_with_its_options(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "unet " in out and "original_unet " in out and "encoder_unet " in out
    # No model has a default class count: every listing marks num_classes as required.
    listed = [line for line in out.splitlines() if "options:" in line]
    assert len(listed) == 6 and all("num_classes (required)" in line for line in listed)
    assert "num_classes=" not in out
    assert "base_filters=128" in out and "base_filters=64" in out and "dropout_rate=None" in out
    # One name for one idea: every model's size argument is input_size=(height, width, channels).
    assert "input_size=(256, 256, 3)" in out and "input_size=(572, 572, 1)" in out
    assert "input_shape" not in out


def test_summary_prints_parameters_output_shape_and_gflops(capsys):
    assert main(["models", "summary", "unet", "--num-classes", "21"]) == 0
    out = capsys.readouterr().out
    assert "26,917,781" in out
    assert "(None, 256, 256, 21)" in out
    assert "36.16" in out


def test_summary_passes_size_classes_and_model_args(capsys):
    code = main(["models", "summary", "original_unet", "--input-size", "64x96x3",
                 "--num-classes", "5", "--model-arg", "padding=same",
                 "--model-arg", "base_filters=2", "--model-arg", "batch_norm=true"])
    assert code == 0
    out = capsys.readouterr().out
    assert "(None, 64, 96, 3)" in out and "(None, 64, 96, 5)" in out


def test_summary_of_a_free_size_model_explains_missing_gflops(capsys):
    assert main(["models", "summary", "unet", "--input-size", "NonexNonex3", "--num-classes", "2",
                 "--model-arg", "base_filters=4"]) == 0
    assert "give a concrete --input-size" in capsys.readouterr().out


@pytest.mark.parametrize("size, channels", [("64", 3), ("64x128", 3), ("64,128,3", 3),
                                            (["64", "128", "3"], 3), ("64x128x5", 5)])
def test_input_size_n_or_hxw_keeps_the_models_channels(capsys, size, channels):
    """N and HxW take the model's default channel count; 0.1.0's "H W C" tokens still parse."""
    tokens = size if isinstance(size, list) else [size]
    assert main(["models", "summary", "unet", "--input-size", *tokens, "--num-classes", "2",
                 "--model-arg", "base_filters=4"]) == 0
    height, width = (64, 64) if tokens == ["64"] else (64, 128)
    assert f"(None, {height}, {width}, {channels})" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["models", "summary", "unet", "--input-size", "250", "250", "3"], "multiples of 64"),
    (["models", "summary", "unet", "--input-size", "256x256x3x1"], "N, HxW or HxWxC"),
    (["models", "summary", "unet", "--input-size", "big"], "N, HxW or HxWxC"),
    (["models", "summary", "segnet"], "Unknown model 'segnet'"),
    (["models", "summary", "unet", "--model-arg", "width"], "KEY=VALUE"),
    (["models", "summary", "unet", "--model-arg", "depth=5"], "does not take"),
    (["models", "summary", "unet", "--model-arg", "encoder=resnet50"], "use model 'encoder_unet'"),
    (["models", "plot", "unet", "--out", "unet.gif"], ".png"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(capsys, argv, message):
    assert main([*argv, "--num-classes", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz 'dot' not installed (apt-get install graphviz)")
def test_plot_writes_an_image(tmp_path, capsys):
    out = tmp_path / "plots" / "unet.png"
    assert main(["models", "plot", "unet", "--out", str(out), "--num-classes", "2",
                 "--model-arg", "base_filters=4", "--input-size", "64", "64", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_plot_without_graphviz_names_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' on this PATH
    assert main(["models", "plot", "unet", "--out", str(tmp_path / "u.png"), "--num-classes", "2",
                 "--model-arg", "base_filters=4", "--input-size", "64", "64", "3"]) == 2
    err = capsys.readouterr().err
    assert "Graphviz" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "u.png").exists()


@pytest.mark.parametrize("command", ["summary", "plot"])
def test_building_commands_require_the_number_of_classes(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main(["models", command, "unet", "--out", "unet.png"])
    assert exited.value.code == 2
    assert "the following arguments are required: --num-classes" in capsys.readouterr().err


def test_valid_combinations_list_the_encoder_unet_and_none_for_the_chapters(capsys):
    assert main(["models", "list"]) == 0
    combinations = capsys.readouterr().out.split("valid combinations")[1].splitlines()
    rows = {line.split()[0]: line for line in combinations if line.strip() and ":" not in line}
    assert "resnet50" in rows["encoder_unet"] and "efficientnet_lite0" in rows["encoder_unet"]
    assert "none" in rows["unet"] and "none" in rows["original_unet"]


def test_a_library_message_gets_the_flag_of_the_argument_it_names(capsys):
    # models.build says num_classes=...; the CLI adds the flag that sets it.
    code = main(["models", "summary", "unet", "--num-classes", "0", "--model-arg", "base_filters=4",
                 "--input-size", "64"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.endswith("(command line: --num-classes for num_classes=)")


def test_argument_parsers():
    assert parse_input_size("256x256x3") == (256, 256, 3)
    assert parse_input_size("512,512,1") == (512, 512, 1)
    assert parse_input_size("NonexNonex3") == parse_input_size("none,none,3") == (None, None, 3)
    assert parse_input_size(["256", "256", "3"]) == (256, 256, 3)  # 0.1.0's tokens
    assert parse_input_size("572", "original_unet") == (572, 572, 1)
    assert parse_input_size("64x96", "unet") == (64, 96, 3)
    assert parse_input_size(None) is None
    assert parse_model_args(["base_filters=16", "batch_norm=true", "dropout_rate=0.5",
                             "padding=same", "dropout_rate=null"]) == {
        "base_filters": 16, "batch_norm": True, "dropout_rate": None, "padding": "same"}
