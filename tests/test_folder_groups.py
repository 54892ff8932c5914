"""Group-aware split of folder exports: the frames of one video stay on one side.

Real images/ + masks/ exports of 16x16 PNGs written into ``tmp_path`` (five "videos" of 3..7
frames), real TFDS builds. Which examples went where is read back from the built splits
(``image/filename``) and checked against an independent ranking of whole groups by
SHA-256 of ``"<seed>:<group>"``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from own_data_fixture import CLASS_NAMES
from pixelwise.datasets import api
from pixelwise.datasets.folder import SOURCE_KEY, folder_builder, prepare

VIDEOS = {"vidA": 3, "vidB": 4, "vidC": 5, "vidD": 6, "vidE": 7}
RULE = r"^(.+?)_"


def write_frames(root: Path, stems: list[str], seed: int = 0) -> Path:
    """An images/ + masks/ export (classes.txt, index masks) with one 16x16 PNG pair per stem."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    for stem in stems:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            root / "images" / f"{stem}.png")
        Image.fromarray(rng.integers(0, len(CLASS_NAMES), (16, 16), dtype=np.uint8)).save(
            root / "masks" / f"{stem}.png")
    return root


def video_frames() -> list[str]:
    return [f"{video}_{index:04d}" for video, count in VIDEOS.items() for index in range(count)]


def split_names(builder) -> dict[str, set[str]]:
    """{split: {stored file name}} read back from the built dataset."""
    return {split: {e["image/filename"].decode()
                    for e in tfds.as_numpy(builder.as_dataset(split=split))}
            for split in builder.info.splits}


