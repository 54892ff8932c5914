"""Hostile ``.keras`` files: code in a model file is refused (Keras' safe mode), garbage is one line.

A ``.keras`` file is a zip of ``config.json`` (the layers, deserialised by name) and the
weights. The hostile ones here carry a Python lambda (whose code would write a marker
file), a TFSMLayer, non-modelling Keras functions, ``os.system`` as a layer, or damaged
and generated configs. Each must give one ``ValueError`` saying what was expected, and
``pixelwise predict`` one line, with the marker never written.
"""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hostile_cases import FUZZ, check_one_line_error, tried
from run_fixture import tiny_conv_model, write_run

SAFE_MODE = "which pixelwise refuses to run: it loads .keras files in Keras' safe mode"


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """``(run folder, {entry: bytes} of its best.keras, config.json as a dict)``."""
    run = write_run(tmp_path_factory.mktemp("sound") / "run", tiny_conv_model())
    with zipfile.ZipFile(run / "checkpoints" / "best.keras") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    return run, entries, json.loads(entries["config.json"])


def _run_with(tmp_path, sound, config=None, **replace: bytes):
    """A copy of the sound run whose best.keras has ``config`` and the entries ``replace``
    (``None`` drops an entry)."""
    run, entries, _ = sound
    entries = dict(entries)
    if config is not None:
        entries["config.json"] = json.dumps(config).encode()
    entries.update(replace)
    copy_run = tmp_path / "run"
    (copy_run / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("class_set.json", "config.json"):
        (copy_run / name).write_text((run / name).read_text())
    with zipfile.ZipFile(copy_run / "checkpoints" / "best.keras", "w") as archive:
        for name, data in entries.items():
            if data is not None:
                archive.writestr(name, data)
    return copy_run


def _conv(config: dict) -> dict:
    """The first Conv2D layer's entry of a functional model's config."""
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")


def _with_activation(sound, activation: dict) -> dict:
    config = copy.deepcopy(sound[2])
    _conv(config)["config"]["activation"] = activation
    return config


def _with_layer(sound, layer: dict) -> dict:
    config = copy.deepcopy(sound[2])
    _conv(config).update(layer)
    return config


def _function(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": None}


HOSTILE_CONFIGS = {
    "__lambda__ activation": lambda sound, marker: _with_activation(sound, {
        "class_name": "__lambda__", "config": {"value": ["YQ==", None, None]}}),
    "non-modelling function": lambda sound, marker: _with_activation(
        sound, _function("keras.config", "enable_unsafe_deserialization")),
    "keras.models.load_model": lambda sound, marker: _with_activation(
        sound, _function("keras.models", "load_model")),
    "builtins eval": lambda sound, marker: _with_activation(sound, _function("builtins", "eval")),
    "os.system layer": lambda sound, marker: _with_layer(sound, {
        "module": "os", "class_name": "system", "registered_name": None,
        "config": {"command": f"touch {marker}"}}),
    "TFSMLayer": lambda sound, marker: _with_layer(sound, {
        "module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
        "config": {"filepath": str(marker.parent), "call_endpoint": "serve", "name": "tfsm"}}),
    "not a Keras class": lambda sound, marker: _with_layer(sound, {
        "module": "keras.src.saving.serialization_lib", "class_name": "SafeModeScope",
        "registered_name": None, "config": {"safe_mode": False}}),
}


def test_a_lambda_layer_whose_code_writes_a_file_is_refused_and_never_runs(sound, tmp_path, capsys):
    import keras

    from pixelwise.cli import main
    from pixelwise.runs.loading import load_run

    tried(".keras: code and unsafe deserialisation (hand-written)")
    marker = tmp_path / "marker"
    inputs = keras.Input((None, None, 3))
    touched = keras.layers.Lambda(lambda x, path=str(marker): (open(path, "w").close(), x)[1])(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(touched))
    run = write_run(tmp_path / "run", model)
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(ValueError, match=SAFE_MODE):
        load_run(run)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    code = main(["predict", str(tmp_path / "a.png"), "--run", str(run), "--out", str(tmp_path / "out")])
    line = check_one_line_error(code, capsys.readouterr().err, "predict")
    assert SAFE_MODE in line and "best.keras" in line
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_code_in_a_model_config_is_refused_with_one_clear_error(case, sound, tmp_path):
    from pixelwise.runs.loading import load_run

    tried(".keras: code and unsafe deserialisation (hand-written)")
    marker = tmp_path / "marker"
    run = _run_with(tmp_path, sound, HOSTILE_CONFIGS[case](sound, marker))
    with pytest.raises(ValueError) as error:
        load_run(run)
    message = str(error.value)
    assert "\n" not in message and len(message) < 800, message
    assert SAFE_MODE in message or "cannot be loaded as a pixelwise model" in message, message
    assert not marker.exists()


DAMAGED = {
    "no config.json": {"config.json": None},
    "config.json not JSON": {"config.json": b"{not json"},
    "config.json a list": {"config.json": b"[1, 2]"},
    "weights garbage": {"model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64},
    "no weights": {"model.weights.h5": None},
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_model_file_is_one_value_error(case, sound, tmp_path):
    from pixelwise.runs.loading import load_run

    tried(".keras: damaged files (hand-written)")
    run = _run_with(tmp_path, sound, **DAMAGED[case])
    with pytest.raises(ValueError, match="best.keras"):
        load_run(run)


_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 70),
                               st.sampled_from(["Conv2D", "__lambda__", "keras.layers", "relu",
                                                "builtins", "os", "function", "same"])),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(st.sampled_from(
                                                 ["class_name", "module", "config", "filters",
                                                  "activation", "registered_name", "value"]),
                                                 inner, max_size=3)),
                     max_leaves=6)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_generated_configs_load_or_give_one_value_error(data, sound, tmp_path):
    """A random node of config.json replaced by a generated value."""
    from pixelwise.runs.loading import load_run

    tried(".keras: generated configs")
    config = copy.deepcopy(sound[2])
    nodes = [(config, "config")]
    while True:
        parent, key = nodes[-1]
        node = parent[key]
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        if not children or data.draw(st.integers(0, 3)) == 0:
            break
        nodes.append((node, data.draw(st.sampled_from([k for k, _ in children]))))
    parent, key = nodes[-1]
    parent[key] = data.draw(_JSON)
    run = _run_with(tmp_path, sound, config)
    try:
        load_run(run)
    except ValueError as exc:
        assert "\n" not in str(exc)
