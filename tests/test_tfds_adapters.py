"""TFDS' own datasets by name: the real ``oxford_iiit_pet`` and ``cityscapes`` builders, adapted.

``oxford_iiit_pet`` downloads two archives made by ``tfds_sources_fixture`` from a server
on 127.0.0.1: the only things redirected are the builder module's URL constant
(``_BASE_URL``) and the builder's registered checksums (our archives' sizes and SHA-256),
so TFDS' real download, checksum validation, extraction and generation run.
``cityscapes`` reads two zips with the real layout from its manual dir. Every label is
compared with the adapter's table applied in NumPy to the source arrays. A guard refuses
any connection to an address other than 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pixelwise.class_sets import CITYSCAPES, OXFORD_IIIT_PET
from pixelwise.datasets import api
from pixelwise.datasets.tfds_adapters import ADAPTERS, CITYSCAPES_TRAIN_IDS, adapter_for
from tfds_sources_fixture import (
    CITYSCAPES_IMAGES, PET_LISTS, write_cityscapes_zips, write_oxford_pet_archives,
)

PET_TABLE = {1: 1, 2: 0, 3: 255}


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    """Fail any connection to an address other than 127.0.0.1 (and drop proxies)."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            raise ConnectionRefusedError(f"test guard: no connection to {address[0]} allowed")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pet_server(tmp_path_factory):
    """(archives, base URL, requested paths) with the pet archives served from 127.0.0.1."""
    archives = write_oxford_pet_archives(tmp_path_factory.mktemp("pets") / "served" / "pets")
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(archives.root.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield archives, f"http://127.0.0.1:{server.server_address[1]}/pets", requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_pets(pet_server, monkeypatch):
    """The real oxford_iiit_pet builder downloading from the local server, checksums registered."""
    archives, base_url, requests = pet_server
    requests.clear()  # this test's requests only
    builder_cls = tfds.builder_cls("oxford_iiit_pet")
    module = __import__(builder_cls.__module__, fromlist=["_BASE_URL"])
    monkeypatch.setattr(module, "_BASE_URL", base_url)
    url_infos = {
        f"{base_url}/{name}": tfds.download.checksums.UrlInfo(
            size=archives.sizes[name], checksum=archives.sha256[name], filename=name)
        for name in archives.sizes
    }
    monkeypatch.setattr(builder_cls, "url_infos", url_infos)
    return archives, requests


def _expected(table: dict, source: np.ndarray) -> np.ndarray:
    lut = np.full(256, 255, np.uint8)
    for value, class_id in table.items():
        lut[value] = class_id
    return lut[source]


def test_adapted_names_in_defaults_are_the_adapters():
    from pixelwise.defaults import ADAPTED_DATASET_NAMES

    assert list(ADAPTED_DATASET_NAMES) == sorted(ADAPTERS)


def test_adapters_by_name_and_tfds_name():
    assert adapter_for("oxford_iiit_pet") is ADAPTERS["oxford_iiit_pet"]
    assert adapter_for("cityscapes/semantic_segmentation") is ADAPTERS["cityscapes"]
    assert adapter_for("camvid") is None
    table = ADAPTERS["cityscapes"].lookup_table()
    assert sorted(np.flatnonzero(table != 255)) == sorted(CITYSCAPES_TRAIN_IDS)
    assert sorted(table[table != 255]) == list(range(19))


def test_oxford_iiit_pet_downloads_from_local_server_and_reads_as_pixelwise(local_pets, tmp_path):
    archives, requests = local_pets
    builder = api.build("oxford_iiit_pet", data_dir=tmp_path / "data")
    assert sorted(requests) == ["/pets/annotations.tar.gz", "/pets/images.tar.gz"]
    assert builder.name == "oxford_iiit_pet"
    info = builder.info
    assert {s: info.splits[s].num_examples for s in info.splits} == {
        split: len(entries) for split, entries in PET_LISTS.items()}
    assert info.metadata["class_names"] == ["background", "pet"]
    assert info.metadata["ignore_label"] == 255
    assert info.features["label"].shape == (None, None, 1)
    for split in PET_LISTS:
        seen = set()
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            name = example["image/filename"].decode()
            source = archives.trimaps[split][name]
            np.testing.assert_array_equal(example["label"][..., 0], _expected(PET_TABLE, source))
            assert example["image"].shape == (*source.shape, 3)
            seen.add(name)
        assert seen == set(archives.trimaps[split])
    # The real TFDS dataset is what was prepared (with all its own features).
    raw = tfds.builder("oxford_iiit_pet", data_dir=tmp_path / "data")
    assert raw.is_prepared() and "species" in raw.info.features
    assert api.describe(builder)["splits"] == {"train": 3, "test": 2}


def test_wrong_checksum_is_refused(pet_server, monkeypatch, tmp_path):
    archives, base_url, _ = pet_server
    builder_cls = tfds.builder_cls("oxford_iiit_pet")
    module = __import__(builder_cls.__module__, fromlist=["_BASE_URL"])
    monkeypatch.setattr(module, "_BASE_URL", base_url)
    monkeypatch.setattr(builder_cls, "url_infos", {
        f"{base_url}/{name}": tfds.download.checksums.UrlInfo(
            size=archives.sizes[name], checksum="0" * 64, filename=name)
        for name in archives.sizes})
    with pytest.raises(Exception, match="checksum"):
        api.build("oxford_iiit_pet", data_dir=tmp_path / "data")


def test_cityscapes_from_its_manual_dir_maps_label_ids_to_train_ids(tmp_path):
    city = write_cityscapes_zips(tmp_path / "manual")
    builder = api.build("cityscapes", data_dir=tmp_path / "data", manual_dir=city.manual_dir)
    assert builder.name == "cityscapes"
    assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {
        "train": 1, "validation": 1, "test": 1}
    assert builder.info.metadata["class_names"] == list(CITYSCAPES.class_names)
    split_of = {"train": "train", "val": "validation", "test": "test"}
    for folder, ids in CITYSCAPES_IMAGES.items():
        examples = list(tfds.as_numpy(builder.as_dataset(split=split_of[folder])))
        assert [e["image/filename"].decode() for e in examples] == ids
        source = city.label_ids[folder][ids[0]]
        expected = _expected(CITYSCAPES_TRAIN_IDS, source)
        np.testing.assert_array_equal(examples[0]["label"][..., 0], expected)
        assert set(np.unique(expected)) == set(range(19)) | {255}


def test_cityscapes_without_manual_files_says_what_to_put_there(tmp_path):
    (tmp_path / "manual").mkdir()
    with pytest.raises(FileNotFoundError, match="leftImg8bit_trainvaltest.zip"):
        api.build("cityscapes", data_dir=tmp_path / "data", manual_dir=tmp_path / "manual")


def test_class_sets_by_adapter_name():
    from pixelwise.class_sets import resolve_class_set

    assert resolve_class_set("oxford_iiit_pet") is OXFORD_IIIT_PET
    assert resolve_class_set("cityscapes") is CITYSCAPES


@pytest.mark.slow  # about 20 s on 2 shared cores: one tiny training after the download
def test_oxford_iiit_pet_trains_by_name(local_pets, tmp_path):
    """`--dataset oxford_iiit_pet` with TFDS' real builder (downloaded from 127.0.0.1)."""
    from pixelwise.training.config import TrainConfig
    from pixelwise.training.loop import train
    from training_fixture import TINY

    archives, requests = local_pets
    config = TrainConfig(dataset="oxford_iiit_pet", data_dir=str(tmp_path / "data"),
                         validation_split="test", epochs=1, out=str(tmp_path / "run"),
                         **TINY).validated()
    result = train(config)
    assert sorted(requests) == ["/pets/annotations.tar.gz", "/pets/images.tar.gz"]
    assert result.run.class_set().class_names == ("background", "pet")
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 2 and "val_mean_iou" in history[0]
