"""runs.load_run: one way to get a model ready for use, from a run folder, a .keras file or a model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from run_fixture import TINY_CLASSES, tiny_unet, write_run


@pytest.fixture(scope="module")
def run_dir_48x64(make_run_dir, conv_model):
    """A run of conftest's ``conv_model`` trained at 48x64 (not square), checkpoints best and last."""
    return make_run_dir(conv_model, config={"image_size": [48, 64]}, checkpoints=("best", "last"))


def _same_outputs(loaded_model, model):
    x = np.random.default_rng(0).uniform(size=(1, 24, 40, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded_model(x)), np.asarray(model(x)), atol=1e-6)


def test_run_folder_brings_class_set_config_and_training_size(run_dir_48x64, conv_model):
    from pixelwise.runs.folder import RunFolder
    from pixelwise.runs.loading import load_run

    loaded = load_run(run_dir_48x64)
    assert loaded.class_set == TINY_CLASSES
    assert loaded.config == {"image_size": [48, 64]}
    assert loaded.image_size == (48, 64)
    assert loaded.checkpoint_path == run_dir_48x64 / "checkpoints" / "best.keras"
    _same_outputs(loaded.model, conv_model)
    last = load_run(RunFolder(run_dir_48x64), checkpoint="last")
    assert last.checkpoint_path.name == "last.keras" and last.image_size == (48, 64)


def test_keras_file_inside_a_run_uses_its_class_set_but_not_its_config(run_dir_48x64):
    from pixelwise.runs.loading import load_run

    loaded = load_run(run_dir_48x64 / "checkpoints" / "best.keras")
    assert loaded.class_set == TINY_CLASSES
    assert loaded.config is None and loaded.image_size is None
    assert loaded.checkpoint_path == run_dir_48x64 / "checkpoints" / "best.keras"


def test_loose_keras_file_needs_a_class_set_by_object_name_or_json(tmp_path, run_dir_48x64, conv_model):
    from pixelwise.runs.loading import load_run

    loose = tmp_path / "models" / "loose.keras"
    loose.parent.mkdir()
    shutil.copy(run_dir_48x64 / "checkpoints" / "best.keras", loose)
    with pytest.raises(ValueError, match="found no class_set.json .*; pass class_set= "):
        load_run(loose)
    with pytest.raises(ValueError, match="outputs 3 channels, the class set 'isbi2012' has 2"):
        load_run(loose, class_set="isbi2012")
    (tmp_path / "tiny.json").write_text(TINY_CLASSES.to_json())
    for class_set in (TINY_CLASSES, tmp_path / "tiny.json", str(tmp_path / "tiny.json")):
        loaded = load_run(loose, class_set=class_set)
        assert loaded.class_set == TINY_CLASSES and loaded.config is None
    _same_outputs(loaded.model, conv_model)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_run(loose, class_set=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="Unknown class set 'tiny'"):
        load_run(loose, class_set="tiny")


def test_keras_model_in_memory(conv_model):
    from pixelwise.class_sets import VOC
    from pixelwise.runs.loading import load_run

    loaded = load_run(conv_model, TINY_CLASSES)
    assert loaded.model is conv_model and loaded.image_size is None
    assert loaded.config is None and loaded.checkpoint_path is None
    assert load_run(tiny_unet(input_size=(64, 128)), TINY_CLASSES).image_size == (64, 128)
    with pytest.raises(ValueError, match="class set"):
        load_run(conv_model)
    with pytest.raises(ValueError, match="mismatch"):
        load_run(conv_model, VOC)


def test_loaded_run_passes_through_or_takes_another_class_set(conv_model):
    from pixelwise.class_sets import ClassSet, VOC
    from pixelwise.runs.loading import load_run

    loaded = load_run(conv_model, TINY_CLASSES)
    assert load_run(loaded) is loaded
    renamed = ClassSet("other", ("a", "b", "c"), TINY_CLASSES.palette)
    assert load_run(loaded, renamed).class_set == renamed and load_run(loaded, renamed).model is conv_model
    with pytest.raises(ValueError, match="mismatch"):
        load_run(loaded, VOC)


def test_run_folder_errors_say_what_is_missing(tmp_path, conv_model):
    from pixelwise.runs.loading import load_run

    with pytest.raises(FileNotFoundError, match="does not exist; pass run= an existing run folder"):
        load_run(tmp_path / "nowhere")
    empty = write_run(tmp_path / "empty", conv_model, checkpoints=())
    with pytest.raises(FileNotFoundError, match="no best checkpoint"):
        load_run(empty)
    square = write_run(tmp_path / "square", conv_model, config={"image_size": 32})
    assert load_run(square).image_size == (32, 32)
    odd = write_run(tmp_path / "odd", conv_model, config={"image_size": "wide"})
    with pytest.raises(ValueError, match=r"image_size as \[height, width\].*config.json"):
        load_run(odd)
    (square / "class_set.json").unlink()
    with pytest.raises(FileNotFoundError, match="no class_set.json"):
        load_run(square)
    assert json.loads((square / "config.json").read_text()) == {"image_size": 32}


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_a_truncated_checkpoint_is_called_corrupt_and_names_the_sound_one(tmp_path, run_dir_48x64, conv_model):
    from pixelwise.runs.loading import load_run

    run = tmp_path / "run"
    shutil.copytree(run_dir_48x64, run)
    best, last = run / "checkpoints" / "best.keras", run / "checkpoints" / "last.keras"
    _truncate(best)  # a save or copy cut short: the zip's central directory is gone
    with pytest.raises(ValueError) as raised:
        load_run(run)
    message = str(raised.value)
    assert f"Checkpoint {str(best)!r} is corrupt" in message and "truncated" in message
    assert f"pass checkpoint='last' to use {str(last)!r}" in message
    assert "File not found" not in message
    _same_outputs(load_run(run, checkpoint="last").model, conv_model)  # the fix the message gives works

    _truncate(last, keep=0.99)  # both cut short: nothing to suggest but the remedy
    for checkpoint in ("best", "last", str(last)):
        with pytest.raises(ValueError, match="is corrupt") as raised:
            load_run(run, checkpoint=checkpoint)
        assert "checkpoint=" not in str(raised.value) and "train again" in str(raised.value)


def test_a_keras_zip_with_a_truncated_weights_file_is_called_corrupt(tmp_path, run_dir_48x64):
    import zipfile

    from pixelwise.runs.loading import load_run

    run = tmp_path / "run"
    shutil.copytree(run_dir_48x64, run)
    best = run / "checkpoints" / "best.keras"
    with zipfile.ZipFile(run_dir_48x64 / "checkpoints" / "best.keras") as source, \
            zipfile.ZipFile(best, "w") as damaged:
        for name in source.namelist():
            data = source.read(name)
            damaged.writestr(name, data[:len(data) // 2] if name.endswith(".h5") else data)
    with pytest.raises(ValueError, match=r"is corrupt \(.*truncated file.*checkpoint='last'"):
        load_run(run)
