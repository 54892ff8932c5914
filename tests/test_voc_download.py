"""The download path: fixture tars served over HTTP on 127.0.0.1, verified against checksums.tsv.

The builder under test is the real ``voc2007_semantic`` builder with two class
attributes redirected: ``DATA_URLS`` (to the local server) and the checksums
file (to one listing the fixture tars). Download, checksum validation,
extraction and generation are TFDS' and pixelwise's real code.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

import pixelwise.datasets as pd
from pixelwise.datasets.voc2007_semantic import voc2007_semantic_dataset_builder as voc2007
from voc_fixture import TAR_NAMES


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(voc2007):
    """(fixture, base_url, requests log) with the session's 2007 tars served from 127.0.0.1."""
    fixture, root = voc2007, voc2007.root
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fixture, f"http://127.0.0.1:{server.server_address[1]}/", requests
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def _builder_class(base_urls, checksums_path: Path):
    """voc2007_semantic downloading from ``base_urls`` and verifying against ``checksums_path``."""

    class LocalVoc2007Semantic(voc2007.Builder, skip_registration=True):
        # TFDS reads README/CITATIONS from the defining module's package: use the real one's.
        __module__ = voc2007.Builder.__module__
        DATA_URLS = tuple(base_urls)

        @tfds_utils.classproperty
        @classmethod
        def _checksums_path(cls):
            return checksums_path

    return LocalVoc2007Semantic


def test_download_verifies_checksums_and_builds(served, tmp_path):
    fixture, base_url, requests = served
    checksums = tmp_path / "checksums.tsv"
    checksums.write_text(fixture.checksums_tsv(base_url))
    # The first location answers 404: the builder falls back to the next one.
    builder = _builder_class([base_url + "missing/", base_url], checksums)(data_dir=tmp_path / "data")
    builder.download_and_prepare()

    names = TAR_NAMES[2007].values()
    assert sorted(requests) == sorted([f"/missing/{n}" for n in names] + [f"/{n}" for n in names])
    for split, labels in fixture.labels.items():
        assert builder.info.splits[split].num_examples == len(labels)
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            expected = labels[example["image/filename"].decode()[:-4]]
            np.testing.assert_array_equal(example["label"], expected)
    skipped = pd.skipped_examples(builder.info)
    assert {e["id"] for e in skipped["test"]} == set(fixture.skipped["test"])
    # The archives were downloaded (kept under <data_dir>/downloads).
    downloaded = {p.stat().st_size for p in (tmp_path / "data" / "downloads").rglob("*.tar")
                  if p.is_file()}
    assert set(fixture.sizes.values()) <= downloaded


def test_wrong_checksum_fails_clearly(served, tmp_path):
    fixture, base_url, _ = served
    wrong = fixture.checksums_tsv(base_url)
    for digest in fixture.sha256.values():
        wrong = wrong.replace(digest, "0" * 64)
    checksums = tmp_path / "checksums.tsv"
    checksums.write_text(wrong)
    builder = _builder_class([base_url], checksums)(data_dir=tmp_path / "data")
    with pytest.raises(NonMatchingChecksumError) as err:
        builder.download_and_prepare()
    message = str(err.value)
    assert base_url in message and "wrong checksum" in message and "0" * 64 in message
    assert not builder.is_prepared()


def test_packaged_checksums_match_tfds_voc_registry():
    """Our checksums.tsv lists the official archives with TFDS' own sizes and SHA-256."""
    tfds_registry = Path(tfds.__file__).parent / "url_checksums" / "voc.txt"
    if not tfds_registry.exists():
        pytest.skip(f"TFDS' voc checksums not found at {tfds_registry}")
    official = {}
    for line in tfds_registry.read_text().splitlines():
        url, size, sha, name = line.split("\t")
        official[name] = (int(size), sha)
    for module, year in ((voc2007, 2007), (None, 2012)):
        cls = module.Builder if module else tfds.builder_cls("voc2012_semantic")
        infos = cls.url_infos
        names = set(TAR_NAMES[year].values())
        assert {info.filename for info in infos.values()} == names
        assert any(url.startswith("http://host.robots.ox.ac.uk/pascal/VOC/") for url in infos)
        for url, info in infos.items():
            assert (info.size, info.checksum) == official[info.filename], url
