"""The download path: fixture tars served over HTTP on 127.0.0.1, verified against checksums.tsv.

The builder under test is the real ``voc2007_semantic`` builder with two class
attributes redirected: ``DATA_URLS`` (to the local server, or to 127.0.0.1 ports
where nothing listens, standing for a machine without network) and the checksums
file (to one listing the fixture tars). Download, checksum validation,
extraction and generation are TFDS' and pixelwise's real code. No test sends
anything to an address other than 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
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


def _folders_and_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def closed_ports():
    """Two 127.0.0.1 ports bound but not listening: connecting is refused, as offline."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    yield [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()


def test_offline_download_fails_in_seconds_with_one_message_and_no_debris(
        closed_ports, voc2007, tmp_path):
    # Before the fix TFDS retried each refused connection ten times with growing
    # pauses: about 7 minutes for the two mirrors, then a multi-line message and four
    # empty *.tar.tmp.* folders plus an empty dataset folder.
    mirrors = [f"http://127.0.0.1:{port}/voc{{year}}/" for port in closed_ports]
    checksums = tmp_path / "checksums.tsv"
    checksums.write_text(voc2007.checksums_tsv("http://127.0.0.1/"))
    builder = _builder_class(mirrors, checksums)(data_dir=tmp_path / "data")
    start = time.monotonic()
    with pytest.raises(ConnectionError) as err:
        builder.download_and_prepare()
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert "\n" not in message
    for name in TAR_NAMES[2007].values():
        assert name in message
    for port in closed_ports:
        assert f"http://127.0.0.1:{port}/voc2007/ (cannot connect to 127.0.0.1:{port}: " in message
    assert "pass manual_dir=DIR" in message
    assert not (tmp_path / "data").exists(), _folders_and_files(tmp_path / "data")


def test_offline_build_keeps_what_was_there(closed_ports, voc2007, tmp_path):
    """An existing data dir and download dir stay, with their contents; nothing is added."""
    data_dir, download_dir = tmp_path / "data", tmp_path / "dl"
    (data_dir / "other_dataset" / "1.0.0").mkdir(parents=True)
    (download_dir / "old.tar").parent.mkdir(parents=True)
    (download_dir / "old.tar").write_bytes(b"kept")
    mirrors = [f"http://127.0.0.1:{port}/" for port in closed_ports]
    checksums = tmp_path / "checksums.tsv"
    checksums.write_text(voc2007.checksums_tsv(mirrors[0]))
    before = _folders_and_files(tmp_path)
    builder = _builder_class(mirrors, checksums)(data_dir=data_dir)
    with pytest.raises(ConnectionError):
        builder.download_and_prepare(download_dir=download_dir)
    assert _folders_and_files(tmp_path) == before


def test_failed_mirror_leaves_no_temporary_folders(served, tmp_path):
    """The first mirror answers 404 (TFDS made a *.tmp.* folder per file); the second serves."""
    fixture, base_url, _ = served
    checksums = tmp_path / "checksums.tsv"
    checksums.write_text(fixture.checksums_tsv(base_url))
    builder = _builder_class([base_url + "missing/", base_url], checksums)(data_dir=tmp_path / "data")
    builder.download_and_prepare()
    assert builder.is_prepared()
    leftovers = [p for p in (tmp_path / "data").rglob("*") if ".tmp." in p.name]
    assert leftovers == []


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
