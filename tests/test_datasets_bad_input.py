"""Bad dataset input fails at once, in one line, leaving nothing behind.

- A TFDS name that is not segmentation data pixelwise reads (``mnist``) is refused
  before anything is downloaded or written, by ``train``, ``evaluate`` and
  ``datasets build|browse``, with the list of what is accepted.
- An output folder that cannot be written (its parent is a file, or it is under
  ``/proc``; both fail for root too) is refused before any work, in one line naming
  the path and the option, exit code 2, and nothing is half-written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import pixelwise.datasets as pd
from pixelwise.cli import main
from pixelwise.datasets import api
from run_fixture import tiny_conv_model, write_run

ISBI_DUMMY = Path(pd.__file__).parent / "isbi2012_membranes" / "dummy_data"


def _main(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# -- datasets pixelwise cannot read ----------------------------------------------------------

class PixelwiseTestImageLabels(tfds.core.GeneratorBasedBuilder):
    """A TFDS dataset already in pixelwise's form: 'image' and a 1-channel 'label' image."""

    # TFDS looks for README/CITATIONS in the defining module's package; tests/ is none.
    __module__ = "pixelwise.datasets"
    VERSION = tfds.core.Version("1.0.0")
    LABEL = tfds.features.Image(shape=(None, None, 1))

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)), "label": self.LABEL,
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        yield from ()


class PixelwiseTestTensorLabels(PixelwiseTestImageLabels):
    __module__ = "pixelwise.datasets"
    LABEL = tfds.features.Tensor(shape=(None, None), dtype=np.int32)


class PixelwiseTestClassLabels(PixelwiseTestImageLabels):
    """Classification, not segmentation: one class per image."""

    __module__ = "pixelwise.datasets"
    LABEL = tfds.features.ClassLabel(num_classes=3)


def test_readable_datasets_are_pixelwise_builders_and_tfds_datasets_of_image_and_label(tmp_path):
    for name in pd.available():
        assert api.check_readable(name, tmp_path).name == name
    for name in ("pixelwise_test_image_labels", "pixelwise_test_tensor_labels"):
        assert api.check_readable(name, tmp_path).name == name
    with pytest.raises(ValueError, match=r"its 'label' is ClassLabel.*not a map of class ids"):
        api.check_readable("pixelwise_test_class_labels", tmp_path)
    assert _files_under(tmp_path) == []


def test_mnist_is_refused_before_anything_is_downloaded(tmp_path):
    with pytest.raises(ValueError) as err:
        api.build("mnist", data_dir=tmp_path / "tfds")
    message = str(err.value)
    assert "'mnist' is not segmentation data pixelwise can read" in message
    assert "ClassLabel" in message and "pixelwise datasets list" in message
    for name in pd.available():
        assert name in message
    assert not (tmp_path / "tfds").exists()


def _refused(argv, tmp_path, capsys):
    code, _, err = _main(argv, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "'mnist' is not segmentation data pixelwise can read" in err
    assert "voc2007_semantic" in err
    return err


def test_every_command_refuses_mnist_at_once_and_writes_nothing(tmp_path, capsys):
    data = ["--dataset", "mnist", "--data-dir", tmp_path / "tfds"]
    _refused(["train", *data, "--out", tmp_path / "run", "--epochs", 1], tmp_path, capsys)
    run = write_run(tmp_path / "model_run", tiny_conv_model(), config={"image_size": 32})
    before = _files_under(run)
    _refused(["evaluate", "--run", run, *data], tmp_path, capsys)
    assert _files_under(run) == before
    _refused(["datasets", "build", "mnist", "--data-dir", tmp_path / "tfds"], tmp_path, capsys)
    _refused(["datasets", "browse", "mnist", "--data-dir", tmp_path / "tfds",
              "--out", tmp_path / "pictures"], tmp_path, capsys)
    assert not (tmp_path / "tfds").exists()
    assert not (tmp_path / "run").exists() and not (tmp_path / "pictures").exists()


# -- output folders that cannot be written ---------------------------------------------------

def _unwritable(tmp_path: Path) -> list[tuple[Path, str]]:
    """(folder, expected reason) pairs that cannot be created, even by root."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [(a_file / "out", "Not a directory")]
    if Path("/proc/self").is_dir():  # Linux: no folder can be made in /proc
        cases.append((Path("/proc/pixelwise-test-unwritable") / "out", "No such file or directory"))
    return cases


@pytest.mark.parametrize("option", ["--data-dir", "--download-dir"])
def test_build_into_an_unwritable_folder_is_one_line(option, tmp_path, capsys):
    for folder, reason in _unwritable(tmp_path):
        before = _files_under(tmp_path)
        other = [] if option == "--data-dir" else ["--data-dir", tmp_path / "tfds"]
        code, out, err = _main(["datasets", "build", "isbi2012_membranes", option, folder, *other,
                                "--manual-dir", ISBI_DUMMY], capsys)
        what = "the prepared dataset" if option == "--data-dir" else "downloads"
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert f"Cannot write {what} to {folder}: {reason}" in err
        argument = option.lstrip("-").replace("-", "_")
        assert f"pass {argument}=FOLDER, a folder you can write" in err
        assert err.strip().endswith(f"(command line: {option} for {argument}=)")
        assert _files_under(tmp_path) == before


def test_browse_into_an_unwritable_folder_is_one_line_and_builds_nothing(tmp_path, capsys):
    for folder, reason in _unwritable(tmp_path):
        before = _files_under(tmp_path)
        code, out, err = _main(["datasets", "browse", "isbi2012_membranes", "--split", "validation",
                                "--out", folder, "--data-dir", tmp_path / "tfds",
                                "--manual-dir", ISBI_DUMMY], capsys)
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert f"Cannot write the pictures to {folder}: {reason}" in err and "--out" in err
        assert _files_under(tmp_path) == before  # the dataset was not built either


def test_failed_browse_leaves_no_output_folder(tmp_path, capsys):
    out = tmp_path / "new" / "pictures"
    code, _, err = _main(["datasets", "browse", "isbi2012_membranes", "--split", "nope",
                          "--out", out, "--data-dir", tmp_path / "tfds",
                          "--manual-dir", ISBI_DUMMY], capsys)
    assert code == 2 and "no split 'nope'" in err
    assert not (tmp_path / "new").exists()
