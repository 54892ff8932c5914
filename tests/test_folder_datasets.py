"""Your own data: exports (CVAT "Segmentation mask 1.1", images/ + masks/) built as TFDS datasets.

Every build is a real TFDS build into ``tmp_path`` from a real export written by
``own_data_fixture`` (NumPy labels written through PIL). Labels are compared pixel for
pixel with those NumPy arrays; each broken example must be reported by id with its reason.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from own_data_fixture import (
    CLASS_NAMES, write_cvat, write_images_masks,
)
from pixelwise.class_sets import VOC
from pixelwise.datasets import api
from pixelwise.datasets.folder import SOURCE_KEY, folder_builder, prepare, read_class_set
from pixelwise.datasets.split_plan import skipped_examples


def build(export_path, tmp_path, **kwargs):
    return prepare(folder_builder(export_path, data_dir=tmp_path / "data", **kwargs))


def examples(builder) -> dict[str, dict[str, dict]]:
    """{split: {filename: example}} of every split."""
    return {split: {e["image/filename"].decode(): e
                    for e in tfds.as_numpy(builder.as_dataset(split=split))}
            for split in builder.info.splits}


def assert_labels_equal_source(builder, export) -> dict[str, dict[str, dict]]:
    """Every good example written once, with the source's label pixel for pixel."""
    written = examples(builder)
    names = [name for split in written.values() for name in split]
    assert sorted(names) == sorted(export.labels)
    for split in written.values():
        for name, example in split.items():
            assert example["label"].dtype == np.uint8 and example["label"].shape[-1] == 1
            np.testing.assert_array_equal(example["label"][..., 0], export.labels[name],
                                          err_msg=name)
            if name in export.images:  # PNG images are stored losslessly
                np.testing.assert_array_equal(example["image"], export.images[name])
    return written


def assert_broken_reported(builder, export, split: str) -> None:
    skipped = skipped_examples(builder.info)
    reported = {entry["id"]: entry["reason"] for entry in skipped[split]}
    good = {s for stems_ in export.splits.values() for s in stems_}
    assert set(reported) - good == set(export.broken)
    for example_id, words in export.broken.items():
        assert words in reported[example_id], (example_id, reported[example_id])


def stems(split_examples: dict) -> list[str]:
    return sorted(Path(name).stem for name in split_examples)


# -- CVAT "Segmentation mask 1.1" ----------------------------------------------------------------

@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_cvat_export_builds_with_subsets_as_splits_and_reports_broken(tmp_path, zipped):
    export = write_cvat(tmp_path / "cvat_task", zipped=zipped)
    builder = build(export.path, tmp_path)
    assert builder.name == "cvat_task"
    written = assert_labels_equal_source(builder, export)
    assert {split: stems(ex) for split, ex in written.items()} == {
        split: sorted(s) for split, s in export.splits.items()}
    assert builder.info.metadata["class_names"] == list(CLASS_NAMES)
    assert builder.info.metadata["ignore_label"] == 255
    assert_broken_reported(builder, export, "default")
    repeated = [e for e in skipped_examples(builder.info)["default"]
                if e["id"] == export.splits["default"][0]]
    assert "listed more than once in ImageSets/Segmentation/default.txt" in repeated[0]["reason"]
    source = builder.info.metadata[SOURCE_KEY]
    assert source["layout"] == "cvat" and source["kind"] == ("zip" if zipped else "folder")
    assert source["split_rule"]["subsets"] == {"train": "train", "val": "validation",
                                               "default": "default"}


def test_cvat_index_masks_are_read_as_class_indices(tmp_path):
    export = write_cvat(tmp_path / "indexed", index_masks=True)
    builder = build(export.path, tmp_path)
    assert builder.info.metadata[SOURCE_KEY]["mask_encoding"] == "auto"
    assert_labels_equal_source(builder, export)
    assert_broken_reported(builder, export, "default")


def test_index_masks_may_be_rgb_with_equal_channels_but_not_colours(tmp_path):
    export = write_images_masks(tmp_path / "grey", encoding="index", num_good=3, broken=False)
    name = sorted(export.labels)[0]
    mask = export.path / "masks" / (Path(name).stem + ".png")
    Image.fromarray(np.repeat(export.labels[name][..., None], 3, axis=-1)).save(mask)
    other = sorted(export.labels)[1]
    coloured = np.zeros((*export.labels[other].shape, 3), np.uint8)
    coloured[..., 0] = export.labels[other]
    Image.fromarray(coloured).save(export.path / "masks" / (Path(other).stem + ".png"))
    del export.labels[other]
    export.broken[Path(other).stem] = "mask is an RGB colour image, but classes.txt defines index"
    builder = build(export.path, tmp_path, validation_fraction=0)
    assert_labels_equal_source(builder, export)
    assert_broken_reported(builder, export, "train")


