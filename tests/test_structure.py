"""The package's shape: what `import pixelwise` does, import rules, no import circles, module sizes.

docs/architecture.md states these rules; these tests keep them true.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "pixelwise"

# Modules that must import without TensorFlow, Keras or TFDS (docs/architecture.md, "Imports").
TF_FREE = ("pixelwise", "pixelwise.cli", "pixelwise.class_sets", "pixelwise.training.config", "pixelwise.runs", "pixelwise.runs.folder", "pixelwise.runs.checks", "pixelwise.runs.loading",
           "pixelwise.training.history", "pixelwise.training.config_files", "pixelwise.training.precision", "pixelwise.training.curves", "pixelwise.files", "pixelwise.defaults", "pixelwise.data.paths",
           "pixelwise.data.groups", "pixelwise.data.splits", "pixelwise.locks", "pixelwise.sizes", "pixelwise._lazy",
           "pixelwise.extras", "pixelwise.onednn",
           # PredictOptions: the CLI builds it before a model is loaded.
           "pixelwise.inference.options", "pixelwise.inference.tta",
           # Every package's __init__ exports lazily: importing one costs nothing.
           "pixelwise.data", "pixelwise.training", "pixelwise.inference", "pixelwise.evaluation",
           "pixelwise.export", "pixelwise.report")
# Modules that import Keras but not TensorFlow: under KERAS_BACKEND=jax they run on a machine
# without TensorFlow (benchmarks/camvid_screen.py trains on such a GPU machine).
BACKEND_AGNOSTIC = ("pixelwise.models", "pixelwise.losses", "pixelwise.metrics",
                    "pixelwise.training.optimizers")
HEAVY = ("tensorflow", "keras", "tensorflow_datasets", "jax", "torch")
MAX_LINES = 400


def _run_python(code: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def saved_model_file(tmp_path_factory) -> Path:
    """A compiled pixelwise model (custom model class, layer, loss and metrics) saved as .keras."""
    import keras

    from pixelwise import models
    from pixelwise.class_sets import VOC
    from pixelwise.losses import segmentation_loss
    from pixelwise.metrics import segmentation_metrics

    model = models.build("unet", input_size=(64, 64, 3), num_classes=VOC.num_classes, base_filters=4,
                         dropout_rate=0.3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=segmentation_loss(VOC),
                  metrics=segmentation_metrics(VOC))
    path = tmp_path_factory.mktemp("saved") / "best.keras"
    model.save(path)
    return path


LOAD_CASES = {
    "issue snippet": ("import keras, pixelwise", "keras.saving.load_model"),  # exactly as reported
    "pixelwise first": ("import pixelwise, keras", "keras.saving.load_model"),  # registered on Keras' load
    "via tf.keras": ("import pixelwise\nimport tensorflow as tf", "tf.keras.models.load_model"),
}


@pytest.fixture(scope="module")
def load_results(saved_model_file, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Each way of loading, and Keras alone, in its own fresh process; run side by side."""
    codes = {
        name: (f"{imports}\n"
               f"model = {load}({str(saved_model_file)!r})\n"
               "print(type(model).__module__, type(model).__name__, model.count_params())\n"
               "import numpy as np\n"
               "logs = model.evaluate(np.zeros((1, 64, 64, 3)), np.zeros((1, 64, 64, 1)), verbose=0,\n"
               "                      return_dict=True)\n"
               "print(sorted(logs))\n")
        for name, (imports, load) in LOAD_CASES.items()
    }
    codes["keras alone"] = f"import keras\nkeras.saving.load_model({str(saved_model_file)!r})"
    cwd = tmp_path_factory.mktemp("load")
    processes = {name: subprocess.Popen([sys.executable, "-c", code], cwd=cwd, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name, code in codes.items()}
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("case", sorted(LOAD_CASES))
@pytest.mark.slow  # ~45 s on 2 shared cores: three fresh processes load a saved model
def test_import_pixelwise_is_enough_to_load_its_keras_files(load_results, case):
    result = load_results[case]
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = result.stdout.strip().splitlines()[-2:]
    assert first.startswith("pixelwise.models.unet UNet ")
    assert "mean_iou" in second and "pixel_accuracy" in second


@pytest.mark.slow  # shares the fresh-process fixture above
def test_keras_alone_cannot_load_them(load_results):
    # Guards the test above: without pixelwise the classes are unknown, so that test is not vacuous.
    result = load_results["keras alone"]
    assert result.returncode != 0
    assert "pixelwise>UNet" in result.stderr


@pytest.mark.parametrize("module", TF_FREE)
def test_light_modules_import_without_tensorflow(module):
    result = _run_python(f"import sys, {module}\n"
                         f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow  # ~8 s: a fresh process starts JAX
def test_models_losses_metrics_import_without_tensorflow_under_jax():
    code = (f"import os, sys\nos.environ['KERAS_BACKEND'] = 'jax'\n"
            f"import {', '.join(BACKEND_AGNOSTIC)}\n"
            f"print([m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules])")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if not p.name.endswith("_test.py")}


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """pixelwise modules named by one import statement (a package's submodule counts as itself)."""
    names = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = {f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                 for alias in node.names}
    return {name for name in names if name in known}


def import_graph() -> dict[str, set[str]]:
    """module -> pixelwise modules it imports anywhere (top level or inside functions)."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in ast.walk(tree):
            edges |= _imported(node, name, path.name == "__init__.py", known)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_relative_and_from_imports():
    graph = import_graph()
    assert "pixelwise.models.unet" in graph["pixelwise.models"]
    assert "pixelwise.class_sets" in graph["pixelwise.losses"]


def test_no_import_cycles_in_src():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_light_modules_import_only_light_modules_at_top_level():
    """The TF-free modules may import heavy ones only inside a function (docs/architecture.md)."""
    modules = _modules()
    offenders = []
    for name in TF_FREE:
        for path in ([modules[name]] if name != "pixelwise.cli"
                     else sorted((PACKAGE / "cli").glob("*.py"))):
            tree = ast.parse(path.read_text())
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    imported = ([a.name for a in node.names] if isinstance(node, ast.Import)
                                else [node.module or ""])
                    for target in imported:
                        root = target.split(".")[0]
                        light = target in TF_FREE or target.startswith("pixelwise.cli")
                        if root in HEAVY or (root == "pixelwise" and not light):
                            offenders.append(f"{path.relative_to(SRC)}: {target}")
    assert not offenders, offenders


def test_modules_are_small_or_say_why():
    long = []
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "long because" not in docstring:
            long.append(f"{name}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines without a reason in their docstring: {long}"


def _literal_defaults(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("add_argument", "set_defaults")):
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "default" and isinstance(value, ast.Constant) and value.value not in (
                        None, False, True, argparse_suppress()):
                    found.append(f"{path.name}:{node.lineno} default={value.value!r}")
                if keyword.arg == "default" and isinstance(value, (ast.List, ast.Tuple, ast.Dict)):
                    found.append(f"{path.name}:{node.lineno} default=<literal container>")
    return found


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def test_cli_holds_no_defaults_of_its_own():
    """Every CLI default is read from the API (a dataclass field, a constant, a signature)."""
    found = [d for path in sorted((PACKAGE / "cli").glob("*.py")) for d in _literal_defaults(path)]
    assert not found, found