def independent_validation(group_of: dict[str, str], fraction: float, seed: int) -> set[str]:
    """Whole groups in SHA-256 order until round(n * fraction) names; never every group."""
    ranked = sorted(set(group_of.values()),
                    key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    chosen: set[str] = set()
    for group in ranked[:-1]:
        if len(chosen) >= max(1, round(len(group_of) * fraction)):
            break
        chosen |= {name for name, g in group_of.items() if g == group}
    return chosen


def assert_whole_groups(splits: dict[str, set[str]], group_of: dict[str, str],
                        fraction: float, seed: int) -> None:
    train = {group_of[n] for n in splits["train"]}
    validation = {group_of[n] for n in splits["validation"]}
    assert validation and not train & validation, (train, validation)
    assert splits["validation"] == independent_validation(group_of, fraction, seed)
    target = round(len(group_of) * fraction)
    largest = max(list(group_of.values()).count(g) for g in validation)
    assert target <= len(splits["validation"]) < target + largest


def _main(argv, capsys):
    from pixelwise.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- (1) a regex rule ---------------------------------------------------------------------------

def test_a_regex_rule_keeps_videos_whole_and_without_it_they_straddle(tmp_path, capsys):
    export = write_frames(tmp_path / "dashcam", video_frames())
    data = tmp_path / "data"
    code, out, err = _main(["datasets", "build", export, "--data-dir", data, "--groups", RULE,
                            "--validation-fraction", "0.2"], capsys)
    assert code == 0, err
    assert "validation fraction 0.2 (seed 0), whole groups by ^(.+?)_" in out
    builder = api.get_builder(str(export), data_dir=data)
    assert builder.is_prepared()
    group_of = {f"{stem}.png": stem.split("_")[0] for stem in video_frames()}
    assert_whole_groups(split_names(builder), group_of, 0.2, seed=0)
    source = builder.info.metadata[SOURCE_KEY]
    assert source["groups"] == RULE
    assert source["split_rule"] == {"rule": "validation fraction", "validation_fraction": 0.2,
                                    "seed": 0, "groups": RULE}
    code, out, err = _main(["datasets", "info", export, "--data-dir", data], capsys)
    assert code == 0 and "whole groups by ^(.+?)_" in out and "Prepared in" in out, err

    # The same export without the rule: the seeded share of frames splits videos.
    plain = api.build(str(export), data_dir=data, dataset_name="dashcam_frames",
                      validation_fraction=0.2)
    splits = split_names(plain)
    straddling = ({group_of[n] for n in splits["train"]}
                  & {group_of[n] for n in splits["validation"]})
    assert straddling, "test would be vacuous: the plain split kept every video whole"
    assert "groups" not in plain.info.metadata[SOURCE_KEY]["split_rule"]
    assert plain.info.metadata[SOURCE_KEY]["groups"] is None


def test_a_train_folder_without_val_is_split_by_groups_too(tmp_path):
    export = write_frames(tmp_path / "scans" / "train", video_frames()).parent
    (export / "train" / "classes.txt").rename(export / "classes.txt")
    builder = api.build(str(export), data_dir=tmp_path / "data", validation_fraction=0.3,
                        groups=RULE)
    group_of = {f"{stem}.png": stem.split("_")[0] for stem in video_frames()}
    assert_whole_groups(split_names(builder), group_of, 0.3, seed=0)
    assert builder.info.metadata[SOURCE_KEY]["split_rule"]["validation_from_train"] == {
        "validation_fraction": 0.3, "seed": 0, "groups": RULE}


# -- (2) a CSV rule -----------------------------------------------------------------------------

def test_a_csv_rule_keeps_its_groups_whole(tmp_path):
    # Groups the names do not show: frame i belongs to scene i % 5 (interleaved).
    stems = [f"f{i:03d}" for i in range(24)]
    export = write_frames(tmp_path / "tiles", stems + ["stray"])
    table = tmp_path / "scenes.csv"
    table.write_text("filename,group\n" + "".join(f"{s}.png,scene{i % 5}\n"
                                                  for i, s in enumerate(stems)))
    builder = prepare(folder_builder(export, data_dir=tmp_path / "data",
                                     validation_fraction=0.25, seed=4, groups=str(table)))
    group_of = {f"{s}.png": f"scene{i % 5}" for i, s in enumerate(stems)}
    group_of["stray.png"] = "stray.png"  # not in the CSV: a group of its own
    assert_whole_groups(split_names(builder), group_of, 0.25, seed=4)
    assert builder.info.metadata[SOURCE_KEY]["groups"] == str(table)


# -- (3) the stored rule ------------------------------------------------------------------------

def test_group_rule_of_a_built_export_is_the_stored_one(tmp_path):
    export = write_frames(tmp_path / "dashcam", video_frames())
    data = tmp_path / "data"
    built = api.build(str(export), data_dir=data, groups=RULE)
    assert api.group_rule(built) == RULE
    # Later uses by path and by name keep it, and so does the copy read without pixelwise.
    assert api.group_rule(api.get_builder(str(export), data_dir=data)) == RULE
    assert api.group_rule(api.build("dashcam", data_dir=data)) == RULE
    copy = tfds.builder_from_directory(str(data / "dashcam" / "1.0.0"))
    assert api.group_rule(copy) == RULE
    plain = api.build(str(export), data_dir=data, dataset_name="plain")
    assert api.group_rule(plain) is None


# -- (4) changing the rule rebuilds -------------------------------------------------------------

def _stamp(data: Path, name: str) -> int:
    return (data / name / "1.0.0" / "dataset_info.json").stat().st_mtime_ns


def test_changing_the_rule_marks_the_copy_stale_and_rebuilds(tmp_path, capsys):
    export = write_frames(tmp_path / "dashcam", video_frames())
    data = tmp_path / "data"
    api.build(str(export), data_dir=data, validation_fraction=0.2)
    built_at = _stamp(data, "dashcam")
    stale = folder_builder(export, data_dir=data, groups=RULE)
    assert not stale.is_prepared()
    assert "groups None -> ^(.+?)_" in stale.stale_reason()
    code, out, err = _main(["datasets", "build", export, "--data-dir", data, "--groups", RULE],
                           capsys)
    assert code == 0 and "whole groups by ^(.+?)_" in out, err
    assert _stamp(data, "dashcam") != built_at
    # Without --groups the stored rule is kept: prepared as it is.
    kept = folder_builder(export, data_dir=data)
    assert kept.is_prepared() and kept.source.groups == RULE
    # Another rule, or none, is another split.
    other = folder_builder(export, data_dir=data, groups=r"^vid(.)")
    assert "groups ^(.+?)_ -> ^vid(.)" in other.stale_reason()
    dropped = prepare(folder_builder(export, data_dir=data, groups="none"))
    assert dropped.is_prepared() and api.group_rule(dropped) is None


def test_an_edited_csv_rebuilds(tmp_path):
    export = write_frames(tmp_path / "dashcam", video_frames())
    table = tmp_path / "groups.csv"
    table.write_text("filename,group\n" + "".join(f"{s}.png,{s[:4]}\n" for s in video_frames()))
    data = tmp_path / "data"
    prepare(folder_builder(export, data_dir=data, groups=str(table)))
    assert folder_builder(export, data_dir=data).is_prepared()
    table.write_text("filename,group\n" + "".join(f"{s}.png,{s[-1]}\n" for s in video_frames()))
    stale = folder_builder(export, data_dir=data)
    assert not stale.is_prepared()
    assert f"the rows of the group file {table} changed" in stale.stale_reason()


# -- (5) bad rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bad regex", "csv without columns", "matches nothing"])
def test_a_bad_rule_is_one_error_naming_it_and_writes_nothing(tmp_path, capsys, kind):
    export = write_frames(tmp_path / "dashcam", video_frames()[:6])
    if kind == "bad regex":
        rule, words = "^(.+?_", "does not compile"
    elif kind == "csv without columns":
        rule, words = str(tmp_path / "videos.csv"), "columns filename and group"
        Path(rule).write_text("image,video\nvidA_0000.png,A\n")
    else:
        rule, words = "^cam([0-9])_", "matches none of the 6 file names"
    data = tmp_path / "data"
    code, out, err = _main(["datasets", "build", export, "--data-dir", data, "--groups", rule],
                           capsys)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and rule in err and words in err, err
    assert not data.exists()
    with pytest.raises(ValueError, match=words):
        api.build(str(export), data_dir=data, groups=rule)
    assert not data.exists()


def test_groups_apply_to_exports_only(tmp_path):
    with pytest.raises(ValueError, match="groups apply to a folder or .zip export"):
        api.build("camvid", data_dir=tmp_path, groups=RULE)