def test_cvat_without_labelmap_uses_voc_classes_and_colours(tmp_path):
    export = write_cvat(tmp_path / "voc_like", labelmap=False)
    builder = build(export.path, tmp_path)
    assert builder.info.metadata["class_names"] == list(VOC.class_names)
    assert_labels_equal_source(builder, export)


def test_a_zip_of_a_folder_is_read_inside_its_one_top_folder(tmp_path):
    export = write_cvat(tmp_path / "task")
    archive = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(export.path.rglob("*")):
            if file.is_file():
                zf.write(file, "task_7_export/" + file.relative_to(export.path).as_posix())
        zf.writestr("__MACOSX/._labelmap.txt", b"junk")
    builder = build(archive, tmp_path)
    assert builder.name == "wrapped"
    assert_labels_equal_source(builder, export)


# -- images/ + masks/ --------------------------------------------------------------------------

def test_index_masks_with_classes_txt(tmp_path):
    export = write_images_masks(tmp_path / "Cells 2024", encoding="index")
    builder = build(export.path, tmp_path)
    assert builder.name == "cells_2024"
    assert builder.info.metadata["class_names"] == list(CLASS_NAMES)
    assert builder.info.metadata[SOURCE_KEY]["mask_encoding"] == "index"
    assert_labels_equal_source(builder, export)
    assert_broken_reported(builder, export, "train")


def test_colour_masks_with_class_dict_csv_and_a_void_row(tmp_path):
    export = write_images_masks(tmp_path / "colours", encoding="color")
    builder = build(export.path, tmp_path)
    # The "Void" row is no class: its colour marks void pixels, and later classes move up.
    assert builder.info.metadata["class_names"] == list(CLASS_NAMES)
    assert builder.info.metadata[SOURCE_KEY]["mask_encoding"] == "color"
    assert_labels_equal_source(builder, export)
    assert_broken_reported(builder, export, "train")


def test_split_folders_become_splits(tmp_path):
    export = write_images_masks(tmp_path / "split", encoding="index", split_folders=True)
    builder = build(export.path, tmp_path)
    written = assert_labels_equal_source(builder, export)
    assert {split: stems(ex) for split, ex in written.items()} == {
        split: sorted(s) for split, s in export.splits.items()}
    assert builder.info.metadata[SOURCE_KEY]["split_rule"]["folders"] == {
        "train": "train", "val": "validation"}


