"""PEP 562 lazy exports: a package names what it offers without importing it.

Each subpackage's ``__init__`` maps its public names to the submodule defining them, so
``import pixelwise.training`` costs nothing and ``pixelwise.training.train`` imports
``pixelwise.training.loop`` (and TensorFlow) only when first used.
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a name to its submodule.

    Example:
        >>> getattr_, dir_ = lazy_exports("pixelwise", {"ClassSet": "class_sets"})
        >>> getattr_("ClassSet").__name__
        'ClassSet'
    """

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
