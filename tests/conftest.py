"""Shared test fixtures: tiny models, run folders and random images, and the VOC fixture written
and built once per pytest run. The real data in ../shared/datasets (``camvid_dir``, ``isbi_dir``,
skipped when absent) is in the root conftest.py.

Models and run folders: ``conv_model`` (two 3x3 convolutions, any input size, 3 classes) and
``unet_model`` (the chapter's U-Net at 4 filters, sides multiples of 64); ``run_dir`` (the conv
model, trained size 32, checkpoints best and last) and ``unet_run_dir`` (the U-Net, trained size
64); ``make_run_dir`` writes another one. Images: ``random_image`` and ``random_image_file``.

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

import numpy as np
import pytest

from run_fixture import TINY_CLASSES, tiny_conv_model, tiny_unet, write_run
from voc_fixture import VocFixture, write_voc_fixture

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# -- tiny models, run folders, random images --------------------------------------------------
# The models are shared by the whole session: tests call them, never fit or change them (a test
# that trains builds its own with run_fixture.tiny_conv_model(); weights_kept checks).

@contextlib.contextmanager
def weights_kept(model):
    """Fail on exit if ``model``'s weights differ from what they were on entry."""
    before = [np.array(w) for w in model.get_weights()]
    yield model
    changed = [w.path for w, old in zip(model.weights, before, strict=True)
               if not np.array_equal(np.asarray(w), old)]
    assert not changed, (f"a test changed the weights of the shared {model.name}: {changed[:5]}; "
                         "build a model of your own (run_fixture.tiny_conv_model()) to train")


@pytest.fixture(scope="session")
def conv_model():
    """:func:`run_fixture.tiny_conv_model`: two same-padded 3x3 convolutions, any size, 3 classes."""
    with weights_kept(tiny_conv_model()) as model:
        yield model


@pytest.fixture(scope="session")
def unet_model():
    """:func:`run_fixture.tiny_unet`: the chapter's U-Net at 4 filters, input (None, None, 3),
    3 classes (sides must be multiples of 64)."""
    with weights_kept(tiny_unet()) as model:
        yield model


@pytest.fixture(scope="session")
def make_run_dir(tmp_path_factory):
    """``make_run_dir(model, config=None, checkpoints=("best",), class_set=TINY_CLASSES)``: a
    fresh run folder as ``pixelwise train`` leaves it (see :func:`run_fixture.write_run`)."""
    def make(model, config=None, checkpoints=("best",), class_set=TINY_CLASSES):
        return write_run(tmp_path_factory.mktemp("run"), model, class_set=class_set,
                         config=config, checkpoints=checkpoints)
    return make


@pytest.fixture(scope="session")
def run_dir(make_run_dir, conv_model):
    """A run of :func:`conv_model` trained at 32 px, checkpoints best and last. Read-only."""
    path = make_run_dir(conv_model, config={"image_size": 32}, checkpoints=("best", "last"))
    with kept_unchanged(path):
        yield path


@pytest.fixture(scope="session")
def unet_run_dir(make_run_dir, unet_model):
    """A run of :func:`unet_model` trained at 64 px, checkpoint best. Read-only."""
    path = make_run_dir(unet_model, config={"image_size": 64})
    with kept_unchanged(path):
        yield path


def _random_image(height, width, channels=3, *, seed=0, batch=None):
    shape = (height, width, channels) if batch is None else (batch, height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="session")
def random_image():
    """``random_image(height, width, channels=3, *, seed=0, batch=None)``: uniform noise, uint8,
    (H, W, C), or (batch, H, W, C) when ``batch`` is given. The same seed gives the same image."""
    return _random_image


@pytest.fixture(scope="session")
def random_image_file():
    """``random_image_file(path, height, width, *, seed=0)``: :func:`random_image` written to
    ``path`` (format from the suffix); returns ``path``."""
    def write(path, height, width, *, seed=0):
        from PIL import Image

        Image.fromarray(_random_image(height, width, seed=seed)).save(path)
        return path
    return write


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
