"""`pixelwise models list | summary | plot`."""

from __future__ import annotations

import shutil

import pytest

from pixelwise.cli import main
from pixelwise.cli.models import parse_input_size, parse_model_args


def test_list_names_every_registered_model_with_its_options(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "unet " in out and "original_unet " in out
    assert "base_filters=128" in out and "base_filters=64" in out and "dropout_rate=None" in out
    # One name for one idea: every model's size argument is input_size=(height, width, channels).
    assert "input_size=(256, 256, 3)" in out and "input_size=(572, 572, 1)" in out
    assert "input_shape" not in out


def test_summary_prints_parameters_output_shape_and_gflops(capsys):
    assert main(["models", "summary", "unet"]) == 0
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
    assert main(["models", "summary", "unet", "--input-size", "NonexNonex3",
                 "--model-arg", "base_filters=4"]) == 0
    assert "give a concrete --input-size" in capsys.readouterr().out


@pytest.mark.parametrize("size, channels", [("64", 3), ("64x128", 3), ("64,128,3", 3),
                                            (["64", "128", "3"], 3), ("64x128x5", 5)])
def test_input_size_n_or_hxw_keeps_the_models_channels(capsys, size, channels):
    """N and HxW take the model's default channel count; 0.1.0's "H W C" tokens still parse."""
    tokens = size if isinstance(size, list) else [size]
    assert main(["models", "summary", "unet", "--input-size", *tokens,
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
    (["models", "plot", "unet", "--out", "unet.gif"], ".png"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz 'dot' not installed (apt-get install graphviz)")
def test_plot_writes_an_image(tmp_path, capsys):
    out = tmp_path / "plots" / "unet.png"
    assert main(["models", "plot", "unet", "--out", str(out),
                 "--model-arg", "base_filters=4", "--input-size", "64", "64", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_plot_without_graphviz_names_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' on this PATH
    assert main(["models", "plot", "unet", "--out", str(tmp_path / "u.png"),
                 "--model-arg", "base_filters=4", "--input-size", "64", "64", "3"]) == 2
    err = capsys.readouterr().err
    assert "Graphviz" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "u.png").exists()


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