def _independent_validation(stems_, fraction, seed):
    ranked = sorted(stems_, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    return sorted(ranked[:max(1, round(len(ranked) * fraction))])


def test_without_split_folders_a_seeded_validation_fraction_is_recorded(tmp_path):
    export = write_images_masks(tmp_path / "flat", encoding="index", num_good=12)
    builder = build(export.path, tmp_path, validation_fraction=0.25, seed=3)
    written = examples(builder)
    good = [Path(n).stem for n in export.labels]
    # The split is planned before decoding: pairs whose files both exist take part, and
    # those found broken when decoded are reported in the split they fell in.
    decoded_broken = {"wide", "corrupt", "bad_value"}
    chosen = _independent_validation(good + sorted(decoded_broken), 0.25, 3)
    assert len(chosen) == 4
    assert stems(written["validation"]) == sorted(set(chosen) - decoded_broken)
    assert stems(written["train"]) == sorted(set(good) - set(chosen))
    source = builder.info.metadata[SOURCE_KEY]
    assert source["split_rule"] == {"rule": "validation fraction", "validation_fraction": 0.25,
                                    "seed": 3}
    assert (source["validation_fraction"], source["seed"]) == (0.25, 3)
    # Pairs broken by plan (a file missing, a stem twice) stay in train, where they are reported.
    reported = {split: {e["id"] for e in entries}
                for split, entries in skipped_examples(builder.info).items()}
    assert set(export.broken) - decoded_broken <= reported["train"]
    assert set().union(*reported.values()) == set(export.broken)


def test_zipped_images_masks(tmp_path):
    export = write_images_masks(tmp_path / "zipped", encoding="color", zipped=True)
    builder = build(export.path, tmp_path)
    assert builder.info.metadata[SOURCE_KEY]["kind"] == "zip"
    assert_labels_equal_source(builder, export)
    assert_broken_reported(builder, export, "train")


# -- the prepared dataset -------------------------------------------------------------------------

def test_prepared_export_reads_like_a_built_in_dataset(tmp_path):
    export = write_images_masks(tmp_path / "cells", encoding="index")
    builder = build(export.path, tmp_path)
    again = tfds.builder_from_directory(str(tmp_path / "data" / "cells" / "1.0.0"))
    voc = api.get_builder("voc2007_semantic", data_dir=tmp_path / "voc")
    assert repr(again.info.features) == repr(voc.info.features)
    for key in ("class_names", "palette", "ignore_label", "skipped"):
        assert again.info.metadata[key] == builder.info.metadata[key]
    assert again.info.metadata[SOURCE_KEY]["fingerprint"] == builder.source.fingerprint
    assert {s: again.info.splits[s].num_examples for s in again.info.splits} == {
        s: builder.info.splits[s].num_examples for s in builder.info.splits}
    summary = api.describe(builder)
    assert summary["name"] == "cells" and summary["source"]["layout"] == "images_masks"


def _stamp(tmp_path, name="cells"):
    return (tmp_path / "data" / name / "1.0.0" / "dataset_info.json").stat().st_mtime_ns


def test_unchanged_export_is_never_rebuilt_and_a_changed_one_is(tmp_path):
    export = write_images_masks(tmp_path / "cells", encoding="index", num_good=6)
    first = build(export.path, tmp_path)
    built_at = _stamp(tmp_path)
    # Unchanged: prepared as it is, through the API too.
    again = folder_builder(export.path, data_dir=tmp_path / "data")
    assert again.is_prepared() and prepare(again) is again
    assert api.build(str(export.path), data_dir=tmp_path / "data").is_prepared()
    assert _stamp(tmp_path) == built_at
    # Edited: a mask is repainted (new pixels, so new bytes and time).
    name = sorted(n for n in export.labels if n.endswith(".jpg"))[0]
    mask_path = export.path / "masks" / (Path(name).stem + ".png")
    edited = export.labels[name].copy()
    edited[1:5, 1:5] = 2
    time.sleep(0.01)
    Image.fromarray(edited).save(mask_path)
    export.labels[name] = edited
    stale = folder_builder(export.path, data_dir=tmp_path / "data")
    assert not stale.is_prepared() and "files" in stale.stale_reason()
    rebuilt = prepare(stale)
    assert rebuilt.is_prepared() and _stamp(tmp_path) != built_at
    assert_labels_equal_source(rebuilt, export)
    # Added and removed files rebuild too.
    image = np.zeros((20, 24, 3), np.uint8)
    Image.fromarray(image).save(export.path / "images" / "added.png")
    Image.fromarray(np.ones((20, 24), np.uint8)).save(export.path / "masks" / "added.png")
    export.labels["added.png"] = np.ones((20, 24), np.uint8)
    assert_labels_equal_source(api.build(str(export.path), data_dir=tmp_path / "data"), export)
    (export.path / "images" / "added.png").unlink()
    (export.path / "masks" / "added.png").unlink()
    del export.labels["added.png"]
    assert_labels_equal_source(api.build(str(export.path), data_dir=tmp_path / "data"), export)
    # Files the layout does not read (notes, a runs/ folder) change nothing.
    stamp = _stamp(tmp_path)
    (export.path / "notes.txt").write_text("annotated by A.")
    (export.path / "runs").mkdir()
    (export.path / "runs" / "history.csv").write_text("epoch\n1\n")
    assert folder_builder(export.path, data_dir=tmp_path / "data").is_prepared()
    assert first.name == "cells" and _stamp(tmp_path) == stamp


def test_changed_zip_rebuilds(tmp_path):
    export = write_images_masks(tmp_path / "cells", encoding="index", num_good=4, zipped=True)
    build(export.path, tmp_path)
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
    with zipfile.ZipFile(export.path, "a") as zf:
        zf.write(image, "images/new.png")
        zf.write(mask, "masks/new.png")
    export.labels["new.png"] = np.zeros((8, 8), np.uint8)
    builder = folder_builder(export.path, data_dir=tmp_path / "data")
    assert not builder.is_prepared()
    assert_labels_equal_source(prepare(builder), export)


def test_options_given_at_build_are_kept_by_later_uses(tmp_path):
    export = write_images_masks(tmp_path / "cells", encoding="index", num_good=12, broken=False)
    built = api.build(str(export.path), data_dir=tmp_path / "data", dataset_name="my_cells",
                      validation_fraction=0.5)
    assert built.name == "my_cells" and built.info.splits["validation"].num_examples == 6
    stamp = _stamp(tmp_path, "my_cells")
    # By its name, the prepared export is found, checked and kept (the fraction is the stored one).
    by_name = api.build("my_cells", data_dir=tmp_path / "data")
    assert by_name.source.validation_fraction == 0.5 and _stamp(tmp_path, "my_cells") == stamp
    # Another fraction is another split: rebuilt.
    other = api.build(str(export.path), data_dir=tmp_path / "data", dataset_name="my_cells",
                      validation_fraction=0.25)
    assert other.info.splits["validation"].num_examples == 3
    # The export gone, its prepared copy is still read by name.
    os.rename(export.path, tmp_path / "moved")
    copy = api.build("my_cells", data_dir=tmp_path / "data")
    assert copy.info.splits["validation"].num_examples == 3


def test_a_name_of_a_registered_dataset_is_refused(tmp_path):
    export = write_images_masks(tmp_path / "mnist", encoding="index", num_good=3)
    with pytest.raises(ValueError, match="registered TFDS dataset; pass another name"):
        folder_builder(export.path, data_dir=tmp_path / "data")
    renamed = folder_builder(export.path, data_dir=tmp_path / "data", name="my_mnist")
    assert renamed.name == "my_mnist"
    with pytest.raises(ValueError, match="lower-case letters"):
        folder_builder(export.path, data_dir=tmp_path / "data", name="My Digits")


def test_class_set_of_an_export_without_building(tmp_path):
    export = write_images_masks(tmp_path / "colours", encoding="color", num_good=2)
    class_set = read_class_set(export.path)
    assert class_set.class_names == CLASS_NAMES and class_set.void_color == (128, 128, 128)
    assert not (tmp_path / "data").exists()


# -- what cannot be read ---------------------------------------------------------------------

def test_unrecognised_layout_names_the_layouts_and_what_was_found(tmp_path):
    root = tmp_path / "photos"
    (root / "pictures").mkdir(parents=True)
    (root / "pictures" / "a.jpg").write_bytes(b"x")
    (root / "notes.txt").write_text("hi")
    with pytest.raises(ValueError) as error:
        folder_builder(root, data_dir=tmp_path / "data")
    message = str(error.value)
    assert "Unrecognised dataset layout" in message and "Segmentation mask 1.1" in message
    assert "images/ and masks/" in message and "Found: notes.txt, pictures/." in message


def test_nothing_usable_is_one_clear_error(tmp_path):
    root = tmp_path / "mismatched"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\nthing\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "a.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "b.png")
    with pytest.raises(ValueError) as error:
        folder_builder(root, data_dir=tmp_path / "data")
    message = str(error.value)
    assert "No usable example" in message and "image without a mask" in message
    assert "Segmentation mask 1.1" in message


@pytest.mark.parametrize("files, expected", [
    ({}, "no class file; expected classes.txt"),
    ({"classes.txt": "a\n\nb\n"}, "classes.txt line 2 is blank"),
    ({"classes.txt": "a\nb\na\n"}, "names ['a'] more than once"),
    ({"class_dict.csv": "class,r,g,b\na,0,0,0\n"}, "expected the header name,r,g,b"),
    ({"class_dict.csv": "name,r,g,b\na,0,0,0\nb,0,0,0\n"}, "to more than one class"),
    ({"class_dict.csv": "name,r,g,b\na,0,0,300\n"}, "three integers 0..255"),
    ({"classes.txt": "a\n", "class_dict.csv": "name,r,g,b\na,0,0,0\n"}, "has both"),
])
def test_bad_class_files_say_what_is_expected(tmp_path, files, expected):
    root = tmp_path / "export"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "a.png")
    for name, text in files.items():
        (root / name).write_text(text)
    with pytest.raises(ValueError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        folder_builder(root, data_dir=tmp_path / "data")


def test_bad_labelmap_line_is_named(tmp_path):
    root = tmp_path / "task"
    (root / "SegmentationClass").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "SegmentationClass" / "a.png")
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar\n")
    with pytest.raises(ValueError, match="labelmap.txt line 3: expected name:r,g,b"):
        folder_builder(root, data_dir=tmp_path / "data")


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        api.get_builder(str(tmp_path / "nowhere"), data_dir=tmp_path / "data")
