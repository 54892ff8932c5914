"""The ``isbi2012_membranes`` builder: PNG slices and TIFF stacks, label inversion, skip report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import pixelwise.datasets  # noqa: F401  (registers the builders)
from pixelwise.class_sets import ISBI2012
from pixelwise.datasets.split_plan import skipped_examples
from pixelwise.datasets.isbi2012_membranes.isbi2012_sources import (
    find_isbi_source, label_from_challenge,
)


def build_isbi(manual_dir: Path, data_dir: Path) -> tfds.core.DatasetBuilder:
    builder = tfds.builder("isbi2012_membranes", data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return tfds.builder("isbi2012_membranes", data_dir=str(data_dir))  # info read back from disk


def examples_by_key(builder, split: str) -> dict[int, dict]:
    """Examples keyed by slice index (from ``tfds_id``-free data: the filename names the slice)."""
    out = {}
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        name = example["image/filename"].decode()
        index = int(name.split(":")[-1]) if ":" in name else int(name.split(".")[0])
        out[index] = example
    return out


def write_slices(root: Path, count: int, size=(16, 12), seed=0) -> None:
    """``image/N.png`` + ``label/N.png`` with challenge labels (0 membrane, 255 interior)."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True)
    (root / "label").mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), mode="L").save(
            root / "image" / f"{i}.png")
        raw = np.where(rng.random((size[1], size[0])) < 0.3, 0, 255).astype(np.uint8)
        Image.fromarray(raw, mode="L").save(root / "label" / f"{i}.png")


def write_tiff_stacks(png_root: Path, dest: Path, count: int = 30) -> None:
    """The challenge's two 30-page TIFF stacks, written from PNG slices."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder, stack in (("image", "train-volume.tif"), ("label", "train-labels.tif")):
        pages = [Image.open(png_root / folder / f"{i}.png") for i in range(count)]
        pages[0].save(dest / stack, save_all=True, append_images=pages[1:])


def test_label_inversion():
    raw = np.array([[0, 255], [255, 0]], np.uint8)
    np.testing.assert_array_equal(label_from_challenge(raw, "x")[..., 0], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"received 128 \(1 px\).*losslessly"):
        label_from_challenge(np.array([[0, 128]], np.uint8), "x")


def test_real_png_slices_build_with_exact_labels(isbi_dir, tmp_path):
    builder = build_isbi(isbi_dir, tmp_path / "tfds")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 25, "validation": 5}
    assert builder.info.features["image"].shape == (None, None, 1)
    assert builder.info.metadata["class_names"] == list(ISBI2012.class_names)
    assert builder.info.metadata["source_layout"] == "png"
    assert skipped_examples(builder.info) == {}
    for split, indices in (("train", range(25)), ("validation", range(25, 30))):
        examples = examples_by_key(builder, split)
        assert sorted(examples) == list(indices)
        for i, example in examples.items():
            image = np.array(Image.open(isbi_dir / "image" / f"{i}.png"))
            raw = np.array(Image.open(isbi_dir / "label" / f"{i}.png"))
            assert example["image"].shape == image.shape + (1,)
            np.testing.assert_array_equal(example["image"][..., 0], image)
            np.testing.assert_array_equal(example["label"][..., 0], (raw == 0).astype(np.uint8))


def test_tiff_stacks_give_identical_examples(isbi_dir, tmp_path):
    write_tiff_stacks(isbi_dir, tmp_path / "tiff")
    from_png = build_isbi(isbi_dir, tmp_path / "tfds_png")
    from_tiff = build_isbi(tmp_path / "tiff", tmp_path / "tfds_tiff")
    assert from_tiff.info.metadata["source_layout"] == "tiff"
    for split in ("train", "validation"):
        png_examples, tiff_examples = examples_by_key(from_png, split), examples_by_key(from_tiff, split)
        assert sorted(png_examples) == sorted(tiff_examples)
        for i in png_examples:
            np.testing.assert_array_equal(png_examples[i]["image"], tiff_examples[i]["image"])
            np.testing.assert_array_equal(png_examples[i]["label"], tiff_examples[i]["label"])
            assert tiff_examples[i]["image/filename"].decode() == f"train-volume.tif:{i}"


def test_bad_slices_are_skipped_and_reported(tmp_path):
    root = tmp_path / "isbi"
    write_slices(root, 30)
    (root / "label" / "3.png").unlink()
    Image.fromarray(np.full((12, 16), 128, np.uint8), mode="L").save(root / "label" / "26.png")
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(root / "image" / "27.png")
    builder = build_isbi(root, tmp_path / "tfds")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 24, "validation": 3}
    report = skipped_examples(builder.info)
    assert [e["id"] for e in report["train"]] == ["03"]
    assert "not found" in report["train"][0]["reason"]
    reasons = {e["id"]: e["reason"] for e in report["validation"]}
    assert "128 (192 px)" in reasons["26"]
    assert "5x5" in reasons["27"] and "16x12" in reasons["27"]


def test_missing_validation_slices_make_the_split_absent(tmp_path):
    root = tmp_path / "isbi"
    write_slices(root, 25)
    builder = build_isbi(root, tmp_path / "tfds")
    assert set(builder.info.splits) == {"train"}
    assert builder.info.metadata["absent_splits"] == ["validation"]


def test_source_discovery_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-volume.tif \\+ train-labels.tif"):
        find_isbi_source(tmp_path)
    write_slices(tmp_path / "png", 1)
    write_tiff_stacks(tmp_path / "png", tmp_path / "tiff", count=1)
    (tmp_path / "tiff" / "train-labels.tif").unlink()
    with pytest.raises(FileNotFoundError, match="not .*train-labels.tif"):
        find_isbi_source(tmp_path / "tiff")
    shutil.copytree(tmp_path / "png", tmp_path / "parent" / "isbi2012")
    assert find_isbi_source(tmp_path / "parent").layout == "png"
