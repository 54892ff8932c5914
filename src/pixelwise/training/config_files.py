"""Config files and precedence: defaults < the run folder's ``config.json`` (with ``--resume``) < ``--config FILE`` < flags.

A YAML or JSON file is read with a safe loader that refuses duplicate keys and anchors that
expand past :data:`MAX_CONFIG_VALUES` values. Imports no TensorFlow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from pixelwise.runs.folder import RunFolder
from pixelwise.training.config import TrainConfig


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as the float JSON and YAML 1.2 read.

    PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent (``1.0e-3``),
    so ``learning_rate: 1e-3`` would load as the string ``"1e-3"``.
    """


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)




def load_config_file(path) -> dict:
    """Read a YAML or JSON training config into a dict (keys as in :class:`TrainConfig`).

    Dashes in keys are accepted for underscores (``batch-size`` = ``batch_size``). Numbers
    read as a person writes them: ``1e-3``, ``1E-3``, ``.5``, ``5.``, ``1_000``, ``+1e3``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist; pass config_file= an existing YAML or JSON file.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Config file {str(path)!r} is not UTF-8 text (byte {exc.start}: "
                         f"{data[exc.start:exc.start + 1]!r}); expected YAML or JSON. Save it "
                         "as UTF-8.") from None
    try:
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, _YamlLoader)
    except (ValueError, yaml.YAMLError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"Config file {str(path)!r} is not valid YAML/JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"Config file {str(path)!r} nests too deeply to read; expected a "
                         "mapping of options a few levels deep.") from None
    _check_expanded_size(values, str(path))
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(
            f"Expected config file {str(path)!r} to hold a mapping of options, received "
            f"{type(values).__name__}."
        )
    return {str(k).replace("-", "_"): v for k, v in values.items()}



#: The most values a config may hold once YAML aliases (``*name``) are expanded.
MAX_CONFIG_VALUES = 100_000



def _check_expanded_size(values, source: str) -> None:
    """Refuse a config whose aliases expand past :data:`MAX_CONFIG_VALUES` ("billion laughs").

    PyYAML shares an aliased node instead of copying it, so loading is cheap; writing
    config.json or validating would expand every alias. Counting stops at the limit.
    """
    count, stack = 0, [values]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ValueError(
                f"Config file {source!r} expands to more than {MAX_CONFIG_VALUES:,} values "
                "(YAML aliases '*name' repeated inside each other); expected a mapping of "
                "options. Write the values out instead of nesting aliases.")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)



def resolve_config(config_file=None, overrides: dict | None = None, resume: bool = False) -> TrainConfig:
    """Defaults < the run folder's config.json (with ``resume``) < ``config_file`` < ``overrides``.

    ``model_args`` are merged key by key rather than replaced.
    """
    overrides = dict(overrides or {})
    layers = []
    if config_file is not None:
        layers.append(load_config_file(config_file))
    layers.append(overrides)
    values: dict = {}
    if resume:
        out = next((layer["out"] for layer in reversed(layers) if layer.get("out")), None)
        if out is None:
            raise ValueError("resume=True needs the run folder to continue: pass out='runs/NAME'.")
        stored = RunFolder(out).config_path
        if not stored.exists():
            raise FileNotFoundError(
                f"Cannot resume: {str(stored)!r} does not exist, so {out!r} holds no run to "
                "continue. Leave out resume=True to start a new run there."
            )
        values.update(json.loads(stored.read_text()))
    for layer in layers:
        for key, value in layer.items():
            if key == "model_args" and isinstance(value, dict):
                values["model_args"] = {**values.get("model_args", {}), **value}
            else:
                values[key] = value
    return TrainConfig.from_dict(values)
