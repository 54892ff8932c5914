"""The one path from listed pairs to examples: generation without side effects, the skip report
worked out after the build (repeated keys, undecodable pairs, TFDS' max_examples_per_split)."""

from __future__ import annotations

import copy
import shutil

import pytest
import tensorflow_datasets as tfds

import pixelwise.datasets as pd
from pixelwise.datasets.split_plan import ExamplePair, SplitPlan, plan_skip_report
from pixelwise.datasets.voc_semantic import plan_voc_split


def _pairs(*keys):
    return [ExamplePair(key, f"{key}.jpg", f"{key}.png", f"{key}.jpg") for key in keys]


def _reason(pair):
    return f"bad {pair.key}" if pair.key.startswith("bad") else None


def test_report_lists_missing_pairs_and_repeats_in_listing_order():
    plan = SplitPlan(_pairs("bad1", "a", "b", "a", "bad2"), source="train.txt")
    assert [p.key for p in plan.pairs()] == ["bad1", "a", "b", "bad2"]
    report = plan_skip_report(plan, 2, lambda: ["a.jpg", "b.jpg"], _reason)
    assert report == [
        {"id": "bad1", "reason": "bad bad1"},
        {"id": "a", "reason": "listed more than once in train.txt; only the first is used"},
        {"id": "bad2", "reason": "bad bad2"},
    ]


def test_written_split_is_read_only_when_something_is_missing():
    def never():
        raise AssertionError("the written split was read although nothing is missing")

    plan = SplitPlan(_pairs("a", "b", "a"), source="val.txt")
    assert plan_skip_report(plan, 2, never, _reason) == [
        {"id": "a", "reason": "listed more than once in val.txt; only the first is used"}]


def test_pairs_after_the_max_examples_cut_are_not_reported():
    plan = SplitPlan(_pairs("bad1", "a", "b", "bad2"), source="train.txt")
    # TFDS stopped after one example ("a"): "b" and "bad2" were never read.
    assert plan_skip_report(plan, 1, lambda: ["a.jpg"], _reason, max_examples=1) == [
        {"id": "bad1", "reason": "bad bad1"}]
    # A cut the split did not reach reports everything.
    assert [e["id"] for e in plan_skip_report(plan, 2, lambda: ["a.jpg", "b.jpg"], _reason,
                                              max_examples=3)] == ["bad1", "bad2"]


@pytest.fixture
def edited_voc(voc2007_extracted, tmp_path):
    """A copy of the extracted VOC 2007 fixture whose train.txt starts with a broken id and
    lists its first good id twice."""
    manual = tmp_path / "manual"
    shutil.copytree(voc2007_extracted.devkit, manual / "VOCdevkit")
    voc_dir = manual / "VOCdevkit" / "VOC2007"
    train_list = voc_dir / "ImageSets" / "Segmentation" / "train.txt"
    good = list(voc2007_extracted.labels["train"])
    broken = list(voc2007_extracted.skipped["train"])
    listed = [broken[0], good[0], good[1], good[0], *good[2:], *broken[1:]]
    train_list.write_text("".join(f"{i}\n" for i in listed))
    return voc2007_extracted, voc_dir, listed


def test_repeated_id_is_built_once_and_reported_in_place(edited_voc, tmp_path):
    fixture, _, listed = edited_voc
    builder = pd.build("voc2007_semantic", data_dir=tmp_path / "data", manual_dir=tmp_path / "manual")
    assert builder.info.splits["train"].num_examples == fixture.num_examples["train"]
    report = pd.skipped_examples(builder.info)["train"]
    broken = list(fixture.skipped["train"])
    assert [e["id"] for e in report] == [broken[0], listed[1], *broken[1:]]
    assert report[1]["reason"] == "listed more than once in train.txt; only the first is used"
    on_disk = pd.skipped_examples(tfds.builder("voc2007_semantic", data_dir=tmp_path / "data").info)
    assert on_disk["train"] == report


def test_generating_examples_has_no_side_effects(edited_voc, tmp_path):
    fixture, voc_dir, listed = edited_voc
    builder = pd.build("voc2007_semantic", data_dir=tmp_path / "data", manual_dir=tmp_path / "manual")
    metadata = copy.deepcopy(dict(builder.info.metadata))
    plan = plan_voc_split(voc_dir, "train")
    first = [key for key, _ in builder._generate_examples(plan)]
    again = [key for key, _ in builder._generate_examples(plan)]
    good = list(fixture.labels["train"])
    assert first == again == [good[0], good[1], *good[2:]]
    assert dict(builder.info.metadata) == metadata


def test_max_examples_per_split_reports_only_what_was_read(edited_voc, tmp_path):
    fixture, _, listed = edited_voc
    builder = tfds.builder("voc2007_semantic", data_dir=tmp_path / "data")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(tmp_path / "manual"), max_examples_per_split=2))
    assert builder.info.splits["train"].num_examples == 2
    # Read: the broken first id and two good ones, not the later broken ids. Repeats are
    # known from the listing alone, so the repeated id is reported either way.
    assert [e["id"] for e in pd.skipped_examples(builder.info)["train"]] == [
        list(fixture.skipped["train"])[0], listed[1]]
    assert "validation" not in pd.skipped_examples(builder.info)
