"""``pixelwise predict --beam``: RunInference over a glob or a file list, the same outputs as
``predict``, a dead-letter file of the broken images, and a re-run that redoes only what is missing.

The pipelines run on Beam's DirectRunner (multi-processing with two workers, and in-memory for
the re-run) over images of a few pixels and the tiny convolutional run of ``conftest.run_dir``.
"""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("apache_beam", reason="the optional 'beam' extra is not installed")

from pixelwise.cli import main  # noqa: E402
from pixelwise.inference.outputs import output_filenames  # noqa: E402

GOOD = 27


@pytest.fixture
def image_folder(tmp_path, random_image_file):
    """27 good images (PNG and JPEG, several sizes) and 3 broken ones (truncated PNG, text named
    .png, empty .jpg) in ``images/``; returns (folder, good paths, broken paths)."""
    folder = tmp_path / "images"
    folder.mkdir()
    good = []
    for index in range(GOOD):
        suffix = ".jpg" if index % 3 == 0 else ".png"
        good.append(random_image_file(folder / f"img{index:02d}{suffix}", 12 + index % 5,
                                      16 + index % 7, seed=index))
    truncated = folder / "truncated.png"
    truncated.write_bytes(good[1].read_bytes()[:60])
    text = folder / "notes.png"
    text.write_text("not an image")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    return folder, good, [truncated, text, empty]


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # ~30-60 s: two Beam worker processes start TensorFlow, then an in-memory re-run
def test_beam_predict_writes_predict_outputs_dead_letters_the_broken_and_resumes(
        tmp_path, run_dir, image_folder, capsys):
    from pixelwise.inference.beam import predict_beam
    from pixelwise.inference.files import predict_files

    folder, good, broken = image_folder
    out = tmp_path / "beam"
    code = main(["predict", "--beam", str(folder / "*.png"), str(folder / "*.jpg"),
                 "--run", str(run_dir), "--out", str(out), "--input-size", "32",
                 "--beam-options=--direct_num_workers=2"])
    captured = capsys.readouterr()
    assert code == 2, captured.err  # 3 images failed
    assert "30 images: 27 predicted, 0 already complete, 3 failed" in captured.out
    assert "dead-letter.jsonl" in captured.err

    dead = _lines(out / "dead-letter.jsonl")
    assert sorted(entry["path"] for entry in dead) == sorted(map(str, broken))
    assert all(entry["reason"].startswith("Expected") for entry in dead)

    # The same outputs as the plain loop, byte for byte, for the same images.
    plain = tmp_path / "plain"
    results = predict_files(run_dir, good, plain, options=_options(32))
    assert all(result.error is None for result in results)
    for path in good:
        for kind, filename in output_filenames(path.stem).items():
            assert (out / filename).read_bytes() == (plain / filename).read_bytes(), (path, kind)
    counts = {line["path"]: line for line in _lines(out / "counts.jsonl")}
    assert sorted(counts) == sorted(map(str, good))
    described = json.loads((plain / "img05.json").read_text())
    assert counts[str(folder / "img05.png")]["counts"] == described["counts"]
    assert counts[str(folder / "img05.png")]["boxes"] == len(described["boxes"])

    # A killed job: two images lost their last output, one lost its mask. The re-run redoes
    # those three (and retries the broken ones), and leaves the other 24 as they were.
    (out / "img03.json").unlink()
    (out / "img10.json").unlink()
    (out / "img20_mask.png").unlink()
    redone = {"img03", "img10", "img20"}
    kept = {p: p.stat().st_mtime_ns for p in out.iterdir()
            if p.suffix in (".png", ".json") and p.name.split("_")[0].split(".")[0] not in redone}
    assert len(kept) == 4 * 24
    file_list = tmp_path / "images.txt"
    file_list.write_text("# every image, the broken ones too\n"
                         + "".join(f"{p}\n" for p in sorted(good + broken)))
    summary = predict_beam(run_dir, [], out, file_list=file_list, options=_options(32),
                           beam_options="--direct_running_mode=in_memory")
    assert (summary.images, summary.predicted, summary.skipped, summary.failed) == (30, 3, 24, 3)
    assert summary.runs_loaded == 1
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    for name in redone:
        for filename in output_filenames(name).values():
            assert (out / filename).read_bytes() == (plain / filename).read_bytes()
    assert sorted(line["path"] for line in _lines(out / "counts.jsonl")) == sorted(map(str, good))
    assert len(_lines(out / "dead-letter.jsonl")) == 3


def _options(model_size):
    from pixelwise.inference.options import PredictOptions

    return PredictOptions(model_size=model_size)


def test_a_pattern_matching_nothing_is_refused_before_the_pipeline(tmp_path, run_dir, capsys):
    code = main(["predict", "--beam", str(tmp_path / "*.png"), "--run", str(run_dir),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "to match image files, received no match" in err
    assert not (tmp_path / "out").exists()


def test_pipeline_options_default_to_one_worker_per_cpu_and_pass_flags_through():
    import os

    from pixelwise.inference.beam import pipeline_options

    default = pipeline_options().get_all_options()
    assert default["runner"] == "DirectRunner"
    assert default["direct_running_mode"] == "multi_processing"
    assert default["direct_num_workers"] == len(os.sched_getaffinity(0))
    given = pipeline_options("--direct_num_workers=3 --job_name 'my job'").get_all_options()
    assert given["direct_num_workers"] == 3 and given["job_name"] == "my job"


def test_file_list_skips_comments_and_feeds_plain_predict_too(tmp_path, run_dir, random_image_file):
    image = random_image_file(tmp_path / "a.png", 10, 12)
    file_list = tmp_path / "list.txt"
    file_list.write_text(f"# one image\n\n  {image}  \n")
    assert main(["predict", "--file-list", str(file_list), "--run", str(run_dir),
                 "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.json").exists()


def test_without_apache_beam_one_error_names_the_extra(tmp_path, run_dir, monkeypatch, capsys):
    for module in ("pixelwise.inference.beam", "pixelwise.inference.beam_steps"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # what `import` meets when it is absent
    code = main(["predict", "--beam", "x.png", "--run", str(run_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert 'pip install "pixelwise[beam]"' in err and "'apache_beam'" in err


def test_a_worker_stages_a_run_folder_or_checkpoint_locally_and_loads_it(tmp_path, run_dir):
    """What a worker does with a ``gs://`` run (here through FileSystems' local paths)."""
    import numpy as np

    from pixelwise.inference.beam_steps import stage_run
    from pixelwise.runs.loading import load_run

    staged = stage_run(str(run_dir), str(tmp_path / "folder"))
    assert sorted(p.name for p in (tmp_path / "folder").rglob("*") if p.is_file()) == [
        "best.keras", "class_set.json", "config.json", "last.keras"]
    checkpoint = stage_run(str(run_dir / "checkpoints" / "last.keras"), str(tmp_path / "file"))
    assert checkpoint == str(tmp_path / "file" / "checkpoints" / "last.keras")
    batch = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    original = load_run(run_dir)
    for path in (staged, checkpoint):
        loaded = load_run(path)
        assert loaded.class_set == original.class_set
        assert np.array_equal(loaded.model.predict_on_batch(batch),
                              original.model.predict_on_batch(batch))
