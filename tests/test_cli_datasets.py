"""`pixelwise datasets list|build|info` run in-process through pixelwise.cli.main."""

from __future__ import annotations

import pytest

from pixelwise.cli import main
from voc_fixture import write_voc_fixture


@pytest.fixture(scope="module")
def voc_manual(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_voc")
    return write_voc_fixture(root / "manual", 2007), root


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


@pytest.mark.parametrize("command", ["build", "info"])
def test_help_states_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["datasets", command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--data-dir" in out and "(default: None)" in out
