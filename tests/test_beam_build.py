"""Beam builds (``datasets build --beam``) write the plain build's examples and skip report.

A small images/ + masks/ export with six broken pairs (``own_data_fixture``) is built
plainly, then on Beam's DirectRunner: in-process from Python, and with two worker
processes from the command line. Each example is hashed from its stored bytes (image,
label, file name), so the comparison does not go through pixelwise's decoding.
"""

from __future__ import annotations

import hashlib
import sys

import pytest
import tensorflow_datasets as tfds
from own_data_fixture import write_images_masks

from pixelwise import cli
from pixelwise.datasets import api, segmentation_builder
from pixelwise.datasets import beam as beam_module
from pixelwise.datasets.beam import LostExamplesError, download_config
from pixelwise.datasets.split_plan import skipped_examples
from pixelwise.extras import MissingExtraError

pytest.importorskip("apache_beam")

IN_PROCESS = "--direct_running_mode=in_memory --direct_num_workers=1"


def example_hashes(builder) -> dict[str, set[str]]:
    """``{split: {sha256(image bytes + label bytes + file name)}}`` of a built dataset."""
    raw = {"image": tfds.decode.SkipDecoding(), "label": tfds.decode.SkipDecoding()}
    hashes = {}
    for split in builder.info.splits:
        dataset = builder.as_dataset(split=split, decoders=raw)
        hashes[split] = {
            hashlib.sha256(ex["image"] + b"|" + ex["label"] + b"|" + ex["image/filename"]).hexdigest()
            for ex in tfds.as_numpy(dataset)
        }
    return hashes


@pytest.fixture(scope="module")
def plain_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam_build")
    export = write_images_masks(root / "cells")
    builder = api.build(str(export.path), data_dir=root / "plain")
    return export, builder, example_hashes(builder)


@pytest.mark.slow
def test_beam_build_writes_the_plain_examples_and_skip_report(plain_build, tmp_path, monkeypatch):
    export, plain, hashes = plain_build
    transforms, real = [], segmentation_builder.examples_transform

    def counted(builder, plan):  # the real Beam transform, counted: the build ran on Beam
        transforms.append(real(builder, plan))
        return transforms[-1]

    monkeypatch.setattr(segmentation_builder, "examples_transform", counted)
    beam = api.build(str(export.path), data_dir=tmp_path, beam_options=IN_PROCESS)
    assert len(transforms) == len(beam.info.splits)
    assert example_hashes(beam) == hashes
    assert sum(map(len, hashes.values())) == 10  # the export's good pairs, all written
    skipped = skipped_examples(beam.info)
    assert skipped == skipped_examples(plain.info)
    reasons = {entry["id"]: entry["reason"] for entries in skipped.values() for entry in entries}
    assert set(reasons) == set(export.broken)
    for key, word in export.broken.items():
        assert word in reasons[key]


@pytest.mark.slow
def test_cli_beam_build_on_two_worker_processes(plain_build, tmp_path, capsys):
    export, plain, hashes = plain_build
    code = cli.main(["datasets", "build", str(export.path), "--data-dir", str(tmp_path), "--beam",
                     "--beam-options=--direct_num_workers=2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Skipped {len(export.broken)} example(s):" in out
    for key, word in export.broken.items():
        assert f"train/{key}: " in out and word in out
    beam = api.get_builder(str(export.path), data_dir=tmp_path)
    assert example_hashes(beam) == hashes
    assert skipped_examples(beam.info) == skipped_examples(plain.info)


def test_beam_options_follow_the_defaults_and_win_over_them():
    config = download_config(beam_options="--direct_num_workers=2 --runner=DataflowRunner "
                             "--temp_location='gs://b/tmp dir'")
    options = config.beam_options.get_all_options()
    assert options["direct_num_workers"] == 2
    assert options["direct_running_mode"] == "multi_processing"
    assert options["runner"] == "DataflowRunner"
    assert options["temp_location"] == "gs://b/tmp dir"
    assert download_config(beam=True).beam_options.get_all_options()["direct_num_workers"] == 0
    assert download_config().beam_options is None


def test_beam_without_apache_beam_is_one_error_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "pixelwise\[beam\]"'):
        download_config(beam=True)
    assert download_config().beam_options is None  # a plain build needs no Beam
    code = cli.main(["datasets", "build", "synthetic_shapes", "--data-dir", str(tmp_path),
                     "--beam"])
    err = capsys.readouterr().err
    assert code == 2
    assert 'pixelwise[beam]' in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
def test_voc_beam_build_matches_the_plain_build(voc2007, voc2007_built, tmp_path):
    plain = api.get_builder("voc2007_semantic", data_dir=voc2007_built["data_dir"])
    beam = api.build("voc2007_semantic", data_dir=tmp_path, manual_dir=voc2007.root,
                     beam_options=IN_PROCESS)
    assert example_hashes(beam) == example_hashes(plain)
    assert skipped_examples(beam.info) == skipped_examples(plain.info)
    assert any(skipped_examples(plain.info).values())  # the fixture has broken pairs


@pytest.mark.slow
def test_beam_split_with_no_usable_pair_fails_as_the_plain_build_does(tmp_path):
    export = write_images_masks(tmp_path / "all_broken", num_good=0)
    errors = []
    for data_dir, options in ((tmp_path / "plain", None), (tmp_path / "beam", IN_PROCESS)):
        with pytest.raises(ValueError, match="none of the 5 example") as error:
            api.build(str(export.path), data_dir=data_dir, beam_options=options)
        errors.append(str(error.value))
        assert not data_dir.exists() or not any(data_dir.rglob("*.tfrecord*"))
    assert errors[0] == errors[1]


def _losing_first_good_pair(pair, builder):
    """``beam._loaded_example`` of a runner that drops one pair that loads (``img_000``)."""
    if pair.key == "img_000":
        return
    yield from _LOADED_EXAMPLE(pair, builder)


_LOADED_EXAMPLE = beam_module._loaded_example


@pytest.mark.slow
def test_beam_build_whose_runner_loses_an_example_fails_and_keeps_nothing(tmp_path, monkeypatch,
                                                                        capsys):
    # The local multi-processing DirectRunner lost examples on 2 of 3 builds of 20,000
    # pairs (docs/scale.md); a loss must fail the build, not leave a dataset without them.
    export = write_images_masks(tmp_path / "cells")
    monkeypatch.setattr(beam_module, "_loaded_example", _losing_first_good_pair)
    with pytest.raises(LostExamplesError, match=r"lost examples of split .*img_000"):
        api.build(str(export.path), data_dir=tmp_path / "data", beam_options=IN_PROCESS)
    assert not any((tmp_path / "data").rglob("*.tfrecord*"))
    # The command line: one line, exit 2, nothing kept.
    code = cli.main(["datasets", "build", str(export.path), "--data-dir", str(tmp_path / "cli"),
                     f"--beam-options={IN_PROCESS}"])
    stderr = capsys.readouterr().err
    assert code == 2 and "lost examples of split" in stderr and "Traceback" not in stderr
    assert not any((tmp_path / "cli").rglob("*.tfrecord*"))
