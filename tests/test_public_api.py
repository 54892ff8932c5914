"""What `import pixelwise` offers: the public names, lazily, and nothing else.

Each check runs in a fresh interpreter, since what an import loads is process-wide state.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: The public API (README, "Python API") -> the package's own name for it, or the subpackage.
PUBLIC = {
    "train": "pixelwise.training.train",
    "evaluate": "pixelwise.evaluation.evaluate",
    "predict": "pixelwise.inference.predict",
    "colorize": "pixelwise.inference.colorize",
    "export_model": "pixelwise.export.export_model",
    "load_run": "pixelwise.runs.load_run",
    "models": "pixelwise.models",
    "datasets": "pixelwise.datasets",
}
HEAVY = ("tensorflow", "keras", "tensorflow_datasets")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its last stdout line."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_dir_shows_the_public_names_and_the_version_only():
    shown = json.loads(_run("import json, pixelwise; print(json.dumps(dir(pixelwise)))"))
    assert shown == sorted([*PUBLIC, "__version__"])


def test_dir_stays_clean_after_subpackages_are_imported():
    # Importing a subpackage binds it on the package; dir() still lists only the API.
    code = ("import json, pixelwise, pixelwise.cli, pixelwise.sizes, pixelwise.training\n"
            "print(json.dumps(dir(pixelwise)))")
    assert json.loads(_run(code)) == sorted([*PUBLIC, "__version__"])


def test_import_pixelwise_loads_no_heavy_library():
    code = f"import sys, pixelwise\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code) == "[]"


def test_models_is_an_attribute_without_importing_keras_first():
    code = ("import pixelwise\n"
            "print(pixelwise.models.__name__, pixelwise.models.available()[-1])")
    assert _run(code) == "pixelwise.models unet"


@pytest.mark.slow  # ~12 s: imports TensorFlow Datasets in a fresh process
def test_datasets_is_an_attribute_that_registers_the_builders():
    code = ("import pixelwise, tensorflow_datasets as tfds\n"
            "print(pixelwise.datasets.__name__, 'camvid' in tfds.list_builders())")
    assert _run(code) == "pixelwise.datasets True"


def test_each_public_name_is_what_the_docs_say():
    # One fresh process for all names (each would cost a TensorFlow import of its own).
    code = ("import importlib, json, pixelwise\n"
            f"public = {PUBLIC!r}\n"
            "found = {}\n"
            "for name, target in public.items():\n"
            "    value = getattr(pixelwise, name)\n"
            "    module, _, attribute = target.rpartition('.')\n"
            "    expected = (importlib.import_module(target) if name in ('models', 'datasets')\n"
            "                else getattr(importlib.import_module(module), attribute))\n"
            # callable: a submodule of the same name (inference/predict.py) would shadow a function.
            "    found[name] = [value is expected, callable(value) or hasattr(value, '__path__')]\n"
            "print(json.dumps(found))")
    assert json.loads(_run(code)) == {name: [True, True] for name in PUBLIC}


def test_an_unknown_name_is_an_attribute_error_listing_the_public_ones():
    code = ("import pixelwise\n"
            "try:\n    pixelwise.Prediction\n"
            "except AttributeError as exc:\n    print(exc)")
    message = _run(code)
    assert "no attribute 'Prediction'" in message and "'export_model'" in message
