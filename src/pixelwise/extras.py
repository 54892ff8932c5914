"""Optional extras: one error, naming the extra and how to install it, when one is missing.

Some features need packages that not every user wants: ONNX export (the ``export`` extra:
tf2onnx, onnx, onnxruntime) and Beam pipelines (the ``beam`` extra: apache-beam). They are
imported where the feature starts, through :func:`import_extra`, so that their absence is
one :class:`MissingExtraError` saying which extra holds them, not a traceback.

Importable without TensorFlow.

Example:
    >>> import_extra("json", extra="beam", needed_for="a test").__name__
    'json'
"""

from __future__ import annotations

import importlib


class MissingExtraError(ModuleNotFoundError, ValueError):
    """A module of one of pixelwise's optional extras is not installed.

    An ``ImportError`` for Python callers, and a ``ValueError`` (unusable input: the
    feature asked for) for the CLI, which prints it as one line and exits 2.
    """


def extra_install_command(extra: str) -> str:
    """How pip installs ``extra`` into a source checkout: ``pip install -e ".[extra]"``."""
    return f'pip install -e ".[{extra}]"'


def import_extra(module: str, *, extra: str, needed_for: str):
    """Import ``module`` of the optional ``extra``, or raise :class:`MissingExtraError` saying how to get it.

    Args:
        module: The module's import name (``apache_beam``, ``tf2onnx``).
        extra: The extra of pixelwise's ``pyproject.toml`` that installs it (``beam``, ``export``).
        needed_for: What asked for it, as the user wrote it (``format='onnx'``, ``beam=True``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"Expected the Python package {module!r} for {needed_for}, received an environment "
            f"without it; it is in pixelwise's optional {extra!r} extra: "
            f"{extra_install_command(extra)} (or pip install \"pixelwise[{extra}]\").", name=module,
        ) from exc


__all__ = ["MissingExtraError", "extra_install_command", "import_extra"]
