"""`pixelwise report`: one self-contained HTML page about a run, rendered in a real headless Chromium.

The run is a tiny real run folder on the VOC fixture (a seeded 4-filter U-Net at 64 px, a
two-epoch history.csv); the images shown and their mean IoU are checked against a NumPy
re-computation, the page against Debian's chromium (installed by .ci/run).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from run_fixture import tiny_unet, write_run
from training_fixture import numpy_mean_iou

CHROMIUM = shutil.which("chromium")
SECTIONS = ("config", "curves", "metrics", "per-class", "confusion", "examples", "exports")
HEADINGS = ("Configuration", "Training curves", "Metrics", "Per-class IoU", "Confusion matrix",
            "Worst and best images", "Exports")
HISTORY = """epoch,loss,mean_iou,pixel_accuracy,val_loss,val_mean_iou,val_pixel_accuracy
1,3.1,0.01,0.05,3.0,0.012,0.06
2,2.7,0.03,0.21,2.8,0.02,0.18
"""


@pytest.fixture(scope="module")
def voc_run_template(voc2007_built, tmp_path_factory):
    from pixelwise.class_sets import VOC

    run = write_run(tmp_path_factory.mktemp("report") / "run", tiny_unet(num_classes=21),
                    class_set=VOC,
                    config={"dataset": "voc2007_semantic", "image_size": [64, 64], **voc2007_built})
    (run / "history.csv").write_text(HISTORY)
    return run


@pytest.fixture
def voc_run(voc_run_template, tmp_path):
    """A private copy of the run folder (reports write eval-SPLIT.json into it)."""
    return shutil.copytree(voc_run_template, tmp_path / "run")


def _numpy_per_image_iou(run, voc2007_built):
    """Each validation image's mean IoU, predicted step by step as evaluate's native mode does."""
    import keras
    import tensorflow as tf

    from pixelwise.data.pipeline import load_split

    model = keras.models.load_model(run / "checkpoints" / "best.keras", compile=False)
    examples, _ = load_split("voc2007_semantic", "validation", **voc2007_built)
    scores = []
    for example in examples.as_numpy_iterator():
        label = example["label"][..., 0]
        x = tf.image.resize(example["image"].astype(np.float32), (64, 64), antialias=True).numpy()
        logits = np.asarray(model(np.clip(np.round(x), 0, 255)[None] / 255.0, training=False))[0]
        probs = tf.image.resize(tf.nn.softmax(logits), label.shape, method="bilinear").numpy()
        scores.append(numpy_mean_iou(label, probs, 21)[0])
    return np.array(scores)


def _chromium(page, *args):
    """Headless Chromium on ``file://page`` with no network, no profile, no GPU."""
    profile = page.parent / "chromium-profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _main(argv, capsys):
    from pixelwise.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow  # 10-20 s: an evaluation, two predictions, a browser start
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed; .ci/run installs "
                    "it (apt-get install --no-install-recommends chromium)")
