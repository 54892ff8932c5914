"""A ``.keras`` file saved before the layout move (issue 21) still loads, compiled and not.

tests/data/keras-0.2/config.json and metadata.json are the text parts of a ``.keras`` file saved
at commit 254843d, when the model, loss, metrics and AdamW lived in ``pixelwise.models.unet``,
``pixelwise.losses``, ``pixelwise.metrics`` and ``pixelwise.optimizers`` (see its README.md).
No checkpoint is committed: the test zips that config with weights trained now (the weights
file holds no module paths) and checks that the file loads in a fresh process that imports
nothing but ``pixelwise`` and ``keras`` (Keras finds each class by its registered name,
``pixelwise>AdamW``), and predicts what the model it came from predicts. Never regenerate the
config: one written by today's code would prove nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
import sys
from pathlib import Path

import numpy as np
import pytest

LEGACY = Path(__file__).parent / "data" / "keras-0.2"

#: Runs in a fresh interpreter; prints one JSON line of what it found.
LOAD_IN_A_FRESH_PROCESS = """
import json, sys
import numpy as np
import pixelwise, keras

path, run = sys.argv[1], sys.argv[2]
x = np.load(path.replace(".keras", "-input.npy"))
expected = np.load(path.replace(".keras", "-output.npy"))
found = {}

model = keras.saving.load_model(path)  # compile=True: loss, metrics and optimizer deserialize
found["compiled"] = {
    "model": type(model).__module__ + "." + type(model).__name__,
    "loss": type(model.loss).__module__ + "." + type(model.loss).__name__,
    "optimizer": type(model.optimizer).__module__ + "." + type(model.optimizer).__name__,
    "iterations": int(model.optimizer.iterations.numpy()),
    "max_difference": float(np.abs(model.predict(x, verbose=0) - expected).max()),
    # Its own predictions as labels: the loss and both metrics run, the metrics say 1.0.
    "evaluate": model.evaluate(x, expected.argmax(-1), verbose=0, return_dict=True),
}

plain = keras.saving.load_model(path, compile=False)
found["not_compiled"] = {
    "compiled": bool(plain.compiled) or getattr(plain, "optimizer", None) is not None,
    "max_difference": float(np.abs(plain.predict(x, verbose=0) - expected).max()),
}

from pixelwise.runs import RunFolder
loaded = pixelwise.load_run(RunFolder(run))
found["run"] = {
    "classes": list(loaded.class_set.class_names),
    "image_size": list(loaded.image_size),
    "max_difference": float(np.abs(loaded.model.predict(x, verbose=0) - expected).max()),
}
print(json.dumps(found))
"""


def _pre_move_file(directory: Path, class_set) -> Path:
    """``directory/unet.keras``: the pre-move config, weights (and optimizer state) trained now.

    The model is built, compiled and fitted one step as the file was (README.md), so its
    variables match the config; ``unet-input.npy`` / ``unet-output.npy`` hold what it predicts.
    """
    import keras  # noqa: F401

    from pixelwise import losses, metrics, models
    from pixelwise.training import optimizers

    model = models.build("unet", input_size=(64, 64, 3), num_classes=3, base_filters=4,
                         batch_norm=True, dropout_rate=0.1)
    model.compile(optimizer=optimizers.make_optimizer("adamw", 1e-3, 0.01),
                  loss=losses.segmentation_loss(class_set, "ce+dice"),
                  metrics=metrics.segmentation_metrics(class_set))
    rng = np.random.default_rng(0)
    x = rng.random((2, 64, 64, 3), dtype=np.float32)
    model.fit(x, rng.integers(0, 3, (2, 64, 64)), epochs=1, verbose=0)
    today = directory / "today.keras"
    model.save(today)
    with zipfile.ZipFile(today) as saved:
        weights = saved.read("model.weights.h5")
    path = directory / "unet.keras"
    with zipfile.ZipFile(path, "w") as legacy:
        legacy.writestr("metadata.json", (LEGACY / "metadata.json").read_bytes())
        legacy.writestr("config.json", (LEGACY / "config.json").read_bytes())
        legacy.writestr("model.weights.h5", weights)
    np.save(directory / "unet-input.npy", x[:1])
    np.save(directory / "unet-output.npy", model.predict(x[:1], verbose=0))
    return path


@pytest.fixture(scope="module")
def found(tmp_path_factory) -> dict:
    """What the fresh process found; the run folder wraps a copy of the pre-move file."""
    from pixelwise.class_sets import ClassSet

    classes = ClassSet(name="legacy", class_names=("c0", "c1", "c2"),
                       palette=((0, 0, 0), (80, 0, 0), (160, 0, 0)))
    path = _pre_move_file(tmp_path_factory.mktemp("legacy-file"), classes)
    run = tmp_path_factory.mktemp("legacy") / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.keras").write_bytes(path.read_bytes())
    (run / "class_set.json").write_text(classes.to_json())
    (run / "config.json").write_text(json.dumps({"image_size": 64}))
    done = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, str(path), str(run)],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, (
        f"expected the pre-move file {path} to load with only "
        f"'import pixelwise, keras'; the fresh process failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_pre_move_config_is_there_and_names_the_old_modules():
    names = sorted(p.name for p in LEGACY.iterdir())
    assert names == ["README.md", "config.json", "metadata.json"]
    config = (LEGACY / "config.json").read_text()
    # The point of the test: classes recorded under module paths that no longer exist.
    modules = set(re.findall(r'"module": "([^"]+)"', config))
    assert {"pixelwise.optimizers", "pixelwise.losses", "pixelwise.models.unet"} <= modules
    assert '"pixelwise>AdamW"' in config
    assert json.loads((LEGACY / "metadata.json").read_text())["date_saved"].startswith("2026-12-07@18:26")


def test_compiled_load_finds_the_moved_classes_and_predicts_as_before(found):
    compiled = found["compiled"]
    assert compiled["model"] == "pixelwise.models.unet.UNet"
    assert compiled["loss"] == "pixelwise.losses.SegmentationLoss"
    assert compiled["optimizer"] == "pixelwise.training.optimizers.AdamW"
    assert compiled["iterations"] == 1  # the optimizer's state came along (one step was taken)
    assert compiled["max_difference"] < 1e-5


def test_compiled_load_brings_a_working_loss_and_metrics(found):
    results = found["compiled"]["evaluate"]
    assert np.isfinite(results["loss"]) and results["loss"] > 0
    assert results["pixel_accuracy"] == pytest.approx(1.0)
    assert results["mean_iou"] == pytest.approx(1.0)


def test_load_without_compiling_predicts_as_before(found):
    assert found["not_compiled"]["compiled"] is False
    assert found["not_compiled"]["max_difference"] < 1e-5


def test_a_run_folder_around_the_legacy_file_loads_with_its_class_set(found):
    assert found["run"] == {"classes": ["c0", "c1", "c2"], "image_size": [64, 64],
                            "max_difference": pytest.approx(0, abs=1e-5)}


def test_no_test_module_imports_another():
    """Shared helpers live in helper modules (run_fixture.py, camvid_fixture.py...) or in
    conftest.py: importing a test module runs its module-level code and collects its tests twice."""
    importing = sorted(
        f"{path.name}: {line.strip()}"
        for path in Path(__file__).parent.glob("*.py")
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from\s+test_\w+\s+import|import\s+test_\w+)", line))
    assert not importing, (f"expected no test module to import another, received {importing}; "
                           "move the shared helper into a helper module or tests/conftest.py")
