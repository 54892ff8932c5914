"""`pixelwise evaluate | predict | export` end to end: real files, real TFDS build, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from run_fixture import TINY_CLASSES, tiny_conv_model, tiny_unet, write_run


def _main(argv, capsys):
    from pixelwise.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_cli_prints_counts_and_summarises_failures(tmp_path, run_dir, capsys, random_image_file):
    good = random_image_file(tmp_path / "street.png", 33, 47)
    second = random_image_file(tmp_path / "second.bmp", 20, 25, seed=1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    out = tmp_path / "out"
    code, stdout, stderr = _main(
        ["predict", good, tmp_path / "nope.png", broken, second, "--run", run_dir, "--out", out,
         "--input-size", "32", "--min-area", "1"], capsys)
    assert code == 2
    error_lines = stderr.strip().splitlines()
    assert len(error_lines) == 3  # one per bad image, then the summary
    assert "nope.png" in error_lines[0] and "does not exist" in error_lines[0]
    assert "broken.jpg" in error_lines[1]
    assert error_lines[2].startswith("pixelwise predict: 2 of 4 images failed")
    data = json.loads((out / "street.json").read_text())
    nonzero = {name: count for name, count in data["counts"].items() if count}
    for name, count in nonzero.items():
        assert f"{name} {count}" in stdout
    assert sum(data["counts"].values()) == 33 * 47
    assert (out / "second_mask.png").exists()
    assert not list(out.glob("broken*")) and not list(out.glob("nope*"))


def test_predict_cli_tiled_native_resolution(tmp_path, run_dir, capsys, random_image_file):
    image = random_image_file(tmp_path / "large.png", 150, 170)
    code, stdout, _ = _main(["predict", image, "--run", run_dir, "--out", tmp_path / "o",
                             "--tile", "64", "--overlap", "8"], capsys)
    assert code == 0 and "(170x150)" in stdout
    assert Image.open(tmp_path / "o" / "large_mask.png").size == (170, 150)


@pytest.mark.parametrize("case", ["no_checkpoint", "mismatch", "no_run", "bad_size"])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, random_image_file, conv_model):
    image = random_image_file(tmp_path / "a.png", 33, 47)
    out = tmp_path / "out"
    if case == "no_checkpoint":
        argv = ["predict", image, "--run", write_run(tmp_path / "run", conv_model, checkpoints=()), "--out", out]
        expected = "no best checkpoint"
    elif case == "mismatch":
        run = write_run(tmp_path / "run", conv_model)
        argv = ["predict", image, "--checkpoint", run / "checkpoints" / "best.keras",
                "--class-set", "voc", "--out", out]
        expected = "outputs 3 channels"
    elif case == "no_run":
        argv = ["export", "--out", out]
        expected = "--run"
    else:
        argv = ["predict", image, "--run", tmp_path, "--out", out, "--input-size", "-3"]
        expected = "--input-size"
    try:
        code, _, stderr = _main(argv, capsys)
    except SystemExit as exit_:  # argparse type errors exit 2 with a usage line
        code, stderr = exit_.code, capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert expected in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_help_states_defaults(capsys):
    with pytest.raises(SystemExit):
        _main(["predict", "--help"], capsys)
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 512)" in text and "(default: 100)" in text and "(default: best)" in text


@pytest.mark.slow  # ~3 s: a SavedModel export
def test_export_cli_savedmodel(tmp_path, capsys):
    import tensorflow as tf

    model = tiny_unet()
    run = write_run(tmp_path / "run", model, config={"image_size": 64})
    code, stdout, _ = _main(["export", "--run", run, "--format", "savedmodel",
                             "--out", tmp_path / "sm"], capsys)
    assert code == 0 and "savedmodel" in stdout
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    logits = np.asarray(model(images.astype(np.float32) / 255.0, training=False))
    np.testing.assert_array_equal(serve(images=tf.constant(images))["labels"].numpy(), logits.argmax(-1))


def test_evaluate_cli_on_the_voc_fixture_equals_numpy(voc2007, voc2007_built, tmp_path, capsys):
    """A real TFDS build of the VOC fixture; labels from the fixture's own arrays."""
    import tensorflow as tf

    from pixelwise.data.pipeline import load_split
    from pixelwise.class_sets import VOC

    fixture = voc2007
    options = dict(voc2007_built)
    model = tiny_unet(num_classes=21)
    run = write_run(tmp_path / "run", model, class_set=VOC,
                    config={"dataset": "voc2007_semantic", "image_size": 64, **options})
    code, stdout, stderr = _main(["evaluate", "--run", run, "--split", "validation"], capsys)
    assert code == 0, stderr
    assert "background" in stdout and "mean IoU" in stdout

    # Independent: fixture labels + the Keras model on each image, step by step.
    examples, _ = load_split("voc2007_semantic", "validation", **options)
    confusion = np.zeros((21, 21), np.int64)
    for example in examples.as_numpy_iterator():
        image_id = example["image/filename"].decode().rsplit(".", 1)[0]
        label = fixture.labels["validation"][image_id][..., 0].astype(np.int64)
        x = tf.image.resize(example["image"].astype(np.float32), (64, 64), antialias=True).numpy()
        logits = np.asarray(model(np.clip(np.round(x), 0, 255)[None] / 255.0, training=False))[0]
        probs = tf.image.resize(tf.nn.softmax(logits), label.shape, method="bilinear").numpy()
        keep = label != 255
        np.add.at(confusion, (label[keep], probs.argmax(-1)[keep]), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    metrics = json.loads((run / "eval-validation.json").read_text())
    assert metrics["mean_iou"] == pytest.approx(iou.mean(), abs=1e-6)
    assert metrics["pixel_accuracy"] == pytest.approx(tp.sum() / confusion.sum(), abs=1e-6)
    assert metrics["num_images"] == fixture.num_examples["validation"]
    assert json.loads((run / "confusion-validation.json").read_text())["matrix"] == confusion.tolist()
    assert (run / "confusion-validation.png").exists()


def test_evaluate_cli_on_a_bare_keras_file_equals_numpy(voc2007, tmp_path, capsys):
    """No run folder: any .keras file, the class set from the dataset's metadata, results in --out."""
    from pixelwise.data.pipeline import load_split

    model = tiny_conv_model(num_classes=21)  # any size: native resolution needs no resizing
    model_file = tmp_path / "models" / "voc-conv.keras"
    model_file.parent.mkdir()
    model.save(model_file)
    fixture = voc2007  # evaluate builds the dataset from it into tmp_path / "tfds"
    data = ["--dataset", "voc2007_semantic", "--data-dir", tmp_path / "tfds",
            "--manual-dir", voc2007.root]

    # Without --out or --dataset: one clear line, before any dataset is built.
    for argv, expected in (([*data], "--out DIR"), (["--out", tmp_path / "o"], "--dataset D")):
        code, _, stderr = _main(["evaluate", "--checkpoint", model_file, *argv], capsys)
        assert code == 2 and expected in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tfds").exists() and not (tmp_path / "o").exists()

    out = tmp_path / "eval"
    code, stdout, stderr = _main(["evaluate", "--checkpoint", model_file, *data, "--out", out], capsys)
    assert code == 0, stderr
    assert "aeroplane" in stdout and "mean IoU" in stdout

    # Independent: fixture labels + the Keras model on each image at its own size.
    examples, _ = load_split("voc2007_semantic", "validation", data_dir=str(tmp_path / "tfds"))
    confusion = np.zeros((21, 21), np.int64)
    for example in examples.as_numpy_iterator():
        image_id = example["image/filename"].decode().rsplit(".", 1)[0]
        label = fixture.labels["validation"][image_id][..., 0].astype(np.int64)
        logits = np.asarray(model(example["image"][None].astype(np.float32) / 255.0, training=False))[0]
        keep = label != 255
        np.add.at(confusion, (label[keep], logits.argmax(-1)[keep]), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    metrics = json.loads((out / "eval-validation.json").read_text())
    assert metrics["mean_iou"] == pytest.approx((tp[union > 0] / union[union > 0]).mean(), abs=1e-6)
    assert metrics["pixel_accuracy"] == pytest.approx(tp.sum() / confusion.sum(), abs=1e-6)
    assert metrics["class_set"] == "voc" and metrics["checkpoint"] == str(model_file)
    assert json.loads((out / "confusion-validation.json").read_text())["matrix"] == confusion.tolist()
    assert sorted(p.name for p in model_file.parent.iterdir()) == ["voc-conv.keras"]

    # A class set other than the dataset's is refused, nothing written.
    code, _, stderr = _main(["evaluate", "--checkpoint", model_file, *data, "--class-set", "camvid",
                             "--out", tmp_path / "o2"], capsys)
    assert code == 2 and "leave class_set= out" in stderr and "--class-set for class_set=" in stderr and not (tmp_path / "o2").exists()


def test_predict_with_a_keras_file_finds_its_run_or_asks_for_a_class_set(tmp_path, run_dir, capsys, random_image_file):
    import shutil

    image = random_image_file(tmp_path / "a.png", 33, 47)
    code, stdout, _ = _main(["predict", image, "--checkpoint", run_dir / "checkpoints" / "best.keras",
                             "--out", tmp_path / "o1", "--input-size", "32"], capsys)
    assert code == 0 and "(47x33)" in stdout
    loose = tmp_path / "loose.keras"
    shutil.copy(run_dir / "checkpoints" / "best.keras", loose)
    code, _, stderr = _main(["predict", image, "--checkpoint", loose, "--out", tmp_path / "o2"], capsys)
    assert code == 2 and "--class-set" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, _ = _main(["predict", image, "--checkpoint", loose, "--class-set", "isbi2012",
                        "--out", tmp_path / "o3"], capsys)
    assert code == 2  # 3 outputs vs 2 classes: mismatch
    tiny_json = tmp_path / "tiny.json"
    tiny_json.write_text(TINY_CLASSES.to_json())
    code, _, _ = _main(["predict", image, "--checkpoint", loose, "--class-set", tiny_json,
                        "--out", tmp_path / "o4", "--input-size", "native"], capsys)
    assert code == 0 and (tmp_path / "o4" / "a_mask.png").exists()


def test_evaluate_cli_refuses_a_dataset_with_other_classes(voc2007_built, tmp_path, capsys, conv_model):
    options = dict(voc2007_built)
    run = write_run(tmp_path / "run", conv_model, config={"dataset": "voc2007_semantic", **options})
    code, _, stderr = _main(["evaluate", "--run", run], capsys)
    assert code == 2 and "trained on ['background', 'disc', 'square']" in stderr
    # (the dataset build's own progress goes to stderr too; the error itself is one line)
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("pixelwise evaluate: error:")
    empty = write_run(tmp_path / "empty", conv_model, checkpoints=(),
                      config={"dataset": "voc2007_semantic", **options})
    code, _, stderr = _main(["evaluate", "--run", empty], capsys)
    assert code == 2 and "no best checkpoint" in stderr
    assert sorted(p.name for p in empty.iterdir()) == ["checkpoints", "class_set.json", "config.json"]


def test_evaluate_cli_on_real_camvid_at_native_resolution(tmp_path, camvid_dir, capsys):
    """Three real CamVid validation images (480x360, void = 255): `pixelwise evaluate` equals a
    NumPy computation from the label PNGs themselves (11 "Unlabelled" -> void)."""
    import shutil

    import tensorflow as tf

    from pixelwise.class_sets import CAMVID

    root = tmp_path / "CamVid"
    for folder, count in (("train", 1), ("val", 3)):
        lines = (camvid_dir / f"{folder}.txt").read_text().splitlines()[:count]
        for sub in (folder, f"{folder}annot"):
            (root / sub).mkdir(parents=True)
        for line in lines:
            for listed in line.split():
                relative = Path(*Path(listed).parts[-2:])
                shutil.copy(camvid_dir / relative, root / relative)
        (root / f"{folder}.txt").write_text("\n".join(lines) + "\n")
    model = tiny_conv_model(num_classes=11)
    run = write_run(tmp_path / "run", model, class_set=CAMVID, config={
        "dataset": "camvid", "image_size": [48, 64], "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(root)})
    code, stdout, stderr = _main(["evaluate", "--run", run], capsys)
    assert code == 0, stderr
    assert "Bicyclist" in stdout and "model input 48x64" in stdout

    confusion = np.zeros((11, 11), np.int64)
    for path in sorted((root / "val").glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"), np.float32)
        label = np.asarray(Image.open(root / "valannot" / path.name)).astype(np.int64)
        x = np.clip(np.round(tf.image.resize(image, (48, 64), antialias=True).numpy()), 0, 255)
        logits = np.asarray(model(x[None] / 255.0, training=False))[0]
        predicted = tf.image.resize(tf.nn.softmax(logits), label.shape, method="bilinear").numpy().argmax(-1)
        keep = label != 11
        np.add.at(confusion, (label[keep], predicted[keep]), 1)
    written = np.array(json.loads((run / "confusion-validation.json").read_text())["matrix"])
    assert written.sum() == confusion.sum()  # same void pixels excluded
    # float32 softmax in NumPy vs TensorFlow may flip a near-tie argmax on a pixel or two
    assert np.abs(written - confusion).sum() <= 2e-4 * confusion.sum()
    metrics = json.loads((run / "eval-validation.json").read_text())
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    assert metrics["mean_iou"] == pytest.approx((tp[union > 0] / union[union > 0]).mean(), abs=1e-4)
    assert metrics["num_images"] == 3 and metrics["image_size"] is None
    assert metrics["predict_options"]["model_size"] == [48, 64]


@pytest.mark.slow
def test_evaluate_a_trained_run_reproduces_its_validation_metrics(voc2007_built, tmp_path, capsys):
    """The run-folder contract with the real training code: `pixelwise evaluate --image-size`
    at the training size gives the val_pixel_accuracy / val_mean_iou that `fit` logged."""
    from pixelwise.training.loop import TrainConfig, train
    from training_fixture import TINY

    voc = dict(voc2007_built)
    out = tmp_path / "run"
    train(TrainConfig.from_dict({**TINY, **voc, "out": str(out), "epochs": 1}))
    logged = json.loads((out / "metrics.json").read_text())["final"]
    code, stdout, stderr = _main(["evaluate", "--run", out, "--checkpoint", "last",
                                  "--image-size", "64", "--out", tmp_path / "fixed"], capsys)
    assert code == 0, stderr
    fixed = json.loads((tmp_path / "fixed" / "eval-validation.json").read_text())
    assert fixed["pixel_accuracy"] == pytest.approx(logged["val_pixel_accuracy"], abs=1e-5)
    assert fixed["mean_iou"] == pytest.approx(logged["val_mean_iou"], abs=1e-5)
    code, _, stderr = _main(["evaluate", "--run", out], capsys)  # native: its own files
    assert code == 0 and (out / "eval-validation.json").exists()