def test_report_is_one_self_contained_page_that_renders_in_headless_chromium(voc_run, tmp_path, capsys):
    out = tmp_path / "report" / "report.html"
    assert not (voc_run / "eval-validation.json").exists()
    code, stdout, stderr = _main(["report", "--run", voc_run, "--out", out, "-n", "1"], capsys)
    assert code == 0, stderr
    assert "evaluating the run on validation first" in stderr
    assert (voc_run / "eval-validation.json").exists()  # evaluated first, and kept
    assert str(out) in stdout
    page = out.read_text()

    # Self-contained: every picture a data URI, nothing fetched, no script.
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert links and all(link.startswith(("data:", "#")) for link in links), [
        link[:40] for link in links if not link.startswith(("data:", "#"))]
    assert "<script" not in page and "<link" not in page and "url(" not in page
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # curves, per-class bars, confusion matrix, and 3 panels for the worst and the best image
    assert len(pictures) == 3 + 2 * 3
    for picture in pictures:
        Image.open(io.BytesIO(base64.b64decode(picture))).verify()
    for key in SECTIONS:
        assert f'<section id="{key}">' in page

    # The page loads in a real browser: the DOM after loading holds every section, no console
    # error; and a screenshot of it is a page, not a blank.
    shot = tmp_path / "report" / "shot.png"
    loaded = _chromium(out, "--dump-dom", "--enable-logging=stderr", "--v=0",
                       f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert loaded.returncode == 0 and shot.exists(), loaded.stderr[-2000:]
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in loaded.stdout
    assert loaded.stdout.count("<img") == len(pictures)
    errors = [line for line in loaded.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not errors, errors
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2000, 1280, 3)
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    assert (pixels.min(axis=-1) < 60).mean() > 0.005  # text and lines drawn
    assert (pixels.min(axis=-1) > 240).mean() > 0.3  # on a light page


@pytest.mark.slow  # ~5 s: an evaluation and a report
def test_worst_and_best_images_match_numpy_and_the_evaluation_file_is_kept(voc_run, voc2007_built):
    """eval-validation.json exists without per-image values: the report ranks the images by
    predicting them again with the file's options, and leaves the file as it was."""
    from pixelwise.evaluation.evaluator import evaluate_run
    from pixelwise.report.collect import collect_report

    evaluate_run(voc_run, progress=False)
    before = (voc_run / "eval-validation.json").read_bytes()
    data = collect_report(voc_run, num_examples=1)
    assert (voc_run / "eval-validation.json").read_bytes() == before

    expected = _numpy_per_image_iou(voc_run, voc2007_built)
    assert [shown.index for shown in data.worst] == [int(np.argmin(expected))]
    assert [shown.index for shown in data.best] == [int(np.argmax(expected))]
    for shown in data.worst + data.best:
        assert shown.mean_iou == pytest.approx(expected[shown.index], abs=1e-9)
        assert shown.label.shape == shown.predicted.shape == shown.image.shape[:2]
    assert data.metrics == json.loads(before)
    assert data.notes == []  # the new ranking agrees with the file's mean IoU
    assert data.curves_png and Image.open(io.BytesIO(data.curves_png)).size == (1200, 360)


@pytest.mark.slow  # ~6 s: an evaluation and a report
def test_images_are_predicted_with_the_options_the_evaluation_recorded(voc_run, capsys):
    """After `evaluate --mode slide --tile 64 --tta flip`, every image shown has the mean IoU
    that evaluation gave it; per-image values in the file are used without predicting again."""
    from pixelwise.evaluation.evaluator import evaluate_run
    from pixelwise.inference.options import PredictOptions
    from pixelwise.report.collect import collect_report

    options = PredictOptions(mode="slide", tile=64, tta="flip")
    result, paths, _ = evaluate_run(voc_run, options=options, progress=False)
    evaluated = result.per_image_mean_iou
    data = collect_report(voc_run, num_examples=2)
    # What evaluate wrote, read back as the same object: the tile, and the overlap in effect.
    assert data.predict_options == result.options == PredictOptions(
        mode="slide", tile=64, overlap=16, tta="flip")
    assert data.image_size is None
    shown = data.worst + data.best
    assert sorted(s.index for s in shown) == list(range(len(evaluated)))  # 3 images: 2 + 1
    for image in shown:
        assert image.mean_iou == pytest.approx(evaluated[image.index], abs=1e-9)
    assert [s.mean_iou for s in data.worst] == sorted(s.mean_iou for s in data.worst)

    metrics = json.loads(paths["metrics"].read_text())
    metrics["per_image_mean_iou"] = [0.9, 0.1, None]  # as evaluate may store them
    paths["metrics"].write_text(json.dumps(metrics))
    capsys.readouterr()
    data = collect_report(voc_run, num_examples=1, progress=True)
    assert "no per-image mean IoU" not in capsys.readouterr().err
    assert [s.index for s in data.worst] == [1] and [s.index for s in data.best] == [0]


@pytest.mark.slow  # ~4 s: an export and a report
def test_parity_reports_are_found_and_shown(voc_run, tmp_path):
    from pixelwise.evaluation.evaluator import evaluate_run
    from pixelwise.report.collect import build_report

    evaluate_run(voc_run, bootstrap_resamples=0, progress=False)
    int8 = voc_run / "exports" / "tflite-int8" / "parity.json"
    int8.parent.mkdir(parents=True)
    int8.write_text(json.dumps({"format": "tflite-int8", "pixel_agreement": 0.9412, "threshold": 0.95,
                                "passed": False, "mean_iou": {"keras": 0.4137, "export": 0.3921}}))
    elsewhere = tmp_path / "onnx-export" / "parity.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text("[1, 2]")  # not a report: shown as such, not dropped
    page = build_report(voc_run, tmp_path / "r.html", exports=[voc_run / "exports", elsewhere],
                        progress=False).read_text()
    exports = page[page.index('<section id="exports">'):]
    assert "tflite-int8" in exports and "0.9412" in exports and "0.3921" in exports
    assert "mean iou · keras" in exports and '<td class="fail">no</td>' in exports
    assert "expected a JSON object, found list" in exports
    assert "no interval" in page  # evaluated with 0 bootstrap resamples: said, not hidden


def test_bad_input_is_one_line_before_any_evaluation(voc_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    code, _, stderr = _main(["report", "--run", voc_run, "--out", out,
                             "--exports", tmp_path / "nowhere"], capsys)
    assert code == 2 and stderr.count("\n") == 1 and "nowhere" in stderr and "does not exist" in stderr
    code, _, stderr = _main(["report", "--run", voc_run, "--out", out, "-n", "0"], capsys)
    assert code == 2 and "at least 1" in stderr
    code, _, stderr = _main(["report", "--run", tmp_path / "no-run", "--out", out], capsys)
    assert code == 2 and "pixelwise train" in stderr
    assert not out.exists() and not (voc_run / "eval-validation.json").exists()


@pytest.mark.parametrize("where", ["under a file", "a folder", "/proc"])
def test_an_unwritable_out_is_one_line_before_any_prediction(voc_run, tmp_path, capsys, where):
    """report evaluated and predicted every image, then failed to write the page."""
    (tmp_path / "afile").write_text("x")
    out = {"under a file": tmp_path / "afile" / "r.html", "a folder": tmp_path,
           "/proc": Path("/proc/pixelwise-report/r.html")}[where]
    code, _, stderr = _main(["report", "--run", voc_run, "--out", out], capsys)
    assert code == 2 and stderr.count("\n") == 1, stderr  # no progress line: nothing evaluated
    assert stderr.startswith("pixelwise report: error: Cannot write") and str(out) in stderr
    assert "--out" in stderr
    assert not (voc_run / "eval-validation.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "run"]  # no probe left
