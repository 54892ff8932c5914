"""voc2007_semantic / voc2012_semantic built through TFDS from the fixture's tars and extracted folder."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import pixelwise.datasets as pd
from pixelwise.class_sets import CAMVID, VOC
from pixelwise.datasets.decoding import InvalidExampleError, decode_label
from voc_fixture import TAR_NAMES, VOID_COLOR, voc_colormap

VOC_CLASS_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]
# What each broken kind's skip reason must say.
REASON_WORDS = {
    "missing_label": "label file not found",
    "bad_colors": "outside the 'voc' palette",
    "bad_image": "cannot decode image",
    "bad_label": "cannot decode label",
    "size_mismatch": "but label is",
}


@pytest.fixture(scope="module", params=["voc2007", "voc2007_extracted", "voc2012"],
                ids=["2007-tars", "2007-extracted", "2012-tars"])
def built(request, tmp_path_factory):
    """(fixture, builder): the session's VOC fixture as manual dir, built into a fresh data dir."""
    fixture = request.getfixturevalue(request.param)
    data_dir = tmp_path_factory.mktemp(request.param) / "data"
    return fixture, pd.build(f"voc{fixture.year}_semantic", data_dir=data_dir, manual_dir=fixture.root)


def _read_split(builder, split):
    return {ex["image/filename"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def test_counts_per_split(built):
    fixture, builder = built
    assert set(builder.info.splits) == set(fixture.splits)
    expected_splits = {"train", "validation", "test"} if fixture.year == 2007 else {"train", "validation"}
    assert set(builder.info.splits) == expected_splits
    for split, count in fixture.num_examples.items():
        assert builder.info.splits[split].num_examples == count


def test_labels_equal_fixture_indices_exactly(built):
    fixture, builder = built
    for split, labels in fixture.labels.items():
        examples = _read_split(builder, split)
        assert sorted(examples) == sorted(f"{i}.jpg" for i in labels)
        for example_id, expected in labels.items():
            example = examples[f"{example_id}.jpg"]
            assert example["label"].dtype == np.uint8 and example["label"].shape == expected.shape
            np.testing.assert_array_equal(example["label"], expected)
            # Void borders survive as 255 (never merged into background).
            assert (example["label"] == 255).any()
            assert example["image"].shape == expected.shape[:2] + (3,)


def test_images_are_the_jpegs(built):
    fixture, builder = built
    split = "train"
    examples = _read_split(builder, split)
    voc = fixture.root / "VOCdevkit" / f"VOC{fixture.year}"
    for example_id in fixture.labels[split]:
        image = examples[f"{example_id}.jpg"]["image"].astype(int)
        if voc.exists():
            reference = np.asarray(Image.open(voc / "JPEGImages" / f"{example_id}.jpg"), dtype=int)
        else:
            with tarfile.open(fixture.tars["trainval"]) as tar:
                data = tar.extractfile(f"VOCdevkit/VOC{fixture.year}/JPEGImages/{example_id}.jpg").read()
            reference = np.asarray(Image.open(io.BytesIO(data)), dtype=int)
        # libjpeg (TF) and PIL may round the IDCT differently by a level or two.
        assert np.abs(image - reference).mean() < 1.5


def test_metadata_holds_the_class_set(built):
    _, builder = built
    metadata = builder.info.metadata
    assert metadata["class_names"] == VOC_CLASS_NAMES
    assert metadata["palette"] == voc_colormap(21).tolist()
    assert metadata["ignore_label"] == 255
    assert tuple(metadata["void_color"]) == VOID_COLOR
    features = builder.info.features
    assert features["image"].shape == (None, None, 3)
    assert features["label"].shape == (None, None, 1)
    assert features["image"].np_dtype == np.uint8 and features["label"].np_dtype == np.uint8


def test_skip_report_is_complete_and_persisted(built):
    fixture, builder = built
    for report in (pd.skipped_examples(builder.info),
                   # a fresh builder reads metadata.json from the built dataset
                   pd.skipped_examples(tfds.builder(builder.name, data_dir=builder.data_dir_root).info)):
        for split, broken in fixture.skipped.items():
            got = {entry["id"]: entry["reason"] for entry in report.get(split, [])}
            assert set(got) == set(broken), split
            for example_id, kind in broken.items():
                assert REASON_WORDS[kind] in got[example_id], (kind, got[example_id])
    on_disk = json.loads((builder.data_path / "metadata.json").read_text())
    assert sum(len(v) for v in on_disk["skipped"].values()) == sum(
        len(v) for v in fixture.skipped.values())


def test_rebuild_reuses_and_keeps_report(built):
    fixture, builder = built
    again = pd.build(builder.name, data_dir=builder.data_dir_root, manual_dir=fixture.root)
    assert again.info.splits["train"].num_examples == fixture.num_examples["train"]
    assert set(e["id"] for e in pd.skipped_examples(again.info)["train"]) == set(fixture.skipped["train"])


def test_chapter_tfds_load_works(built):
    fixture, builder = built
    dataset, info = tfds.load(builder.name, split="train", data_dir=builder.data_dir_root, with_info=True)
    assert info.features["label"].shape == (None, None, 1)
    assert sum(1 for _ in dataset) == fixture.num_examples["train"]


# -- errors ------------------------------------------------------------------------------

def test_missing_test_archive_names_the_file(voc2007, tmp_path):
    (tmp_path / "manual").mkdir()
    shutil.copy(voc2007.tars["trainval"], tmp_path / "manual")  # ... and not the test archive
    with pytest.raises(FileNotFoundError) as err:
        pd.build("voc2007_semantic", data_dir=tmp_path / "data", manual_dir=tmp_path / "manual")
    message = str(err.value)
    assert "VOCtest_06-Nov-2007.tar" in message and str(tmp_path / "manual") in message


def test_wrong_archive_says_what_was_expected(voc2012, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    # A 2012 archive named as the 2007 one.
    shutil.copy(voc2012.tars["trainval"], manual / TAR_NAMES[2007]["trainval"])
    with tarfile.open(manual / TAR_NAMES[2007]["test"], "w"):
        pass  # an empty tar
    with pytest.raises(ValueError, match=r"VOCdevkit/VOC2007/ImageSets/Segmentation/train.txt"):
        pd.build("voc2007_semantic", data_dir=tmp_path / "data", manual_dir=manual)
    assert not (tmp_path / "data" / "voc2007_semantic" / "1.0.0" / "dataset_info.json").exists()


def test_corrupt_archive_is_reported(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in TAR_NAMES[2012].values():
        (manual / name).write_bytes(b"not a tar archive" * 100)
    with pytest.raises(ValueError, match="VOCtrainval_11-May-2012.tar.*cannot be extracted"):
        pd.build("voc2012_semantic", data_dir=tmp_path / "data", manual_dir=manual)


def test_missing_manual_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="VOCtrainval_11-May-2012.tar"):
        pd.build("voc2012_semantic", data_dir=tmp_path / "data", manual_dir=tmp_path / "nope")


def test_unknown_name():
    with pytest.raises(ValueError, match="voc2007_semantic"):
        pd.build("voc2007")


def test_available_lists_both_voc_builders():
    assert {"voc2007_semantic", "voc2012_semantic"} <= set(pd.available())


# -- label decoding ------------------------------------------------------------------------

def _png(array, mode, palette=None) -> bytes:
    # PIL infers L / RGB / RGBA / I;16 from the array; only palette mode is explicit.
    image = Image.fromarray(array, mode="P") if mode == "P" else Image.fromarray(array)
    assert image.mode == mode
    if palette is not None:
        image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def ids():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 21, size=(12, 17)).astype(np.uint8)
    values[0] = 255
    return values


def test_palette_png_gives_indices_not_luminance(ids):
    data = _png(ids, "P", voc_colormap().flatten().tolist())
    np.testing.assert_array_equal(decode_label(data, VOC)[..., 0], ids)
    # What the chapter's Image(shape=(None, None, 1)) on the file would store instead:
    luminance = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert not np.array_equal(luminance, ids)


def test_grayscale_png_gives_values(ids):
    np.testing.assert_array_equal(decode_label(_png(ids, "L"), VOC)[..., 0], ids)


def test_rgb_and_rgba_png_go_through_the_palette(ids):
    colors = voc_colormap()
    colors[255] = VOID_COLOR
    rgb = colors[ids]
    np.testing.assert_array_equal(decode_label(_png(rgb, "RGB"), VOC)[..., 0], ids)
    rgba = np.concatenate([rgb, np.full(ids.shape + (1,), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(decode_label(_png(rgba, "RGBA"), VOC)[..., 0], ids)


def test_foreign_values_and_colours_are_rejected(ids):
    bad = ids.copy()
    bad[3, 3] = 100
    with pytest.raises(InvalidExampleError, match=r"100 \(1 px\)"):
        decode_label(_png(bad, "P", voc_colormap().flatten().tolist()), VOC)
    rgb = voc_colormap()[ids]
    rgb[2, 2] = (1, 2, 3)
    with pytest.raises(InvalidExampleError, match=r"\(1, 2, 3\) 1 px"):
        decode_label(_png(rgb, "RGB"), VOC)
    with pytest.raises(InvalidExampleError, match="mode 'I;16'"):
        decode_label(_png(ids.astype(np.uint16) * 300, "I;16"), VOC)


def test_value_map_applies_before_validation():
    stored = np.array([[0, 11], [3, 11]], dtype=np.uint8)
    out = decode_label(_png(stored, "L"), CAMVID, value_map={11: 255})
    np.testing.assert_array_equal(out[..., 0], [[0, 255], [3, 255]])
