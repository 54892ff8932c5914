"""Shared test fixtures: the VOC fixture written and built once per pytest run. The real data
in ../shared/datasets (``camvid_dir``, ``isbi_dir``, skipped when absent) is in the root conftest.py.

The VOC fixtures are session-scoped and **read-only**: tests read them, or copy them
first. A test that writes into a TFDS data directory (builds another dataset there,
say) takes ``voc2007_data_dir``, a private copy of the built one. At the end of the
run each shared folder is compared with what it held when written, so a test that
changed one fails loudly instead of breaking whichever test runs next.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from voc_fixture import VocFixture, write_voc_fixture

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# -- the VOC fixture, once per run ------------------------------------------------------------

def folder_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@contextlib.contextmanager
def kept_unchanged(root: Path):
    """Fail on exit if the files under ``root`` differ from what they were on entry."""
    before = folder_digest(root)
    yield
    after = folder_digest(root)
    changed = sorted(set(before) ^ set(after) | {p for p in before.keys() & after.keys()
                                                  if before[p] != after[p]})
    assert not changed, (f"a test changed the shared read-only fixture {root}: {changed[:5]}; "
                         "copy it first (see tests/conftest.py)")


@pytest.fixture(scope="session")
def voc2007(tmp_path_factory) -> VocFixture:
    """The VOC 2007 fixture as the official tars (``fixture.root`` is a manual dir). Read-only."""
    fixture = write_voc_fixture(tmp_path_factory.mktemp("voc2007") / "manual", 2007)
    with kept_unchanged(fixture.root):
        yield fixture


@pytest.fixture(scope="session")
def voc2007_extracted(tmp_path_factory) -> VocFixture:
    """The VOC 2007 fixture as an extracted ``VOCdevkit/`` (no tars). Read-only."""
    fixture = write_voc_fixture(tmp_path_factory.mktemp("voc2007_extracted") / "manual", 2007,
                                tars=False, extracted=True)
    with kept_unchanged(fixture.root):
        yield fixture


@pytest.fixture(scope="session")
def voc2012(tmp_path_factory) -> VocFixture:
    """The VOC 2012 fixture as the official tar. Read-only."""
    fixture = write_voc_fixture(tmp_path_factory.mktemp("voc2012") / "manual", 2012)
    with kept_unchanged(fixture.root):
        yield fixture


@pytest.fixture(scope="session")
def voc2007_built(voc2007, tmp_path_factory) -> dict[str, str]:
    """``voc2007_semantic`` built once from :func:`voc2007`. Read-only.

    Returns the ``data_dir`` / ``manual_dir`` options of a TrainConfig (strings), as
    ``training_fixture.build_voc_fixture`` does.
    """
    from pixelwise.datasets import api

    data_dir = tmp_path_factory.mktemp("voc2007_built") / "tfds"
    api.build("voc2007_semantic", data_dir=data_dir, manual_dir=voc2007.root)
    options = {"data_dir": str(data_dir), "manual_dir": str(voc2007.root)}
    with kept_unchanged(data_dir):
        yield options


@pytest.fixture
def voc2007_data_dir(voc2007_built, tmp_path) -> dict[str, str]:
    """A private copy of :func:`voc2007_built`'s data directory, for a test that writes into it."""
    data_dir = tmp_path / "tfds"
    shutil.copytree(voc2007_built["data_dir"], data_dir)
    return {"data_dir": str(data_dir), "manual_dir": voc2007_built["manual_dir"]}


def pytest_collection_modifyitems(config, items):
    """``exhaustive`` tests (every model x encoder pair, ~15 min on 2 cores) run on request only.

    The default suite covers each architecture and each encoder once; set
    ``PIXELWISE_EXHAUSTIVE=1`` (or run ``pytest -m exhaustive`` with it) before a release.
    """
    if os.environ.get("PIXELWISE_EXHAUSTIVE") == "1":
        return
    skip = pytest.mark.skip(reason="every model x encoder pair: set PIXELWISE_EXHAUSTIVE=1 to run")
    for item in items:
        if "exhaustive" in item.keywords:
            item.add_marker(skip)
